//! Checksum database `/lookup/<module>@<version>` answers.
//!
//! The answer is the record id on a line, the record text (the go.sum lines
//! `<module> <version> h1:...` and `<module> <version>/go.mod h1:...`), a blank line, then the
//! signed tree note (`go.sum database tree\n<size>\n<base64 root hash>\n`, blank line, signatures).

use base64::Engine as _;

use super::note::verify_note;
use super::spec::VerifierKey;
use crate::verify::VerifyError;

/// A verified (or, without a key, merely parsed) checksum database record for one module version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumdbRecord {
    /// Record id (leaf index in the log).
    pub id: u64,
    /// The `h1:` hash of the module zip.
    pub zip_hash: String,
    /// The `h1:` hash of the module's go.mod.
    pub go_mod_hash: String,
    /// Size of the signed tree the answer came with.
    pub tree_size: u64,
    /// Root hash of that tree (base64).
    pub tree_hash: String,
    /// Whether the tree note's signature was verified with our key. False only when no
    /// verifier key is configured (a bare database name).
    pub signature_verified: bool,
    /// Whether the record was proven to be leaf `id` of the signed tree (inclusion proof over
    /// tiles). Set by [`SumdbClient::lookup`](super::SumdbClient::lookup) when a verifier key is
    /// configured; [`parse_lookup`] alone leaves it false.
    pub inclusion_verified: bool,
    /// The raw record text (for an inclusion proof: its leaf hash is sha256(0x00 || text)).
    pub record_text: String,
}

impl SumdbRecord {
    /// Compares our hashes with the database's; pass `None` for a hash not computed.
    pub fn check(
        &self,
        module: &str,
        version: &str,
        zip_h1: Option<&str>,
        go_mod_h1: Option<&str>,
    ) -> Result<(), VerifyError> {
        let mismatch =
            |what: &'static str, ours: &str, theirs: &str| VerifyError::ChecksumMismatch {
                module: module.to_string(),
                version: version.to_string(),
                what,
                downloaded: ours.to_string(),
                database: theirs.to_string(),
            };
        if let Some(z) = zip_h1
            && z != self.zip_hash
        {
            return Err(mismatch("", z, &self.zip_hash));
        }
        if let Some(m) = go_mod_h1
            && m != self.go_mod_hash
        {
            return Err(mismatch("/go.mod", m, &self.go_mod_hash));
        }
        Ok(())
    }
}

/// Parses a lookup answer for `module@version` (unescaped) and verifies the tree note's
/// signature with `key` when one is given.
///
/// Not checked here (done by [`SumdbClient::lookup`](super::SumdbClient::lookup)): that the
/// record is really leaf `id` of the signed tree (inclusion proof over `/tile/` hashes), and that
/// the tree is consistent with trees seen earlier.
pub fn parse_lookup(
    body: &[u8],
    db_name: &str,
    module: &str,
    version: &str,
    key: Option<&VerifierKey>,
) -> Result<SumdbRecord, VerifyError> {
    let malformed = |reason: String| VerifyError::MalformedLookup {
        name: db_name.to_string(),
        module: module.to_string(),
        version: version.to_string(),
        reason,
    };
    let nl = body
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| malformed("no record id line".into()))?;
    let id_text = std::str::from_utf8(&body[..nl]).unwrap_or("");
    let id: u64 = match id_text.parse::<u64>() {
        Ok(id) if id_text == id.to_string() => id,
        _ => return Err(malformed(format!("bad record id {id_text:?}"))),
    };
    let rest = &body[nl + 1..];
    let end = rest
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or_else(|| malformed("record text not terminated by a blank line".into()))?;
    let text = std::str::from_utf8(&rest[..end + 1])
        .map_err(|_| malformed("record text is not valid UTF-8".into()))?;
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(malformed("control character in record text".into()));
    }
    let tree_msg = &rest[end + 2..];

    let mut zip_hash = None;
    let mut go_mod_hash = None;
    let zip_prefix = format!("{module} {version} h1:");
    let mod_prefix = format!("{module} {version}/go.mod h1:");
    for line in text.lines() {
        if let Some(h) = line.strip_prefix(&zip_prefix) {
            zip_hash.get_or_insert_with(|| format!("h1:{h}"));
        } else if let Some(h) = line.strip_prefix(&mod_prefix) {
            go_mod_hash.get_or_insert_with(|| format!("h1:{h}"));
        }
    }
    let zip_hash = zip_hash.ok_or_else(|| malformed("no h1 line for the zip".into()))?;
    let go_mod_hash = go_mod_hash.ok_or_else(|| malformed("no h1 line for go.mod".into()))?;

    let note = verify_note(tree_msg, db_name, key)?;
    let (tree_size, tree_hash) =
        parse_tree(&note.text).ok_or_else(|| malformed("malformed signed tree".into()))?;
    if id >= tree_size {
        return Err(malformed(format!(
            "record id {id} is not in the signed tree of size {tree_size}"
        )));
    }
    Ok(SumdbRecord {
        id,
        zip_hash,
        go_mod_hash,
        tree_size,
        tree_hash,
        signature_verified: note.verified,
        inclusion_verified: false,
        record_text: text.to_string(),
    })
}

