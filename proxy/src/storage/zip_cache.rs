//! Local copies of a remote bucket's zips (`storage.zip_cache_dir`).
//!
//! A warm zip from S3, GCS, Azure or MongoDB is a read from the bucket per request: its
//! latency, and every byte copied through the proxy. Committed zips never change, so the first
//! stream of one also writes it to local disk, and later requests are written from the local
//! file (server/file_body.rs), as for a `file://` bucket. The copy is made beside the response, never
//! in its way: chunks go to a writer thread through a bounded queue, and a full queue abandons
//! the copy rather than slowing the client. A copy is kept only when complete (as many bytes as
//! the bucket said) and synced, then renamed into place, so a crash leaves at most a `.part`
//! file, removed at the next start.
//!
//! Files are named by the SHA-256 of the bucket key, so only names this proxy made are ever
//! touched in the directory. Bounded by bytes: the least recently served copies go first.

use super::open_zips::{self, OpenZip, OpenZips};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use prometheus::{IntCounter, IntGauge};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Chunks queued for the writer before a copy is abandoned (a disk this far behind the
/// network should not hold the response back).
const QUEUE: usize = 256;

/// Copies being written at once; further misses stream without a copy.
const MAX_COPYING: usize = 8;

/// A zip larger than this share of the room is never copied: one zip must not flush the rest.
const LARGEST_SHARE: u64 = 4;

/// What the cache counts, for `/metrics` (unregistered ones when the caller has none).
#[derive(Clone, Debug)]
pub struct Counters {
    pub hits: IntCounter,
    pub misses: IntCounter,
    pub copied: IntCounter,
    pub abandoned: IntCounter,
    pub evicted: IntCounter,
    pub bytes: IntGauge,
}

impl Default for Counters {
    fn default() -> Self {
        let c = |n: &str| IntCounter::new(n, n).expect("valid metric name");
        Self {
            hits: c("hits"),
            misses: c("misses"),
            copied: c("copied"),
            abandoned: c("abandoned"),
            evicted: c("evicted"),
            bytes: IntGauge::new("bytes", "bytes").expect("valid metric name"),
        }
    }
}

#[derive(Debug)]
struct Entry {
    size: u64,
    /// When it was last served (a counter, not a clock: only the order matters).
    used: u64,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    bytes: u64,
    tick: u64,
    /// Copies being written, by file name, with the generation that started each (set to 0
    /// when the name is forgotten meanwhile, by an uncommit: that copy is not kept).
    copying: HashMap<String, u64>,
}

impl State {
    fn next(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Names to unlink so that the copies fit in `max`, least recently served first.
    fn evict_to(&mut self, max: u64) -> Vec<String> {
        let mut gone = Vec::new();
        while self.bytes > max {
            let Some(name) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(n, _)| n.clone())
            else {
                break;
            };
            if let Some(e) = self.entries.remove(&name) {
                self.bytes -= e.size;
            }
            gone.push(name);
        }
        gone
    }
}

#[derive(Debug)]
pub struct ZipCache {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
    /// Descriptors of copies kept open between requests (keyed by file name).
    open: OpenZips,
    counters: Counters,
}

/// The file name of a bucket key's copy.
fn file_name(key: &str) -> String {
    format!("{:x}.zip", Sha256::digest(key.as_bytes()))
}

fn is_copy_name(name: &str) -> bool {
    name.strip_suffix(".zip").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl ZipCache {
    /// Opens (creating) the directory and indexes the copies already there, oldest first by
    /// modification time; `.part` files of interrupted copies are removed. Blocking.
    pub fn open(dir: &Path, max_bytes: u64, counters: Counters) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // Unwritable is refused now, not found out as every copy is abandoned.
        tempfile::NamedTempFile::new_in(dir)?;
        let mut found = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".part") && is_copy_name(name.trim_end_matches(".part")) {
                let _ = std::fs::remove_file(e.path());
            } else if is_copy_name(&name) {
                let m = e.metadata()?;
                found.push((m.modified().ok(), name, m.len()));
            }
        }
        found.sort();
        let mut state = State::default();
        for (_, name, size) in found {
            let used = state.next();
            state.bytes += size;
            state.entries.insert(name, Entry { size, used });
        }
        let gone = state.evict_to(max_bytes);
        let cache = Self {
            dir: dir.to_path_buf(),
            max_bytes,
            state: Mutex::new(state),
            open: OpenZips::default(),
            counters,
        };
        cache.unlink(&gone);
        cache.counters.bytes.set(cache.bytes() as i64);
        Ok(cache)
    }

    fn bytes(&self) -> u64 {
        self.state.lock().map(|s| s.bytes).unwrap_or(0)
    }

    fn unlink(&self, names: &[String]) {
        for n in names {
            self.open.remove(n);
            let _ = std::fs::remove_file(self.dir.join(n));
        }
        if !names.is_empty() {
            self.counters.evicted.inc_by(names.len() as u64);
        }
    }

    /// The local copy of `key`, opened, if there is one. Counts a hit or a miss.
    pub async fn get(&self, key: &str) -> Option<OpenZip> {
        let name = file_name(key);
        let known = self.state.lock().ok().and_then(|mut s| {
            let used = s.next();
            let e = s.entries.get_mut(&name)?;
            e.used = used;
            Some(e.size)
        });
        let Some(size) = known else {
            self.counters.misses.inc();
            return None;
        };
        if let Some(z) = self.open.get(&name) {
            self.counters.hits.inc();
            return Some(z);
        }
        let path = self.dir.join(&name);
        match tokio::task::spawn_blocking(move || open_zips::open(&path)).await {
            Ok(Ok(z)) if z.size == size => {
                self.open.put(name, z.clone());
                self.counters.hits.inc();
                Some(z)
            }
            // Gone or changed behind our back: forget it, the bucket answers.
            _ => {
                self.forget_name(&name);
                self.counters.misses.inc();
                None
            }
        }
    }

    /// Drops the copy of `key` (its version was uncommitted or repaired), and any copy of it
    /// being written. Blocking (one unlink).
    pub fn forget(&self, key: &str) {
        self.forget_name(&file_name(key));
    }

    fn forget_name(&self, name: &str) {
        let known = self.state.lock().ok().and_then(|mut s| {
            // Generation 0 is never a writer's: its copy will not be kept.
            if let Some(g) = s.copying.get_mut(name) {
                *g = 0;
            }
            let e = s.entries.remove(name)?;
            s.bytes -= e.size;
            Some(s.bytes)
        });
        self.open.remove(name);
        if let Some(bytes) = known {
            let _ = std::fs::remove_file(self.dir.join(name));
            self.counters.bytes.set(bytes as i64);
        }
    }

    /// The generation of a new copy of `name`, when there is room for one: it fits, it is not
    /// there or being written already, and fewer than `most` copies are being written.
    fn reserve(&self, name: &str, size: u64, most: usize) -> Option<u64> {
        let mut s = self.state.lock().ok()?;
        if size > self.max_bytes / LARGEST_SHARE
            || s.entries.contains_key(name)
            || s.copying.contains_key(name)
            || s.copying.len() >= most
        {
            return None;
        }
        let g = s.next();
        s.copying.insert(name.to_string(), g);
        Some(g)
    }

    /// Copies `file`, a zip this proxy has just verified and stored as `key`, so the response
    /// that follows its fill (and later ones) comes from local disk instead of reading the
    /// bucket back. The kernel copies it (`copy_file_range`). Blocking.
    pub fn adopt(&self, key: &str, file: &Path) {
        let Ok(size) = std::fs::metadata(file).map(|m| m.len()) else {
            return;
        };
        let name = file_name(key);
        // Not bounded by MAX_COPYING: this holds no thread beyond the copy itself.
        let Some(generation) = self.reserve(&name, size, usize::MAX) else {
            return;
        };
        let part = self.dir.join(format!("{name}.part"));
        let copied = std::fs::copy(file, &part)
            .and_then(|n| std::fs::File::open(&part)?.sync_data().map(|()| n));
        if let Err(e) = &copied {
            tracing::warn!(dir = %self.dir.display(), error = %e,
                "writing a local copy of a zip failed; it is served from the bucket");
        }
        self.settle(
            name,
            generation,
            size,
            copied.is_ok_and(|n| n == size),
            &part,
        );
    }

    /// `body`, the bucket's stream of `key` (`size` bytes), also written to a local copy when
    /// there is room and no copy of it is being written already. The stream's items and timing
    /// are the bucket's: the copy only ever sees clones of the chunks.
    pub fn copy_while_streaming(
        self: &Arc<Self>,
        key: &str,
        size: u64,
        body: BoxStream<'static, Result<Bytes, object_store::Error>>,
    ) -> BoxStream<'static, Result<Bytes, object_store::Error>> {
        let name = file_name(key);
        let Some(generation) = self.reserve(&name, size, MAX_COPYING) else {
            return body;
        };
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        let cache = self.clone();
        tokio::task::spawn_blocking(move || cache.write_copy(name, generation, size, rx));
        Tee {
            body,
            tx: Some(tx),
            left: size,
        }
        .boxed()
    }

    /// The writer thread of one copy: chunks until the stream ends or is dropped; kept only if
    /// every byte arrived.
    fn write_copy(
        &self,
        name: String,
        generation: u64,
        size: u64,
        mut rx: tokio::sync::mpsc::Receiver<Bytes>,
    ) {
        let part = self.dir.join(format!("{name}.part"));
        // Complete when all `size` bytes arrived: the tee never sends more, and stops at a miss.
        let written = (|| -> std::io::Result<bool> {
            let mut f = std::fs::File::create(&part)?;
            let mut n = 0u64;
            while let Some(chunk) = rx.blocking_recv() {
                f.write_all(&chunk)?;
                n += chunk.len() as u64;
            }
            let complete = n == size;
            if complete {
                // Durable before it is named: a copy found after a crash is a whole one.
                f.sync_data()?;
            }
            Ok(complete)
        })();
        if let Err(e) = &written {
            tracing::warn!(dir = %self.dir.display(), error = %e,
                "writing a local copy of a zip failed; it is served from the bucket");
        }
        self.settle(name, generation, size, written.unwrap_or(false), &part);
    }

    /// Ends a copy: renamed into place and counted when `complete` and its name was not
    /// forgotten meanwhile, else its `part` file removed; copies make room as needed.
    fn settle(&self, name: String, generation: u64, size: u64, complete: bool, part: &Path) {
        let (kept, gone) = match self.state.lock() {
            Ok(mut s) => {
                // Renamed under the lock, so a concurrent forget either sees the copy or stops it.
                let kept = complete
                    && s.copying.get(&name) == Some(&generation)
                    && std::fs::rename(part, self.dir.join(&name)).is_ok();
                // Ours, forgotten or not: no other copy of this name starts while it is here.
                s.copying.remove(&name);
                let mut gone = Vec::new();
                if kept {
                    let used = s.next();
                    s.entries.insert(name, Entry { size, used });
                    s.bytes += size;
                    gone = s.evict_to(self.max_bytes);
                    self.counters.bytes.set(s.bytes as i64);
                }
                (kept, gone)
            }
            Err(_) => (false, Vec::new()),
        };
        if kept {
            self.counters.copied.inc();
        } else {
            let _ = std::fs::remove_file(part);
            self.counters.abandoned.inc();
        }
        self.unlink(&gone);
    }
}

