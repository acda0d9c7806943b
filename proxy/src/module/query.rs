//! The version part of an `.info` request: a canonical version or a query to resolve.

use std::fmt;

use super::version::{Version, VersionError, VersionReason, check_version_text};

/// Words the `go` command treats as queries with their own meaning. They never reach `.info`
/// from a real client (it uses `@latest` and `list` for them), and resolving them as if they
/// were refs would answer and cache the wrong thing, so they are rejected.
pub const QUERY_WORDS: [&str; 3] = ["latest", "upgrade", "patch"];

/// What an `.info` request asks for.
///
/// A canonical version is looked up as it is. Anything else that could name a git ref or
/// commit — a branch (`master`), a tag (`v1.2`, which is not canonical), a commit hash prefix —
/// is a query that the server resolves upstream to a canonical (often pseudo-) version.
///
/// A query is accepted only if it is a plausible ref name and harmless as an argument:
/// at most [`MAX_VERSION_LEN`](super::MAX_VERSION_LEN) bytes, only `[A-Za-z0-9._+-]` (no `/`:
/// the `go` command cannot send one either, x/mod `EscapeVersion` rejects it), not starting
/// with `-` or `.`, no `..`, not ending with `.` or `.lock`, no Windows reserved name, and not
/// one of [`QUERY_WORDS`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VersionQuery {
    Version(Version),
    Query(String),
}

impl VersionQuery {
    /// Classifies a decoded (case-unescaped) version string.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        check_version_text(s).map_err(|r| VersionError::new(s, r))?;
        if let Ok(v) = Version::parse(s) {
            return Ok(Self::Version(v));
        }
        check_query(s).map_err(|r| VersionError::new(s, r))?;
        Ok(Self::Query(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Version(v) => v.as_str(),
            Self::Query(q) => q,
        }
    }

    /// The canonical version, if this is one.
    pub fn version(&self) -> Option<&Version> {
        match self {
            Self::Version(v) => Some(v),
            Self::Query(_) => None,
        }
    }
}

impl fmt::Display for VersionQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn check_query(q: &str) -> Result<(), VersionReason> {
    if let Some(c @ ('-' | '.')) = q.chars().next() {
        return Err(VersionReason::Leading(c));
    }
    if let Some(c) = q
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')))
    {
        return Err(VersionReason::InvalidChar(c));
    }
    if q.contains("..") {
        return Err(VersionReason::DoubleDot);
    }
    if q.ends_with(".lock") {
        return Err(VersionReason::LockSuffix);
    }
    if QUERY_WORDS.contains(&q) {
        return Err(VersionReason::QueryWord(q.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::MAX_VERSION_LEN;
    use super::*;

    #[test]
    fn canonical_versions_are_versions() {
        for s in [
            "v1.2.3",
            "v0.0.0-20190620200207-3b0461eec859",
            "v2.0.0+incompatible",
        ] {
            assert_eq!(
                VersionQuery::parse(s).unwrap(),
                VersionQuery::Version(Version::parse(s).unwrap())
            );
        }
    }

    #[test]
    fn queries() {
        let ok = [
            "master",
            "main",
            "HEAD",
            "3b0461eec859",
            "3b0461e",
            "v1",
            "v1.2",
            "v1.2.3+build",
            "v01.2.3",
            "release-1.0",
            "feature_x",
            "1.2.3",
            "a+b",
            "Latest",
        ];
        for s in ok {
            assert_eq!(
                VersionQuery::parse(s).unwrap(),
                VersionQuery::Query(s.to_owned()),
                "{s:?}"
            );
        }
    }

    #[test]
    fn rejected_queries() {
        use VersionReason::*;
        let long = "a".repeat(MAX_VERSION_LEN + 1);
        let table: Vec<(&str, VersionReason)> = vec![
            ("", Empty),
            (&long, TooLong(MAX_VERSION_LEN + 1)),
            ("-x", Leading('-')),
            ("--upload-pack=evil", Leading('-')),
            ("-", Leading('-')),
            (".x", Leading('.')),
            ("..", DotsOnly),
            ("a..b", DoubleDot),
            ("x.", TrailingDot),
            ("x.lock", LockSuffix),
            ("a/b", InvalidChar('/')),
            ("a b", InvalidChar(' ')),
            ("a~1", InvalidChar('~')),
            ("a@{1}", InvalidChar('@')),
            ("a$b", InvalidChar('$')),
            ("a;b", InvalidChar(';')),
            ("a\nb", InvalidChar('\n')),
            ("a:b", InvalidChar(':')),
            ("é", InvalidChar('é')),
            ("nul", WindowsName("nul".into())),
            ("latest", QueryWord("latest".into())),
            ("upgrade", QueryWord("upgrade".into())),
            ("patch", QueryWord("patch".into())),
        ];
        for (s, want) in table {
            assert_eq!(
                VersionQuery::parse(s).map_err(|e| e.reason),
                Err(want),
                "{s:?}"
            );
        }
    }
}
