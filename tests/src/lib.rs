//! Support code for the end-to-end tests: starting peers and the control plane.

pub mod cluster;
pub mod gocmd;
pub mod minio;
pub mod modzip;
pub mod proxy;
pub mod reliability;
pub mod sumdb;
pub mod upstream;
pub mod wait;
pub mod world;
