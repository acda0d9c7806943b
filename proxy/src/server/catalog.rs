//! `/catalog` and `/index`, in Athens's shapes, answered from the bucket (see
//! `storage/catalog.rs`), so every replica and `offline` mode answer the same.

use super::App;
use super::reply::{self, JSON};
use crate::storage::Resume;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Athens's defaults.
const CATALOG_DEFAULT: usize = 1000;
const INDEX_DEFAULT: usize = 2000;
/// Larger pages are cut to this (the client follows `next` or `since`): bounds one answer's
/// memory and time.
pub const MAX_PAGE: usize = 10_000;

/// Why a query string was refused (400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueryError {
    #[error("invalid {name} {value:?}: want an integer greater than 0")]
    Count { name: &'static str, value: String },
    #[error("invalid token: pass the \"next\" value of a previous /catalog answer unchanged")]
    Token,
    #[error("invalid since {0:?}: want an RFC 3339 time such as 2026-01-02T15:04:05Z")]
    Since(String),
}

/// A page size: absent is `default`, else an integer > 0, cut to [`MAX_PAGE`].
pub fn page_size(
    q: &HashMap<String, String>,
    name: &'static str,
    default: usize,
) -> Result<usize, QueryError> {
    match q.get(name).map(|v| v.trim()) {
        None | Some("") => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n.min(MAX_PAGE)),
            _ => Err(QueryError::Count {
                name,
                value: v.to_string(),
            }),
        },
    }
}

/// The opaque page token: the last key of the page, so any replica can resume after it, and
/// the bucket's own page token where it hands them out (see `storage/walk.rs`), so the next
/// page continues the bucket's listing instead of starting a new one.
pub fn encode_token(key: &str, store_token: Option<&str>) -> String {
    match store_token {
        Some(t) => URL_SAFE_NO_PAD.encode(format!("{key}\n{t}")),
        None => URL_SAFE_NO_PAD.encode(key),
    }
}

/// Longest bucket page token taken back from a client.
const MAX_STORE_TOKEN: usize = 4096;

/// The key a token resumes after (only keys of committed versions are accepted), and the
/// bucket's page token when it carries one. A forged bucket token can only make the walk fall
/// back to the key: the store refuses it, or it lists keys the walk skips or filters.
pub fn decode_token(token: &str) -> Result<(String, Option<String>), QueryError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| QueryError::Token)?;
    let text = String::from_utf8(bytes).map_err(|_| QueryError::Token)?;
    let (key, store_token) = match text.split_once('\n') {
        Some((k, t)) => (k.to_string(), Some(t.to_string())),
        None => (text, None),
    };
    crate::storage::parse_info_key(&key).ok_or(QueryError::Token)?;
    if let Some(t) = &store_token
        && (t.is_empty() || t.len() > MAX_STORE_TOKEN || t.chars().any(char::is_control))
    {
        return Err(QueryError::Token);
    }
    Ok((key, store_token))
}

/// `since`: absent or empty is the zero time, as in Athens.
pub fn parse_since(q: &HashMap<String, String>) -> Result<DateTime<Utc>, QueryError> {
    match q.get("since").map(|v| v.trim()) {
        None | Some("") => Ok(DateTime::<Utc>::from_naive_utc_and_offset(
            chrono::NaiveDate::from_ymd_opt(1, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .unwrap_or_default(),
            Utc,
        )),
        Some(v) => DateTime::parse_from_rfc3339(v)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| QueryError::Since(v.to_string())),
    }
}

#[derive(Serialize)]
struct CatalogModule<'a> {
    module: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
struct CatalogPage<'a> {
    modules: Vec<CatalogModule<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// Go's `time.RFC3339Nano` as `encoding/json` writes it (trailing zeros dropped).
pub fn go_time(t: DateTime<Utc>) -> String {
    let full = t.format("%Y-%m-%dT%H:%M:%S%.9f").to_string();
    format!("{}Z", full.trim_end_matches('0').trim_end_matches('.'))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct IndexLine<'a> {
    path: &'a str,
    version: &'a str,
    timestamp: String,
}

fn bad(e: QueryError) -> Response {
    reply::error(StatusCode::BAD_REQUEST, e.to_string())
}

