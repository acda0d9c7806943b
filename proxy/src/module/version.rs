//! Canonical semantic versions as the module system uses them.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::escape::{CaseError, escape_case, unescape_case};
use super::quote::quote;
use super::windows::reserved_name;

/// The longest version or query we accept, in bytes (decoded).
///
/// Pseudo-versions are about 50 bytes (`v1.2.4-0.20191109021931-daa7c04131f5+incompatible`);
/// tags and branch names beyond 128 bytes are not something a proxy needs to serve. See
/// [`MAX_PATH_LEN`](super::MAX_PATH_LEN) for how this bounds storage keys.
pub const MAX_VERSION_LEN: usize = 128;

/// A canonical semantic version: `vMAJOR.MINOR.PATCH`, optionally `-prerelease`, optionally
/// `+incompatible` (the only build metadata the module system keeps). Shorthands such as `v1`
/// or `v1.2` and other build metadata are not canonical and rejected.
///
/// `Ord` is semantic-version precedence (`v1.0.0-rc.1 < v1.0.0 < v1.0.1`). Precedence ignores
/// build metadata, so to stay consistent with `Eq` ties are broken by the text:
/// `v2.0.0 < v2.0.0+incompatible` (a single module never has both).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    /// Parses a canonical version (decoded, not case-escaped).
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        if s.is_empty() {
            return Err(VersionError::new(s, VersionReason::Empty));
        }
        if s.len() > MAX_VERSION_LEN {
            return Err(VersionError::new(s, VersionReason::TooLong(s.len())));
        }
        let p = Semver::parse(s).ok_or_else(|| VersionError::new(s, VersionReason::NotSemver))?;
        if !p.build.is_empty() && p.build != "+incompatible" {
            return Err(VersionError::new(s, VersionReason::BuildMetadata));
        }
        if p.short {
            let canonical = p.canonical();
            return Err(VersionError::new(s, VersionReason::NotCanonical(canonical)));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The version with upper case written as `!x` (prereleases may contain upper case).
    pub fn escaped(&self) -> Cow<'_, str> {
        // A canonical version is ASCII without '!', so escaping cannot fail.
        escape_case(&self.0).unwrap_or(Cow::Borrowed(&self.0))
    }

    /// The major version: `v0`, `v1`, `v2`, ...
    pub fn major(&self) -> &str {
        let p = self.parts();
        &self.0[..1 + p.major.len()]
    }

    /// The prerelease including its `-`, or `""`.
    pub fn prerelease(&self) -> &str {
        self.parts().prerelease
    }

    /// Whether the version carries `+incompatible`.
    pub fn is_incompatible(&self) -> bool {
        self.0.ends_with("+incompatible")
    }

    /// Whether this is a pseudo-version (x/mod `module.IsPseudoVersion`), i.e. one of
    /// `vX.0.0-yyyymmddhhmmss-abcdef123456`, `vX.Y.(Z+1)-0.yyyymmddhhmmss-abcdef123456` or
    /// `vX.Y.Z-pre.0.yyyymmddhhmmss-abcdef123456`, each optionally `+incompatible`.
    pub fn is_pseudo(&self) -> bool {
        let p = self.parts();
        let Some(pre) = p.prerelease.strip_prefix('-') else {
            return false;
        };
        // The revision: after the last '-', one or more ASCII alphanumerics.
        let Some((head, rev)) = pre.rsplit_once('-') else {
            return false;
        };
        if rev.is_empty() || !rev.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return false;
        }
        // The 14-digit timestamp just before it.
        let Some(before) = head.len().checked_sub(14).map(|i| &head[..i]) else {
            return false;
        };
        if !head[before.len()..].bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        // Form 1: vX.0.0-<time>-<rev>.
        if before.is_empty() {
            return p.minor == "0" && p.patch == "0";
        }
        // Forms 2 and 3: ...-0.<time>-<rev> or ...-pre.0.<time>-<rev>.
        before == "0." || before.ends_with(".0.")
    }

    fn parts(&self) -> Semver<'_> {
        Semver::parse(&self.0).expect("Version always holds a valid semantic version")
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.parts(), other.parts());
        compare_int(a.major, b.major)
            .then_with(|| compare_int(a.minor, b.minor))
            .then_with(|| compare_int(a.patch, b.patch))
            .then_with(|| compare_prerelease(a.prerelease, b.prerelease))
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Version {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An invalid version (or query) and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid version {}: {reason}", quote(version))]
pub struct VersionError {
    pub version: String,
    pub reason: VersionReason,
}

impl VersionError {
    pub(crate) fn new(version: &str, reason: VersionReason) -> Self {
        Self {
            version: version.to_owned(),
            reason,
        }
    }
}

/// Why a version or query is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VersionReason {
    #[error("empty string")]
    Empty,
    #[error("too long ({0} bytes, limit {MAX_VERSION_LEN})")]
    TooLong(usize),
    #[error("not a semantic version")]
    NotSemver,
    #[error("not canonical (use {0})")]
    NotCanonical(String),
    #[error("build metadata other than +incompatible is not allowed")]
    BuildMetadata,
    #[error("invalid char {0:?}")]
    InvalidChar(char),
    #[error("must not be only dots")]
    DotsOnly,
    #[error("must not start with {0:?}")]
    Leading(char),
    #[error("must not end with '.'")]
    TrailingDot,
    #[error("must not contain \"..\"")]
    DoubleDot,
    #[error("must not end with \".lock\"")]
    LockSuffix,
    #[error("{0:?} disallowed on Windows")]
    WindowsName(String),
    #[error("{0:?} is a query word, not a version (use the @latest or list endpoints)")]
    QueryWord(String),
    #[error("{0}")]
    Case(#[from] CaseError),
}

/// The x/mod file-name rules a version must meet to be escaped or unescaped (`checkElem` with
/// file-path rules, ASCII only): non-empty, not only dots, no trailing dot, a restricted set of
/// ASCII punctuation, no Windows reserved names. Also enforces [`MAX_VERSION_LEN`].
pub(crate) fn check_version_text(v: &str) -> Result<(), VersionReason> {
    if v.is_empty() {
        return Err(VersionReason::Empty);
    }
    if v.len() > MAX_VERSION_LEN {
        return Err(VersionReason::TooLong(v.len()));
    }
    if v.bytes().all(|b| b == b'.') {
        return Err(VersionReason::DotsOnly);
    }
    if v.ends_with('.') {
        return Err(VersionReason::TrailingDot);
    }
    if let Some(c) = v
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "!#$%&()+,-.=@[]^_{}~ ".contains(c)))
    {
        return Err(VersionReason::InvalidChar(c));
    }
    if let Some(short) = reserved_name(v) {
        return Err(VersionReason::WindowsName(short.to_owned()));
    }
    Ok(())
}

