//! `POST /ipn/{source_key}`: a marketplace's own notification (ClickBank,
//! JVZoo, WarriorPlus, Digistore24), with the protections of `/p/`: rate
//! limits per client IP and per source, the source's IP allowlist, the
//! body limit, and the raw request in the events log with its result,
//! refused ones included (a secret the body carries is redacted first).
//!
//! The decoder runs here, on the handler's thread (it is pure, and
//! ClickBank's decryption is work the single writer should not do); the
//! writer only dedups, matches and stores (`ingest::record_ipn`).

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::{Request, Response, StatusCode};

use super::error::ApiError;
use super::postback::{admit, ip_allowed, read_body};
use super::{Resp, full, json_response, truncate};
use crate::app::App;
use crate::inbound::ipn::{self, Reply};
use crate::inbound::postback::Rejection;
use crate::ingest::{self, RawRequest};

pub async fn ipn(
    app: &App,
    peer: SocketAddr,
    req: Request<Incoming>,
    key: &str,
) -> Result<Resp, ApiError> {
    let (ip, source) = admit(app, peer, &req, key, "the ipn_url")?;
    let source = &*source;
    let now = crate::util::clock::now_ms();
    let (parts, mut body) = req.into_parts();
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(|s| truncate(s, 512).to_string())
    };
    let max = app.config.max_body_bytes;
    let (buf, too_large) = read_body(&mut body, max).await?;
    let settings = source.ipn.as_ref();
    let decoded = if too_large {
        Err(Rejection::new(
            "too_large",
            None,
            format!("the body is larger than {max} bytes; this is not an IPN notification"),
        ))
    } else if !ip_allowed(source, ip) {
        Err(Rejection::new(
            "ip_not_allowed",
            None,
            format!(
                "requests from {ip} are not allowed for this source; add the network's IPN server \
                 addresses to the source's allow_ips (check trusted_proxies if a proxy is in front)"
            ),
        ))
    } else if let Some(s) = settings {
        let content_type = header(CONTENT_TYPE);
        ipn::decode(
            &ipn::Request {
                content_type: content_type.as_deref(),
                body: &buf,
            },
            s,
            &app.limits,
            ipn::Auth::Verify,
        )
    } else {
        Err(ingest::not_configured())
    };
    // Stored without the secret a WarriorPlus body carries in clear.
    let mut stored = match settings {
        Some(s) => ipn::redact(s.format, &buf),
        None => buf,
    };
    let stored_cap = app.config.stored_body_bytes.min(max);
    let body_truncated = too_large || stored.len() > stored_cap;
    stored.truncate(stored_cap);
    let raw = RawRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        content_type: header(CONTENT_TYPE),
        body: stored,
        body_truncated,
        remote_ip: ip.to_string(),
        user_agent: header(USER_AGENT),
    };
    let source_id = source.id;
    let include_tests = settings.is_some_and(|s| s.include_tests);
    let format = settings.map_or("none", |s| s.format.as_str());
    let outcome = app
        .store
        .write(move |ctx| {
            ingest::record_ipn(ctx, source_id, raw, decoded, include_tests, None, now)
        })
        .await?;
    app.requests.ipn(format, outcome.answer.result());
    tracing::debug!(
        source = source_id,
        event = %outcome.event_id,
        status = outcome.http_status,
        result = outcome.answer.result(),
        format,
        "ipn"
    );
    let status = StatusCode::from_u16(outcome.http_status).unwrap_or(StatusCode::BAD_REQUEST);
    let reply = settings.map_or(Reply::Json, |s| s.format.success_reply());
    let mut resp = if status.is_success() && reply == Reply::PlainOk {
        // Digistore24 counts a delivery as received only on the body `OK`;
        // the event ID travels in a header instead.
        plain_ok(&outcome.event_id)
    } else {
        json_response(status, &outcome.body())
    };
    if too_large {
        // The rest of the body was never read: the connection cannot carry
        // another request.
        resp.headers_mut()
            .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(resp)
}

/// `200 OK`, `text/plain`, body `OK`, and `X-Postbackd-Event-Id`.
fn plain_ok(event_id: &str) -> Resp {
    let mut r = Response::new(full("OK"));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(event_id) {
        r.headers_mut().insert("x-postbackd-event-id", v);
    }
    r
}
