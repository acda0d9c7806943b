//! `athens-proxy`: a Go module proxy (the `GOPROXY` protocol) backed by object storage.

/// The configuration type lives in its own crate, shared with the operator.
pub use athens_config as config;
pub mod fetch;
pub mod import;
pub mod metrics;
pub mod module;
pub mod policy;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod upstream;
pub mod vcs;
pub mod verify;
