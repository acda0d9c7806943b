//! Reading and committing module versions.

use super::StorageError;
use super::layout::{self, Layout};
use super::open_zips::{self, OpenZip, OpenZips};
use super::zip_cache::ZipCache;
use crate::fetch::negative_cache::TtlCache;
use crate::module::{Version, unescape_version};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path as Key;
use object_store::signer::{Method, Signer};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncReadExt;

/// Read size when streaming a zip from a temp file into the bucket.
const UPLOAD_CHUNK: usize = 1 << 20;

/// Memory for committed `.info` and `.mod` objects, which never change once written.
const SMALL_CACHE_BYTES: usize = 16 << 20;

/// The bucket, holding module versions in protocol layout.
#[derive(Clone, Debug)]
pub struct Store {
    pub(super) os: Arc<dyn ObjectStore>,
    small: Arc<SmallCache>,
    /// For `file://` buckets: the folder, so zips stream straight from the file in large reads
    /// (the object store's local reader hands out 8 KiB chunks, one blocking task each).
    pub(super) local_root: Option<std::path::PathBuf>,
    /// Each module's committed versions, as listed from the bucket a moment ago (see
    /// [`LISTING_TTL`]).
    listings: Arc<TtlCache<Arc<Listing>>>,
    /// `storage.zip_redirect_seconds`: the bucket's signer and how long its URLs stay valid.
    zip_redirect: Option<(Arc<dyn Signer>, std::time::Duration)>,
    /// A cloud bucket's paged listing, so `/catalog` and `/index` walks continue listings.
    pub(super) pager: Option<super::walk::Pager>,
    /// `/index` page tokens by the `since` key a client will send next (see `catalog.rs`).
    pub(super) index_hints: Arc<Mutex<HashMap<String, String>>>,
    /// Zips of a local bucket kept open between requests (see `open_zips.rs`).
    open_zips: Arc<OpenZips>,
    /// Local copies of a remote bucket's zips (see `zip_cache.rs`).
    zip_cache: Option<Arc<ZipCache>>,
}

/// How long a module's listing of committed versions is reused. Listing walks the bucket (a
/// directory read, or a LIST call to an object store) and `list` requests are frequent, so a
/// listing is remembered briefly. A version this replica commits or uncommits is seen at once
/// (the memory is dropped); one another replica commits is seen within this long.
pub const LISTING_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Read size when streaming a zip out of a local bucket.
const LOCAL_ZIP_CHUNK: usize = 256 << 10;

/// Committed `.info` and `.mod` bytes by key. They are immutable, so a hit never needs the
/// bucket: a warm `.info` or `.mod` is a hash lookup instead of a round trip to storage (two
/// blocking-pool hops for a local disk). Bounded: when full it starts over.
#[derive(Debug, Default)]
struct SmallCache {
    map: Mutex<(HashMap<String, Bytes>, usize)>,
}

impl SmallCache {
    fn remove(&self, k: &str) {
        if let Ok(mut m) = self.map.lock()
            && let Some(v) = m.0.remove(k)
        {
            m.1 -= k.len() + v.len();
        }
    }

    fn get(&self, k: &str) -> Option<Bytes> {
        self.map.lock().ok()?.0.get(k).cloned()
    }

    fn contains(&self, k: &str) -> bool {
        self.map.lock().is_ok_and(|m| m.0.contains_key(k))
    }

    fn put(&self, k: String, v: Bytes) {
        let Ok(mut m) = self.map.lock() else { return };
        let size = k.len() + v.len();
        if size > SMALL_CACHE_BYTES / 16 {
            return;
        }
        if m.1 + size > SMALL_CACHE_BYTES {
            m.0.clear();
            m.1 = 0;
        }
        if m.0.insert(k, v).is_none() {
            m.1 += size;
        }
    }
}

/// A stored zip, streamed out without buffering.
pub struct ZipObject {
    pub size: u64,
    pub body: ZipBody,
}