/// x/mod/sumdb/tlog `ParseTree`: `go.sum database tree\n<N>\n<base64 32 bytes>\n[...]`.
pub(crate) fn parse_tree(text: &str) -> Option<(u64, String)> {
    let mut lines = text.splitn(4, '\n');
    if lines.next()? != "go.sum database tree" {
        return None;
    }
    let n_text = lines.next()?;
    let n: u64 = n_text.parse().ok()?;
    if n.to_string() != n_text {
        return None;
    }
    let h = lines.next()?;
    lines.next()?; // the text must have at least three newlines
    let raw = base64::engine::general_purpose::STANDARD.decode(h).ok()?;
    if raw.len() != 32 {
        return None;
    }
    Some((n, h.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::sumdb::note::tests::sign;
    use crate::verify::sumdb::spec::tests::test_key;

    const ROOT: &str = "nND/nri/U0xuHUrYSy0HtMeal2vzD9V4k/BO79C+QeI=";

    fn answer(key: &VerifierKey, sk: &ed25519_dalek::SigningKey, size: u64) -> String {
        let tree = format!("go.sum database tree\n{size}\n{ROOT}\n");
        format!(
            "7\nexample.com/m v1.0.0 h1:zip=\nexample.com/m v1.0.0/go.mod h1:mod=\n\n{tree}\n{}",
            sign(&tree, key, sk)
        )
    }

    #[test]
    fn parse_and_check() {
        let (k, sk) = test_key("sumdb.test", 5);
        let key = VerifierKey::parse(&k).unwrap();
        let body = answer(&key, &sk, 8);
        let r = parse_lookup(
            body.as_bytes(),
            "sumdb.test",
            "example.com/m",
            "v1.0.0",
            Some(&key),
        )
        .unwrap();
        assert_eq!(r.id, 7);
        assert_eq!(r.zip_hash, "h1:zip=");
        assert_eq!(r.go_mod_hash, "h1:mod=");
        assert_eq!(r.tree_size, 8);
        assert_eq!(r.tree_hash, ROOT);
        assert!(r.signature_verified);
        r.check("example.com/m", "v1.0.0", Some("h1:zip="), Some("h1:mod="))
            .unwrap();
        let e = r
            .check("example.com/m", "v1.0.0", Some("h1:abc="), None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "checksum mismatch for example.com/m@v1.0.0: downloaded h1:abc=, checksum database h1:zip="
        );
        let e = r
            .check("example.com/m", "v1.0.0", None, Some("h1:x="))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("checksum mismatch for example.com/m@v1.0.0/go.mod:"));

        // Without a key: parsed, flagged as unverified.
        let r = parse_lookup(
            body.as_bytes(),
            "sumdb.test",
            "example.com/m",
            "v1.0.0",
            None,
        )
        .unwrap();
        assert!(!r.signature_verified);
    }

    #[test]
    fn rejects() {
        let (k, sk) = test_key("sumdb.test", 5);
        let key = VerifierKey::parse(&k).unwrap();
        // Record id outside the tree.
        let body = answer(&key, &sk, 7);
        assert!(
            parse_lookup(
                body.as_bytes(),
                "sumdb.test",
                "example.com/m",
                "v1.0.0",
                Some(&key)
            )
            .is_err()
        );
        // Other module in the record.
        let body = answer(&key, &sk, 8);
        assert!(
            parse_lookup(
                body.as_bytes(),
                "sumdb.test",
                "example.com/n",
                "v1.0.0",
                Some(&key)
            )
            .is_err()
        );
        // Tampered tree size: signature fails.
        let body = answer(&key, &sk, 8).replace("tree\n8\n", "tree\n9\n");
        assert!(matches!(
            parse_lookup(
                body.as_bytes(),
                "sumdb.test",
                "example.com/m",
                "v1.0.0",
                Some(&key)
            ),
            Err(VerifyError::BadSignature { .. })
        ));
        // Garbage.
        assert!(parse_lookup(b"x\n", "sumdb.test", "example.com/m", "v1.0.0", None).is_err());
    }
}
