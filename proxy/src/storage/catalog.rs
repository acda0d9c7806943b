//! What `/catalog` and `/index` read: committed versions, and a row per commit by time.
//!
//! The catalog is the bucket's `.info` commit markers in key order. The index needs the time
//! each version was stored, which the bucket does not keep in a listable order (the `.info`
//! `Time` is the module's own commit time, not ours), so each commit also writes an empty
//! object `_index/<stored at>,<module with / as ,>,<version>` whose time is the commit
//! marker's `last_modified` as the bucket reports it: one clock for every replica. Listing
//! `_index/` from `since` then gives rows oldest first, a page at a time. `_index` has no dot,
//! so it can never be a module path, and a bucket synced to disk stays a valid
//! `GOPROXY=file://`.
//!
//! A row is one name directly under `_index/` (`,` never occurs in an escaped module path or
//! version) because stores that keep keys as directories pay per directory when listing:
//! MinIO listed the earlier nested rows (`_index/<stored at>/<module>/@v/<version>`) about
//! five times slower per row. Those rows are still read, so older buckets need no rewrite.
//!
//! A process killed between the commit and the row leaves a version without a row (the catalog
//! still lists it), as do versions stored before rows existed: `athens-proxy --reindex` writes
//! the missing ones. A version filled again after its files were lost gets a second row with
//! its new time.

use super::layout::{Layout, version_of_info};
use super::walk::{Resume, Scope, Walked, walk};
use super::{StorageError, Store};
use crate::module::{unescape_path, unescape_version};
use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime, Utc};
use object_store::ObjectStoreExt;
use object_store::path::Path as Key;

/// The top-level folder of index rows.
pub const INDEX_DIR: &str = "_index";
/// Fixed width, so key order is time order (years 0000 to 9999).
const STAMP: &str = "%Y%m%dT%H%M%S%.9fZ";

/// A committed version as `/catalog` shows it (real, unescaped path and version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub module: String,
    pub version: String,
    /// The object key, which a page token resumes after.
    pub key: String,
}

/// One `/index` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    pub path: String,
    pub version: String,
    pub timestamp: DateTime<Utc>,
}

/// Separates the parts of a row's name; never part of an escaped module path or version.
const SEP: char = ',';

/// The row key for a version stored at `at`.
pub fn index_row_key(at: DateTime<Utc>, l: Layout<'_>) -> String {
    format!(
        "{INDEX_DIR}/{}{SEP}{}{SEP}{}",
        at.format(STAMP),
        l.module.replace('/', ","),
        l.version
    )
}

/// The key every row stored at or after `since` sorts after.
pub fn index_since_key(since: DateTime<Utc>) -> String {
    format!("{INDEX_DIR}/{}", since.format(STAMP))
}

/// A row from its key; `None` for anything else (a temporary file, a foreign object).
pub fn parse_index_key(k: &str) -> Option<IndexRow> {
    let rest = k.strip_prefix(INDEX_DIR)?.strip_prefix('/')?;
    let (stamp, module, version) = match rest.split_once(SEP) {
        Some((stamp, rest)) if !stamp.contains('/') => {
            let (module, version) = rest.rsplit_once(SEP)?;
            (stamp, module.replace(SEP, "/"), version)
        }
        // A nested row, as written before rows were flat.
        _ => {
            let (stamp, rest) = rest.split_once('/')?;
            let (module, version) = rest.rsplit_once("/@v/")?;
            (stamp, module.to_string(), version)
        }
    };
    let timestamp = NaiveDateTime::parse_from_str(stamp, STAMP).ok()?.and_utc();
    Some(IndexRow {
        path: unescape_path(&module).ok()?,
        version: unescape_version(version).ok()?,
        timestamp,
    })
}

/// A catalog entry from a `<module>/@v/<version>.info` key; `None` for every other key.
pub fn parse_info_key(k: &str) -> Option<CatalogEntry> {
    let (module, file) = k.rsplit_once("/@v/")?;
    if file.contains('/') {
        return None;
    }
    Some(CatalogEntry {
        module: unescape_path(module).ok()?,
        version: unescape_version(version_of_info(file)?).ok()?,
        key: k.to_string(),
    })
}

/// `/index` page tokens remembered at most (a hint each; emptied when full).
const INDEX_HINTS: usize = 1024;

impl Store {
    /// Up to `limit` committed versions after the one stored under key `from.after`.
    pub async fn catalog(
        &self,
        from: Resume<'_>,
        limit: usize,
    ) -> Result<Walked<CatalogEntry>, StorageError> {
        self.walk(Scope::Modules, from, limit, parse_info_key).await
    }

