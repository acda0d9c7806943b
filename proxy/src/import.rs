//! Importing an Athens bucket: every version in it verified and committed like a fill.
//!
//! Athens keeps `<module>/@v/<version>.{info,mod,zip}` with the module path as it is (not
//! case-escaped). The source bucket is served on a loopback port as a GOPROXY in protocol
//! layout, and each version is filled from it through the proxy's own fill path: the same zip
//! checks, `.mod` comparison, checksum-database verification (unless no-sum patterns or
//! `sumdb = "off"` say otherwise), lease and create-only commit with its `/index` row. A
//! version that fails is reported and not stored.

use crate::config::Config;
use crate::module::{ModulePath, Version, unescape_path, unescape_version};
use crate::server::App;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub imported: usize,
    /// `path@version: reason`, for every version not imported.
    pub failed: Vec<String>,
    /// Source keys that look like versions but are not valid module paths or versions.
    pub skipped: Vec<String>,
}

/// A source `<module>/@v/<version>.info` key as (module, version), when valid.
fn version_of(key: &str) -> Option<(String, String)> {
    let (module, file) = key.rsplit_once("/@v/")?;
    let version = file.strip_suffix(".info")?;
    (!version.contains('/')).then(|| (module.to_string(), version.to_string()))
}

/// Serves a protocol-layout request from the Athens layout.
async fn serve(State(src): State<Arc<dyn ObjectStore>>, uri: Uri) -> Response {
    let Some((module, file)) = uri.path().trim_start_matches('/').rsplit_once("/@v/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some((version, ext)) = file.rsplit_once('.') else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (Ok(module), Ok(version)) = (unescape_path(module), unescape_version(version)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(key) = Key::parse(format!("{module}/@v/{version}.{ext}")) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match src.get(&key).await {
        Ok(r) => {
            let size = r.meta.size;
            let mut resp = Response::new(Body::from_stream(r.into_stream()));
            if let Ok(v) = size.to_string().parse() {
                resp.headers_mut().insert("content-length", v);
            }
            resp
        }
        Err(object_store::Error::NotFound { .. }) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// Imports every version of the Athens bucket at `source` (with `options`) into the storage
/// `cfg` names, verifying each as `cfg.upstream` says (its checksum database and no-sum
/// patterns; its `goproxy` is replaced by the source).
pub async fn import(
    cfg: &Config,
    source: &str,
    options: &BTreeMap<String, String>,
    concurrency: usize,
) -> anyhow::Result<ImportReport> {
    let src = crate::storage::open(source, options)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let router = axum::Router::new().fallback(serve).with_state(src.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let mut cfg = cfg.clone();
    cfg.upstream.goproxy = url;
    cfg.upstream.network_mode = crate::config::NetworkMode::Strict;
    cfg.upstream.negative_cache_seconds = 0;
    cfg.upstream.failed_fill_seconds = 0;
    let app = Arc::new(App::new(&cfg)?);

    let mut report = ImportReport::default();
    let mut versions = Vec::new();
    let mut listing = src.list(None);
    while let Some(meta) = listing.next().await {
        let meta = meta?;
        let Some((m, v)) = version_of(meta.location.as_ref()) else {
            continue;
        };
        match (ModulePath::new(m.clone()), Version::parse(&v)) {
            (Ok(m), Ok(v)) => versions.push((m, v)),
            _ => report.skipped.push(format!("{m}@{v}")),
        }
    }
    let results: Vec<_> = futures::stream::iter(versions)
        .map(|(m, v)| {
            let app = app.clone();
            async move {
                let r = app.ensure(&m, &v).await;
                (format!("{}@{}", m.as_str(), v.as_str()), r)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for (id, r) in results {
        match r {
            Ok(_) => report.imported += 1,
            Err(e) => report.failed.push(format!("{id}: {e}")),
        }
    }
    report.failed.sort();
    server.abort();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::version_of;

    #[test]
    fn athens_keys() {
        assert_eq!(
            version_of("github.com/BurntSushi/toml/@v/v1.4.0.info"),
            Some(("github.com/BurntSushi/toml".into(), "v1.4.0".into()))
        );
        assert_eq!(version_of("github.com/a/b/@v/v1.4.0.zip"), None);
        assert_eq!(version_of("github.com/a/b/@v/list"), None);
    }
}
