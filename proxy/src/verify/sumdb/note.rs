//! Signed notes (golang.org/x/mod/sumdb/note): text, a blank line, then signature lines
//! `— <name> <base64(key hash (4 bytes, big-endian) || signature)>` (the dash is U+2014).

use base64::Engine as _;

use super::spec::{VerifierKey, is_valid_name};
use crate::verify::VerifyError;

const SIG_PREFIX: &str = "\u{2014} ";
/// At most this many signature lines are looked at (like x/mod).
const MAX_SIGNATURES: usize = 100;

/// A parsed, possibly verified note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The signed text, ending in a newline.
    pub text: String,
    /// Whether a signature by the expected key was present and valid. Always true when returned
    /// by [`verify_note`] with a key.
    pub verified: bool,
}

/// Parses a signed note and, when `key` is given, requires at least one valid signature by it.
///
/// Signatures by other signers (other names or key hashes) are ignored; a signature line by our
/// key that does not verify is an error. With `key` `None` the note is only parsed
/// (`verified: false`); `db_name` is used in error messages.
pub fn verify_note(
    msg: &[u8],
    db_name: &str,
    key: Option<&VerifierKey>,
) -> Result<SignedNote, VerifyError> {
    let malformed = |reason: &str| VerifyError::MalformedNote {
        name: db_name.to_string(),
        reason: reason.to_string(),
    };
    let msg = std::str::from_utf8(msg).map_err(|_| malformed("not valid UTF-8"))?;
    if msg.chars().any(|c| c < ' ' && c != '\n') {
        return Err(malformed("control character"));
    }
    let split = msg
        .rfind("\n\n")
        .ok_or_else(|| malformed("no blank line before the signatures"))?;
    let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(malformed(
            "signature block missing or not newline-terminated",
        ));
    }

    let mut verified = false;
    for (n, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
        if n >= MAX_SIGNATURES {
            return Err(malformed("too many signatures"));
        }
        let line = line
            .strip_prefix(SIG_PREFIX)
            .ok_or_else(|| malformed("signature line does not start with an em dash"))?;
        let (name, b64) = line.split_once(' ').unwrap_or((line, ""));
        let sig = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| malformed("signature is not valid base64"))?;
        if !is_valid_name(name) || b64.is_empty() || sig.len() < 5 {
            return Err(malformed("invalid signature line"));
        }
        let hash = u32::from_be_bytes([sig[0], sig[1], sig[2], sig[3]]);
        let Some(key) = key else { continue };
        if name != key.name || hash != key.hash {
            continue; // unknown signer
        }
        let sig: [u8; 64] = sig[4..].try_into().map_err(|_| VerifyError::BadSignature {
            name: key.name.clone(),
        })?;
        let sig = ed25519_dalek::Signature::from_bytes(&sig);
        key.key
            .verify_strict(text.as_bytes(), &sig)
            .map_err(|_| VerifyError::BadSignature {
                name: key.name.clone(),
            })?;
        verified = true;
    }
    if let Some(key) = key
        && !verified
    {
        return Err(VerifyError::Unsigned {
            name: key.name.clone(),
        });
    }
    Ok(SignedNote {
        text: text.to_string(),
        verified,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::verify::sumdb::spec::tests::test_key;
    use ed25519_dalek::Signer;

    /// Signs `text` like x/mod note.Sign with the key `vkey`/`sk`.
    pub(crate) fn sign(text: &str, vkey: &VerifierKey, sk: &ed25519_dalek::SigningKey) -> String {
        let mut sig = vkey.hash.to_be_bytes().to_vec();
        sig.extend_from_slice(&sk.sign(text.as_bytes()).to_bytes());
        format!(
            "\u{2014} {} {}\n",
            vkey.name,
            base64::engine::general_purpose::STANDARD.encode(sig)
        )
    }

    #[test]
    fn valid_and_forged() {
        let (k, sk) = test_key("sumdb.test", 1);
        let key = VerifierKey::parse(&k).unwrap();
        let text = "go.sum database tree\n3\nAAAA\n";
        let note = format!("{text}\n{}", sign(text, &key, &sk));
        let n = verify_note(note.as_bytes(), "sumdb.test", Some(&key)).unwrap();
        assert_eq!(n.text, text);
        assert!(n.verified);

        // Changed text: bad signature.
        let forged = note.replace("\n3\n", "\n4\n");
        assert!(matches!(
            verify_note(forged.as_bytes(), "sumdb.test", Some(&key)),
            Err(VerifyError::BadSignature { .. })
        ));

        // Signed by another key under the same name with the key hash of ours.
        let (_, other_sk) = test_key("sumdb.test", 2);
        let forged = format!("{text}\n{}", sign(text, &key, &other_sk));
        assert!(matches!(
            verify_note(forged.as_bytes(), "sumdb.test", Some(&key)),
            Err(VerifyError::BadSignature { .. })
        ));

        // Only an unknown signer: unsigned for us.
        let (ok, osk) = test_key("other.test", 2);
        let okey = VerifierKey::parse(&ok).unwrap();
        let other = format!("{text}\n{}", sign(text, &okey, &osk));
        assert!(matches!(
            verify_note(other.as_bytes(), "sumdb.test", Some(&key)),
            Err(VerifyError::Unsigned { .. })
        ));
        // Unknown signer plus ours: fine.
        let both = format!(
            "{text}\n{}{}",
            sign(text, &okey, &osk),
            sign(text, &key, &sk)
        );
        assert!(verify_note(both.as_bytes(), "sumdb.test", Some(&key)).is_ok());

        // Without a key: parsed, not verified.
        let n = verify_note(other.as_bytes(), "sumdb.test", None).unwrap();
        assert!(!n.verified);
    }

    #[test]
    fn malformed() {
        for m in [
            "no blank line\n",
            "text\n\n",
            "text\n\n- sumdb.test AAAA\n",
            "text\n\n\u{2014} sumdb.test AAAAAAAA",
            "text\n\n\u{2014} sumdb.test !!!\n",
            "te\rxt\n\n\u{2014} sumdb.test AAAAAAAA\n",
        ] {
            assert!(
                matches!(
                    verify_note(m.as_bytes(), "sumdb.test", None),
                    Err(VerifyError::MalformedNote { .. })
                ),
                "{m:?}"
            );
        }
    }
}