    /// Up to `limit` index rows stored at or after `since`, oldest first.
    ///
    /// Clients page by time (`since` = the last row's time), so there is no token to hand
    /// out: the store's page token is remembered here under the `since` the next request will
    /// carry, taken from the listing page of the first row at the last row's time (`since` is
    /// inclusive). Another replica, or a forgotten hint, lists after the key instead.
    pub async fn index(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<IndexRow>, StorageError> {
        let after = index_since_key(since);
        let hint = self
            .index_hints
            .lock()
            .ok()
            .and_then(|h| h.get(&after).cloned());
        let from = Resume {
            after: Some(&after),
            token: hint.as_deref(),
        };
        let walked = self
            .walk(Scope::Under(INDEX_DIR), from, limit, parse_index_key)
            .await?;
        if let Some(last) = walked.items.last() {
            let first_at_last = walked
                .items
                .iter()
                .position(|r| r.timestamp == last.timestamp)
                .unwrap_or(walked.items.len() - 1);
            if let (Some(token), Ok(mut hints)) =
                (walked.token_of(first_at_last), self.index_hints.lock())
            {
                if hints.len() >= INDEX_HINTS {
                    hints.clear();
                }
                hints.insert(index_since_key(last.timestamp), token.to_string());
            }
        }
        Ok(walked.items)
    }

    async fn walk<T: Send + 'static>(
        &self,
        scope: Scope<'_>,
        from: Resume<'_>,
        limit: usize,
        keep: impl Fn(&str) -> Option<T> + Send + 'static,
    ) -> Result<Walked<T>, StorageError> {
        walk(
            &self.os,
            self.pager.as_ref(),
            self.local_root.as_deref(),
            scope,
            from,
            limit,
            keep,
        )
        .await
    }

    /// Writes the missing index rows (versions committed before rows were written, by another
    /// tool, or by a process killed between commit and row), each stamped with its commit
    /// marker's time. Returns how many were written. Safe to run while proxies serve.
    pub async fn reindex(&self) -> Result<usize, StorageError> {
        const PAGE: usize = 10_000;
        let mut indexed = std::collections::HashSet::new();
        let (mut after, mut token): (Option<String>, Option<String>) = (None, None);
        loop {
            let from = Resume {
                after: after.as_deref(),
                token: token.as_deref(),
            };
            let page = self
                .walk(Scope::Under(INDEX_DIR), from, PAGE, |k| {
                    Some((k.to_string(), parse_index_key(k)))
                })
                .await?;
            let Some((last, _)) = page.items.last() else {
                break;
            };
            let n = page.items.len();
            (after, token) = (Some(last.clone()), page.token_of(n - 1).map(String::from));
            indexed.extend(
                page.items
                    .into_iter()
                    .filter_map(|(_, r)| r)
                    .map(|r| (r.path, r.version)),
            );
            if n < PAGE {
                break;
            }
        }
        let mut written = 0;
        let (mut after, mut token): (Option<String>, Option<String>) = (None, None);
        loop {
            let from = Resume {
                after: after.as_deref(),
                token: token.as_deref(),
            };
            let page = self.catalog(from, PAGE).await?;
            let Some(last) = page.items.last() else {
                break;
            };
            let n = page.items.len();
            (after, token) = (
                Some(last.key.clone()),
                page.token_of(n - 1).map(String::from),
            );
            for e in &page.items {
                if indexed.contains(&(e.module.clone(), e.version.clone())) {
                    continue;
                }
                let Some((module, file)) = e.key.rsplit_once("/@v/") else {
                    continue;
                };
                let Some(version) = version_of_info(file) else {
                    continue;
                };
                self.record_index(Layout { module, version }).await?;
                written += 1;
            }
            if n < PAGE {
                break;
            }
        }
        Ok(written)
    }

