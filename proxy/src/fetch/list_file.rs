//! The derived `<module>/@v/list` object: what a `GOPROXY=file://` reader of the bucket sees.
//!
//! Serving never reads it (lists come from the stored `.info` markers), so it only has to be
//! right eventually: rewritten after each commit, and repaired when a `list` request finds it
//! lacking versions that are stored (concurrent writers raced, or objects were restored).

use crate::module::{Version, list_text, merge_list};
use crate::storage::{StorageError, Store, layout_list_file};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most modules remembered as recently checked; past it the memory starts over.
const MAX_REMEMBERED: usize = 10_000;

/// The list text for these stored versions.
fn expected(stored: &[Version]) -> String {
    list_text(&merge_list("", stored))
}

/// Writes the list file for `stored` (replacing whatever is there).
pub async fn rewrite(store: &Store, module: &str, stored: &[Version]) -> Result<(), StorageError> {
    store
        .replace_blob(&layout_list_file(module), Bytes::from(expected(stored)))
        .await
}

/// Rewrites the list file if it differs from `stored`. Returns whether it did.
pub async fn repair_if_stale(
    store: &Store,
    module: &str,
    stored: &[Version],
) -> Result<bool, StorageError> {
    let want = expected(stored);
    let have = store.get_blob(&layout_list_file(module)).await?;
    if have.as_deref() == Some(want.as_bytes()) {
        return Ok(false);
    }
    rewrite(store, module, stored).await?;
    Ok(true)
}

/// Which modules had their list file checked recently, so a busy `list` route checks each
/// module at most once per interval.
pub struct ListChecks {
    every: Duration,
    last: Mutex<HashMap<String, Instant>>,
}

impl ListChecks {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: Mutex::default(),
        }
    }

    /// True (and remembered) when `module` was not checked within the interval.
    pub fn due(&self, module: &str) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last
            .get(module)
            .is_some_and(|t| now.duration_since(*t) < self.every)
        {
            return false;
        }
        if last.len() >= MAX_REMEMBERED {
            last.clear();
        }
        last.insert(module.to_string(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use std::sync::Arc;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[tokio::test]
    async fn a_list_file_missing_entries_is_rebuilt_from_storage() {
        let store = Store::new(Arc::new(InMemory::new()));
        let stored = [v("v1.0.0"), v("v1.1.0")];
        rewrite(&store, "example.com/m", &stored[..1])
            .await
            .unwrap();
        assert!(
            repair_if_stale(&store, "example.com/m", &stored)
                .await
                .unwrap()
        );
        let text = store
            .get_blob("example.com/m/@v/list")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&text[..], b"v1.0.0\nv1.1.0\n");
        assert!(
            !repair_if_stale(&store, "example.com/m", &stored)
                .await
                .unwrap()
        );
    }

    #[test]
    fn checks_are_rate_limited_per_module() {
        let checks = ListChecks::new(Duration::from_secs(60));
        assert!(checks.due("a"));
        assert!(!checks.due("a"));
        assert!(checks.due("b"));
        assert!(ListChecks::new(Duration::ZERO).due("a"));
    }
}