/// The bucket's stream, handing a clone of each chunk to a copy's writer until the bucket's
/// `left` bytes have all passed (an HTTP server stops polling a body whose length it has sent,
/// so the stream's own end may never be seen: the writer counts bytes instead). A missed chunk
/// (an error, more bytes than announced, a full queue) or an early drop leaves the writer
/// short, and a short copy is not kept.
struct Tee {
    body: BoxStream<'static, Result<Bytes, object_store::Error>>,
    tx: Option<tokio::sync::mpsc::Sender<Bytes>>,
    left: u64,
}

impl futures::Stream for Tee {
    type Item = Result<Bytes, object_store::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let item = std::task::ready!(self.body.poll_next_unpin(cx));
        if let Some(tx) = self.tx.take() {
            let keep = match &item {
                Some(Ok(chunk)) if chunk.len() as u64 <= self.left => {
                    self.left -= chunk.len() as u64;
                    tx.try_send(chunk.clone()).is_ok() && self.left > 0
                }
                _ => false,
            };
            // Dropping the sender (all given, or one missed) ends the writer's queue.
            if keep {
                self.tx = Some(tx);
            }
        }
        std::task::Poll::Ready(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use std::time::Duration;

    fn chunks(parts: &[&'static [u8]]) -> BoxStream<'static, Result<Bytes, object_store::Error>> {
        let v: Vec<Result<Bytes, object_store::Error>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        futures::stream::iter(v).boxed()
    }

    /// Waits for the writer thread of a copy to finish (it runs beside the stream).
    async fn settled(cache: &ZipCache) {
        for _ in 0..500 {
            if cache.state.lock().unwrap().copying.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("copy never finished");
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    async fn stream_through(cache: &Arc<ZipCache>, key: &str, parts: &[&'static [u8]]) -> Bytes {
        let size = parts.iter().map(|p| p.len() as u64).sum();
        let s = cache.copy_while_streaming(key, size, chunks(parts));
        let got: Vec<Bytes> = s.try_collect().await.unwrap();
        settled(cache).await;
        got.concat().into()
    }

    #[tokio::test]
    async fn a_streamed_zip_is_served_from_its_copy_next_time() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ZipCache::open(dir.path(), 1000, Counters::default()).unwrap());
        assert!(cache.get("m/@v/v1.0.0.zip").await.is_none());
        let body = stream_through(&cache, "m/@v/v1.0.0.zip", &[b"PK", b"abc"]).await;
        assert_eq!(&body[..], b"PKabc", "the client gets the bucket's bytes");
        let z = cache.get("m/@v/v1.0.0.zip").await.expect("copied");
        assert_eq!(z.size, 5);
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 5];
        z.file.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"PKabc");
        assert_eq!(cache.counters.copied.get(), 1);
        assert_eq!(cache.counters.hits.get(), 1);
        assert!(
            cache.get("m/@v/v1.1.0.zip").await.is_none(),
            "other keys miss"
        );
    }

    #[tokio::test]
    async fn a_stream_dropped_halfway_leaves_no_copy() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ZipCache::open(dir.path(), 1000, Counters::default()).unwrap());
        let mut s = cache.copy_while_streaming("k.zip", 6, chunks(&[b"abc", b"def"]));
        assert!(s.next().await.is_some());
        drop(s);
        settled(&cache).await;
        assert!(cache.get("k.zip").await.is_none());
        assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
        assert_eq!(cache.counters.abandoned.get(), 1);
    }

