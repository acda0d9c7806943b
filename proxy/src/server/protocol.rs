//! The module download protocol: `list`, `.info`, `.mod`, `.zip`, `@latest`.

use super::App;
use super::app::Found;
use super::file_body::FileSlot;
use super::policy::Rules;
use super::reply::{self, IMMUTABLE, JSON, SHORT, TEXT, ZIP};
use crate::config::NetworkMode;
use crate::module::{
    Info, ModulePath, Request, Version, VersionQuery, check_path_major, escape_version, list_text,
    merge_list, merge_sorted, parse_request,
};
use crate::policy::filter::Rule;
use crate::storage::{Layout, StorageError, ZipBody, ZipObject};
use crate::upstream::{UpstreamError, read_limited};
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use std::sync::Arc;

/// Largest `list` or `@latest` body we take from upstream.
const MAX_SMALL_BODY: usize = 4 << 20;

/// The router's fallback (used when client credentials are required, and for paths that
/// are not protocol requests): [`serve`] with axum's extractors.
pub async fn handle(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    version: axum::http::Version,
    slot: Option<Extension<FileSlot>>,
) -> Response {
    serve(&app, &method, &uri, version, slot.map(|Extension(s)| s)).await
}

/// A module download protocol request. `slot` is the connection's file slot, on plain
/// TCP connections.
pub async fn serve(
    app: &Arc<App>,
    method: &Method,
    uri: &Uri,
    version: axum::http::Version,
    slot: Option<FileSlot>,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut r = reply::error(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    // Validation comes first: nothing malformed reaches storage or upstream.
    let request = match parse_request(uri.path().trim_start_matches('/')) {
        Ok(r) => r,
        Err(e) if e.is_not_found() => return reply::error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => return reply::error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if let Some(r) = filtered(app, &request, uri.path()) {
        return r;
    }
    let path = uri.path();
    match request {
        Request::List(m) => list(app, &m).await,
        Request::Latest(m) => latest(app, &m).await,
        Request::Info(m, VersionQuery::Version(v)) => {
            match app.ensure_mod_for(&m, &v, path).await {
                Ok(found) => reply::ok(JSON, IMMUTABLE, found.info().clone()),
                Err(e) => reply::miss(&e),
            }
        }
        Request::Info(m, VersionQuery::Query(q)) => query(app, &m, &q).await,
        Request::Mod(m, v) => go_mod(app, &m, &v, path).await,
        Request::Zip(m, v) => {
            // Zero-copy only where hyper writes HTTP/1 straight to our socket wrapper.
            let h1 = version <= axum::http::Version::HTTP_11;
            let slot = slot.filter(|_| h1);
            zip(app, &m, &v, path, slot).await
        }
    }
}

/// The filter file's answer, when it is not "include": 403 with the reason, or 303 to the
/// global endpoint for `D` rules.
fn filtered(app: &Arc<App>, request: &Request, path: &str) -> Option<Response> {
    let (m, v) = match request {
        Request::List(m) | Request::Latest(m) | Request::Info(m, VersionQuery::Query(_)) => {
            (m, None)
        }
        Request::Info(m, VersionQuery::Version(v)) | Request::Mod(m, v) | Request::Zip(m, v) => {
            (m, Some(v.as_str()))
        }
    };
    match app.policy.filter(m.as_str(), v) {
        Rule::Include => None,
        Rule::Exclude => Some(excluded(m, v)),
        Rule::Direct => Some(reply::redirect(
            StatusCode::SEE_OTHER,
            &format!("{}{path}", app.policy.global_endpoint()),
        )),
    }
}

fn excluded(m: &ModulePath, v: Option<&str>) -> Response {
    let what = match v {
        Some(v) => format!("{}@{v}", m.as_str()),
        None => m.as_str().to_string(),
    };
    reply::error(
        StatusCode::FORBIDDEN,
        format!("{what} is excluded by this proxy's filter rules"),
    )
}

/// Whether the filter in force lets `v` of `m` through (for versions in lists and answers).
fn allowed(app: &App, m: &ModulePath, v: &Version) -> bool {
    app.policy.rules().filter.rule(m.as_str(), Some(v.as_str())) != Rule::Exclude
}

async fn go_mod(app: &Arc<App>, m: &ModulePath, v: &Version, path: &str) -> Response {
    let (me, ve) = (m.escaped(), v.escaped());
    let layout = Layout {
        module: &me,
        version: &ve,
    };
    match app.ensure_mod_for(m, v, path).await {
        Ok(Found::ModOnly { go_mod, .. }) => return reply::ok(TEXT, IMMUTABLE, go_mod),
        Ok(Found::Committed(_)) => {}
        Err(e) => return reply::miss(&e),
    }
    match with_repair(app, m, v, path, || app.store.go_mod(layout)).await {
        Ok(b) => reply::ok(TEXT, IMMUTABLE, b),
        Err(r) => r,
    }
}

async fn zip(
    app: &Arc<App>,
    m: &ModulePath,
    v: &Version,
    path: &str,
    slot: Option<FileSlot>,
) -> Response {
    let (me, ve) = (m.escaped(), v.escaped());
    let layout = Layout {
        module: &me,
        version: &ve,
    };
    // A warm zip with redirects on: the bucket serves the bytes to the client. The filter and
    // the access check have already answered by now. Anything else (a miss, a zip gone from
    // the bucket, a signing failure) takes the streaming path below.
    match app.store.zip_redirect(layout).await {
        Ok(Some(url)) => {
            app.metrics.storage_hit();
            return reply::redirect(StatusCode::TEMPORARY_REDIRECT, &url);
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(module = m.as_str(), version = v.as_str(), error = %e,
            "zip redirect failed; streaming instead"),
    }
    match with_repair(app, m, v, path, || app.store.zip(layout)).await {
        Ok(z) => {
            let size = z.size;
            let body = match (z.body, slot) {
                (ZipBody::File(f), Some(slot)) => Body::new(slot.body(f, size)),
                (body, _) => Body::from_stream(ZipObject { size, body }.into_stream()),
            };
            let mut r = reply::ok(ZIP, IMMUTABLE, body);
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            r
        }
        Err(r) => r,
    }
}

/// Reads a file of a version, filling the version first if needed. A committed version whose
/// file is gone from the bucket is filled again once (self-healing), not answered 500 forever.
async fn with_repair<T, F, Fut>(
    app: &Arc<App>,
    m: &ModulePath,
    v: &Version,
    path: &str,
    read: F,
) -> Result<T, Response>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, StorageError>>,
{
    app.ensure_for(m, v, path)
        .await
        .map_err(|e| reply::miss(&e))?;
    let storage_error =
        |e: StorageError| reply::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    if let Some(found) = read().await.map_err(storage_error)? {
        return Ok(found);
    }
    app.repair(m, v).await.map_err(|e| reply::fill_error(&e))?;
    read().await.map_err(storage_error)?.ok_or_else(|| {
        reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "{}@{}: stored version lost a file and could not be restored",
                m.as_str(),
                v.as_str()
            ),
        )
    })
}

/// What `list` names: upstream's and storage's tagged versions (each sorted), merged, less the
/// ones the filter excludes. One rules snapshot for all, not a lock per version.
fn listed<'a>(
    upstream: &'a [Version],
    mine: &'a [Version],
    rules: &Rules,
    m: &ModulePath,
) -> impl DoubleEndedIterator<Item = &'a Version> {
    merge_sorted(upstream, mine)
        .into_iter()
        .filter(|v| rules.filter.rule(m.as_str(), Some(v.as_str())) != Rule::Exclude)
}

