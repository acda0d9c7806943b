//! The case encoding of module paths and versions.
//!
//! Module paths and versions may contain upper-case letters, but URLs and file systems are not
//! reliably case-sensitive. The protocol therefore writes every upper-case letter as `!` followed by
//! the lower-case letter (`github.com/BurntSushi` becomes `github.com/!burnt!sushi`). An escaped
//! string contains no upper case at all; a `!` must always be followed by `a`-`z`.

use std::borrow::Cow;

use thiserror::Error;

use super::path::{PathError, PathReason, check_path};
use super::version::{VersionError, VersionReason, check_version_text};

/// Why a string is not in (or cannot be put into) the `!x` case encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CaseError {
    /// Raw upper case in an escaped string.
    #[error("upper case must be escaped as !{}", .0.to_ascii_lowercase())]
    UpperCase(char),
    /// `!` followed by something other than `a`-`z`.
    #[error("'!' must be followed by a lower-case letter, not {0:?}")]
    BangNotLower(char),
    /// `!` at the very end.
    #[error("trailing '!'")]
    TrailingBang,
    /// Anything outside ASCII.
    #[error("non-ASCII character {0:?}")]
    NonAscii(char),
    /// A `!` in a string that is about to be escaped (it would be ambiguous).
    #[error("'!' is not allowed")]
    Bang,
}

/// Writes upper-case letters as `!` + lower case. Borrows when there is nothing to do.
pub(crate) fn escape_case(s: &str) -> Result<Cow<'_, str>, CaseError> {
    let mut upper = false;
    for c in s.chars() {
        if c == '!' {
            return Err(CaseError::Bang);
        }
        if !c.is_ascii() {
            return Err(CaseError::NonAscii(c));
        }
        upper |= c.is_ascii_uppercase();
    }
    if !upper {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    Ok(Cow::Owned(out))
}

/// Undoes [`escape_case`]. Rejects raw upper case, a `!` not followed by `a`-`z`, a trailing `!`
/// and non-ASCII. Borrows when there is no `!`.
pub(crate) fn unescape_case(s: &str) -> Result<Cow<'_, str>, CaseError> {
    if let Some(c) = s.chars().find(|c| !c.is_ascii()) {
        return Err(CaseError::NonAscii(c));
    }
    if let Some(c) = s.chars().find(char::is_ascii_uppercase) {
        return Err(CaseError::UpperCase(c));
    }
    if !s.contains('!') {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '!' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(l) if l.is_ascii_lowercase() => out.push(l.to_ascii_uppercase()),
            Some(other) => return Err(CaseError::BangNotLower(other)),
            None => return Err(CaseError::TrailingBang),
        }
    }
    Ok(Cow::Owned(out))
}

/// The escaped form of a module path. Fails if the path is not a valid module path
/// (like x/mod `module.EscapePath`).
pub fn escape_path(path: &str) -> Result<String, PathError> {
    check_path(path)?;
    escape_case(path)
        .map(Cow::into_owned)
        .map_err(|e| PathError::new(path, PathReason::Case(e)))
}

/// The module path for an escaped path. Fails if the encoding is broken or the result is not a
/// valid module path (like x/mod `module.UnescapePath`).
pub fn unescape_path(escaped: &str) -> Result<String, PathError> {
    let path = unescape_case(escaped).map_err(|e| PathError::new(escaped, PathReason::Case(e)))?;
    check_path(&path)?;
    Ok(path.into_owned())
}

/// The escaped form of a version (or of a query such as a branch name). Like x/mod
/// `module.EscapeVersion`, the version need not be semantic but must be a plausible file name
/// and must not contain `!`.
pub fn escape_version(v: &str) -> Result<String, VersionError> {
    check_version_text(v).map_err(|r| VersionError::new(v, r))?;
    escape_case(v)
        .map(Cow::into_owned)
        .map_err(|e| VersionError::new(v, VersionReason::Case(e)))
}

