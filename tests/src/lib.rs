//! Support code for the end-to-end tests: starting peers and the control plane.

pub mod cluster;
pub mod diffgen;
pub mod gocmd;
pub mod gohelper;
pub mod minio;
pub mod modzip;
pub mod proxy;
pub mod rawzip;
pub mod reliability;
pub mod sumdb;
pub mod upstream;
pub mod wait;
pub mod world;
pub mod xmod;
