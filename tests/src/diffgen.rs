//! Seeded generators of module paths, versions and module zip entries for differential tests:
//! inputs that hit every validation rule (case, `!`, `~`, dots, `/vN`, `.vN`, gopkg.in,
//! Windows names, Unicode, lengths), plus random mutations of real-looking ones. The same seed
//! always gives the same inputs.

/// SplitMix64: small, fast, and good enough to pick test inputs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Characters that each matter to some rule: allowed and disallowed ASCII punctuation, case,
/// digits, and non-ASCII letters and non-letters (the Kelvin sign and long s fold to ASCII).
const ALPHABET: &[char] = &[
    'a', 'b', 'c', 'k', 's', 'v', 'x', 'z', 'A', 'K', 'S', 'V', 'Z', '0', '1', '2', '9', '-', '.',
    '_', '~', '!', '+', '@', '%', ' ', '/', '\\', ':', '#', '$', '&', '(', ')', ',', '=', '[', ']',
    '^', '{', '}', '*', '"', '\'', '<', '>', '?', '`', '|', ';', '\t', '\n', '\0', 'é', 'ß', 'ς',
    'Σ', '\u{212a}', 'ſ', 'ǅ', '\u{301}', '日', '😀',
];

/// Real-looking module paths to mutate.
pub const REAL_PATHS: &[&str] = &[
    "github.com/BurntSushi/toml",
    "golang.org/x/text",
    "gopkg.in/yaml.v3",
    "gopkg.in/check.v1",
    "gopkg.in/src-d/go-git.v4",
    "gopkg.in/x.v1-unstable",
    "gopkg.in/x.v-unstable",
    "github.com/go-chi/chi/v5",
    "k8s.io/client-go",
    "go.uber.org/zap",
    "cloud.google.com/go/storage",
    "github.com/Azure/azure-sdk-for-go/sdk/azcore",
    "example.com/m/v2",
    "example.com/m",
    "1.2.3.4/m",
];

const FIRST_ELEMS: &[&str] = &[
    "example.com",
    "github.com",
    "gopkg.in",
    "golang.org",
    "a.b",
    "x.y.z",
    "1.2.3.4",
    "a-b.c",
    "localhost",
    "Example.com",
    "-x.com",
    "x-.com",
    "x_y.com",
    "x~.com",
    ".com",
    "com.",
    "a..b",
    "é.com",
    "",
];

const ELEMS: &[&str] = &[
    "m",
    "x",
    "BurntSushi",
    "toml",
    "v",
    "v0",
    "v1",
    "v2",
    "v02",
    "v10",
    "v2.0",
    "v1.2",
    "v2.",
    "yaml.v2",
    "yaml.v0",
    "yaml.v01",
    "yaml.v",
    "yaml.V2",
    "check.v1",
    "x.v1-unstable",
    "x.v-unstable",
    "x.v0-unstable",
    "yaml-unstable",
    "v2-unstable",
    "con",
    "CON",
    "Aux.txt",
    "nul.go",
    "com1",
    "COM9",
    "lpt5",
    "LpT9.x",
    "com10",
    "conx",
    "PROGRA~1",
    "x~1",
    "x~",
    "~",
    "x~y",
    "x.y~1",
    "x~1.y",
    "~0",
    ".well",
    "m.",
    "..",
    ".",
    "...",
    "a..b",
    "_x",
    "-x",
    "x-",
    "a+b",
    "a@b",
    "a b",
    "a!b",
    "a%20b",
    "a\\b",
    "a:b",
    "é",
    "\u{212a}",
    "ſ",
    "a\u{0}b",
    "vendor",
    "go.mod",
    "internal",
    "",
];

/// A random string of `1..=max` characters from [`ALPHABET`].
fn random_text(rng: &mut Rng, max: usize) -> String {
    let n = 1 + rng.below(max);
    (0..n).map(|_| *rng.pick(ALPHABET)).collect()
}

