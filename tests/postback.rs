use hyper::Method;
use serde_json::json;

use crate::util::{TestServer, text};

#[tokio::test(flavor = "multi_thread")]
async fn matched_duplicate_updated() {
    let s = TestServer::start().await;
    let (src, slug) = s.source_and_link(json!({"name": "net"})).await;
    let click = s.click(&slug, "").await;

    let r = s
        .postback(
            &src,
            &format!("click_id={click}&amount=12.50&transaction_id=T1"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["result"], "matched");
    assert_eq!(v["type"], "purchase");
    assert_eq!(v["click_id"], click.as_str());
    let conv = v["conversion_id"].as_str().unwrap().to_string();

    let r = s
        .postback(
            &src,
            &format!("click_id={click}&amount=12.50&transaction_id=T1"),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["result"].clone()),
        (200, json!("duplicate"))
    );
    assert_eq!(r.json()["conversion_id"], conv.as_str());

    let r = s
        .postback(
            &src,
            &format!("click_id={click}&amount=12.50&transaction_id=T1&status=refunded"),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["result"].clone()),
        (200, json!("updated"))
    );
    assert_eq!(r.json()["previous_status"], "approved");

    // The conversion was counted once, with its history.
    let list = s
        .admin(Method::GET, "/api/v1/conversions", None)
        .await
        .json();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "refunded");
    assert_eq!(items[0]["amount"], "12.50");
    assert_eq!(items[0]["matched"], true);
    assert_eq!(items[0]["link"], slug.as_str());
    assert_eq!(items[0]["history"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn lead_and_dedup_without_transaction_id() {
    let s = TestServer::start().await;
    let (src, slug) = s.source_and_link(json!({"name": "net"})).await;
    let click = s.click(&slug, "").await;
    let r = s
        .postback(&src, &format!("subid={}", click.to_uppercase()))
        .await;
    assert_eq!(r.json()["result"], "matched", "{}", text(&r));
    assert_eq!(r.json()["type"], "lead");
    // Same click, same (default) event name: duplicate.
    let r = s.postback(&src, &format!("subid=%20{click}%20")).await;
    assert_eq!(r.json()["result"], "duplicate", "{}", text(&r));
    // Same click, another event: a new conversion.
    let r = s
        .postback(&src, &format!("subid={click}&event=Trial"))
        .await;
    assert_eq!(r.json()["result"], "matched", "{}", text(&r));
    // A purchase on the same click is a different event name too.
    let r = s.postback(&src, &format!("subid={click}&payout=30")).await;
    assert_eq!(r.json()["result"], "matched", "{}", text(&r));
    assert_eq!(r.json()["type"], "purchase");
}

#[tokio::test(flavor = "multi_thread")]
async fn unmatched_is_stored_and_answered_202() {
    let s = TestServer::start().await;
    let src = s.source(json!({"name": "net"})).await;
    let r = s
        .postback(&src, "clickid=nosuchclick&amount=5&txid=X9")
        .await;
    assert_eq!(r.status, 202, "{}", text(&r));
    let v = r.json();
    assert_eq!(
        (v["result"].clone(), v["error"].clone()),
        (json!("unmatched"), json!("no_match"))
    );
    let conv = v["conversion_id"].as_str().unwrap();
    let c = s
        .admin(Method::GET, &format!("/api/v1/conversions/{conv}"), None)
        .await;
    assert_eq!(c.status, 200);
    assert_eq!(c.json()["matched"], false);
    let list = s
        .admin(Method::GET, "/api/v1/conversions?matched=false", None)
        .await
        .json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn rejections_have_contract_codes_and_are_logged() {
    let s = TestServer::start().await;
    let src = s.source(json!({"name": "net"})).await;
    let cases: &[(&str, u16, &str)] = &[
        ("amount=10", 400, "missing_click_id"),
        ("click_id=&amount=10", 400, "missing_click_id"),
        ("click_id=%7Bclickid%7D", 400, "unsubstituted_macro"),
        ("subid=%24%7Bsub1%7D", 400, "unsubstituted_macro"),
        ("click_id=%23s2%23", 400, "unsubstituted_macro"),
        ("click_id=%5Bsubid%5D", 400, "unsubstituted_macro"),
        ("click_id=abc&amount=12%2C50", 400, "invalid_amount"),
        ("click_id=abc&amount=-3", 400, "invalid_amount"),
        ("click_id=abc&amount=1e3", 400, "invalid_amount"),
        ("click_id=abc&currency=EURO", 400, "invalid_currency"),
        ("click_id=abc&currency=ZZZ", 400, "invalid_currency"),
        ("click_id=abc&status=maybe", 400, "invalid_status"),
    ];
    for (q, status, code) in cases {
        let r = s.postback(&src, q).await;
        assert_eq!(r.status, *status, "{q}: {}", text(&r));
        let v = r.json();
        assert_eq!(v["error"], *code, "{q}: {v}");
        assert!(
            v["message"].as_str().unwrap().len() > 20,
            "{q}: message names the fix"
        );
        assert!(v["event_id"].is_string());
    }
    // Every one of them is in the events log with its raw request.
    let ev = s
        .admin(Method::GET, "/api/v1/events?limit=500", None)
        .await
        .json();
    let items = ev["items"].as_array().unwrap();
    assert_eq!(items.len(), cases.len());
    for (q, _, code) in cases {
        assert!(
            items
                .iter()
                .any(|e| e["query"] == *q && e["result"] == *code && e["http_status"] == 400),
            "event for {q}"
        );
    }
    // No conversion was created by any of them.
    let list = s
        .admin(Method::GET, "/api/v1/conversions", None)
        .await
        .json();
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_source_is_404_and_not_logged() {
    let s = TestServer::start().await;
    let r = s.get("/p/0123456789abcdef?click_id=x").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "unknown_source");
    let ev = s.admin(Method::GET, "/api/v1/events", None).await.json();
    assert_eq!(ev["items"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn post_form_and_json_bodies() {
    let s = TestServer::start().await;
    let (src, slug) = s
        .source_and_link(json!({"name": "net", "default_currency": "eur"}))
        .await;
    let key = src["key"].as_str().unwrap();
    let c1 = s.click(&slug, "").await;
    let r = s
        .send(
            Method::POST,
            &format!("/p/{key}"),
            &[("content-type", "application/x-www-form-urlencoded")],
            format!("click_id={c1}&amount=9.99&transaction_id=F1").as_bytes(),
        )
        .await;
    assert_eq!(r.json()["result"], "matched", "{}", text(&r));
    let c2 = s.click(&slug, "").await;
    // A JSON number keeps its literal text: 19.90 is never a float.
    let body = format!(
        r#"{{"clickid": "{c2}", "payout": 19.90, "currency": "gbp", "txn_id": "J1", "country": "DE"}}"#
    );
    let r = s
        .send(
            Method::POST,
            &format!("/p/{key}"),
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.json()["result"], "matched", "{}", text(&r));
    let list = s
        .admin(Method::GET, "/api/v1/conversions", None)
        .await
        .json();
    let items = list["items"].as_array().unwrap();
    let json_conv = items.iter().find(|c| c["transaction_id"] == "J1").unwrap();
    assert_eq!(
        (json_conv["amount"].clone(), json_conv["currency"].clone()),
        (json!("19.90"), json!("GBP"))
    );
    assert_eq!(json_conv["country"], "DE");
    let form_conv = items.iter().find(|c| c["transaction_id"] == "F1").unwrap();
    assert_eq!(form_conv["currency"], "EUR", "source default currency");
    // The raw body is kept in the event.
    let ev = s.admin(Method::GET, "/api/v1/events", None).await.json();
    assert!(
        ev["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["body"].as_str().unwrap_or("").contains("J1"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_identical_postbacks_count_once() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let (src, slug) = s.source_and_link(json!({"name": "net"})).await;
    let click = s.click(&slug, "").await;
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let (s, src, click) = (s.clone(), src.clone(), click.clone());
        tasks.push(tokio::spawn(async move {
            s.postback(
                &src,
                &format!("click_id={click}&amount=1&transaction_id=SAME"),
            )
            .await
            .json()["result"]
                .as_str()
                .unwrap()
                .to_string()
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert_eq!(
        results.iter().filter(|r| *r == "matched").count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|r| *r == "duplicate").count(),
        23,
        "{results:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_after_fixing_the_mapping() {
    let s = TestServer::start().await;
    let (src, slug) = s
        .source_and_link(json!({"name": "net", "params": {"click_id": "s2"}}))
        .await;
    let click = s.click(&slug, "").await;
    // The network actually sends `aff_click`: not mapped, so missing.
    let r = s
        .postback(&src, &format!("aff_click={click}&amount=7"))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "missing_click_id");
    assert!(r.json()["message"].as_str().unwrap().contains("`s2`"));
    let event_id = r.json()["event_id"].as_str().unwrap().to_string();

    let id = src["id"].as_u64().unwrap();
    let p = s
        .admin(
            Method::PATCH,
            &format!("/api/v1/sources/{id}"),
            Some(json!({"params": {"click_id": "aff_click"}})),
        )
        .await;
    assert_eq!(p.status, 200, "{}", text(&p));
    let rp = s
        .admin(
            Method::POST,
            &format!("/api/v1/events/{event_id}/replay"),
            None,
        )
        .await;
    assert_eq!(rp.status, 200, "{}", text(&rp));
    let v = rp.json();
    assert_eq!(v["http_status"], 200);
    assert_eq!(v["response"]["result"], "matched");
    assert_eq!(v["replay_of"], event_id.as_str());
    // Replaying again is a duplicate, never a second conversion.
    let rp = s
        .admin(
            Method::POST,
            &format!("/api/v1/events/{event_id}/replay"),
            None,
        )
        .await;
    assert_eq!(rp.json()["response"]["result"], "duplicate");
    let new_event = s
        .admin(
            Method::GET,
            &format!("/api/v1/events/{}", v["event_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(new_event.json()["replay_of"], event_id.as_str());
    let r = s
        .admin(Method::POST, "/api/v1/events/nosuch/replay", None)
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_body_is_413_and_logged_truncated() {
    let s = TestServer::start_with(|c| c.max_body_bytes = 1024).await;
    let src = s.source(json!({"name": "net"})).await;
    let key = src["key"].as_str().unwrap();
    let body = format!("click_id=abc&pad={}", "x".repeat(5000));
    let r = s
        .send(
            Method::POST,
            &format!("/p/{key}"),
            &[("content-type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 413, "{}", text(&r));
    assert_eq!(r.json()["error"], "too_large");
    let ev = s.admin(Method::GET, "/api/v1/events", None).await.json();
    let e = &ev["items"][0];
    assert_eq!(e["result"], "too_large");
    assert_eq!(e["body_truncated"], true);
    assert_eq!(e["body"].as_str().unwrap().len(), 1024);
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicting_aliases_are_refused_not_guessed() {
    let s = TestServer::start().await;
    let src = s.source(json!({"name": "net"})).await;
    let r = s.postback(&src, "click_id=a&subid=b").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "conflicting_parameters");
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_url_and_headers_are_json_414_431() {
    let s = TestServer::start().await;
    let src = s.source(json!({"name": "net"})).await;
    let long = format!("click_id=a&pad={}", "x".repeat(9000));
    let r = s.postback(&src, &long).await;
    assert_eq!(r.status, 414, "{}", text(&r));
    assert_eq!(r.json()["error"], "too_large");
    let big = "y".repeat(17 * 1024);
    let r = s
        .send(Method::GET, "/healthz", &[("x-big", big.as_str())], b"")
        .await;
    assert_eq!(r.status, 431);
    assert_eq!(r.json()["error"], "too_large");
    let names: Vec<String> = (0..70).map(|i| format!("x-h{i}")).collect();
    let headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let r = s.send(Method::GET, "/healthz", &headers, b"").await;
    assert_eq!(r.status, 431);
    assert_eq!(r.json()["error"], "too_large");
    // Still serving.
    assert_eq!(s.get("/healthz").await.status, 200);
}
