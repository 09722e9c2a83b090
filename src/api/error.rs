//! The JSON error every rejection answers with: a stable machine `error`
//! code and a `message` sentence that names the fix. Internal detail goes to
//! the log, not to the client.

use hyper::StatusCode;
use serde_json::json;

use super::{Resp, json_response};
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn into_response(self) -> Resp {
        let mut r = json_response(
            self.status,
            &json!({"error": self.code, "message": self.message}),
        );
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from_static("5"),
            );
        }
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage error answered 503");
        let message = match e {
            StoreError::Corrupt(_) => "a stored record could not be read; check the server log",
            _ => {
                "storage cannot commit right now (disk full or I/O error); nothing was recorded, retry later"
            }
        };
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}
