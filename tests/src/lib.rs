//! Support code for the end-to-end tests: starting peers and the control plane.

pub mod azurite;
pub mod cluster;
pub mod ferretdb;
pub mod gcs;
pub mod gocmd;
pub mod minio;
pub mod modzip;
pub mod peer;
pub mod proxy;
pub mod rendered;
pub mod sumdb;
pub mod upstream;
pub mod wait;
