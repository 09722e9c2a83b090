use std::io::{Read, Write};
use std::time::{Duration, Instant};

use hyper::Method;
use postbackd::util::signing;
use serde_json::{Value, json};

use crate::util::{TestServer, text};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A signed GET target for `query` at time `ts`.
fn signed(key: &str, secret: &str, query: &str, ts: i64) -> String {
    let k = signing::decode_secret(secret).unwrap();
    let msg = format!("/p/{key}?{query}&ts={ts}");
    let sig = signing::sign_hex(&k, msg.as_bytes());
    format!("{msg}&sig={sig}")
}

async fn signed_source(s: &TestServer) -> (Value, String, String) {
    let src = s
        .source(json!({"name": "signed", "signing": {"generate": true}}))
        .await;
    let secret = src["signing"]["new_secrets"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(src["signing"]["required"], true);
    let l = s
        .link(json!({"destination": "https://n.example/?s={click_id}", "source": src["id"]}))
        .await;
    (src, secret, l["slug"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_get_valid_tampered_wrong_stale_replay() {
    let s = TestServer::start().await;
    let (src, secret, slug) = signed_source(&s).await;
    let key = src["key"].as_str().unwrap();
    // GET shows the secret masked, never in full.
    let got = s
        .admin(Method::GET, &format!("/api/v1/sources/{}", src["id"]), None)
        .await;
    assert!(!text(&got).contains(&secret));

    let click = s.click(&slug, "").await;
    let q = format!("click_id={click}&amount=10&transaction_id=S1");
    let url = signed(key, &secret, &q, now());
    let r = s.get(&url).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["result"], "matched");

    // Replay of the very same request: duplicate, never counted twice.
    let r = s.get(&url).await;
    assert_eq!(
        (r.status, r.json()["result"].clone()),
        (200, json!("duplicate")),
        "{}",
        text(&r)
    );

    // Tampered parameter.
    let r = s.get(&url.replace("amount=10", "amount=99")).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, json!("bad_signature"))
    );
    // Wrong secret.
    let other = signing::generate_secret();
    let r = s
        .get(&signed(
            key,
            &other,
            &format!("click_id={click}&transaction_id=S2"),
            now(),
        ))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, json!("bad_signature"))
    );
    // Unsigned, while signing is required.
    let r = s
        .get(&format!("/p/{key}?click_id={click}&transaction_id=S3"))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, json!("bad_signature"))
    );
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("requires signed postbacks")
    );
    // Stale and far-future timestamps.
    for ts in [now() - 400, now() + 400] {
        let r = s
            .get(&signed(
                key,
                &secret,
                &format!("click_id={click}&transaction_id=S4"),
                ts,
            ))
            .await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (401, json!("stale_signature")),
            "{ts}"
        );
    }
    // One conversion in all; every rejection is in the events log.
    let conv = s
        .admin(Method::GET, "/api/v1/conversions", None)
        .await
        .json();
    assert_eq!(conv["items"].as_array().unwrap().len(), 1);
    assert!(
        conv["items"][0]["extra"].as_array().unwrap().is_empty(),
        "ts and sig are not conversion data"
    );
    let ev = s
        .admin(Method::GET, "/api/v1/events?result=bad_signature", None)
        .await
        .json();
    assert_eq!(ev["items"].as_array().unwrap().len(), 3);
    let ev = s
        .admin(Method::GET, "/api/v1/events?result=stale_signature", None)
        .await
        .json();
    assert_eq!(ev["items"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_with_two_secrets() {
    let s = TestServer::start().await;
    let (src, old, slug) = signed_source(&s).await;
    let id = src["id"].as_u64().unwrap();
    let key = src["key"].as_str().unwrap();
    // Add a second secret, keeping the first by its masked form.
    let masked_old = s
        .admin(Method::GET, &format!("/api/v1/sources/{id}"), None)
        .await
        .json()["signing"]["secrets"][0]
        .as_str()
        .unwrap()
        .to_string();
    let p = s
        .admin(
            Method::PATCH,
            &format!("/api/v1/sources/{id}"),
            Some(json!({"signing": {"secrets": [masked_old], "generate": true}})),
        )
        .await;
    assert_eq!(p.status, 200, "{}", text(&p));
    let new = p.json()["signing"]["new_secrets"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(p.json()["signing"]["secrets"].as_array().unwrap().len(), 2);
    for (i, secret) in [&old, &new].into_iter().enumerate() {
        let click = s.click(&slug, "").await;
        let r = s
            .get(&signed(
                key,
                secret,
                &format!("click_id={click}&transaction_id=R{i}"),
                now(),
            ))
            .await;
        assert_eq!(r.json()["result"], "matched", "secret {i}: {}", text(&r));
    }
    // Retire the old one.
    let masked_new = signing::mask(&new);
    let p = s
        .admin(
            Method::PATCH,
            &format!("/api/v1/sources/{id}"),
            Some(json!({"signing": {"secrets": [masked_new]}})),
        )
        .await;
    assert_eq!(p.json()["signing"]["secrets"].as_array().unwrap().len(), 1);
    let click = s.click(&slug, "").await;
    let r = s
        .get(&signed(
            key,
            &old,
            &format!("click_id={click}&transaction_id=R9"),
            now(),
        ))
        .await;
    assert_eq!(r.status, 401);
    // And signing can be turned off.
    let p = s
        .admin(
            Method::PATCH,
            &format!("/api/v1/sources/{id}"),
            Some(json!({"signing": {"secrets": []}})),
        )
        .await;
    assert_eq!(p.json()["signing"]["required"], false);
    let r = s
        .get(&format!("/p/{key}?click_id={click}&transaction_id=R10"))
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn standard_webhooks_post() {
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/standard_webhooks.json"
    ))
    .expect("tests/data/standard_webhooks.json");
    let v: Value = serde_json::from_str(&raw).unwrap();
    let secret = v["secret"].as_str().unwrap();
    let s = TestServer::start().await;
    let src = s
        .source(json!({"name": "wh", "signing": {"secrets": [secret]}}))
        .await;
    let key = src["key"].as_str().unwrap();
    let path = format!("/p/{key}");
    let payload = v["payload"].as_str().unwrap();
    let k = signing::decode_secret(secret).unwrap();
    // Our signer reproduces the published vector exactly.
    let ts: i64 = v["timestamp"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        signing::sign_webhook(&k, v["id"].as_str().unwrap(), ts, payload.as_bytes()),
        v["signature"]
    );

    // The published request itself: the signature verifies, but it is from
    // 2022, so it is stale (the signature is checked before the time).
    let headers = |id: &str, ts: &str, sig: &str| -> Vec<(String, String)> {
        vec![
            ("content-type".into(), "application/json".into()),
            ("webhook-id".into(), id.into()),
            ("webhook-timestamp".into(), ts.into()),
            ("webhook-signature".into(), sig.into()),
        ]
    };
    let send = |h: Vec<(String, String)>, body: String| {
        let s = &s;
        let path = path.clone();
        async move {
            let hv: Vec<(&str, &str)> = h.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            s.send(Method::POST, &path, &hv, body.as_bytes()).await
        }
    };
    let r = send(
        headers(
            v["id"].as_str().unwrap(),
            v["timestamp"].as_str().unwrap(),
            v["signature"].as_str().unwrap(),
        ),
        payload.to_string(),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, json!("stale_signature")),
        "{}",
        text(&r)
    );
    let r = send(
        headers(
            v["id"].as_str().unwrap(),
            v["timestamp"].as_str().unwrap(),
            v["must_fail"].as_str().unwrap(),
        ),
        payload.to_string(),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, json!("bad_signature"))
    );

    // A fresh, correctly signed conversion.
    let l = s
        .link(json!({"destination": "https://n.example/?s={click_id}", "source": src["id"]}))
        .await;
    let click = s.click(l["slug"].as_str().unwrap(), "").await;
    let body = json!({"click_id": click, "amount": "5.00", "transaction_id": "WH1"}).to_string();
    let t = now();
    let sig = signing::sign_webhook(&k, "msg_1", t, body.as_bytes());
    let r = send(headers("msg_1", &t.to_string(), &sig), body.clone()).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["result"], "matched");
    // Tampered body.
    let r = send(
        headers("msg_1", &t.to_string(), &sig),
        body.replace("5.00", "50.00"),
    )
    .await;
    assert_eq!(r.status, 401);
    // Replay: duplicate.
    let r = send(headers("msg_1", &t.to_string(), &sig), body).await;
    assert_eq!(r.json()["result"], "duplicate");
}

