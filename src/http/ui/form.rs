//! Form bodies and query strings of the dashboard: read with a size limit,
//! decoded once, looked up by name.

use http_body_util::{BodyExt, Limited};
use hyper::StatusCode;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;

use crate::http::Resp;

/// Largest form body (the biggest form, a destination, is a few KB).
const MAX_FORM: usize = 64 * 1024;

/// Decoded `name=value` pairs, in order (a name may repeat).
#[derive(Debug, Default, Clone)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn from_query(q: &str) -> Form {
        Form(
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Read a `application/x-www-form-urlencoded` body.
    pub async fn read(req: hyper::Request<Incoming>) -> Result<Form, Resp> {
        let is_form = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(super::problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Not a form",
                "The dashboard accepts forms sent by its own pages; use the page's button.",
            ));
        }
        let body = Limited::new(req.into_body(), MAX_FORM)
            .collect()
            .await
            .map_err(|_| {
                super::problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The form is too large",
                    "Forms are limited to 64 KB; shorten the longest field and send it again.",
                )
            })?
            .to_bytes();
        Ok(Form(
            form_urlencoded::parse(&body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }

    /// The first value of `name`, or `""`.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, `None` when empty.
    pub fn opt(&self, name: &str) -> Option<String> {
        let v = self.get(name).trim();
        (!v.is_empty()).then(|| v.to_string())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// Percent-encode a query value.
pub fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
