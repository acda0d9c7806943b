//! A cross-replica lease in the bucket, so a missing version is fetched once per cluster.
//!
//! Taken with a create-only write of `<module>/@v/<version>.lease`; renewed while the holder
//! works; deleted when it is done. Another replica that finds a fresh lease waits for the
//! `.info` commit marker instead of fetching; a lease not renewed within its TTL (the holder
//! died) is taken over. No Redis or etcd needed.

use crate::storage::Store;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Serialize, Deserialize)]
struct LeaseBody {
    holder: String,
    /// Unix seconds after which the lease is stale unless renewed.
    expires: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn body(holder: &str, ttl: Duration) -> Bytes {
    let b = LeaseBody {
        holder: holder.to_string(),
        expires: now() + ttl.as_secs().max(1),
    };
    Bytes::from(serde_json::to_vec(&b).unwrap_or_default())
}

/// What trying to take the lease gave.
pub enum Acquired {
    /// We hold it until the guard is released.
    Held(LeaseGuard),
    /// Someone else holds a fresh lease.
    Busy,
}

/// A held lease; renews itself in the background until released.
pub struct LeaseGuard {
    store: Store,
    key: String,
    renew: tokio::task::JoinHandle<()>,
}

impl LeaseGuard {
    /// Stops renewing and deletes the lease object.
    pub async fn release(self) {
        self.renew.abort();
        if let Err(e) = self.store.delete_blob(&self.key).await {
            tracing::warn!(key = %self.key, error = %e, "could not delete fill lease; it will expire");
        }
    }
}

/// Tries once to take the lease at `key`, taking over a stale one.
pub async fn try_acquire(
    store: &Store,
    key: &str,
    holder: &str,
    ttl: Duration,
) -> Result<Acquired, crate::storage::StorageError> {
    for _ in 0..2 {
        if store.create_blob(key, body(holder, ttl)).await? {
            let renew = {
                let (store, key, holder) = (store.clone(), key.to_string(), holder.to_string());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(ttl / 3).await;
                        let _ = store.replace_blob(&key, body(&holder, ttl)).await;
                    }
                })
            };
            return Ok(Acquired::Held(LeaseGuard {
                store: store.clone(),
                key: key.to_string(),
                renew,
            }));
        }
        let current = store.get_blob(key).await?;
        let stale = match current.as_deref().map(serde_json::from_slice::<LeaseBody>) {
            Some(Ok(l)) => l.expires < now(),
            // Unreadable or vanished between our two calls: treat as free.
            _ => true,
        };
        if !stale {
            return Ok(Acquired::Busy);
        }
        store.delete_blob(key).await?;
    }
    Ok(Acquired::Busy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use std::sync::Arc;

    #[tokio::test]
    async fn second_holder_is_refused_until_release() {
        let store = Store::new(Arc::new(InMemory::new()));
        let ttl = Duration::from_secs(30);
        let Acquired::Held(a) = try_acquire(&store, "m/@v/v1.lease", "a", ttl)
            .await
            .unwrap()
        else {
            panic!("first acquire must succeed")
        };
        assert!(matches!(
            try_acquire(&store, "m/@v/v1.lease", "b", ttl)
                .await
                .unwrap(),
            Acquired::Busy
        ));
        a.release().await;
        assert!(matches!(
            try_acquire(&store, "m/@v/v1.lease", "b", ttl)
                .await
                .unwrap(),
            Acquired::Held(_)
        ));
    }

    #[tokio::test]
    async fn stale_lease_is_taken_over() {
        let store = Store::new(Arc::new(InMemory::new()));
        let stale = serde_json::to_vec(&LeaseBody {
            holder: "dead".into(),
            expires: now() - 5,
        })
        .unwrap();
        store
            .create_blob("k.lease", Bytes::from(stale))
            .await
            .unwrap();
        assert!(matches!(
            try_acquire(&store, "k.lease", "b", Duration::from_secs(30))
                .await
                .unwrap(),
            Acquired::Held(_)
        ));
    }
}
