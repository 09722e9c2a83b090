//! Deliveries drained per second to a loopback mock platform: N
//! conversions are queued for a webhook destination while the worker is
//! stopped, then the real worker (HTTP over loopback, signed webhooks,
//! durable result per attempt) drains the queue.
//!
//! `cargo bench --bench forward_drain [-- N]` (default 5000)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use postbackd::app::App;
use postbackd::config::Config;
use postbackd::forward::http::Outbound;
use postbackd::forward::worker::{Forwarder, queue_stats, system_clock};
use postbackd::inbound::postback::{self, Mapping};
use postbackd::inbound::query::Limits;
use postbackd::ingest::{self, RawRequest};
use postbackd::store::records::{self, DestinationRecord, SourceRecord};

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(n));
}

async fn run(n: usize) {
    // The mock platform: answers 204 to everything, counts requests.
    let hits = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    {
        let hits = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    return;
                };
                let hits = hits.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let hits = hits.clone();
                        async move {
                            let _ = req.into_body().collect().await;
                            hits.fetch_add(1, Ordering::Relaxed);
                            let mut r = hyper::Response::new(Full::new(Bytes::new()));
                            *r.status_mut() = hyper::StatusCode::NO_CONTENT;
                            Ok::<_, std::convert::Infallible>(r)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
    }

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::with_data_dir(dir.path());
    cfg.admin_token = Some("bench-token-0123456789abcdef".into());
    cfg.allow_private_destinations = true;
    let (app, _) = App::open(cfg).unwrap();
    let app = Arc::new(app);
    let now = postbackd::util::clock::now_ms();
    let url = format!("http://{addr}/hook");
    app.store
        .write(move |ctx| {
            let src = SourceRecord {
                name: "bench".into(),
                key: "b".repeat(32),
                preset: None,
                params: vec![],
                status_map: vec![],
                default_currency: "USD".into(),
                macro_syntax: None,
                created_ms: now,
                signing_secrets: vec![],
                signing_tolerance_s: 300,
                allow_ips: vec![],
                rate_limit: None,
                ipn: None,
            };
            ctx.sources()?.insert(1, records::encode(&src).as_slice())?;
            ctx.catalog_mut().put_source(1, src);
            let d = DestinationRecord {
                name: "hook".into(),
                kind: "webhook".into(),
                config: serde_json::json!({"url": url, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}).to_string(),
                base_url: None,
                filter_sources: vec![],
                filter_types: vec![],
                filter_statuses: vec!["approved".into()],
                created_ms: now,
            };
            ctx.destinations()?.insert(1, records::encode(&d).as_slice())?;
            ctx.catalog_mut().put_destination(1, d);
            Ok(())
        })
        .await
        .unwrap();
    // Queue N conversions (and their deliveries), 500 per transaction.
    let mapping = Mapping {
        default_currency: "USD".into(),
        ..Default::default()
    };
    for chunk in 0..n.div_ceil(500) {
        let mut jobs = Vec::new();
        for i in chunk * 500..((chunk + 1) * 500).min(n) {
            let q = format!("click_id=c{i}&amount=1.50&transaction_id=T{i}");
            let parsed = postback::parse(
                &postback::Request {
                    query: q.as_bytes(),
                    ..Default::default()
                },
                &mapping,
                &Limits::default(),
            );
            jobs.push((parsed, q));
        }
        app.store
            .write(move |ctx| {
                for (parsed, q) in jobs {
                    let raw = RawRequest {
                        method: "GET".into(),
                        path: "/p/b".into(),
                        query: q,
                        content_type: None,
                        body: vec![],
                        body_truncated: false,
                        remote_ip: "192.0.2.1".into(),
                        user_agent: None,
                    };
                    ingest::record_postback(ctx, ingest::Postback::new(1, raw, parsed), now)?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }
    let queued = app
        .store
        .read(move |rtx| queue_stats(rtx, now))
        .await
        .unwrap()
        .0;
    println!("queued {queued} deliveries to a webhook on {addr}");

    let fw = Forwarder::new(
        app.store.clone(),
        Arc::new(Outbound::new(true)),
        system_clock(),
        app.config.forward,
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(fw.run(async {
        let _ = stop_rx.await;
    }));
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let pending = app
            .store
            .read(move |rtx| queue_stats(rtx, now))
            .await
            .unwrap()
            .0;
        if pending == 0 {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(());
    let _ = task.await;
    let s = &app.store.stats;
    println!(
        "drained {queued} deliveries in {secs:.2} s: {:.0} deliveries/s ({} requests seen by the mock; writer: {} commits, {:.1} writes/commit)",
        queued as f64 / secs,
        hits.load(Ordering::Relaxed),
        s.commits.load(Ordering::Relaxed),
        s.committed_jobs.load(Ordering::Relaxed) as f64
            / s.commits.load(Ordering::Relaxed).max(1) as f64
    );
    app.store.close().await;
}
