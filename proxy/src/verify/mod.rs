//! Verification of downloaded modules: zip structure and limits, the go.sum `h1:` hashes, and
//! lookups in a checksum database (`GOSUMDB`).
//!
//! Everything here follows golang.org/x/mod (`zip`, `sumdb/dirhash`, `sumdb/note`, `sumdb`) so that
//! a module we accept is exactly a module the `go` command would accept.

mod entry;
pub mod h1;
pub mod sumdb;
pub mod zipcheck;
pub mod zipstream;

pub use h1::{hash_go_mod, hash_zip};
pub use sumdb::{SumdbClient, SumdbRecord, SumdbSpec, VerifierKey};
pub use zipcheck::{
    MAX_GO_MOD, MAX_LICENSE, MAX_ZIP_FILE, ZipSummary, check_zip, check_zip_with, expected_go_mod,
};
pub use zipstream::{Prehashed, prehash, spawn_prehash};

/// Why a module (or a checksum database answer) failed verification.
///
/// Every message is one line and says which module and which check: they end up in the bodies of
/// 502 answers and in logs.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Reading a file from local disk failed.
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The module zip breaks a structural rule or a size limit.
    #[error("invalid module zip for {module}@{version}: {reason}")]
    InvalidZip {
        module: String,
        version: String,
        reason: String,
    },
    /// A hash we computed differs from the one the checksum database has.
    /// `what` is `""` for the zip and `"/go.mod"` for the go.mod file.
    #[error(
        "checksum mismatch for {module}@{version}{what}: downloaded {downloaded}, checksum database {database}"
    )]
    ChecksumMismatch {
        module: String,
        version: String,
        what: &'static str,
        downloaded: String,
        database: String,
    },
    /// The checksum database answered 404 or 410: it does not know this module version.
    #[error("{module}@{version} is not in checksum database {name} ({detail})")]
    NotInSumdb {
        name: String,
        module: String,
        version: String,
        detail: String,
    },
    /// A `GOSUMDB` value that cannot be parsed.
    #[error("invalid GOSUMDB {value:?}: {reason}")]
    InvalidGosumdb { value: String, reason: String },
    /// A verifier key (`name+hash+base64`) that cannot be parsed.
    #[error("invalid checksum database verifier key: {0}")]
    InvalidVerifierKey(String),
    /// A signed note that is not well formed.
    #[error("malformed signed note from checksum database {name}: {reason}")]
    MalformedNote { name: String, reason: String },
    /// A signature line by our key that does not verify.
    #[error("invalid signature by {name} on checksum database note")]
    BadSignature { name: String },
    /// A note with no signature by our key.
    #[error("checksum database note has no signature by {name}")]
    Unsigned { name: String },
    /// A lookup answer that is not well formed.
    #[error(
        "malformed lookup answer from checksum database {name} for {module}@{version}: {reason}"
    )]
    MalformedLookup {
        name: String,
        module: String,
        version: String,
        reason: String,
    },
    /// The record in a lookup answer is not provably in the signed tree.
    #[error(
        "checksum database {name}: record for {module}@{version} is not in the signed tree: {reason}"
    )]
    NotInTree {
        name: String,
        module: String,
        version: String,
        reason: String,
    },
    /// Two signed trees from the database that are not one the prefix of the other.
    #[error("checksum database {name} served inconsistent trees (forked log?): {reason}")]
    TreeInconsistent { name: String, reason: String },
    /// The checksum database could not be reached or answered with an unexpected status.
    #[error("checksum database {name} unavailable: {reason}")]
    SumdbUnavailable { name: String, reason: String },
}

impl VerifyError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        VerifyError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