/// Where a stored zip's bytes come from.
pub enum ZipBody {
    /// The file itself, in a local bucket: the server may send it without copying. Shared
    /// with other responses, so it is only ever read at explicit offsets.
    File(Arc<std::fs::File>),
    /// The object store's stream.
    Stream(BoxStream<'static, Result<Bytes, object_store::Error>>),
}

impl ZipObject {
    /// The bytes as a stream (a local file in large reads).
    pub fn into_stream(self) -> BoxStream<'static, Result<Bytes, object_store::Error>> {
        match self.body {
            ZipBody::Stream(s) => s,
            ZipBody::File(f) => {
                // Positional reads: the descriptor is shared (see `open_zips.rs`).
                let size = self.size;
                futures::stream::try_unfold(0u64, move |at| {
                    let f = f.clone();
                    async move {
                        if at >= size {
                            return Ok(None);
                        }
                        let want = LOCAL_ZIP_CHUNK
                            .min(usize::try_from(size - at).unwrap_or(LOCAL_ZIP_CHUNK));
                        let chunk = tokio::task::spawn_blocking(move || read_at(&f, at, want))
                            .await
                            .map_err(std::io::Error::other)
                            .and_then(|r| r)
                            .map_err(|e| object_store::Error::Generic {
                                store: "local",
                                source: Box::new(e),
                            })?;
                        let next = at + chunk.len() as u64;
                        Ok(Some((chunk, next)))
                    }
                })
                .boxed()
            }
        }
    }
}

/// Reads `want` bytes at `at`; a file shorter than that is an error, never a short body.
fn read_at(f: &std::fs::File, at: u64, want: usize) -> std::io::Result<Bytes> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; want];
    f.read_exact_at(&mut buf, at)?;
    Ok(Bytes::from(buf))
}

fn local_zip(z: OpenZip) -> ZipObject {
    ZipObject {
        size: z.size,
        body: ZipBody::File(z.file),
    }
}

/// Copies `src` to `dest` in a local bucket as a multipart upload would place it: whole or not
/// at all (a staging name beside it, renamed into place). On the same file system `src` (a
/// verified download nobody writes again) is linked, not copied: its bytes are written once.
/// Elsewhere the kernel copies them (`copy_file_range`), where the object store's upload took
/// four thread hand-offs per MiB: 190 MiB/s, a second of a cold build graph's 188 MiB of zips.
/// The staging name ends in `#` and digits, which the object store's listings skip, as they
/// skip its own.
fn place_local(src: &Path, dest: &Path) -> std::io::Result<()> {
    static STAGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let n = STAGED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut staging = dest.as_os_str().to_owned();
    staging.push(format!("#{}{n}", std::process::id()));
    let staging = std::path::PathBuf::from(staging);
    let placed = std::fs::hard_link(src, &staging)
        .or_else(|_| std::fs::copy(src, &staging).map(drop))
        .and_then(|_| std::fs::rename(&staging, dest));
    if placed.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    placed
}

/// A module's committed versions as listed from the bucket.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Every version, unsorted.
    pub all: Vec<Version>,
    /// The tagged ones (no pseudo-versions), sorted: what `list` names.
    pub tagged: Vec<Version>,
}

impl Listing {
    pub fn new(all: Vec<Version>) -> Self {
        let tagged = crate::module::tagged_sorted(&all);
        Self { all, tagged }
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }
}

impl crate::fetch::negative_cache::Weigh for Arc<Listing> {
    /// Each version twice (all and tagged), with its allocation's overhead.
    fn weight(&self) -> usize {
        self.all.iter().map(|v| 2 * (v.as_str().len() + 24)).sum()
    }
}

/// What a commit found.
#[derive(Debug, PartialEq, Eq)]
pub enum Committed {
    /// We wrote the `.info` marker: the version is now visible.
    Written,
    /// Another writer had committed it first; ours changed nothing visible.
    AlreadyThere,
}

fn key(s: &str) -> Result<Key, StorageError> {
    Key::parse(s).map_err(|source| StorageError::Key {
        key: s.to_string(),
        source,
    })
}

impl Store {
    pub fn new(os: Arc<dyn ObjectStore>) -> Self {
        Self {
            os,
            small: Arc::default(),
            local_root: None,
            listings: Arc::new(TtlCache::new(LISTING_TTL)),
            zip_redirect: None,
            pager: None,
            index_hints: Arc::default(),
            open_zips: Arc::default(),
            zip_cache: None,
        }
    }

