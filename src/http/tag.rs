//! Tracking without a redirect: `GET /t.js` (the page tag) and
//! `POST /e/click` (its beacon), with CORS for the landing-page origins an
//! admin allowed (the server's `tag_origins` and the link's own). The click
//! itself is built and stored by `manage::clicks`, the code path of `/c/`.

use std::net::SocketAddr;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderValue, ORIGIN, USER_AGENT,
    VARY,
};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use super::error::ApiError;
use super::tracking::{cookie, find_link, header};
use super::{Resp, full, json_response};
use crate::app::App;
use crate::manage::clicks::{self, NewClick, Via};
use crate::tracking::{beacon, origin, quality, tag};
use crate::util::net;

/// `GET /t.js`: long-lived cache when asked for by its version (the URL
/// changes with the script), five minutes otherwise.
pub fn script(req: &Request<Incoming>) -> Resp {
    let versioned = req.uri().query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "v" && v == tag::version())
    });
    let mut r = Response::new(full(tag::script()));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(if versioned {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=300"
        }),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", tag::version())) {
        h.insert(ETAG, v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// The request's `Origin`, when it has a readable one.
fn request_origin(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn origin_required() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "origin_required",
        "POST /e/click is the page tag's beacon and needs the browser's Origin header; \
         a server creating clicks uses POST /api/v1/clicks with the admin token",
    )
}

fn origin_refused(origin: &str, slug: Option<&str>) -> ApiError {
    let fix = match slug {
        Some(s) => format!(
            "add it to the link's tag_origins (PATCH /api/v1/links/{s} \
             {{\"tag_origins\": [\"{origin}\"]}}) or to the server's tag_origins"
        ),
        None => "add it to a link's tag_origins or to the server's tag_origins".to_string(),
    };
    ApiError::new(
        StatusCode::FORBIDDEN,
        "origin_not_allowed",
        format!(
            "the page tag is not allowed on `{}`; {fix}",
            crate::util::text::truncate(origin, 100).escape_debug()
        ),
    )
}

/// Add the CORS headers for an allowed origin (and `Vary: Origin` always:
/// the answer depends on it).
fn with_cors(mut r: Resp, allowed: Option<&str>) -> Resp {
    let h = r.headers_mut();
    h.insert(VARY, HeaderValue::from_static("Origin"));
    if let Some(o) = allowed
        && let Ok(v) = HeaderValue::from_str(o)
    {
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    r
}

/// `OPTIONS /e/click`: a preflight is answered for an origin allowed by
/// the server or by any link (the body, which names the link, is not sent
/// with a preflight).
pub fn preflight(app: &App, req: &Request<Incoming>) -> Resp {
    let Some(o) = request_origin(req) else {
        return with_cors(origin_required().into_response(), None);
    };
    let catalog = app.store.catalog();
    let ok = origin::allowed(&o, &[&app.config.tag_origins])
        || catalog
            .links
            .values()
            .any(|l| origin::allowed(&o, &[&l.rec.tag_origins]));
    if !ok {
        return with_cors(origin_refused(&o, None).into_response(), None);
    }
    let mut r = Response::new(super::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    h.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    with_cors(r, Some(&o))
}

/// `POST /e/click`: record the click and answer its ID, once it is stored.
pub async fn click(app: &App, peer: SocketAddr, req: Request<Incoming>) -> Resp {
    let origin = request_origin(&req);
    // Allowed server-wide: errors are readable by the page from the start.
    let mut allowed = origin
        .clone()
        .filter(|o| origin::allowed(o, &[&app.config.tag_origins]));
    let result = beacon_click(app, peer, req, origin.as_deref(), &mut allowed).await;
    let r = match result {
        Ok(id) => json_response(StatusCode::OK, &json!({"click_id": id})),
        Err(e) => e.into_response(),
    };
    with_cors(r, allowed.as_deref())
}

async fn beacon_click(
    app: &App,
    peer: SocketAddr,
    req: Request<Incoming>,
    origin: Option<&str>,
    allowed: &mut Option<String>,
) -> Result<String, ApiError> {
    let ip = net::client_ip(peer.ip(), req.headers(), &app.config.trusted_proxies);
    app.rate.check_click(ip).map_err(ApiError::rate_limited)?;
    let origin = origin.ok_or_else(origin_required)?;
    let (parts, body) = req.into_parts();
    let bytes = Limited::new(body, beacon::MAX_BEACON_BYTES)
        .collect()
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "the beacon is larger than {} bytes",
                    beacon::MAX_BEACON_BYTES
                ),
            )
        })?
        .to_bytes();
    let b = beacon::parse(&bytes).map_err(|r| {
        let status = if r.code == "too_large" {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError::new(status, r.code, r.message)
    })?;
    let link = find_link(app, &b.link)?;
    if allowed.is_none() {
        if !origin::allowed(origin, &[&link.rec.tag_origins]) {
            return Err(origin_refused(origin, Some(&link.slug)));
        }
        *allowed = Some(origin.to_string());
    }
    let h = &parts.headers;
    let params = clicks::click_params(b.url.as_deref().map_or("", clicks::landing_query));
    let c = NewClick {
        via: Via::Tag,
        ip: Some(ip),
        user_agent: header(h, USER_AGENT),
        referrer: b.referrer,
        params,
        // The page read its own cookies; the beacon request carries none.
        fbc: b.fbc.or_else(|| cookie(h, "_fbc")),
        fbp: b.fbp.or_else(|| cookie(h, "_fbp")),
        head: false,
        prefetch: quality::is_prefetch(h),
        proxy_country: quality::proxy_country(peer.ip(), h, &app.config.trusted_proxies),
        landing_url: b.url,
        external_id: None,
    };
    let (id, _) = clicks::commit(app, clicks::prepare(app, &link, c)).await?;
    Ok(id)
}
