//! Which modules get which treatment: private (no checksum database) patterns, Athens filter
//! files and download modes. Pure: the proxy reads and reloads the files (its `server/policy.rs`),
//! the operator checks rules from a spec before rendering them.

pub mod download;
pub mod filter;
mod glob;
mod nosum;

pub use nosum::PrefixPatterns;
