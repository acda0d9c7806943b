//! Version qualifiers of a filter rule (`v1.2`, `~v1.2.3`, `^v1.2.3`, `<v1.2.3`). Pure.

/// One comma-separated item of a rule's third token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Qualifier {
    /// `v0.1` (or `v0.1.*`): versions `v0.1.x`. Stored with the trailing `.` Athens appends.
    Prefix(String),
    /// `v0.4.1`: that version and its pre-release/build/pseudo variants, not `v0.4.10`.
    Exact(String),
    /// `~X.Y.Z`: same X.Y, patch at least Z.
    Tilde([u64; 3]),
    /// `^X.Y.Z`: same X, at least Y.Z.
    Caret([u64; 3]),
    /// `<X.Y.Z`: at most X.Y.Z (inclusive, as Athens's code does).
    AtMost([u64; 3]),
    /// An operator qualifier Athens parses but that can never match (`~1.2`): kept so the file
    /// loads as it does in Athens.
    Never,
}

impl Qualifier {
    /// Parses one item; `None` for an empty item (Athens crashes on those).
    pub fn parse(item: &str) -> Option<Self> {
        let q = item.trim().trim_end_matches('*');
        let first = q.chars().next()?;
        let op = match first {
            '~' | '^' | '<' => first,
            _ => {
                let q = q.trim_end_matches('.');
                if q.is_empty() {
                    return None;
                }
                return Some(if q.matches('.').count() >= 2 {
                    Self::Exact(q.to_string())
                } else {
                    Self::Prefix(format!("{q}."))
                });
            }
        };
        // Athens's docs write `~1.2.3`; `~v1.2.3` reads naturally too: both mean the same here.
        let rest = q[1..].strip_prefix('v').unwrap_or(&q[1..]);
        let Some(n) = release(rest) else {
            return Some(Self::Never);
        };
        Some(match op {
            '~' => Self::Tilde(n),
            '^' => Self::Caret(n),
            _ => Self::AtMost(n),
        })
    }

    /// Whether `version` (canonical, `v`-prefixed) is covered.
    pub fn matches(&self, version: &str) -> bool {
        match self {
            Self::Prefix(p) => version.starts_with(p.as_str()),
            Self::Exact(e) => version
                .strip_prefix(e.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '+'])),
            Self::Never => false,
            Self::Tilde(q) | Self::Caret(q) | Self::AtMost(q) => {
                // As Athens: only plain releases compare (a pre-release has no numeric patch).
                let Some(v) = version.strip_prefix('v').and_then(release) else {
                    return false;
                };
                match self {
                    Self::Tilde(_) => v[0] == q[0] && v[1] == q[1] && v[2] >= q[2],
                    Self::Caret(_) => v[0] == q[0] && (v[1], v[2]) >= (q[1], q[2]),
                    _ => v <= *q,
                }
            }
        }
    }
}

/// `X.Y.Z` with every part a number, else `None`.
fn release(s: &str) -> Option<[u64; 3]> {
    let mut parts = s.split('.');
    let mut out = [0u64; 3];
    for slot in &mut out {
        *slot = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::Qualifier;

    #[test]
    fn table() {
        let cases = [
            ("v0.1", "v0.1.0", true),
            ("v0.1", "v0.1.9-pre", true),
            ("v0.1", "v0.10.0", false),
            ("v0.1.*", "v0.1.3", true),
            ("v1", "v1.4.0", true),
            ("v1", "v10.0.0", false),
            ("v0.4.1", "v0.4.1", true),
            ("v0.4.1", "v0.4.1-rc.1", true),
            // Athens matched this by plain string prefix; fixed.
            ("v0.4.1", "v0.4.10", false),
            ("~v1.2.3", "v1.2.3", true),
            ("~v1.2.3", "v1.2.9", true),
            ("~v1.2.3", "v1.2.2", false),
            ("~v1.2.3", "v1.3.0", false),
            ("~1.2.3", "v1.2.4", true),
            ("^v1.2.3", "v1.9.0", true),
            ("^v1.2.3", "v1.2.2", false),
            ("^v1.2.3", "v1.2.3", true),
            ("^v1.2.3", "v2.0.0", false),
            ("<v1.2.3", "v1.2.3", true),
            ("<v1.2.3", "v0.58.9", true),
            ("<v1.2.3", "v1.2.4", false),
            ("<v1.2.3", "v1.2.0-rc.1", false),
            ("~1.2", "v1.2.0", false),
        ];
        for (q, v, want) in cases {
            let parsed = Qualifier::parse(q).unwrap();
            assert_eq!(parsed.matches(v), want, "{q} ~ {v}");
        }
        assert_eq!(Qualifier::parse(""), None);
        assert_eq!(Qualifier::parse("*"), None);
    }
}
