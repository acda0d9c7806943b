//! The `.info` answer: `{"Version": ..., "Time": ...}` (plus an optional `Origin` we pass on).
//!
//! Bodies are stored and served as upstream sent them (never re-encoded); this type is only for
//! checking what they claim before they are stored or passed on.

use serde::Deserialize;

use super::version::Version;

/// The fields of an `.info` body the proxy checks. Unknown fields (`Origin`, ...) are allowed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Info {
    #[serde(rename = "Version")]
    pub version: String,
    /// RFC 3339; optional in the protocol.
    #[serde(rename = "Time", default)]
    pub time: Option<String>,
}

/// Why an `.info` body is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfoError {
    #[error(".info is not valid JSON: {0}")]
    Json(String),
    #[error(".info names version {found:?}, not {want:?}")]
    OtherVersion { found: String, want: String },
    #[error(".info names {0:?}, which is not a canonical semantic version")]
    NotCanonical(String),
}

impl Info {
    /// Parses an `.info` body.
    pub fn parse(body: &[u8]) -> Result<Self, InfoError> {
        serde_json::from_slice(body).map_err(|e| InfoError::Json(e.to_string()))
    }

    /// Parses a body that must name exactly `want` (the version that was asked for).
    pub fn parse_for(body: &[u8], want: &Version) -> Result<Self, InfoError> {
        let info = Self::parse(body)?;
        if info.version != want.as_str() {
            return Err(InfoError::OtherVersion {
                found: info.version,
                want: want.as_str().to_string(),
            });
        }
        Ok(info)
    }

    /// The canonical version the body names (for answers to queries and `@latest`).
    pub fn canonical_version(&self) -> Result<Version, InfoError> {
        Version::parse(&self.version).map_err(|_| InfoError::NotCanonical(self.version.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_time_and_origin() {
        let i = Info::parse(
            br#"{"Version":"v1.0.0","Time":"2020-01-01T00:00:00Z","Origin":{"VCS":"git"}}"#,
        )
        .unwrap();
        assert_eq!(i.version, "v1.0.0");
        assert_eq!(i.time.as_deref(), Some("2020-01-01T00:00:00Z"));
        assert_eq!(Info::parse(br#"{"Version":"v1.0.0"}"#).unwrap().time, None);
        assert!(matches!(Info::parse(b"nope"), Err(InfoError::Json(_))));
        assert!(matches!(Info::parse(b"{}"), Err(InfoError::Json(_))));
    }

    #[test]
    fn must_name_the_version_asked_for() {
        let v = Version::parse("v1.0.0").unwrap();
        assert!(Info::parse_for(br#"{"Version":"v1.0.0"}"#, &v).is_ok());
        assert_eq!(
            Info::parse_for(br#"{"Version":"v1.0.1"}"#, &v)
                .unwrap_err()
                .to_string(),
            ".info names version \"v1.0.1\", not \"v1.0.0\""
        );
    }

    #[test]
    fn canonical_version() {
        let i = Info::parse(br#"{"Version":"master"}"#).unwrap();
        assert!(matches!(
            i.canonical_version(),
            Err(InfoError::NotCanonical(_))
        ));
        let i = Info::parse(br#"{"Version":"v1.2.3"}"#).unwrap();
        assert_eq!(i.canonical_version().unwrap().as_str(), "v1.2.3");
    }
}
