//! A byte budget for temporary disk: zips are fetched to temp files and verified before they
//! are stored, so many concurrent fills of large modules could fill the pod's disk.

use std::sync::{Arc, Mutex};

/// Bytes of temporary disk all fills together may use.
#[derive(Debug)]
pub struct DiskBudget {
    limit: u64,
    used: Mutex<u64>,
}

/// Bytes reserved for one download; given back when dropped (with the temp file).
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<DiskBudget>,
    bytes: u64,
}

impl DiskBudget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: Mutex::new(0),
        })
    }

    /// Reserves `bytes`, or `None` when they do not fit beside what other fills hold.
    pub fn try_reserve(self: &Arc<Self>, bytes: u64) -> Option<Reservation> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if bytes > self.limit.saturating_sub(*used) {
            return None;
        }
        *used += bytes;
        Some(Reservation {
            budget: self.clone(),
            bytes,
        })
    }

    pub fn used(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap_or_else(|p| p.into_inner());
        *used = used.saturating_sub(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_the_limit_and_are_given_back() {
        let b = DiskBudget::new(100);
        let a = b.try_reserve(60).unwrap();
        assert!(b.try_reserve(50).is_none());
        let c = b.try_reserve(40).unwrap();
        assert_eq!(b.used(), 100);
        drop(a);
        assert_eq!(b.used(), 40);
        drop(c);
        assert!(b.try_reserve(100).is_some());
        assert!(b.try_reserve(101).is_none());
    }
}
