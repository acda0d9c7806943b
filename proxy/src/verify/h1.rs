//! The go.sum `h1:` hash (golang.org/x/mod/sumdb/dirhash `Hash1`).
//!
//! For a list of files: sort the names, write one line `hex(sha256(content))  name\n` per file,
//! sha256 the concatenation, base64 (standard alphabet, padded), prefix `h1:`. A module zip is
//! hashed over the names of all its entries exactly as stored (`<module>@<version>/...`); a go.mod
//! is hashed as the single file named `go.mod`.

use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::VerifyError;

/// Accumulates per-file digests in any order and produces the `h1:` hash.
///
/// Memory is proportional to the number of files (name plus 32 bytes each), never to their size.
#[derive(Debug, Default)]
pub struct Hash1Builder {
    files: Vec<(String, [u8; 32])>,
}

impl Hash1Builder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file with the sha256 of its content. Names containing a newline are refused
    /// (dirhash refuses them too).
    pub fn add_digest(&mut self, name: &str, digest: [u8; 32]) -> Result<(), String> {
        if name.contains('\n') {
            return Err(format!("file name with a newline: {name:?}"));
        }
        self.files.push((name.to_string(), digest));
        Ok(())
    }

    /// Adds a file by reading its content to the end.
    pub fn add_reader(&mut self, name: &str, r: &mut impl Read) -> std::io::Result<u64> {
        let (digest, n) = sha256_reader(r)?;
        self.add_digest(name, digest)
            .map_err(std::io::Error::other)?;
        Ok(n)
    }

    /// The `h1:` hash of everything added so far.
    pub fn finish(mut self) -> String {
        // Go sorts strings bytewise, as does Rust's `str` ordering.
        self.files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut h = Sha256::new();
        let mut line = String::new();
        for (name, digest) in &self.files {
            line.clear();
            for b in digest {
                let _ = write!(line, "{b:02x}");
            }
            line.push_str("  ");
            line.push_str(name);
            line.push('\n');
            h.update(line.as_bytes());
        }
        format!(
            "h1:{}",
            base64::engine::general_purpose::STANDARD.encode(h.finalize())
        )
    }
}

/// sha256 of everything `r` yields, and the number of bytes read.
pub fn sha256_reader(r: &mut impl Read) -> std::io::Result<([u8; 32], u64)> {
    let mut h = Sha256::new();
    // On the stack: no heap allocation per zip entry (see the flate2 note in Cargo.toml).
    let mut buf = [0u8; 16 * 1024];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((h.finalize().into(), n))
}

/// The `h1:` hash of a go.mod file's content (the go.sum `/go.mod` line).
pub fn hash_go_mod(content: &[u8]) -> String {
    let mut b = Hash1Builder::new();
    // "go.mod" has no newline: cannot fail.
    let _ = b.add_digest("go.mod", Sha256::digest(content).into());
    b.finish()
}

/// The `h1:` hash of a zip file on disk, over all its entries as stored (like dirhash.HashZip),
/// without any module checks. Entries are read one at a time; use
/// [`check_zip`](super::check_zip) to validate and hash in one pass.
pub fn hash_zip(path: &Path) -> Result<String, VerifyError> {
    let file = std::fs::File::open(path).map_err(|e| VerifyError::io(path, e))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| {
        VerifyError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    let mut b = Hash1Builder::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| {
            VerifyError::io(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        b.add_reader(&name, &mut entry)
            .map_err(|e| VerifyError::io(path, e))?;
    }
    Ok(b.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_mod_hash_matches_dirhash() {
        // `module example.com/x\n` hashed by golang.org/x/mod/sumdb/dirhash.Hash1 over "go.mod".
        let want = {
            let d = Sha256::digest(b"module example.com/x\n");
            let hexd: String = d.iter().map(|b| format!("{b:02x}")).collect();
            let summary = format!("{hexd}  go.mod\n");
            format!(
                "h1:{}",
                base64::engine::general_purpose::STANDARD.encode(Sha256::digest(summary))
            )
        };
        assert_eq!(hash_go_mod(b"module example.com/x\n"), want);
    }

    #[test]
    fn order_independent_and_sorted_bytewise() {
        let mut a = Hash1Builder::new();
        a.add_digest("m@v1.0.0/b", [1; 32]).unwrap();
        a.add_digest("m@v1.0.0/B", [2; 32]).unwrap();
        a.add_digest("m@v1.0.0/a", [3; 32]).unwrap();
        let mut b = Hash1Builder::new();
        b.add_digest("m@v1.0.0/a", [3; 32]).unwrap();
        b.add_digest("m@v1.0.0/b", [1; 32]).unwrap();
        b.add_digest("m@v1.0.0/B", [2; 32]).unwrap();
        assert_eq!(a.finish(), b.finish());
    }

    #[test]
    fn newline_in_name_refused() {
        assert!(Hash1Builder::new().add_digest("a\nb", [0; 32]).is_err());
    }
}
