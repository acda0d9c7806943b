//! Which modules get which treatment: private (no checksum database) patterns, Athens filter
//! files and download modes. The pure parsers live in `athens-config` (`config/src/policy/`) so
//! the operator checks a spec's rules with the same code the proxy runs.

pub use athens_config::policy::{PrefixPatterns, download, filter};
