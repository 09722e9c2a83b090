use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use postbackd::app::App;
use postbackd::config::Config;
use postbackd::http::server::{self, Listeners};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::durability::spawn_server_with;
use crate::util::TOKEN;

/// A throwaway certificate authority.
fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "postbackd test CA");
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

/// A leaf for localhost / 127.0.0.1 signed by `ca`, written as PEM files.
fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, cn: &str, dir: &Path) -> CertificateDer<'static> {
    let mut p =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    let k = KeyPair::generate().unwrap();
    let c = p.signed_by(&k, ca).unwrap();
    // Write to a temp name and rename, as a certificate manager would.
    std::fs::write(dir.join("cert.tmp"), c.pem()).unwrap();
    std::fs::write(dir.join("key.tmp"), k.serialize_pem()).unwrap();
    std::fs::rename(dir.join("cert.tmp"), dir.join("cert.pem")).unwrap();
    std::fs::rename(dir.join("key.tmp"), dir.join("key.pem")).unwrap();
    c.der().clone()
}

fn connector(ca: &CertifiedIssuer<'static, KeyPair>, alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Full handshakes only: a resumed session does not carry the server's
    // certificate, and the reload test must see which one is served.
    cfg.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(cfg))
}

/// An HTTP/1.1 or h2 connection over TLS; returns the negotiated ALPN, the
/// server's certificate and a request sender.
struct TlsConn {
    alpn: Option<Vec<u8>>,
    cert: CertificateDer<'static>,
    h1: Option<hyper::client::conn::http1::SendRequest<Empty<Bytes>>>,
    h2: Option<hyper::client::conn::http2::SendRequest<Empty<Bytes>>>,
}