    #[tokio::test]
    async fn a_copy_is_complete_once_all_bytes_passed_even_if_the_end_is_never_polled() {
        // hyper stops polling a body whose Content-Length it has sent.
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ZipCache::open(dir.path(), 1000, Counters::default()).unwrap());
        let mut s = cache.copy_while_streaming("k.zip", 6, chunks(&[b"abc", b"def"]));
        assert!(s.next().await.is_some());
        assert!(s.next().await.is_some());
        drop(s);
        settled(&cache).await;
        assert_eq!(cache.get("k.zip").await.map(|z| z.size), Some(6));
    }

    #[tokio::test]
    async fn a_verified_file_is_adopted_as_its_copy() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ZipCache::open(dir.path(), 1000, Counters::default()).unwrap();
        let src = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(src.path(), b"PK verified").unwrap();
        cache.adopt("a.zip", src.path());
        let z = cache.get("a.zip").await.expect("adopted");
        assert_eq!(z.size, 11);
        assert_eq!(
            std::fs::read(dir.path().join(file_name("a.zip"))).unwrap(),
            b"PK verified"
        );
        // Too large for the room: not adopted.
        std::fs::write(src.path(), vec![0u8; 251]).unwrap();
        cache.adopt("big.zip", src.path());
        assert!(cache.get("big.zip").await.is_none());
        assert_eq!(files(dir.path()).len(), 1);
    }

    #[tokio::test]
    async fn a_short_stream_or_an_error_leaves_no_copy() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ZipCache::open(dir.path(), 1000, Counters::default()).unwrap());
        // The bucket said 10 bytes and sent 3.
        let s = cache.copy_while_streaming("short.zip", 10, chunks(&[b"abc"]));
        let _: Vec<Bytes> = s.try_collect().await.unwrap();
        let failing = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Err(object_store::Error::Generic {
                store: "test",
                source: "reset".into(),
            }),
        ])
        .boxed();
        let s = cache.copy_while_streaming("err.zip", 6, failing);
        let _ = s.collect::<Vec<_>>().await;
        // More bytes than the bucket said.
        let s = cache.copy_while_streaming("long.zip", 2, chunks(&[b"abc"]));
        let _: Vec<Bytes> = s.try_collect().await.unwrap();
        settled(&cache).await;
        for k in ["short.zip", "err.zip", "long.zip"] {
            assert!(cache.get(k).await.is_none(), "{k}");
        }
        assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
    }

    #[tokio::test]
    async fn the_least_recently_served_copies_make_room() {
        let dir = tempfile::tempdir().unwrap();
        // Room for four 10-byte copies (a copy may take at most a quarter).
        let cache = Arc::new(ZipCache::open(dir.path(), 40, Counters::default()).unwrap());
        for k in ["a.zip", "b.zip", "c.zip", "d.zip"] {
            stream_through(&cache, k, &[b"0123456789"]).await;
        }
        assert!(
            cache.get("a.zip").await.is_some(),
            "a is now the most recent"
        );
        stream_through(&cache, "e.zip", &[b"0123456789"]).await;
        assert!(cache.get("b.zip").await.is_none(), "b was the least recent");
        for k in ["a.zip", "c.zip", "d.zip", "e.zip"] {
            assert!(cache.get(k).await.is_some(), "{k}");
        }
        assert_eq!(files(dir.path()).len(), 4);
        assert_eq!(cache.bytes(), 40);
        assert_eq!(cache.counters.evicted.get(), 1);
        // Too large to copy: more than a quarter of the room.
        stream_through(&cache, "big.zip", &[b"0123456789a"]).await;
        assert!(cache.get("big.zip").await.is_none());
    }

    #[tokio::test]
    async fn copies_survive_a_restart_and_interrupted_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let cache = Arc::new(ZipCache::open(dir.path(), 1000, Counters::default()).unwrap());
            stream_through(&cache, "a.zip", &[b"abc"]).await;
        }
        let part = dir.path().join(format!("{}.part", file_name("b.zip")));
        std::fs::write(&part, b"ab").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"not ours").unwrap();
        let cache = ZipCache::open(dir.path(), 1000, Counters::default()).unwrap();
        assert_eq!(cache.get("a.zip").await.map(|z| z.size), Some(3));
        assert!(!part.exists(), "the interrupted copy is removed");
        assert!(
            dir.path().join("notes.txt").exists(),
            "other files are left alone"
        );
        // A smaller room at the next start: copies are evicted to fit.
        drop(cache);
        let cache = ZipCache::open(dir.path(), 2, Counters::default()).unwrap();
        assert!(cache.get("a.zip").await.is_none());
        assert_eq!(files(dir.path()), vec!["notes.txt".to_string()]);
    }

    #[test]
    fn a_folder_that_cannot_be_made_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        assert!(ZipCache::open(&file.join("zips"), 1000, Counters::default()).is_err());
    }

    #[tokio::test]
    async fn a_forgotten_copy_is_gone_and_one_being_written_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ZipCache::open(dir.path(), 1000, Counters::default()).unwrap());
        stream_through(&cache, "a.zip", &[b"abc"]).await;
        cache.forget("a.zip");
        assert!(cache.get("a.zip").await.is_none());
        // Forgotten while its copy is being written.
        let mut s = cache.copy_while_streaming("b.zip", 6, chunks(&[b"abc", b"def"]));
        assert!(s.next().await.is_some());
        cache.forget("b.zip");
        while s.next().await.is_some() {}
        drop(s);
        settled(&cache).await;
        assert!(cache.get("b.zip").await.is_none());
        assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
    }

    #[tokio::test]
    async fn a_copy_deleted_behind_our_back_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ZipCache::open(dir.path(), 1000, Counters::default()).unwrap());
        stream_through(&cache, "a.zip", &[b"abc"]).await;
        std::fs::remove_file(dir.path().join(file_name("a.zip"))).unwrap();
        assert!(cache.get("a.zip").await.is_none());
        assert_eq!(cache.bytes(), 0);
    }
}
