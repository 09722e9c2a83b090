//! `GET|POST /p/{source_key}`: limit, read, verify, normalize, match, dedup,
//! answer.
//!
//! Every request with a valid source key is written to the events log with
//! its raw request and result (in the same transaction as the conversion it
//! creates, before the answer is sent), rejected ones included, except those
//! refused by a rate limit: a flood is counted in metrics, not written.

use std::net::SocketAddr;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request, StatusCode};

use super::error::ApiError;
use super::{Resp, json_response, truncate};
use crate::app::App;
use crate::inbound::postback::{self, Rejection};
use crate::ingest::{self, RawRequest};
use crate::store::catalog::SourceEntry;
use crate::util::net;
use crate::util::signing::{self, Verified};

pub async fn postback(
    app: &App,
    peer: SocketAddr,
    req: Request<Incoming>,
    key: &str,
) -> Result<Resp, ApiError> {
    let (ip, source) = admit(app, peer, &req, key, "the postback URL")?;
    let source = &*source;
    let now = crate::util::clock::now_ms();
    let (parts, mut body) = req.into_parts();
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
            .map(|s| truncate(s, 512).to_string())
    };

    let max = app.config.max_body_bytes;
    let (mut buf, too_large) = read_body(&mut body, max).await?;
    let stored_cap = app.config.stored_body_bytes.min(max);
    let body_truncated = too_large || buf.len() > stored_cap;

    let mut verified: Option<Verified> = None;
    let parsed = if too_large {
        Err(Rejection::new(
            "too_large",
            None,
            format!("the body is larger than {max} bytes; send only the postback fields"),
        ))
    } else if !ip_allowed(source, ip) {
        Err(Rejection::new(
            "ip_not_allowed",
            None,
            format!(
                "requests from {ip} are not allowed for this source; add the network's server \
                 addresses to the source's allow_ips (check trusted_proxies if a proxy is in front)"
            ),
        ))
    } else if let Err(e) = verify(source, &parts, &buf, now).map(|v| verified = v) {
        Err(Rejection::new(e.code(), None, e.message()))
    } else {
        postback::parse(
            &postback::Request {
                query: parts.uri.query().unwrap_or("").as_bytes(),
                content_type: parts
                    .headers
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
                body: &buf,
            },
            &source.mapping,
            &app.limits,
        )
        .map(|mut f| {
            if verified.is_some() {
                // Signing transport, not conversion data.
                f.extra.retain(|(k, _)| k != "ts" && k != "sig");
            }
            f
        })
    };
    buf.truncate(stored_cap);
    let raw = RawRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        content_type: header(CONTENT_TYPE),
        body: buf,
        body_truncated,
        remote_ip: ip.to_string(),
        user_agent: header(USER_AGENT),
    };
    // The click it names, found here rather than in the single writer
    // (`ingest::prefetch_click`); on any error the writer looks itself.
    let click = match &parsed {
        Ok(f) if !f.click_id.is_empty() => app
            .store
            .begin_read()
            .and_then(|rtx| ingest::prefetch_click(rtx, source.id, f, now))
            .unwrap_or(None),
        _ => None,
    };
    let p = ingest::Postback {
        signature: verified,
        click,
        ..ingest::Postback::new(source.id, raw, parsed)
    };
    let source_id = p.source_id;
    let outcome = app
        .store
        .write(move |ctx| ingest::record_postback(ctx, p, now))
        .await?;
    let status = StatusCode::from_u16(outcome.http_status).unwrap_or(StatusCode::BAD_REQUEST);
    app.requests.postback(outcome.answer.result());
    tracing::debug!(
        source = source_id,
        event = %outcome.event_id,
        status = outcome.http_status,
        result = outcome.answer.result(),
        "postback"
    );
    let mut resp = json_response(status, &outcome.body());
    if too_large {
        // The rest of the body was never read: the connection cannot carry
        // another request, and a keep-alive client must be told so.
        resp.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    Ok(resp)
}

/// Read a body up to `max` bytes; past it, keep what fits (the event
/// stores it) and stop reading. Returns the bytes and whether it was over.
/// The gate of a keyed public endpoint (`/p/`, `/ipn/`): the client IP
/// (behind trusted proxies), the per-IP limit, the source by its key, the
/// per-source limit. `what` names the URL to copy again when the key is
/// unknown.
pub(super) fn admit(
    app: &App,
    peer: SocketAddr,
    req: &Request<Incoming>,
    key: &str,
    what: &str,
) -> Result<(std::net::IpAddr, std::sync::Arc<SourceEntry>), ApiError> {
    let ip = net::client_ip(peer.ip(), req.headers(), &app.config.trusted_proxies);
    app.rate
        .check_postback_ip(ip)
        .map_err(ApiError::rate_limited)?;
    let source = app
        .store
        .catalog()
        .source_by_key(key)
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_source",
                format!("no source with this key; copy {what} again from GET /api/v1/sources"),
            )
        })?;
    app.rate
        .check_source(&source)
        .map_err(ApiError::rate_limited)?;
    Ok((ip, source))
}

pub(super) async fn read_body(
    body: &mut Incoming,
    max: usize,
) -> Result<(Vec<u8>, bool), ApiError> {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(ApiError::bad_request(
                "bad_body",
                "the request body could not be read; resend the request",
            ));
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                let room = max.saturating_sub(buf.len());
                buf.extend_from_slice(&data[..room.min(data.len())]);
                return Ok((buf, true));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok((buf, false))
}

pub(super) fn ip_allowed(source: &SourceEntry, ip: std::net::IpAddr) -> bool {
    let ip = net::canonical(ip);
    source.allow_ips.is_empty() || source.allow_ips.iter().any(|n| n.contains(&ip))
}

/// Check the signature when the source requires one. GET (and any request
/// without Standard Webhooks headers) signs the path and query; a POST with
/// `webhook-signature` signs `id.timestamp.body`.
fn verify(
    source: &SourceEntry,
    parts: &hyper::http::request::Parts,
    body: &[u8],
    now_ms: u64,
) -> Result<Option<Verified>, signing::SigError> {
    if source.signing_keys.is_empty() {
        return Ok(None);
    }
    let now = (now_ms / 1000) as i64;
    let tol = source.rec.signing_tolerance_s;
    let h = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    if parts.method == Method::POST && h("webhook-signature").is_some() {
        return signing::verify_webhook(
            h("webhook-id"),
            h("webhook-timestamp"),
            h("webhook-signature"),
            body,
            &source.signing_keys,
            now,
            tol,
        )
        .map(Some);
    }
    let target = parts.uri.path_and_query().map_or("", |pq| pq.as_str());
    signing::verify_get(target, &source.signing_keys, now, tol).map(Some)
}
