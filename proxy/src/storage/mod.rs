//! The bucket: modules in protocol layout, written create-only with `.info` as commit marker.
//!
//! Layout (all paths case-escaped as the protocol sends them):
//! `<module>/@v/<version>.zip|.mod|.info`, `<module>/@v/list` (tagged versions, derived), and our
//! own `<module>/@v/<version>.lease` beside them, and a row per commit under `_index/` for `/index`
//! (see `catalog.rs`). A folder synced from the bucket is therefore
//! itself a working `GOPROXY=file://...`.

mod catalog;
mod layout;
mod mongodb;
mod open;
mod open_zips;
mod store;
mod walk;
mod zip_cache;

pub use catalog::{CatalogEntry, INDEX_DIR, IndexRow, index_row_key, parse_info_key};
pub use layout::{Layout, list_file as layout_list_file, sumdb_tile};
pub use open::{open, open_pager, open_signer};
pub use store::{Committed, Listing, Store, ZipBody, ZipObject};
pub use walk::{Pager, Resume, Walked};
pub use zip_cache::{Counters as ZipCacheCounters, ZipCache};

/// Storage failures. `NotFound` is not an error here: lookups return `Option`.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("storage: {0}")]
    Backend(#[from] object_store::Error),
    #[error("storage key {key:?}: {source}")]
    Key {
        key: String,
        source: object_store::path::Error,
    },
    #[error("storage: reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}
