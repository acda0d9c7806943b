//! Remembers upstream "not found" answers briefly, so the go command's path-prefix probes
//! (`golang.org/x/net/html`, `golang.org/x/net`, ...) cost one upstream round trip, not one each.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most; past this, expired entries are swept, then the map is cleared.
const MAX_ENTRIES: usize = 100_000;

/// A TTL map from request path to the not-found message upstream gave.
pub struct NegativeCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, String)>>,
}

impl NegativeCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The remembered message, if the answer is still fresh.
    pub fn get(&self, key: &str) -> Option<String> {
        if self.ttl.is_zero() {
            return None;
        }
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            Some((at, msg)) if at.elapsed() < self.ttl => Some(msg.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, key: &str, message: &str) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(key.to_string(), (Instant::now(), message.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let c = NegativeCache::new(Duration::from_millis(30));
        c.put("a", "gone");
        assert_eq!(c.get("a").as_deref(), Some("gone"));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get("a"), None);
    }

    #[test]
    fn zero_ttl_disables() {
        let c = NegativeCache::new(Duration::ZERO);
        c.put("a", "x");
        assert_eq!(c.get("a"), None);
    }
}
