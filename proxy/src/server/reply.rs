//! Building responses: content types, cache headers, and error bodies the go command shows.

use super::MissAnswer;
use crate::fetch::FillError;
use crate::upstream::UpstreamError;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

/// `.mod`, `.zip` and canonical `.info` never change once served.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `list` and `@latest` move as versions are published.
pub const SHORT: &str = "public, max-age=60";

pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=utf-8";
pub const ZIP: &str = "application/zip";

/// A successful response with a body.
pub fn ok(content_type: &'static str, cache: &'static str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

/// An error with a one-line `text/plain` reason (the go command prints it to the user).
pub fn error(status: StatusCode, message: impl AsRef<str>) -> Response {
    let mut line = message.as_ref().replace(['\n', '\r'], " ");
    line.push('\n');
    let mut r = Response::new(Body::from(line));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Status for an upstream failure: 504 for timeouts, 404 for "not there", else 502.
pub fn upstream_error(e: &UpstreamError) -> Response {
    match e {
        UpstreamError::NotFound(m) => error(StatusCode::NOT_FOUND, format!("not found: {m}")),
        UpstreamError::Off => error(StatusCode::NOT_FOUND, e.to_string()),
        UpstreamError::Timeout { .. } => error(StatusCode::GATEWAY_TIMEOUT, e.to_string()),
        // A refusal (403 for a module upstream will not serve, say) is passed on as it is, so
        // the go command sees what it would see talking to upstream itself; only failures of
        // upstream (5xx, and 429 after our retries) become 502.
        UpstreamError::Status { status, .. } if (400..500).contains(status) && *status != 429 => {
            error(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY),
                e.to_string(),
            )
        }
        _ => error(StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

pub fn fill_error(e: &FillError) -> Response {
    match e {
        FillError::NotFound(m) => error(StatusCode::NOT_FOUND, format!("not found: {m}")),
        FillError::Upstream(u) => upstream_error(u),
        FillError::Rejected(m) => {
            error(StatusCode::BAD_GATEWAY, format!("verification failed: {m}"))
        }
        FillError::Storage(m) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("storage: {m}")),
        FillError::Busy(m) => error(StatusCode::SERVICE_UNAVAILABLE, m),
    }
}

/// What a miss answers when the download mode did not fill it now.
pub fn miss(e: &MissAnswer) -> Response {
    match e {
        MissAnswer::Fill(f) => fill_error(f),
        MissAnswer::NotNow(m) => error(StatusCode::NOT_FOUND, format!("not found: {m}")),
        MissAnswer::Redirect(url) => redirect(StatusCode::MOVED_PERMANENTLY, url),
    }
}

/// A redirect; a URL that cannot be a header value is a 500 rather than a panic.
pub fn redirect(status: StatusCode, url: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(url) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "redirect URL is not a valid header",
        );
    };
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::LOCATION, location);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
