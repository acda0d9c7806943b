//! Walking the bucket's keys in order, from a resume point, a page at a time.
//!
//! `/catalog` and `/index` are answered from listings of the bucket itself (no database, no
//! in-process state), so every replica gives the same answer. Cloud stores (S3, GCS, Azure),
//! the memory store and the MongoDB store list in byte order and take a start-after offset, so
//! a page costs a few list calls however large the bucket is. The local file system lists in
//! directory order and filters the offset only after walking the whole tree, so for `file://`
//! buckets the walk is done here: each directory read and sorted, subtrees before the resume
//! point skipped. The two orders differ in one detail (`a.b/x` sorts before `a/x` in bytes,
//! after it by path components); a page token is only ever read back by the same bucket, and
//! each order is total, so paging is complete either way.
//!
//! On S3, GCS and Azure a walk also hands back the store's own page token for the listing page
//! its last item came from, and the next walk continues from that token instead of starting a
//! new listing after the key. MinIO answers every start-after listing by walking the folder from
//! that key to its end, so paging through 100,000 versions that way was quadratic (311 s);
//! a token continues the listing it belongs to. A token the store refuses (expired, or not its
//! own) falls back to the key, so a token only ever makes a walk faster, never different.

use super::StorageError;
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path as Key;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which keys a walk visits.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Module versions: top-level names without a dot are skipped (a module path's first
    /// element always has one, so `sumdb/` and our own `_index/` are never modules).
    Modules,
    /// Everything under one top-level folder.
    Under(&'a str),
}

/// A cloud store's own paged listing, with the bucket prefix its keys carry (`""` for none).
#[derive(Clone)]
pub struct Pager {
    pub(super) store: Arc<dyn PaginatedListStore>,
    pub(super) prefix: String,
}

impl std::fmt::Debug for Pager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pager")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Pager {
    pub fn new(store: Arc<dyn PaginatedListStore>, prefix: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        Self {
            store,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }
}

/// Where a walk starts: after a key, and with the store's page token of the listing page that
/// key came from, when the previous walk handed one out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Resume<'a> {
    pub after: Option<&'a str>,
    pub token: Option<&'a str>,
}

/// Items of one walk, and for each listing page that gave items the index of its first item
/// and the page token it was listed with (`None`: listed after a key, or not a paged store).
#[derive(Debug)]
pub struct Walked<T> {
    pub items: Vec<T>,
    pages: Vec<(usize, Option<String>)>,
}

impl<T> Walked<T> {
    fn untokened(items: Vec<T>) -> Self {
        Self {
            items,
            pages: Vec::new(),
        }
    }

    /// The page token that lists the page item `i` came from again: a later walk that resumes
    /// at or before item `i` can continue from it.
    pub fn token_of(&self, i: usize) -> Option<&str> {
        self.pages
            .iter()
            .rev()
            .find(|(first, _)| *first <= i)
            .and_then(|(_, t)| t.as_deref())
    }
}

