//! Tracking without a redirect: `GET /t.js` (the page tag) and
//! `POST /e/click` (its beacon), with CORS for the landing-page origins an
//! admin allowed (the server's `tag_origins` and the link's own). The click
//! itself is built and stored by `manage::clicks`, the code path of `/c/`.
//!
//! The script is `tag.js` beside this file, with the known affiliate link
//! hosts (`inbound::presets::link_hosts`, the one table of them) put in at
//! its `__POSTBACKD_HOSTS__` marker once per process. Its version, in its
//! URL (`/t.js?v=VERSION`), is the start of the SHA-256 of the served
//! text, so a changed script gets a new URL and a cached one can be kept
//! for a year.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderValue, IF_NONE_MATCH, ORIGIN,
    USER_AGENT, VARY,
};
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::tracking::{cookie, find_link, header};
use super::{Resp, full, json_response};
use crate::app::App;
use crate::inbound::presets;
use crate::manage::clicks::{self, NewClick, Via};
use crate::store::catalog::LinkEntry;
use crate::store::records::LinkRecord;
use crate::tracking::{beacon, origin, quality};
use crate::util::net;

/// The readable source, in the repository beside this file.
const SOURCE: &str = include_str!("tag.js");
const MARKER: &str = "__POSTBACKD_HOSTS__";

struct Served {
    text: String,
    version: String,
}

fn served() -> &'static Served {
    static S: OnceLock<Served> = OnceLock::new();
    S.get_or_init(|| {
        let hosts: serde_json::Map<String, serde_json::Value> = presets::link_hosts()
            .into_iter()
            .map(|(h, p)| (h.to_string(), serde_json::Value::from(p)))
            .collect();
        let table = serde_json::Value::Object(hosts).to_string();
        let text = SOURCE.replacen(MARKER, &table, 1);
        let digest = Sha256::digest(text.as_bytes());
        let version = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        Served { text, version }
    })
}

/// The script as served.
pub fn script_text() -> &'static str {
    &served().text
}

/// Its version: 12 hex digits of its SHA-256.
pub fn version() -> &'static str {
    &served().version
}

/// The snippet to paste on a landing page for `slug`.
pub fn snippet(public_url: &str, slug: &str) -> String {
    format!(
        "<script async src=\"{public_url}/t.js?v={}\" data-link=\"{slug}\"></script>",
        version()
    )
}

/// `GET /t.js`: long-lived cache when asked for by its version (the URL
/// changes with the script), five minutes otherwise.
pub fn script(req: &Request<Incoming>) -> Resp {
    let versioned = req.uri().query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "v" && v == version())
    });
    let etag = format!("\"{}\"", version());
    let fresh = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut r = if fresh {
        let mut r = Response::new(super::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(full(script_text()))
    };
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
    if let Ok(v) = HeaderValue::from_str(&etag) {
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
    let link = match b.source {
        // A click of no link, through a source: only the server's
        // tag_origins can allow it (a source has no origins of its own).
        Some(id) if b.link.is_empty() => {
            if !app.store.catalog().sources.contains_key(&id) {
                return Err(ApiError::not_found(
                    "unknown_source",
                    format!(
                        "no source with ID {id}; check data-source on the tag's script element"
                    ),
                ));
            }
            Arc::new(LinkEntry {
                slug: String::new(),
                rec: LinkRecord {
                    source_id: Some(id),
                    ..LinkRecord::default()
                },
            })
        }
        _ => find_link(app, &b.link)?,
    };
    if allowed.is_none() {
        if !origin::allowed(origin, &[&link.rec.tag_origins]) {
            let slug = Some(link.slug.as_str()).filter(|s| !s.is_empty());
            return Err(origin_refused(origin, slug));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_inlined_and_the_version_follows_the_text() {
        let s = script_text();
        assert!(!s.contains(MARKER));
        assert!(
            s.contains(r#""hop.clickbank.net":"tid""#),
            "the preset table is in"
        );
        assert_eq!(version().len(), 12);
        let d = Sha256::digest(s.as_bytes());
        assert!(version().starts_with(&format!("{:02x}", d[0])));
        // A few KB, as promised.
        assert!(s.len() < 12 * 1024, "{} bytes", s.len());
    }

    #[test]
    fn snippet_names_the_versioned_url() {
        let s = snippet("https://t.example", "spring");
        assert!(s.starts_with("<script async src=\"https://t.example/t.js?v="));
        assert!(s.ends_with("data-link=\"spring\"></script>"));
    }
}
