//! Bounding the mirror cache: each mirror's directory time is its last use (touched on every
//! request that uses it, kept across restarts); after a fetch, the least recently used mirrors
//! are removed until the rest fit in the configured size. Mirrors used in the last
//! [`IN_USE`] are never removed (a request may still be reading one), nor is the one just
//! fetched. Blocking: run on `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A mirror used this recently may still be read by a request: it stays.
pub const IN_USE: Duration = Duration::from_secs(120);

/// One mirror on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub dir: PathBuf,
    pub bytes: u64,
    pub used: SystemTime,
}

/// Which mirrors to remove so the rest fit in `max` bytes: oldest use first, skipping `keep`
/// and anything used after `busy_after`. Pure.
pub fn pick_evictions(
    mut mirrors: Vec<Mirror>,
    max: u64,
    keep: &Path,
    busy_after: SystemTime,
) -> Vec<PathBuf> {
    let mut total: u64 = mirrors.iter().map(|m| m.bytes).sum();
    mirrors.sort_by_key(|m| m.used);
    let mut out = Vec::new();
    for m in mirrors {
        if total <= max {
            break;
        }
        if m.dir == keep || m.used > busy_after {
            continue;
        }
        total -= m.bytes;
        out.push(m.dir);
    }
    out
}

/// Marks a mirror as used now (its directory's modification time).
pub fn touch(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// Removes least recently used mirrors under `cache_dir` until at most `max` bytes remain.
/// Returns how many were removed.
pub fn evict(cache_dir: &Path, max: u64, keep: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(cache_dir) else {
        return 0;
    };
    let mirrors: Vec<Mirror> = rd
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".git"))
        .filter_map(|e| {
            let used = e.metadata().ok()?.modified().ok()?;
            Some(Mirror {
                bytes: dir_bytes(&e.path()),
                dir: e.path(),
                used,
            })
        })
        .collect();
    let busy_after = SystemTime::now()
        .checked_sub(IN_USE)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let gone = pick_evictions(mirrors, max, keep, busy_after);
    let mut n = 0;
    for dir in gone {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => n += 1,
            Err(e) => tracing::warn!(dir = %dir.display(), "removing a git mirror: {e}"),
        }
    }
    n
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, bytes: u64, age: u64) -> Mirror {
        Mirror {
            dir: PathBuf::from(name),
            bytes,
            used: SystemTime::UNIX_EPOCH + Duration::from_secs(1000 - age),
        }
    }

    #[test]
    fn least_recently_used_go_first_until_it_fits() {
        let busy_after = SystemTime::UNIX_EPOCH + Duration::from_secs(990);
        let all = vec![m("new", 50, 20), m("old", 30, 500), m("mid", 40, 100)];
        let got = pick_evictions(all.clone(), 80, Path::new("x"), busy_after);
        assert_eq!(got, [PathBuf::from("old"), PathBuf::from("mid")]);
        // Under the limit: nothing goes.
        assert!(pick_evictions(all.clone(), 120, Path::new("x"), busy_after).is_empty());
        // The mirror just fetched stays even when it is the oldest.
        let got = pick_evictions(all.clone(), 70, Path::new("old"), busy_after);
        assert_eq!(got, [PathBuf::from("mid"), PathBuf::from("new")]);
        // Recently used mirrors stay, even over the limit.
        let busy_after = SystemTime::UNIX_EPOCH;
        assert!(pick_evictions(all, 10, Path::new("x"), busy_after).is_empty());
    }

    #[test]
    fn evicts_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        for (name, size) in [("a.git", 3000), ("b.git", 3000), ("c.git", 3000)] {
            let d = dir.path().join(name);
            std::fs::create_dir_all(d.join("objects")).unwrap();
            std::fs::write(d.join("objects/pack"), vec![0u8; size]).unwrap();
        }
        // a is the oldest, c the one just fetched; b was used long ago too.
        let old = SystemTime::now() - Duration::from_secs(3600);
        for (name, t) in [("a.git", old), ("b.git", old + Duration::from_secs(60))] {
            let f = std::fs::File::open(dir.path().join(name)).unwrap();
            f.set_modified(t).unwrap();
        }
        let keep = dir.path().join("c.git");
        assert_eq!(evict(dir.path(), 6500, &keep), 1);
        assert!(!dir.path().join("a.git").exists());
        assert!(dir.path().join("b.git").exists() && keep.exists());
    }
}
