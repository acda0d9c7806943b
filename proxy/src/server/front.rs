//! The service every request enters by: module protocol requests go straight to their
//! handler, everything else through the axum router.
//!
//! Why not the router alone: a warm hit through it took 29.5 allocations (heaptrack), a dozen of
//! them the router's own (a boxed clone of the route's service per layer, a boxed future per
//! middleware, the request's extensions), and axum and tower were a tenth of the process's
//! samples (perf). Protocol requests are nearly all of a proxy's traffic. The router keeps the
//! named routes (health, metrics, catalog, the checksum database), anything that is not a
//! protocol path, and every request when client credentials are required (its access layer).
//! Both ways observe the request the same way (observe.rs).

use super::file_body::FileSlot;
use super::observe::{Seen, route_of};
use super::{App, protocol};
use crate::metrics::Route;
use axum::Router;
use axum::body::{Body, HttpBody};
use axum::http::{HeaderValue, Method, Request, header};
use axum::response::Response;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// One connection's front door.
#[derive(Clone)]
pub struct Front {
    app: Arc<App>,
    router: TowerToHyperService<Router>,
    /// The connection's file slot (file_body.rs), on plain TCP.
    slot: Option<FileSlot>,
}

impl Front {
    pub fn new(app: Arc<App>, router: Router, slot: Option<FileSlot>) -> Self {
        Self {
            app,
            router: TowerToHyperService::new(router),
            slot,
        }
    }
}

/// Whether a request on `route` (its path classified, not parsed: [`route_of`]) takes the
/// direct way. With client credentials configured, every request goes through the router's
/// access layer.
fn direct(credentials: bool, route: Route) -> bool {
    !credentials
        && matches!(
            route,
            Route::List | Route::Latest | Route::Info | Route::Mod | Route::Zip
        )
}

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<B> hyper::service::Service<Request<B>> for Front
where
    B: HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, req: Request<B>) -> Answer {
        let route = route_of(req.uri().path());
        if !direct(self.app.access.is_some(), route) {
            let mut req = req.map(Body::new);
            if let Some(slot) = &self.slot {
                req.extensions_mut().insert(slot.clone());
            }
            return Box::pin(hyper::service::Service::call(&self.router, req));
        }
        let (app, slot) = (self.app.clone(), self.slot.clone());
        // The body of a GET or HEAD is not read (a protocol request has none).
        let (parts, _) = req.into_parts();
        Box::pin(async move {
            let seen = Seen::start(route, &parts.headers, &parts.method, parts.uri.path());
            let handling = protocol::serve(&app, &parts.method, &parts.uri, parts.version, slot);
            let resp = head_and_length(&parts.method, seen.run(handling).await);
            Ok(seen.finish(&app, resp))
        })
    }
}

/// What the router does for every response: a `content-length` from a body of known size,
/// and no body for `HEAD` (its headers stay those of the `GET`).
fn head_and_length(method: &Method, mut resp: Response) -> Response {
    if !resp.headers().contains_key(header::CONTENT_LENGTH)
        && let Some(n) = resp.body().size_hint().exact()
    {
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    if method == Method::HEAD {
        *resp.body_mut() = Body::empty();
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_paths_go_direct_and_named_routes_through_the_router() {
        for p in [
            "/a.b/c/@v/list",
            "/a.b/c/@latest",
            "/a.b/c/@v/v1.0.0.info",
            "/a.b/c/@v/v1.0.0.mod",
            "/a.b/c/@v/v1.0.0.zip",
        ] {
            assert!(direct(false, route_of(p)), "{p}");
            assert!(!direct(true, route_of(p)), "{p} with credentials");
        }
        for p in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/version",
            "/catalog",
            "/index",
            "/sumdb/sum.golang.org/supported",
            "/sumdb/sum.golang.org/lookup/a.b/c@v1.0.0.info",
            "/",
            "/whatever",
        ] {
            assert!(!direct(false, route_of(p)), "{p}");
        }
    }

    #[test]
    fn head_keeps_the_length_and_drops_the_body() {
        let resp = head_and_length(&Method::HEAD, Response::new(Body::from("v1.0.0\n")));
        assert_eq!(resp.headers()[header::CONTENT_LENGTH], "7");
        assert_eq!(resp.body().size_hint().exact(), Some(0));
        let resp = head_and_length(&Method::GET, Response::new(Body::from("v1.0.0\n")));
        assert_eq!(resp.headers()[header::CONTENT_LENGTH], "7");
        assert_eq!(resp.body().size_hint().exact(), Some(7));
    }

    #[test]
    fn a_length_already_set_is_kept() {
        let mut resp = Response::new(Body::empty());
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(1234u64));
        let resp = head_and_length(&Method::HEAD, resp);
        assert_eq!(resp.headers()[header::CONTENT_LENGTH], "1234");
    }
}
