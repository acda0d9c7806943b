//! Differential tests: the proxy's module path, version, escaping, request and zip checks
//! against golang.org/x/mod (through tests/xmod) on a large seeded, generated and mutated input
//! set. Every disagreement fails the test unless it belongs to a deliberate difference listed in
//! [`DELIBERATE`] with its reason.
//!
//! The seed is printed; `ATHENS_DIFF_SEED=<n>` reproduces a run, `ATHENS_DIFF_SEED=random`
//! picks a new one, and `ATHENS_DIFF_SCALE=<n>` runs n times as many inputs.

use std::collections::BTreeMap;
use std::time::Instant;

use athens_e2e::diffgen::{self, Rng};
use athens_e2e::rawzip::{self, RawEntry};
use athens_e2e::xmod::{Answer, Ask, ask_all};
use athens_proxy::module::{
    ModulePath, Request, Version, VersionQuery, check_path, check_path_major, escape_path,
    escape_version, parse_request, unescape_path, unescape_version,
};
use athens_proxy::verify::{MAX_GO_MOD, MAX_LICENSE, check_zip, check_zip_with, prehash};

const DEFAULT_SEED: u64 = 0x00a7_4e25_d1ff_0001;
const PATHS: usize = 12_000;
const VERSIONS: usize = 12_000;
const PAIRS: usize = 4_000;
const REQUESTS: usize = 6_000;
const ZIPS: usize = 250;
/// How many differences a failure lists.
const SHOW: usize = 40;

/// A disagreement between the proxy and x/mod on one input.
#[derive(Debug, Clone)]
struct Diff {
    check: &'static str,
    input: String,
    /// Our outcome (`Ok(..)` or the `Debug` form of our error reason).
    ours: String,
    /// x/mod's outcome (`ok ..` or its error text).
    theirs: String,
}

/// A class of differences we keep on purpose.
struct Deliberate {
    name: &'static str,
    why: &'static str,
    applies: fn(&Diff) -> bool,
}

/// The deliberate differences, each with its reason; the test skips exactly these and checks
/// that each still occurs (a class that no longer occurs is stale and must be removed).
const DELIBERATE: &[Deliberate] = &[
    Deliberate {
        name: "length limits",
        why: "module paths over MAX_PATH_LEN (300), versions over MAX_VERSION_LEN (128) and \
              request paths over MAX_REQUEST_LEN are refused: they become object-store keys, \
              capped at 1024 bytes (see module/path.rs). x/mod has no limit.",
        applies: |d| d.ours.contains("TooLong") && d.theirs.starts_with("ok"),
    },
    Deliberate {
        name: "gopkg.in .v-unstable",
        why: "x/mod CheckPath accepts gopkg.in/x.v-unstable (no digits), but no version can \
              match it (and x/mod PathMajorPrefix panics on it); we refuse it (module/path.rs \
              split_gopkg_in).",
        applies: |d| {
            d.ours.contains("GopkgIn")
                && d.input.contains(".v-unstable")
                && d.theirs.starts_with("ok")
        },
    },
    Deliberate {
        name: "+incompatible rules",
        why: "x/mod CheckPathMajor allows +incompatible on v0/v1 and on paths with a major \
              suffix; the go command (modfetch) refuses both, and so do we (module/major.rs).",
        applies: |d| {
            (d.ours.contains("IncompatibleWithSuffix") || d.ours.contains("IncompatibleLowMajor"))
                && d.theirs.starts_with("ok")
        },
    },
    Deliberate {
        name: "query safety",
        why: "an .info query is resolved upstream as a ref name and may reach a git command \
              line: we accept only [A-Za-z0-9._+-], no leading - or ., no .., no .lock suffix, \
              and not the query words latest/upgrade/patch (module/query.rs). x/mod \
              EscapeVersion allows more punctuation.",
        applies: |d| {
            [
                "Leading(",
                "InvalidChar(",
                "DoubleDot",
                "LockSuffix",
                "QueryWord(",
            ]
            .iter()
            .any(|r| d.ours.contains(r))
                && d.theirs.starts_with("ok")
                && (d.check == "query" || d.input.ends_with(".info"))
        },
    },
    Deliberate {
        name: "version precedence ties",
        why: "semver.Compare ignores build metadata (v2.0.0 == v2.0.0+incompatible); our Ord \
              breaks the tie by text to stay consistent with Eq (module/version.rs).",
        applies: |d| d.check == "compare" && d.theirs == "ok 0",
    },
    Deliberate {
        name: "newer Unicode",
        why: "zip file names may hold any letter: our Unicode tables (letters, case folding) \
              are newer than Go's (15.0 in Go 1.26), so letters added since then pass here and \
              fail in the go command; Go's tables follow in later Go releases.",
        applies: |d| {
            d.check == "zip"
                && d.ours.starts_with("ok")
                && d.theirs.contains("unassigned in Go's Unicode")
        },
    },
    Deliberate {
        name: "duplicate directory entries",
        why: "x/mod accepts a zip that lists the same directory twice; the zip crate indexes \
              entries by name and cannot read both, so any duplicate name is refused \
              (verify/zipcheck.rs).",
        applies: |d| {
            d.check == "zip"
                && d.ours.contains("multiple entries with the same name")
                && d.theirs.starts_with("ok")
        },
    },
];

