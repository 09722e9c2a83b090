use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::Method;
use postbackd::util::client::HttpClient;
use serde_json::{Value, json};

use postbackd::inbound::ipn::{Format, TxType};

use crate::ipn;
use crate::util::{TOKEN, TestServer, text};

const IPN_SECRET: &str = "kill-9-ipn-secret";

#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_at(dir.path(), |_| {}).await;
    let (src, slug) = s
        .source_and_link(json!({"name": "net", "preset": "everflow"}))
        .await;
    let click = s.click(&slug, "?utm_source=x").await;
    let r = s
        .postback(&src, &format!("sub1={click}&payout=3&transaction_id=R1"))
        .await;
    let conv = r.json()["conversion_id"].as_str().unwrap().to_string();
    let rejected = s.postback(&src, "payout=3").await.json()["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    s.stop().await;

    let s = TestServer::start_at(dir.path(), |_| {}).await;
    // Source key, link, click, conversion, dedup index, events: all back.
    let r = s
        .postback(&src, &format!("sub1={click}&payout=3&transaction_id=R1"))
        .await;
    assert_eq!(r.json()["result"], "duplicate", "{}", text(&r));
    assert_eq!(r.json()["conversion_id"], conv.as_str());
    assert_eq!(s.get(&format!("/c/{slug}")).await.status, 302);
    let c = s
        .admin(Method::GET, &format!("/api/v1/clicks/{click}"), None)
        .await
        .json();
    assert_eq!(c["utm_source"], "x");
    let e = s
        .admin(Method::GET, &format!("/api/v1/events/{rejected}"), None)
        .await
        .json();
    assert_eq!(e["result"], "missing_click_id");
    let sources = s.admin(Method::GET, "/api/v1/sources", None).await.json();
    assert_eq!(sources["items"][0]["preset"], "everflow");
    // New sources do not reuse IDs.
    let b = s.source(json!({"name": "second"})).await;
    assert_eq!(b["id"], 2);
    s.stop().await;
}

/// The binary, started on a data dir; parses the banner for the address.
pub struct Spawned {
    pub child: Child,
    pub base: String,
}

pub fn spawn_server(data_dir: &std::path::Path) -> Spawned {
    spawn_server_with(data_dir, &[])
}

