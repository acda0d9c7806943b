//! Upstream: a `GOPROXY` list with the go command's own fall-through rules, over native HTTP.

mod body;
mod client;
mod goproxy_list;
mod netrc;

pub use body::{BodyError, download_to, read_limited};
pub use client::{Upstream, UpstreamError, VcsSettings, error_chain};
pub use goproxy_list::{Entry, FallThrough, Source, parse_goproxy};
pub use netrc::{NetrcLine, credentials_for, parse_netrc};