impl TlsConn {
    async fn open(addr: &str, connector: &TlsConnector) -> TlsConn {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let (_, session) = tls.get_ref();
        let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
        let cert = session.peer_certificates().unwrap()[0].clone();
        let io = TokioIo::new(tls);
        if alpn.as_deref() == Some(b"h2") {
            let (h2, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            TlsConn {
                alpn,
                cert,
                h1: None,
                h2: Some(h2),
            }
        } else {
            let (h1, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            TlsConn {
                alpn,
                cert,
                h1: Some(h1),
                h2: None,
            }
        }
    }

    async fn get(&mut self, authority: &str, path: &str) -> (u16, String) {
        let req = Request::builder()
            .uri(format!("https://{authority}{path}"))
            .header("host", authority)
            .body(Empty::<Bytes>::new())
            .unwrap();
        // Wait until the connection can take the next request (HTTP/1:
        // the previous exchange is fully finished).
        let resp = match (&mut self.h1, &mut self.h2) {
            (Some(h1), _) => {
                h1.ready().await.unwrap();
                h1.send_request(req).await.unwrap()
            }
            (_, Some(h2)) => {
                h2.ready().await.unwrap();
                h2.send_request(req).await.unwrap()
            }
            _ => unreachable!(),
        };
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// Start an in-process TLS server with optional admin and redirect listeners.
async fn start_tls(
    dir: &Path,
    admin: bool,
    redirect: bool,
) -> (
    String,
    Option<String>,
    Option<String>,
    tokio::sync::oneshot::Sender<()>,
) {
    let main = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = main.local_addr().unwrap();
    let admin_l = if admin {
        Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    } else {
        None
    };
    let redirect_l = if redirect {
        Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    } else {
        None
    };
    let mut cfg = Config::with_data_dir(dir.join("data"));
    cfg.listen = addr;
    cfg.public_url = format!("https://localhost:{}", addr.port());
    cfg.admin_token = Some(TOKEN.into());
    cfg.tls_cert = Some(dir.join("cert.pem"));
    cfg.tls_key = Some(dir.join("key.pem"));
    let (app, _) = App::open(cfg).unwrap();
    let admin_addr = admin_l
        .as_ref()
        .map(|l| l.local_addr().unwrap().to_string());
    let redirect_addr = redirect_l
        .as_ref()
        .map(|l| l.local_addr().unwrap().to_string());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::run(
        Listeners {
            main,
            admin: admin_l,
            redirect: redirect_l,
        },
        Arc::new(app),
        async {
            let _ = rx.await;
        },
    ));
    (addr.to_string(), admin_addr, redirect_addr, tx)
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_handshake_h1_and_h2_from_rustls_and_curl() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    leaf(&ca, "first", dir.path());
    let (addr, _, _, stop) = start_tls(dir.path(), false, false).await;
    let port = addr.rsplit(':').next().unwrap().to_string();
    let authority = format!("localhost:{port}");

    let mut c = TlsConn::open(&addr, &connector(&ca, &[b"h2", b"http/1.1"])).await;
    assert_eq!(c.alpn.as_deref(), Some(&b"h2"[..]), "h2 by ALPN");
    assert_eq!(c.get(&authority, "/healthz").await.0, 200);
    let mut c = TlsConn::open(&addr, &connector(&ca, &[b"http/1.1"])).await;
    assert_eq!(c.alpn.as_deref(), Some(&b"http/1.1"[..]));
    let (status, body) = c.get(&authority, "/healthz").await;
    assert_eq!((status, body.trim()), (200, r#"{"status":"ok"}"#));

    // curl with the test CA.
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(dir.path().join("ca.pem"))
        .arg(format!("https://localhost:{port}/healthz"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .output()
        .expect("curl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"ok\""));
    // A client that does not trust the CA fails the handshake.
    let out = Command::new("curl")
        .args(["-sS", &format!("https://127.0.0.1:{port}/healthz")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_listener_and_https_redirect() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    leaf(&ca, "x", dir.path());
    let (addr, admin, redirect, stop) = start_tls(dir.path(), true, true).await;
    let port = addr.rsplit(':').next().unwrap().to_string();
    let authority = format!("localhost:{port}");
    let conn = connector(&ca, &[b"http/1.1"]);

    // The public listener does not serve the admin API.
    let mut c = TlsConn::open(&addr, &conn).await;
    let (status, body) = c.get(&authority, "/api/v1/sources").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("admin_listen"));
    // The admin listener serves it (behind the token) and nothing public.
    let admin = admin.unwrap();
    let mut a = TlsConn::open(&admin, &conn).await;
    assert_eq!(a.get(&authority, "/api/v1/sources").await.0, 401);
    assert_eq!(a.get(&authority, "/c/anything").await.0, 404);
    assert_eq!(a.get(&authority, "/healthz").await.0, 200);
    // Metrics move to the admin listener too.
    assert_eq!(a.get(&authority, "/metrics").await.0, 200);
    assert_eq!(c.get(&authority, "/metrics").await.0, 404);

    // Plain HTTP is redirected to the configured HTTPS origin, never to a
    // host taken from the request.
    let http = postbackd::util::client::HttpClient::new();
    let r = http
        .send(
            hyper::Method::GET,
            &format!("http://{}/c/slug?x=1", redirect.unwrap()),
            &[("host", "evil.example")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location").unwrap(),
        format!("https://localhost:{port}/c/slug?x=1")
    );
    let _ = stop.send(());
}

/// Replace the certificate files and send SIGHUP to the real binary: new
/// connections see the new certificate, a live connection keeps working.
#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let first = leaf(&ca, "first", dir.path());
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let mut srv = spawn_server_with(
        &dir.path().join("data"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let addr = srv.base.trim_start_matches("https://").to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    let authority = format!("localhost:{port}");
    let conn = connector(&ca, &[b"http/1.1"]);
    let mut live = TlsConn::open(&addr, &conn).await;
    assert_eq!(live.cert, first);
    assert_eq!(live.get(&authority, "/healthz").await.0, 200);

    let second = leaf(&ca, "second", dir.path());
    assert_ne!(first, second);
    let status = Command::new("kill")
        .args(["-HUP", &srv.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut seen = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let c = TlsConn::open(&addr, &conn).await;
        if c.cert == second {
            seen = Some(c);
            break;
        }
    }
    let mut fresh = seen.expect("new connections see the new certificate after SIGHUP");
    assert_eq!(fresh.get(&authority, "/healthz").await.0, 200);
    // The connection opened before the reload is still served.
    assert_eq!(live.get(&authority, "/healthz").await.0, 200);
    assert_eq!(live.cert, first);
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
}
