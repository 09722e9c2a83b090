//! Postback health over HTTP: the doctor on every preset's own URL and on
//! mistakes, source health drawn from real refused requests, bulk replay
//! (1,000 `missing_click_id` events fixed in one job, idempotent, resumed
//! after `kill -9`), alerts reaching Slack- and Telegram-shaped mocks, and
//! the per-source counters on `/metrics`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;
use postbackd::util::client::{HttpClient, HttpResponse};
use serde_json::{Value, json};

use crate::durability::spawn_server;
use crate::mock::Mock;
use crate::util::{TOKEN, TestServer, text};

async fn call(
    c: &HttpClient,
    base: &str,
    m: Method,
    path: &str,
    body: Option<Value>,
) -> HttpResponse {
    c.json(m, &format!("{base}{path}"), Some(TOKEN), body.as_ref())
        .await
        .unwrap()
}

fn f_count(h: &Value) -> u64 {
    h["findings"][0]["count"].as_u64().unwrap()
}

fn no_limits(c: &mut postbackd::config::Config) {
    c.rate.postback_ip = None;
    c.rate.source_default = None;
    c.rate.click_ip = None;
}

/// `n` clicks on `slug`, 32 at a time; their IDs in order.
async fn clicks(c: &HttpClient, base: &str, slug: &str, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(32) {
        let mut tasks = Vec::new();
        for _ in chunk {
            let (c, url) = (c.clone(), format!("{base}/c/{slug}"));
            tasks.push(tokio::spawn(async move {
                let r = c.send(Method::GET, &url, &[], None).await.unwrap();
                assert_eq!(r.status, 302);
                r.header("x-postbackd-click-id").unwrap().to_string()
            }));
        }
        for t in tasks {
            out.push(t.await.unwrap());
        }
    }
    out
}

/// GET postbacks `key?{query(i)}` for `i` in `0..n`, 32 at a time; their
/// statuses.
async fn postbacks(
    c: &HttpClient,
    base: &str,
    key: &str,
    n: usize,
    query: impl Fn(usize) -> String,
) -> Vec<u16> {
    let mut out = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(32) {
        let mut tasks = Vec::new();
        for &i in chunk {
            let (c, url) = (c.clone(), format!("{base}/p/{key}?{}", query(i)));
            tasks.push(tokio::spawn(async move {
                c.send(Method::GET, &url, &[], None).await.unwrap().status
            }));
        }
        for t in tasks {
            out.push(t.await.unwrap());
        }
    }
    out
}

