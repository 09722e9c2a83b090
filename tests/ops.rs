//! Operations: backup and restore, retention, /metrics, readiness, SIGTERM
//! under load, schema version refusal, JSON logs, export, compaction.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::Method;
use postbackd::app::App;
use postbackd::config::Config;
use postbackd::retention::{self, Retention};
use postbackd::util::client::HttpClient;
use serde_json::json;

use crate::durability::{spawn_server, spawn_server_with};
use crate::util::{TOKEN, TestServer, text};

async fn all_conversions(s: &TestServer) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut cursor = String::new();
    loop {
        let page = s
            .admin(
                Method::GET,
                &format!("/api/v1/conversions?limit=500{cursor}"),
                None,
            )
            .await
            .json();
        for c in page["items"].as_array().unwrap() {
            ids.insert(c["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_restores_into_a_new_data_dir() {
    let s = TestServer::start().await;
    let (src, slug) = s
        .source_and_link(json!({"name": "net", "preset": "everflow"}))
        .await;
    for i in 0..40 {
        let click = s.click(&slug, "").await;
        s.postback(&src, &format!("sub1={click}&payout={i}&conversion_id=B{i}"))
            .await;
    }
    let before = all_conversions(&s).await;
    assert_eq!(before.len(), 40);
    let report_path = "/api/v1/reports?group_by=campaign,day";
    let report_before = s.admin(Method::GET, report_path, None).await.json();
    assert_eq!(
        report_before["totals"]["conversions"], 40,
        "{report_before}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.redb");
    let (status, bytes) = HttpClient::new()
        .download(
            Method::POST,
            &format!("{}/api/v1/backup", s.base),
            &[("authorization", &format!("Bearer {TOKEN}"))],
            &file,
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(bytes > 0);
    // Writes go on while the server runs; the backup stays as it was.
    let click = s.click(&slug, "").await;
    s.postback(&src, &format!("sub1={click}&payout=1&conversion_id=AFTER"))
        .await;

    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&file, restored.path().join("postbackd.redb")).unwrap();
    let r = TestServer::start_at(restored.path(), |_| {}).await;
    assert_eq!(
        all_conversions(&r).await,
        before,
        "every conversion of the snapshot, and only those"
    );
    // The report roll-ups came along: the same report, cell for cell.
    assert_eq!(
        r.admin(Method::GET, report_path, None).await.json(),
        report_before
    );
    // Sources (keys), links and dedup came back too.
    let again = r
        .postback(&src, &format!("sub1={click}&payout=1&conversion_id=B3"))
        .await;
    assert_eq!(again.json()["result"], "duplicate", "{}", text(&again));
    assert_eq!(r.get(&format!("/c/{slug}")).await.status, 302);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_purges_old_clicks_and_events_not_conversions() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_at(dir.path(), |_| {}).await;
    let (src, slug) = s.source_and_link(json!({"name": "net"})).await;
    let mut clicks = Vec::new();
    for i in 0..5 {
        let c = s.click(&slug, "").await;
        s.postback(&src, &format!("click_id={c}&amount=1&transaction_id=R{i}"))
            .await;
        clicks.push(c);
    }
    s.stop().await;
    let mut cfg = Config::with_data_dir(dir.path());
    cfg.admin_token = Some(TOKEN.into());
    let (app, _) = App::open(cfg).unwrap();
    let now = postbackd::util::clock::now_ms();
    let day = 86_400_000;
    let r = Retention {
        clicks_days: Some(30),
        events_days: Some(7),
    };
    // Ten days on: events (7 days) go, clicks (30 days) stay.
    assert_eq!(
        retention::purge(&app.store, r, now + 10 * day)
            .await
            .unwrap(),
        (0, 5)
    );
    // Thirty-one days on: clicks go too.
    assert_eq!(
        retention::purge(&app.store, r, now + 31 * day)
            .await
            .unwrap(),
        (5, 0)
    );
    // Today: nothing to purge.
    assert_eq!(retention::purge(&app.store, r, now).await.unwrap(), (0, 0));
    app.store.close().await;
    drop(app);
    let s = TestServer::start_at(dir.path(), |_| {}).await;
    assert_eq!(
        all_conversions(&s).await.len(),
        5,
        "conversions are never purged"
    );
    assert_eq!(
        s.admin(Method::GET, &format!("/api/v1/clicks/{}", clicks[0]), None)
            .await
            .status,
        404
    );
    let ev = s.admin(Method::GET, "/api/v1/events", None).await.json();
    assert!(ev["items"].as_array().unwrap().is_empty());
    s.stop().await;
}

/// More records than one purge transaction takes: the purge goes on in
/// several small transactions until none is left.
#[tokio::test(flavor = "multi_thread")]
async fn retention_purges_in_small_transactions() {
    use postbackd::store::records::{self, ClickRecord};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::with_data_dir(dir.path());
    cfg.admin_token = Some(TOKEN.into());
    let (app, _) = App::open(cfg).unwrap();
    let now = postbackd::util::clock::now_ms();
    let n = retention::PURGE_BATCH * 2 + 500;
    app.store
        .write(move |ctx| {
            for i in 0..n {
                let c = ClickRecord {
                    ms: now,
                    slug: "s".into(),
                    source_id: None,
                    campaign: None,
                    head: false,
                    ip: "192.0.2.1".into(),
                    user_agent: None,
                    referrer: None,
                    params: vec![],
                    fbc: None,
                    fbp: None,
                    ..ClickRecord::default()
                };
                let id = postbackd::util::ids::id_from_parts(now, i as u128);
                ctx.clicks()?
                    .insert(id.as_str(), records::encode(&c).as_slice())?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let commits = app
        .store
        .stats
        .commits
        .load(std::sync::atomic::Ordering::Relaxed);
    let r = Retention {
        clicks_days: Some(1),
        events_days: None,
    };
    assert_eq!(
        retention::purge(&app.store, r, now + 2 * 86_400_000)
            .await
            .unwrap(),
        (n as u64, 0)
    );
    let after = app
        .store
        .stats
        .commits
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        after - commits,
        3,
        "three transactions of at most {}",
        retention::PURGE_BATCH
    );
    app.store.close().await;
}

/// The binary, started with extra flags, logging JSON at info level into a
/// buffer. Retries while the database is still locked: redb's lock belongs
/// to the open file description, which a sibling test's `Command::spawn`
/// copies into its child between fork and exec, so a file this process
/// closed a moment ago can look open for that moment (see tests/util.rs).
fn spawn_logging(
    data_dir: &std::path::Path,
    extra: &[&str],
) -> (crate::durability::Spawned, Arc<Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    for _ in 0..60 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_postbackd"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("POSTBACKD_ADMIN_TOKEN", TOKEN)
            .env("POSTBACKD_LOG", "info")
            .env("POSTBACKD_LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let logs: Arc<Mutex<Vec<String>>> = Arc::default();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let sink = logs.clone();
        let reader = std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        if let Some(Ok(first)) = lines.next() {
            let base = first
                .split_whitespace()
                .find(|w| w.starts_with("http://"))
                .unwrap_or_else(|| panic!("no address in banner: {first}"))
                .to_string();
            std::thread::spawn(move || for _ in lines {});
            return (crate::durability::Spawned { child, base }, logs);
        }
        // No banner: the server refused to start.
        child.wait().unwrap();
        reader.join().unwrap();
        let logs = logs.lock().unwrap().join("\n");
        assert!(
            logs.contains("already open"),
            "the server did not start: {logs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the database stayed locked for 3 s");
}

/// One sample of a `/metrics` page (prometheus-parse), by name and labels.
fn metric(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let scrape = prometheus_parse::Scrape::parse(page.lines().map(|l| Ok(l.to_string())))
        .expect("valid Prometheus text format");
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

/// Retention runs by itself in the running binary's upkeep loop: with a 1 s
/// upkeep interval, clicks and events older than their retention are gone
/// within a couple of ticks, while newer clicks and events and every
/// conversion (an old one matched to a purged click included) stay, and
/// `/metrics` and the log say how many went.
#[tokio::test(flavor = "multi_thread")]
async fn upkeep_loop_purges_old_clicks_and_events_in_the_binary() {
    use postbackd::store::Store;
    use postbackd::store::records::{self, ClickRecord, ConversionRecord, EventRecord};
    use postbackd::util::ids;

    let dir = tempfile::tempdir().unwrap();
    let http = HttpClient::new();
    let admin = |base: &str, path: &str| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move {
            http.json(Method::GET, &url, Some(TOKEN), None)
                .await
                .unwrap()
        }
    };

    // Today's clicks, a conversion and its event, through the binary.
    let mut srv = spawn_server(dir.path());
    let src = http
        .json(
            Method::POST,
            &format!("{}/api/v1/sources", srv.base),
            Some(TOKEN),
            Some(&json!({"name": "net"})),
        )
        .await
        .unwrap()
        .json();
    let link = http
        .json(
            Method::POST,
            &format!("{}/api/v1/links", srv.base),
            Some(TOKEN),
            Some(&json!({"slug": "r", "destination": "https://n.example/?s={click_id}"})),
        )
        .await
        .unwrap();
    assert_eq!(link.status, 201, "{}", text(&link));
    let mut new_clicks = Vec::new();
    for _ in 0..3 {
        let r = http
            .send(Method::GET, &format!("{}/c/r", srv.base), &[], None)
            .await
            .unwrap();
        assert_eq!(r.status, 302);
        new_clicks.push(r.header("x-postbackd-click-id").unwrap().to_string());
    }
    let pb = http
        .send(
            Method::GET,
            &format!(
                "{}/p/{}?click_id={}&amount=2&transaction_id=NEW1",
                srv.base,
                src["key"].as_str().unwrap(),
                new_clicks[0]
            ),
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(pb.json()["result"], "matched", "{}", text(&pb));
    let new_conv = pb.json()["conversion_id"].as_str().unwrap().to_string();
    let new_event = pb.json()["event_id"].as_str().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &srv.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(srv.child.wait().unwrap().success());

    // Forty days ago, written straight into the file: clicks, the event of
    // a postback, and a conversion matched to one of those clicks. IDs are
    // time-ordered, so an ID built at that time is an old record's key.
    let day = 86_400_000;
    let old_ms = postbackd::util::clock::now_ms() - 40 * day;
    let old_clicks: Vec<String> = (0..5).map(|i| ids::new_id(old_ms + i)).collect();
    let old_event = ids::new_id(old_ms + 10);
    let old_conv = ids::new_id(old_ms + 10);
    let store = Store::open(&dir.path().join("postbackd.redb")).unwrap();
    let (clicks, event, conv) = (old_clicks.clone(), old_event.clone(), old_conv.clone());
    let source_id = src["id"].as_u64().unwrap();
    store
        .write(move |ctx| {
            for (i, id) in clicks.iter().enumerate() {
                let c = ClickRecord {
                    ms: old_ms + i as u64,
                    slug: "r".into(),
                    source_id: None,
                    campaign: None,
                    head: false,
                    ip: "192.0.2.1".into(),
                    user_agent: None,
                    referrer: None,
                    params: vec![],
                    fbc: None,
                    fbp: None,
                    ..ClickRecord::default()
                };
                ctx.clicks()?
                    .insert(id.as_str(), records::encode(&c).as_slice())?;
            }
            let e = EventRecord {
                source_id,
                ms: old_ms + 10,
                method: "GET".into(),
                path: "/p/k".into(),
                query: format!("click_id={}&amount=5&transaction_id=OLD1", clicks[0]),
                content_type: None,
                body: vec![],
                body_truncated: false,
                remote_ip: "192.0.2.1".into(),
                user_agent: None,
                http_status: 200,
                result: "matched".into(),
                message: None,
                conversion_id: Some(conv.clone()),
                click_id: Some(clicks[0].clone()),
                replay_of: None,
                decoded: None,
                authenticated: false,
            };
            ctx.events()?
                .insert(event.as_str(), records::encode(&e).as_slice())?;
            let c = ConversionRecord {
                source_id,
                click_id: clicks[0].clone(),
                matched: true,
                slug: Some("r".into()),
                campaign: None,
                kind: "purchase".into(),
                event: None,
                amount: Some("5".into()),
                currency: "USD".into(),
                status: "approved".into(),
                transaction_id: Some("OLD1".into()),
                country: None,
                state: None,
                city: None,
                zip: None,
                created_ms: old_ms + 10,
                updated_ms: old_ms + 10,
                history: vec![(old_ms + 10, "approved".into())],
                event_ids: vec![event.clone()],
                extra: vec![],
                ..Default::default()
            };
            ctx.conversions()?
                .insert(conv.as_str(), records::encode(&c).as_slice())?;
            Ok(())
        })
        .await
        .unwrap();
    store.close().await;
    drop(store);

    // Restart with a 30-day retention for both and a 1 s upkeep interval.
    let (mut srv, logs) = spawn_logging(
        dir.path(),
        &[
            "--retention-clicks-days",
            "30",
            "--retention-events-days",
            "30",
            "--upkeep-interval-secs",
            "1",
        ],
    );
    let base = srv.base.clone();
    let started = Instant::now();
    // The first purge is one interval after start; allow far more than two
    // ticks for a loaded machine, polling rather than sleeping a fixed time.
    let deadline = started + Duration::from_secs(60);
    loop {
        let mut old_left = 0;
        for c in &old_clicks {
            if admin(&base, &format!("/api/v1/clicks/{c}")).await.status != 404 {
                old_left += 1;
            }
        }
        let event_left = admin(&base, &format!("/api/v1/events/{old_event}"))
            .await
            .status
            != 404;
        let page = text(
            &http
                .send(Method::GET, &format!("{base}/metrics"), &[], None)
                .await
                .unwrap(),
        );
        let purged = (
            metric(
                &page,
                "postbackd_retention_purged_total",
                &[("kind", "clicks")],
            ),
            metric(
                &page,
                "postbackd_retention_purged_total",
                &[("kind", "events")],
            ),
        );
        let logged = logs.lock().unwrap().iter().any(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            v["level"] == "INFO" && v["fields"]["clicks"] == 5 && v["fields"]["events"] == 1
        });
        if old_left == 0 && !event_left && purged == (Some(5.0), Some(1.0)) && logged {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after {:?}: {old_left} of {} old clicks still answer, old event still there: \
             {event_left}, purged counters {purged:?}, purge logged: {logged}",
            started.elapsed(),
            old_clicks.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "old clicks and events purged {:?} after the restart",
        started.elapsed()
    );

    for c in &new_clicks {
        let r = admin(&base, &format!("/api/v1/clicks/{c}")).await;
        assert_eq!(r.status, 200, "newer click {c} was purged: {}", text(&r));
    }
    let r = admin(&base, &format!("/api/v1/events/{new_event}")).await;
    assert_eq!(r.status, 200, "newer event was purged: {}", text(&r));
    let listed: HashSet<String> =
        admin(&base, "/api/v1/conversions?limit=500").await.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(
        listed,
        HashSet::from([new_conv, old_conv.clone()]),
        "conversions are never purged"
    );
    let r = admin(&base, &format!("/api/v1/conversions/{old_conv}")).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["click_id"], old_clicks[0].as_str());
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_as_prometheus_text() {
    let s = TestServer::start().await;
    let (src, slug) = s.source_and_link(json!({"name": "net"})).await;
    let click = s.click(&slug, "").await;
    s.postback(&src, &format!("click_id={click}&amount=2"))
        .await;
    s.postback(&src, "amount=2").await;
    s.get("/c/nope").await;
    // Refused before routing (URL over 8 KiB): counted all the same.
    let long = format!("/c/{slug}?sub1={}", "x".repeat(9000));
    assert_eq!(s.get(&long).await.status, 414);
    let m = s.get("/metrics").await;
    assert_eq!(
        m.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let body = text(&m);
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text format");
    let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(
        value(
            "postbackd_http_requests_total",
            &[("route", "click"), ("status", "302")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            "postbackd_http_requests_total",
            &[("route", "click"), ("status", "404")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            "postbackd_http_requests_total",
            &[("route", "click"), ("status", "414")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value("postbackd_postbacks_total", &[("result", "matched")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            "postbackd_postbacks_total",
            &[("result", "missing_click_id")]
        ),
        Some(1.0)
    );
    assert!(value("postbackd_commits_total", &[]).unwrap() >= 4.0);
    assert_eq!(value("postbackd_outbox_pending", &[]), Some(0.0));
    let hist = scrape
        .samples
        .iter()
        .find(|s| s.metric == "postbackd_commit_batch_size")
        .expect("batch histogram");
    match &hist.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let inf = buckets.iter().find(|b| b.less_than.is_infinite()).unwrap();
            assert!(inf.count >= 4.0);
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "postbackd_commit_duration_seconds")
    );
    // Readiness.
    assert_eq!(s.get("/readyz").await.status, 200);
}

#[test]
fn newer_schema_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = redb::Database::create(dir.path().join("postbackd.redb")).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut t = w.open_table(postbackd::store::META).unwrap();
            t.insert("schema_version", 99u32.to_le_bytes().as_slice())
                .unwrap();
        }
        w.commit().unwrap();
    }
    let mut cfg = Config::with_data_dir(dir.path());
    cfg.admin_token = Some(TOKEN.into());
    let err = App::open(cfg).err().expect("refused").to_string();
    assert!(
        err.contains("schema version 99") && err.contains("newer"),
        "{err}"
    );
    // And through the binary: a clear message and a failing exit code.
    let out = Command::new(env!("CARGO_BIN_EXE_postbackd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("POSTBACKD_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("newer than this build"));
}

/// SIGTERM while 8 clients send postbacks: the process exits 0 within the
/// drain deadline and every acknowledged conversion is there after restart.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_loses_no_acknowledged_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = spawn_server(dir.path());
    let http = HttpClient::new();
    let src = http
        .json(
            Method::POST,
            &format!("{}/api/v1/sources", srv.base),
            Some(TOKEN),
            Some(&json!({"name": "n"})),
        )
        .await
        .unwrap()
        .json();
    let key = src["key"].as_str().unwrap().to_string();
    let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (http, base, key, acked) = (http.clone(), srv.base.clone(), key.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..100_000 {
                let url =
                    format!("{base}/p/{key}?click_id=c{w}x{i}&amount=1&transaction_id=S{w}-{i}");
                match http.send(Method::GET, &url, &[], None).await {
                    Ok(r) if r.status == 202 => {
                        acked.lock().unwrap().insert(
                            format!("S{w}-{i}"),
                            r.json()["conversion_id"].as_str().unwrap().to_string(),
                        );
                    }
                    // Refused or closed once shutdown starts: not acknowledged.
                    _ => return,
                }
            }
        }));
    }
    while acked.lock().unwrap().len() < 500 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &srv.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = srv.child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped within the drain deadline"
    );
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let mut srv = spawn_server(dir.path());
    let mut found = HashSet::new();
    let mut cursor = String::new();
    loop {
        let page = http
            .json(
                Method::GET,
                &format!("{}/api/v1/conversions?limit=500{cursor}", srv.base),
                Some(TOKEN),
                None,
            )
            .await
            .unwrap()
            .json();
        for c in page["items"].as_array().unwrap() {
            found.insert(c["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    for (tx, conv) in &acked {
        assert!(found.contains(conv), "acknowledged {tx} lost");
    }
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_backup_export_compact_and_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = spawn_server_with(dir.path(), &[]);
    let http = HttpClient::new();
    let src = http
        .json(
            Method::POST,
            &format!("{}/api/v1/sources", srv.base),
            Some(TOKEN),
            Some(&json!({"name": "n"})),
        )
        .await
        .unwrap()
        .json();
    let key = src["key"].as_str().unwrap();
    for i in 0..3 {
        let url = format!(
            "{}/p/{key}?click_id=c{i}&amount=1.5{i}&transaction_id=E{i},x&country=DE",
            srv.base
        );
        assert_eq!(
            http.send(Method::GET, &url, &[], None)
                .await
                .unwrap()
                .status,
            202
        );
    }
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_postbackd"))
            .args(args)
            .args(["--server", &srv.base])
            .env("POSTBACKD_ADMIN_TOKEN", TOKEN)
            .output()
            .unwrap()
    };
    let out = cli(&["export", "conversions", "--format", "csv"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with("id,created_at,updated_at,source,click_id"));
    assert!(
        lines[1].contains("\"E2,x\""),
        "commas are quoted: {}",
        lines[1]
    );
    let out = cli(&[
        "export",
        "conversions",
        "--format",
        "ndjson",
        "--status",
        "approved",
    ]);
    let nd = String::from_utf8(out.stdout).unwrap();
    assert_eq!(nd.lines().count(), 3);
    assert!(
        nd.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );

    let backup = dir.path().join("b.redb");
    let out = cli(&["backup", "--out", backup.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(&backup).unwrap().len() > 0);

    // Compaction refuses while the server runs, works once it is stopped.
    let out = Command::new(env!("CARGO_BIN_EXE_postbackd"))
        .args(["compact", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop it first"));
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_postbackd"))
        .args(["compact", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("compacted"));

    // JSON logs: every line a JSON object.
    let child = Command::new(env!("CARGO_BIN_EXE_postbackd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("POSTBACKD_ADMIN_TOKEN", TOKEN)
        .env("POSTBACKD_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.lines().count() >= 2, "{logs}");
    for l in logs.lines() {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"));
        assert!(v["level"].is_string() && v["fields"].is_object());
    }
}

/// `systemctl reload` sends SIGHUP; without TLS there is nothing to reload,
/// and the server must keep running (the default action would kill it).
#[tokio::test(flavor = "multi_thread")]
async fn sighup_without_tls_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = spawn_server(dir.path());
    assert!(
        Command::new("kill")
            .args(["-HUP", &srv.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        srv.child.try_wait().unwrap().is_none(),
        "still running after SIGHUP"
    );
    let r = HttpClient::new()
        .send(Method::GET, &format!("{}/healthz", srv.base), &[], None)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
}
