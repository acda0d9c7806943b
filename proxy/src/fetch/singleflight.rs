//! In-process single-flight: concurrent callers for one key share one run of the work.
//!
//! The work runs in its own task, so a caller that gives up (client disconnect) does not cancel
//! it for the others, and what it stores is never half-done because a request went away.

use futures::future::{BoxFuture, FutureExt, Shared};
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

type Flight<V> = Shared<BoxFuture<'static, V>>;

/// Deduplicates concurrent work by key.
pub struct Group<K, V: Clone> {
    flights: Arc<Mutex<HashMap<K, Flight<V>>>>,
}

impl<K, V: Clone> Clone for Group<K, V> {
    fn clone(&self) -> Self {
        Self {
            flights: self.flights.clone(),
        }
    }
}

impl<K, V: Clone> Default for Group<K, V> {
    fn default() -> Self {
        Self {
            flights: Default::default(),
        }
    }
}

/// Whether this caller started the work or joined one already under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Waiter,
}

impl<K, V> Group<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Runs `work` for `key` unless a run is under way, then waits for that one instead.
    /// `on_panic` is the value waiters get if the work task dies.
    pub async fn run<F>(&self, key: K, work: F, on_panic: V) -> (V, Role)
    where
        F: Future<Output = V> + Send + 'static,
    {
        let (flight, role) = {
            let mut map = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(&key) {
                Some(f) => (f.clone(), Role::Waiter),
                None => {
                    let flights = self.flights.clone();
                    let k = key.clone();
                    let task = tokio::spawn(async move {
                        let v = work.await;
                        // Forget the flight before waiters wake, so a later call starts fresh.
                        flights.lock().unwrap_or_else(|p| p.into_inner()).remove(&k);
                        v
                    });
                    let flights = self.flights.clone();
                    let k = key.clone();
                    let fut: BoxFuture<'static, V> = async move {
                        match task.await {
                            Ok(v) => v,
                            Err(_) => {
                                flights.lock().unwrap_or_else(|p| p.into_inner()).remove(&k);
                                on_panic
                            }
                        }
                    }
                    .boxed();
                    let shared = fut.shared();
                    map.insert(key, shared.clone());
                    (shared, Role::Leader)
                }
            }
        };
        (flight.await, role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let group: Group<String, usize> = Group::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for _ in 0..16 {
            let group = group.clone();
            let runs = runs.clone();
            handles.push(tokio::spawn(async move {
                group
                    .run(
                        "k".to_string(),
                        async move {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            runs.fetch_add(1, Ordering::SeqCst) + 1
                        },
                        0,
                    )
                    .await
            }));
        }
        let mut leaders = 0;
        for h in handles {
            let (v, role) = h.await.unwrap();
            assert_eq!(v, 1);
            leaders += usize::from(role == Role::Leader);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(leaders, 1);
        // Once done, the next call runs again.
        let (v, role) = group.run("k".into(), async { 42 }, 0).await;
        assert_eq!((v, role), (42, Role::Leader));
    }

    #[tokio::test]
    async fn a_panicking_run_gives_the_fallback_and_is_forgotten() {
        let group: Group<u8, i32> = Group::default();
        let (v, _) = group.run(1, async { panic!("boom") }, -1).await;
        assert_eq!(v, -1);
        let (v, _) = group.run(1, async { 5 }, -1).await;
        assert_eq!(v, 5);
    }
}