/// The pieces of a semantic version, as slices of the input (x/mod `semver.parse`).
#[derive(Debug, Clone, Copy)]
struct Semver<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    /// With its leading `-`, or empty.
    prerelease: &'a str,
    /// With its leading `+`, or empty.
    build: &'a str,
    /// `v1` or `v1.2` shorthand.
    short: bool,
}

impl<'a> Semver<'a> {
    fn parse(v: &'a str) -> Option<Self> {
        let rest = v.strip_prefix('v')?;
        let (major, rest) = parse_int(rest)?;
        let mut p = Semver {
            major,
            minor: "0",
            patch: "0",
            prerelease: "",
            build: "",
            short: true,
        };
        if rest.is_empty() {
            return Some(p);
        }
        let (minor, rest) = parse_int(rest.strip_prefix('.')?)?;
        p.minor = minor;
        if rest.is_empty() {
            return Some(p);
        }
        let (patch, mut rest) = parse_int(rest.strip_prefix('.')?)?;
        p.patch = patch;
        p.short = false;
        if rest.starts_with('-') {
            let end = rest.find('+').unwrap_or(rest.len());
            p.prerelease = &rest[..end];
            rest = &rest[end..];
            if !idents_ok(&p.prerelease[1..], true) {
                return None;
            }
        }
        if let Some(build) = rest.strip_prefix('+') {
            p.build = rest;
            if !idents_ok(build, false) {
                return None;
            }
        } else if !rest.is_empty() {
            return None;
        }
        Some(p)
    }