/// [`spawn_server`] with extra `serve` flags.
pub fn spawn_server_with(data_dir: &std::path::Path, extra: &[&str]) -> Spawned {
    let mut child = Command::new(env!("CARGO_BIN_EXE_postbackd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("POSTBACKD_ADMIN_TOKEN", TOKEN)
        .env("POSTBACKD_LOG", "warn")
        // Load from one client IP: the per-IP and per-source limits would
        // (correctly) answer 429.
        .env("POSTBACKD_RATE_LIMIT_CLICK_IP", "off")
        .env("POSTBACKD_RATE_LIMIT_POSTBACK_IP", "off")
        .env("POSTBACKD_RATE_LIMIT_SOURCE", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .unwrap_or_else(|| panic!("no address in banner: {first}"))
        .to_string();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Spawned { child, base }
}

async fn admin(
    c: &HttpClient,
    base: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let r = c
        .json(method, &format!("{base}{path}"), Some(TOKEN), body.as_ref())
        .await
        .unwrap();
    assert!(r.status < 300, "{path}: {}", text(&r));
    r.json()
}

/// kill -9 mid-stream: every conversion (and click) that got a 2xx (302)
/// is present after restart, and no transaction is counted twice.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = spawn_server(dir.path());
    let http = HttpClient::new();
    let src = admin(
        &http,
        &srv.base,
        Method::POST,
        "/api/v1/sources",
        Some(json!({"name": "net"})),
    )
    .await;
    let link = admin(
        &http,
        &srv.base,
        Method::POST,
        "/api/v1/links",
        Some(json!({"slug": "k", "destination": "https://n.example/?s={click_id}"})),
    )
    .await;
    assert_eq!(link["slug"], "k");
    let key = src["key"].as_str().unwrap().to_string();
    // One IPN receiver per network.
    let mut ipn_keys = Vec::new();
    for f in Format::ALL {
        let s = admin(
            &http,
            &srv.base,
            Method::POST,
            "/api/v1/sources",
            Some(json!({"name": f.as_str(), "ipn": {"format": f.as_str(), "secret": IPN_SECRET}})),
        )
        .await;
        ipn_keys.push((f, s["key"].as_str().unwrap().to_string()));
    }
    let ipn_keys = Arc::new(ipn_keys);

    // Clicks to convert on.
    let mut clicks = Vec::new();
    for _ in 0..200 {
        let r = http
            .send(Method::GET, &format!("{}/c/k", srv.base), &[], None)
            .await
            .unwrap();
        assert_eq!(r.status, 302);
        clicks.push(r.header("x-postbackd-click-id").unwrap().to_string());
    }
    let clicks = Arc::new(clicks);

    // 8 concurrent clients; each postback has a unique transaction ID and
    // each client also clicks. Acknowledged writes are recorded.
    let acked_conv: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let acked_clicks: Arc<Mutex<Vec<String>>> = Arc::default();
    // IPN notifications answered 200: (format, receipt, event ID).
    let acked_ipn: Arc<Mutex<Vec<(Format, String, String)>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (http, base, key, clicks, acked_conv, acked_clicks, ipn_keys, acked_ipn) = (
            http.clone(),
            srv.base.clone(),
            key.clone(),
            clicks.clone(),
            acked_conv.clone(),
            acked_clicks.clone(),
            ipn_keys.clone(),
            acked_ipn.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0..100_000u64 {
                if i % 3 == 0 {
                    let (format, ipn_key) = &ipn_keys[(i as usize / 3 + w) % ipn_keys.len()];
                    let receipt = format!("ipn-w{w}-{i}");
                    let click = &clicks[(i as usize * 8 + w) % clicks.len()];
                    let n = ipn::notification(
                        *format,
                        IPN_SECRET,
                        TxType::Sale,
                        false,
                        Some(click),
                        &receipt,
                        "1",
                    );
                    let url = format!("{base}/ipn/{ipn_key}");
                    match http
                        .send(Method::POST, &url, &[("content-type", n.0)], Some(n.1))
                        .await
                    {
                        Ok(r) if r.status == 200 => {
                            let event = match r.header("x-postbackd-event-id") {
                                Some(e) => e.to_string(),
                                None => r.json()["event_id"].as_str().unwrap().to_string(),
                            };
                            acked_ipn.lock().unwrap().push((*format, receipt, event));
                        }
                        Ok(r) => panic!("unexpected IPN answer {}: {}", r.status, text(&r)),
                        Err(_) => return,
                    }
                }
                let txid = format!("w{w}-{i}");
                let click = &clicks[(i as usize * 8 + w) % clicks.len()];
                let url =
                    format!("{base}/p/{key}?click_id={click}&amount=1.5&transaction_id={txid}");
                match http.send(Method::GET, &url, &[], None).await {
                    Ok(r) if r.status == 200 => {
                        let v = r.json();
                        assert_eq!(v["result"], "matched", "{v}");
                        acked_conv
                            .lock()
                            .unwrap()
                            .insert(txid, v["conversion_id"].as_str().unwrap().to_string());
                    }
                    Ok(r) => panic!("unexpected answer {}: {}", r.status, text(&r)),
                    Err(_) => return,
                }
                if i % 4 == 0 {
                    match http
                        .send(Method::GET, &format!("{base}/c/k"), &[], None)
                        .await
                    {
                        Ok(r) if r.status == 302 => acked_clicks
                            .lock()
                            .unwrap()
                            .push(r.header("x-postbackd-click-id").unwrap().to_string()),
                        _ => return,
                    }
                }
            }
        }));
    }
    // Kill once well over 1,000 postbacks have been acknowledged.
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if acked_conv.lock().unwrap().len() >= 1500 {
            break;
        }
    }
    srv.child.kill().unwrap(); // SIGKILL
    srv.child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let acked_conv = acked_conv.lock().unwrap().clone();
    let acked_clicks = acked_clicks.lock().unwrap().clone();
    let acked_ipn = acked_ipn.lock().unwrap().clone();
    assert!(acked_conv.len() >= 1000);
    assert!(
        acked_ipn.len() >= 100,
        "{} IPN notifications",
        acked_ipn.len()
    );

    let mut srv = spawn_server(dir.path());
    // Page through every conversion.
    let mut by_txid: HashMap<String, Vec<String>> = HashMap::new();
    let mut cursor = String::new();
    loop {
        let page = admin(
            &http,
            &srv.base,
            Method::GET,
            &format!("/api/v1/conversions?limit=500{cursor}"),
            None,
        )
        .await;
        for c in page["items"].as_array().unwrap() {
            by_txid
                .entry(c["transaction_id"].as_str().unwrap().to_string())
                .or_default()
                .push(c["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    for (txid, conv) in &acked_conv {
        let found = by_txid
            .get(txid)
            .unwrap_or_else(|| panic!("acknowledged conversion {txid} lost"));
        assert_eq!(
            found,
            &vec![conv.clone()],
            "{txid} stored once, with the acknowledged ID"
        );
    }
    assert!(
        by_txid.values().all(|v| v.len() == 1),
        "no transaction counted twice"
    );
    let ids: HashSet<&String> = acked_clicks.iter().collect();
    for click in ids {
        let r = http
            .json(
                Method::GET,
                &format!("{}/api/v1/clicks/{click}", srv.base),
                Some(TOKEN),
                None,
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "acknowledged click {click} lost");
    }
    // The report roll-ups were written in the same transactions: after the
    // kill they count exactly the stored records.
    let stats = admin(&http, &srv.base, Method::GET, "/api/v1/stats", None).await;
    let report = admin(
        &http,
        &srv.base,
        Method::GET,
        "/api/v1/reports?group_by=link",
        None,
    )
    .await;
    let totals = &report["totals"];
    // (This client sends no user agent: its clicks are bot clicks, counted
    // apart.)
    assert_eq!(
        totals["clicks"].as_u64().unwrap() + totals["bot_clicks"].as_u64().unwrap(),
        stats["clicks"].as_u64().unwrap(),
        "{report}"
    );
    // The postback source's conversions (the IPN sources' have their own
    // amounts and currencies): each counted once, with its 1.50.
    let postbacks = by_txid.keys().filter(|t| t.starts_with('w')).count() as u64;
    let report = admin(
        &http,
        &srv.base,
        Method::GET,
        &format!(
            "/api/v1/reports?group_by=source&filter.source={}",
            src["id"]
        ),
        None,
    )
    .await;
    let totals = &report["totals"];
    assert_eq!(totals["conversions"], json!(postbacks), "{report}");
    let revenue = rust_decimal::Decimal::from(postbacks) * rust_decimal::Decimal::new(15, 1);
    assert_eq!(
        totals["revenue"],
        json!(postbackd::reports::output::fmt_money(revenue)),
        "{report}"
    );
    // Every answered IPN notification: its event, its one conversion (by
    // receipt), and the network's retry is now a duplicate of it.
    for (n, (format, receipt, event)) in acked_ipn.iter().enumerate() {
        let e = admin(
            &http,
            &srv.base,
            Method::GET,
            &format!("/api/v1/events/{event}"),
            None,
        )
        .await;
        assert_eq!(e["result"], "matched", "{format:?} {receipt}: {e}");
        let conv = e["conversion_id"].as_str().unwrap().to_string();
        assert_eq!(
            by_txid.get(receipt),
            Some(&vec![conv]),
            "answered {format:?} notification {receipt} lost or doubled"
        );
        if n % 10 == 0 {
            let key = &ipn_keys.iter().find(|(f, _)| f == format).unwrap().1;
            let click = e["click_id"].as_str().unwrap();
            let note = ipn::notification(
                *format,
                IPN_SECRET,
                TxType::Sale,
                false,
                Some(click),
                receipt,
                "1",
            );
            let r = http
                .send(
                    Method::POST,
                    &format!("{}/ipn/{key}", srv.base),
                    &[("content-type", note.0)],
                    Some(note.1),
                )
                .await
                .unwrap();
            let result = match r.header("x-postbackd-event-id") {
                Some(id) => admin(
                    &http,
                    &srv.base,
                    Method::GET,
                    &format!("/api/v1/events/{id}"),
                    None,
                )
                .await["result"]
                    .clone(),
                None => r.json()["result"].clone(),
            };
            assert_eq!(result, "duplicate", "{format:?} {receipt}");
        }
    }
    eprintln!(
        "kill -9 test: {} conversions, {} IPN notifications and {} clicks acknowledged before the kill, all present",
        acked_conv.len(),
        acked_ipn.len(),
        acked_clicks.len()
    );
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
}

/// Disk full: clicks and postbacks get 503 (never a 302 or 2xx for an
/// unstored record), nothing half-written; when space returns the server
/// recovers without a restart, and the file is intact after one.
#[tokio::test(flavor = "multi_thread")]
async fn disk_full_answers_503_then_recovers() {
    use postbackd::store::fault::DiskFault;
    let dir = tempfile::tempdir().unwrap();
    let fault = Arc::new(DiskFault::default());
    let s = TestServer::start_with_fault(dir.path(), fault.clone()).await;
    let (src, slug) = s.source_and_link(json!({"name": "net"})).await;
    let click = s.click(&slug, "").await;

    fault.set_full(true);
    let r = s.get(&format!("/c/{slug}")).await;
    assert_eq!(
        r.status,
        503,
        "no redirect without a stored click: {}",
        text(&r)
    );
    assert!(r.header("location").is_none());
    assert_eq!(r.json()["error"], "unavailable");
    assert!(r.header("retry-after").is_some());
    let pb = format!("click_id={click}&amount=4&transaction_id=FULL1");
    for _ in 0..3 {
        let r = s.postback(&src, &pb).await;
        assert_eq!(r.status, 503, "{}", text(&r));
        assert_eq!(r.json()["error"], "unavailable");
    }
    let r = s
        .admin(
            Method::POST,
            "/api/v1/sources",
            Some(json!({"name": "during"})),
        )
        .await;
    assert_eq!(r.status, 503);

    fault.set_full(false);
    // The network retries: now it is stored, once.
    let r = s.postback(&src, &pb).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["result"], "matched");
    assert_eq!(s.get(&format!("/c/{slug}")).await.status, 302);
    let stats = s.admin(Method::GET, "/api/v1/stats", None).await.json();
    assert_eq!(stats["conversions"], 1);
    assert_eq!(stats["events"], 1, "failed attempts left no event behind");
    assert!(stats["failed_commits"].as_u64().unwrap() >= 4);
    s.stop().await;

    // Restart on the same file: intact and complete.
    let s = TestServer::start_at(dir.path(), |_| {}).await;
    let r = s.postback(&src, &pb).await;
    assert_eq!(r.json()["result"], "duplicate", "{}", text(&r));
    let c = s
        .admin(Method::GET, &format!("/api/v1/clicks/{click}"), None)
        .await;
    assert_eq!(c.status, 200);
    let sources = s.admin(Method::GET, "/api/v1/sources", None).await.json();
    assert_eq!(
        sources["items"].as_array().unwrap().len(),
        1,
        "the source created while full was not half-made"
    );
    s.stop().await;
}
