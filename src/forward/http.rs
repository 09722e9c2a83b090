//! Outbound HTTP for deliveries: hyper + rustls (Mozilla roots compiled
//! in), connect timeout 5 s, whole request 15 s, redirects never followed,
//! and the SSRF guard: destinations that resolve to private, loopback,
//! link-local, unspecified or IPv4-mapped addresses are refused unless
//! `allow_private_destinations` is set. The check runs in the resolver,
//! at connect time, so a DNS answer that changes after the admin saved the
//! URL (rebinding) is caught too.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{HeaderMap, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;

use super::platforms::OutRequest;

/// Connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole request, response body included.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);
/// Most response body read (the rest is not needed to classify).
const MAX_RESPONSE: usize = 64 * 1024;

/// Is `ip` one the SSRF guard refuses?
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                // carrier-grade NAT 100.64.0.0/10
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.to_ipv4_mapped().is_some()
                // unique local fc00::/7, link-local fe80::/10
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// DNS resolution with the SSRF guard.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    allow_private: bool,
}

type Resolving =
    Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, std::io::Error>> + Send>>;

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| allow || !forbidden(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{host} resolves only to private, loopback or link-local addresses"),
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The SSRF guard refused the target: permanent until the setting or
    /// the URL changes.
    Refused(String),
    /// Timeout, connection refused or reset, TLS failure: retry.
    Transient(String),
}

/// A response, body capped.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The pooled outbound client.
#[derive(Clone)]
pub struct Outbound {
    client: Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>,
    allow_private: bool,
}

impl Outbound {
    pub fn new(allow_private: bool) -> Outbound {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver { allow_private });
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.enforce_http(false);
        http.set_nodelay(true);
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        Outbound {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(https),
            allow_private,
        }
    }

    /// Check a URL's host before sending (IP literals never reach the
    /// resolver).
    pub fn check_url(&self, url: &str) -> Result<(), SendError> {
        check_url(url, self.allow_private)
    }
}

/// The SSRF guard for a URL whose host is an IP literal (names are checked
/// by [`GuardedResolver`] at connect time), and the scheme check. Pure: the
/// admin API calls it at save time without building a client.
pub fn check_url(url: &str, allow_private: bool) -> Result<(), SendError> {
    let uri: hyper::Uri = url.parse().map_err(|_| {
        SendError::Refused(format!(
            "not a valid URL: {}",
            crate::util::text::truncate(url, 100)
        ))
    })?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(SendError::Refused(
                "only http and https URLs are allowed".into(),
            ));
        }
    }
    let host = uri
        .host()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>()
        && !allow_private
        && forbidden(ip)
    {
        return Err(SendError::Refused(format!(
            "{ip} is a private, loopback or link-local address (allow_private_destinations is off)"
        )));
    }
    Ok(())
}

impl Outbound {
    /// Send one request; redirects are not followed (a 3xx is an answer).
    pub async fn send(&self, req: &OutRequest) -> Result<Response, SendError> {
        self.check_url(&req.url)?;
        let mut builder = Request::builder().method(req.method.clone()).uri(&req.url);
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder
            .body(Full::new(Bytes::from(req.body.clone())))
            .map_err(|e| SendError::Refused(format!("cannot build the request: {e}")))?;
        let fut = async {
            let resp = self
                .client
                .request(request)
                .await
                .map_err(|e| classify_error(&e))?;
            let (parts, body) = resp.into_parts();
            let body = match Limited::new(body, MAX_RESPONSE).collect().await {
                Ok(b) => b.to_bytes(),
                // Over the cap or cut off: the status is what matters.
                Err(_) => Bytes::new(),
            };
            Ok(Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(TOTAL_TIMEOUT, fut)
            .await
            .map_err(|_| {
                SendError::Transient(format!(
                    "no complete answer within {} s",
                    TOTAL_TIMEOUT.as_secs()
                ))
            })?
    }
}

fn classify_error(e: &hyper_util::client::legacy::Error) -> SendError {
    // Walk the source chain for the guard's PermissionDenied.
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::PermissionDenied
        {
            return SendError::Refused(format!("{io} (allow_private_destinations is off)"));
        }
        src = s.source();
    }
    let mut msg = e.to_string();
    if let Some(s) = std::error::Error::source(e) {
        msg = format!("{msg}: {s}");
    }
    SendError::Transient(crate::util::text::truncate(&msg, 200).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:8.8.8.8",
            "::",
        ] {
            assert!(forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "100.128.0.1"] {
            assert!(!forbidden(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literal_ips_are_checked() {
        let o = Outbound::new(false);
        assert!(matches!(
            o.check_url("http://127.0.0.1:9/x"),
            Err(SendError::Refused(_))
        ));
        assert!(matches!(
            o.check_url("http://[::1]/x"),
            Err(SendError::Refused(_))
        ));
        assert!(matches!(
            o.check_url("ftp://example.com/"),
            Err(SendError::Refused(_))
        ));
        assert!(o.check_url("https://example.com/x").is_ok());
        assert!(
            Outbound::new(true)
                .check_url("http://127.0.0.1:9/x")
                .is_ok()
        );
    }
}