    fn canonical(&self) -> String {
        format!(
            "v{}.{}.{}{}",
            self.major, self.minor, self.patch, self.prerelease
        )
    }
}

/// Leading decimal digits without a leading zero (a lone `0` is fine).
fn parse_int(s: &str) -> Option<(&str, &str)> {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let (n, rest) = s.split_at(end);
    if n.is_empty() || (n.len() > 1 && n.starts_with('0')) {
        return None;
    }
    Some((n, rest))
}

/// Dot-separated non-empty `[0-9A-Za-z-]` identifiers; for prereleases numeric identifiers must
/// not have leading zeros.
fn idents_ok(s: &str, prerelease: bool) -> bool {
    s.split('.').all(|id| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !(prerelease && is_num(id) && id.len() > 1 && id.starts_with('0'))
    })
}

fn is_num(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// Compares decimal strings without leading zeros (any length, no overflow).
fn compare_int(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Semantic-version prerelease precedence; arguments include their leading `-` or are empty.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut xs = a[1..].split('.');
    let mut ys = b[1..].split('.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = match (is_num(x), is_num(y)) {
                    (true, true) => compare_int(x, y),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
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

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn canonical_versions() {
        let ok = [
            "v0.0.0",
            "v1.2.3",
            "v10.20.30",
            "v1.0.0-alpha",
            "v1.0.0-alpha.1",
            "v1.0.0-0.3.7",
            "v1.0.0-x.7.z.92",
            "v1.0.0-x-y-z.--",
            "v1.0.0-RC1",
            "v2.0.0+incompatible",
            "v2.0.0-rc.1+incompatible",
            "v0.0.0-20190620200207-3b0461eec859",
            "v123456789012345678901234567890.0.0",
        ];
        for s in ok {
            assert_eq!(v(s).as_str(), s);
        }
    }

    #[test]
    fn rejected_versions() {
        use VersionReason::*;
        let table: Vec<(&str, VersionReason)> = vec![
            ("", Empty),
            ("1.2.3", NotSemver),
            ("V1.2.3", NotSemver),
            ("v", NotSemver),
            ("v1.", NotSemver),
            ("v1.2.", NotSemver),
            ("v1.2.3.4", NotSemver),
            ("v01.2.3", NotSemver),
            ("v1.02.3", NotSemver),
            ("v1.2.03", NotSemver),
            ("v1.2.3-", NotSemver),
            ("v1.2.3-01", NotSemver),
            ("v1.2.3-a..b", NotSemver),
            ("v1.2.3-a_b", NotSemver),
            ("v1.2.3+", NotSemver),
            ("v1.2.3+a..b", NotSemver),
            ("v1.2.3 ", NotSemver),
            ("-v1.2.3", NotSemver),
            ("latest", NotSemver),
            ("master", NotSemver),
            ("v1", NotCanonical("v1.0.0".into())),
            ("v1.2", NotCanonical("v1.2.0".into())),
            ("v1.2.3+build", BuildMetadata),
            ("v1.2.3+incompatible.1", BuildMetadata),
            ("v1.2+incompatible", NotSemver), // x/mod: shorthand takes no suffix
            ("v1.2.3-pre+meta", BuildMetadata),
        ];
        for (s, want) in table {
            assert_eq!(Version::parse(s).map_err(|e| e.reason), Err(want), "{s:?}");
        }
        let long = format!("v1.0.0-{}", "a".repeat(MAX_VERSION_LEN));
        assert_eq!(
            Version::parse(&long).unwrap_err().reason,
            TooLong(long.len())
        );
    }

    #[test]
    fn semver_precedence() {
        let ordered = [
            "v0.0.0-20190620200207-3b0461eec859",
            "v0.0.0",
            "v0.0.1",
            "v0.1.0",
            "v0.9.0",
            "v0.10.0",
            "v1.0.0-0.20200101000000-abcdefabcdef",
            "v1.0.0-1",
            "v1.0.0-2",
            "v1.0.0-10",
            "v1.0.0-alpha",
            "v1.0.0-alpha.1",
            "v1.0.0-alpha.beta",
            "v1.0.0-beta",
            "v1.0.0-beta.2",
            "v1.0.0-beta.11",
            "v1.0.0-rc.1",
            "v1.0.0",
            "v1.0.1",
            "v1.2.0",
            "v1.10.0",
            "v2.0.0",
            "v2.0.0+incompatible",
            "v10.0.0",
            "v99999999999999999999.0.0",
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(v(a).cmp(&v(b)), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn uppercase_prerelease_sorts_before_lowercase() {
        // ASCII order for alphanumeric identifiers.
        assert!(v("v1.0.0-RC") < v("v1.0.0-rc"));
    }

    #[test]
    fn pseudo_versions() {
        let yes = [
            "v0.0.0-20190620200207-3b0461eec859",
            "v1.0.0-20190620200207-3b0461eec859",
            "v2.0.0-20190620200207-3b0461eec859+incompatible",
            "v1.2.4-0.20191109021931-daa7c04131f5",
            "v1.2.4-0.20191109021931-daa7c04131f5+incompatible",
            "v1.2.3-pre.0.20191109021931-daa7c04131f5",
            "v1.2.3-rc.1.0.20191109021931-daa7c04131f5",
            "v1.2.3-pre.0.20191109021931-daa7c04131f5+incompatible",
        ];
        for s in yes {
            assert!(v(s).is_pseudo(), "{s}");
        }
        let no = [
            "v0.0.0",
            "v1.2.3",
            "v0.0.1-2019.2.3",
            "v1.2.3-pre",
            "v1.0.0-rc.1",
            "v1.2.3-20191109021931-daa7c04131f5", // form 1 needs .0.0
            "v1.2.4-1.20191109021931-daa7c04131f5",
            "v1.2.4-0.2019110902193-daa7c04131f5", // 13 digits
            "v1.2.4-0.201911090219311-daa7c04131f5", // 15 digits: ".0." not before it
            "v0.0.0-20190620200207",
            "v0.0.0-20190620200207-",
            "v0.0.0-2019062020020x-3b0461eec859",
            "v1.2.3-pre0.20191109021931-daa7c04131f5",
            "v1.2.3-x-0.20191109021931-daa7c04131f5",
        ];
        for s in no {
            if let Ok(ver) = Version::parse(s) {
                assert!(!ver.is_pseudo(), "{s}");
            }
        }
    }

    #[test]
    fn accessors() {
        let x = v("v2.3.4-RC.1+incompatible");
        assert_eq!(x.major(), "v2");
        assert_eq!(x.prerelease(), "-RC.1");
        assert!(x.is_incompatible());
        assert_eq!(x.escaped(), "v2.3.4-!r!c.1+incompatible");
        assert_eq!(v("v0.1.0").major(), "v0");
        assert_eq!(v("v12.0.0").major(), "v12");
        assert!(matches!(v("v1.0.0").escaped(), Cow::Borrowed(_)));
    }

    #[test]
    fn messages() {
        assert_eq!(
            Version::parse("v1.2").unwrap_err().to_string(),
            "invalid version \"v1.2\": not canonical (use v1.2.0)"
        );
        assert_eq!(
            Version::parse("v1.2.3+meta").unwrap_err().to_string(),
            "invalid version \"v1.2.3+meta\": build metadata other than +incompatible is not allowed"
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
