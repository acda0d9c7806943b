//! Module paths, validated by the rules of x/mod `module.CheckPath`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::escape::{CaseError, escape_case, unescape_case};
use super::quote::quote;
use super::windows::reserved_name;

/// The longest module path we accept, in bytes (decoded, before case escaping).
///
/// The protocol sets no limit; this is ours. Stored objects are keyed
/// `<escaped path>/@v/<escaped version>.<ext>`, and S3, GCS and Azure all cap object keys at
/// 1024 bytes. Escaping at most doubles a string, so the worst key is
/// `2 * 300 + 4 + 2 * MAX_VERSION_LEN + 5` = 865 bytes, which leaves room for a configured bucket
/// prefix. Real module paths are far shorter (a long one is under 100 bytes).
pub const MAX_PATH_LEN: usize = 300;

/// A valid module path (decoded: `github.com/BurntSushi/toml`, not the escaped form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModulePath(String);

impl ModulePath {
    /// Validates a decoded module path.
    pub fn new(path: impl Into<String>) -> Result<Self, PathError> {
        let path = path.into();
        check_path(&path)?;
        Ok(Self(path))
    }

    /// Undoes the case encoding and validates.
    pub fn from_escaped(escaped: &str) -> Result<Self, PathError> {
        unescape_path(escaped).map(Self)
    }

    /// The decoded path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path with upper case written as `!x`, as used in URLs and storage keys.
    pub fn escaped(&self) -> Cow<'_, str> {
        // A validated path is ASCII and has no '!', so escaping cannot fail.
        escape_case(&self.0).unwrap_or(Cow::Borrowed(&self.0))
    }

    /// The major-version suffix as x/mod `SplitPathVersion` reports it: `/v2` for
    /// `example.com/m/v2`, `.v3` for `gopkg.in/yaml.v3`, `.v1-unstable` for
    /// `gopkg.in/x.v1-unstable`; `None` for paths without one (major v0 or v1).
    pub fn major_suffix(&self) -> Option<&str> {
        split_path_major(&self.0)
            .ok()
            .map(|(_, major)| major)
            .filter(|m| !m.is_empty())
    }

    /// The major version the suffix demands (`v2`, `v3`, ...), without separator or `-unstable`.
    pub fn major(&self) -> Option<&str> {
        self.major_suffix().map(|m| {
            let m = &m[1..];
            m.strip_suffix("-unstable").unwrap_or(m)
        })
    }

    /// The path without its major-version suffix.
    pub fn prefix(&self) -> &str {
        split_path_major(&self.0).map_or(&self.0, |(prefix, _)| prefix)
    }

    /// Whether the path is a `gopkg.in/` path (with its own major-version convention).
    pub fn is_gopkg_in(&self) -> bool {
        self.0.starts_with("gopkg.in/")
    }
}

impl FromStr for ModulePath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for ModulePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ModulePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An invalid module path and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid module path {}: {reason}", quote(path))]
pub struct PathError {
    pub path: String,
    pub reason: PathReason,
}

impl PathError {
    pub(crate) fn new(path: &str, reason: PathReason) -> Self {
        Self {
            path: path.to_owned(),
            reason,
        }
    }
}

/// Why a module path is invalid (messages follow x/mod's wording where it has one).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PathReason {
    #[error("empty string")]
    Empty,
    #[error("too long ({0} bytes, limit {MAX_PATH_LEN})")]
    TooLong(usize),
    #[error("leading slash")]
    LeadingSlash,
    #[error("leading dash")]
    LeadingDash,
    #[error("double slash")]
    DoubleSlash,
    #[error("trailing slash")]
    TrailingSlash,
    #[error("invalid path element {0:?}")]
    DotsOnly(String),
    #[error("leading dot in path element")]
    LeadingDot,
    #[error("trailing dot in path element")]
    TrailingDot,
    #[error("invalid char {0:?}")]
    InvalidChar(char),
    #[error("{0:?} disallowed as path element component on Windows")]
    WindowsName(String),
    #[error("trailing tilde and digits in path element")]
    ShortName,
    #[error("missing dot in first path element")]
    MissingDot,
    #[error("invalid char {0:?} in first path element")]
    FirstElementChar(char),
    #[error("invalid major version suffix {0:?} (want /vN with N >= 2, no leading zero)")]
    MajorSuffix(String),
    #[error("gopkg.in path must end in .vN")]
    GopkgIn,
    #[error("{0}")]
    Case(#[from] CaseError),
}

