//! Go's `path.Match` glob syntax: `*` and `?` never cross `/`, `[...]` classes with ranges and
//! `^` negation, `\` escapes. Pure.

/// Whether `name` matches `pattern`. A malformed pattern matches nothing.
pub fn path_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches(&p, &n)
}

fn matches(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => {
            // Try every split that keeps `*` within one path element.
            let mut i = 0;
            loop {
                if matches(&p[1..], &n[i..]) {
                    return true;
                }
                if i == n.len() || n[i] == '/' {
                    return false;
                }
                i += 1;
            }
        }
        Some('?') => !n.is_empty() && n[0] != '/' && matches(&p[1..], &n[1..]),
        Some('[') => match (n.first(), class(&p[1..])) {
            (Some(&c), Some((ok, used))) if c != '/' && ok(c) => matches(&p[1 + used..], &n[1..]),
            _ => false,
        },
        Some('\\') => p.len() > 1 && n.first() == Some(&p[1]) && matches(&p[2..], &n[1..]),
        Some(&c) => n.first() == Some(&c) && matches(&p[1..], &n[1..]),
    }
}

/// Parses a class body after `[`; returns a predicate and how many pattern chars it used
/// (including the closing `]`).
fn class(p: &[char]) -> Option<(impl Fn(char) -> bool, usize)> {
    let mut i = 0;
    let negate = p.first() == Some(&'^');
    if negate {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        let lo = take(p, &mut i)?;
        if lo == ']' && (!ranges.is_empty() || i > 1 + usize::from(negate)) {
            break;
        }
        let lo = if lo == '\\' { take(p, &mut i)? } else { lo };
        let hi = if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|c| *c != ']') {
            i += 1;
            let h = take(p, &mut i)?;
            if h == '\\' { take(p, &mut i)? } else { h }
        } else {
            lo
        };
        ranges.push((lo, hi));
    }
    Some((
        move |c: char| ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != negate,
        i,
    ))
}

fn take(p: &[char], i: &mut usize) -> Option<char> {
    let c = p.get(*i).copied();
    *i += 1;
    c
}

#[cfg(test)]
mod tests {
    use super::path_match;

    #[test]
    fn table() {
        let cases = [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abe", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a/b", false),
            ("*.corp.example", "git.corp.example", true),
            ("[", "a", false),
        ];
        for (p, n, want) in cases {
            assert_eq!(path_match(p, n), want, "{p} ~ {n}");
        }
    }
}
