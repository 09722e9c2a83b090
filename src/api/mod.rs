//! HTTP surfaces. [`handle`] routes a request to the tracking, postback,
//! admin or health handlers; each returns a complete response (bodies are
//! small and fully buffered).

pub mod admin;
pub mod error;
pub mod json;
pub mod postback;
pub mod tracking;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::server::App;
use error::ApiError;

/// Every handler's response type.
pub type Resp = Response<Full<Bytes>>;

/// A JSON response with `Content-Type: application/json`.
pub fn json_response(status: StatusCode, v: &serde_json::Value) -> Resp {
    let mut body = serde_json::to_vec(v).unwrap_or_default();
    body.push(b'\n');
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Route one request.
pub async fn handle(app: Arc<App>, peer: SocketAddr, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let result = if let Some(slug) = path.strip_prefix("/c/") {
        match *req.method() {
            Method::GET | Method::HEAD => tracking::click(&app, peer, req, slug).await,
            _ => Err(method_not_allowed("GET or HEAD")),
        }
    } else if let Some(key) = path.strip_prefix("/p/") {
        match *req.method() {
            Method::GET | Method::POST => postback::postback(&app, peer, req, key).await,
            _ => Err(method_not_allowed("GET or POST")),
        }
    } else if path == "/api/v1" || path.starts_with("/api/v1/") {
        admin::handle(&app, req, &path).await
    } else if path == "/healthz" {
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({"status": "ok"}),
        ))
    } else if path == "/metrics" {
        Ok(admin::metrics(&app))
    } else {
        Err(ApiError::not_found(
            "not_found",
            format!(
                "no route for `{}`; tracking links are /c/SLUG, postbacks /p/KEY, the admin API /api/v1",
                truncate(&path, 64)
            ),
        ))
    };
    result.unwrap_or_else(ApiError::into_response)
}

fn method_not_allowed(allowed: &str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this path accepts {allowed}"),
    )
}

/// Cut `s` to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
