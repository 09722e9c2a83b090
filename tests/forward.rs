//! Forwarding over real HTTP: each destination type against a loopback mock
//! platform (exact URL, headers, JSON), the retry/dead/replay paths, a
//! platform outage, and kill -9 with a non-empty queue.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;
use postbackd::config::Config;
use postbackd::forward::meta;
use postbackd::util::client::HttpClient;
use postbackd::util::signing;
use serde_json::{Value, json};

use crate::durability::spawn_server_with;
use crate::mock::{Mock, Recorded};
use crate::util::{TOKEN, TestServer, text};

fn fast(c: &mut Config) {
    c.allow_private_destinations = true;
    c.forward.backoff_base = Duration::from_millis(50);
    c.forward.backoff_cap = Duration::from_millis(400);
}

async fn destination(s: &TestServer, body: Value) -> Value {
    let r = s
        .admin(Method::POST, "/api/v1/destinations", Some(body))
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    r.json()
}

/// Poll until `n` deliveries are in `state` (or panic after `secs`).
async fn wait_state(s: &TestServer, state: &str, n: usize, secs: u64) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = s
                .admin(
                    Method::GET,
                    &format!("/api/v1/deliveries?state={state}&limit=500{cursor}"),
                    None,
                )
                .await
                .json();
            all.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        if all.len() >= n {
            return all;
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let any = s
                .admin(Method::GET, "/api/v1/deliveries?limit=20", None)
                .await;
            panic!(
                "{} of {n} deliveries {state} after {secs}s: {}",
                all.len(),
                text(&any)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A source, a link, a click with ad-platform IDs, and a matched purchase.
async fn conversion(s: &TestServer, source: &Value, slug: &str, txid: &str, extra: &str) -> String {
    let r = s
        .send(
            Method::GET,
            &format!("/c/{slug}?gclid=G-{txid}&fbclid=FB{txid}&ttclid=TT{txid}&utm_source=fb&sub=TS{txid}"),
            &[
                ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) test"),
                ("cookie", "_fbp=fb.1.1700000000000.987654321"),
            ],
            b"",
        )
        .await;
    let click = r.header("x-postbackd-click-id").unwrap().to_string();
    let p = s
        .postback(
            source,
            &format!("click_id={click}&amount=12.50&currency=EUR&transaction_id={txid}{extra}"),
        )
        .await;
    assert_eq!(p.json()["result"], "matched", "{}", text(&p));
    p.json()["conversion_id"].as_str().unwrap().to_string()
}

async fn setup(s: &TestServer) -> (Value, String) {
    s.source_and_link(json!({"name": "net"})).await
}

#[tokio::test(flavor = "multi_thread")]
async fn meta_request_and_hashing() {
    let s = TestServer::start_with(fast).await;
    let mock = Mock::ok().await;
    let d = destination(
        &s,
        json!({"name": "pixel", "type": "meta", "base_url": mock.base,
               "config": {"pixel_id": "1234567890", "access_token": "EAAB-secret-token", "test_event_code": "TEST123"}}),
    )
    .await;
    assert_eq!(d["config"]["access_token"], "EAAB…", "secrets are masked");
    let (src, slug) = setup(&s).await;
    let conv = conversion(&s, &src, &slug, "M1", "&email=%20Joe@Email.com&phone=%2B1%20(206)%20206-2006&country=US&city=Seattle&state=WA&zip=98101").await;
    wait_state(&s, "delivered", 1, 10).await;
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.target,
        format!(
            "/{}/1234567890/events",
            postbackd::forward::platforms::META_DEFAULT_API_VERSION
        )
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let b = r.json();
    assert_eq!(b["access_token"], "EAAB-secret-token");
    assert_eq!(b["test_event_code"], "TEST123");
    let e = &b["data"][0];
    assert_eq!(e["event_name"], "Purchase");
    assert_eq!(
        e["event_id"],
        conv.as_str(),
        "platform dedup on the conversion ID"
    );
    assert_eq!(e["custom_data"]["currency"], "EUR");
    assert_eq!(e["custom_data"]["value"], 12.5);
    let u = &e["user_data"];
    assert_eq!(u["client_ip_address"], "127.0.0.1");
    assert_eq!(
        u["client_user_agent"],
        "Mozilla/5.0 (X11; Linux x86_64) test"
    );
    assert_eq!(u["fbp"], "fb.1.1700000000000.987654321");
    assert!(
        u["fbc"].as_str().unwrap().starts_with("fb.1.")
            && u["fbc"].as_str().unwrap().ends_with(".FBM1")
    );
    // Hashed per Meta's rules: the testdata vectors' values.
    let first = |v: &Value| v.as_array().map(|a| a[0].clone()).unwrap_or(v.clone());
    assert_eq!(
        first(&u["em"]),
        json!(meta::hash("em", "Joe@Email.com").unwrap())
    );
    assert_eq!(
        first(&u["em"]),
        "971fa2e631db2a508b3fc6ed98016d354e61ecf0d41268e8ab6396771233d293"
    );
    assert_eq!(
        first(&u["ct"]),
        "3151a8f227c0e11fd9a7fd1aa24ebfee734503dea095c22c3b2fae09d62eeb25"
    );
    assert_eq!(
        first(&u["st"]),
        "87b810070b7c739690268360ea392429368787010a558a1837643058d2437dce"
    );
    assert_eq!(
        first(&u["country"]),
        json!(meta::hash("country", "US").unwrap())
    );
    assert_eq!(
        first(&u["ph"]),
        json!(meta::hash("ph", "+1 (206) 206-2006").unwrap())
    );
    let delivered = &wait_state(&s, "delivered", 1, 1).await[0];
    assert_eq!(delivered["attempts"], 1);
    assert_eq!(delivered["last_status"], 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn google_ads_oauth_and_upload() {
    let s = TestServer::start_with(fast).await;
    let mock = Mock::start(Arc::new(|r: &Recorded, _| {
        if r.path() == "/token" {
            (
                200,
                vec![],
                json!({"access_token": "ya29.test", "expires_in": 3599, "token_type": "Bearer"})
                    .to_string(),
            )
        } else {
            (200, vec![], json!({"results": [{}]}).to_string())
        }
    }))
    .await;
    destination(
        &s,
        json!({"name": "gads", "type": "google_ads", "base_url": mock.base, "config": {
            "customer_id": "1234567890", "conversion_action": "customers/1234567890/conversionActions/555",
            "developer_token": "dev-token-secret", "client_id": "cid.apps.googleusercontent.com",
            "client_secret": "client-secret", "refresh_token": "1//refresh-secret", "login_customer_id": "9876543210"}}),
    )
    .await;
    let (src, slug) = setup(&s).await;
    let c1 = conversion(&s, &src, &slug, "G1", "").await;
    wait_state(&s, "delivered", 1, 10).await;
    let c2 = conversion(&s, &src, &slug, "G2", "").await;
    wait_state(&s, "delivered", 2, 10).await;
    let reqs = mock.requests();
    let tokens: Vec<_> = reqs.iter().filter(|r| r.path() == "/token").collect();
    assert_eq!(
        tokens.len(),
        1,
        "the access token is cached until it expires"
    );
    let form: Vec<(String, String)> = form_urlencoded::parse(&tokens[0].body)
        .into_owned()
        .collect();
    assert!(form.contains(&("grant_type".into(), "refresh_token".into())));
    assert!(form.contains(&("refresh_token".into(), "1//refresh-secret".into())));
    let uploads: Vec<_> = reqs.iter().filter(|r| r.path() != "/token").collect();
    assert_eq!(uploads.len(), 2);
    for (u, (conv, gclid)) in uploads.iter().zip([(&c1, "G-G1"), (&c2, "G-G2")]) {
        assert_eq!(
            u.target,
            format!(
                "/{}/customers/1234567890:uploadClickConversions",
                postbackd::forward::platforms::GOOGLE_ADS_DEFAULT_API_VERSION
            )
        );
        assert_eq!(u.header("authorization"), Some("Bearer ya29.test"));
        assert_eq!(u.header("developer-token"), Some("dev-token-secret"));
        assert_eq!(u.header("login-customer-id"), Some("9876543210"));
        let b = u.json();
        assert_eq!(b["partialFailure"], true);
        let c = &b["conversions"][0];
        assert_eq!(c["gclid"], gclid);
        assert_eq!(c["orderId"], conv.as_str());
        assert_eq!(
            c["conversionAction"],
            "customers/1234567890/conversionActions/555"
        );
        assert_eq!(c["currencyCode"], "EUR");
        assert_eq!(c["conversionValue"], 12.5);
        let dt = c["conversionDateTime"].as_str().unwrap();
        assert!(
            dt.len() == 25 && dt.ends_with("+00:00") && &dt[10..11] == " ",
            "{dt}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ga4_tiktok_webhook_postback_requests() {
    let s = TestServer::start_with(fast).await;
    let ga4 = Mock::ok().await;
    let tiktok = Mock::start(Arc::new(|_, _| {
        (200, vec![], json!({"code": 0, "message": "OK"}).to_string())
    }))
    .await;
    let hook = Mock::ok().await;
    let pb = Mock::ok().await;
    let secret = signing::generate_secret();
    destination(&s, json!({"name": "ga", "type": "ga4", "base_url": ga4.base, "config": {"measurement_id": "G-ABC123", "api_secret": "ga-secret"}})).await;
    destination(&s, json!({"name": "tt", "type": "tiktok", "base_url": tiktok.base, "config": {"pixel_code": "CPIXEL", "access_token": "tt-secret"}})).await;
    destination(&s, json!({"name": "hook", "type": "webhook", "config": {"url": format!("{}/hooks/pbd", hook.base), "secret": secret}})).await;
    destination(&s, json!({"name": "ts", "type": "postback", "config": {"url_template": format!("{}/cb?cid={{sub}}&payout={{amount}}&cur={{currency}}&tx={{transaction_id}}&st={{status}}", pb.base)}})).await;
    let (src, slug) = setup(&s).await;
    let conv = conversion(&s, &src, &slug, "T1", "").await;
    wait_state(&s, "delivered", 4, 10).await;

    let g = &ga4.requests()[0];
    assert_eq!(g.method, "POST");
    assert_eq!(
        g.target,
        "/mp/collect?measurement_id=G-ABC123&api_secret=ga-secret"
    );
    let b = g.json();
    assert_eq!(b["events"][0]["name"], "purchase");
    assert_eq!(b["events"][0]["params"]["transaction_id"], conv.as_str());
    assert_eq!(b["events"][0]["params"]["currency"], "EUR");
    assert!(b["client_id"].as_str().unwrap().contains('.'));
    assert!(b["timestamp_micros"].as_u64().is_some());

    let t = &tiktok.requests()[0];
    assert_eq!(t.target, "/open_api/v1.3/event/track/");
    assert_eq!(t.header("access-token"), Some("tt-secret"));
    let b = t.json();
    assert_eq!(b["event_source"], "web");
    assert_eq!(b["event_source_id"], "CPIXEL");
    let e = &b["data"][0];
    assert_eq!(e["event_id"], conv.as_str());
    assert_eq!(e["user"]["ttclid"], "TTT1");
    assert_eq!(e["user"]["ip"], "127.0.0.1");
    assert_eq!(e["properties"]["currency"], "EUR");

    let h = &hook.requests()[0];
    assert_eq!(h.target, "/hooks/pbd");
    let key = signing::decode_secret(&secret).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let v = signing::verify_webhook(
        h.header("webhook-id"),
        h.header("webhook-timestamp"),
        h.header("webhook-signature"),
        &h.body,
        &[key],
        now,
        300,
    );
    assert!(v.is_ok(), "webhook signature verifies: {v:?}");
    let b = h.json();
    assert_eq!(b["type"], "conversion.created");
    assert_eq!(b["id"].as_str(), h.header("webhook-id"));
    assert_eq!(b["data"]["conversion_id"], conv.as_str());
    assert_eq!(b["data"]["amount"], "12.50");

    let p = &pb.requests()[0];
    assert_eq!(p.method, "GET");
    assert_eq!(
        p.target,
        "/cb?cid=TST1&payout=12.50&cur=EUR&tx=T1&st=approved"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_500_then_delivers_exactly_once() {
    let s = TestServer::start_with(fast).await;
    let mock = Mock::start(Arc::new(|_, n| {
        if n < 3 {
            (500, vec![], "{\"error\":\"down\"}".into())
        } else {
            (200, vec![], "{}".into())
        }
    }))
    .await;
    destination(&s, json!({"name": "m", "type": "meta", "base_url": mock.base, "config": {"pixel_id": "1", "access_token": "t"}})).await;
    let (src, slug) = setup(&s).await;
    let conv = conversion(&s, &src, &slug, "R1", "").await;
    let d = &wait_state(&s, "delivered", 1, 15).await[0];
    assert_eq!(d["attempts"], 4);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 4);
    assert!(
        reqs.iter()
            .all(|r| r.json()["data"][0]["event_id"] == conv.as_str()),
        "the same event ID on every attempt"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mock.requests().len(), 4, "delivered once, never re-sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_is_honoured() {
    let s = TestServer::start_with(fast).await;
    let mock = Mock::start(Arc::new(|_, n| {
        if n == 0 {
            (429, vec![("retry-after", "2".into())], "{}".into())
        } else {
            (200, vec![], "{}".into())
        }
    }))
    .await;
    destination(&s, json!({"name": "m", "type": "meta", "base_url": mock.base, "config": {"pixel_id": "1", "access_token": "t"}})).await;
    let (src, slug) = setup(&s).await;
    conversion(&s, &src, &slug, "RA", "").await;
    wait_state(&s, "delivered", 1, 15).await;
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at.duration_since(reqs[0].at);
    assert!(
        gap >= Duration::from_millis(1900),
        "waited {gap:?}, Retry-After said 2 s (backoff alone is 50 ms)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn permanent_400_goes_dead_then_replay_after_fix() {
    let s = TestServer::start_with(fast).await;
    let mock = Mock::start(Arc::new(|r: &Recorded, _| {
        if r.target.starts_with("/v1/") || r.json()["access_token"] == "bad" {
            (400, vec![], json!({"error": {"message": "Invalid OAuth access token - Cannot parse access token", "code": 190}}).to_string())
        } else {
            (200, vec![], "{}".into())
        }
    }))
    .await;
    let d = destination(&s, json!({"name": "m", "type": "meta", "base_url": mock.base, "config": {"pixel_id": "1", "access_token": "bad"}})).await;
    let (src, slug) = setup(&s).await;
    conversion(&s, &src, &slug, "D1", "").await;
    let dead = &wait_state(&s, "dead", 1, 10).await[0];
    assert_eq!(dead["attempts"], 1, "a 400 is not retried");
    assert_eq!(dead["last_status"], 400);
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap()
            .contains("Invalid OAuth access token"),
        "{dead}"
    );
    // Fix the config, replay the dead delivery.
    let id = d["id"].as_u64().unwrap();
    let p = s
        .admin(
            Method::PATCH,
            &format!("/api/v1/destinations/{id}"),
            Some(json!({"config": {"pixel_id": "1", "access_token": "good"}})),
        )
        .await;
    assert_eq!(p.status, 200, "{}", text(&p));
    let r = s
        .admin(
            Method::POST,
            &format!("/api/v1/deliveries/{}/retry", dead["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let ok = &wait_state(&s, "delivered", 1, 10).await[0];
    assert_eq!(ok["id"], dead["id"]);
    assert_eq!(ok["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn outage_with_1000_conversions_then_all_delivered_once() {
    let s = TestServer::start_with(|c| {
        fast(c);
        c.rate.postback_ip = None;
        c.rate.source_default = None;
        c.rate.click_ip = None;
    })
    .await;
    // The platform is down: its port is closed.
    let down = Mock::ok().await;
    let addr = down.addr;
    down.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let secret = signing::generate_secret();
    destination(&s, json!({"name": "hook", "type": "webhook", "config": {"url": format!("http://{addr}/h"), "secret": secret}})).await;
    let (src, slug) = setup(&s).await;
    let s = Arc::new(s);
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (s, src, slug) = (s.clone(), src.clone(), slug.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..125 {
                let click = s.click(&slug, "").await;
                let r = s
                    .postback(
                        &src,
                        &format!("click_id={click}&amount=1&transaction_id=O{w}-{i}"),
                    )
                    .await;
                assert_eq!(r.status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = text(&s.get("/metrics").await);
    assert!(m.contains("postbackd_outbox_pending 1000"), "{m}");
    // The platform comes back on the same port.
    let up = Mock::start_on(addr, Arc::new(|_, _| (204, vec![], String::new()))).await;
    wait_state(&s, "delivered", 1000, 60).await;
    let ids: Vec<String> = up
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_string())
        .collect();
    let convs: HashSet<String> = up
        .requests()
        .iter()
        .map(|r| {
            r.json()["data"]["conversion_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(convs.len(), 1000, "every conversion arrived");
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "every event ID seen once");
    assert_eq!(ids.len(), 1000);
    let m = text(&s.get("/metrics").await);
    assert!(m.contains("postbackd_outbox_pending 0"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ssrf_guard_refuses_private_targets() {
    let s = TestServer::start().await; // allow_private_destinations = false
    let secret = signing::generate_secret();
    for (ty, config, base) in [
        (
            "webhook",
            json!({"url": "http://127.0.0.1:9/h", "secret": secret}),
            None,
        ),
        (
            "webhook",
            json!({"url": "http://[::ffff:10.0.0.1]/h", "secret": secret}),
            None,
        ),
        (
            "webhook",
            json!({"url": "http://localhost:9/h", "secret": secret}),
            None,
        ),
        (
            "postback",
            json!({"url_template": "http://169.254.169.254/latest/meta-data?c={click_id}"}),
            None,
        ),
        (
            "meta",
            json!({"pixel_id": "1", "access_token": "t"}),
            Some("http://192.168.1.10:8080"),
        ),
    ] {
        let mut body = json!({"name": "x", "type": ty, "config": config});
        if let Some(b) = base {
            body["base_url"] = json!(b);
        }
        let r = s
            .admin(Method::POST, "/api/v1/destinations", Some(body.clone()))
            .await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (400, json!("private_destination")),
            "{body}: {}",
            text(&r)
        );
    }
    // Public names are accepted at save time.
    let r = s
        .admin(Method::POST, "/api/v1/destinations", Some(json!({"name": "x", "type": "webhook", "config": {"url": "https://hooks.example.com/h", "secret": secret}})))
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_hold_pending_until_approved() {
    let s = TestServer::start_with(fast).await;
    let mock = Mock::ok().await;
    destination(&s, json!({"name": "m", "type": "meta", "base_url": mock.base, "config": {"pixel_id": "1", "access_token": "t"}})).await;
    let lead_only = Mock::ok().await;
    destination(&s, json!({"name": "leads", "type": "meta", "base_url": lead_only.base, "config": {"pixel_id": "2", "access_token": "t"}, "filter": {"types": ["lead"]}})).await;
    let (src, slug) = setup(&s).await;
    let click = s.click(&slug, "").await;
    let r = s
        .postback(
            &src,
            &format!("click_id={click}&amount=5&transaction_id=P1&status=pending"),
        )
        .await;
    assert_eq!(r.json()["result"], "matched");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(mock.requests().is_empty(), "pending conversions are held");
    let r = s
        .postback(
            &src,
            &format!("click_id={click}&amount=5&transaction_id=P1&status=approved"),
        )
        .await;
    assert_eq!(r.json()["result"], "updated");
    wait_state(&s, "delivered", 1, 10).await;
    assert_eq!(mock.requests().len(), 1);
    assert!(
        lead_only.requests().is_empty(),
        "a purchase does not match a lead-only filter"
    );
    // A later refund is not re-sent to an ad platform (approved only).
    s.postback(
        &src,
        &format!("click_id={click}&amount=5&transaction_id=P1&status=refunded"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mock.requests().len(), 1);
}

/// kill -9 with deliveries queued: after restart, all are delivered.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_with_a_queue_then_all_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let down = Mock::ok().await;
    let addr = down.addr;
    down.stop();
    let args = [
        "--allow-private-destinations",
        "true",
        "--forward-retry-base-ms",
        "100",
        "--forward-retry-cap-secs",
        "1",
    ];
    let mut srv = spawn_server_with(dir.path(), &args);
    let http = HttpClient::new();
    let admin = |base: String, m: Method, p: &'static str, b: Option<Value>| {
        let http = http.clone();
        async move {
            let r = http
                .json(m, &format!("{base}{p}"), Some(TOKEN), b.as_ref())
                .await
                .unwrap();
            assert!(r.status < 300, "{p}: {}", String::from_utf8_lossy(&r.body));
            r.json()
        }
    };
    let src = admin(
        srv.base.clone(),
        Method::POST,
        "/api/v1/sources",
        Some(json!({"name": "n"})),
    )
    .await;
    admin(srv.base.clone(), Method::POST, "/api/v1/destinations", Some(json!({"name": "h", "type": "webhook", "config": {"url": format!("http://{addr}/h"), "secret": signing::generate_secret()}}))).await;
    let key = src["key"].as_str().unwrap();
    for i in 0..200 {
        let r = http
            .send(
                Method::GET,
                &format!("{}/p/{key}?click_id=k{i}&transaction_id=K{i}", srv.base),
                &[],
                None,
            )
            .await
            .unwrap();
        assert_eq!(r.status, 202);
    }
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
    let up = Mock::start_on(addr, Arc::new(|_, _| (200, vec![], "{}".into()))).await;
    let mut srv = spawn_server_with(dir.path(), &args);
    let start = Instant::now();
    loop {
        let got: HashSet<String> = up
            .requests()
            .iter()
            .map(|r| {
                r.json()["data"]["transaction_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        if got.len() == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} of 200 delivered after restart",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
}

/// Poll until the mock has seen `n` requests (or panic after `secs`).
async fn wait_requests(mock: &Mock, n: usize, secs: u64) {
    let start = Instant::now();
    while mock.requests().len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{} of {n} requests after {secs}s",
            mock.requests().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The one delivery there is.
async fn only_delivery(s: &TestServer) -> Value {
    let page = s
        .admin(Method::GET, "/api/v1/deliveries?limit=10", None)
        .await
        .json();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    items[0].clone()
}

/// Poll one delivery until `done` holds (or panic after `secs`).
async fn wait_delivery(
    s: &TestServer,
    id: &str,
    secs: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let d = s
            .admin(Method::GET, &format!("/api/v1/deliveries/{id}"), None)
            .await
            .json();
        if done(&d) {
            return d;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "after {secs}s: {d}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn retry(s: &TestServer, id: &str) -> Value {
    let r = s
        .admin(
            Method::POST,
            &format!("/api/v1/deliveries/{id}/retry"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    r.json()
}

/// The outcomes in a delivery's log, oldest first.
fn log_outcomes(d: &Value) -> Vec<&str> {
    d["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect()
}

/// A retry while an attempt is in flight is that attempt: the platform's
/// 200 to it is recorded and nothing is sent a second time.
#[tokio::test(flavor = "multi_thread")]
async fn retry_while_in_flight_sends_once() {
    let s = TestServer::start_with(fast).await;
    let mock = Mock::slow(
        Duration::from_secs(2),
        Arc::new(|_, _| (200, vec![], "{}".into())),
    )
    .await;
    destination(&s, json!({"name": "m", "type": "meta", "base_url": mock.base, "config": {"pixel_id": "1", "access_token": "t"}})).await;
    let (src, slug) = setup(&s).await;
    conversion(&s, &src, &slug, "IF1", "").await;
    // Sent, and unanswered for 2 s: the attempt is in flight.
    wait_requests(&mock, 1, 10).await;
    let id = only_delivery(&s).await["id"].as_str().unwrap().to_string();
    let answer = retry(&s, &id).await;
    wait_state(&s, "delivered", 1, 15).await;
    // A second send would start as soon as the first is answered; give it
    // time to arrive.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        mock.requests().len(),
        1,
        "a retry during an in-flight attempt must not send twice"
    );
    let d = wait_delivery(&s, &id, 1, |_| true).await;
    assert_eq!(d["state"], "delivered", "{d}");
    assert_eq!(d["attempts"], 1, "{d}");
    assert_eq!(d["last_status"], 200, "{d}");
    assert_eq!(log_outcomes(&d), ["delivered", "retry_requested"], "{d}");
    assert_eq!(answer["action"], "already_due", "{answer}");
    assert_eq!(answer["state"], "pending", "{answer}");
}

/// A retry while an attempt is in flight that then fails retryably: the
/// failure is logged and the next attempt follows at once (not after the
/// backoff), never alongside the first.
#[tokio::test(flavor = "multi_thread")]
async fn retry_while_in_flight_then_500_retries_once_promptly() {
    let s = TestServer::start_with(|c| {
        fast(c);
        // Far beyond the test's patience: only the retry request makes
        // the second attempt prompt.
        c.forward.backoff_base = Duration::from_secs(120);
        c.forward.backoff_cap = Duration::from_secs(120);
    })
    .await;
    let mock = Mock::slow(
        Duration::from_secs(1),
        Arc::new(|_, n| {
            if n == 0 {
                (500, vec![], "{\"error\":\"down\"}".into())
            } else {
                (200, vec![], "{}".into())
            }
        }),
    )
    .await;
    destination(&s, json!({"name": "m", "type": "meta", "base_url": mock.base, "config": {"pixel_id": "1", "access_token": "t"}})).await;
    let (src, slug) = setup(&s).await;
    conversion(&s, &src, &slug, "IF2", "").await;
    wait_requests(&mock, 1, 10).await;
    let id = only_delivery(&s).await["id"].as_str().unwrap().to_string();
    retry(&s, &id).await;
    wait_state(&s, "delivered", 1, 15).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2, "one attempt in flight, one prompt retry");
    assert!(
        reqs[1].at.duration_since(reqs[0].at) >= Duration::from_millis(950),
        "the second attempt waited for the first's answer"
    );
    let d = wait_delivery(&s, &id, 1, |_| true).await;
    assert_eq!(
        d["attempts"], 2,
        "the in-flight attempt's 500 is recorded: {d}"
    );
    assert_eq!(
        log_outcomes(&d),
        ["retry", "retry_requested", "delivered"],
        "{d}"
    );
}

/// A retry of a delivered delivery sends it again, once, and says so.
#[tokio::test(flavor = "multi_thread")]
async fn retry_of_delivered_is_a_resend() {
    let s = TestServer::start_with(fast).await;
    let mock = Mock::ok().await;
    destination(&s, json!({"name": "m", "type": "meta", "base_url": mock.base, "config": {"pixel_id": "1", "access_token": "t"}})).await;
    let (src, slug) = setup(&s).await;
    let conv = conversion(&s, &src, &slug, "RS1", "").await;
    let id = wait_state(&s, "delivered", 1, 10).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let answer = retry(&s, &id).await;
    assert_eq!(answer["action"], "resend", "{answer}");
    assert_eq!(answer["state"], "pending", "{answer}");
    let d = wait_delivery(&s, &id, 10, |d| {
        d["state"] == "delivered" && d["attempts"] == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2, "sent once more, not twice");
    assert!(
        reqs.iter()
            .all(|r| r.json()["data"][0]["event_id"] == conv.as_str()),
        "the re-send has the same event ID, for the platform's dedup"
    );
    assert_eq!(
        log_outcomes(&d),
        ["delivered", "retry_requested", "delivered"],
        "{d}"
    );
}

/// A retry of a dead delivery queues it again.
#[tokio::test(flavor = "multi_thread")]
async fn retry_of_dead_revives() {
    let s = TestServer::start_with(fast).await;
    let mock = Mock::start(Arc::new(|_, n| {
        if n == 0 {
            (400, vec![], "{\"error\":{\"message\":\"bad\"}}".into())
        } else {
            (200, vec![], "{}".into())
        }
    }))
    .await;
    destination(&s, json!({"name": "m", "type": "meta", "base_url": mock.base, "config": {"pixel_id": "1", "access_token": "t"}})).await;
    let (src, slug) = setup(&s).await;
    conversion(&s, &src, &slug, "DR1", "").await;
    let id = wait_state(&s, "dead", 1, 10).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let answer = retry(&s, &id).await;
    assert_eq!(answer["action"], "revived", "{answer}");
    let d = wait_delivery(&s, &id, 10, |d| d["state"] == "delivered").await;
    assert_eq!(mock.requests().len(), 2);
    assert_eq!(
        log_outcomes(&d),
        ["dead", "retry_requested", "delivered"],
        "{d}"
    );
}