/// The version for an escaped version (like x/mod `module.UnescapeVersion`): the case encoding
/// must be intact and the result must be a plausible file name.
pub fn unescape_version(escaped: &str) -> Result<String, VersionError> {
    let v =
        unescape_case(escaped).map_err(|e| VersionError::new(escaped, VersionReason::Case(e)))?;
    check_version_text(&v).map_err(|r| VersionError::new(&v, r))?;
    Ok(v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_round_trips() {
        let table = [
            ("", ""),
            ("abc", "abc"),
            ("github.com/BurntSushi/toml", "github.com/!burnt!sushi/toml"),
            ("ABC", "!a!b!c"),
            ("v1.0.0-RC1", "v1.0.0-!r!c1"),
            ("a~b_c-d.e", "a~b_c-d.e"),
        ];
        for (plain, escaped) in table {
            assert_eq!(escape_case(plain).unwrap(), escaped, "escape {plain:?}");
            assert_eq!(
                unescape_case(escaped).unwrap(),
                plain,
                "unescape {escaped:?}"
            );
        }
    }

    #[test]
    fn escape_borrows_when_unchanged() {
        assert!(matches!(
            escape_case("golang.org/x/text"),
            Ok(Cow::Borrowed(_))
        ));
        assert!(matches!(
            unescape_case("golang.org/x/text"),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn escape_case_rejects() {
        assert_eq!(escape_case("a!b"), Err(CaseError::Bang));
        assert_eq!(escape_case("aé"), Err(CaseError::NonAscii('é')));
    }

    #[test]
    fn unescape_case_rejects() {
        let table = [
            ("Foo", CaseError::UpperCase('F')),
            ("foo/Bar", CaseError::UpperCase('B')),
            ("!", CaseError::TrailingBang),
            ("foo!", CaseError::TrailingBang),
            ("!!a", CaseError::BangNotLower('!')),
            ("!A", CaseError::UpperCase('A')),
            ("!1", CaseError::BangNotLower('1')),
            ("!/", CaseError::BangNotLower('/')),
            ("fé", CaseError::NonAscii('é')),
        ];
        for (input, want) in table {
            assert_eq!(unescape_case(input), Err(want), "{input:?}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            escape_path("github.com/BurntSushi/toml").unwrap(),
            "github.com/!burnt!sushi/toml"
        );
        assert_eq!(
            unescape_path("github.com/!burnt!sushi/toml").unwrap(),
            "github.com/BurntSushi/toml"
        );
        assert_eq!(
            escape_path("golang.org/x/text").unwrap(),
            "golang.org/x/text"
        );
        // Escaping validates first.
        assert!(escape_path("Example.com/x").is_err());
        assert!(escape_path("example.com/x!y").is_err());
        // Unescaping validates the result: upper case in the domain is still invalid.
        assert!(unescape_path("!example.com/x").is_err());
        assert!(unescape_path("example.com/x/").is_err());
    }

    #[test]
    fn path_error_message() {
        let err = unescape_path("Foo/bar").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid module path \"Foo/bar\": upper case must be escaped as !f"
        );
    }

    #[test]
    fn versions() {
        let ok = [
            ("v1.0.0", "v1.0.0"),
            ("v1.0.0-RC1", "v1.0.0-!r!c1"),
            ("master", "master"),
            ("Feature-X", "!feature-!x"),
            ("v1.2.3+incompatible", "v1.2.3+incompatible"),
        ];
        for (plain, escaped) in ok {
            assert_eq!(escape_version(plain).unwrap(), escaped, "escape {plain:?}");
            assert_eq!(
                unescape_version(escaped).unwrap(),
                plain,
                "unescape {escaped:?}"
            );
        }
        let bad_plain = [
            "", "a!b", "a/b", "..", "x.", "con", "Aux.txt", "a*b", "a\"b",
        ];
        for v in bad_plain {
            assert!(escape_version(v).is_err(), "escape {v:?}");
        }
        let bad_escaped = ["V1.0.0", "v1!", "v1!0", "", "a/b", "!c!o!n", "x."];
        for v in bad_escaped {
            assert!(unescape_version(v).is_err(), "unescape {v:?}");
        }
    }
}
