//! Filling storage from upstream: once per version, verified before anything is stored.

pub mod budget;
pub mod fill;
pub mod lease;
pub mod list_file;
pub mod mod_first;
pub mod negative_cache;
pub mod records;
pub mod singleflight;

pub use fill::{FillError, Filler};
pub use mod_first::ModFill;
