//! Filling storage from upstream: once per version, verified before anything is stored.

pub mod negative_cache;
pub mod singleflight;
