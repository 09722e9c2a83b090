//! The HTTP edge. [`handle`] routes a request to the tracking, postback,
//! admin or health handlers; each returns a complete response (bodies are
//! small and fully buffered). Handlers parse the request, call the layer
//! below (`manage` for admin operations, `ingest` through the store's
//! writer for clicks and postbacks) and turn its typed result into JSON.

pub mod admin;
pub mod error;
pub mod ipn;
pub mod metrics;
pub mod postback;
pub mod response;
pub mod server;
pub mod tag;
pub mod tracking;
pub mod ui;

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};

use crate::app::App;
use crate::util::text::truncate;
use error::ApiError;
pub use response::{ChannelBody, Resp, empty, full, json_response, no_content};

/// Longest accepted request target (path and query), bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most request headers, and their total size in bytes (names + values).
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuse a request whose target or headers are over the limits, with the
/// contract's JSON `too_large` (414 / 431). Headers beyond hyper's read
/// buffer never reach here: hyper answers those 431 itself.
fn check_limits(req: &Request<Incoming>) -> Result<(), ApiError> {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI_BYTES {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "too_large",
            format!(
                "the URL is longer than {MAX_URI_BYTES} bytes; send large postbacks as a POST body"
            ),
        ));
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "too_large",
            format!(
                "the request has more than {MAX_HEADERS} headers or {MAX_HEADER_BYTES} bytes of headers; \
                 send fewer or smaller headers"
            ),
        ));
    }
    Ok(())
}

/// Which endpoints a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// Tracking, postbacks, health, metrics and the admin API.
    PublicAndAdmin,
    /// Tracking, postbacks, health, metrics (the admin API has its own
    /// listener).
    Public,
    /// The admin API, health and metrics only.
    Admin,
    /// Plain HTTP: everything redirects to the HTTPS `public_url`.
    Redirect,
}

/// Route one request.
pub async fn handle(
    app: Arc<App>,
    surface: Surface,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Resp {
    let path = req.uri().path().to_string();
    // Every answer is counted, the refusals before routing included.
    let (route, resp) = if let Err(e) = check_limits(&req) {
        (route_label(&path), e.into_response())
    } else if surface == Surface::Redirect {
        ("redirect", redirect_to_https(&app, &req))
    } else {
        let resp = route_request(&app, surface, peer, req, &path).await;
        (route_label(&path), resp)
    };
    app.requests.request(route, resp.status().as_u16());
    resp
}

/// The route label in `/metrics` (a closed set: never the raw path;
/// `redirect` is the plain-HTTP listener's).
fn route_label(path: &str) -> &'static str {
    if path.starts_with("/c/") {
        "click"
    } else if path == "/e/click" {
        "tag_click"
    } else if path == "/t.js" {
        "tag"
    } else if path.starts_with("/p/") {
        "postback"
    } else if path.starts_with("/ipn/") {
        "ipn"
    } else if path == "/api/v1" || path.starts_with("/api/v1/") {
        "admin"
    } else if path == "/healthz" || path == "/readyz" {
        "health"
    } else if path == "/metrics" {
        "metrics"
    } else if ui::owns(path) {
        "dashboard"
    } else {
        "other"
    }
}

async fn route_request(
    app: &Arc<App>,
    surface: Surface,
    peer: SocketAddr,
    req: Request<Incoming>,
    path: &str,
) -> Resp {
    let public = surface != Surface::Admin;
    let admin = surface != Surface::Public;
    let result = if !public
        && (path.starts_with("/c/")
            || path.starts_with("/p/")
            || path.starts_with("/ipn/")
            || path.starts_with("/e/")
            || path == "/t.js")
    {
        Err(ApiError::not_found(
            "not_found",
            "this is the admin listener; tracking links and postbacks are served on the public address",
        ))
    } else if !admin && (path == "/api/v1" || path.starts_with("/api/v1/")) {
        Err(ApiError::not_found(
            "not_found",
            "the admin API is served on its own listener (admin_listen), not on this address",
        ))
    } else if let Some(slug) = path.strip_prefix("/c/") {
        match *req.method() {
            Method::GET | Method::HEAD => tracking::click(app, peer, req, slug).await,
            _ => Err(method_not_allowed("GET or HEAD")),
        }
    } else if path == "/e/click" {
        match *req.method() {
            Method::POST => Ok(tag::click(app, peer, req).await),
            Method::OPTIONS => Ok(tag::preflight(app, &req)),
            _ => Err(method_not_allowed("POST (or an OPTIONS preflight)")),
        }
    } else if path == "/t.js" {
        match *req.method() {
            Method::GET | Method::HEAD => Ok(tag::script(&req)),
            _ => Err(method_not_allowed("GET or HEAD")),
        }
    } else if let Some(key) = path.strip_prefix("/p/") {
        match *req.method() {
            Method::GET | Method::POST => postback::postback(app, peer, req, key).await,
            _ => Err(method_not_allowed("GET or POST")),
        }
    } else if let Some(key) = path.strip_prefix("/ipn/") {
        match *req.method() {
            Method::POST => ipn::ipn(app, peer, req, key).await,
            _ => Err(method_not_allowed("POST")),
        }
    } else if path == "/api/v1" || path.starts_with("/api/v1/") {
        admin::handle(app, req, path).await
    } else if admin && ui::owns(path) {
        return ui::handle(app, peer, req, path).await;
    } else if path == "/healthz" {
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({"status": "ok"}),
        ))
    } else if path == "/readyz" {
        Ok(if app.store.ready() {
            json_response(StatusCode::OK, &serde_json::json!({"status": "ready"}))
        } else {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is not writable right now (reopening after an I/O error, or shutting down)",
            )
            .into_response()
        })
    } else if path == "/metrics" && admin {
        // With admin_listen set, metrics are served there only.
        Ok(metrics::page(app).await)
    } else {
        Err(ApiError::not_found(
            "not_found",
            format!(
                "no route for `{}`; tracking links are /c/SLUG, the page tag /t.js, postbacks /p/KEY, IPN notifications /ipn/KEY, the admin API /api/v1",
                truncate(path, 64)
            ),
        ))
    };
    result.unwrap_or_else(ApiError::into_response)
}

/// `308` to the same path and query on the configured HTTPS origin: never
/// to a host taken from the request.
fn redirect_to_https(app: &App, req: &Request<Incoming>) -> Resp {
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let location = format!("{}{target}", app.config.public_url);
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(hyper::header::LOCATION, v);
    }
    r
}

fn method_not_allowed(allowed: &str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this path accepts {allowed}"),
    )
}
