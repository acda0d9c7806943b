//! The case encoding of module paths and versions.
//!
//! Module paths and versions may contain upper-case letters, but URLs and file systems are not
//! reliably case-sensitive. The protocol therefore writes every upper-case letter as `!` followed by
//! the lower-case letter (`github.com/BurntSushi` becomes `github.com/!burnt!sushi`). An escaped
//! string contains no upper case at all; a `!` must always be followed by `a`-`z`.

use std::borrow::Cow;

use thiserror::Error;

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
pub fn escape_case(s: &str) -> Result<Cow<'_, str>, CaseError> {
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
pub fn unescape_case(s: &str) -> Result<Cow<'_, str>, CaseError> {
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
}
