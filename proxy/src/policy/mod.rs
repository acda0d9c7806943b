//! Which modules get which treatment: private (no checksum database) patterns, later filters.

mod glob;
mod nosum;

pub use nosum::PrefixPatterns;