/// Up to `limit` items `keep` makes of the keys in `scope` strictly after `from.after`, in
/// order.
pub(super) async fn walk<T: Send + 'static>(
    os: &Arc<dyn ObjectStore>,
    pager: Option<&Pager>,
    local_root: Option<&Path>,
    scope: Scope<'_>,
    from: Resume<'_>,
    limit: usize,
    keep: impl Fn(&str) -> Option<T> + Send + 'static,
) -> Result<Walked<T>, StorageError> {
    if limit == 0 {
        return Ok(Walked::untokened(Vec::new()));
    }
    let after = from.after;
    match (local_root, pager) {
        (Some(root), _) => {
            let (root, after) = (root.to_path_buf(), after.map(String::from));
            let under = match scope {
                Scope::Modules => None,
                Scope::Under(p) => Some(p.to_string()),
            };
            tokio::task::spawn_blocking(move || {
                walk_local(&root, under.as_deref(), after.as_deref(), limit, &keep)
            })
            .await
            .map_err(|e| StorageError::Io {
                path: "bucket walk".into(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map(Walked::untokened)
        }
        (None, Some(pager)) => walk_pages(pager, scope, from, limit, &keep).await,
        (None, None) => walk_listing(os, scope, after, limit, &keep)
            .await
            .map(Walked::untokened),
    }
}

/// Most keys a cloud store returns in one listing page.
const PAGE_KEYS: usize = 1000;

/// A cloud store's listing pages, continued by page token; a fresh listing (start-after) only
/// at the start and when jumping over a top-level folder that holds no modules.
async fn walk_pages<T>(
    pager: &Pager,
    scope: Scope<'_>,
    from: Resume<'_>,
    limit: usize,
    keep: &impl Fn(&str) -> Option<T>,
) -> Result<Walked<T>, StorageError> {
    let prefix = match scope {
        Scope::Modules => pager.prefix.clone(),
        Scope::Under(p) => format!("{}{p}/", pager.prefix),
    };
    let prefix = Some(prefix).filter(|p| !p.is_empty());
    let mut after = from.after.map(String::from);
    let mut token = from.token.map(String::from);
    let mut walked = Walked::untokened(Vec::new());
    'listing: loop {
        let used = token.take();
        let opts = PaginatedListOptions {
            offset: match (&used, &after) {
                (None, Some(a)) => Some(format!("{}{a}", pager.prefix)),
                _ => None,
            },
            page_token: used.clone(),
            max_keys: Some(PAGE_KEYS),
            ..Default::default()
        };
        let page = match pager.store.list_paginated(prefix.as_deref(), opts).await {
            Ok(page) => page,
            // Expired, or not this store's: list after the key instead.
            Err(_) if used.is_some() => continue,
            Err(e) => return Err(e.into()),
        };
        for meta in page.result.objects {
            let full = meta.location.as_ref();
            let Some(k) = full.strip_prefix(pager.prefix.as_str()) else {
                continue;
            };
            if after.as_deref().is_some_and(|a| k <= a) {
                continue;
            }
            if let Scope::Modules = scope {
                let top = k.split('/').next().unwrap_or(k);
                if !top.contains('.') {
                    // Jump over the whole folder: "<top>0" sorts right after every "<top>/...".
                    after = Some(format!("{top}0"));
                    continue 'listing;
                }
            }
            if let Some(item) = keep(k) {
                let n = walked.items.len();
                if walked.pages.last().is_none_or(|(_, t)| *t != used) {
                    walked.pages.push((n, used.clone()));
                }
                walked.items.push(item);
                if n + 1 >= limit {
                    return Ok(walked);
                }
            }
        }
        match page.page_token {
            Some(next) => token = Some(next),
            None => return Ok(walked),
        }
    }
}

/// Byte-ordered listings with a start-after offset.
async fn walk_listing<T>(
    os: &Arc<dyn ObjectStore>,
    scope: Scope<'_>,
    after: Option<&str>,
    limit: usize,
    keep: &impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, StorageError> {
    let prefix = match scope {
        Scope::Modules => None,
        Scope::Under(p) => Some(parse(p)?),
    };
    let mut offset = after.map(parse).transpose()?;
    let mut out = Vec::new();
    'restart: loop {
        let mut listing = match &offset {
            Some(o) => os.list_with_offset(prefix.as_ref(), o),
            None => os.list(prefix.as_ref()),
        };
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            let k = meta.location.as_ref();
            if offset.as_ref().is_some_and(|o| k <= o.as_ref()) {
                continue; // a backend that ignores the offset, or lists out of order
            }
            if let Scope::Modules = scope {
                let top = k.split('/').next().unwrap_or(k);
                if !top.contains('.') {
                    // Jump over the whole folder: "<top>0" sorts right after every "<top>/...".
                    offset = Some(parse(&format!("{top}0"))?);
                    continue 'restart;
                }
            }
            if let Some(item) = keep(k) {
                out.push(item);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        return Ok(out);
    }
}

fn parse(k: &str) -> Result<Key, StorageError> {
    Key::parse(k).map_err(|source| StorageError::Key {
        key: k.to_string(),
        source,
    })
}

/// Depth-first over sorted directory entries, skipping what sorts before `after`.
fn walk_local<T>(
    root: &Path,
    under: Option<&str>,
    after: Option<&str>,
    limit: usize,
    keep: &impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, StorageError> {
    let bound: Vec<&str> = after.map(|a| a.split('/').collect()).unwrap_or_default();
    let mut w = LocalWalk {
        keep,
        limit,
        out: Vec::new(),
        modules_only: under.is_none(),
    };
    let mut rel = Vec::new();
    let (dir, bound): (PathBuf, &[&str]) = match under {
        Some(u) => {
            // Only keys under `u` are visited: a bound in another folder excludes all or none.
            let b: &[&str] = match bound.split_first() {
                Some((first, rest)) if *first == u => rest,
                Some((first, _)) if *first > u => return Ok(Vec::new()),
                _ => &[],
            };
            rel.push(u.to_string());
            (root.join(u), b)
        }
        None => (root.to_path_buf(), &bound[..]),
    };
    let bound = Some(bound).filter(|b| !b.is_empty());
    w.dir(&dir, &mut rel, bound)
        .map_err(|source| StorageError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    Ok(w.out)
}

struct LocalWalk<'k, T, F: Fn(&str) -> Option<T>> {
    keep: &'k F,
    limit: usize,
    out: Vec<T>,
    modules_only: bool,
}

impl<T, F: Fn(&str) -> Option<T>> LocalWalk<'_, T, F> {
    /// Returns true when the page is full.
    fn dir(
        &mut self,
        dir: &PathBuf,
        rel: &mut Vec<String>,
        bound: Option<&[&str]>,
    ) -> std::io::Result<bool> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        // Entries before the resume point are dropped unread, and the rest come out of a heap
        // in order: a page from a wide folder (`_index/` holds a row per version) costs one
        // directory read, not a sort of every name in it.
        let first = bound.map(|b| b[0]);
        let mut names = Vec::new();
        for e in entries {
            let e = e?;
            let name = e.file_name();
            if first.is_some_and(|f| name.as_encoded_bytes() < f.as_bytes()) {
                continue;
            }
            let Ok(name) = name.into_string() else {
                continue;
            };
            if rel.is_empty() && self.modules_only && !name.contains('.') {
                continue;
            }
            // The entry's type comes with the directory read (no stat per entry); only a
            // symbolic link is followed, as the object store's own listing does.
            let is_dir = match e.file_type() {
                Ok(t) if t.is_symlink() => std::fs::metadata(e.path()).is_ok_and(|m| m.is_dir()),
                Ok(t) => t.is_dir(),
                Err(_) => continue,
            };
            names.push(Reverse((name, is_dir)));
        }
        let mut names = BinaryHeap::from(names);
        while let Some(Reverse((name, is_dir))) = names.pop() {
            let sub = match bound {
                Some(b) if name.as_str() < b[0] => continue,
                Some(b) if name == b[0] => Some(&b[1..]),
                _ => None,
            };
            if is_dir {
                rel.push(name);
                let full = self.dir(
                    &dir.join(&rel[rel.len() - 1]),
                    rel,
                    sub.filter(|b| !b.is_empty()),
                )?;
                rel.pop();
                if full {
                    return Ok(true);
                }
            } else if sub.is_none() {
                // (A file named like the bound is the bound itself or a prefix of it: before.)
                rel.push(name);
                let item = (self.keep)(&rel.join("/"));
                rel.pop();
                if let Some(item) = item {
                    self.out.push(item);
                    if self.out.len() >= self.limit {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use object_store::local::LocalFileSystem;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    const KEYS: &[&str] = &[
        "a.b/x/@v/v1.0.0.info",
        "a.b/x/@v/v1.0.0.mod",
        "a.b/x/@v/v1.1.0.info",
        "a.b/x/v2/@v/v2.0.0.info",
        "a.b/y/@v/v0.1.0.info",
        "c.d/z/@v/v1.0.0.info",
        "sumdb/sum.golang.org/tile/8/0/001",
        "_index/20260101T000000.000000000Z/a.b/x/@v/v1.0.0",
        "_index/20260102T000000.000000000Z,a.b,y,v0.1.0",
        "_index/20260103T000000.000000000Z/c.d/z/@v/v1.0.0",
    ];

    async fn stores() -> Vec<(Arc<dyn ObjectStore>, Option<PathBuf>, tempfile::TempDir)> {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        for k in KEYS {
            for s in [&local, &mem] {
                s.put(&Key::parse(*k).unwrap(), PutPayload::from_static(b"x"))
                    .await
                    .unwrap();
            }
        }
        let root = dir.path().to_path_buf();
        // The local store is walked both ways: by directory (as the proxy does) and by its own
        // (unordered) listing, which must still give the same set.
        vec![
            (local, Some(root), dir),
            (mem, None, tempfile::tempdir().unwrap()),
        ]
    }

    fn infos(k: &str) -> Option<String> {
        k.ends_with(".info").then(|| k.to_string())
    }

    async fn page_all(
        os: &Arc<dyn ObjectStore>,
        root: Option<&Path>,
        scope: Scope<'_>,
        size: usize,
        keep: fn(&str) -> Option<String>,
    ) -> Vec<String> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let from = Resume {
                after: after.as_deref(),
                token: None,
            };
            let page = walk(os, None, root, scope, from, size, keep)
                .await
                .unwrap()
                .items;
            assert!(page.len() <= size);
            let Some(last) = page.last().cloned() else {
                break;
            };
            all.extend(page);
            after = Some(last);
        }
        all
    }

    #[tokio::test]
    async fn pages_visit_every_module_version_once() {
        for (os, root, _dir) in stores().await {
            for size in [1, 2, 3, 100] {
                let got = page_all(&os, root.as_deref(), Scope::Modules, size, infos).await;
                let mut want: Vec<String> = KEYS
                    .iter()
                    .filter(|k| !k.starts_with('_') && k.ends_with(".info"))
                    .map(|k| k.to_string())
                    .collect();
                let mut sorted = got.clone();
                sorted.sort();
                want.sort();
                assert_eq!(sorted, want, "page size {size}, local {}", root.is_some());
                sorted.dedup();
                assert_eq!(sorted.len(), got.len(), "no duplicates");
            }
        }
    }

    #[tokio::test]
    async fn under_a_folder_in_key_order_from_an_offset() {
        for (os, root, _dir) in stores().await {
            let all = page_all(&os, root.as_deref(), Scope::Under("_index"), 2, |k| {
                Some(k.to_string())
            })
            .await;
            assert_eq!(all.len(), 3);
            assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
            // A bound that is a folder prefix: everything inside it comes after it.
            let resume = Resume {
                after: Some("_index/20260102T000000.000000000Z"),
                token: None,
            };
            let from = walk(
                &os,
                None,
                root.as_deref(),
                Scope::Under("_index"),
                resume,
                10,
                |k| Some(k.to_string()),
            )
            .await
            .unwrap()
            .items;
            assert_eq!(from, all[1..].to_vec());
        }
    }

    /// A bucket's paged listing, as S3 gives it: byte order, `PAGE` keys a page, opaque
    /// tokens, start-after. It counts the listings started after a key (each one a walk of the
    /// folder to its end on MinIO) and refuses tokens it did not hand out.
    pub(in crate::storage) struct Paged {
        pub keys: Vec<String>,
        pub fresh_listings: std::sync::atomic::AtomicUsize,
    }

    const PAGE: usize = 3;

    #[async_trait::async_trait]
    impl PaginatedListStore for Paged {
        async fn list_paginated(
            &self,
            prefix: Option<&str>,
            opts: PaginatedListOptions,
        ) -> object_store::Result<object_store::list::PaginatedListResult> {
            let start = match (&opts.page_token, &opts.offset) {
                (Some(t), _) => t
                    .strip_prefix("tok-")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| object_store::Error::Generic {
                        store: "paged",
                        source: "invalid continuation token".into(),
                    })?,
                (None, offset) => {
                    self.fresh_listings
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    offset.as_ref().map_or(0, |o| {
                        self.keys
                            .iter()
                            .take_while(|k| k.as_str() <= o.as_str())
                            .count()
                    })
                }
            };
            let inside: Vec<&String> = self.keys[start..]
                .iter()
                .filter(|k| prefix.is_none_or(|p| k.starts_with(p)))
                .collect();
            let objects = inside
                .iter()
                .take(PAGE)
                .map(|k| object_store::ObjectMeta {
                    location: Key::parse(k.as_str()).unwrap(),
                    last_modified: chrono::Utc::now(),
                    size: 1,
                    e_tag: None,
                    version: None,
                })
                .collect::<Vec<_>>();
            let next = objects.last().and_then(|last| {
                let at = self
                    .keys
                    .iter()
                    .position(|k| *k == last.location.as_ref())?
                    + 1;
                (inside.len() > PAGE).then(|| format!("tok-{at}"))
            });
            Ok(object_store::list::PaginatedListResult {
                result: object_store::ListResult {
                    common_prefixes: Vec::new(),
                    objects,
                    extensions: Default::default(),
                },
                page_token: next,
            })
        }
    }

    #[tokio::test]
    async fn paged_walks_continue_the_listing_instead_of_starting_new_ones() {
        let keys: Vec<String> = (0..40)
            .flat_map(|i| {
                let m = format!("a.b/m{i:02}/@v/v1.0.0");
                [format!("{m}.info"), format!("{m}.mod"), format!("{m}.zip")]
            })
            .chain(["_index/x".to_string(), "sumdb/t/1".to_string()])
            .map(|k| format!("pre/{k}"))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let store = Arc::new(Paged {
            keys,
            fresh_listings: Default::default(),
        });
        let pager = Pager::new(store.clone(), "/pre/");
        let os: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (mut all, mut after, mut token) = (Vec::new(), None::<String>, None::<String>);
        loop {
            let from = Resume {
                after: after.as_deref(),
                token: token.as_deref(),
            };
            let w = walk(&os, Some(&pager), None, Scope::Modules, from, 4, infos)
                .await
                .unwrap();
            let Some(last) = w.items.last().cloned() else {
                break;
            };
            token = w.token_of(w.items.len() - 1).map(String::from);
            all.extend(w.items);
            after = Some(last);
        }
        let want: Vec<String> = (0..40)
            .map(|i| format!("a.b/m{i:02}/@v/v1.0.0.info"))
            .collect();
        assert_eq!(all, want);
        // One listing from the start, one after jumping over `_index/`, one over `sumdb/`;
        // the ten pages in between continued by token.
        let fresh = store
            .fresh_listings
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(fresh, 3);

        // A token the store refuses: the walk lists after the key instead, same answer.
        let from = Resume {
            after: Some("a.b/m10/@v/v1.0.0.info"),
            token: Some("forged"),
        };
        let w = walk(&os, Some(&pager), None, Scope::Modules, from, 2, infos)
            .await
            .unwrap();
        assert_eq!(
            w.items,
            ["a.b/m11/@v/v1.0.0.info", "a.b/m12/@v/v1.0.0.info"]
        );
    }
}