/// One change to `s`: insert, delete, replace or re-case a character, or add a piece that
/// matters to some rule.
pub fn mutate(rng: &mut Rng, s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let at = if chars.is_empty() {
        0
    } else {
        rng.below(chars.len() + 1)
    };
    let (head, tail): (String, String) =
        (chars[..at].iter().collect(), chars[at..].iter().collect());
    match rng.below(12) {
        0 => format!("{head}{}{tail}", rng.pick(ALPHABET)),
        1 if !tail.is_empty() => format!(
            "{head}{}",
            &tail[tail.chars().next().map_or(0, char::len_utf8)..]
        ),
        2 if !tail.is_empty() => {
            let rest = &tail[tail.chars().next().map_or(0, char::len_utf8)..];
            format!("{head}{}{rest}", rng.pick(ALPHABET))
        }
        3 => {
            let flip: String = tail
                .chars()
                .take(1)
                .map(|c| {
                    if c.is_ascii_lowercase() {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect();
            let rest: String = tail.chars().skip(1).collect();
            format!("{head}{flip}{rest}")
        }
        4 => format!("{s}/{}", rng.pick(ELEMS)),
        5 => format!("{s}/v{}", rng.pick(&["0", "1", "2", "01", "10", "2.0", ""])),
        6 => format!(
            "{s}.v{}",
            rng.pick(&["0", "1", "2", "01", "", "1-unstable"])
        ),
        7 => format!("{head}/{tail}"),
        8 => format!("{head}//{tail}"),
        9 => format!(
            "{s}{}",
            rng.pick(&["/", ".", "~1", "-unstable", "+incompatible", "!"])
        ),
        10 => head,
        _ => format!("{}{s}", rng.pick(&["/", "-", ".", "!", "gopkg.in/", "v"])),
    }
}

/// A decoded module path: built from rule-hitting pieces, a mutated real path, or long.
pub fn module_path(rng: &mut Rng) -> String {
    let mut p = match rng.below(10) {
        0..=3 => {
            let mut p = rng.pick(FIRST_ELEMS).to_string();
            for _ in 0..rng.below(4) {
                p.push('/');
                if rng.chance(70) {
                    p.push_str(rng.pick::<&str>(ELEMS));
                } else {
                    p.push_str(&random_text(rng, 6));
                }
            }
            p
        }
        4..=8 => rng.pick(REAL_PATHS).to_string(),
        _ => {
            // Around the length limit (300) and beyond.
            let mut p = rng.pick(REAL_PATHS).to_string();
            let target = 250 + rng.below(120);
            while p.len() < target {
                p.push_str(rng.pick::<&str>(&["/abcdefghij", "/x", "/Mixed", "/v2x"]));
            }
            p
        }
    };
    for _ in 0..rng.below(3) {
        p = mutate(rng, &p);
    }
    p
}

/// A version or query string: semantic versions in every shape (short, leading zeros,
/// prereleases, build metadata, pseudo-versions), query-like words and refs, mutations, long ones.
pub fn version(rng: &mut Rng) -> String {
    let mut v = match rng.below(10) {
        0..=4 => semver_like(rng),
        5 | 6 => pseudo_like(rng),
        7 => rng
            .pick(&[
                "master",
                "main",
                "HEAD",
                "latest",
                "upgrade",
                "patch",
                "Latest",
                "3b0461eec859",
                "release-1.0",
                "feature/x",
                "-x",
                "--upload-pack=evil",
                ".x",
                "a..b",
                "x.lock",
                "x.",
                "con",
                "nul.txt",
                "a~1",
                "a b",
                "a@{1}",
                "é",
                "",
                "v1.2.3 ",
                "a!b",
                "!a",
                "1.2.3",
                "V1.2.3",
                "v1.2.3+incompatible",
                ".",
                "..",
                "a/b",
                "x~1.y",
                "v1~1",
            ])
            .to_string(),
        8 => random_text(rng, 12),
        _ => {
            let mut v = format!("v1.0.0-{}", "a".repeat(100 + rng.below(40)));
            v.truncate(120 + rng.below(16));
            v
        }
    };
    for _ in 0..rng.below(2) {
        v = mutate(rng, &v);
    }
    v
}

fn number(rng: &mut Rng) -> &'static str {
    rng.pick::<&str>(&[
        "0",
        "1",
        "2",
        "3",
        "10",
        "01",
        "00",
        "123456789012345678901234567890",
        "",
    ])
}

fn semver_like(rng: &mut Rng) -> String {
    let mut v = rng.pick(&["v", "v", "v", "v", "v", "", "V"]).to_string();
    v.push_str(number(rng));
    if rng.chance(85) {
        v.push('.');
        v.push_str(number(rng));
        if rng.chance(85) {
            v.push('.');
            v.push_str(number(rng));
        }
    }
    if rng.chance(40) {
        v.push('-');
        let n = 1 + rng.below(3);
        let ids: Vec<&str> = (0..n)
            .map(|_| {
                *rng.pick(&[
                    "alpha", "RC1", "rc", "0", "01", "1", "11", "x-y", "-", "", "a_b", "beta", "Z",
                ])
            })
            .collect();
        v.push_str(&ids.join("."));
    }
    if rng.chance(25) {
        v.push_str(rng.pick::<&str>(&[
            "+incompatible",
            "+incompatible",
            "+meta",
            "+",
            "+a.b",
            "+incompatible.1",
            "+01",
            "+a..b",
        ]));
    }
    v
}

fn pseudo_like(rng: &mut Rng) -> String {
    let time = [
        "20190620200207",
        "2019062020020",
        "201906202002071",
        "2019062020020x",
    ];
    let rev = ["3b0461eec859", "daa7c04131f5", "", "ABCDEF123456", "x"];
    let base = match rng.below(3) {
        0 => format!("v{}.0.0-", rng.pick(&["0", "1", "2", "3"])),
        1 => format!("v1.2.{}-0.", rng.pick(&["0", "4", "10"])),
        _ => format!("v1.2.3-{}.0.", rng.pick(&["pre", "rc.1", "0", "a-b"])),
    };
    let mut v = format!("{base}{}-{}", rng.pick(&time), rng.pick(&rev));
    if rng.chance(25) {
        v.push_str("+incompatible");
    }
    v
}