async fn wait_job(c: &HttpClient, base: &str, id: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = call(
            c,
            base,
            Method::GET,
            &format!("/api/v1/events/replay/{id}"),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", text(&r));
        let v = r.json();
        if v["state"] != "running" {
            return v;
        }
        assert!(Instant::now() < deadline, "replay job did not finish: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn conversions(c: &HttpClient, base: &str) -> u64 {
    call(c, base, Method::GET, "/api/v1/stats", None)
        .await
        .json()["conversions"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn doctor_finds_nothing_in_each_presets_own_url_and_names_mistakes() {
    let s = TestServer::start().await;
    let presets = s.admin(Method::GET, "/api/v1/presets", None).await.json();
    let ids: Vec<String> = presets["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.len() >= 10);
    let mut cake = Value::Null;
    for id in &ids {
        let src = s.source(json!({"name": id, "preset": id})).await;
        let url = src["postback_url"].as_str().unwrap();
        let r = s
            .admin(Method::POST, "/api/v1/doctor", Some(json!({"url": url})))
            .await;
        assert_eq!(r.status, 200, "{}", text(&r));
        assert_eq!(r.json()["findings"], json!([]), "{id}: {url}");
        assert_eq!(r.json()["ok"], true);
        assert_eq!(r.json()["source"], src["id"]);
        if id == "cake" {
            cake = src;
        }
    }
    // A custom source with its own mapping and syntax: its URL is clean too.
    let own = s
        .source(json!({"name": "own", "params": {"click_id": "subid"}, "macro_syntax": "[x]"}))
        .await;
    let r = s
        .admin(
            Method::POST,
            "/api/v1/doctor",
            Some(json!({"url": own["postback_url"]})),
        )
        .await;
    assert_eq!(r.json()["findings"], json!([]), "{}", text(&r));

    // Everflow's macro on CAKE, which writes #s2#.
    let url = format!(
        "{}/p/{}?click_id={{sub1}}&amount=#price#&transaction_id=#leadid#",
        s.base,
        cake["key"].as_str().unwrap()
    );
    let r = s
        .admin(Method::POST, "/api/v1/doctor", Some(json!({"url": url})))
        .await;
    let f = &r.json()["findings"];
    assert_eq!(f.as_array().unwrap().len(), 1, "{f}");
    assert_eq!(f[0]["code"], "foreign_macro_syntax");
    assert_eq!(f[0]["param"], "click_id");
    assert_eq!(f[0]["fix"], "write click_id=#s2#");
    assert_eq!(r.json()["ok"], false);

    // Not a URL: a 400 that names the fix; no URL at all; an unknown field.
    let r = s
        .admin(
            Method::POST,
            "/api/v1/doctor",
            Some(json!({"url": "sub1={sub1}&payout={payout}"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", text(&r));
    assert_eq!(r.json()["error"], "not_a_url");
    assert!(
        r.json()["message"].as_str().unwrap().contains("https://"),
        "{}",
        text(&r)
    );
    let r = s
        .admin(Method::POST, "/api/v1/doctor", Some(json!({})))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("missing_url"))
    );
    let r = s
        .admin(Method::POST, "/api/v1/doctor", Some(json!({"link": "x"})))
        .await;
    assert_eq!(r.status, 400, "{}", text(&r));
    s.stop().await;
}

#[tokio::test]
async fn a_thousand_missing_click_ids_fixed_by_one_replay_and_never_twice() {
    let s = TestServer::start_with(no_limits).await;
    let (src, slug) = s
        .source_and_link(json!({"name": "Everflow", "preset": "everflow"}))
        .await;
    let id = src["id"].as_u64().unwrap();
    let key = src["key"].as_str().unwrap().to_string();
    let ids = Arc::new(clicks(&s.client, &s.base, &slug, 1000).await);
    // The network sends the click ID as `subid`; the mapping reads `sub1`.
    let q = ids.clone();
    let st = postbacks(&s.client, &s.base, &key, 1000, move |i| {
        format!("subid={}&payout=2.50&txid=TX-{i}", q[i])
    })
    .await;
    assert!(st.iter().all(|&x| x == 400), "{st:?}");

    // Source health sees it, from the counters and the refused requests.
    let h = s
        .admin(Method::GET, &format!("/api/v1/sources/{id}/health"), None)
        .await;
    assert_eq!(h.status, 200, "{}", text(&h));
    let h = h.json();
    assert_eq!(h["windows"][0]["window"], "1h");
    assert_eq!(h["windows"][0]["refused"], 1000);
    assert_eq!(h["windows"][0]["match_rate"], 0.0);
    assert_eq!(h["windows"][2]["postbacks"], 1000);
    assert_eq!(h["refusals_24h"]["missing_click_id"], 1000);
    assert!(h["last_postback_at"].is_string());
    assert_eq!(h["sampled"], 500);
    assert_eq!(h["top_refused_shapes"][0]["params"], "payout&subid&txid");
    assert_eq!(h["top_refused_shapes"][0]["count"], 500);
    assert_eq!(f_count(&h), 1000);
    let f = &h["findings"][0];
    assert_eq!(f["code"], "click_id_in_other_param", "{h}");
    assert_eq!(f["param"], "subid");
    assert_eq!(
        f["message"],
        "1000 refused requests in the last 24 hours had `subid` but the mapping reads the \
         click ID from `sub1` or `click_id`"
    );

    // Bad replay requests: clear 400s.
    for (body, code) in [
        (json!({"result": "missing_click_id"}), "missing_source"),
        (json!({"source": 99}), "unknown_source"),
        (json!({"source": id, "since": "yesterday"}), "invalid_time"),
        (
            json!({"source": id, "since": "2030-01-01T00:00:00Z", "until": "2029-01-01T00:00:00Z"}),
            "invalid_range",
        ),
        (
            json!({"source": id, "result": "Missing Click"}),
            "invalid_result",
        ),
    ] {
        let r = s
            .admin(Method::POST, "/api/v1/events/replay", Some(body.clone()))
            .await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (400, json!(code)),
            "{body}: {}",
            text(&r)
        );
    }
    let r = s.admin(Method::GET, "/api/v1/events/replay/77", None).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (404, json!("unknown_replay"))
    );

    // The fix, then one replay: 1,000 matched conversions.
    let r = s
        .admin(
            Method::PATCH,
            &format!("/api/v1/sources/{id}"),
            Some(json!({"params": {"click_id": "subid", "transaction_id": "txid"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let body = json!({"source": id, "result": "missing_click_id"});
    let r = s
        .admin(Method::POST, "/api/v1/events/replay", Some(body.clone()))
        .await;
    assert_eq!(r.status, 202, "{}", text(&r));
    let job = wait_job(&s.client, &s.base, r.json()["id"].as_u64().unwrap()).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["replayed"], 1000, "{job}");
    assert_eq!(job["matched"], 1000, "{job}");
    assert_eq!(job["created"], 1000, "{job}");
    assert_eq!(job["unchanged"], 0, "{job}");
    assert_eq!(conversions(&s.client, &s.base).await, 1000);
    let c = s
        .admin(
            Method::GET,
            &format!("/api/v1/conversions?source={id}&limit=5"),
            None,
        )
        .await
        .json();
    assert_eq!(c["items"][0]["amount"], "2.50");
    assert!(
        c["items"][0]["transaction_id"]
            .as_str()
            .unwrap()
            .starts_with("TX-")
    );

    // A second run: nothing new.
    let r = s
        .admin(Method::POST, "/api/v1/events/replay", Some(body))
        .await;
    let job = wait_job(&s.client, &s.base, r.json()["id"].as_u64().unwrap()).await;
    assert_eq!(
        (job["replayed"].clone(), job["created"].clone()),
        (json!(1000), json!(0)),
        "{job}"
    );
    assert_eq!(job["unchanged"], 1000, "{job}");
    assert_eq!(conversions(&s.client, &s.base).await, 1000);
    // Replaying one event already replayed: a duplicate.
    let ev = s
        .admin(
            Method::GET,
            &format!("/api/v1/events?source={id}&result=missing_click_id&limit=1"),
            None,
        )
        .await
        .json();
    let ev_id = ev["items"][0]["id"].as_str().unwrap();
    let r = s
        .admin(
            Method::POST,
            &format!("/api/v1/events/{ev_id}/replay"),
            None,
        )
        .await;
    assert_eq!(r.json()["response"]["result"], "duplicate", "{}", text(&r));
    assert_eq!(conversions(&s.client, &s.base).await, 1000);
    // The health counters count the network's requests, not the replays.
    let h = s
        .admin(Method::GET, &format!("/api/v1/sources/{id}/health"), None)
        .await
        .json();
    assert_eq!(h["windows"][0]["postbacks"], 1000, "{h}");

    // /metrics: the per-source counters the alerts use.
    let m = text(&s.get("/metrics").await);
    assert!(
        m.contains(&format!(
            "postbackd_source_refusals_total{{source=\"{id}\",reason=\"missing_click_id\"}} 1000"
        )),
        "{m}"
    );
    assert!(
        m.contains(&format!(
            "postbackd_source_match_rate_1h{{source=\"{id}\"}} 0"
        )),
        "{m}"
    );
    let parsed = prometheus_parse::Scrape::parse(m.lines().map(|l| Ok(l.to_string()))).unwrap();
    assert!(
        parsed
            .samples
            .iter()
            .any(|x| x.metric == "postbackd_source_refusals_total")
    );
    s.stop().await;
}

#[tokio::test]
async fn kill_9_mid_replay_resumes_with_the_same_totals() {
    let dir = tempfile::tempdir().unwrap();
    let c = HttpClient::new();
    let mut srv = spawn_server(dir.path());
    let base = srv.base.clone();
    let src = call(
        &c,
        &base,
        Method::POST,
        "/api/v1/sources",
        Some(json!({"name": "net", "preset": "everflow"})),
    )
    .await
    .json();
    let other = call(
        &c,
        &base,
        Method::POST,
        "/api/v1/sources",
        Some(json!({"name": "other"})),
    )
    .await
    .json();
    let id = src["id"].as_u64().unwrap();
    let link = call(
        &c,
        &base,
        Method::POST,
        "/api/v1/links",
        Some(json!({"destination": "https://offer.example/?s={click_id}", "source": id})),
    )
    .await
    .json();
    let ids = Arc::new(clicks(&c, &base, link["slug"].as_str().unwrap(), 1000).await);
    let key = src["key"].as_str().unwrap().to_string();
    let okey = other["key"].as_str().unwrap().to_string();
    // Interleaved with another source's refusals, so the range spans many
    // pages and the kill lands mid-job.
    for round in 0..5 {
        let q = ids.clone();
        postbacks(&c, &base, &key, 200, move |i| {
            format!(
                "subid={}&payout=1&txid=K{}",
                q[round * 200 + i],
                round * 200 + i
            )
        })
        .await;
        postbacks(&c, &base, &okey, 600, |i| format!("nothing={i}")).await;
    }
    call(
        &c,
        &base,
        Method::PATCH,
        &format!("/api/v1/sources/{id}"),
        Some(json!({"params": {"click_id": "subid", "transaction_id": "txid"}})),
    )
    .await;
    let r = call(
        &c,
        &base,
        Method::POST,
        "/api/v1/events/replay",
        Some(json!({"source": id, "result": "missing_click_id"})),
    )
    .await;
    assert_eq!(r.status, 202, "{}", text(&r));
    let job = r.json()["id"].as_u64().unwrap();
    let seen = loop {
        let v = call(
            &c,
            &base,
            Method::GET,
            &format!("/api/v1/events/replay/{job}"),
            None,
        )
        .await
        .json();
        if v["scanned"].as_u64().unwrap() > 0 || v["state"] != "running" {
            break v;
        }
    };
    srv.child.kill().unwrap(); // SIGKILL
    srv.child.wait().unwrap();
    assert_eq!(
        seen["state"], "running",
        "the job finished before the kill: {seen}"
    );
    assert!(seen["scanned"].as_u64().unwrap() < 4000, "{seen}");

    let mut srv = spawn_server(dir.path());
    let base = srv.base.clone();
    let done = wait_job(&c, &base, job).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["scanned"], 4000, "{done}");
    assert_eq!(done["replayed"], 1000, "{done}");
    assert_eq!(done["created"], 1000, "{done}");
    assert_eq!(done["matched"], 1000, "{done}");
    assert_eq!(conversions(&c, &base).await, 1000);
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
}

fn slack_mock() -> crate::mock::Responder {
    Arc::new(|_, _| {
        (
            200,
            vec![("content-type", "text/html".to_string())],
            "ok".to_string(),
        )
    })
}

fn telegram_mock() -> crate::mock::Responder {
    Arc::new(|r, n| {
        let chat = r.json()["chat_id"].clone();
        (
            200,
            vec![("content-type", "application/json".to_string())],
            json!({"ok": true, "result": {"message_id": n + 1, "chat": {"id": chat}, "text": r.json()["text"]}}).to_string(),
        )
    })
}

async fn wait_requests(m: &Mock, n: usize) -> Vec<crate::mock::Recorded> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = m.requests();
        if r.len() >= n {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "the mock got {} requests, wanted {n}",
            r.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const BOT_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

#[tokio::test]
async fn alerts_reach_slack_and_telegram_once_and_resolve() {
    let slack = Mock::start(slack_mock()).await;
    let telegram = Mock::start(telegram_mock()).await;
    let s = TestServer::start_with(|c| {
        no_limits(c);
        c.allow_private_destinations = true;
        c.upkeep_interval = Duration::from_millis(200);
    })
    .await;
    let (src, slug) = s
        .source_and_link(json!({"name": "Everflow", "preset": "everflow"}))
        .await;
    let id = src["id"].as_u64().unwrap();
    let r = s
        .admin(
            Method::POST,
            "/api/v1/alerts",
            Some(json!({
                "rule": "match_rate_below", "source": id, "threshold": 50,
                "window_minutes": 5, "min_events": 4,
                "notify": {"type": "slack", "url": format!("{}/services/T000/B000/XXXXXXXX", slack.base)}
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let slack_alert = r.json();
    assert_eq!(slack_alert["state"], "ok");
    let r = s
        .admin(
            Method::POST,
            "/api/v1/alerts",
            Some(json!({
                "rule": "refusals_above", "source": id, "threshold": 0, "window_minutes": 5,
                "notify": {"type": "telegram", "bot_token": BOT_TOKEN, "chat_id": -1001234567890i64, "base_url": telegram.base}
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    assert!(!text(&r).contains(BOT_TOKEN), "{}", text(&r));

    // Three postbacks for clicks this server never made, one refused.
    for i in 0..3 {
        let r = s
            .postback(
                &src,
                &format!("sub1=nosuchclick{i}&payout=1&conversion_id=U{i}"),
            )
            .await;
        assert_eq!(r.status, 202, "{}", text(&r));
    }
    assert_eq!(s.postback(&src, "payout=1").await.status, 400);

    let got = wait_requests(&slack, 1).await;
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path(), "/services/T000/B000/XXXXXXXX");
    let msg = got[0].json()["text"].as_str().unwrap().to_string();
    assert!(
        msg.starts_with(&format!(
            "Match rate of source Everflow (id {id}) fell to 0% over the last 5 minutes"
        )),
        "{msg}"
    );
    assert!(
        msg.contains("4 of 4 postbacks had no known click ID (3 unmatched, 1 missing_click_id)"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "Open Postbacks filtered on no_match (GET /api/v1/events?source={id}&result=unmatched)"
        )),
        "{msg}"
    );

    let tg = wait_requests(&telegram, 1).await;
    assert_eq!(tg[0].path(), format!("/bot{BOT_TOKEN}/sendMessage"));
    assert_eq!(tg[0].json()["chat_id"], "-1001234567890");
    let t = tg[0].json()["text"].as_str().unwrap().to_string();
    assert!(
        t.contains(
            "had 1 refused postbacks over the last 5 minutes (alert above 0): 1 missing_click_id"
        ),
        "{t}"
    );

    // Matched postbacks bring the rate back over 50%: one resolved message.
    for i in 0..10 {
        let click = s.click(&slug, "").await;
        let r = s
            .postback(&src, &format!("sub1={click}&payout=1&conversion_id=M{i}"))
            .await;
        assert_eq!(r.status, 200, "{}", text(&r));
    }
    let got = wait_requests(&slack, 2).await;
    let msg = got[1].json()["text"].as_str().unwrap().to_string();
    assert!(
        msg.starts_with("Resolved: match rate of source Everflow"),
        "{msg}"
    );
    // No storm: a few more ticks send nothing more.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(slack.requests().len(), 2);
    assert_eq!(telegram.requests().len(), 1);

    let list = s.admin(Method::GET, "/api/v1/alerts", None).await.json();
    let a = &list["items"][0];
    assert_eq!(a["state"], "ok");
    let events: Vec<&str> = a["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["fired", "resolved"]);
    let b = &list["items"][1];
    assert_eq!(b["state"], "firing");
    assert_eq!(b["notify"]["bot_token"], "123456…");
    assert!(!list.to_string().contains(BOT_TOKEN));
    // The notifications are deliveries like any other, delivered.
    let d = s
        .admin(Method::GET, "/api/v1/deliveries?state=delivered", None)
        .await
        .json();
    assert_eq!(d["items"].as_array().unwrap().len(), 3, "{d}");
    assert!(!d.to_string().contains(BOT_TOKEN));

    let r = s
        .admin(
            Method::DELETE,
            &format!("/api/v1/alerts/{}", slack_alert["id"]),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = s
        .admin(
            Method::DELETE,
            &format!("/api/v1/alerts/{}", slack_alert["id"]),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn bad_alerts_are_refused_with_the_fix() {
    let s = TestServer::start().await;
    let src = s.source(json!({"name": "net"})).await;
    let slack = json!({"type": "slack", "url": "https://hooks.slack.com/services/T0/B0/X"});
    for (body, code) in [
        (json!({"notify": slack}), "missing_rule"),
        (
            json!({"rule": "match_rate_low", "threshold": 50, "notify": slack}),
            "unknown_rule",
        ),
        (
            json!({"rule": "match_rate_below", "notify": slack}),
            "missing_threshold",
        ),
        (
            json!({"rule": "match_rate_below", "threshold": 150, "notify": slack}),
            "invalid_threshold",
        ),
        (
            json!({"rule": "refusals_above", "threshold": 2.5, "notify": slack}),
            "invalid_threshold",
        ),
        (
            json!({"rule": "match_rate_below", "threshold": "abc", "notify": slack}),
            "invalid_threshold",
        ),
        (
            json!({"rule": "postback_silence", "threshold": 5, "notify": slack}),
            "invalid_threshold",
        ),
        (
            json!({"rule": "match_rate_below", "threshold": 50, "window_minutes": 1, "notify": slack}),
            "invalid_window",
        ),
        (
            json!({"rule": "postback_silence", "window_minutes": 20000, "notify": slack}),
            "invalid_window",
        ),
        (
            json!({"rule": "outbox_backlog", "threshold": 100, "window_minutes": 60, "notify": slack}),
            "invalid_window",
        ),
        (
            json!({"rule": "dead_deliveries", "source": src["id"], "notify": slack}),
            "invalid_source",
        ),
        (
            json!({"rule": "refusals_above", "threshold": 1, "source": 42, "notify": slack}),
            "unknown_source",
        ),
        (
            json!({"rule": "refusals_above", "threshold": 1, "min_interval_minutes": 0, "notify": slack}),
            "invalid_interval",
        ),
        (
            json!({"rule": "refusals_above", "threshold": 1}),
            "missing_notify",
        ),
        (
            json!({"rule": "refusals_above", "threshold": 1, "notify": {"type": "email", "url": "x"}}),
            "invalid_notify",
        ),
        (
            json!({"rule": "refusals_above", "threshold": 1, "notify": {"type": "slack"}}),
            "invalid_notify",
        ),
        (
            json!({"rule": "refusals_above", "threshold": 1, "notify": {"type": "telegram", "bot_token": "nope", "chat_id": 1}}),
            "invalid_notify",
        ),
        (
            json!({"rule": "refusals_above", "threshold": 1, "notify": {"type": "telegram", "bot_token": BOT_TOKEN, "chat_id": "my chat"}}),
            "invalid_notify",
        ),
        (
            json!({"rule": "refusals_above", "threshold": 1, "notify": {"type": "webhook", "url": "https://ops.example.com/h"}}),
            "invalid_notify",
        ),
        (
            json!({"rule": "refusals_above", "threshold": 1, "notify": {"type": "slack", "url": "https://hooks.slack.com/x", "secret": "whsec_x"}}),
            "invalid_notify",
        ),
        // The SSRF guard: loopback targets need allow_private_destinations.
        (
            json!({"rule": "refusals_above", "threshold": 1, "notify": {"type": "slack", "url": "http://127.0.0.1:9/hook"}}),
            "private_destination",
        ),
        (
            json!({"rule": "refusals_above", "threshold": 1, "notify": {"type": "telegram", "bot_token": BOT_TOKEN, "chat_id": 5, "base_url": "http://10.0.0.8:8080"}}),
            "private_destination",
        ),
        (
            json!({"rule": "refusals_above", "threshold": 1, "notify": {"type": "webhook", "url": "http://[::1]/h", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}),
            "private_destination",
        ),
    ] {
        let r = s
            .admin(Method::POST, "/api/v1/alerts", Some(body.clone()))
            .await;
        assert_eq!(r.status, 400, "{body}: {}", text(&r));
        assert_eq!(r.json()["error"], code, "{body}: {}", text(&r));
        assert!(
            r.json()["message"].as_str().unwrap().len() > 20,
            "{}",
            text(&r)
        );
        assert!(!text(&r).contains(BOT_TOKEN));
    }
    let r = s
        .admin(Method::POST, "/api/v1/alerts", Some(json!({"rule": "disk_free_below", "threshold": 500, "notify": {"type": "webhook", "url": "https://ops.example.com/h", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}})))
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    assert_eq!(r.json()["notify"]["secret"], "whsec_MfKQ…");
    assert_eq!(r.json()["window_minutes"], Value::Null);
    s.stop().await;
}

fn cli(base: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postbackd"))
        .args(args)
        .args(["--server", base])
        .env("POSTBACKD_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn doctor_and_replay_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = spawn_server(dir.path());
    let base = srv.base.clone();
    let c = HttpClient::new();
    let src = call(
        &c,
        &base,
        Method::POST,
        "/api/v1/sources",
        Some(json!({"name": "net", "preset": "cake"})),
    )
    .await
    .json();
    let url = src["postback_url"].as_str().unwrap().to_string();
    let (ok, out) = cli(&base, &["doctor", &url]);
    assert!(ok && out.contains("no problems found"), "{out}");
    let bad = url.replace("#s2#", "{sub1}");
    let (ok, out) = cli(&base, &["doctor", &bad]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(
            "foreign_macro_syntax [click_id]: `{sub1}` is written in another network's macro syntax"
        ),
        "{out}"
    );
    assert!(out.contains("fix: write click_id=#s2#"), "{out}");
    assert!(out.contains("1 problem(s) found"), "{out}");

    // Three refused postbacks (the click ID under `subid`), a fix, a replay.
    let link = call(
        &c,
        &base,
        Method::POST,
        "/api/v1/links",
        Some(json!({"destination": "https://offer.example/?s={click_id}", "source": 1})),
    )
    .await
    .json();
    let ids = clicks(&c, &base, link["slug"].as_str().unwrap(), 3).await;
    let key = src["key"].as_str().unwrap();
    for (i, id) in ids.iter().enumerate() {
        let r = c
            .send(
                Method::GET,
                &format!("{base}/p/{key}?subid={id}&price=4&leadid=L{i}"),
                &[],
                None,
            )
            .await
            .unwrap();
        assert_eq!(r.status, 400);
    }
    call(
        &c,
        &base,
        Method::PATCH,
        "/api/v1/sources/1",
        Some(json!({"params": {"click_id": "subid"}})),
    )
    .await;
    let (ok, out) = cli(
        &base,
        &[
            "replay",
            "--source",
            "1",
            "--result",
            "missing_click_id",
            "--since",
            "0",
        ],
    );
    assert!(ok, "{out}");
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.contains(": done (") && last.contains("replayed 3, created 3, matched 3"),
        "{out}"
    );
    let (ok, out) = cli(&base, &["replay", "--source", "9"]);
    assert!(!ok && out.contains("unknown_source"), "{out}");
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
}

#[tokio::test]
async fn source_health_names_literal_macros_from_refused_requests() {
    let s = TestServer::start_with(no_limits).await;
    let src = s
        .source(json!({"name": "Everflow", "preset": "everflow"}))
        .await;
    for i in 0..4 {
        let r = s
            .postback(
                &src,
                &format!("click_id={{sub1}}&payout=1&conversion_id=C{i}"),
            )
            .await;
        assert_eq!(r.json()["error"], "unsubstituted_macro", "{}", text(&r));
    }
    let r = s.postback(&src, "sub1=abc&payout=-3").await;
    assert_eq!(r.json()["error"], "invalid_amount");
    let h = s
        .admin(
            Method::GET,
            &format!("/api/v1/sources/{}/health", src["id"]),
            None,
        )
        .await
        .json();
    assert_eq!(
        h["refusals_24h"],
        json!({"invalid_amount": 1, "unsubstituted_macro": 4})
    );
    assert_eq!(h["windows"][1]["refused"], 5);
    let f = &h["findings"];
    assert_eq!(f[0]["code"], "literal_macro", "{h}");
    assert_eq!(f[0]["param"], "click_id");
    assert_eq!(f[0]["count"], 4);
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .contains("carried the literal macro `{sub1}` in `click_id`"),
        "{h}"
    );
    assert_eq!(f[1]["code"], "invalid_amount", "{h}");
    assert!(
        f[1]["message"].as_str().unwrap().contains("negative"),
        "{h}"
    );
    let r = s
        .admin(Method::GET, "/api/v1/sources/77/health", None)
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (404, json!("unknown_source"))
    );
    s.stop().await;
}

#[tokio::test]
async fn a_failing_notify_target_is_retried_and_a_refusing_one_shown_dead() {
    let flaky = Mock::start(Arc::new(|_, n| {
        if n == 0 {
            (
                503,
                vec![("retry-after", "0".to_string())],
                "try later".to_string(),
            )
        } else {
            (200, vec![], "ok".to_string())
        }
    }))
    .await;
    let gone = Mock::start(Arc::new(|_, _| (404, vec![], "no_service".to_string()))).await;
    let s = TestServer::start_with(|c| {
        no_limits(c);
        c.allow_private_destinations = true;
        c.upkeep_interval = Duration::from_millis(200);
        c.forward.backoff_base = Duration::from_millis(100);
        c.forward.backoff_cap = Duration::from_millis(200);
    })
    .await;
    let src = s.source(json!({"name": "net"})).await;
    for m in [&flaky, &gone] {
        let r = s
            .admin(
                Method::POST,
                "/api/v1/alerts",
                Some(
                    json!({"rule": "refusals_above", "threshold": 0, "source": src["id"],
                    "notify": {"type": "slack", "url": format!("{}/services/T/B/C", m.base)}}),
                ),
            )
            .await;
        assert_eq!(r.status, 201, "{}", text(&r));
    }
    assert_eq!(s.postback(&src, "payout=1").await.status, 400);
    let got = wait_requests(&flaky, 2).await;
    assert_eq!(got[0].body, got[1].body, "the same message, retried");
    wait_requests(&gone, 1).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let (delivered, dead) = loop {
        let d = s
            .admin(Method::GET, "/api/v1/deliveries?state=delivered", None)
            .await
            .json();
        let x = s
            .admin(Method::GET, "/api/v1/deliveries?state=dead", None)
            .await
            .json();
        if !d["items"].as_array().unwrap().is_empty() && !x["items"].as_array().unwrap().is_empty()
        {
            break (d, x);
        }
        assert!(Instant::now() < deadline, "{d} {x}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delivered["items"][0]["attempts"], 2, "{delivered}");
    assert_eq!(delivered["items"][0]["alert"], 1);
    assert!(
        delivered["items"][0]["notice"]
            .as_str()
            .unwrap()
            .contains("refused postbacks")
    );
    assert_eq!(dead["items"][0]["alert"], 2, "{dead}");
    assert_eq!(dead["items"][0]["last_status"], 404);
    // A dead notification is not a dead delivery the alerts count.
    let m = text(&s.get("/metrics").await);
    assert!(m.contains("postbackd_dead_deliveries_total 0"), "{m}");
    // The server is still up and judging.
    assert_eq!(s.get("/healthz").await.status, 200);
    s.stop().await;
}

#[test]
fn the_readme_lists_every_doctor_code() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for code in postbackd::inbound::doctor::CODES {
        assert!(
            readme.contains(&format!("| `{code}` |")),
            "README has no row for {code}"
        );
    }
}