pub async fn catalog(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let size = match page_size(&q, "pagesize", CATALOG_DEFAULT) {
        Ok(n) => n,
        Err(e) => return bad(e),
    };
    let (after, store_token) = match q.get("token").map(|t| t.trim()).filter(|t| !t.is_empty()) {
        None => (None, None),
        Some(t) => match decode_token(t) {
            Ok((k, st)) => (Some(k), st),
            Err(e) => return bad(e),
        },
    };
    let from = Resume {
        after: after.as_deref(),
        token: store_token.as_deref(),
    };
    // One more than asked says whether there is a next page.
    let walked = match app.store.catalog(from, size + 1).await {
        Ok(w) => w,
        Err(e) => return reply::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    // The next page starts at the extra entry: the bucket page holding it is where to go on.
    let next = (walked.items.len() > size)
        .then(|| encode_token(&walked.items[size - 1].key, walked.token_of(size)));
    let entries = &walked.items[..walked.items.len().min(size)];
    let page = CatalogPage {
        modules: entries
            .iter()
            .map(|e| CatalogModule {
                module: &e.module,
                version: &e.version,
            })
            .collect(),
        next,
    };
    match serde_json::to_string(&page) {
        Ok(body) => reply::ok(JSON, "no-store", body),
        Err(e) => reply::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub async fn index(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (limit, since) = match (page_size(&q, "limit", INDEX_DEFAULT), parse_since(&q)) {
        (Ok(l), Ok(s)) => (l, s),
        (Err(e), _) | (_, Err(e)) => return bad(e),
    };
    let rows = match app.store.index(since, limit).await {
        Ok(r) => r,
        Err(e) => return reply::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let mut body = String::with_capacity(rows.len() * 96);
    for r in &rows {
        let line = IndexLine {
            path: &r.path,
            version: &r.version,
            timestamp: go_time(r.timestamp),
        };
        if let Ok(s) = serde_json::to_string(&line) {
            body.push_str(&s);
            body.push('\n');
        }
    }
    reply::ok("application/x-ndjson", "no-store", body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(&q(&[]), "pagesize", 1000), Ok(1000));
        assert_eq!(page_size(&q(&[("pagesize", "5")]), "pagesize", 1000), Ok(5));
        assert_eq!(
            page_size(&q(&[("pagesize", "999999")]), "pagesize", 1000),
            Ok(MAX_PAGE)
        );
        for v in ["x", "0", "-1", "1.5", "1e3"] {
            assert!(
                page_size(&q(&[("limit", v)]), "limit", 2000).is_err(),
                "{v}"
            );
        }
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let k = "github.com/!burnt!sushi/toml/@v/v1.4.0.info";
        assert_eq!(
            decode_token(&encode_token(k, None)).unwrap(),
            (k.into(), None)
        );
        assert_eq!(
            decode_token(&encode_token(k, Some("abc=="))).unwrap(),
            (k.into(), Some("abc==".into()))
        );
        let long = "x".repeat(MAX_STORE_TOKEN + 1);
        for t in [
            "!!!",
            "aGVsbG8",
            &encode_token("github.com/a/b/@v/v1.0.0.mod", None),
            &encode_token(k, Some("")),
            &encode_token(k, Some("a\u{7}b")),
            &encode_token(k, Some(&long)),
        ] {
            assert_eq!(decode_token(t), Err(QueryError::Token), "{t}");
        }
    }

    #[test]
    fn since_and_go_times() {
        assert!(parse_since(&q(&[("since", "yesterday")])).is_err());
        let t = parse_since(&q(&[("since", "2026-01-02T03:04:05+01:00")])).unwrap();
        assert_eq!(t, Utc.with_ymd_and_hms(2026, 1, 2, 2, 4, 5).unwrap());
        assert_eq!(
            parse_since(&q(&[])).unwrap().to_rfc3339(),
            "0001-01-01T00:00:00+00:00"
        );
        assert_eq!(go_time(t), "2026-01-02T02:04:05Z");
        let t = t + chrono::Duration::nanoseconds(120_000_000);
        assert_eq!(go_time(t), "2026-01-02T02:04:05.12Z");
        let t = t + chrono::Duration::nanoseconds(7);
        assert_eq!(go_time(t), "2026-01-02T02:04:05.120000007Z");
    }
}
