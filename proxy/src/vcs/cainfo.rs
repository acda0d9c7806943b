//! git's `http.sslCAInfo` for HTTPS remotes, taken from the proxy's git config file (with the
//! `[http "<url>"]` sections gitconfig.rs resolved for the remote). gitoxide's reqwest backend
//! ignores the key, so the file's certificates are handed to the client it builds. As in git
//! (curl's CAINFO) the file replaces the default roots rather than adding to them. The
//! `GIT_SSL_CAINFO` environment variable is not read: `SSL_CERT_FILE` is the proxy-wide way.

use super::git::GitError;
use gix::bstr::ByteSlice;
use gix::protocol::transport::client::blocking_io::http;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn failed(e: impl std::fmt::Display) -> GitError {
    GitError::Failed(format!("http.sslCAInfo: {e}"))
}

/// The `http.sslCAInfo` file of `config` (as scoped to one remote), `~/` expanded as git does.
pub fn ca_file(config: &gix::config::File) -> Result<Option<PathBuf>, GitError> {
    let Some(path) = config.path("http.sslCAInfo") else {
        return Ok(None);
    };
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let ctx = gix::config::path::interpolate::Context {
        home_dir: home.as_deref(),
        ..Default::default()
    };
    let path = path.interpolate(ctx).map_err(failed)?;
    Ok(Some(path))
}

/// The transport options for fetching `url` from `repo`, with the client trusting exactly the
/// certificates in `ca_file`.
pub fn transport_options(
    repo: &gix::Repository,
    url: &gix::Url,
    ca_file: &Path,
) -> Result<Box<dyn std::any::Any>, GitError> {
    let pem = std::fs::read(ca_file).map_err(|e| failed(format!("{}: {e}", ca_file.display())))?;
    let certs = certificates(&pem).map_err(|e| failed(format!("{}: {e}", ca_file.display())))?;
    let url = url.to_bstring();
    let mut options = repo
        .transport_options(url.as_bstr(), None)
        .map_err(failed)?
        .unwrap_or_else(|| Box::new(http::Options::default()));
    let opts = options
        .downcast_mut::<http::Options>()
        .ok_or_else(|| failed("not an HTTP remote"))?;
    opts.backend = Some(Arc::new(Mutex::new(http::reqwest::Options {
        configure_client: Some(Box::new(move |builder| {
            Ok(builder.tls_certs_only(certs.iter().cloned()))
        })),
        configure_request: None,
    })));
    Ok(options)
}

/// The certificates of a PEM bundle; an empty bundle is an error (git would trust nothing).
fn certificates(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, String> {
    let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate in the file".into());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> gix::config::File {
        gix::config::File::try_from(text).unwrap()
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        assert!(certificates(b"").is_err());
        assert!(certificates(b"not a certificate\n").is_err());
    }

    #[test]
    fn the_key_is_read_and_home_expanded() {
        assert_eq!(ca_file(&config("[http]\n\tproxy = x\n")).unwrap(), None);
        let got = ca_file(&config("[http]\n\tsslCAInfo = /etc/corp/ca.pem\n")).unwrap();
        assert_eq!(got, Some(PathBuf::from("/etc/corp/ca.pem")));
        if let Some(home) = std::env::var_os("HOME") {
            let got = ca_file(&config("[http]\n\tsslcainfo = ~/ca.pem\n")).unwrap();
            assert_eq!(got, Some(PathBuf::from(home).join("ca.pem")));
        }
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let repo = gix::init_bare(dir.path()).unwrap();
        let url = gix::url::parse("https://git.example/r.git").unwrap();
        let err = transport_options(&repo, &url, Path::new("/nonexistent/ca.pem"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("http.sslCAInfo: /nonexistent/ca.pem"), "{err}");
    }
}
