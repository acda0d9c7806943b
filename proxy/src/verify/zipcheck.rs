//! Module zip checks, following golang.org/x/mod/zip `CheckZip` and `Unzip`, with the `h1:` hash
//! computed in the same pass.
//!
//! The module path and version are assumed to be validated (and the version canonical) by the
//! caller: they come from a request that passed module path validation.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

use super::VerifyError;
use super::entry::{DEFLATED, RawReader, STORED};
use super::h1::{Hash1Builder, hash_go_mod as h1_go_mod};
use super::zipstream::{Prehashed, StreamedEntry};

/// Largest module zip file accepted, and the largest total uncompressed size of its files
/// (x/mod `zip.MaxZipFile`).
pub const MAX_ZIP_FILE: u64 = 500 << 20;
/// Largest go.mod file accepted (x/mod `zip.MaxGoMod`).
pub const MAX_GO_MOD: u64 = 16 << 20;
/// Largest LICENSE file accepted (x/mod `zip.MaxLICENSE`).
pub const MAX_LICENSE: u64 = 16 << 20;
/// Most entries a module zip may have. Not an x/mod rule (a deliberate difference): the zip
/// reader holds the whole central directory in memory, and a 500 MiB zip of empty entries
/// would be millions of them. The largest real modules have tens of thousands of files.
pub const MAX_ZIP_ENTRIES: u64 = 200_000;

/// What [`check_zip`] learned about a valid module zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipSummary {
    /// The go.sum `h1:` hash of the zip.
    pub h1: String,
    /// The content of the module root `go.mod`, if the zip has one.
    pub go_mod: Option<Vec<u8>>,
    /// Number of files (directory entries not counted).
    pub files: usize,
    /// Total uncompressed size of the files.
    pub uncompressed: u64,
    /// Files whose digest came from the pass made while the zip downloaded.
    pub streamed: usize,
}

/// Checks a module zip on disk the way the `go` command does before extracting it, and computes
/// its `h1:` hash in the same pass. Entries are streamed one at a time: memory grows with the
/// number of entries, not with their size.
///
/// Rules (x/mod/zip): zip file at most 500 MiB; every entry named `<module>@<version>/...`;
/// file paths valid per `module.CheckFilePath` (no `..`, `.`, empty elements, absolute paths,
/// backslashes or other disallowed characters, no Windows-reserved names); no two entries equal
/// or equal ignoring case, no entry both a file and a directory; `go.mod` only at the module
/// root and spelled in lower case; total uncompressed size at most 500 MiB; `go.mod` and
/// `LICENSE` at most 16 MiB each; every entry's content exactly its declared size.
pub fn check_zip(path: &Path, module: &str, version: &str) -> Result<ZipSummary, VerifyError> {
    check_zip_with(path, module, version, None)
}

