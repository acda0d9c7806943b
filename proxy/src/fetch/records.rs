//! Checksum database records the `.mod` stage verified, kept for the zip fill that follows.
//!
//! A `.mod` request stores the version's `.mod` alone; its zip is fetched later (in the
//! background, or when a client asks for it), and that fill needs the zip's `h1:` from the same
//! record. This process proved the record in a signed tree moments before, so the zip fill takes
//! it from here instead of asking the database again (a lookup round trip, and often a tile
//! fetch, on the zip's way to the client).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::verify::SumdbRecord;

/// Most records kept (a few hundred bytes each); all are forgotten when it is reached, as a
/// version's zip normally follows its `.mod` within seconds.
const MAX_RECORDS: usize = 4096;

/// Verified records by (escaped module, escaped version), each taken at most once.
#[derive(Debug, Default)]
pub struct RecentRecords {
    map: Mutex<HashMap<(String, String), SumdbRecord>>,
}

impl RecentRecords {
    pub fn put(&self, module: &str, version: &str, record: SumdbRecord) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_RECORDS {
            map.clear();
        }
        map.insert((module.to_string(), version.to_string()), record);
    }

    /// The record for this version, if the `.mod` stage left one; removed.
    pub fn take(&self, module: &str, version: &str) -> Option<SumdbRecord> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&(module.to_string(), version.to_string()))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u64) -> SumdbRecord {
        SumdbRecord {
            id: n,
            zip_hash: "h1:zip".into(),
            go_mod_hash: "h1:mod".into(),
            tree_size: n + 1,
            tree_hash: String::new(),
            signature_verified: true,
            inclusion_verified: true,
            record_text: String::new(),
        }
    }

    #[test]
    fn a_record_is_taken_once_and_only_for_its_version() {
        let r = RecentRecords::default();
        r.put("example.com/m", "v1.0.0", record(7));
        assert!(r.take("example.com/m", "v1.0.1").is_none());
        assert!(r.take("example.com/other", "v1.0.0").is_none());
        assert_eq!(r.take("example.com/m", "v1.0.0").map(|x| x.id), Some(7));
        assert!(r.take("example.com/m", "v1.0.0").is_none());
    }

    #[test]
    fn memory_is_bounded() {
        let r = RecentRecords::default();
        for i in 0..(MAX_RECORDS as u64 + 10) {
            r.put("example.com/m", &format!("v1.0.{i}"), record(i));
        }
        assert!(r.len() <= MAX_RECORDS, "{}", r.len());
        let last = format!("v1.0.{}", MAX_RECORDS + 9);
        assert!(r.take("example.com/m", &last).is_some());
    }
}
