//! Module paths, versions and proxy request paths: parsing and validation, no I/O.
//!
//! Everything a client sends is checked here before it touches storage, an upstream proxy or
//! a `go` subprocess. The path and version become object-store keys, upstream URLs and command
//! arguments; validating first (by golang.org/x/mod's rules, plus length limits) means those
//! layers only ever see well-formed, bounded, case-unambiguous input, and a malformed request
//! gets a precise 400 instead of a confusing upstream error or a stray cache entry.

mod escape;
mod list;
mod major;
mod path;
mod query;
mod request;
mod version;

pub use escape::{CaseError, escape_path, escape_version, unescape_path, unescape_version};
pub use list::{is_tagged, merge_list, sort_versions};
pub use major::{MajorError, MajorReason, check_path_major};
pub use path::{MAX_PATH_LEN, ModulePath, PathError, PathReason, check_path};
pub use query::{QUERY_WORDS, VersionQuery};
pub use request::{EncodingError, MAX_REQUEST_LEN, Request, RequestError, parse_request};
pub use version::{MAX_VERSION_LEN, Version, VersionError, VersionReason};

/// Worst-case storage key `<escaped path>/@v/<escaped version>.info` stays well under the
/// 1024-byte object key limit of S3, GCS and Azure, with room for a bucket prefix.
const _: () = assert!(2 * MAX_PATH_LEN + 4 + 2 * MAX_VERSION_LEN + 5 <= 1024 - 128);

/// Quotes user input for an error message, cut short so a huge input cannot make a huge body.
fn quote(s: &str) -> String {
    const SHOWN: usize = 80;
    if s.len() <= SHOWN {
        return format!("{s:?}");
    }
    let mut end = SHOWN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quote_truncates() {
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
        let long = "é".repeat(100);
        let q = quote(&long);
        assert!(q.ends_with("... (200 bytes)"), "{q}");
        assert!(q.len() < 100);
    }
}
