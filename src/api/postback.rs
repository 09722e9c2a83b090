//! `GET|POST /p/{source_key}`: read, normalize, match, dedup, answer.
//!
//! Every request with a valid source key is written to the events log with
//! its raw request and result, in the same transaction as the conversion it
//! creates, before the answer is sent.

use std::net::SocketAddr;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, USER_AGENT};
use hyper::{Request, StatusCode};

use super::error::ApiError;
use super::{Resp, json_response, truncate};
use crate::ingest::{self, RawRequest};
use crate::postback::{self, Rejection};
use crate::server::App;
use crate::{net, store};

pub async fn postback(
    app: &App,
    peer: SocketAddr,
    req: Request<Incoming>,
    key: &str,
) -> Result<Resp, ApiError> {
    let catalog = app.store.catalog();
    let Some(source) = catalog.source_by_key(key).cloned() else {
        return Err(ApiError::not_found(
            "unknown_source",
            "no source with this key; copy the postback URL again from GET /api/v1/sources",
        ));
    };
    let now = store::now_ms();
    let (parts, mut body) = req.into_parts();
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
            .map(|s| truncate(s, 512).to_string())
    };

    // Read the body up to the limit; past it, keep what the event stores
    // and stop reading.
    let max = app.config.max_body_bytes;
    let mut buf: Vec<u8> = Vec::new();
    let mut too_large = false;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(ApiError::bad_request(
                "bad_body",
                "the request body could not be read; resend the postback",
            ));
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                too_large = true;
                let room = max.saturating_sub(buf.len());
                buf.extend_from_slice(&data[..room.min(data.len())]);
                break;
            }
            buf.extend_from_slice(&data);
        }
    }
    let stored_cap = app.config.stored_body_bytes.min(max);
    let body_truncated = too_large || buf.len() > stored_cap;

    let parsed = if too_large {
        Err(Rejection {
            code: "too_large",
            message: format!("the body is larger than {max} bytes; send only the postback fields"),
            field: None,
        })
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
    };
    buf.truncate(stored_cap);
    let raw = RawRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        content_type: header(CONTENT_TYPE),
        body: buf,
        body_truncated,
        remote_ip: net::client_ip(peer.ip(), &parts.headers, &app.config.trusted_proxies)
            .to_string(),
        user_agent: header(USER_AGENT),
    };
    let source_id = source.id;
    let outcome = app
        .store
        .write(move |ctx| ingest::record_postback(ctx, source_id, raw, parsed, None, now))
        .await?;
    let status = StatusCode::from_u16(outcome.http_status).unwrap_or(StatusCode::BAD_REQUEST);
    Ok(json_response(status, &outcome.body))
}