    /// Writes the index row of a committed version, stamped with its commit marker's time.
    pub async fn record_index(&self, l: Layout<'_>) -> Result<(), StorageError> {
        let info = Key::parse(l.info()).map_err(|source| StorageError::Key {
            key: l.info(),
            source,
        })?;
        let at = self.os.head(&info).await?.last_modified;
        self.create_blob(&index_row_key(at, l), Bytes::new())
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn row_keys_round_trip_and_sort_by_time() {
        let l = Layout {
            module: "github.com/!burnt!sushi/toml",
            version: "v1.4.0",
        };
        let t1 = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let t2 = t1 + chrono::Duration::nanoseconds(1);
        let (k1, k2) = (index_row_key(t1, l), index_row_key(t2, l));
        assert_eq!(
            k1,
            "_index/20260102T030405.000000000Z,github.com,!burnt!sushi,toml,v1.4.0"
        );
        assert!(k1 < k2);
        let row = parse_index_key(&k2).unwrap();
        assert_eq!(row.path, "github.com/BurntSushi/toml");
        assert_eq!(row.version, "v1.4.0");
        assert_eq!(row.timestamp, t2);
        assert!(index_since_key(t1) < k1 && k1 < index_since_key(t2));
        let zero = DateTime::<Utc>::MIN_UTC.max(Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap());
        assert!(index_since_key(zero) < k1);
    }

    #[tokio::test]
    async fn reindex_writes_only_missing_rows() {
        let store = Store::new(std::sync::Arc::new(object_store::memory::InMemory::new()));
        for (m, v) in [
            ("a.b/x", "v1.0.0"),
            ("a.b/x", "v1.1.0"),
            ("c.d/!y", "v0.1.0"),
        ] {
            let l = Layout {
                module: m,
                version: v,
            };
            store
                .create_blob(&l.info(), Bytes::from_static(b"{}"))
                .await
                .unwrap();
        }
        let l = Layout {
            module: "a.b/x",
            version: "v1.0.0",
        };
        store.record_index(l).await.unwrap();
        let zero = Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(store.index(zero, 10).await.unwrap().len(), 1);
        assert_eq!(store.reindex().await.unwrap(), 2);
        let rows = store.index(zero, 10).await.unwrap();
        let mut got: Vec<_> = rows
            .iter()
            .map(|r| format!("{}@{}", r.path, r.version))
            .collect();
        got.sort();
        assert_eq!(got, ["a.b/x@v1.0.0", "a.b/x@v1.1.0", "c.d/Y@v0.1.0"]);
        assert_eq!(store.reindex().await.unwrap(), 0, "nothing twice");
    }

    #[test]
    fn only_info_markers_are_catalog_entries() {
        let e = parse_info_key("github.com/!burnt!sushi/toml/@v/v1.4.0.info").unwrap();
        assert_eq!(e.module, "github.com/BurntSushi/toml");
        assert_eq!(e.version, "v1.4.0");
        for k in [
            "github.com/a/b/@v/v1.0.0.mod",
            "github.com/a/b/@v/v1.0.0.info#1",
            "github.com/a/b/@v/list",
            "github.com/a/b/@v/x/v1.0.0.info",
            "sumdb/sum.golang.org/tile/8/0/x.info",
            "github.com/a/b/@v/.info",
        ] {
            assert!(parse_info_key(k).is_none(), "{k}");
        }
        assert!(parse_index_key("_index/garbage/a.b/c/@v/v1.0.0").is_none());
        assert!(parse_index_key("_index/garbage,a.b,c,v1.0.0").is_none());
        assert!(parse_index_key("_index/20260102T030405.000000000Z,v1.0.0").is_none());
    }

    #[test]
    fn nested_rows_of_older_buckets_are_still_read() {
        let row = parse_index_key(
            "_index/20260102T030405.000000000Z/github.com/!burnt!sushi/toml/@v/v1.4.0",
        )
        .unwrap();
        assert_eq!(row.path, "github.com/BurntSushi/toml");
        assert_eq!(row.version, "v1.4.0");
        let flat = parse_index_key(&index_row_key(
            row.timestamp,
            Layout {
                module: "github.com/!burnt!sushi/toml",
                version: "v1.4.0",
            },
        ))
        .unwrap();
        assert_eq!(flat, row);
    }

    #[tokio::test]
    async fn index_pages_continue_the_listing_by_remembered_tokens() {
        use super::super::walk::{Pager, tests::Paged};
        use std::sync::Arc;
        use std::sync::atomic::Ordering;
        let t0 = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        // Rows 2 and 3 share a time and sit on two listing pages (three keys a page): the
        // answer after a page ending at row 3 starts at that time, so it must hold row 2 again.
        let at = |i: i64| t0 + chrono::Duration::seconds(if i == 3 { 2 } else { i });
        let keys: Vec<String> = (0..12)
            .map(|i| {
                let version = format!("v1.0.{i}");
                index_row_key(
                    at(i),
                    Layout {
                        module: "a.b/m",
                        version: &version,
                    },
                )
            })
            .collect();
        let paged = Arc::new(Paged {
            keys,
            fresh_listings: Default::default(),
        });
        let mut store = Store::new(Arc::new(object_store::memory::InMemory::new()));
        store.pager = Some(Pager::new(paged.clone(), ""));
        let mut seen = Vec::new();
        let mut since = Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap();
        loop {
            let rows = store.index(since, 4).await.unwrap();
            let at_since = rows.iter().filter(|r| r.timestamp == since).count();
            let want_at_since = (0..12).filter(|i| at(*i) == since).count();
            assert_eq!(at_since, want_at_since, "every row at `since` {since}");
            let before = seen.len();
            for r in &rows {
                if !seen.contains(&r.version) {
                    seen.push(r.version.clone());
                }
            }
            let Some(last) = rows.last() else { break };
            if seen.len() == before {
                break;
            }
            since = last.timestamp;
        }
        let want: Vec<String> = (0..12).map(|i| format!("v1.0.{i}")).collect();
        assert_eq!(seen, want);
        // Listings started after a key: the first, and the second answer's (its rows at `since`
        // begin on the first, untokened page); every later answer continues by token.
        assert_eq!(paged.fresh_listings.load(Ordering::Relaxed), 2);
    }
}
