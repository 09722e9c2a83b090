use hyper::Method;
use serde_json::json;

use crate::util::{TOKEN, TestServer, text};

#[tokio::test(flavor = "multi_thread")]
async fn admin_requires_the_token() {
    let s = TestServer::start().await;
    for (auth, what) in [
        (None, "none"),
        (Some("Bearer wrong"), "wrong"),
        (Some(TOKEN), "no Bearer prefix"),
    ] {
        let mut h = vec![];
        if let Some(a) = auth {
            h.push(("authorization", a));
        }
        let r = s.send(Method::GET, "/api/v1/sources", &h, b"").await;
        assert_eq!(r.status, 401, "{what}");
        assert_eq!(r.json()["error"], "unauthorized");
        assert!(!text(&r).contains(TOKEN));
    }
    let r = s.admin(Method::GET, "/api/v1/sources", None).await;
    assert_eq!(r.status, 200);
    // /healthz needs no token.
    assert_eq!(s.get("/healthz").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn sources_crud_and_postback_url() {
    let s = TestServer::start().await;
    let src = s
        .source(json!({"name": "CAKE net", "preset": "cake"}))
        .await;
    let key = src["key"].as_str().unwrap();
    assert_eq!(key.len(), 32);
    let url = src["postback_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/p/{key}?click_id=#s2#", s.base)),
        "{url}"
    );
    let id = src["id"].as_u64().unwrap();
    let got = s
        .admin(Method::GET, &format!("/api/v1/sources/{id}"), None)
        .await;
    assert_eq!(got.json()["key"], key);
    let patched = s
        .admin(
            Method::PATCH,
            &format!("/api/v1/sources/{id}"),
            Some(json!({"name": "CAKE 2", "status_map": {"Scrubbed": "rejected"}, "default_currency": "eur"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", text(&patched));
    assert_eq!(patched.json()["default_currency"], "EUR");
    assert_eq!(patched.json()["key"], key, "the key does not change");
    for (body, code) in [
        (json!({"name": ""}), "invalid_name"),
        (json!({"name": "x", "preset": "nope"}), "unknown_preset"),
        (
            json!({"name": "x", "params": {"clik": "a"}}),
            "invalid_params",
        ),
        (
            json!({"name": "x", "status_map": {"ok": "great"}}),
            "invalid_status_map",
        ),
        (
            json!({"name": "x", "default_currency": "XYZ"}),
            "invalid_currency",
        ),
        (
            json!({"name": "x", "signing": {"secrets": ["whsec_abc"]}}),
            "invalid_signing",
        ),
        (
            json!({"name": "x", "signing": {"generate": true, "tolerance_s": 0}}),
            "invalid_signing",
        ),
        (
            json!({"name": "x", "allow_ips": ["10.0.0.0/33"]}),
            "invalid_allow_ips",
        ),
        (
            json!({"name": "x", "rate_limit": {"per_second": 0}}),
            "invalid_rate_limit",
        ),
    ] {
        let r = s
            .admin(Method::POST, "/api/v1/sources", Some(body.clone()))
            .await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (400, json!(code)),
            "{body}"
        );
    }
    let r = s
        .admin(
            Method::POST,
            "/api/v1/sources",
            Some(json!({"name": "x", "bogus": 1})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        s.admin(Method::DELETE, &format!("/api/v1/sources/{id}"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        s.admin(Method::GET, &format!("/api/v1/sources/{id}"), None)
            .await
            .status,
        404
    );
    // Its key no longer works.
    assert_eq!(s.get(&format!("/p/{key}?click_id=x")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn links_crud() {
    let s = TestServer::start().await;
    let l = s
        .link(json!({"slug": "a-1", "destination": "https://n.example/?s={click_id}"}))
        .await;
    assert_eq!(l["url"], format!("{}/c/a-1", s.base));
    let dup = s
        .admin(
            Method::POST,
            "/api/v1/links",
            Some(json!({"slug": "a-1", "destination": "https://n.example/"})),
        )
        .await;
    assert_eq!(
        (dup.status, dup.json()["error"].clone()),
        (409, json!("slug_taken"))
    );
    let generated = s.link(json!({"destination": "https://n.example/"})).await;
    assert_eq!(generated["slug"].as_str().unwrap().len(), 10);
    let p = s
        .admin(
            Method::PATCH,
            "/api/v1/links/a-1",
            Some(json!({"destination": "https://other.example/?q={click_id}"})),
        )
        .await;
    assert_eq!(p.status, 200, "{}", text(&p));
    let r = s.get("/c/a-1").await;
    assert!(
        r.header("location")
            .unwrap()
            .starts_with("https://other.example/?q=")
    );
    assert_eq!(
        s.admin(Method::GET, "/api/v1/links", None).await.json()["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        s.admin(Method::DELETE, "/api/v1/links/a-1", None)
            .await
            .status,
        204
    );
    assert_eq!(s.get("/c/a-1").await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn conversions_filters_and_cursor_pagination() {
    let s = TestServer::start().await;
    let (a, slug) = s.source_and_link(json!({"name": "a"})).await;
    let b = s.source(json!({"name": "b"})).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let click = s.click(&slug, "").await;
        let status = if i % 2 == 0 { "approved" } else { "pending" };
        let src = if i < 5 { &a } else { &b };
        let r = s
            .postback(
                src,
                &format!("click_id={click}&amount={i}&transaction_id=t{i}&status={status}"),
            )
            .await;
        assert!(r.status == 200 || r.status == 202, "{}", text(&r));
        ids.push(r.json()["conversion_id"].as_str().unwrap().to_string());
    }
    // Newest first, three per page.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = s
            .admin(
                Method::GET,
                &format!("/api/v1/conversions?limit=3{cursor}"),
                None,
            )
            .await
            .json();
        for c in page["items"].as_array().unwrap() {
            seen.push(c["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);

    let aid = a["id"].as_u64().unwrap();
    let only_a = s
        .admin(
            Method::GET,
            &format!("/api/v1/conversions?source={aid}&limit=500"),
            None,
        )
        .await
        .json();
    assert_eq!(only_a["items"].as_array().unwrap().len(), 5);
    let pending = s
        .admin(Method::GET, "/api/v1/conversions?status=pending", None)
        .await
        .json();
    assert_eq!(pending["items"].as_array().unwrap().len(), 3);
    let future = s
        .admin(
            Method::GET,
            "/api/v1/conversions?since=2999-01-01T00:00:00Z",
            None,
        )
        .await
        .json();
    assert_eq!(future["items"].as_array().unwrap().len(), 0);
    let past = s
        .admin(
            Method::GET,
            "/api/v1/conversions?until=2000-01-01T00:00:00Z",
            None,
        )
        .await
        .json();
    assert_eq!(past["items"].as_array().unwrap().len(), 0);
    let all = s
        .admin(
            Method::GET,
            "/api/v1/conversions?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z",
            None,
        )
        .await
        .json();
    assert_eq!(all["items"].as_array().unwrap().len(), 7);
    let bad = s
        .admin(Method::GET, "/api/v1/conversions?status=great", None)
        .await;
    assert_eq!(bad.status, 400);
    let bad = s
        .admin(Method::GET, "/api/v1/conversions?since=yesterday", None)
        .await;
    assert_eq!(bad.json()["error"], "invalid_time");
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_metrics_and_presets() {
    let s = TestServer::start().await;
    let (src, slug) = s.source_and_link(json!({"name": "a"})).await;
    let click = s.click(&slug, "").await;
    s.postback(&src, &format!("click_id={click}")).await;
    let st = s.admin(Method::GET, "/api/v1/stats", None).await.json();
    assert_eq!(
        (
            st["clicks"].clone(),
            st["conversions"].clone(),
            st["events"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );
    assert!(st["commits"].as_u64().unwrap() >= 4);
    let m = s.get("/metrics").await;
    assert!(text(&m).contains("postbackd_commits_total "));
    let p = s.admin(Method::GET, "/api/v1/presets", None).await.json();
    assert!(p["items"].as_array().unwrap().len() >= 10);
}
