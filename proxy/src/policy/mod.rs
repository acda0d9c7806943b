//! Which modules get which treatment: private (no checksum database) patterns, Athens filter
//! files and download modes. Pure: reading and reloading the files is `server/policy.rs`.

pub mod download;
pub mod filter;
mod glob;
mod nosum;

pub use nosum::PrefixPatterns;
