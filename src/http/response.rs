//! Response building blocks: the boxed body every handler returns, JSON
//! answers with the contract's headers, and a streamed body for downloads.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

/// Every handler's response type: a boxed body, so most answers are one
/// buffer and a backup can stream.
pub type Resp = Response<BoxBody<Bytes, std::io::Error>>;

/// A complete body.
pub fn full(b: impl Into<Bytes>) -> BoxBody<Bytes, std::io::Error> {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// A body fed chunk by chunk through a channel (streamed downloads).
pub struct ChannelBody(pub tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|r| r.map(hyper::body::Frame::data)))
    }
}

/// An empty body.
pub fn empty() -> BoxBody<Bytes, std::io::Error> {
    full(Bytes::new())
}

/// A JSON response with `Content-Type: application/json`.
pub fn json_response(status: StatusCode, v: &serde_json::Value) -> Resp {
    let mut body = serde_json::to_vec(v).unwrap_or_default();
    body.push(b'\n');
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `204 No Content`.
pub fn no_content() -> Resp {
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}
