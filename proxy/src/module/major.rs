//! Whether a version fits a module path's major-version suffix.

use thiserror::Error;

use super::path::ModulePath;
use super::quote::quote;
use super::version::Version;

/// A version that cannot belong to a module path.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "invalid version {} for module {}: {reason}",
    quote(version),
    quote(path)
)]
pub struct MajorError {
    pub path: String,
    pub version: String,
    pub reason: MajorReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MajorReason {
    /// x/mod's wording: "should be v0 or v1, not v2", "should be v3, not v2".
    #[error("should be {want}, not {got}")]
    Mismatch { want: String, got: String },
    #[error("+incompatible not allowed: module path has a major version suffix")]
    IncompatibleWithSuffix,
    #[error("+incompatible not allowed: major version {0} is compatible")]
    IncompatibleLowMajor(String),
}

/// x/mod `module.CheckPathMajor` for a path and a canonical version, plus the two
/// `+incompatible` rules the `go` command enforces on top of it:
///
/// - no suffix (`example.com/m`): `v0.x`, `v1.x`, or `vN.x+incompatible` for N >= 2;
/// - `/vN` or gopkg.in `.vN`: major N exactly (gopkg.in `.v0` is v0 only, as in x/mod);
/// - `+incompatible` only without a suffix and only for major >= 2;
/// - the pseudo-version exception x/mod keeps for an old bug: gopkg.in `.v1` also accepts
///   `v0.0.0-...` versions.
pub fn check_path_major(version: &Version, path: &ModulePath) -> Result<(), MajorError> {
    check(version, path).map_err(|reason| MajorError {
        path: path.as_str().to_owned(),
        version: version.as_str().to_owned(),
        reason,
    })
}

fn check(version: &Version, path: &ModulePath) -> Result<(), MajorReason> {
    let got = version.major();
    let low = got == "v0" || got == "v1";
    match path.major() {
        None if version.is_incompatible() && low => {
            Err(MajorReason::IncompatibleLowMajor(got.to_owned()))
        }
        None if low || version.is_incompatible() => Ok(()),
        None => Err(MajorReason::Mismatch {
            want: "v0 or v1".to_owned(),
            got: got.to_owned(),
        }),
        Some(_) if version.is_incompatible() => Err(MajorReason::IncompatibleWithSuffix),
        Some("v1") if path.is_gopkg_in() && version.as_str().starts_with("v0.0.0-") => Ok(()),
        Some(want) if want == got => Ok(()),
        Some(want) => Err(MajorReason::Mismatch {
            want: want.to_owned(),
            got: got.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        // (path, version, ok)
        let table = [
            ("example.com/m", "v0.1.0", true),
            ("example.com/m", "v1.2.3", true),
            ("example.com/m", "v1.0.0-rc.1", true),
            ("example.com/m", "v0.0.0-20190620200207-3b0461eec859", true),
            ("example.com/m", "v2.0.0", false),
            ("example.com/m", "v2.0.0+incompatible", true),
            ("example.com/m", "v3.1.0-rc.1+incompatible", true),
            (
                "example.com/m",
                "v2.0.1-0.20191109021931-daa7c04131f5+incompatible",
                true,
            ),
            ("example.com/m", "v1.0.0+incompatible", false),
            ("example.com/m", "v0.1.0+incompatible", false),
            ("example.com/m/v2", "v2.0.0", true),
            ("example.com/m/v2", "v2.5.0-pre", true),
            (
                "example.com/m/v2",
                "v2.0.0-20190620200207-3b0461eec859",
                true,
            ),
            ("example.com/m/v2", "v1.0.0", false),
            (
                "example.com/m/v2",
                "v0.0.0-20190620200207-3b0461eec859",
                false,
            ),
            ("example.com/m/v2", "v3.0.0", false),
            ("example.com/m/v2", "v2.0.0+incompatible", false),
            ("example.com/m/v10", "v10.0.0", true),
            ("example.com/m/v10", "v1.0.0", false),
            ("gopkg.in/yaml.v2", "v2.4.0", true),
            ("gopkg.in/yaml.v2", "v3.0.0", false),
            ("gopkg.in/yaml.v2", "v2.0.0+incompatible", false),
            ("gopkg.in/yaml.v3", "v3.0.1", true),
            ("gopkg.in/yaml.v0", "v0.5.0", true),
            ("gopkg.in/yaml.v0", "v1.0.0", false),
            ("gopkg.in/check.v1", "v1.0.0", true),
            (
                "gopkg.in/check.v1",
                "v0.0.0-20161208181325-20d25e280405",
                true,
            ),
            ("gopkg.in/check.v1", "v0.1.0", false),
            (
                "gopkg.in/check.v2",
                "v0.0.0-20161208181325-20d25e280405",
                false,
            ),
            ("gopkg.in/x.v1-unstable", "v1.0.0", true),
            ("gopkg.in/x.v1-unstable", "v2.0.0", false),
        ];
        for (p, v, ok) in table {
            let path = ModulePath::new(p).unwrap();
            let version = Version::parse(v).unwrap();
            assert_eq!(check_path_major(&version, &path).is_ok(), ok, "{p}@{v}");
        }
    }

    #[test]
    fn messages() {
        let msg = |p: &str, v: &str| {
            check_path_major(&Version::parse(v).unwrap(), &ModulePath::new(p).unwrap())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            msg("example.com/m", "v2.0.0"),
            "invalid version \"v2.0.0\" for module \"example.com/m\": should be v0 or v1, not v2"
        );
        assert_eq!(
            msg("example.com/m/v3", "v2.0.0"),
            "invalid version \"v2.0.0\" for module \"example.com/m/v3\": should be v3, not v2"
        );
        assert_eq!(
            msg("example.com/m/v2", "v2.0.0+incompatible"),
            "invalid version \"v2.0.0+incompatible\" for module \"example.com/m/v2\": +incompatible not allowed: module path has a major version suffix"
        );
        assert_eq!(
            msg("example.com/m", "v1.0.0+incompatible"),
            "invalid version \"v1.0.0+incompatible\" for module \"example.com/m\": +incompatible not allowed: major version v1 is compatible"
        );
    }
}
