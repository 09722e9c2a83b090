//! `GET|HEAD /c/{slug}`: record the click durably, with its quality
//! (device, bot, country, unique), then redirect.

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, COOKIE, HeaderValue, LOCATION, REFERER, USER_AGENT};
use hyper::{Method, Request, Response, StatusCode};

use super::error::ApiError;
use super::{Resp, truncate};
use crate::app::App;
use crate::ingest;
use crate::store::records::ClickRecord;
use crate::store::rollup;
use crate::tracking::{click, quality};
use crate::util::{ids, net};

/// Most query parameters recorded per click.
const MAX_CLICK_PARAMS: usize = 64;
/// Longest recorded parameter name / value, user agent, referrer.
const MAX_CLICK_VALUE: usize = 1024;

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
    let catalog = app.store.catalog();
    let Some(link) = catalog.links.get(slug) else {
        return Err(ApiError::not_found(
            "unknown_link",
            format!(
                "no tracking link with slug `{}`; check the link or create it with POST /api/v1/links",
                truncate(slug, 64)
            ),
        ));
    };
    let now = crate::util::clock::now_ms();
    let click_id = ids::new_id(now);
    let params = click_params(req.uri().query().unwrap_or(""));
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(|s| truncate(s, MAX_CLICK_VALUE).to_string())
    };
    let fbc = params
        .iter()
        .find(|(k, _)| k == "fbclid")
        .filter(|(_, v)| !v.is_empty())
        .map(|(_, v)| click::fbc(now, v))
        .or_else(|| cookie(&req, "_fbc"));
    let head = req.method() == Method::HEAD;
    let user_agent = header(USER_AGENT);
    let q = quality::classify(
        user_agent.as_deref(),
        head,
        quality::is_prefetch(req.headers()),
    );
    // The database when there is one; a trusted proxy's header when the
    // database is unset or has no entry for the address (private ranges).
    let country =
        app.geo.as_ref().and_then(|g| g.country(ip)).or_else(|| {
            quality::proxy_country(peer.ip(), req.headers(), &app.config.trusted_proxies)
        });
    let ip_text = ip.to_string();
    // Bots are never unique, and are not visitors to remember.
    let visitor = (!q.bot).then(|| {
        quality::visitor_hash(
            app.store.visitor_key(),
            &link.slug,
            &ip_text,
            user_agent.as_deref().unwrap_or(""),
        )
    });
    let rec = ClickRecord {
        ms: now,
        slug: link.slug.clone(),
        source_id: link.rec.source_id,
        campaign: link.rec.campaign.clone(),
        head,
        ip: ip_text,
        user_agent,
        referrer: header(REFERER),
        fbc,
        fbp: cookie(&req, "_fbp"),
        subs: rollup::click_subs(&link.rec.subs, &params),
        cost: rollup::click_cost(link.rec.cost.as_ref(), &params),
        params,
        device: q.device.to_string(),
        os: q.os,
        browser: q.browser,
        country,
        bot: q.bot,
        unique: false,
    };
    let location = click::expand(
        &link.rec.destination,
        &click_id,
        &rec.params,
        &link.rec.param,
    );
    let location = HeaderValue::from_str(&location).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "bad_destination",
            "the link's destination does not form a valid URL; fix it with PATCH /api/v1/links/SLUG",
        )
    })?;
    let window_ms = u64::from(app.config.unique_window_hours) * 3_600_000;
    let w = ingest::ClickWrite::new(click_id.clone(), &rec).with_visitor(visitor, now, window_ms);
    // The redirect is sent only after the click is durable, and its
    // roll-up rows are in the same transaction.
    app.store
        .write(move |ctx| ingest::record_click(ctx, w))
        .await?;
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

/// All query parameters, decoded leniently (a click is never refused for a
/// malformed query: the visitor must still reach the offer), bounded.
fn click_params(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .take(MAX_CLICK_PARAMS)
        .map(|(k, v)| {
            (
                truncate(&k, MAX_CLICK_VALUE).to_string(),
                truncate(&v, MAX_CLICK_VALUE).to_string(),
            )
        })
        .collect()
}

fn cookie(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers().get_all(COOKIE).iter().find_map(|v| {
        v.to_str().ok()?.split(';').find_map(|kv| {
            let (k, val) = kv.trim().split_once('=')?;
            (k == name && !val.is_empty()).then(|| truncate(val, 256).to_string())
        })
    })
}