/// `ATHENS_DIFF_SCALE=<n>` multiplies the number of inputs, for a longer hunt by hand.
fn scale() -> usize {
    std::env::var("ATHENS_DIFF_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn seed() -> u64 {
    match std::env::var("ATHENS_DIFF_SEED") {
        Ok(s) if s == "random" => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(DEFAULT_SEED, |d| d.as_nanos() as u64),
        Ok(s) => s
            .trim_start_matches("0x")
            .parse::<u64>()
            .or_else(|_| u64::from_str_radix(s.trim_start_matches("0x"), 16))
            .expect("ATHENS_DIFF_SEED: a number or `random`"),
        Err(_) => DEFAULT_SEED,
    }
}

fn theirs(ok: bool, value: &str, err: &str) -> String {
    if ok {
        format!("ok {value}")
    } else {
        err.to_string()
    }
}

fn ours<T: std::fmt::Debug, E: std::fmt::Debug>(r: &Result<T, E>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("{e:?}"),
    }
}

/// Collects differences and counts comparisons.
#[derive(Default)]
struct Report {
    diffs: Vec<Diff>,
    compared: BTreeMap<&'static str, usize>,
}

impl Report {
    /// Records one comparison; a difference when `same` is false.
    fn compare(
        &mut self,
        check: &'static str,
        input: &str,
        same: bool,
        ours: String,
        theirs: String,
    ) {
        *self.compared.entry(check).or_default() += 1;
        if !same {
            self.diffs.push(Diff {
                check,
                input: input.to_string(),
                ours,
                theirs,
            });
        }
    }
}

impl Report {
    /// Compares a string-valued result with x/mod's `value` field (or its `err` field).
    fn compare_value<E: std::fmt::Debug>(
        &mut self,
        check: &'static str,
        input: &str,
        r: &Result<String, E>,
        a: &Answer,
        (value, err): (&str, &str),
    ) {
        let go_ok = a.ok(err);
        let same = match r {
            Ok(s) => go_ok && s == a.get(value),
            Err(_) => !go_ok,
        };
        self.compare(
            check,
            input,
            same,
            ours(r),
            theirs(go_ok, a.get(value), a.get(err)),
        );
    }
}