#[tokio::test(flavor = "multi_thread")]
async fn ip_allowlist() {
    let s =
        TestServer::start_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let src = s
        .source(json!({"name": "net", "allow_ips": ["203.0.113.0/24", "2001:db8::/32"]}))
        .await;
    assert_eq!(src["allow_ips"], json!(["203.0.113.0/24", "2001:db8::/32"]));
    let key = src["key"].as_str().unwrap();
    let r = s.get(&format!("/p/{key}?click_id=x1")).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("ip_not_allowed")),
        "{}",
        text(&r)
    );
    assert!(r.json()["message"].as_str().unwrap().contains("127.0.0.1"));
    for (i, xff) in ["203.0.113.77", "2001:db8::9"].into_iter().enumerate() {
        let r = s
            .send(
                Method::GET,
                &format!("/p/{key}?click_id=x2{i}"),
                &[("x-forwarded-for", xff)],
                b"",
            )
            .await;
        assert_eq!(r.status, 202, "{xff}: {}", text(&r));
    }
    let r = s
        .send(
            Method::GET,
            &format!("/p/{key}?click_id=x3"),
            &[("x-forwarded-for", "198.51.100.1")],
            b"",
        )
        .await;
    assert_eq!(r.status, 403);
    let ev = s
        .admin(Method::GET, "/api/v1/events?result=ip_not_allowed", None)
        .await
        .json();
    assert_eq!(ev["items"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn flooded_source_gets_429_other_source_unaffected() {
    let s = TestServer::start().await;
    let a = s
        .source(json!({"name": "a", "rate_limit": {"per_second": 1, "burst": 3}}))
        .await;
    let b = s.source(json!({"name": "b"})).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..8 {
        let r = s.postback(&a, &format!("click_id=c{i}")).await;
        if r.status == 429 {
            assert_eq!(r.json()["error"], "rate_limited");
            retry_after = r.header("retry-after").map(str::to_string);
        }
        statuses.push(r.status);
    }
    assert_eq!(&statuses[..3], &[202, 202, 202], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    let secs: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&secs));
    for i in 0..5 {
        let r = s.postback(&b, &format!("click_id=d{i}")).await;
        assert_eq!(r.status, 202, "source b is unaffected");
    }
    // Rate-limited requests are counted, not stored one by one.
    let ev = s
        .admin(Method::GET, "/api/v1/events?limit=500", None)
        .await
        .json();
    assert_eq!(ev["items"].as_array().unwrap().len(), 8);
    let m = text(&s.get("/metrics").await);
    assert!(
        m.contains("postbackd_rate_limited_total{limit=\"source\"} 5"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn per_ip_click_limit() {
    let s = TestServer::start_with(|c| c.rate.click_ip = Some((1, 2))).await;
    s.link(json!({"slug": "l", "destination": "https://n.example/?s={click_id}"}))
        .await;
    assert_eq!(s.get("/c/l").await.status, 302);
    assert_eq!(s.get("/c/l").await.status, 302);
    let r = s.get("/c/l").await;
    assert_eq!(r.status, 429);
    assert!(r.header("location").is_none());
    assert!(r.header("retry-after").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_header_client_is_disconnected() {
    let s = TestServer::start_with(|c| c.header_read_timeout = Duration::from_secs(2)).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let handle = tokio::task::spawn_blocking(move || {
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let started = Instant::now();
        let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        for b in request.iter() {
            // One byte per second (well, per 0.5 s to keep the test short);
            // the whole head would take ~40 s.
            if conn.write_all(&[*b]).is_err() {
                return started.elapsed();
            }
            let mut buf = [0u8; 256];
            match conn.read(&mut buf) {
                Ok(0) => return started.elapsed(),
                Ok(_) => return started.elapsed(), // a 408 before closing also counts
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return started.elapsed(),
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("the server read the whole slow head");
    });
    let elapsed = handle.await.unwrap();
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_secs(8),
        "{elapsed:?}"
    );
    assert_eq!(s.get("/healthz").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_cap_queues_extra_connections() {
    let s = TestServer::start_with(|c| c.max_connections = 2).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    // Two idle keep-alive connections hold both permits.
    let a = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let b = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let third = tokio::time::timeout(Duration::from_millis(700), s.get("/healthz")).await;
    assert!(
        third.is_err(),
        "a third connection is not served while two are open"
    );
    drop(a);
    drop(b);
    let r = tokio::time::timeout(Duration::from_secs(5), s.get("/healthz")).await;
    assert_eq!(r.expect("served once a permit is free").status, 200);
}
