//! Turning a request path into a validated [`Request`].

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use thiserror::Error;

use super::major::{MajorError, check_path_major};
use super::path::{MAX_PATH_LEN, ModulePath, PathError};
use super::query::VersionQuery;
use super::version::unescape_version;
use super::version::{MAX_VERSION_LEN, Version, VersionError};

/// The longest raw (percent-encoded) request path we look at, in bytes. Generous for the longest
/// valid request: every character of a maximal path and version upper case (`!x`, sent as
/// `%21x`: 4 bytes each), plus `/@v/` and `.info`.
pub const MAX_REQUEST_LEN: usize = 4 * (MAX_PATH_LEN + MAX_VERSION_LEN) + 16;

/// A validated module proxy request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `<module>/@v/list`
    List(ModulePath),
    /// `<module>/@latest`
    Latest(ModulePath),
    /// `<module>/@v/<version or query>.info`
    Info(ModulePath, VersionQuery),
    /// `<module>/@v/<version>.mod`
    Mod(ModulePath, Version),
    /// `<module>/@v/<version>.zip`
    Zip(ModulePath, Version),
}

impl Request {
    pub fn module(&self) -> &ModulePath {
        match self {
            Self::List(m)
            | Self::Latest(m)
            | Self::Info(m, _)
            | Self::Mod(m, _)
            | Self::Zip(m, _) => m,
        }
    }
}

/// Why a request path is not a valid request. Everything but [`RequestError::NotFound`] is
/// malformed input (400); the message is meant as a one-line response body.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// Not a protocol endpoint (no `/@v/` or `/@latest`, an unknown file suffix): 404.
    #[error("not found")]
    NotFound,
    #[error("request path too long ({0} bytes, limit {MAX_REQUEST_LEN})")]
    TooLong(usize),
    #[error("invalid request path: {0}")]
    Encoding(EncodingError),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error(transparent)]
    Major(#[from] MajorError),
}

impl RequestError {
    /// Whether this is "no such endpoint" (404) rather than malformed input (400).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound)
    }
}

/// What is wrong with the percent-encoding layer of a request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EncodingError {
    #[error("bad percent-encoding at byte {0}")]
    BadEscape(usize),
    #[error("non-ASCII byte 0x{0:02x}")]
    NonAscii(u8),
    #[error("control character 0x{0:02x}")]
    Control(u8),
}

/// Parses the percent-encoded URL path after the leading `/`, for example
/// `github.com/%21burnt%21sushi/toml/@v/v1.4.0.info`.
///
/// Order: length, percent-decoding (as a path: `+` stays `+`), endpoint shape (unknown shapes are
/// [`RequestError::NotFound`]), case decoding and validation of the module path, then of the
/// version, then whether the version fits the path's major version.
pub fn parse_request(raw: &str) -> Result<Request, RequestError> {
    if raw.len() > MAX_REQUEST_LEN {
        return Err(RequestError::TooLong(raw.len()));
    }
    let decoded = percent_decode_path(raw).map_err(RequestError::Encoding)?;

    if let Some(module) = decoded.strip_suffix("/@latest") {
        return Ok(Request::Latest(module_path(module)?));
    }
    let Some((module, file)) = decoded.split_once("/@v/") else {
        return Err(RequestError::NotFound);
    };
    if file == "list" {
        return Ok(Request::List(module_path(module)?));
    }
    let Some((version, ext)) = file.rsplit_once('.') else {
        return Err(RequestError::NotFound);
    };
    if !matches!(ext, "info" | "mod" | "zip") {
        return Err(RequestError::NotFound);
    }
    let module = module_path(module)?;
    let version = unescape_version(version)?;
    if ext == "info" {
        let query = VersionQuery::parse(&version)?;
        if let VersionQuery::Version(v) = &query {
            check_path_major(v, &module)?;
        }
        return Ok(Request::Info(module, query));
    }
    let version = Version::parse(&version)?;
    check_path_major(&version, &module)?;
    Ok(if ext == "mod" {
        Request::Mod(module, version)
    } else {
        Request::Zip(module, version)
    })
}

