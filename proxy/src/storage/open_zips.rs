//! Open zips of a local (`file://`) bucket, kept open between requests.
//!
//! A warm zip request used to open and stat its file on the blocking pool: a hand-off to
//! another thread and back (futex wake-ups, a context switch) plus three system calls, per
//! request. nginx opens inline; we keep the descriptor instead. Sharing one descriptor between
//! concurrent responses is safe because every read of it is positional (`pread`), never
//! through the file's own position. Committed zips never change, but a file can be lost or
//! replaced behind the proxy's back: a hit checks (one fstat) that the descriptor's file is
//! still linked, and [`OpenZips::remove`] drops it when this proxy uncommits or repairs a
//! version.

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex};

/// Most descriptors kept; when full the set starts over (a busy proxy serves a small working
/// set of hot zips, and a miss costs one open).
const MAX_OPEN: usize = 64;

/// A zip file opened once, shared by every response that sends it.
#[derive(Clone, Debug)]
pub struct OpenZip {
    pub file: Arc<File>,
    pub size: u64,
}

#[derive(Debug, Default)]
pub struct OpenZips {
    map: Mutex<HashMap<String, OpenZip>>,
}

impl OpenZips {
    /// The kept descriptor for `key`, if its file is still the bucket's: a zip deleted or
    /// replaced behind this proxy's back (a lost file, a restore, another replica's repair)
    /// must be found missing and filled again, not served from the old inode. One fstat on
    /// the descriptor, no path lookup.
    pub fn get(&self, key: &str) -> Option<OpenZip> {
        let zip = self.map.lock().ok()?.get(key).cloned()?;
        if still_linked(&zip) {
            return Some(zip);
        }
        self.remove(key);
        None
    }

    pub fn put(&self, key: String, zip: OpenZip) {
        let Ok(mut m) = self.map.lock() else { return };
        if m.len() >= MAX_OPEN && !m.contains_key(&key) {
            m.clear();
        }
        m.insert(key, zip);
    }

    pub fn remove(&self, key: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(key);
        }
    }
}

fn still_linked(zip: &OpenZip) -> bool {
    use std::os::unix::fs::MetadataExt;
    zip.file
        .metadata()
        .is_ok_and(|m| m.nlink() > 0 && m.len() == zip.size)
}

/// Opens a zip and reads its size (blocking: call off the async workers).
pub fn open(path: &std::path::Path) -> std::io::Result<OpenZip> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    Ok(OpenZip {
        file: Arc::new(file),
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_at(dir: &std::path::Path, name: &str, bytes: &[u8]) -> OpenZip {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        open(&p).unwrap()
    }

    #[test]
    fn a_kept_zip_is_found_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let zips = OpenZips::default();
        zips.put("a.zip".into(), zip_at(dir.path(), "a", b"abc"));
        assert_eq!(zips.get("a.zip").map(|z| z.size), Some(3));
        zips.remove("a.zip");
        assert!(zips.get("a.zip").is_none());
    }

    #[test]
    fn a_zip_deleted_or_replaced_behind_our_back_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let zips = OpenZips::default();
        zips.put("a.zip".into(), zip_at(dir.path(), "a", b"abc"));
        std::fs::remove_file(dir.path().join("a")).unwrap();
        assert!(zips.get("a.zip").is_none(), "deleted");
        zips.put("b.zip".into(), zip_at(dir.path(), "b", b"abc"));
        std::fs::write(dir.path().join("b.new"), b"abcd").unwrap();
        std::fs::rename(dir.path().join("b.new"), dir.path().join("b")).unwrap();
        assert!(zips.get("b.zip").is_none(), "replaced");
    }

    #[test]
    fn the_set_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let zips = OpenZips::default();
        for i in 0..=MAX_OPEN {
            zips.put(format!("{i}.zip"), zip_at(dir.path(), &i.to_string(), b"x"));
        }
        assert!(zips.map.lock().unwrap().len() <= MAX_OPEN);
        assert!(zips.get(&format!("{MAX_OPEN}.zip")).is_some());
    }
}