/// [`check_zip`], taking each file's digest from a pass made while the zip downloaded
/// ([`super::zipstream`]) when that pass read the very bytes the central directory points to:
/// same local header offset, method, compressed size, size and CRC-32. Other files are read
/// from disk as in [`check_zip`], so the answer is the same either way.
pub fn check_zip_with(
    path: &Path,
    module: &str,
    version: &str,
    prehashed: Option<&Prehashed>,
) -> Result<ZipSummary, VerifyError> {
    let invalid = |reason: String| VerifyError::InvalidZip {
        module: module.to_string(),
        version: version.to_string(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| VerifyError::io(path, e))?;
    let zip_size = file.metadata().map_err(|e| VerifyError::io(path, e))?.len();
    if zip_size > MAX_ZIP_FILE {
        return Err(invalid(format!(
            "module zip file is too large ({zip_size} bytes; limit is {MAX_ZIP_FILE} bytes)"
        )));
    }
    if let Some(n) = declared_entries(&file)
        && n > MAX_ZIP_ENTRIES
    {
        return Err(invalid(format!(
            "module zip has {n} entries; limit is {MAX_ZIP_ENTRIES}"
        )));
    }
    let mut archive = zip::ZipArchive::new(BufReader::with_capacity(64 * 1024, file))
        .map_err(|e| invalid(format!("not a valid zip file: {e}")))?;
    if archive.has_duplicate_names() {
        return Err(invalid("multiple entries with the same name".to_string()));
    }

    let prefix = format!("{module}@{version}/");
    let mut collisions = CollisionChecker::default();
    let mut hash = Hash1Builder::new();
    let mut go_mod = None;
    let mut files = 0usize;
    let mut total = 0u64;
    let mut streamed = 0usize;
    let mut raw = RawReader::new();

    for i in 0..archive.len() {
        let meta = archive
            .by_index_data(i)
            .map_err(|e| invalid(format!("entry {i}: {e}")))?;
        let full = std::str::from_utf8(meta.name_raw())
            .map_err(|_| {
                invalid(format!(
                    "{}: file name is not valid UTF-8",
                    String::from_utf8_lossy(meta.name_raw())
                ))
            })?
            .to_string();
        let Some(rel) = full.strip_prefix(&prefix) else {
            return Err(invalid(format!(
                "{full}: path does not have prefix {prefix:?}"
            )));
        };
        let declared = meta.size();
        let is_dir = full.ends_with('/');
        if !rel.is_empty() {
            let name = rel.strip_suffix('/').unwrap_or(rel);
            check_file_path(name).map_err(|r| invalid(format!("{full}: {r}")))?;
            collisions
                .check(name, is_dir)
                .map_err(|r| invalid(format!("{full}: {r}")))?;
            if !is_dir {
                let base = name.rsplit('/').next().unwrap_or(name);
                if base.eq_ignore_ascii_case("go.mod") {
                    if base != name {
                        return Err(invalid(format!(
                            "{full}: go.mod file not in module root directory"
                        )));
                    }
                    if name != "go.mod" {
                        return Err(invalid(format!(
                            "{full}: go.mod files must have lowercase names"
                        )));
                    }
                }
                if MAX_ZIP_FILE - total >= declared {
                    total += declared;
                } else {
                    return Err(invalid(format!(
                        "total uncompressed size of module contents too large (max size is {MAX_ZIP_FILE} bytes)"
                    )));
                }
                if name == "go.mod" && declared > MAX_GO_MOD {
                    return Err(invalid(format!(
                        "{full}: go.mod file too large (max size is {MAX_GO_MOD} bytes)"
                    )));
                }
                if name == "LICENSE" && declared > MAX_LICENSE {
                    return Err(invalid(format!(
                        "{full}: LICENSE file too large (max size is {MAX_LICENSE} bytes)"
                    )));
                }
                files += 1;
            }
        }

        // Hash every entry as stored, directories included, like dirhash.HashZip. Go's
        // archive/zip opens a directory entry as empty whatever bytes it stores, and fails if
        // it declares a non-zero size (so the go command's hash fails): directories are never
        // read here.
        if is_dir {
            if declared != 0 {
                return Err(invalid(format!(
                    "{full}: directory entry declares {declared} bytes of content"
                )));
            }
            hash.add_digest(&full, Sha256::digest([]).into())
                .map_err(|r| invalid(format!("{full}: {r}")))?;
            continue;
        }
        // Looked up for files only: directories are never read.
        let from_stream = prehashed.and_then(|p| {
            p.get(meta.header_start())
                .filter(|s| same_content(s, &meta))
                .map(|s| (s.sha256, p.go_mod_at(meta.header_start())))
        });
        match from_stream {
            // The root go.mod's content is needed too; the pass keeps it unless it is too large.
            Some((digest, go_mod_content)) if rel != "go.mod" || go_mod_content.is_some() => {
                if rel == "go.mod" {
                    go_mod = go_mod_content.map(<[u8]>::to_vec);
                }
                streamed += 1;
                hash.add_digest(&full, digest)
                    .map_err(|r| invalid(format!("{full}: {r}")))?;
                continue;
            }
            _ => {}
        }
        // Raw bytes, inflated here with the one inflater of this check (entry.rs says why).
        if meta.encrypted() {
            return Err(invalid(format!(
                "{full}: encrypted entries are not supported"
            )));
        }
        let (method, crc32) = (method_of(meta.compression()), meta.crc32());
        let mut entry = archive
            .by_index_raw(i)
            .map_err(|e| invalid(format!("entry {i}: {e}")))?;
        // Stops just past the declared size (declared sizes of files are bounded by the total
        // limit above), so a lying header cannot make us inflate without bound.
        let got = raw
            .read(&mut entry, method, declared, rel == "go.mod")
            .map_err(|r| invalid(format!("{full}: {r}")))?;
        let (digest, n) = (got.sha256, got.size);
        if n == declared && got.crc32 != crc32 {
            return Err(invalid(format!("{full}: checksum error")));
        }
        if rel == "go.mod" {
            go_mod = got.kept;
        }
        if n != declared {
            return Err(invalid(format!(
                "{full}: uncompressed size {} does not match declared size ({declared} bytes)",
                if n > declared {
                    "is larger".to_string()
                } else {
                    n.to_string()
                }
            )));
        }
        hash.add_digest(&full, digest)
            .map_err(|r| invalid(format!("{full}: {r}")))?;
    }

    Ok(ZipSummary {
        h1: hash.finish(),
        go_mod,
        files,
        uncompressed: total,
        streamed,
    })
}

/// The method number as stored in the zip (the zip crate names the ones it knows). Its numeric
/// view (`Unsupported(n)`) is deprecated, but the number is what the error message shows.
#[allow(deprecated)]
fn method_of(m: zip::CompressionMethod) -> u16 {
    match m {
        zip::CompressionMethod::Stored => STORED,
        zip::CompressionMethod::Deflated => DEFLATED,
        zip::CompressionMethod::Unsupported(n) => n,
        // Methods the zip crate names but this build does not read: never 0 or 8.
        _ => u16::MAX,
    }
}

/// Whether the zip reader would read exactly what the pass inflated for this entry: the same
/// method, not encrypted, the same compressed length from the same local header (so the same
/// bytes), and the content the directory declares by size and CRC-32.
fn same_content(s: &StreamedEntry, meta: &zip::read::ZipFileEntry<'_>) -> bool {
    !meta.encrypted()
        && s.method == method_of(meta.compression())
        && s.compressed == meta.compressed_size()
        && s.size == meta.size()
        && s.crc32 == meta.crc32()
}

/// The go.mod the `go` command expects to be served as `.mod` for a module version: the zip's
/// root go.mod, or, for a module without one, the synthesized `module <path>\n` (cmd/go
/// `modfetch.LegacyGoMod`: the path quoted only when go.mod syntax requires it).
pub fn expected_go_mod(module: &str, zip_go_mod: Option<&[u8]>) -> Vec<u8> {
    match zip_go_mod {
        Some(b) => b.to_vec(),
        None => format!("module {}\n", auto_quote(module)).into_bytes(),
    }
}

/// The `h1:` hash of a go.mod file (the go.sum `/go.mod` line).
pub fn hash_go_mod(content: &[u8]) -> String {
    h1_go_mod(content)
}

/// x/mod/modfile `AutoQuote`: `s`, or its Go-syntax quotation when `MustQuote(s)`.
fn auto_quote(s: &str) -> String {
    if must_quote(s) {
        go_quote(s)
    } else {
        s.to_string()
    }
}

/// Go's `unicode.IsPrint`, exact for ASCII; for other characters approximated as "not a control
/// character and not white space" (Rust has no general-category API).
fn is_print(c: char) -> bool {
    if c.is_ascii() {
        c == ' ' || c.is_ascii_graphic()
    } else {
        !c.is_control() && !c.is_whitespace()
    }
}

/// x/mod/modfile `MustQuote`.
fn must_quote(s: &str) -> bool {
    let many = s.chars().count() > 1;
    for c in s.chars() {
        match c {
            ' ' | '"' | '\'' | '`' => return true,
            '(' | ')' | '[' | ']' | '{' | '}' | ',' if many => return true,
            _ if !is_print(c) => return true,
            _ => {}
        }
    }
    s.is_empty() || s.contains("//") || s.contains("/*")
}

/// Go's `strconv.Quote` for valid UTF-8 input.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_print(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// x/mod `module.CheckFilePath` (for the part of the name after `<module>@<version>/`).
fn check_file_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("empty file path".into());
    }
    if p.contains("//") {
        return Err("double slash in file path".into());
    }
    if p.ends_with('/') {
        return Err("trailing slash in file path".into());
    }
    for elem in p.split('/') {
        check_elem(elem)?;
    }
    Ok(())
}

