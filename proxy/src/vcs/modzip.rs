//! Which files of a repository tree go into a module zip, by golang.org/x/mod/zip's rules
//! (checkFiles), and writing the zip. Selection is pure.

use super::gomod::go_minor;
use super::limits::{MAX_GO_MOD, MAX_LICENSE, MAX_ZIP_FILE};
use std::io::{Seek, Write};

/// What a tree entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Symlink,
    /// A submodule (gitlink) or anything else that is not a file.
    Other,
}

/// A file of the module's tree, named relative to the module root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    pub path: String,
    pub kind: Kind,
    pub size: u64,
}

/// The files the zip holds, in input order, or why the go command would refuse to make it.
/// `root_go_mod` is the module root's go.mod, which picks the vendor rule (Go 1.24 changed it).
pub fn select(files: &[TreeFile], root_go_mod: Option<&[u8]>) -> Result<Vec<usize>, String> {
    let new_vendor_rule = root_go_mod.and_then(go_minor).is_some_and(|m| m >= 24);
    // Directories holding a go.mod (other than the root) are other modules: left out.
    let nested: std::collections::HashSet<&str> = files
        .iter()
        .filter(|f| f.kind == Kind::Regular)
        .filter_map(|f| {
            let (dir, base) = f.path.rsplit_once('/')?;
            base.eq_ignore_ascii_case("go.mod").then_some(dir)
        })
        .collect();
    let in_nested = |p: &str| {
        let mut p = p;
        while let Some((dir, _)) = p.rsplit_once('/') {
            if nested.contains(dir) {
                return true;
            }
            p = dir;
        }
        false
    };
    let mut keep = Vec::new();
    let mut budget = MAX_ZIP_FILE;
    for (i, f) in files.iter().enumerate() {
        let p = f.path.as_str();
        if is_vendored(p, new_vendor_rule) || in_nested(p) || p == ".hg_archival.txt" {
            continue;
        }
        if p.eq_ignore_ascii_case("go.mod") && p != "go.mod" {
            return Err(format!("{p}: go.mod files must have lowercase names"));
        }
        if f.kind != Kind::Regular {
            continue;
        }
        if f.size > budget {
            return Err(format!(
                "module source tree too large (max size is {MAX_ZIP_FILE} bytes)"
            ));
        }
        budget -= f.size;
        if p == "go.mod" && f.size > MAX_GO_MOD {
            return Err(format!(
                "go.mod file too large (max size is {MAX_GO_MOD} bytes)"
            ));
        }
        if p == "LICENSE" && f.size > MAX_LICENSE {
            return Err(format!(
                "LICENSE file too large (max size is {MAX_LICENSE} bytes)"
            ));
        }
        keep.push(i);
    }
    Ok(keep)
}

/// x/mod/zip's isVendoredPackage: files in packages under `vendor/` are left out, with the
/// pre-1.24 offset bug kept for older modules (their checksums depend on it).
fn is_vendored(name: &str, new_rule: bool) -> bool {
    if new_rule && name == "vendor/modules.txt" {
        return true;
    }
    let i = if let Some(rest) = name.strip_prefix("vendor/") {
        name.len() - rest.len()
    } else if let Some(j) = name.find("/vendor/") {
        if new_rule {
            j + "/vendor/".len()
        } else {
            "/vendor/".len()
        }
    } else {
        return false;
    };
    name[i..].contains('/')
}

/// Writes a module zip: every entry `<module>@<version>/<path>`, deflated. `read` gives each
/// file's bytes when its turn comes, so only one file is in memory at a time.
pub fn write_zip<W: Write + Seek, F, E>(
    out: W,
    prefix: &str,
    files: impl IntoIterator<Item = F>,
    mut read: impl FnMut(F) -> Result<(String, Vec<u8>), E>,
) -> Result<W, String>
where
    E: std::fmt::Display,
{
    let mut zw = zip::ZipWriter::new(out);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for f in files {
        let (name, data) = read(f).map_err(|e| e.to_string())?;
        zw.start_file(format!("{prefix}{name}"), opts)
            .map_err(|e| e.to_string())?;
        zw.write_all(&data).map_err(|e| e.to_string())?;
    }
    zw.finish().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str) -> TreeFile {
        TreeFile {
            path: path.into(),
            kind: Kind::Regular,
            size: 1,
        }
    }

    fn kept(files: &[TreeFile], gomod: Option<&[u8]>) -> Vec<String> {
        select(files, gomod)
            .unwrap()
            .into_iter()
            .map(|i| files[i].path.clone())
            .collect()
    }

    #[test]
    fn omissions_like_x_mod_zip() {
        let mut link = f("link.go");
        link.kind = Kind::Symlink;
        let files = [
            f("go.mod"),
            f("a.go"),
            f("vendor/modules.txt"),
            f("vendor/x/y.go"),
            f("pkg/vendor/vendor.go"),
            f("pkg/vendor/foo/foo.go"),
            f("sub/go.mod"),
            f("sub/s.go"),
            f("sub/deeper/d.go"),
            f("subway/w.go"),
            f(".hg_archival.txt"),
            link,
        ];
        // Before Go 1.24: vendor/modules.txt stays, and the offset bug drops pkg/vendor/vendor.go.
        assert_eq!(
            kept(&files, Some(b"module m\ngo 1.21\n")),
            ["go.mod", "a.go", "vendor/modules.txt", "subway/w.go"]
        );
        assert_eq!(
            kept(&files, Some(b"module m\ngo 1.24\n")),
            ["go.mod", "a.go", "pkg/vendor/vendor.go", "subway/w.go"]
        );
    }

    #[test]
    fn refusals() {
        assert!(select(&[f("GO.MOD")], None).is_err());
        let mut big = f("go.mod");
        big.size = MAX_GO_MOD + 1;
        assert!(select(&[big], None).is_err());
        let mut huge = f("a.bin");
        huge.size = MAX_ZIP_FILE + 1;
        assert!(select(&[huge], None).is_err());
    }
}
