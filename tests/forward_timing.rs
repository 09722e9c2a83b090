//! Backoff and expiry under paused tokio time: the real worker, store and
//! outbox, a scripted transport, no real sleeps.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postbackd::app::App;
use postbackd::config::Config;
use postbackd::forward::http::{Response, SendError};
use postbackd::forward::platforms::OutRequest;
use postbackd::forward::worker::{Clock, Forwarder, Settings, Transport};
use postbackd::inbound::postback::{self, Mapping};
use postbackd::inbound::query::Limits;
use postbackd::ingest::{self, RawRequest};
use postbackd::store::DELIVERIES;
use postbackd::store::records::{self, DestinationRecord, SourceRecord};
use redb::ReadableTable;

/// The answer to the n-th request.
type Script =
    Box<dyn Fn(usize) -> Result<(u16, Vec<(&'static str, &'static str)>), SendError> + Send + Sync>;

/// Answers from a script and records when (by the worker's clock) each
/// request arrived.
struct Scripted {
    clock: Clock,
    answers: Script,
    seen: Mutex<Vec<u64>>,
}

impl Transport for Scripted {
    fn send<'a>(
        &'a self,
        _req: &'a OutRequest,
    ) -> Pin<Box<dyn Future<Output = Result<Response, SendError>> + Send + 'a>> {
        Box::pin(async move {
            let n = {
                let mut s = self.seen.lock().unwrap();
                s.push((self.clock)());
                s.len() - 1
            };
            let (status, headers) = (self.answers)(n)?;
            let mut h = hyper::HeaderMap::new();
            for (k, v) in headers {
                h.insert(k, v.parse().unwrap());
            }
            Ok(Response {
                status,
                headers: h,
                body: bytes::Bytes::from_static(b"{}"),
            })
        })
    }
}

/// An app with one source and one destination of `kind`, and one queued
/// conversion; the clock follows paused tokio time.
async fn setup(kind: &str, config: serde_json::Value) -> (tempfile::TempDir, Arc<App>, Clock, u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::with_data_dir(dir.path());
    cfg.admin_token = Some("timing-test-token-0123456789".into());
    let (app, _) = App::open(cfg).unwrap();
    let app = Arc::new(app);
    let start_wall = postbackd::util::clock::now_ms();
    let start = tokio::time::Instant::now();
    let clock: Clock = Arc::new(move || start_wall + start.elapsed().as_millis() as u64);
    let kind = kind.to_string();
    let now = clock();
    app.store
        .write(move |ctx| {
            let src = SourceRecord {
                name: "s".into(),
                key: "k".repeat(32),
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
                name: "d".into(),
                kind,
                config: config.to_string(),
                base_url: Some("https://platform.example".into()),
                filter_sources: vec![],
                filter_types: vec![],
                filter_statuses: vec!["approved".into()],
                created_ms: now,
            };
            ctx.destinations()?
                .insert(1, records::encode(&d).as_slice())?;
            ctx.catalog_mut().put_destination(1, d);
            Ok(())
        })
        .await
        .unwrap();
    let parsed = postback::parse(
        &postback::Request {
            query: b"click_id=abc&amount=9&transaction_id=T",
            ..Default::default()
        },
        &Mapping {
            default_currency: "USD".into(),
            ..Default::default()
        },
        &Limits::default(),
    );
    let raw = RawRequest {
        method: "GET".into(),
        path: "/p/k".into(),
        query: String::new(),
        content_type: None,
        body: vec![],
        body_truncated: false,
        remote_ip: "192.0.2.1".into(),
        user_agent: None,
    };
    app.store
        .write(move |ctx| ingest::record_postback(ctx, ingest::Postback::new(1, raw, parsed), now))
        .await
        .unwrap();
    (dir, app, clock, start_wall)
}

async fn delivery_state(app: &App) -> records::DeliveryRecord {
    app.store
        .read(|rtx| {
            let t = rtx.open_table(DELIVERIES)?;
            let (_, v) = t.iter()?.next().unwrap()?;
            records::decode(v.value())
        })
        .await
        .unwrap()
}

fn settings() -> Settings {
    Settings {
        backoff_base: Duration::from_secs(30),
        backoff_cap: Duration::from_secs(6 * 3600),
        ..Settings::default()
    }
}

/// Wait (in virtual time) until the delivery leaves `pending`, polling
/// every `step`.
///
/// Paused time auto-advances whenever every task waits, including on the
/// writer thread's real I/O, so wall-clock-like gaps between sends are not
/// exact here; the schedule the worker decided is, and it is in the
/// delivery's attempt log.
async fn until_done(app: &App, step: Duration) -> records::DeliveryRecord {
    for _ in 0..1_000_000 {
        let d = delivery_state(app).await;
        if d.state != "pending" {
            return d;
        }
        tokio::time::sleep(step).await;
    }
    panic!("never finished");
}

