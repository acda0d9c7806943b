//! `GOSUMDB` values and verifier keys (golang.org/x/mod/sumdb/note format).

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::verify::VerifyError;

/// Algorithm byte of an Ed25519 key in a note verifier key.
const ALG_ED25519: u8 = 1;

/// A note verifier key: `<name>+<hash>+<base64(alg || key)>`.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    /// The signer (database) name.
    pub name: String,
    /// First 4 bytes (big-endian) of sha256(name + "\n" + alg + key).
    pub hash: u32,
    /// The Ed25519 public key.
    pub key: ed25519_dalek::VerifyingKey,
    /// The key as given (useful for logs and for configuring the go command).
    pub text: String,
}

impl std::fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// x/mod/sumdb/note key hash.
pub(crate) fn key_hash(name: &str, alg_and_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(alg_and_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A note signer name: non-empty, no white space, no `+` (x/mod `isValidName`).
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_whitespace) && !name.contains('+')
}

impl VerifierKey {
    /// Parses `<name>+<8 hex digits>+<base64>`, checking the key hash.
    pub fn parse(vkey: &str) -> Result<Self, VerifyError> {
        let bad = |r: &str| VerifyError::InvalidVerifierKey(format!("{vkey:?}: {r}"));
        let (name, rest) = vkey.split_once('+').ok_or_else(|| bad("missing '+'"))?;
        let (hash16, key64) = rest
            .split_once('+')
            .ok_or_else(|| bad("missing second '+'"))?;
        if !is_valid_name(name) {
            return Err(bad("invalid name"));
        }
        if hash16.len() != 8 || !hash16.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("key hash is not 8 hex digits"));
        }
        let hash = u32::from_str_radix(hash16, 16).map_err(|_| bad("bad key hash"))?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(key64)
            .map_err(|_| bad("key is not valid base64"))?;
        if key.is_empty() {
            return Err(bad("empty key"));
        }
        if key_hash(name, &key) != hash {
            return Err(bad("key hash does not match the key"));
        }
        if key[0] != ALG_ED25519 {
            return Err(bad("unknown key algorithm (only Ed25519 is supported)"));
        }
        let raw: [u8; 32] = key[1..]
            .try_into()
            .map_err(|_| bad("Ed25519 key is not 32 bytes"))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&raw)
            .map_err(|_| bad("not a valid Ed25519 public key"))?;
        Ok(VerifierKey {
            name: name.to_string(),
            hash,
            key,
            text: vkey.to_string(),
        })
    }
}

/// Databases whose verifier key may be left out of `GOSUMDB`: the go command's own list
/// (cmd/go/internal/modfetch/key.go), a published constant.
const KNOWN_KEYS: &[(&str, &str)] = &[(
    "sum.golang.org",
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
)];

/// Names the go command rewrites before parsing (cmd/go `dbDial`): a mirror of a known
/// database reachable where the original is not.
const ALIASES: &[(&str, &str)] = &[(
    "sum.golang.google.cn",
    "sum.golang.org https://sum.golang.google.cn",
)];

/// The default when nothing is configured, as in the go command.
pub use athens_config::DEFAULT_SUMDB as DEFAULT_GOSUMDB;

/// A parsed `GOSUMDB` value (other than `off`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumdbSpec {
    /// Database name (`host[/path]`), used in `/sumdb/<name>/` and as the note signer name.
    pub name: String,
    /// The verifier key: given in `GOSUMDB`, or built in for a known database. There is no
    /// spec without one: a database we cannot authenticate is refused, not hash-compared.
    pub verifier_key: VerifierKey,
    /// Explicit database URL (`GOSUMDB="name+key URL"`), without a trailing slash.
    pub url: Option<String>,
}

impl SumdbSpec {
    /// Parses `off`, `<name>`, `<name>+<hash>+<key>`, or either of the last two followed by a
    /// URL, like the go command: a bare name must be a database whose key is built in.
    /// `Ok(None)` means `off`.
    pub fn parse(value: &str) -> Result<Option<SumdbSpec>, VerifyError> {
        let bad = |r: &str| VerifyError::InvalidGosumdb {
            value: value.to_string(),
            reason: r.to_string(),
        };
        let trimmed = value.trim();
        let resolved = ALIASES
            .iter()
            .find(|(alias, _)| *alias == trimmed)
            .map_or(trimmed, |(_, full)| full);
        let fields: Vec<&str> = resolved.split_whitespace().collect();
        match fields.as_slice() {
            [] => Err(bad("empty")),
            ["off"] => Ok(None),
            [_, _, _, ..] => Err(bad("too many fields")),
            [key, rest @ ..] => {
                let key = if key.contains('+') {
                    key
                } else {
                    KNOWN_KEYS
                        .iter()
                        .find(|(name, _)| name == key)
                        .map(|(_, k)| *k)
                        .ok_or_else(|| {
                            bad(&format!(
                                "no verifier key for {key:?}: give name+hash+key (only the keys \
                                 the go command knows are built in), or \"off\""
                            ))
                        })?
                };
                let verifier_key = VerifierKey::parse(key)?;
                let name = verifier_key.name.clone();
                check_db_name(&name).map_err(|r| bad(&r))?;
                let url = match rest.first() {
                    None => None,
                    Some(u) => {
                        let lower = u.to_ascii_lowercase();
                        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
                            return Err(bad("URL must start with https:// or http://"));
                        }
                        Some(u.trim_end_matches('/').to_string())
                    }
                };
                Ok(Some(SumdbSpec {
                    name,
                    verifier_key,
                    url,
                }))
            }
        }
    }

    /// The URL used when no proxy serves this database: the explicit URL or `https://<name>`.
    pub fn direct_url(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| format!("https://{}", self.name))
    }
}