fn module_path(escaped: &str) -> Result<ModulePath, PathError> {
    ModulePath::from_escaped(escaped)
}

/// Percent-decodes a URL path strictly: every `%` must start a two-hex-digit escape, and the
/// result must be printable ASCII. `+` is an ordinary character in paths.
fn percent_decode_path(raw: &str) -> Result<Cow<'_, str>, EncodingError> {
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                let Some(hex) = hex else {
                    return Err(EncodingError::BadEscape(i));
                };
                check_byte(hex_value(hex[0]) << 4 | hex_value(hex[1]))?;
                i += 3;
            }
            c => {
                check_byte(c)?;
                i += 1;
            }
        }
    }
    // Every escape is well formed and decodes to ASCII, so the result is valid UTF-8.
    Ok(percent_decode_str(raw)
        .decode_utf8()
        .expect("checked: decodes to ASCII"))
}

fn check_byte(c: u8) -> Result<(), EncodingError> {
    if !c.is_ascii() {
        Err(EncodingError::NonAscii(c))
    } else if c.is_ascii_control() {
        Err(EncodingError::Control(c))
    } else {
        Ok(())
    }
}

fn hex_value(h: u8) -> u8 {
    match h {
        b'0'..=b'9' => h - b'0',
        b'a'..=b'f' => h - b'a' + 10,
        _ => h - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> ModulePath {
        ModulePath::new(p).unwrap()
    }

    fn ver(v: &str) -> Version {
        Version::parse(v).unwrap()
    }

    #[test]
    fn valid_requests() {
        let table = [
            (
                "github.com/%21burnt%21sushi/toml/@v/v1.4.0.info",
                Request::Info(
                    path("github.com/BurntSushi/toml"),
                    VersionQuery::Version(ver("v1.4.0")),
                ),
            ),
            (
                "github.com/!burnt!sushi/toml/@v/list",
                Request::List(path("github.com/BurntSushi/toml")),
            ),
            (
                "github.com/google/uuid/@latest",
                Request::Latest(path("github.com/google/uuid")),
            ),
            (
                "golang.org/x/text/@v/v0.3.7.mod",
                Request::Mod(path("golang.org/x/text"), ver("v0.3.7")),
            ),
            (
                "golang.org/x/text/@v/v0.3.7.zip",
                Request::Zip(path("golang.org/x/text"), ver("v0.3.7")),
            ),
            (
                "example.com/m/@v/v2.0.0+incompatible.zip",
                Request::Zip(path("example.com/m"), ver("v2.0.0+incompatible")),
            ),
            (
                "example.com/m/@v/v2.0.0%2Bincompatible.mod",
                Request::Mod(path("example.com/m"), ver("v2.0.0+incompatible")),
            ),
            (
                "example.com/m/v2/@v/v2.1.0-!r!c1.mod",
                Request::Mod(path("example.com/m/v2"), ver("v2.1.0-RC1")),
            ),
            (
                "example.com/m/v2/@v/v2.1.0-%21r%21c1.zip",
                Request::Zip(path("example.com/m/v2"), ver("v2.1.0-RC1")),
            ),
            (
                "gopkg.in/yaml.v3/@v/v3.0.1.info",
                Request::Info(
                    path("gopkg.in/yaml.v3"),
                    VersionQuery::Version(ver("v3.0.1")),
                ),
            ),
            (
                "gopkg.in/check.v1/@v/v0.0.0-20161208181325-20d25e280405.mod",
                Request::Mod(
                    path("gopkg.in/check.v1"),
                    ver("v0.0.0-20161208181325-20d25e280405"),
                ),
            ),
            (
                "example.com/m/@v/master.info",
                Request::Info(path("example.com/m"), VersionQuery::Query("master".into())),
            ),
            (
                "example.com/m/@v/!feature-!x.info",
                Request::Info(
                    path("example.com/m"),
                    VersionQuery::Query("Feature-X".into()),
                ),
            ),
            (
                "example.com/m/@v/v1.2.info",
                Request::Info(path("example.com/m"), VersionQuery::Query("v1.2".into())),
            ),
            (
                "example.com/m/@v/3b0461eec859.info",
                Request::Info(
                    path("example.com/m"),
                    VersionQuery::Query("3b0461eec859".into()),
                ),
            ),
            (
                "example.com/m/v2/@v/v1.info",
                Request::Info(path("example.com/m/v2"), VersionQuery::Query("v1".into())),
            ),
            (
                "example.com/m/@v/v2.0.0%2bincompatible.info",
                Request::Info(
                    path("example.com/m"),
                    VersionQuery::Version(ver("v2.0.0+incompatible")),
                ),
            ),
            (
                "example.com%2Fm/@v/list",
                Request::List(path("example.com/m")),
            ),
            (
                "%65xample.com/m/@v/list",
                Request::List(path("example.com/m")),
            ),
        ];
        for (raw, want) in table {
            assert_eq!(parse_request(raw), Ok(want), "{raw:?}");
        }
    }

    #[test]
    fn not_found() {
        let table = [
            "",
            "/",
            "example.com/m",
            "example.com/m/",
            "example.com/m/@v/",
            "example.com/m/@v",
            "example.com/m/@v/list/",
            "example.com/m/@v/lists",
            "example.com/m/@v/v1.0.0",
            "example.com/m/@v/v1.0.0.txt",
            "example.com/m/@v/v1.0.0.info/x",
            "example.com/m/@v/v1.0.0.ZIP",
            "example.com/m/@latest/",
            "example.com/m/@latest/x",
            "example.com/m@latest",
            "example.com/m/@V/list",
            "sumdb/sum.golang.org/supported",
            "Foo/bar",
            // Unknown endpoints are 404 even under a malformed module path.
            "-x/@v/list.txt",
        ];
        for raw in table {
            let got = parse_request(raw);
            assert_eq!(got, Err(RequestError::NotFound), "{raw:?}");
            assert!(got.unwrap_err().is_not_found());
        }
    }

    fn bad(raw: &str) -> RequestError {
        let err = parse_request(raw).expect_err(raw);
        assert!(!err.is_not_found(), "{raw:?} should be malformed, not 404");
        err
    }

    #[test]
    fn malformed() {
        let table = [
            // Case encoding.
            "Foo/bar/@v/list",
            "github.com/BurntSushi/toml/@v/list",
            "github.com/!/toml/@v/list",
            "github.com/!1/toml/@v/list",
            "github.com/x!/@v/list",
            "example.com/m/@v/V1.0.0.info",
            "example.com/m/@v/v1.0.0-!.info",
            "example.com/m/@v/v1.0.0-rc!.mod",
            // Percent-encoding.
            "example.com/m%/@v/list",
            "example.com/m%2/@v/list",
            "example.com/m%zz/@v/list",
            "example.com/m%C3%A9/@v/list",
            "example.com/mé/@v/list",
            "example.com/m%00/@v/list",
            "example.com/m%0a/@v/list",
            "example.com/m%7f/@v/list",
            "example.com/m\t/@v/list",
            // Module path rules.
            "@v/v1.0.0.info/@v/list",
            "/@v/list",
            "/example.com/m/@v/list",
            "example.com//m/@v/list",
            "example.com/m//@v/list",
            "example.com/../m/@v/list",
            "example.com/%2e%2e/m/@v/list",
            "example.com/./m/@latest",
            "-example.com/m/@v/list",
            "example/m/@v/list",
            "example.com/m/v1/@v/list",
            "example.com/m/v0/@latest",
            "example.com/con/@v/list",
            "example.com/Com1.txt/@v/list",
            "example.com/m~1/@v/list",
            "example.com/m%20n/@v/list",
            "example.com/m+n/@v/list",
            "example.com/m%2Bn/@v/list",
            "gopkg.in/yaml/@v/list",
            // Versions.
            "example.com/m/@v/.info",
            "example.com/m/@v/v1.2.mod",
            "example.com/m/@v/v1.2.zip",
            "example.com/m/@v/master.zip",
            "example.com/m/@v/v1.2.3+build.mod",
            "example.com/m/@v/-x.info",
            "example.com/m/@v/--output=x.info",
            "example.com/m/@v/a..b.info",
            "example.com/m/@v/a%2Fb.info",
            "example.com/m/@v/latest.info",
            "example.com/m/@v/a%20b.info",
            // Major version compatibility.
            "example.com/m/@v/v2.0.0.mod",
            "example.com/m/@v/v2.0.0.info",
            "example.com/m/@v/v1.0.0+incompatible.zip",
            "example.com/m/v2/@v/v1.0.0.mod",
            "example.com/m/v2/@v/v2.0.0+incompatible.zip",
            "example.com/m/v2/@v/v3.0.0.info",
            "gopkg.in/yaml.v2/@v/v3.0.0.mod",
        ];
        for raw in table {
            bad(raw);
        }
    }

    #[test]
    fn huge_paths() {
        let long_module = format!("example.com/{}/@v/list", "a".repeat(MAX_PATH_LEN));
        assert!(matches!(bad(&long_module), RequestError::Path(_)));
        let huge = format!("example.com/{}/@v/list", "a/".repeat(10_000));
        assert_eq!(bad(&huge), RequestError::TooLong(huge.len()));
        let long_version = format!(
            "example.com/m/@v/v1.0.0-{}.zip",
            "a".repeat(MAX_VERSION_LEN)
        );
        assert!(matches!(bad(&long_version), RequestError::Version(_)));
        // The longest valid request fits under the raw limit even fully escaped.
        let module = format!("example.com/{}", "!a".repeat((MAX_PATH_LEN - 12) / 2));
        let raw = format!("{}/@v/list", module.replace('!', "%21"));
        assert!(raw.len() <= MAX_REQUEST_LEN);
        assert!(parse_request(&raw).is_ok());
    }

    #[test]
    fn messages() {
        let msg = |raw: &str| bad(raw).to_string();
        assert_eq!(
            msg("Foo/bar/@v/list"),
            "invalid module path \"Foo/bar\": upper case must be escaped as !f"
        );
        assert_eq!(
            msg("github.com/x!/@v/list"),
            "invalid module path \"github.com/x!\": trailing '!'"
        );
        assert_eq!(
            msg("example.com/m/@v/v1.2.zip"),
            "invalid version \"v1.2\": not canonical (use v1.2.0)"
        );
        assert_eq!(
            msg("example.com/m/@v/-x.info"),
            "invalid version \"-x\": must not start with '-'"
        );
        assert_eq!(
            msg("example.com/m%zz/@v/list"),
            "invalid request path: bad percent-encoding at byte 13"
        );
        assert_eq!(
            msg("example.com/m%C3%A9/@v/list"),
            "invalid request path: non-ASCII byte 0xc3"
        );
        assert_eq!(
            msg("example.com/m/@v/v2.0.0.mod"),
            "invalid version \"v2.0.0\" for module \"example.com/m\": should be v0 or v1, not v2"
        );
        for raw in ["Foo/bar/@v/list", "example.com/m%0a/@v/list"] {
            assert!(!msg(raw).contains('\n'), "{raw:?}");
        }
    }

    #[test]
    fn module_accessor() {
        let r = parse_request("golang.org/x/text/@v/v0.3.7.zip").unwrap();
        assert_eq!(r.module().as_str(), "golang.org/x/text");
    }
}