fn check_elem(elem: &str) -> Result<(), String> {
    if elem.is_empty() {
        return Err("empty path element (absolute path or double slash)".into());
    }
    if elem.chars().all(|c| c == '.') {
        return Err(format!("invalid path element {elem:?}"));
    }
    if elem.ends_with('.') {
        return Err(format!("trailing dot in path element {elem:?}"));
    }
    for c in elem.chars() {
        if !file_name_ok(c) {
            return Err(format!("invalid char {c:?} in file path"));
        }
    }
    if let Some(short) = crate::module::windows_reserved_name(elem) {
        return Err(format!(
            "{short:?} disallowed as path element component on Windows"
        ));
    }
    Ok(())
}

/// The entry count the zip's end-of-central-directory record declares (zip64 included), read
/// before the central directory itself is loaded. `None` when there is no such record: the
/// zip reader then reports the zip as invalid.
fn declared_entries(file: &std::fs::File) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    const EOCD: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
    const ZIP64_LOCATOR: [u8; 4] = [0x50, 0x4b, 0x06, 0x07];
    const ZIP64_EOCD: [u8; 4] = [0x50, 0x4b, 0x06, 0x06];
    let mut f = file;
    let len = f.metadata().ok()?.len();
    // The record is 22 bytes plus a comment of at most 64 KiB, at the very end.
    let tail_len = len.min(22 + 65_535 + 20);
    let mut tail = vec![0u8; tail_len as usize];
    f.seek(SeekFrom::Start(len - tail_len)).ok()?;
    f.read_exact(&mut tail).ok()?;
    let at = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == EOCD)?;
    let count = u64::from(u16::from_le_bytes([tail[at + 10], tail[at + 11]]));
    if count != 0xFFFF {
        return Some(count);
    }
    // Zip64: the locator sits just before the record and points at the zip64 record.
    let loc = at.checked_sub(20)?;
    if tail[loc..loc + 4] != ZIP64_LOCATOR {
        return Some(count);
    }
    let offset = u64::from_le_bytes(tail[loc + 8..loc + 16].try_into().ok()?);
    let mut rec = [0u8; 40];
    f.seek(SeekFrom::Start(offset)).ok()?;
    f.read_exact(&mut rec).ok()?;
    (rec[..4] == ZIP64_EOCD).then(|| u64::from_le_bytes(rec[32..40].try_into().unwrap_or_default()))
}