/// `list`: upstream's tagged versions merged with storage's, no pseudo-versions, semver order.
async fn list(app: &Arc<App>, m: &ModulePath) -> Response {
    let me = m.escaped();
    let stored = match app.store.stored_versions(&me).await {
        Ok(s) => s,
        Err(e) => return reply::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if !stored.is_empty() && app.list_checks.due(&me) {
        // Off the request path: the derived list file only matters to file:// readers.
        let (store, module, versions) = (app.store.clone(), me.to_string(), stored.clone());
        tokio::spawn(async move {
            match crate::fetch::list_file::repair_if_stale(&store, &module, &versions.all).await {
                Ok(true) => tracing::info!(%module, "list file was missing versions; rebuilt"),
                Ok(false) => {}
                Err(e) => tracing::warn!(%module, error = %e, "could not check list file"),
            }
        });
    }
    let text =
        |upstream: &[Version], rules: &Rules| list_text(listed(upstream, &stored.tagged, rules, m));
    let render = |upstream: &[Version]| reply::ok(TEXT, SHORT, text(upstream, &app.policy.rules()));
    if app.mode == NetworkMode::Offline {
        if stored.is_empty() {
            return reply::error(
                StatusCode::NOT_FOUND,
                format!("{}: no versions in storage (offline mode)", m.as_str()),
            );
        }
        return render(&[]);
    }
    let path = format!("{me}/@v/list");
    match app.upstream_lists.get(app, &path).await {
        Ok(answer) => reply::ok(
            TEXT,
            SHORT,
            answer.body(&stored.tagged, &app.policy.rules(), text),
        ),
        Err(UpstreamError::NotFound(_)) if !stored.is_empty() => render(&[]),
        Err(e) if app.mode == NetworkMode::Fallback && !stored.is_empty() => {
            tracing::warn!(module = m.as_str(), error = %e,
                "upstream failed; serving the list from storage");
            render(&[])
        }
        Err(e) => reply::upstream_error(&e),
    }
}

/// `@latest`: upstream's answer; from storage when offline, or upstream has none or fails in
/// fallback mode.
async fn latest(app: &Arc<App>, m: &ModulePath) -> Response {
    let me = m.escaped();
    let upstream_error = if app.mode == NetworkMode::Offline {
        None
    } else {
        let path = format!("{me}/@latest");
        match fetch_small(app, &path).await {
            Ok(body) => match upstream_latest_excluded(app, m, &body) {
                false => return info_reply(m, &body, SHORT),
                true => return latest_allowed(app, m).await,
            },
            Err(e @ UpstreamError::NotFound(_)) => Some(e),
            Err(e) if app.mode == NetworkMode::Fallback => {
                tracing::warn!(module = m.as_str(), error = %e,
                    "upstream failed; answering @latest from storage");
                Some(e)
            }
            Err(e) => return reply::upstream_error(&e),
        }
    };
    match latest_stored(app, m).await {
        Ok(Some(info)) => reply::ok(JSON, SHORT, info),
        Ok(None) => match upstream_error {
            Some(e) => reply::upstream_error(&e),
            None => reply::error(
                StatusCode::NOT_FOUND,
                format!("{}: no versions in storage (offline mode)", m.as_str()),
            ),
        },
        Err(e) => reply::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The `.info` of the highest stored version: tagged if any, else the newest pseudo-version.
async fn latest_stored(app: &Arc<App>, m: &ModulePath) -> Result<Option<Bytes>, StorageError> {
    let me = m.escaped();
    let module_escaped: &str = &me;
    let mut stored = app.store.stored_versions(module_escaped).await?.all.clone();
    stored.retain(|v| allowed(app, m, v));
    let best = merge_list("", &stored)
        .pop()
        .or_else(|| stored.iter().max().cloned());
    let Some(v) = best else { return Ok(None) };
    let ve = v.escaped();
    app.store
        .info(Layout {
            module: module_escaped,
            version: &ve,
        })
        .await
}

/// Whether upstream's `@latest` names a version the filter excludes.
fn upstream_latest_excluded(app: &Arc<App>, m: &ModulePath, body: &Bytes) -> bool {
    Info::parse(body)
        .and_then(|i| i.canonical_version())
        .is_ok_and(|v| !allowed(app, m, &v))
}

/// `@latest` when upstream's latest is excluded: the highest allowed version of the filtered
/// list (upstream's and storage's), so an excluded version is never offered as latest.
async fn latest_allowed(app: &Arc<App>, m: &ModulePath) -> Response {
    let me = m.escaped();
    let stored = app.store.stored_versions(&me).await.unwrap_or_default();
    // The same remembered answer `list` serves, so both name the same versions. Boxed: a rare
    // path, and its upstream request's state would otherwise grow every request's future.
    let upstream = Box::pin(app.upstream_lists.get(app, &format!("{me}/@v/list"))).await;
    let upstream = upstream.as_ref().map_or(&[][..], |a| &a.versions[..]);
    let best = listed(upstream, &stored.tagged, &app.policy.rules(), m).next_back();
    let Some(best) = best else {
        return reply::error(
            StatusCode::NOT_FOUND,
            format!(
                "not found: {}: no version is allowed by this proxy's filter rules",
                m.as_str()
            ),
        );
    };
    let ve = best.escaped();
    let layout = Layout {
        module: &me,
        version: &ve,
    };
    if let Ok(Some(info)) = app.store.info(layout).await {
        return reply::ok(JSON, SHORT, info);
    }
    match fetch_small(app, &format!("{me}/@v/{ve}.info")).await {
        Ok(body) => info_reply(m, &body, SHORT),
        Err(e) => reply::upstream_error(&e),
    }
}

/// `.info` for a branch or commit: upstream resolves it; the answer is not stored (the
/// canonical version it names is, when asked for).
async fn query(app: &Arc<App>, m: &ModulePath, q: &str) -> Response {
    if app.mode == NetworkMode::Offline {
        return reply::error(
            StatusCode::NOT_FOUND,
            format!(
                "{}@{q}: cannot resolve a version query in offline mode",
                m.as_str()
            ),
        );
    }
    let qe = match escape_version(q) {
        Ok(q) => q,
        Err(e) => return reply::error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let path = format!("{}/@v/{qe}.info", m.escaped());
    match fetch_small(app, &path).await {
        Ok(body) => match Info::parse(&body).and_then(|i| i.canonical_version()) {
            Ok(v) if !allowed(app, m, &v) => excluded(m, Some(v.as_str())),
            _ => info_reply(m, &body, SHORT),
        },
        Err(e) => reply::upstream_error(&e),
    }
}

/// Passes on an upstream `.info`/`@latest` answer after checking it names a canonical version
/// that fits the module path's major version.
fn info_reply(m: &ModulePath, body: &Bytes, cache: &'static str) -> Response {
    let fits = Info::parse(body)
        .and_then(|i| i.canonical_version())
        .is_ok_and(|v| check_path_major(&v, m).is_ok());
    if fits {
        reply::ok(JSON, cache, body.clone())
    } else {
        reply::error(
            StatusCode::BAD_GATEWAY,
            "upstream answered with an invalid version",
        )
    }
}

/// GETs a small upstream body. Not-found answers are remembered briefly and answered from
/// memory while fresh: path-prefix probes cost one upstream trip, not one each.
pub(super) async fn fetch_small(app: &Arc<App>, path: &str) -> Result<Bytes, UpstreamError> {
    if let Some(msg) = app.negative.get(path) {
        app.metrics.negative_cache_hits.inc();
        return Err(UpstreamError::NotFound(msg));
    }
    let result = match app.upstream.get(path).await {
        Ok(resp) => {
            read_limited(resp, MAX_SMALL_BODY)
                .await
                .map_err(|e| UpstreamError::Transport {
                    url: path.to_string(),
                    reason: e.to_string(),
                })
        }
        Err(e) => Err(e),
    };
    if let Err(UpstreamError::NotFound(msg)) = &result {
        app.negative.put(path, msg.clone());
    }
    result
}

#[cfg(test)]
mod future_size {
    /// A request's future is moved as it starts (axum, tower), so its size is paid by every
    /// warm request: a fill's state (tens of KiB) must stay boxed behind the miss path.
    #[tokio::test]
    async fn a_request_future_stays_small() {
        let mut cfg = crate::config::Config::default();
        cfg.storage.url = "memory://".into();
        cfg.upstream.goproxy = "off".into();
        cfg.upstream.sumdb = "off".into();
        let app = std::sync::Arc::new(super::App::new(&cfg).unwrap());
        let f = super::handle(
            axum::extract::State(app),
            axum::http::Method::GET,
            axum::http::Uri::from_static("/a.b/c/@v/v1.0.0.info"),
            axum::http::Version::HTTP_11,
            None,
        );
        let size = std::mem::size_of_val(&f);
        assert!(size <= 8 << 10, "the request future is {size} bytes");
    }
}
