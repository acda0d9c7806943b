//! Support code for the end-to-end tests: starting peers and the control plane.

pub mod cluster;
pub mod minio;