/// x/mod `fileNameOK`: outside ASCII, Go's `unicode.IsLetter` (general category L). Rust's
/// `is_alphabetic` would also let through combining marks (U+0345, Devanagari vowel signs),
/// letter numbers (U+2160) and circled letters (U+24B6), which x/mod rejects.
///
/// Deliberate difference: the category tables are a newer Unicode version than Go's (15.0 in
/// Go 1.26), so letters added since then pass here and fail in the go command.
fn file_name_ok(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || "!#$%&()+,-.=@[]^_{}~ ".contains(c)
    } else {
        c.general_category_group() == GeneralCategoryGroup::Letter
    }
}

/// A key such that two names have the same key exactly when Go's `strings.EqualFold` says they
/// are equal (x/mod `strToFold`, which maps each rune to the smallest of its `unicode.SimpleFold`
/// orbit). Here each character maps to the lower case of its upper case, keeping the character
/// where either mapping is not a single character (ß, İ). Checked against Go's tables for every
/// code point: the orbits agree except for the dotless ı, which upper-cases to I but does not
/// fold with it in Go, and letters newer than Go's Unicode version (deliberate, see
/// [`file_name_ok`]). Plain lower-casing would miss ſ/s, ς/σ and K/k (Kelvin sign).
fn str_to_fold(s: &str) -> String {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        return s.to_string();
    }
    s.chars().map(fold_char).collect()
}

