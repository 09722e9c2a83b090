//! A small HTTP/1 client over hyper, for the CLI's management commands
//! (which talk to the running server: redb allows one process per file) and
//! for the integration tests.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A complete response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Pooled keep-alive client.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    pub fn new() -> Self {
        let mut conn = HttpConnector::new();
        conn.set_connect_timeout(Some(Duration::from_secs(5)));
        conn.set_nodelay(true);
        HttpClient {
            inner: Client::builder(TokioExecutor::new()).build(conn),
            timeout: Duration::from_secs(30),
        }
    }

    /// Send one request and read the whole response.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<HttpResponse, String> {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| format!("bad request for {url}: {e}"))?;
        let fut = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| format!("cannot reach {url}: {e}"))?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| format!("reading response from {url}: {e}"))?
                .to_bytes();
            Ok(HttpResponse {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| format!("{url} did not answer within {:?}", self.timeout))?
    }

    /// Stream a response body to a file (no size held in memory). Returns
    /// the status and bytes written.
    pub async fn download(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        path: &std::path::Path,
    ) -> Result<(u16, u64), String> {
        use std::io::Write;
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("bad request for {url}: {e}"))?;
        let resp = self
            .inner
            .request(req)
            .await
            .map_err(|e| format!("cannot reach {url}: {e}"))?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut file =
            std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("reading {url}: {e}"))?;
            if let Ok(data) = frame.into_data() {
                file.write_all(&data)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                n += data.len() as u64;
            }
        }
        file.sync_all()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((status, n))
    }

    /// `send` with a JSON body and an optional bearer token.
    pub async fn json(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<HttpResponse, String> {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        self.send(
            method,
            url,
            &headers,
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }
}