/// Checks a decoded module path against x/mod `module.CheckPath`, plus [`MAX_PATH_LEN`].
pub fn check_path(path: &str) -> Result<(), PathError> {
    check_path_reason(path).map_err(|r| PathError::new(path, r))
}

fn check_path_reason(path: &str) -> Result<(), PathReason> {
    if path.is_empty() {
        return Err(PathReason::Empty);
    }
    if path.len() > MAX_PATH_LEN {
        return Err(PathReason::TooLong(path.len()));
    }
    if path.starts_with('/') {
        return Err(PathReason::LeadingSlash);
    }
    if path.starts_with('-') {
        return Err(PathReason::LeadingDash);
    }
    if path.contains("//") {
        return Err(PathReason::DoubleSlash);
    }
    if path.ends_with('/') {
        return Err(PathReason::TrailingSlash);
    }
    for elem in path.split('/') {
        check_element(elem)?;
    }
    let first = path.split('/').next().unwrap_or(path);
    if !first.contains('.') {
        return Err(PathReason::MissingDot);
    }
    if let Some(c) = first
        .chars()
        .find(|&c| !(c == '-' || c == '.' || c.is_ascii_digit() || c.is_ascii_lowercase()))
    {
        return Err(PathReason::FirstElementChar(c));
    }
    split_path_major(path).map(|_| ())
}

/// One module path element (x/mod `checkElem` for module paths).
fn check_element(elem: &str) -> Result<(), PathReason> {
    if elem.is_empty() {
        return Err(PathReason::DoubleSlash);
    }
    if elem.bytes().all(|b| b == b'.') {
        return Err(PathReason::DotsOnly(elem.to_owned()));
    }
    if elem.starts_with('.') {
        return Err(PathReason::LeadingDot);
    }
    if elem.ends_with('.') {
        return Err(PathReason::TrailingDot);
    }
    if let Some(c) = elem
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')))
    {
        return Err(PathReason::InvalidChar(c));
    }
    if let Some(short) = reserved_name(elem) {
        return Err(PathReason::WindowsName(short.to_owned()));
    }
    // Windows short names (`PROGRA~1`): the part before the first dot must not end in `~digits`.
    let short = elem.split('.').next().unwrap_or(elem);
    if let Some(tilde) = short.rfind('~') {
        let digits = &short[tilde + 1..];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PathReason::ShortName);
        }
    }
    Ok(())
}

/// x/mod `SplitPathVersion`: `(prefix, pathMajor)` with `prefix + pathMajor == path`, where
/// pathMajor is empty, `/vN` (N >= 2, no leading zero) or, for gopkg.in, `.vN[-unstable]`.
/// An error for a final element that looks like a major version but breaks the rules
/// (`/v0`, `/v1`, `/v02`, `/v1.2`, a gopkg.in path without `.vN`).
pub(crate) fn split_path_major(path: &str) -> Result<(&str, &str), PathReason> {
    if path.starts_with("gopkg.in/") {
        return split_gopkg_in(path);
    }
    let b = path.as_bytes();
    let mut i = b.len();
    let mut dot = false;
    while i > 0 && (b[i - 1].is_ascii_digit() || b[i - 1] == b'.') {
        dot |= b[i - 1] == b'.';
        i -= 1;
    }
    if i <= 1 || i == b.len() || b[i - 1] != b'v' || b[i - 2] != b'/' {
        return Ok((path, ""));
    }
    let (prefix, major) = path.split_at(i - 2);
    if dot || major.len() <= 2 || major.as_bytes()[2] == b'0' || major == "/v1" {
        return Err(PathReason::MajorSuffix(major.to_owned()));
    }
    Ok((prefix, major))
}