#[tokio::test(start_paused = true)]
async fn exponential_backoff_with_jitter() {
    let (_dir, app, clock, _) = setup(
        "ga4",
        serde_json::json!({"measurement_id": "G-1", "api_secret": "s"}),
    )
    .await;
    let t = Arc::new(Scripted {
        clock: clock.clone(),
        answers: Box::new(|n| {
            if n < 5 {
                Ok((503, vec![]))
            } else {
                Ok((204, vec![]))
            }
        }),
        seen: Mutex::new(vec![]),
    });
    let fw = Forwarder::new(app.store.clone(), t.clone(), clock, settings());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(fw.run(async {
        let _ = stop_rx.await;
    }));
    let d = until_done(&app, Duration::from_secs(1)).await;
    assert_eq!(d.state, "delivered");
    assert_eq!(d.attempts, 6);
    assert_eq!(d.log.len(), 6);
    // Each retry was scheduled `base·2^(k-1)`, jittered down to half.
    for (k, a) in d.log.iter().take(5).enumerate() {
        assert_eq!((a.outcome.as_str(), a.status), ("retry", Some(503)));
        let delay = a.next_ms.unwrap() - a.at_ms;
        let ceiling = 30_000u64 << k;
        assert!(
            (ceiling / 2..=ceiling).contains(&delay),
            "retry {}: {delay} ms, expected {}..={ceiling}",
            k + 1,
            ceiling / 2
        );
    }
    // And no attempt was ever sent before its time.
    let seen = t.seen.lock().unwrap().clone();
    for (k, a) in d.log.iter().take(5).enumerate() {
        assert!(seen[k + 1] >= a.next_ms.unwrap(), "attempt {} early", k + 2);
    }
    assert_eq!(d.log[5].outcome, "delivered");
    let _ = stop_tx.send(());
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn retry_after_beats_backoff() {
    let (_dir, app, clock, _) = setup(
        "ga4",
        serde_json::json!({"measurement_id": "G-1", "api_secret": "s"}),
    )
    .await;
    let t = Arc::new(Scripted {
        clock: clock.clone(),
        answers: Box::new(|n| {
            if n == 0 {
                Ok((429, vec![("retry-after", "3600")]))
            } else {
                Ok((204, vec![]))
            }
        }),
        seen: Mutex::new(vec![]),
    });
    let fw = Forwarder::new(app.store.clone(), t.clone(), clock, settings());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(fw.run(async {
        let _ = stop_rx.await;
    }));
    assert_eq!(
        until_done(&app, Duration::from_secs(1)).await.state,
        "delivered"
    );
    let seen = t.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1] - seen[0] >= 3_600_000,
        "waited {} ms",
        seen[1] - seen[0]
    );
    let _ = stop_tx.send(());
    task.await.unwrap();
}

/// GA4 takes events up to 72 h old: a platform that never recovers makes
/// the delivery dead before that, with the reason, and no attempt is made
/// past the limit.
#[tokio::test(start_paused = true)]
async fn expiry_at_the_platform_age_limit() {
    let (_dir, app, clock, start) = setup(
        "ga4",
        serde_json::json!({"measurement_id": "G-1", "api_secret": "s"}),
    )
    .await;
    let t = Arc::new(Scripted {
        clock: clock.clone(),
        answers: Box::new(|_| Err(SendError::Transient("connection refused".into()))),
        seen: Mutex::new(vec![]),
    });
    let fw = Forwarder::new(app.store.clone(), t.clone(), clock, settings());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(fw.run(async {
        let _ = stop_rx.await;
    }));
    let d = until_done(&app, Duration::from_secs(60)).await;
    assert_eq!(d.state, "dead");
    let reason = d.last_error.unwrap();
    // Either the next retry would fall past the limit ("gave up", with the
    // last error), or a retry came due just as the limit passed ("expired").
    assert!(
        (reason.contains("age limit") && reason.contains("connection refused"))
            || reason.contains("older than ga4 accepts"),
        "{reason}"
    );
    let seen = t.seen.lock().unwrap().clone();
    let limit = start + 72 * 3600 * 1000;
    assert!(seen.iter().all(|&at| at <= limit), "no attempt after 72 h");
    // Virtual time also runs while the runtime waits on real disk I/O, so
    // how many attempts fit before the limit varies; the schedule does not:
    // each retry's delay doubles from 30 s (jittered to half) up to 6 h.
    assert!(!seen.is_empty());
    // The log keeps the last 20 attempts: entry i is attempt `first + i`.
    let first = d.attempts as usize - d.log.len() + 1;
    for (i, a) in d
        .log
        .iter()
        .enumerate()
        .filter(|(_, a)| a.outcome == "retry")
    {
        let attempt = first + i;
        let ceiling = (30_000u64 << (attempt - 1).min(20)).min(6 * 3600 * 1000);
        let delay = a.next_ms.unwrap() - a.at_ms;
        assert!(
            (ceiling / 2..=ceiling).contains(&delay),
            "retry after attempt {attempt}: {delay} ms"
        );
    }
    // Every retry was scheduled within the limit; only the final decision
    // (dead, nothing sent) may be taken after it.
    for a in d.log.iter().filter(|a| a.outcome == "retry") {
        assert!(
            a.next_ms.unwrap() <= limit,
            "a retry was scheduled past the limit"
        );
    }
    // The final attempt decided "expired" without sending, or "gave up"
    // after its send failed.
    assert!(d.attempts as usize == seen.len() || d.attempts as usize == seen.len() + 1);
    let _ = stop_tx.send(());
    task.await.unwrap();
}

#[test]
fn backoff_bounds_are_exact() {
    use postbackd::forward::worker::backoff;
    let s = settings();
    assert_eq!(backoff(&s, 1, 0.0), Duration::from_secs(15));
    assert_eq!(backoff(&s, 1, 1.0), Duration::from_secs(30));
    assert_eq!(backoff(&s, 4, 1.0), Duration::from_secs(240));
    assert_eq!(
        backoff(&s, 30, 1.0),
        Duration::from_secs(6 * 3600),
        "capped"
    );
    assert_eq!(backoff(&s, 30, 0.0), Duration::from_secs(3 * 3600));
}
