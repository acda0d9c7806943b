//! Per-proxy retry state: consecutive failures, and the wait they lead to.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Exponential backoff after `n` consecutive failures: 2s, 4s, 8s, ... up to 5 minutes.
pub fn backoff(n: u32) -> Duration {
    let secs = 2u64.saturating_pow(n.clamp(1, 9));
    Duration::from_secs(secs.min(300))
}

/// Consecutive failures per proxy (`namespace/name`). An entry lives from a proxy's first
/// failure to its next success or its deletion, so the map holds only failing proxies.
#[derive(Debug, Default)]
pub struct Failures(Mutex<HashMap<String, u32>>);

impl Failures {
    /// Records a failure of `key` and returns how long to wait before the next try.
    pub fn record(&self, key: &str) -> Duration {
        let n = match self.0.lock() {
            Ok(mut f) => {
                let n = f.entry(key.to_string()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Err(_) => 1,
        };
        backoff(n)
    }

    /// Forgets `key`: after a success, and when the proxy is deleted.
    pub fn forget(&self, key: &str) {
        if let Ok(mut f) = self.0.lock() {
            f.remove(key);
        }
    }

    /// How many proxies have failures recorded.
    pub fn tracked(&self) -> usize {
        self.0.lock().map(|f| f.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(50), Duration::from_secs(300));
    }

    #[test]
    fn failures_grow_per_proxy_and_are_forgotten() {
        let f = Failures::default();
        assert_eq!(f.record("ns/a"), Duration::from_secs(2));
        assert_eq!(f.record("ns/a"), Duration::from_secs(4));
        assert_eq!(f.record("ns/b"), Duration::from_secs(2));
        assert_eq!(f.tracked(), 2);
        f.forget("ns/a");
        assert_eq!(f.tracked(), 1);
        assert_eq!(f.record("ns/a"), Duration::from_secs(2), "starts over");
        f.forget("ns/a");
        f.forget("ns/b");
        assert_eq!(f.tracked(), 0);
    }
}
