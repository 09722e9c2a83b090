//! The ceiling for the load harness: a bare hyper server answering the same
//! 302 as `/c/{slug}` (a fresh click ID, the same template expansion, the
//! same headers) without storing anything, on the same runtime and
//! allocator. Its HTTP/1 settings are hyper's defaults: postbackd raises
//! hyper's head limits (256 headers, 256 KiB) so that its own JSON 431
//! answers every oversized head, which costs it about 0.4 µs per request
//! (6% of this server's rate when this server does the same); that cost is
//! counted against postbackd, not hidden by a slower ceiling.
//!
//! `cargo bench --bench ceiling -- 127.0.0.1:18900` (runs until killed)

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, HeaderValue, LOCATION};
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;

/// The same allocator as postbackd, so the ratio measures storage, not
/// malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let addr = std::env::args()
        .skip(1)
        .find(|a| a.contains(':'))
        .unwrap_or_else(|| "127.0.0.1:18900".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
        println!("ceiling listening on http://{addr}");
        let mut builder = Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).keep_alive(true);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let builder = builder.clone();
            tokio::spawn(async move {
                let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let params: Vec<(String, String)> =
                        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                            .into_owned()
                            .collect();
                    let id = postbackd::util::ids::new_id(postbackd::util::clock::now_ms());
                    let loc = postbackd::tracking::click::expand(
                        "https://offer.example/?s={click_id}",
                        &id,
                        &params,
                        "click_id",
                    );
                    let mut r = Response::new(Full::new(Bytes::new()));
                    *r.status_mut() = StatusCode::FOUND;
                    r.headers_mut()
                        .insert(LOCATION, HeaderValue::from_str(&loc).unwrap());
                    r.headers_mut()
                        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    r.headers_mut()
                        .insert("x-postbackd-click-id", HeaderValue::from_str(&id).unwrap());
                    Ok::<_, Infallible>(r)
                });
                let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
}
