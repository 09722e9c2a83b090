//! The JSON error every rejection answers with: a stable machine `error`
//! code and a `message` sentence that names the fix. Internal detail goes to
//! the log, not to the client.

use hyper::StatusCode;
use hyper::header::{HeaderValue, RETRY_AFTER};
use serde_json::json;

use super::{Resp, json_response};
use crate::manage::{self, ErrorKind};
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// `429 rate_limited`; the wait becomes `Retry-After`.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        let secs = crate::ratelimit::retry_after_secs(wait);
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many requests; retry after {secs} s, or raise the source's rate_limit \
                 if this volume is expected"
            ),
        );
        e.retry_after = Some(secs);
        e
    }

    pub fn into_response(self) -> Resp {
        let mut r = json_response(
            self.status,
            &json!({"error": self.code, "message": self.message}),
        );
        let retry = match self.status {
            StatusCode::SERVICE_UNAVAILABLE => Some(self.retry_after.unwrap_or(5)),
            _ => self.retry_after,
        };
        if let Some(secs) = retry {
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The body was not read to its end: this connection is done.
            r.headers_mut()
                .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }
}

impl From<manage::Error> for ApiError {
    fn from(e: manage::Error) -> Self {
        let status = match e.kind {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, e.code, e.message)
    }
}

impl From<StoreError> for ApiError {
    /// One message for storage failures, wherever they surface.
    fn from(e: StoreError) -> Self {
        manage::Error::from(e).into()
    }
}