/// A database name must be `host[/path]` (cmd/go rejects anything that would not round-trip as
/// the URL `https://<name>`).
fn check_db_name(name: &str) -> Result<(), String> {
    if !is_valid_name(name) {
        return Err(format!("invalid database name {name:?}"));
    }
    if name.ends_with('/') {
        return Err("database name must not end in '/'".into());
    }
    let host = name.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err("database name must start with a host name".into());
    }
    if name.contains("//")
        || name
            .chars()
            .any(|c| matches!(c, '?' | '#' | '%' | '@' | '\\') || c.is_control())
    {
        return Err(format!("database name {name:?} must be host[/path]"));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A verifier key text for `name` from a fixed seed, with the matching signing key.
    pub(crate) fn test_key(name: &str, seed: u8) -> (String, ed25519_dalek::SigningKey) {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let mut ak = vec![ALG_ED25519];
        ak.extend_from_slice(sk.verifying_key().as_bytes());
        let text = format!(
            "{name}+{:08x}+{}",
            key_hash(name, &ak),
            base64::engine::general_purpose::STANDARD.encode(&ak)
        );
        (text, sk)
    }

    #[test]
    fn parse_values() {
        assert_eq!(SumdbSpec::parse("off").unwrap(), None);
        // The go command's default database gets its built-in key, as in cmd/go.
        let s = SumdbSpec::parse(DEFAULT_GOSUMDB).unwrap().unwrap();
        assert_eq!(s.name, DEFAULT_GOSUMDB);
        assert_eq!(s.verifier_key.name, DEFAULT_GOSUMDB);
        assert!(s.url.is_none());
        assert_eq!(s.direct_url(), format!("https://{DEFAULT_GOSUMDB}"));
        // Its alias is the same database (same key) at another URL.
        let a = SumdbSpec::parse("sum.golang.google.cn").unwrap().unwrap();
        assert_eq!(a.verifier_key, s.verifier_key);
        assert_eq!(a.url.as_deref(), Some("https://sum.golang.google.cn"));

        let (k, _) = test_key("sumdb.test", 3);
        let s = SumdbSpec::parse(&k).unwrap().unwrap();
        assert_eq!(s.name, "sumdb.test");
        assert_eq!(s.verifier_key.text, k);

        let s = SumdbSpec::parse(&format!("{k} http://127.0.0.1:1234/"))
            .unwrap()
            .unwrap();
        assert_eq!(s.url.as_deref(), Some("http://127.0.0.1:1234"));
        assert_eq!(s.direct_url(), "http://127.0.0.1:1234");

        let (k, _) = test_key("db.example/sub", 4);
        let s = SumdbSpec::parse(&k).unwrap().unwrap();
        assert_eq!(s.name, "db.example/sub");
    }

    #[test]
    fn a_name_without_a_key_we_know_is_refused() {
        let e = SumdbSpec::parse("sumdb.test").unwrap_err().to_string();
        assert!(e.contains("no verifier key for \"sumdb.test\""), "{e}");
        assert!(SumdbSpec::parse("sumdb.test https://sumdb.test").is_err());
    }

    #[test]
    fn parse_errors() {
        let (k, _) = test_key("sumdb.test", 3);
        for v in [
            "",
            "a b c",
            "sumdb.test",
            "sumdb.test+00000000+AQ==",
            "sumdb.test+zz+AQ==",
        ] {
            assert!(SumdbSpec::parse(v).is_err(), "{v:?} should fail");
        }
        assert!(SumdbSpec::parse(&format!("{k} ftp://x")).is_err());
        // Wrong hash for the key.
        let (name, rest) = k.split_once('+').unwrap();
        let (_, key) = rest.split_once('+').unwrap();
        assert!(VerifierKey::parse(&format!("{name}+00000000+{key}")).is_err());
        // Right hash, other name.
        assert!(VerifierKey::parse(&format!("other.test+{}", rest)).is_err());
    }

    #[test]
    fn error_message_is_one_line() {
        let e = SumdbSpec::parse("a b c").unwrap_err().to_string();
        assert_eq!(e, "invalid GOSUMDB \"a b c\": too many fields");
    }
}
