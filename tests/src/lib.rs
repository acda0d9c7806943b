//! Support code for the end-to-end tests: starting peers and the control plane.

pub mod azurite;
pub mod cluster;
pub mod crd;
pub mod diffgen;
pub mod ferretdb;
pub mod gcs;
pub mod githost;
pub mod gocmd;
pub mod gohelper;
pub mod hgserve;
pub mod image;
pub mod minio;
pub mod modzip;
pub mod otelcol;
pub mod peer;
pub mod proxy;
pub mod rawzip;
pub mod reliability;
pub mod rendered;
pub mod sshhost;
pub mod sumdb;
pub mod upstream;
pub mod wait;
pub mod world;
pub mod xmod;