/// Module paths: CheckPath, EscapePath, SplitPathVersion, UnescapePath.
fn paths(rng: &mut Rng, report: &mut Report) -> Vec<String> {
    let mut inputs: Vec<String> = diffgen::REAL_PATHS.iter().map(|s| s.to_string()).collect();
    inputs.extend((0..PATHS * scale()).map(|_| diffgen::module_path(rng)));
    let answers = ask_all(inputs.iter().map(|p| Ask::new("path", p)));
    let mut valid = Vec::new();
    let mut escaped_inputs = Vec::new();
    for (p, a) in inputs.iter().zip(&answers) {
        let r = check_path(p).map_err(|e| e.reason);
        let go_ok = a.ok("check_err");
        report.compare(
            "check_path",
            p,
            r.is_ok() == go_ok,
            ours(&r),
            theirs(go_ok, "", a.get("check_err")),
        );

        let e = escape_path(p).map_err(|e| e.reason);
        report.compare_value("escape_path", p, &e, a, ("escaped", "escape_err"));

        if let Ok(mp) = ModulePath::new(p.as_str()) {
            let mine = format!(
                "{} {} {}",
                mp.prefix(),
                mp.major_suffix().unwrap_or(""),
                mp.major().unwrap_or("")
            );
            let go = format!(
                "{} {} {}",
                a.get("prefix"),
                a.get("major"),
                a.get("major_prefix")
            );
            report.compare(
                "split_path_version",
                p,
                mine == go && a.get("split_ok") == "true",
                mine,
                go,
            );
            valid.push(p.clone());
        }
        if let Ok(esc) = &e {
            escaped_inputs.push(esc.clone());
            escaped_inputs.push(diffgen::mutate(rng, esc));
        } else {
            escaped_inputs.push(p.clone());
        }
    }

    let answers = ask_all(escaped_inputs.iter().map(|e| Ask::new("unescape_path", e)));
    for (e, a) in escaped_inputs.iter().zip(&answers) {
        let r = unescape_path(e).map_err(|e| e.reason);
        report.compare_value("unescape_path", e, &r, a, ("path", "err"));
    }
    valid
}

/// Versions: semver validity and canonical form, the parts we read, escaping, queries.
fn versions(rng: &mut Rng, report: &mut Report) -> Vec<String> {
    let inputs: Vec<String> = (0..VERSIONS * scale())
        .map(|_| diffgen::version(rng))
        .collect();
    let answers = ask_all(inputs.iter().map(|v| Ask::new("version", v)));
    let mut valid = Vec::new();
    for (v, a) in inputs.iter().zip(&answers) {
        let canonical = a.get("valid") == "true" && a.get("canonical") == v;
        let parsed = Version::parse(v).map_err(|e| e.reason);
        report.compare(
            "version_parse",
            v,
            parsed.is_ok() == canonical,
            ours(&parsed),
            if canonical {
                "ok canonical".to_string()
            } else {
                format!("valid={} canonical={}", a.get("valid"), a.get("canonical"))
            },
        );
        if let Err(athens_proxy::module::VersionReason::NotCanonical(c)) = &parsed {
            report.compare(
                "canonical_suggestion",
                v,
                c == a.get("canonical"),
                c.clone(),
                a.get("canonical").into(),
            );
        }
        if let Ok(ver) = &parsed {
            let mine = format!(
                "{} {} pseudo={} incompatible={}",
                ver.major(),
                ver.prerelease(),
                ver.is_pseudo(),
                ver.is_incompatible()
            );
            let go = format!(
                "{} {} pseudo={} incompatible={}",
                a.get("major"),
                a.get("prerelease"),
                a.get("pseudo"),
                a.get("build") == "+incompatible"
            );
            report.compare("version_parts", v, mine == go, mine, go);
            valid.push(v.clone());
        }

        let e = escape_version(v).map_err(|e| e.reason);
        report.compare_value("escape_version", v, &e, a, ("escaped", "escape_err"));

        let u = unescape_version(v).map_err(|e| e.reason);
        report.compare_value("unescape_version", v, &u, a, ("unescaped", "unescape_err"));

        // The go command sends any version EscapeVersion accepts to .info; canonical ones are
        // versions, the rest queries.
        let q = VersionQuery::parse(v).map_err(|e| e.reason);
        let go_ok = a.ok("escape_err");
        let same = match &q {
            Ok(VersionQuery::Version(_)) => go_ok && canonical,
            Ok(VersionQuery::Query(_)) => go_ok && !canonical,
            Err(_) => !go_ok,
        };
        report.compare(
            "query",
            v,
            same,
            ours(&q),
            theirs(
                go_ok,
                if canonical { "canonical" } else { "query" },
                a.get("escape_err"),
            ),
        );
    }
    valid
}