    /// The store a storage URL names, with what its kind allows: large reads from a local
    /// folder, paged listings of a cloud bucket.
    pub fn open(
        url: &str,
        options: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, StorageError> {
        let mut store = Self::new(super::open(url, options)?);
        if let Some(root) = url.strip_prefix("file://") {
            store.local_root = Some(root.into());
        }
        store.pager = super::open_pager(url, options)?;
        Ok(store)
    }

    /// Answers warm zips with pre-signed URLs of the bucket, valid for `ttl`.
    pub fn with_zip_redirect(mut self, signer: Arc<dyn Signer>, ttl: std::time::Duration) -> Self {
        self.zip_redirect = Some((signer, ttl));
        self
    }

    /// Serves zips of a remote bucket from local copies made as they are first streamed.
    pub fn with_zip_cache(mut self, cache: ZipCache) -> Self {
        self.zip_cache = Some(Arc::new(cache));
        self
    }

    /// A pre-signed URL of a committed version's zip, when zip redirects are on and the zip is
    /// in the bucket (checked once per process: it is immutable); `None` means stream it (or
    /// fill it first) as usual.
    pub async fn zip_redirect(&self, l: Layout<'_>) -> Result<Option<String>, StorageError> {
        let Some((signer, ttl)) = &self.zip_redirect else {
            return Ok(None);
        };
        if !self.has_version(l).await? {
            return Ok(None);
        }
        let k = l.zip();
        // The zip is written before the marker, so it is there unless someone deleted it from
        // the bucket; one HEAD per zip and process makes sure, and an empty entry in the
        // memory of immutable objects remembers the answer.
        if !self.small.contains(&k) {
            match self.os.head(&key(&k)?).await {
                Ok(_) => self.small.put(k.clone(), Bytes::new()),
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        let url = signer.signed_url(Method::GET, &key(&k)?, *ttl).await?;
        Ok(Some(url.to_string()))
    }

    /// A small object's bytes, or `None` when it does not exist.
    pub async fn get_blob(&self, k: &str) -> Result<Option<Bytes>, StorageError> {
        match self.os.get(&key(k)?).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a small object only if absent. Returns false if it already existed.
    pub async fn create_blob(&self, k: &str, data: Bytes) -> Result<bool, StorageError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .os
            .put_opts(&key(k)?, PutPayload::from(data), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a small derived object, replacing what is there.
    pub async fn replace_blob(&self, k: &str, data: Bytes) -> Result<(), StorageError> {
        self.os.put(&key(k)?, PutPayload::from(data)).await?;
        Ok(())
    }

    pub async fn delete_blob(&self, k: &str) -> Result<(), StorageError> {
        match self.os.delete(&key(k)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The `.info` of a committed version; `None` means the version does not exist.
    pub async fn info(&self, l: Layout<'_>) -> Result<Option<Bytes>, StorageError> {
        self.get_immutable(l.info()).await
    }

    /// The `.info` of a committed version if it is in memory (no bucket round trip).
    pub fn info_cached(&self, l: Layout<'_>) -> Option<Bytes> {
        self.small.get(&l.info())
    }

    /// `.info` and `.mod` of a version whose `.mod` was verified on its own (its mod marker
    /// exists, see [`Layout::mod_marker`]), whether or not its zip is stored yet. `None` when
    /// either is missing.
    pub async fn mod_only(&self, l: Layout<'_>) -> Result<Option<(Bytes, Bytes)>, StorageError> {
        let Some(info) = self.get_immutable(l.mod_marker()).await? else {
            return Ok(None);
        };
        Ok(self.get_immutable(l.go_mod()).await?.map(|m| (info, m)))
    }

    /// Stores a version's `.mod` verified against the checksum database, then its mod marker
    /// holding `info` (create-only). Returns the `.info` bytes in force: another writer's, when
    /// it wrote the marker first, so every replica serves the same `.info`.
    pub async fn commit_mod(
        &self,
        l: Layout<'_>,
        go_mod: Bytes,
        info: Bytes,
    ) -> Result<Bytes, StorageError> {
        self.create_or_replace(&l.go_mod(), go_mod).await?;
        let marker = l.mod_marker();
        if self.create_blob(&marker, info.clone()).await? {
            self.small.put(marker, info.clone());
            return Ok(info);
        }
        Ok(self.get_immutable(marker).await?.unwrap_or(info))
    }

    /// A committed `.info` or `.mod`: from memory when seen before, else from the bucket.
    async fn get_immutable(&self, k: String) -> Result<Option<Bytes>, StorageError> {
        if let Some(b) = self.small.get(&k) {
            return Ok(Some(b));
        }
        let found = self.get_blob(&k).await?;
        if let Some(b) = &found {
            self.small.put(k, b.clone());
        }
        Ok(found)
    }

    /// The `.mod` of a committed version (checks the `.info` marker first).
    pub async fn go_mod(&self, l: Layout<'_>) -> Result<Option<Bytes>, StorageError> {
        if !self.has_version(l).await? {
            return Ok(None);
        }
        self.get_immutable(l.go_mod()).await
    }

    /// The `.zip` of a committed version, as a stream.
    pub async fn zip(&self, l: Layout<'_>) -> Result<Option<ZipObject>, StorageError> {
        if !self.has_version(l).await? {
            return Ok(None);
        }
        if let Some(root) = &self.local_root {
            let k = l.zip();
            if let Some(z) = self.open_zips.get(&k) {
                return Ok(Some(local_zip(z)));
            }
            // Any failure falls back to the object store, which says NotFound properly.
            let path = root.join(&k);
            if let Ok(Ok(z)) = tokio::task::spawn_blocking(move || open_zips::open(&path)).await {
                self.open_zips.put(k, z.clone());
                return Ok(Some(local_zip(z)));
            }
        }
        let k = l.zip();
        if let Some(cache) = &self.zip_cache
            && let Some(z) = cache.get(&k).await
        {
            return Ok(Some(local_zip(z)));
        }
        match self.os.get(&key(&k)?).await {
            Ok(r) => {
                let size = r.meta.size;
                let mut body = r.into_stream();
                if let Some(cache) = &self.zip_cache {
                    body = cache.copy_while_streaming(&k, size, body);
                }
                Ok(Some(ZipObject {
                    size,
                    body: ZipBody::Stream(body),
                }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the version's commit marker exists.
    pub async fn has_version(&self, l: Layout<'_>) -> Result<bool, StorageError> {
        let info = l.info();
        if self.small.contains(&info) {
            return Ok(true);
        }
        match self.os.head(&key(&info)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// A module's committed versions (those with `.info`), parsed; names that are not versions
    /// are skipped. Remembered for [`LISTING_TTL`] as parsed, so a warm `list` or `@latest`
    /// neither copies nor parses them per request.
    pub async fn stored_versions(&self, module: &str) -> Result<Arc<Listing>, StorageError> {
        if let Some(v) = self.listings.get(module) {
            return Ok(v);
        }
        let dir = key(&layout::versions_dir(module))?;
        let listing = self.os.list_with_delimiter(Some(&dir)).await?;
        let all: Vec<Version> = listing
            .objects
            .iter()
            .filter_map(|o| o.location.filename())
            .filter_map(layout::version_of_info)
            .filter_map(|v| unescape_version(v).ok())
            .filter_map(|v| Version::parse(&v).ok())
            .collect();
        let found = Arc::new(Listing::new(all));
        self.listings.put(module, Arc::clone(&found));
        Ok(found)
    }

    /// Drops a version's `.info` and `.mod` from memory, so the next read asks the bucket.
    pub fn forget(&self, l: Layout<'_>) {
        self.small.remove(&l.info());
        self.small.remove(&l.go_mod());
        self.small.remove(&l.mod_marker());
        self.small.remove(&l.zip());
        self.open_zips.remove(&l.zip());
        if let Some(cache) = &self.zip_cache {
            cache.forget(&l.zip());
        }
        self.listings.remove(l.module);
    }

    /// Makes a committed version invisible again (its `.info` marker removed, memory dropped),
    /// so that a version whose `.zip` or `.mod` was lost can be filled anew. Only called under
    /// the version's fill lease.
    pub async fn uncommit(&self, l: Layout<'_>) -> Result<(), StorageError> {
        self.forget(l);
        self.delete_blob(&l.info()).await
    }

    /// The `h1:` hash the version's zip was committed with, when it was recorded.
    pub async fn ziphash(&self, l: Layout<'_>) -> Result<Option<String>, StorageError> {
        Ok(self
            .get_blob(&l.ziphash())
            .await?
            .map(|b| String::from_utf8_lossy(&b).trim().to_string()))
    }

    /// Whether the version's `.zip` and `.mod` objects both exist in the bucket.
    pub async fn has_files(&self, l: Layout<'_>) -> Result<bool, StorageError> {
        for k in [l.zip(), l.go_mod()] {
            match self.os.head(&key(&k)?).await {
                Ok(_) => {}
                Err(object_store::Error::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }

    /// Stores a verified version: zip and mod first, `.info` last as the commit marker.
    ///
    /// The zip goes up as a multipart upload, which is atomic (no partial object is ever
    /// visible) but not create-only: `object_store` has no conditional multipart. That is safe
    /// because the version is invisible until `.info` exists, we never upload once it does, and
    /// every writer uploads bytes verified against the same checksum.
    pub async fn commit(
        &self,
        l: Layout<'_>,
        zip_file: &Path,
        go_mod: Bytes,
        info: Bytes,
        zip_h1: &str,
    ) -> Result<Committed, StorageError> {
        if self.has_version(l).await? {
            self.listings.remove(l.module);
            return Ok(Committed::AlreadyThere);
        }
        // The three files under the `.info` at once (one round trip's wait on a remote bucket,
        // not three). A crashed earlier attempt may have left the `.mod` and `.ziphash`; it was
        // verified the same way, but make sure.
        let (zip, go_mod_key, ziphash) = (l.zip(), l.go_mod(), l.ziphash());
        // All three run to their end even when one fails: an upload is never cut off midway.
        let (zipped, modded, hashed) = tokio::join!(
            self.upload_file(&zip, zip_file),
            self.create_or_replace(&go_mod_key, go_mod),
            self.create_or_replace(&ziphash, Bytes::from(format!("{zip_h1}\n"))),
        );
        zipped.and(modded).and(hashed)?;
        let created = self.create_blob(&l.info(), info).await;
        // Visible now (ours or another writer's): the module's listing is out of date.
        self.listings.remove(l.module);
        let created = created?;
        // The bucket holds this verified zip now (ours or another writer's: the same hash).
        if let Some(cache) = &self.zip_cache {
            let (cache, k, file) = (Arc::clone(cache), l.zip(), zip_file.to_path_buf());
            let _ = tokio::task::spawn_blocking(move || cache.adopt(&k, &file)).await;
        }
        if created {
            // The version is committed whatever happens to its `/index` row (see catalog.rs).
            if let Err(e) = self.record_index(l).await {
                tracing::warn!(module = l.module, version = l.version, error = %e,
                    "committed, but writing its /index row failed");
            }
            Ok(Committed::Written)
        } else {
            Ok(Committed::AlreadyThere)
        }
    }

    /// Writes a not-yet-visible object: create-only, replaced only if different bytes are there.
    async fn create_or_replace(&self, k: &str, data: Bytes) -> Result<(), StorageError> {
        if !self.create_blob(k, data.clone()).await? {
            let existing = self.get_blob(k).await?;
            if existing.as_ref() != Some(&data) {
                self.replace_blob(k, data).await?;
            }
        }
        Ok(())
    }

    async fn upload_file(&self, k: &str, file: &Path) -> Result<(), StorageError> {
        let io = |source| StorageError::Io {
            path: file.display().to_string(),
            source,
        };
        if let Some(root) = &self.local_root {
            let (src, dest) = (file.to_path_buf(), root.join(k));
            return tokio::task::spawn_blocking(move || place_local(&src, &dest))
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r)
                .map_err(io);
        }
        let mut f = tokio::fs::File::open(file).await.map_err(io)?;
        let upload = self.os.put_multipart(&key(k)?).await?;
        let mut w = WriteMultipart::new(upload);
        let mut buf = vec![0u8; UPLOAD_CHUNK];
        loop {
            let n = f.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            w.wait_for_capacity(2).await?;
            w.write(&buf[..n]);
        }
        w.finish().await?;
        Ok(())
    }

    /// Readiness: the bucket answers (a missing object is a fine answer).
    pub async fn ping(&self) -> Result<(), StorageError> {
        let mut s = self.os.list(Some(&key("readyz-probe")?));
        match s.next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use std::time::Duration;

    fn layout() -> Layout<'static> {
        Layout {
            module: "example.com/m",
            version: "v1.0.0",
        }
    }

    #[tokio::test]
    async fn version_is_invisible_until_info_is_written() {
        let store = Store::new(Arc::new(InMemory::new()));
        let l = layout();
        store
            .create_blob(&l.zip(), Bytes::from_static(b"zip"))
            .await
            .unwrap();
        store
            .create_blob(&l.go_mod(), Bytes::from_static(b"module example.com/m\n"))
            .await
            .unwrap();
        assert!(store.go_mod(l).await.unwrap().is_none());
        assert!(store.zip(l).await.unwrap().is_none());
        assert!(
            store
                .stored_versions("example.com/m")
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn commit_writes_all_three_and_second_commit_changes_nothing() {
        let store = Store::new(Arc::new(InMemory::new()));
        let l = layout();
        let dir = tempfile::tempdir().unwrap();
        let zip = dir.path().join("z");
        std::fs::write(&zip, vec![7u8; 3 * UPLOAD_CHUNK + 5]).unwrap();
        let info = Bytes::from_static(br#"{"Version":"v1.0.0"}"#);
        let m = Bytes::from_static(b"module example.com/m\n");
        let r = store
            .commit(l, &zip, m.clone(), info.clone(), "h1:test")
            .await
            .unwrap();
        assert_eq!(r, Committed::Written);
        assert_eq!(store.info(l).await.unwrap(), Some(info.clone()));
        assert_eq!(store.go_mod(l).await.unwrap(), Some(m.clone()));
        assert_eq!(store.ziphash(l).await.unwrap().as_deref(), Some("h1:test"));
        assert!(store.has_files(l).await.unwrap());
        let z = store.zip(l).await.unwrap().unwrap();
        assert_eq!(z.size, (3 * UPLOAD_CHUNK + 5) as u64);
        assert_eq!(
            store.stored_versions("example.com/m").await.unwrap().tagged,
            vec![Version::parse("v1.0.0").unwrap()]
        );
        let again = store
            .commit(l, &zip, m, Bytes::from_static(b"{}"), "h1:test")
            .await
            .unwrap();
        assert_eq!(again, Committed::AlreadyThere);
        assert_eq!(store.info(l).await.unwrap(), Some(info));
    }

    #[tokio::test]
    async fn listings_see_own_commits_at_once_and_another_replicas_within_the_ttl() {
        let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (a, b) = (Store::new(bucket.clone()), Store::new(bucket));
        let dir = tempfile::tempdir().unwrap();
        let zip = dir.path().join("z");
        std::fs::write(&zip, b"zip").unwrap();
        let m = Bytes::from_static(b"module example.com/m\n");
        let commit = |s: Store, v: &'static str| {
            let (zip, m) = (zip.clone(), m.clone());
            async move {
                let l = Layout {
                    module: "example.com/m",
                    version: v,
                };
                let info = Bytes::from(format!(r#"{{"Version":"{v}"}}"#));
                s.commit(l, &zip, m, info, "h1:x").await.unwrap();
            }
        };
        let names = |l: Arc<Listing>| {
            l.all
                .iter()
                .map(|v| v.as_str().to_string())
                .collect::<Vec<_>>()
        };
        assert!(a.stored_versions("example.com/m").await.unwrap().is_empty());
        commit(a.clone(), "v1.0.0").await;
        assert_eq!(
            names(a.stored_versions("example.com/m").await.unwrap()),
            vec!["v1.0.0"]
        );
        // Another replica's commit: a's listing is remembered, then refreshed.
        commit(b, "v1.1.0").await;
        let started = std::time::Instant::now();
        while a.stored_versions("example.com/m").await.unwrap().all.len() < 2 {
            assert!(started.elapsed() < Duration::from_secs(30), "never seen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn uncommit_hides_a_version_and_forgets_it_in_memory() {
        let store = Store::new(Arc::new(InMemory::new()));
        let l = layout();
        let dir = tempfile::tempdir().unwrap();
        let zip = dir.path().join("z");
        std::fs::write(&zip, b"zip").unwrap();
        let info = Bytes::from_static(br#"{"Version":"v1.0.0"}"#);
        let m = Bytes::from_static(b"module example.com/m\n");
        store.commit(l, &zip, m, info, "h1:x").await.unwrap();
        // Warm the memory cache, then lose the zip behind the store's back.
        assert!(store.go_mod(l).await.unwrap().is_some());
        store.delete_blob(&l.zip()).await.unwrap();
        assert!(!store.has_files(l).await.unwrap());
        assert!(
            store.has_version(l).await.unwrap(),
            "memory still says committed"
        );
        store.uncommit(l).await.unwrap();
        assert!(!store.has_version(l).await.unwrap());
        assert!(store.info(l).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_remote_buckets_zip_is_copied_at_commit_or_once_streamed_and_dropped_with_its_version()
     {
        let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let with_cache = |dir: &Path| {
            let cache = ZipCache::open(dir, 1 << 20, Default::default()).unwrap();
            Store::new(bucket.clone()).with_zip_cache(cache)
        };
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (with_cache(dir_a.path()), with_cache(dir_b.path()));
        let l = layout();
        let dir = tempfile::tempdir().unwrap();
        let zip = dir.path().join("z");
        std::fs::write(&zip, b"PK zip bytes").unwrap();
        let info = Bytes::from_static(br#"{"Version":"v1.0.0"}"#);
        let m = Bytes::from_static(b"module example.com/m\n");
        a.commit(l, &zip, m, info, "h1:x").await.unwrap();
        let read_all = |z: ZipObject| async move {
            let chunks: Vec<Bytes> = z.into_stream().map(|c| c.unwrap()).collect().await;
            chunks.concat()
        };
        // The committing replica copied the verified file: its first read is local.
        let first = a.zip(l).await.unwrap().unwrap();
        assert!(matches!(first.body, ZipBody::File(_)), "adopted at commit");
        assert_eq!(read_all(first).await, b"PK zip bytes");
        // Another replica reads the bucket once, copying beside the stream, then its copy.
        let first = b.zip(l).await.unwrap().unwrap();
        assert!(matches!(first.body, ZipBody::Stream(_)), "from the bucket");
        assert_eq!(read_all(first).await, b"PK zip bytes");
        let started = std::time::Instant::now();
        let second = loop {
            let z = b.zip(l).await.unwrap().unwrap();
            if matches!(z.body, ZipBody::File(_)) {
                break z;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never copied");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(read_all(second).await, b"PK zip bytes");
        a.uncommit(l).await.unwrap();
        assert!(a.zip(l).await.unwrap().is_none());
        assert_eq!(std::fs::read_dir(dir_a.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_local_bucket_gets_its_zip_whole_and_no_staging_file_stays() {
        let bucket = tempfile::tempdir().unwrap();
        let url = format!("file://{}", bucket.path().display());
        let store = Store::open(&url, &Default::default()).unwrap();
        let l = layout();
        let dir = tempfile::tempdir().unwrap();
        let zip = dir.path().join("z");
        std::fs::write(&zip, vec![5u8; UPLOAD_CHUNK + 3]).unwrap();
        let info = Bytes::from_static(br#"{"Version":"v1.0.0"}"#);
        let m = Bytes::from_static(b"module example.com/m\n");
        store.commit(l, &zip, m, info, "h1:x").await.unwrap();
        let placed = std::fs::read(bucket.path().join(l.zip())).unwrap();
        assert_eq!(placed, vec![5u8; UPLOAD_CHUNK + 3]);
        // On one file system the download is linked, not copied; its own name going away (the
        // temp file dropped) leaves the bucket's.
        use std::os::unix::fs::MetadataExt;
        let (src, dst) = (
            std::fs::metadata(&zip).unwrap(),
            std::fs::metadata(bucket.path().join(l.zip())).unwrap(),
        );
        if src.dev() == dst.dev() {
            assert_eq!(src.ino(), dst.ino());
        }
        std::fs::remove_file(&zip).unwrap();
        assert_eq!(
            std::fs::read(bucket.path().join(l.zip())).unwrap(),
            vec![5u8; UPLOAD_CHUNK + 3]
        );
        let names: Vec<String> = std::fs::read_dir(bucket.path().join("example.com/m/@v"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains('#')), "{names:?}");
        // A source that cannot be read leaves nothing behind.
        let dest = bucket.path().join("example.com/m/@v/v2.0.0.zip");
        assert!(place_local(&dir.path().join("missing"), &dest).is_err());
        assert!(!dest.exists());
        assert_eq!(
            std::fs::read_dir(dest.parent().unwrap()).unwrap().count(),
            names.len()
        );
    }
}
