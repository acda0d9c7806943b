//! Short memories of failures, bounded by bytes.
//!
//! `NegativeCache` remembers upstream "not found" answers briefly, so the go command's
//! path-prefix probes (`golang.org/x/net/html`, `golang.org/x/net`, ...) cost one upstream round
//! trip, not one each. The same map, holding fill errors, remembers failed fills (a rejected
//! zip, an upstream 5xx), so one bad version cannot make every request download it again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Memory for one map at most (keys and values); past it, expired entries are swept, then the
/// map starts over. Keys are bounded request paths, so this is tens of thousands of entries.
const MAX_BYTES: usize = 16 << 20;

/// Something a [`TtlCache`] can hold, with the bytes it costs.
pub trait Weigh: Clone {
    fn weight(&self) -> usize;
}

impl Weigh for String {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weigh for bytes::Bytes {
    fn weight(&self) -> usize {
        self.len()
    }
}

/// A TTL map from request path to a remembered answer.
pub struct TtlCache<V> {
    ttl: Duration,
    entries: Mutex<Entries<V>>,
}

struct Entries<V> {
    map: HashMap<String, (Instant, V)>,
    bytes: usize,
}

impl<V> std::fmt::Debug for TtlCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtlCache").field("ttl", &self.ttl).finish()
    }
}

/// Upstream "not found" messages by request path.
pub type NegativeCache = TtlCache<String>;

fn cost<V: Weigh>(key: &str, value: &V) -> usize {
    // The map's own bookkeeping per entry, roughly, so tiny entries still count.
    key.len() + value.weight() + 64
}

impl<V: Weigh> TtlCache<V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                bytes: 0,
            }),
        }
    }

    /// The remembered value, if still fresh.
    pub fn get(&self, key: &str) -> Option<V> {
        self.get_aged(key).map(|(v, _)| v)
    }

    /// The remembered value and its age, if younger than the TTL: for callers that treat an
    /// answer differently as it ages. An expired entry is dropped.
    pub fn get_aged(&self, key: &str) -> Option<(V, Duration)> {
        if self.ttl.is_zero() {
            return None;
        }
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (at, v) = e.map.get(key)?;
        let age = at.elapsed();
        if age < self.ttl {
            return Some((v.clone(), age));
        }
        if let Some((_, v)) = e.map.remove(key) {
            e.bytes -= cost(key, &v);
        }
        None
    }

    /// Forgets `key` (its answer changed here, so the memory is wrong now).
    pub fn remove(&self, key: &str) {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, v)) = e.map.remove(key) {
            e.bytes -= cost(key, &v);
        }
    }

    pub fn put(&self, key: &str, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let size = cost(key, &value);
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if e.bytes + size > MAX_BYTES {
            let ttl = self.ttl;
            e.map.retain(|_, (at, _)| at.elapsed() < ttl);
            e.bytes = e.map.iter().map(|(k, (_, v))| cost(k, v)).sum();
            if e.bytes + size > MAX_BYTES {
                e.map.clear();
                e.bytes = 0;
            }
        }
        if let Some((_, old)) = e.map.insert(key.to_string(), (Instant::now(), value)) {
            e.bytes -= cost(key, &old);
        }
        e.bytes += size;
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.entries.lock().unwrap().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let c = NegativeCache::new(Duration::from_millis(30));
        c.put("a", "gone".into());
        assert_eq!(c.get("a").as_deref(), Some("gone"));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get("a"), None);
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn zero_ttl_disables() {
        let c = NegativeCache::new(Duration::ZERO);
        c.put("a", "x".into());
        assert_eq!(c.get("a"), None);
    }

    #[test]
    fn bounded_by_bytes_not_entries() {
        let c = NegativeCache::new(Duration::from_secs(60));
        let big = "x".repeat(1 << 20);
        for i in 0..40 {
            c.put(&format!("k{i}"), big.clone());
            assert!(c.bytes() <= MAX_BYTES, "{} bytes after {i}", c.bytes());
        }
        assert!(c.get("k39").is_some(), "the newest entry is kept");
        let before = c.bytes();
        c.put("k39", "small".into());
        assert_eq!(c.bytes(), before - big.len() + "small".len());
    }
}