fn fold_char(c: char) -> char {
    fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
        match (it.next(), it.next()) {
            (Some(x), None) => Some(x),
            _ => None,
        }
    }
    if c == '\u{131}' {
        return c;
    }
    let upper = single(c.to_uppercase()).unwrap_or(c);
    single(upper.to_lowercase()).unwrap_or(upper)
}

#[derive(Default)]
struct CollisionChecker {
    seen: HashMap<String, (String, bool)>,
}

impl CollisionChecker {
    /// x/mod zip `collisionChecker.check`: `p` and each of its parents (as directories).
    fn check(&mut self, p: &str, is_dir: bool) -> Result<(), String> {
        let mut p = p;
        let mut is_dir = is_dir;
        loop {
            let fold = str_to_fold(p);
            match self.seen.get(&fold) {
                Some((other, other_dir)) => {
                    if other != p {
                        return Err(format!(
                            "case-insensitive file name collision: {other:?} and {p:?}"
                        ));
                    }
                    if *other_dir != is_dir {
                        return Err(format!("entry {p:?} is both a file and a directory"));
                    }
                    if !is_dir {
                        return Err(format!("multiple entries for file {p:?}"));
                    }
                }
                None => {
                    self.seen.insert(fold, (p.to_string(), is_dir));
                }
            }
            match p.rfind('/') {
                Some(i) => {
                    p = &p[..i];
                    is_dir = true;
                }
                None => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn make_zip(entries: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut w = zip::ZipWriter::new(f.reopen().unwrap());
        for (name, data) in entries {
            if name.ends_with('/') {
                w.add_directory(*name, SimpleFileOptions::default())
                    .unwrap();
            } else {
                w.start_file(*name, SimpleFileOptions::default()).unwrap();
                w.write_all(data).unwrap();
            }
        }
        w.finish().unwrap();
        f
    }

    /// [`check_zip`], asserting that the check with a pass over the same bytes
    /// ([`check_zip_with`]) answers exactly the same, whatever the zip.
    fn check(path: &Path, module: &str, version: &str) -> Result<ZipSummary, VerifyError> {
        let plain = check_zip(path, module, version);
        let bytes = std::fs::read(path).unwrap();
        let go_mod_name = format!("{module}@{version}/go.mod");
        let pass = crate::verify::prehash(&bytes[..], go_mod_name.as_bytes());
        let with = check_zip_with(path, module, version, Some(&pass));
        match (&plain, &with) {
            (Ok(a), Ok(b)) => {
                assert_eq!((&a.h1, &a.go_mod, a.files), (&b.h1, &b.go_mod, b.files));
                assert_eq!(a.uncompressed, b.uncompressed);
                assert_eq!(a.streamed, 0);
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("with the pass {with:?}, without {plain:?}"),
        }
        plain
    }

    fn expected_h1(files: &[(&str, &[u8])]) -> String {
        let mut b = Hash1Builder::new();
        for (n, d) in files {
            b.add_digest(n, Sha256::digest(d).into()).unwrap();
        }
        b.finish()
    }

    const M: &str = "example.com/m";
    const V: &str = "v1.0.0";

    #[test]
    fn valid_zip_with_go_mod() {
        let entries: &[(&str, &[u8])] = &[
            ("example.com/m@v1.0.0/go.mod", b"module example.com/m\n"),
            ("example.com/m@v1.0.0/m.go", b"package m\n"),
            ("example.com/m@v1.0.0/sub/x.go", b"package sub\n"),
        ];
        let z = make_zip(entries);
        let s = check(z.path(), M, V).unwrap();
        assert_eq!(s.go_mod.as_deref(), Some(&b"module example.com/m\n"[..]));
        assert_eq!(s.files, 3);
        assert_eq!(s.uncompressed, 21 + 10 + 12);
        assert_eq!(s.h1, expected_h1(entries));
        assert_eq!(s.h1, super::super::hash_zip(z.path()).unwrap());
    }

    #[test]
    fn too_many_entries_are_refused_before_the_directory_is_read() {
        let z = make_zip(&[("example.com/m@v1.0.0/a.go", b"package m\n")]);
        assert_eq!(declared_entries(z.as_file()), Some(1));
        // Claim more entries than the limit in the end record (zip64, as a real zip with that
        // many entries would): refused before the central directory is loaded.
        let mut bytes = std::fs::read(z.path()).unwrap();
        let eocd = bytes.len() - 22;
        let dir_size = u32::from_le_bytes(bytes[eocd + 12..eocd + 16].try_into().unwrap());
        let dir_offset = u32::from_le_bytes(bytes[eocd + 16..eocd + 20].try_into().unwrap());
        let zip64_at = eocd as u64;
        let mut rec = vec![0x50, 0x4b, 0x06, 0x06];
        rec.extend_from_slice(&44u64.to_le_bytes());
        rec.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        rec.extend_from_slice(&(MAX_ZIP_ENTRIES + 1).to_le_bytes());
        rec.extend_from_slice(&(MAX_ZIP_ENTRIES + 1).to_le_bytes());
        rec.extend_from_slice(&u64::from(dir_size).to_le_bytes());
        rec.extend_from_slice(&u64::from(dir_offset).to_le_bytes());
        let mut loc = vec![0x50, 0x4b, 0x06, 0x07, 0, 0, 0, 0];
        loc.extend_from_slice(&zip64_at.to_le_bytes());
        loc.extend_from_slice(&1u32.to_le_bytes());
        let mut end = bytes.split_off(eocd);
        end[8..12].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        bytes.extend(rec);
        bytes.extend(loc);
        bytes.extend(end);
        std::fs::write(z.path(), &bytes).unwrap();
        assert_eq!(declared_entries(z.as_file()), Some(MAX_ZIP_ENTRIES + 1));
        let e = check(z.path(), M, V).unwrap_err().to_string();
        assert!(e.contains("entries; limit is"), "{e}");
    }

    #[test]
    fn sub_go_mod_is_not_root_go_mod() {
        let z = make_zip(&[("example.com/m@v1.0.0/a.go", b"package m\n")]);
        let s = check(z.path(), M, V).unwrap();
        assert_eq!(s.go_mod, None);
    }

    #[test]
    fn invalid_zips() {
        type Entries<'a> = &'a [(&'a str, &'a [u8])];
        let cases: &[(Entries, &str)] = &[
            (&[("other.com/m@v1.0.0/a.go", b"x")], "does not have prefix"),
            (
                &[("example.com/m@v1.0.1/a.go", b"x")],
                "does not have prefix",
            ),
            (
                &[("example.com/m@v1.0.0/../a.go", b"x")],
                "invalid path element",
            ),
            (
                &[("example.com/m@v1.0.0/./a.go", b"x")],
                "invalid path element",
            ),
            (&[("example.com/m@v1.0.0//a.go", b"x")], "double slash"),
            (&[("example.com/m@v1.0.0/a\\b.go", b"x")], "invalid char"),
            (&[("example.com/m@v1.0.0/a:b.go", b"x")], "invalid char"),
            (&[("example.com/m@v1.0.0/con.go", b"x")], "disallowed"),
            (&[("example.com/m@v1.0.0/a.", b"x")], "trailing dot"),
            (
                &[
                    ("example.com/m@v1.0.0/A.go", b"x"),
                    ("example.com/m@v1.0.0/a.go", b"y"),
                ],
                "case-insensitive",
            ),
            (
                &[
                    ("example.com/m@v1.0.0/a", b"x"),
                    ("example.com/m@v1.0.0/a/b", b"y"),
                ],
                "both a file and a directory",
            ),
            (
                &[("example.com/m@v1.0.0/sub/go.mod", b"x")],
                "not in module root",
            ),
            (&[("example.com/m@v1.0.0/GO.MOD", b"x")], "lowercase"),
        ];
        for (entries, want) in cases {
            let z = make_zip(entries);
            let err = check(z.path(), M, V).unwrap_err().to_string();
            assert!(err.contains(want), "{entries:?}: got {err}, want {want}");
            assert!(err.starts_with("invalid module zip for example.com/m@v1.0.0: "));
        }
    }

    #[test]
    fn absolute_and_dot_dot_outside_prefix() {
        let z = make_zip(&[("/etc/passwd", b"x")]);
        assert!(check(z.path(), M, V).is_err());
        let z = make_zip(&[("example.com/m@v1.0.0/a/../../b", b"x")]);
        assert!(check(z.path(), M, V).is_err());
    }

    #[test]
    fn exact_duplicate_rejected() {
        // The zip writer refuses duplicates, so patch a second name into an existing one.
        let z = make_zip(&[
            ("example.com/m@v1.0.0/a.go", b"x"),
            ("example.com/m@v1.0.0/b.go", b"y"),
        ]);
        let mut data = std::fs::read(z.path()).unwrap();
        let from = b"example.com/m@v1.0.0/b.go";
        let to = b"example.com/m@v1.0.0/a.go";
        let mut i = 0;
        while i + from.len() <= data.len() {
            if &data[i..i + from.len()] == from {
                data[i..i + from.len()].copy_from_slice(to);
            }
            i += 1;
        }
        std::fs::write(z.path(), data).unwrap();
        let err = check(z.path(), M, V).unwrap_err().to_string();
        assert!(err.contains("multiple entries"), "{err}");
    }

    #[test]
    fn go_mod_too_large() {
        let big = vec![b'a'; (MAX_GO_MOD + 1) as usize];
        let z = make_zip(&[("example.com/m@v1.0.0/go.mod", &big)]);
        let err = check(z.path(), M, V).unwrap_err().to_string();
        assert!(err.contains("go.mod file too large"), "{err}");
    }

    /// Rewrites the uncompressed size in every central directory header.
    fn patch_declared_size(path: &Path, size: u32) {
        let mut data = std::fs::read(path).unwrap();
        let sig = [0x50u8, 0x4b, 0x01, 0x02];
        let mut i = 0;
        while i + 28 <= data.len() {
            if data[i..i + 4] == sig {
                data[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
            }
            i += 1;
        }
        std::fs::write(path, data).unwrap();
    }

    #[test]
    fn declared_sizes_are_limited_and_enforced() {
        let z = make_zip(&[("example.com/m@v1.0.0/a.go", b"x")]);
        patch_declared_size(z.path(), 600 << 20);
        let err = check(z.path(), M, V).unwrap_err().to_string();
        assert!(err.contains("total uncompressed size"), "{err}");

        // A directory entry that declares content is refused (Go's archive/zip fails to open
        // it, so dirhash fails), whatever the size: it cannot make us read either.
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut w = zip::ZipWriter::new(f.reopen().unwrap());
        w.start_file("example.com/m@v1.0.0/d/", SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"content").unwrap();
        w.finish().unwrap();
        let err = check(f.path(), M, V).unwrap_err().to_string();
        assert!(err.contains("directory entry declares 7 bytes"), "{err}");
        for size in [7, 600 << 20] {
            let z = make_zip(&[("example.com/m@v1.0.0/d/", b"")]);
            patch_declared_size(z.path(), size);
            let err = check(z.path(), M, V).unwrap_err().to_string();
            assert!(err.contains("directory entry declares"), "{err}");
        }

        // Content longer than declared is refused.
        let z = make_zip(&[("example.com/m@v1.0.0/a.go", b"0123456789")]);
        patch_declared_size(z.path(), 3);
        assert!(check(z.path(), M, V).is_err());
    }

    #[test]
    fn file_names_allow_letters_only_outside_ascii() {
        // Letters (general category L) pass, as in Go's unicode.IsLetter.
        for ok in ["é.go", "日本.go", "ǅ.go", "ß", "ı"] {
            assert_eq!(check_elem(ok), Ok(()), "{ok:?}");
        }
        // Alphabetic but not letters: combining marks, letter numbers, circled letters.
        for bad in [
            "a\u{345}.go",
            "क\u{93e}.go",
            "\u{2160}.go",
            "\u{24b6}.go",
            "a\u{301}",
            "😀",
        ] {
            assert!(check_elem(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn case_folding_matches_go_simple_fold() {
        // Same key exactly when Go's strings.EqualFold says equal.
        let same = [
            ("A.go", "a.go"),
            ("K", "\u{212a}"),
            ("s", "ſ"),
            ("σ", "ς"),
            ("Σ", "ς"),
            ("ß", "ẞ"),
            ("ǅ", "ǆ"),
            ("Ǆ", "ǅ"),
            ("\u{345}", "ι"),
            ("Å", "\u{212b}"),
        ];
        for (a, b) in same {
            assert_eq!(str_to_fold(a), str_to_fold(b), "{a:?} {b:?}");
        }
        let different = [("ı", "i"), ("ı", "I"), ("İ", "i"), ("ß", "ss"), ("a", "b")];
        for (a, b) in different {
            assert_ne!(str_to_fold(a), str_to_fold(b), "{a:?} {b:?}");
        }
    }

    #[test]
    fn not_a_zip() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), b"not a zip").unwrap();
        let err = check(f.path(), M, V).unwrap_err().to_string();
        assert!(err.contains("not a valid zip file"), "{err}");
    }

    #[test]
    fn directory_entries_are_hashed_like_dirhash() {
        let entries: &[(&str, &[u8])] = &[
            ("example.com/m@v1.0.0/", b""),
            ("example.com/m@v1.0.0/d/", b""),
            ("example.com/m@v1.0.0/d/a.go", b"package d\n"),
        ];
        let z = make_zip(entries);
        let s = check(z.path(), M, V).unwrap();
        assert_eq!(s.files, 1);
        assert_eq!(s.h1, expected_h1(entries));
    }

    #[test]
    fn synthesized_go_mod() {
        assert_eq!(
            expected_go_mod("github.com/pkg/errors", None),
            b"module github.com/pkg/errors\n"
        );
        assert_eq!(expected_go_mod("x", Some(b"module y\n")), b"module y\n");
        assert_eq!(expected_go_mod("a b", None), b"module \"a b\"\n");
        assert_eq!(expected_go_mod("a//b", None), b"module \"a//b\"\n");
        assert_eq!(expected_go_mod("a\"b", None), b"module \"a\\\"b\"\n");
        assert_eq!(expected_go_mod("a(b", None), b"module \"a(b\"\n");
        assert_eq!(expected_go_mod("(", None), b"module (\n");
        // Known go.sum line: github.com/pkg/errors v0.9.1/go.mod (a module without go.mod).
        assert_eq!(
            hash_go_mod(&expected_go_mod("github.com/pkg/errors", None)),
            "h1:bwawxfHBFNV+L2hUp1rHADufV3IMtnDRdf1r5NINEl0="
        );
    }
}
