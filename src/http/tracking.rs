//! `GET|HEAD /c/{slug}`: record the click durably, with its quality
//! (device, bot, country, unique), then redirect.

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, COOKIE, HeaderValue, LOCATION, REFERER, USER_AGENT};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};

use super::error::ApiError;
use super::{Resp, truncate};
use crate::app::App;
use crate::manage::clicks::{self, MAX_CLICK_VALUE, MAX_COOKIE_VALUE, NewClick, Via};
use crate::store::catalog::LinkEntry;
use crate::tracking::{click, quality};
use crate::util::net;

/// Header carrying the new click ID (also in `Location`), for tools such as
/// `postbackd test-postback`.
pub const CLICK_ID_HEADER: &str = "x-postbackd-click-id";

pub async fn click(
    app: &App,
    peer: SocketAddr,
    req: Request<Incoming>,
    slug: &str,
) -> Result<Resp, ApiError> {
    let ip = net::client_ip(peer.ip(), req.headers(), &app.config.trusted_proxies);
    app.rate.check_click(ip).map_err(ApiError::rate_limited)?;
    let link = find_link(app, slug)?;
    let params = clicks::click_params(req.uri().query().unwrap_or(""));
    let c = NewClick {
        via: Via::Redirect,
        ip: Some(ip),
        user_agent: header(req.headers(), USER_AGENT),
        referrer: header(req.headers(), REFERER),
        params,
        fbc: cookie(req.headers(), "_fbc"),
        fbp: cookie(req.headers(), "_fbp"),
        head: req.method() == Method::HEAD,
        prefetch: quality::is_prefetch(req.headers()),
        proxy_country: quality::proxy_country(
            peer.ip(),
            req.headers(),
            &app.config.trusted_proxies,
        ),
        landing_url: None,
        external_id: None,
    };
    let p = clicks::prepare(app, &link, c);
    let location = click::expand(&link.rec.destination, &p.id, &p.rec.params, &link.rec.param);
    let location = HeaderValue::from_str(&location).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "bad_destination",
            "the link's destination does not form a valid URL; fix it with PATCH /api/v1/links/SLUG",
        )
    })?;
    // The redirect is sent only after the click is durable, and its
    // roll-up rows are in the same transaction.
    let (click_id, _) = clicks::commit(app, p).await?;
    let mut r = Response::new(super::empty());
    *r.status_mut() = StatusCode::FOUND;
    let h = r.headers_mut();
    h.insert(LOCATION, location);
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&click_id) {
        h.insert(CLICK_ID_HEADER, v);
    }
    Ok(r)
}

/// A request header, bounded, when it is text.
pub(super) fn header(h: &HeaderMap, name: hyper::header::HeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .map(|s| truncate(s, MAX_CLICK_VALUE).to_string())
}

/// A cookie's value, bounded, when it is set and not empty.
pub(super) fn cookie(h: &HeaderMap, name: &str) -> Option<String> {
    h.get_all(COOKIE).iter().find_map(|v| {
        v.to_str().ok()?.split(';').find_map(|kv| {
            let (k, val) = kv.trim().split_once('=')?;
            (k == name && !val.is_empty()).then(|| truncate(val, MAX_COOKIE_VALUE).to_string())
        })
    })
}

/// The link of a slug, or the contract's `404 unknown_link`.
pub(super) fn find_link(app: &App, slug: &str) -> Result<std::sync::Arc<LinkEntry>, ApiError> {
    app.store.catalog().links.get(slug).cloned().ok_or_else(|| {
        ApiError::not_found(
            "unknown_link",
            format!(
                "no tracking link with slug `{}`; check the link or create it with POST /api/v1/links",
                truncate(slug, 64)
            ),
        )
    })
}
