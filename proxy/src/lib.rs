//! `athens-proxy`: a Go module proxy (the `GOPROXY` protocol) backed by object storage.

pub mod config;
pub mod verify;
