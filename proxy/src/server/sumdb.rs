//! Checksum database proxying: `/sumdb/<name>/supported`, `/latest`, `/lookup/...`, `/tile/...`.
//!
//! Only the configured database is served. Lookups for no-sum (private) modules are refused
//! with 403 so private module names never leave. Full tiles never change and are cached in the
//! bucket; partial tiles and `latest` are passed through.

use super::App;
use super::reply::{self, IMMUTABLE, TEXT};
use crate::module::{ModulePath, unescape_path};
use crate::storage::sumdb_tile;
use crate::upstream::read_limited;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::sync::Arc;

/// Tiles are 8 KiB of hashes at most; lookups and `latest` far smaller.
const MAX_SUMDB_BODY: usize = 1 << 20;

/// What a `/sumdb/<name>/<rest>` request asks for. Pure.
#[derive(Debug, PartialEq, Eq)]
enum SumdbRequest<'a> {
    Supported,
    Latest,
    Lookup { module_escaped: &'a str },
    Tile { full: bool },
}

fn classify(rest: &str) -> Option<SumdbRequest<'_>> {
    let safe = |s: &str| {
        !s.is_empty()
            && !s.split('/').any(|e| e.is_empty() || e == "." || e == "..")
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~!@+/".contains(&b))
    };
    if !safe(rest) {
        return None;
    }
    match rest {
        "supported" => Some(SumdbRequest::Supported),
        "latest" => Some(SumdbRequest::Latest),
        _ => {
            if let Some(target) = rest.strip_prefix("lookup/") {
                let (module_escaped, version) = target.rsplit_once('@')?;
                (!version.is_empty()).then_some(SumdbRequest::Lookup { module_escaped })
            } else {
                rest.strip_prefix("tile/").map(|tile| SumdbRequest::Tile {
                    full: !tile.contains(".p/"),
                })
            }
        }
    }
}

pub async fn handle(State(app): State<Arc<App>>, Path(full): Path<String>) -> Response {
    let Some(client) = app.filler.sumdb.as_ref() else {
        return reply::error(
            StatusCode::NOT_FOUND,
            "no checksum database is proxied here",
        );
    };
    let name = &client.spec().name;
    let Some(rest) = full
        .strip_prefix(name.as_str())
        .and_then(|r| r.strip_prefix('/'))
    else {
        return reply::error(
            StatusCode::NOT_FOUND,
            format!("only {name} is proxied here"),
        );
    };
    let Some(kind) = classify(rest) else {
        return reply::error(StatusCode::BAD_REQUEST, "malformed checksum database path");
    };
    match kind {
        SumdbRequest::Supported => return reply::ok(TEXT, "no-store", ""),
        SumdbRequest::Lookup { module_escaped } => {
            let module = unescape_path(module_escaped)
                .ok()
                .and_then(|m| ModulePath::new(m).ok());
            let Some(module) = module else {
                return reply::error(StatusCode::BAD_REQUEST, "malformed module path in lookup");
            };
            if app.filler.nosum.matches(module.as_str()) {
                return reply::error(
                    StatusCode::FORBIDDEN,
                    format!("{}: private module, not looked up", module.as_str()),
                );
            }
        }
        SumdbRequest::Tile { full: true } => {
            if let Ok(Some(b)) = app.store.get_blob(&sumdb_tile(name, rest)).await {
                return reply::ok("application/octet-stream", IMMUTABLE, b);
            }
        }
        _ => {}
    }
    if app.mode == crate::config::NetworkMode::Offline {
        return reply::error(
            StatusCode::NOT_FOUND,
            "checksum database not reachable in offline mode",
        );
    }
    let base = match client.base_url().await {
        Ok(b) => b,
        Err(e) => return reply::error(StatusCode::BAD_GATEWAY, e.to_string()),
    };
    let url = format!("{base}/{rest}");
    let resp = match app.upstream.http().get(&url).send().await {
        Ok(r) => r,
        Err(e) => return reply::error(StatusCode::BAD_GATEWAY, format!("{url}: {e}")),
    };
    let status = resp.status();
    let body = match read_limited(resp, MAX_SUMDB_BODY).await {
        Ok(b) => b,
        Err(e) => return reply::error(StatusCode::BAD_GATEWAY, format!("{url}: {e}")),
    };
    if !status.is_success() {
        let code = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        return reply::error(code, String::from_utf8_lossy(&body));
    }
    let full_tile = matches!(kind, SumdbRequest::Tile { full: true });
    if full_tile {
        // Best effort: a failed cache write only costs a later upstream trip.
        let _ = app
            .store
            .create_blob(&sumdb_tile(name, rest), body.clone())
            .await;
    }
    let cache = if full_tile { IMMUTABLE } else { "no-cache" };
    reply::ok("text/plain; charset=utf-8", cache, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_table() {
        use SumdbRequest::*;
        assert_eq!(classify("supported"), Some(Supported));
        assert_eq!(classify("latest"), Some(Latest));
        assert_eq!(
            classify("lookup/github.com/!burnt!sushi/toml@v1.4.0"),
            Some(Lookup {
                module_escaped: "github.com/!burnt!sushi/toml"
            })
        );
        assert_eq!(classify("tile/8/0/x001/234"), Some(Tile { full: true }));
        assert_eq!(classify("tile/8/0/005.p/7"), Some(Tile { full: false }));
        assert_eq!(classify("lookup/a@"), None);
        assert_eq!(classify("tile/../x"), None);
        assert_eq!(classify("lookup/a b@v1"), None);
        assert_eq!(classify("other"), None);
    }
}
