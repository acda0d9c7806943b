//! Module paths, versions and proxy request paths: parsing and validation, no I/O.
//!
//! Everything a client sends is checked here before it touches storage, an upstream proxy or
//! a `go` subprocess. The path and version become object-store keys, upstream URLs and command
//! arguments; validating first (by golang.org/x/mod's rules, plus length limits) means those
//! layers only ever see well-formed, bounded, case-unambiguous input, and a malformed request
//! gets a precise 400 instead of a confusing upstream error or a stray cache entry.

mod escape;
mod info;
mod list;
mod major;
mod path;
mod query;
mod quote;
mod request;
mod version;
mod windows;

pub use escape::CaseError;
pub use info::{Info, InfoError};
pub use list::{
    is_tagged, list_text, merge_list, merge_sorted, parse_list, sort_versions, tagged_sorted,
};
pub use major::{MajorError, MajorReason, check_path_major};
pub use path::{
    MAX_PATH_LEN, ModulePath, PathError, PathReason, check_path, escape_path, unescape_path,
};
pub use query::{QUERY_WORDS, VersionQuery};
pub use request::{EncodingError, MAX_REQUEST_LEN, Request, RequestError, parse_request};
pub use version::{
    MAX_VERSION_LEN, Version, VersionError, VersionReason, escape_version, unescape_version,
};
pub use windows::reserved_name as windows_reserved_name;

/// Worst-case storage key `<escaped path>/@v/<escaped version>.info` stays well under the
/// 1024-byte object key limit of S3, GCS and Azure, with room for a bucket prefix.
const _: () = assert!(2 * MAX_PATH_LEN + 4 + 2 * MAX_VERSION_LEN + 5 <= 1024 - 128);
