//! `athens-proxy`: a Go module proxy (the `GOPROXY` protocol) backed by object storage.

pub mod config;
pub mod fetch;
pub mod module;
pub mod policy;
pub mod server;
pub mod storage;
pub mod upstream;
pub mod verify;