/// Semantic-version precedence on pairs of valid versions.
fn precedence(rng: &mut Rng, report: &mut Report, versions: &[String]) {
    if versions.is_empty() {
        return;
    }
    // Pairs equal but for build metadata are rare at random; list some.
    let mut pairs: Vec<(String, String)> = [
        ("v2.0.0", "v2.0.0+incompatible"),
        ("v3.1.0-rc.1+incompatible", "v3.1.0-rc.1"),
        ("v1.0.0", "v1.0.0"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    pairs.extend(
        (0..PAIRS * scale()).map(|_| (rng.pick(versions).clone(), rng.pick(versions).clone())),
    );
    let answers = ask_all(pairs.iter().map(|(a, b)| Ask::with("compare", a, b, "")));
    for ((x, y), a) in pairs.iter().zip(&answers) {
        let mine = match Version::parse(x).unwrap().cmp(&Version::parse(y).unwrap()) {
            std::cmp::Ordering::Less => "-1",
            std::cmp::Ordering::Equal => "0",
            std::cmp::Ordering::Greater => "1",
        };
        report.compare(
            "compare",
            &format!("{x} {y}"),
            mine == a.get("cmp"),
            format!("ok {mine}"),
            format!("ok {}", a.get("cmp")),
        );
    }
}

/// Whether versions fit module paths (CheckPathMajor).
fn path_major(rng: &mut Rng, report: &mut Report, paths: &[String], versions: &[String]) {
    if paths.is_empty() || versions.is_empty() {
        return;
    }
    // Paths with a major suffix are rare among random ones; add some.
    let mut paths = paths.to_vec();
    for p in [
        "example.com/m/v2",
        "example.com/m/v3",
        "gopkg.in/x.v0",
        "gopkg.in/x.v1",
        "gopkg.in/x.v2",
        "gopkg.in/x.v1-unstable",
    ] {
        paths.push(p.to_string());
    }
    let pairs: Vec<(String, String)> = (0..PAIRS * scale())
        .map(|_| (rng.pick(&paths).clone(), rng.pick(versions).clone()))
        .collect();
    let answers = ask_all(pairs.iter().map(|(p, v)| Ask::with("major", p, v, "")));
    for ((p, v), a) in pairs.iter().zip(&answers) {
        let r = check_path_major(
            &Version::parse(v).unwrap(),
            &ModulePath::new(p.as_str()).unwrap(),
        )
        .map_err(|e| e.reason);
        let go_ok = a.ok("major_err");
        report.compare(
            "check_path_major",
            &format!("{p}@{v}"),
            r.is_ok() == go_ok,
            ours(&r),
            theirs(go_ok, "", a.get("major_err")),
        );
    }
}

/// Percent-encodes what a URL path cannot carry as is.
fn url_path(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!/@+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whole request paths: what parse_request accepts against unescaping and module.Check.
fn requests(rng: &mut Rng, report: &mut Report, paths: &[String], versions: &[String]) {
    let mut cases = Vec::new();
    for _ in 0..REQUESTS * scale() {
        let p = if rng.chance(70) && !paths.is_empty() {
            rng.pick(paths).clone()
        } else {
            diffgen::module_path(rng)
        };
        let v = if rng.chance(50) && !versions.is_empty() {
            rng.pick(versions).clone()
        } else {
            diffgen::version(rng)
        };
        // Escape when possible (as the go command does), else send as is; sometimes mutate.
        let mut ep = escape_path(&p).unwrap_or(p);
        let mut ev = escape_version(&v).unwrap_or(v);
        if rng.chance(15) {
            ep = diffgen::mutate(rng, &ep);
        }
        if rng.chance(15) {
            ev = diffgen::mutate(rng, &ev);
        }
        let ext = *rng.pick(&["info", "mod", "zip", "list", "latest"]);
        cases.push((ep, ev, ext));
    }
    let answers = ask_all(cases.iter().map(|(p, v, _)| Ask::with("request", p, v, "")));
    for ((ep, ev, ext), a) in cases.iter().zip(&answers) {
        let raw = match *ext {
            "list" => format!("{}/@v/list", url_path(ep)),
            "latest" => format!("{}/@latest", url_path(ep)),
            _ => format!("{}/@v/{}.{ext}", url_path(ep), url_path(ev)),
        };
        // A path with "/@v/" or ending "/@latest" in it is not the request it looks like.
        if ep.contains("/@") || ev.contains('/') && !["list", "latest"].contains(ext) {
            continue;
        }
        let path_ok = a.ok("path_err");
        let version_ok = a.ok("version_err");
        let canonical = a.get("canonical") == "true";
        let check_ok = a.ok("check_err");
        let go_ok = match *ext {
            "list" | "latest" => path_ok,
            "info" => path_ok && version_ok && (!canonical || check_ok),
            _ => path_ok && version_ok && canonical && check_ok,
        };
        let r = parse_request(&raw);
        let same = match &r {
            Ok(req) => go_ok && request_matches(req, a),
            Err(_) => !go_ok,
        };
        let go = format!(
            "path_err={:?} version_err={:?} canonical={canonical} check_err={:?}",
            a.get("path_err"),
            a.get("version_err"),
            a.get("check_err")
        );
        report.compare(
            "parse_request",
            &raw,
            same,
            ours(&r),
            theirs(go_ok, &go, &go),
        );
    }
}

/// Whether a parsed request names the module and version x/mod decoded.
fn request_matches(req: &Request, a: &Answer) -> bool {
    let version = match req {
        Request::List(_) | Request::Latest(_) => None,
        Request::Info(_, q) => Some(q.as_str().to_string()),
        Request::Mod(_, v) | Request::Zip(_, v) => Some(v.as_str().to_string()),
    };
    req.module().as_str() == a.get("path") && version.is_none_or(|v| v == a.get("version"))
}

/// One generated module zip: the module it claims to be and its entries.
struct ZipCase {
    path: &'static str,
    version: &'static str,
    entries: Vec<RawEntry>,
    what: Vec<String>,
}

const ZIP_MODULES: &[(&str, &str)] = &[
    ("example.com/m", "v1.0.0"),
    ("github.com/Foo/Bar", "v1.2.3-RC1"),
    ("gopkg.in/x.v2", "v2.0.0"),
    ("example.com/m", "v2.0.0+incompatible"),
];

const BAD_NAMES: &[&str] = &[
    "..",
    "../a.go",
    "./a.go",
    "a/../b.go",
    "a/./b.go",
    "a//b.go",
    "/a.go",
    "a\\b.go",
    "a:b.go",
    "a*b.go",
    "a?b",
    "a\"b",
    "a<b",
    "a|b",
    "a`b",
    "a'b",
    "a.",
    "a./b.go",
    "...",
    " ",
    "a b.go",
    "-x.go",
    ".gitignore",
    "x~1.go",
    "PROGRA~1/a.go",
    "con",
    "CON.go",
    "aux.txt/a.go",
    "lpt9.x",
    "com10.go",
    "conx/a.go",
    "é.go",
    "日本.go",
    "a\u{301}.go",
    "😀.go",
    "a\nb.go",
    "a\tb.go",
    "a\0b.go",
    "#$%&()+,=@[]^_{}~!.go",
    "ǅ.go",
    "\u{212a}.go",
    "a/",
    "a/b/",
    "",
    // Alphabetic but not letters (marks, letter numbers, circled), and letters newer than
    // Unicode 15.0 (Garay, U+10D50; Latin U+A7CB).
    "a\u{345}.go",
    "क\u{93e}.go",
    "\u{2160}.go",
    "\u{24b6}.go",
    "\u{10d50}.go",
    "\u{a7cb}.go",
];

const SPECIAL_NAMES: &[&str] = &[
    "vendor/modules.txt",
    "vendor/x/y.go",
    "vendor/vendor.json",
    "sub/go.mod",
    "vendor/go.mod",
    "GO.MOD",
    "Go.mod",
    "sub/Go.mod",
    "go.mod/x",
    "go.sum",
    "LICENSE",
    "License",
    "sub/LICENSE",
    "go.mod",
];

const COLLISIONS: &[(&str, &str)] = &[
    ("A.go", "a.go"),
    ("K.go", "\u{212a}.go"),
    ("s.go", "ſ.go"),
    ("ß.go", "ẞ.go"),
    ("σ.go", "ς.go"),
    ("Σ.go", "σ.go"),
    ("ǅ.go", "ǆ.go"),
    ("Dir/a.go", "dir/b.go"),
    ("é.go", "É.go"),
    ("a", "a/b.go"),
    ("x/", "X/y.go"),
    ("ı.go", "I.go"),
    ("ı.go", "i.go"),
    ("İ.go", "i.go"),
    ("\u{345}.go", "ι.go"),
    ("Å.go", "\u{212b}.go"),
    ("ß.go", "ss.go"),
];

/// A valid module zip's entries: go.mod (optional) and a Go file.
fn base_entries(path: &str, version: &str, go_mod: bool) -> Vec<RawEntry> {
    let mut entries = Vec::new();
    if go_mod {
        entries.push(RawEntry::new(
            format!("{path}@{version}/go.mod"),
            format!("module {path}\n"),
        ));
    }
    entries.push(RawEntry::new(
        format!("{path}@{version}/a.go"),
        "package a\n",
    ));
    entries
}

/// One zip for each listed hostile name and collision, so every one is checked on every run.
fn listed_zip_cases() -> Vec<ZipCase> {
    let (path, version) = ZIP_MODULES[0];
    let name = |rel: &str| {
        RawEntry::new(
            format!("{path}@{version}/{rel}"),
            if rel.ends_with('/') { "" } else { "x" },
        )
    };
    // (extra names after the base entries, whether the base has a go.mod, description)
    let mut lists: Vec<(Vec<&str>, bool, String)> = Vec::new();
    for rel in BAD_NAMES.iter().chain(SPECIAL_NAMES) {
        lists.push((vec![rel], true, format!("name {rel:?}")));
    }
    lists.push((vec!["d/", "d/"], true, "duplicate directory".into()));
    lists.push((vec!["a.go", "a.go"], true, "duplicate file".into()));
    for (a, b) in COLLISIONS {
        lists.push((vec![a, b], false, format!("collision {a:?} {b:?}")));
    }
    lists
        .into_iter()
        .map(|(names, go_mod, what)| {
            let mut entries = base_entries(path, version, go_mod);
            entries.extend(names.into_iter().map(name));
            ZipCase {
                path,
                version,
                entries,
                what: vec![what],
            }
        })
        .collect()
}

fn zip_case(rng: &mut Rng) -> ZipCase {
    let (path, version) = *rng.pick(ZIP_MODULES);
    let prefix = format!("{path}@{version}/");
    let name = |rel: &str| format!("{prefix}{rel}").into_bytes();
    let mut entries = base_entries(path, version, rng.chance(80));
    let mut what = Vec::new();
    for _ in 0..1 + rng.below(3) {
        match rng.below(13) {
            0 if !entries.is_empty() => {
                let e = rng.pick(&entries).clone();
                what.push("duplicate entry".into());
                entries.push(e);
            }
            1 => {
                what.push("duplicate directory".into());
                entries.push(RawEntry::new(name("d/"), ""));
                entries.push(RawEntry::new(name("d/"), ""));
            }
            2 => {
                let (a, b) = *rng.pick(COLLISIONS);
                what.push(format!("collision {a:?} {b:?}"));
                entries.push(RawEntry::new(name(a), "x"));
                entries.push(RawEntry::new(name(b), "y"));
            }
            3 => {
                let n = match rng.below(7) {
                    0 => "other.com/m@v1.0.0/a.go".to_string(),
                    1 => format!("{path}@v9.9.9/a.go"),
                    2 => format!("{path}@{version}"),
                    3 => format!("/{prefix}b.go"),
                    4 => "../x.go".to_string(),
                    5 => "b.go".to_string(),
                    _ => format!("{}@{version}/b.go", escape_path(path).unwrap()),
                };
                what.push(format!("outside prefix {n:?}"));
                entries.push(RawEntry::new(n, "x"));
            }
            4 | 5 => {
                let rel = *rng.pick(BAD_NAMES);
                what.push(format!("name {rel:?}"));
                entries.push(RawEntry::new(
                    name(rel),
                    if rel.ends_with('/') { "" } else { "x" },
                ));
            }
            6 => {
                let rel = *rng.pick(SPECIAL_NAMES);
                what.push(format!("name {rel:?}"));
                entries.push(RawEntry::new(name(rel), "module x\n"));
            }
            7 => {
                let i = rng.below(entries.len());
                let e = &mut entries[i];
                let len = e.data.len() as u32;
                let d = *rng.pick(&[
                    MAX_GO_MOD as u32 + 1,
                    MAX_LICENSE as u32 + 1,
                    300 << 20,
                    len + 1,
                    len.saturating_sub(1),
                    0,
                    u32::MAX,
                ]);
                what.push(format!("entry {i} declares {d} bytes"));
                e.declared = Some(d);
                if rng.chance(50) {
                    let rel = *rng.pick(&["go.mod", "LICENSE", "big.bin"]);
                    what.push(format!("and {rel} declares {d} bytes"));
                    let mut e = RawEntry::new(name(rel), "x");
                    e.declared = Some(d);
                    entries.push(e);
                }
            }
            8 => {
                let i = rng.below(entries.len());
                what.push(format!("entry {i} bad CRC"));
                entries[i].bad_crc = true;
            }
            9 => {
                let i = rng.below(entries.len());
                let mode = *rng.pick(&[0o120777u32, 0o040755, 0o100755, 0o010644, 0o140777]);
                what.push(format!("entry {i} mode {mode:o}"));
                entries[i].mode = Some(mode);
            }
            10 => {
                let (rel, data) =
                    *rng.pick(&[("", ""), ("d/", ""), ("d/", "content"), ("a.go/", "")]);
                what.push(format!("directory {rel:?} with {} bytes", data.len()));
                entries.push(RawEntry::new(name(rel), data));
            }
            11 => {
                let n = 200 + rng.below(1000);
                what.push(format!("{n} more files"));
                for i in 0..n {
                    entries.push(RawEntry::new(name(&format!("f/{i}.go")), "package f\n"));
                }
            }
            _ => {
                let mut n = prefix.clone().into_bytes();
                n.extend_from_slice(rng.pick::<&[u8]>(&[
                    &b"\xffa.go"[..],
                    b"a\xc3.go",
                    b"\xed\xa0\x80.go",
                ]));
                what.push(format!("name bytes {:?}", String::from_utf8_lossy(&n)));
                entries.push(RawEntry::new(n, "x"));
            }
        }
    }
    if rng.chance(50) {
        // As the go command writes them: deflated, sizes in a data descriptor after the data.
        what.push("files deflated with data descriptors".into());
        for e in entries.iter_mut().filter(|e| !e.name.ends_with(b"/")) {
            e.deflate = true;
        }
    }
    ZipCase {
        path,
        version,
        entries,
        what,
    }
}

/// Module zips: check_zip against CheckZip + Unzip + dirhash.HashZip.
fn zips(rng: &mut Rng, report: &mut Report) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cases = Vec::new();
    let generated: Vec<ZipCase> = listed_zip_cases()
        .into_iter()
        .chain((0..ZIPS * scale()).map(|_| zip_case(rng)))
        .collect();
    for (i, case) in generated.into_iter().enumerate() {
        let file = dir.path().join(format!("{i}.zip"));
        std::fs::write(&file, rawzip::write(&case.entries)).expect("write zip");
        cases.push((case, file));
    }
    let asks: Vec<Ask> = cases
        .iter()
        .map(|(c, f)| {
            Ask::with(
                "zip",
                f.to_str().expect("UTF-8 temp path"),
                c.path,
                c.version,
            )
        })
        .collect();
    let answers = ask_all(asks);
    let (mut files, mut streamed) = (0, 0);
    for ((case, file), a) in cases.iter().zip(&answers) {
        let r = check_zip(file, case.path, case.version);
        // The check a fill makes with the pass over the download must answer the same.
        let bytes = std::fs::read(file).expect("read zip");
        let go_mod = format!("{}@{}/go.mod", case.path, case.version);
        let pass = prehash(&bytes[..], go_mod.as_bytes());
        let with = check_zip_with(file, case.path, case.version, Some(&pass));
        let agree = match (&r, &with) {
            (Ok(x), Ok(y)) => {
                files += x.files;
                streamed += y.streamed;
                (&x.h1, &x.go_mod) == (&y.h1, &y.go_mod)
            }
            (Err(x), Err(y)) => x.to_string() == y.to_string(),
            _ => false,
        };
        let show = |r: &Result<athens_proxy::verify::ZipSummary, _>| match r {
            Ok(s) => format!("ok {}", s.h1),
            Err(e) => format!("{e}"),
        };
        report.compare(
            "zip with pass",
            &format!("{}@{} {}", case.path, case.version, case.what.join("; ")),
            agree,
            show(&with),
            show(&r),
        );
        let go_ok = a.ok("err");
        let same = match &r {
            Ok(s) => go_ok && s.h1 == a.get("h1"),
            Err(_) => !go_ok,
        };
        let input = format!("{}@{} {}", case.path, case.version, case.what.join("; "));
        let mine = match &r {
            Ok(s) => format!("ok {}", s.h1),
            Err(e) => e.to_string(),
        };
        let mut go = theirs(go_ok, a.get("h1"), a.get("err"));
        if !a.get("unassigned").is_empty() {
            go.push_str(&format!(
                " [names use code points unassigned in Go's Unicode {}]",
                a.get("unassigned")
            ));
        }
        report.compare("zip", &input, same, mine, go);
    }
    println!("zips: {streamed} of {files} files in valid zips hashed by the pass");
    assert!(
        streamed * 2 > files,
        "the pass hashed only {streamed} of {files} files"
    );
}

#[test]
fn proxy_validation_matches_x_mod() {
    let seed = seed();
    println!("differential seed: {seed} (ATHENS_DIFF_SEED={seed} reproduces this run)");
    let start = Instant::now();
    let mut rng = Rng::new(seed);
    let mut report = Report::default();

    athens_e2e::gohelper::binary("xmod");
    println!("built tests/xmod in {:.1?}", start.elapsed());
    let start = Instant::now();
    let timed = |what: &str, t: Instant| println!("{what}: {:.1?}", t.elapsed());
    let t = Instant::now();
    let valid_paths = paths(&mut rng, &mut report);
    timed("paths", t);
    let t = Instant::now();
    let valid_versions = versions(&mut rng, &mut report);
    timed("versions", t);
    let t = Instant::now();
    precedence(&mut rng, &mut report, &valid_versions);
    path_major(&mut rng, &mut report, &valid_paths, &valid_versions);
    timed("pairs", t);
    let t = Instant::now();
    requests(&mut rng, &mut report, &valid_paths, &valid_versions);
    timed("requests", t);
    let t = Instant::now();
    zips(&mut rng, &mut report);
    timed("zips", t);

    let mut deliberate: BTreeMap<&str, usize> = DELIBERATE.iter().map(|d| (d.name, 0)).collect();
    let mut real = Vec::new();
    for d in &report.diffs {
        match DELIBERATE.iter().find(|c| (c.applies)(d)) {
            Some(c) => *deliberate.entry(c.name).or_default() += 1,
            None => real.push(d),
        }
    }
    println!(
        "compared {} inputs in {:.1?}: {:?}",
        report.compared.values().sum::<usize>(),
        start.elapsed(),
        report.compared
    );
    println!(
        "valid paths {}, valid versions {}",
        valid_paths.len(),
        valid_versions.len()
    );
    for c in DELIBERATE {
        println!(
            "deliberate {:?}: {} ({})",
            c.name, deliberate[c.name], c.why
        );
    }

    // Up to five of each check, so one noisy check does not hide the others.
    let mut per_check: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &real {
        *per_check.entry(d.check).or_default() += 1;
    }
    let mut shown_per_check: BTreeMap<&str, usize> = BTreeMap::new();
    let shown: Vec<String> = real
        .iter()
        .filter(|d| {
            let n = shown_per_check.entry(d.check).or_default();
            *n += 1;
            *n <= 5
        })
        .take(SHOW)
        .map(|d| {
            format!(
                "  [{}] {:?}\n      ours:  {}\n      x/mod: {}",
                d.check, d.input, d.ours, d.theirs
            )
        })
        .collect();
    assert!(
        real.is_empty(),
        "{} differences from golang.org/x/mod (seed {seed}) {per_check:?}, for example:\n{}",
        real.len(),
        shown.join("\n")
    );
    let stale: Vec<&str> = deliberate
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| *k)
        .collect();
    assert!(
        stale.is_empty(),
        "deliberate differences that no longer occur (remove them from DELIBERATE, or the \
         generator stopped reaching them): {stale:?}"
    );
}
