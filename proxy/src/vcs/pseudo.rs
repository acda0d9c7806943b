//! The parts of a pseudo-version, as x/mod's `PseudoVersionRev`, `PseudoVersionTime` and
//! `PseudoVersionBase` read them: what a requested pseudo-version claims about its commit,
//! checked against the repository before anything is served (see `CodeRepo::check_pseudo`).

use crate::module::Version;

/// A pseudo-version's claims: its base (`None`: `vX.0.0-<time>-<rev>`, no base), its 14-digit
/// UTC time and its revision prefix.
#[derive(Debug, PartialEq, Eq)]
pub struct PseudoParts {
    pub base: Option<String>,
    pub time: String,
    pub rev: String,
}

/// Why a pseudo-version names no base (x/mod's errors).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PseudoError {
    #[error("not a pseudo-version")]
    NotPseudo,
    #[error("the version before it would have a negative patch number")]
    ZeroPatch,
}

/// Splits a pseudo-version (without `+incompatible`) into its claims.
pub fn parts(v: &Version) -> Result<PseudoParts, PseudoError> {
    if !v.is_pseudo() {
        return Err(PseudoError::NotPseudo);
    }
    let s = v.as_str().trim_end_matches("+incompatible");
    let (head, rev) = s.rsplit_once('-').ok_or(PseudoError::NotPseudo)?;
    let cut = head.len().checked_sub(14).ok_or(PseudoError::NotPseudo)?;
    let (before, time) = head.split_at(cut);
    // `before` ends with the separator: `-` (no base) or `.` (after `-0` or `-pre.0`).
    let base = match before.strip_suffix('.') {
        None => None,
        Some(b) => Some(match b.strip_suffix("-0") {
            // vX.Y.(Z+1)-0.<time>-<rev>: the base is vX.Y.Z.
            Some(core) => {
                let (minor, patch) = core.rsplit_once('.').ok_or(PseudoError::NotPseudo)?;
                format!("{minor}.{}", dec_decimal(patch)?)
            }
            // vX.Y.Z-pre.0.<time>-<rev>: the base is vX.Y.Z-pre.
            None => b
                .strip_suffix(".0")
                .ok_or(PseudoError::NotPseudo)?
                .to_string(),
        }),
    };
    Ok(PseudoParts {
        base,
        time: time.to_string(),
        rev: rev.to_string(),
    })
}

/// A decimal string minus one (x/mod `decDecimal`); 0 has no predecessor.
fn dec_decimal(d: &str) -> Result<String, PseudoError> {
    if d == "0" || d.is_empty() {
        return Err(PseudoError::ZeroPatch);
    }
    let mut digits: Vec<u8> = d.bytes().collect();
    for b in digits.iter_mut().rev() {
        if *b == b'0' {
            *b = b'9';
        } else {
            *b -= 1;
            break;
        }
    }
    // "10" -> "09" -> "9": a leading zero is dropped, as x/mod does.
    if digits.len() > 1 && digits[0] == b'0' {
        digits.remove(0);
    }
    Ok(String::from_utf8_lossy(&digits).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<PseudoParts, PseudoError> {
        parts(&Version::parse(s).unwrap())
    }

    #[test]
    fn the_three_forms_and_their_bases() {
        assert_eq!(
            p("v0.0.0-20240102030405-0123456789ab").unwrap(),
            PseudoParts {
                base: None,
                time: "20240102030405".into(),
                rev: "0123456789ab".into()
            }
        );
        let base = |s| p(s).unwrap().base;
        assert_eq!(
            base("v1.2.4-0.20240102030405-0123456789ab"),
            Some("v1.2.3".into())
        );
        assert_eq!(
            base("v1.2.10-0.20240102030405-0123456789ab"),
            Some("v1.2.9".into())
        );
        assert_eq!(
            base("v1.3.100-0.20240102030405-0123456789ab"),
            Some("v1.3.99".into())
        );
        assert_eq!(
            base("v2.0.0-rc.1.0.20240102030405-0123456789ab+incompatible"),
            Some("v2.0.0-rc.1".into())
        );
        assert_eq!(
            p("v1.2.0-0.20240102030405-0123456789ab"),
            Err(PseudoError::ZeroPatch)
        );
        assert_eq!(p("v1.2.3"), Err(PseudoError::NotPseudo));
        assert_eq!(p("v1.2.3-pre"), Err(PseudoError::NotPseudo));
    }
}