fn split_gopkg_in(path: &str) -> Result<(&str, &str), PathReason> {
    let b = path.as_bytes();
    let mut i = path.strip_suffix("-unstable").unwrap_or(path).len();
    while i > 0 && b[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i <= 1 || b[i - 1] != b'v' || b[i - 2] != b'.' {
        return Err(PathReason::GopkgIn);
    }
    let (prefix, major) = path.split_at(i - 2);
    // Stricter than x/mod in one case: `gopkg.in/x.v-unstable` (no digits) passes x/mod's
    // CheckPath, but no version can ever match it, so it is rejected here.
    if major.len() <= 2
        || !major.as_bytes()[2].is_ascii_digit()
        || (major.as_bytes()[2] == b'0' && major != ".v0")
    {
        return Err(PathReason::GopkgIn);
    }
    Ok((prefix, major))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(path: &str) -> Option<PathReason> {
        check_path(path).err().map(|e| e.reason)
    }

    #[test]
    fn valid_paths() {
        let ok = [
            "x.y",
            "x.y/z",
            "example.com",
            "example.com/m",
            "github.com/google/uuid",
            "golang.org/x/text",
            "github.com/BurntSushi/toml",
            "example.com/a-b_c~d.e",
            "example.com/a..b", // two dots inside an element are fine (x/mod agrees)
            "example.com/~",
            "example.com/x~",
            "example.com/x~y",
            "example.com/x~1y",
            "example.com/x.y~1", // the tilde rule only looks before the first dot
            "example.com/v",
            "example.com/v2",
            "example.com/m/v2",
            "example.com/m/v10",
            "example.com/m/v2/sub",
            "example.com/v1x",
            "example.com/m.v1",
            "example.com/conx",
            "example.com/com0",
            "example.com/com10",
            "example.com/lpt",
            "1.2.3.4/m",
            "a-b.c/d",
            "example.com/.well", // leading dot would fail; check it below
        ];
        for p in &ok[..ok.len() - 1] {
            assert_eq!(reason(p), None, "{p:?}");
        }
        assert_eq!(reason(ok[ok.len() - 1]), Some(PathReason::LeadingDot));
    }

    #[test]
    fn invalid_paths() {
        use PathReason::*;
        let table: Vec<(&str, PathReason)> = vec![
            ("", Empty),
            ("/example.com/m", LeadingSlash),
            ("-example.com/m", LeadingDash),
            ("example.com//m", DoubleSlash),
            ("example.com/m/", TrailingSlash),
            ("example.com/", TrailingSlash),
            ("example.com/./m", DotsOnly(".".into())),
            ("example.com/../m", DotsOnly("..".into())),
            ("example.com/..", DotsOnly("..".into())),
            ("example.com/...", DotsOnly("...".into())),
            ("example.com/.m", LeadingDot),
            ("example.com/m.", TrailingDot),
            ("example.com./m", TrailingDot),
            (".example.com/m", LeadingDot),
            ("example.com/m n", InvalidChar(' ')),
            ("example.com/m+n", InvalidChar('+')),
            ("example.com/m@v1", InvalidChar('@')),
            ("example.com/m!n", InvalidChar('!')),
            ("example.com/m%20", InvalidChar('%')),
            ("example.com/m\\n", InvalidChar('\\')),
            ("example.com/m:n", InvalidChar(':')),
            ("example.com/é", InvalidChar('é')),
            ("example.com/m\u{0}", InvalidChar('\u{0}')),
            ("example.com/con", WindowsName("con".into())),
            ("example.com/CON", WindowsName("CON".into())),
            ("example.com/Aux", WindowsName("Aux".into())),
            ("example.com/nul.txt", WindowsName("nul".into())),
            ("example.com/prn.a.b", WindowsName("prn".into())),
            ("example.com/com1", WindowsName("com1".into())),
            ("example.com/com1.txt", WindowsName("com1".into())),
            ("example.com/COM9", WindowsName("COM9".into())),
            ("example.com/lpt5", WindowsName("lpt5".into())),
            ("example.com/LpT9.go", WindowsName("LpT9".into())),
            ("example.com/x~1", ShortName),
            ("example.com/x~123.y", ShortName),
            ("example.com/~1", ShortName),
            ("example.com/PROGRA~1", ShortName),
            ("example", MissingDot),
            ("example/m", MissingDot),
            ("localhost/m", MissingDot),
            ("Example.com/m", FirstElementChar('E')),
            ("example_x.com/m", FirstElementChar('_')),
            ("example~.com/m", FirstElementChar('~')),
            ("example.com/m/v0", MajorSuffix("/v0".into())),
            ("example.com/m/v1", MajorSuffix("/v1".into())),
            ("example.com/v1", MajorSuffix("/v1".into())),
            ("example.com/m/v01", MajorSuffix("/v01".into())),
            ("example.com/m/v1.2", MajorSuffix("/v1.2".into())),
            ("example.com/m/v2.0", MajorSuffix("/v2.0".into())),
            ("example.com/m/v2.", TrailingDot),
            ("gopkg.in/yaml", GopkgIn),
            ("gopkg.in/yaml.v", GopkgIn),
            ("gopkg.in/v2", GopkgIn),
            ("gopkg.in/yaml.v01", GopkgIn),
            ("gopkg.in/yaml.v0-unstable", GopkgIn),
            ("gopkg.in/yaml-unstable", GopkgIn),
            ("gopkg.in/yaml.v-unstable", GopkgIn), // x/mod accepts this one; see split_gopkg_in
            ("gopkg.in/yaml.v2/sub", GopkgIn),
        ];
        for (path, want) in table {
            assert_eq!(reason(path), Some(want), "{path:?}");
        }
    }

    #[test]
    fn length_limit() {
        let at_limit = format!("example.com/{}", "a".repeat(MAX_PATH_LEN - 12));
        assert_eq!(at_limit.len(), MAX_PATH_LEN);
        assert_eq!(reason(&at_limit), None);
        let over = format!("{at_limit}b");
        assert_eq!(reason(&over), Some(PathReason::TooLong(MAX_PATH_LEN + 1)));
        let huge = format!("example.com/{}", "a/".repeat(100_000));
        assert_eq!(reason(&huge), Some(PathReason::TooLong(huge.len())));
        // The message does not echo the whole input.
        assert!(check_path(&huge).unwrap_err().to_string().len() < 200);
    }

    #[test]
    fn major_suffixes() {
        let table = [
            ("example.com/m", None, None, "example.com/m"),
            ("example.com/m/v2", Some("/v2"), Some("v2"), "example.com/m"),
            ("example.com/m/v2/x", None, None, "example.com/m/v2/x"),
            (
                "example.com/m/v123",
                Some("/v123"),
                Some("v123"),
                "example.com/m",
            ),
            ("gopkg.in/yaml.v3", Some(".v3"), Some("v3"), "gopkg.in/yaml"),
            ("gopkg.in/yaml.v0", Some(".v0"), Some("v0"), "gopkg.in/yaml"),
            ("gopkg.in/yaml.v1", Some(".v1"), Some("v1"), "gopkg.in/yaml"),
            (
                "gopkg.in/user/pkg.v2",
                Some(".v2"),
                Some("v2"),
                "gopkg.in/user/pkg",
            ),
            (
                "gopkg.in/x.v1-unstable",
                Some(".v1-unstable"),
                Some("v1"),
                "gopkg.in/x",
            ),
            ("example.com/m.v2", None, None, "example.com/m.v2"),
        ];
        for (path, suffix, major, prefix) in table {
            let p = ModulePath::new(path).unwrap();
            assert_eq!(p.major_suffix(), suffix, "{path:?}");
            assert_eq!(p.major(), major, "{path:?}");
            assert_eq!(p.prefix(), prefix, "{path:?}");
        }
    }

    #[test]
    fn escaped_and_from_escaped() {
        let p = ModulePath::new("github.com/BurntSushi/toml").unwrap();
        assert_eq!(p.escaped(), "github.com/!burnt!sushi/toml");
        assert_eq!(p.as_str(), "github.com/BurntSushi/toml");
        assert_eq!(
            ModulePath::from_escaped("github.com/!burnt!sushi/toml").unwrap(),
            p
        );
        assert_eq!(p.to_string(), "github.com/BurntSushi/toml");
        assert!(ModulePath::from_escaped("github.com/BurntSushi/toml").is_err());
        assert!(matches!(
            ModulePath::new("golang.org/x/text").unwrap().escaped(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn messages() {
        let e = |p: &str| check_path(p).unwrap_err().to_string();
        assert_eq!(
            e("example.com/m/v1"),
            "invalid module path \"example.com/m/v1\": invalid major version suffix \"/v1\" (want /vN with N >= 2, no leading zero)"
        );
        assert_eq!(
            e("example.com/com1.txt"),
            "invalid module path \"example.com/com1.txt\": \"com1\" disallowed as path element component on Windows"
        );
        assert_eq!(
            e("example/m"),
            "invalid module path \"example/m\": missing dot in first path element"
        );
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
}
