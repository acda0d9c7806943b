//! The image tier: OCI layouts assembled by tests/image/layout without a Docker engine, checked
//! against the Dockerfile, and run under runc with the pod spec the operator renders.

pub mod dockerfile;
pub mod layout;
pub mod netns;
pub mod runc;
pub mod runtime_config;
pub mod tls;

use anyhow::Result;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The folder holding the `proxy` and `operator` layouts: `$ATHENS_IMAGE_DIR` (set by
/// `tests/run`), else what `tests/image/build` prints after building them (cached).
pub fn layouts_dir() -> Result<PathBuf> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("ATHENS_IMAGE_DIR") {
            return Ok(d.into());
        }
        crate::wait::script_output(&crate::wait::repo().join("tests/image/build"))
            .map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(anyhow::Error::msg)
}
