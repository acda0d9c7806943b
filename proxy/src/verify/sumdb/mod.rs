//! Checksum database (`GOSUMDB`) client pieces: configuration parsing, signed notes, lookups.

pub mod client;
pub mod lookup;
pub mod note;
pub mod spec;
pub mod tlog;

pub use client::SumdbClient;
pub use lookup::{SumdbRecord, parse_lookup};
pub use note::{SignedNote, verify_note};
pub use spec::{SumdbSpec, VerifierKey};
