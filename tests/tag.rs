//! Tracking without a redirect, over HTTP: `GET /t.js`, the page tag's
//! `POST /e/click` (CORS for allowed origins only, preflight, bad beacons
//! refused with nothing stored) and `POST /api/v1/clicks` with external
//! IDs that postbacks match, dedupe on and forward with the click's
//! fbc/fbp. The tag's behaviour in a browser: `tests/browser/`.

use std::time::{Duration, Instant};

use hyper::Method;
use postbackd::config::Config;
use serde_json::json;

use crate::mock::Mock;
use crate::util::{TestServer, text};

const LP: &str = "http://lp.test:8000";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

fn allow_lp(c: &mut Config) {
    c.tag_origins = vec![LP.to_string()];
}

async fn clicks_stored(s: &TestServer) -> u64 {
    let r = s.admin(Method::GET, "/api/v1/stats", None).await;
    r.json()["clicks"].as_u64().unwrap()
}

async fn beacon(
    s: &TestServer,
    origin: Option<&str>,
    body: &[u8],
) -> postbackd::util::client::HttpResponse {
    let mut h = vec![
        ("content-type", "text/plain;charset=UTF-8"),
        ("user-agent", CHROME),
    ];
    if let Some(o) = origin {
        h.push(("origin", o));
    }
    s.send(Method::POST, "/e/click", &h, body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_script_is_served_with_a_versioned_url() {
    let s = TestServer::start().await;
    let link = s
        .link(json!({"slug": "spring", "destination": "https://offer.example/?s={click_id}"}))
        .await;
    let snippet = link["tag_snippet"].as_str().unwrap();
    assert!(
        snippet.contains(&format!("{}/t.js?v=", s.base)),
        "{snippet}"
    );
    assert!(snippet.contains("data-link=\"spring\""), "{snippet}");
    let v = snippet
        .split("?v=")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();

    let plain = s.get("/t.js").await;
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(plain.header("cache-control"), Some("public, max-age=300"));
    let js = text(&plain);
    assert!(
        js.contains("\"hop.clickbank.net\":\"tid\""),
        "presets inlined"
    );
    assert!(js.contains("\"sjv.io\":\"subId1\""));
    assert!(!js.contains("__POSTBACKD_HOSTS__"));
    assert!(js.len() < 12 * 1024);

    let versioned = s.get(&format!("/t.js?v={v}")).await;
    assert_eq!(versioned.status, 200);
    assert_eq!(
        versioned.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(versioned.body, plain.body);
    // An old version's URL is not cached for a year.
    let stale = s.get("/t.js?v=000000000000").await;
    assert_eq!(stale.header("cache-control"), Some("public, max-age=300"));
    // Revalidation of the unversioned URL: 304 while the script is the same.
    let etag = plain.header("etag").unwrap().to_string();
    assert_eq!(etag, format!("\"{v}\""));
    let same = s
        .send(Method::GET, "/t.js", &[("if-none-match", &etag)], b"")
        .await;
    assert_eq!(same.status, 304);
    assert!(same.body.is_empty());
    let post = s.send(Method::POST, "/t.js", &[], b"").await;
    assert_eq!(post.status, 405);
}

#[tokio::test(flavor = "multi_thread")]
async fn beacon_from_an_allowed_origin_records_the_click() {
    let s = TestServer::start_with(allow_lp).await;
    s.link(
        json!({"slug": "lp", "destination": "https://offer.example/?s={click_id}",
                  "subs": {"sub1": "zone"}, "cost": {"model": "cpc", "amount": "0.10"}}),
    )
    .await;
    let body = json!({
        "link": "lp",
        "url": "http://lp.test:8000/landing?gclid=G-1&utm_source=google&utm_campaign=spring&zone=z9&fbclid=FB1",
        "referrer": "https://www.google.com/",
        "fbp": "fb.1.1700000000000.555",
    });
    let r = beacon(&s, Some(LP), body.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.header("access-control-allow-origin"), Some(LP));
    assert_eq!(r.header("vary"), Some("Origin"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let id = r.json()["click_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 25);

    // The 200 means stored: the click is there at once.
    let c = s
        .admin(Method::GET, &format!("/api/v1/clicks/{id}"), None)
        .await;
    assert_eq!(c.status, 200, "{}", text(&c));
    let c = c.json();
    assert_eq!(c["via"], "tag");
    assert_eq!(c["link"], "lp");
    assert_eq!(c["gclid"], "G-1");
    assert_eq!(c["utm_source"], "google");
    assert_eq!(c["utm_campaign"], "spring");
    assert_eq!(c["referrer"], "https://www.google.com/");
    assert_eq!(c["landing_url"], body["url"]);
    assert_eq!(c["fbp"], "fb.1.1700000000000.555");
    assert!(c["fbc"].as_str().unwrap().ends_with(".FB1"), "{c}");
    assert_eq!(c["device"], "desktop");
    assert_eq!(c["bot"], false);
    assert_eq!(c["unique"], true);
    assert_eq!(c["ip"], "127.0.0.1");
    // The same roll-ups as a redirect: the link's report counts it, with
    // its sub and cost.
    let rep = s
        .admin(Method::GET, "/api/v1/reports?group_by=link", None)
        .await;
    assert_eq!(rep.status, 200, "{}", text(&rep));
    let rep = rep.json();
    let row = &rep["rows"][0];
    assert_eq!(row["clicks"], 1, "{rep}");
    assert_eq!(row["unique_clicks"], 1, "{rep}");
    let sub = s
        .admin(Method::GET, "/api/v1/reports?group_by=sub1", None)
        .await
        .json();
    assert_eq!(sub["rows"][0]["sub1"], "z9", "{sub}");

    // A second beacon of the same visitor: a click, not unique.
    let r2 = beacon(&s, Some(LP), body.to_string().as_bytes()).await;
    let id2 = r2.json()["click_id"].as_str().unwrap().to_string();
    let c2 = s
        .admin(Method::GET, &format!("/api/v1/clicks/{id2}"), None)
        .await
        .json();
    assert_eq!(c2["unique"], false);
    assert_eq!(clicks_stored(&s).await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn link_tag_origins_allow_that_link_only() {
    let s = TestServer::start().await;
    let other = "https://other.example";
    let l = s
        .link(
            json!({"slug": "mine", "destination": "https://offer.example/?s={click_id}",
                     "tag_origins": ["HTTPS://Shop.Example:443/", "http://127.0.0.1:9000"]}),
        )
        .await;
    assert_eq!(
        l["tag_origins"],
        json!(["https://shop.example", "http://127.0.0.1:9000"])
    );
    s.link(json!({"slug": "theirs", "destination": "https://offer.example/?s={click_id}"}))
        .await;
    let ok = beacon(&s, Some("https://shop.example"), br#"{"link":"mine"}"#).await;
    assert_eq!(ok.status, 200, "{}", text(&ok));
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://shop.example")
    );

    // The same origin on another link, and another origin on this link.
    for (origin, slug) in [("https://shop.example", "theirs"), (other, "mine")] {
        let r = beacon(
            &s,
            Some(origin),
            format!(r#"{{"link":"{slug}"}}"#).as_bytes(),
        )
        .await;
        assert_eq!(r.status, 403, "{}", text(&r));
        assert_eq!(r.json()["error"], "origin_not_allowed");
        assert!(
            text(&r).contains(&format!("PATCH /api/v1/links/{slug}")),
            "the message names the fix: {}",
            text(&r)
        );
        assert_eq!(r.header("access-control-allow-origin"), None);
        assert_eq!(r.header("vary"), Some("Origin"));
    }
    assert_eq!(clicks_stored(&s).await, 1, "no click from a refused origin");

    // PATCH replaces the list; a bad origin is refused with the fix.
    let p = s
        .admin(
            Method::PATCH,
            "/api/v1/links/theirs",
            Some(json!({"tag_origins": [other]})),
        )
        .await;
    assert_eq!(p.status, 200, "{}", text(&p));
    let r = beacon(&s, Some(other), br#"{"link":"theirs"}"#).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    for bad in [
        "other.example",
        "https://a.example/path",
        "ftp://a.example",
        "https://*.a.example",
    ] {
        let p = s
            .admin(
                Method::PATCH,
                "/api/v1/links/theirs",
                Some(json!({"tag_origins": [bad]})),
            )
            .await;
        assert_eq!(p.status, 400, "{bad}: {}", text(&p));
        assert_eq!(p.json()["error"], "invalid_tag_origins");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_is_answered_for_allowed_origins_only() {
    let s = TestServer::start_with(allow_lp).await;
    s.link(
        json!({"slug": "x", "destination": "https://offer.example/?s={click_id}",
                  "tag_origins": ["https://shop.example"]}),
    )
    .await;
    for origin in [LP, "https://shop.example"] {
        let r = s
            .send(
                Method::OPTIONS,
                "/e/click",
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "content-type"),
                ],
                b"",
            )
            .await;
        assert_eq!(r.status, 204, "{origin}: {}", text(&r));
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        assert_eq!(r.header("access-control-allow-methods"), Some("POST"));
        assert_eq!(
            r.header("access-control-allow-headers"),
            Some("content-type")
        );
        assert!(r.header("access-control-max-age").is_some());
        assert_eq!(r.header("vary"), Some("Origin"));
    }
    let refused = s
        .send(
            Method::OPTIONS,
            "/e/click",
            &[("origin", "https://evil.example")],
            b"",
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["error"], "origin_not_allowed");
    assert_eq!(refused.header("access-control-allow-origin"), None);
    let none = s.send(Method::OPTIONS, "/e/click", &[], b"").await;
    assert_eq!(none.status, 403);
    assert_eq!(none.json()["error"], "origin_required");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_beacons_are_refused_in_json_and_store_nothing() {
    let s = TestServer::start_with(allow_lp).await;
    s.link(json!({"slug": "lp", "destination": "https://offer.example/?s={click_id}"}))
        .await;
    let big = format!(r#"{{"link":"lp","referrer":"{}"}}"#, "r".repeat(20 * 1024));
    let long_url = format!(
        r#"{{"link":"lp","url":"https://lp.test/?q={}"}}"#,
        "u".repeat(5000)
    );
    let cases: Vec<(Option<&str>, Vec<u8>, u16, &str)> = vec![
        (None, br#"{"link":"lp"}"#.to_vec(), 403, "origin_required"),
        (
            Some("null"),
            br#"{"link":"lp"}"#.to_vec(),
            403,
            "origin_not_allowed",
        ),
        (
            Some("https://evil.example"),
            br#"{"link":"lp"}"#.to_vec(),
            403,
            "origin_not_allowed",
        ),
        (Some(LP), b"".to_vec(), 400, "invalid_json"),
        (Some(LP), b"{not json".to_vec(), 400, "invalid_json"),
        (Some(LP), b"[1,2]".to_vec(), 400, "invalid_json"),
        (Some(LP), br#"{"link":7}"#.to_vec(), 400, "invalid_json"),
        (
            Some(LP),
            br#"{"url":"https://lp.test/"}"#.to_vec(),
            400,
            "invalid_link",
        ),
        (
            Some(LP),
            br#"{"link":"../admin"}"#.to_vec(),
            400,
            "invalid_link",
        ),
        (
            Some(LP),
            br#"{"link":"nope"}"#.to_vec(),
            404,
            "unknown_link",
        ),
        (
            Some(LP),
            br#"{"link":"lp","url":"javascript:alert(1)"}"#.to_vec(),
            400,
            "invalid_landing_url",
        ),
        (
            Some(LP),
            br#"{"link":"lp","referrer":"a\u0007b"}"#.to_vec(),
            400,
            "invalid_beacon",
        ),
        (Some(LP), big.into_bytes(), 413, "too_large"),
        (Some(LP), long_url.into_bytes(), 413, "too_large"),
        (Some(LP), vec![0xff, 0xfe, 0x00], 400, "invalid_json"),
    ];
    for (origin, body, status, code) in cases {
        let r = beacon(&s, origin, &body).await;
        assert_eq!(
            r.status,
            status,
            "{origin:?} {}: {}",
            String::from_utf8_lossy(&body[..body.len().min(60)]),
            text(&r)
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json()["error"], code, "{}", text(&r));
        assert!(!r.json()["message"].as_str().unwrap().is_empty());
        // Errors from a server-allowed origin are readable by the page.
        if origin == Some(LP) {
            assert_eq!(r.header("access-control-allow-origin"), Some(LP));
        } else {
            assert_eq!(r.header("access-control-allow-origin"), None);
        }
    }
    let get = s.get("/e/click").await;
    assert_eq!(get.status, 405);
    assert_eq!(get.json()["error"], "method_not_allowed");
    assert_eq!(
        clicks_stored(&s).await,
        0,
        "no refused beacon created a click"
    );
}

async fn wait_requests(m: &Mock, n: usize) -> Vec<crate::mock::Recorded> {
    let start = Instant::now();
    loop {
        let r = m.requests();
        if r.len() >= n || start.elapsed() > Duration::from_secs(10) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_click_external_id_is_matched_deduped_and_forwarded() {
    let s = TestServer::start_with(|c| {
        c.allow_private_destinations = true;
        c.forward.backoff_base = Duration::from_millis(50);
    })
    .await;
    let meta = Mock::ok().await;
    let d = s
        .admin(
            Method::POST,
            "/api/v1/destinations",
            Some(
                json!({"name": "pixel", "type": "meta", "base_url": meta.base,
                        "config": {"pixel_id": "42", "access_token": "EAAB-t"},
                        "filter": {"types": ["lead", "purchase"]}}),
            ),
        )
        .await;
    assert_eq!(d.status, 201, "{}", text(&d));
    let (src, slug) = s.source_and_link(json!({"name": "crm"})).await;
    let r = s
        .admin(
            Method::POST,
            "/api/v1/clicks",
            Some(json!({
                "link": slug,
                "ip": "203.0.113.7",
                "user_agent": CHROME,
                "landing_url": "https://lp.example/offer?fbclid=FBX&utm_source=newsletter",
                "params": {"utm_campaign": "spring", "sub": 7},
                "external_id": "  CRM-Lead-42 ",
                "fbp": "fb.1.1700000000000.777",
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let c = r.json();
    let id = c["click_id"].as_str().unwrap().to_string();
    assert_eq!(c["external_id"], "CRM-Lead-42", "trimmed, case kept");
    assert_eq!(c["via"], "api");
    assert_eq!(c["utm_source"], "newsletter");
    assert_eq!(c["utm_campaign"], "spring");
    assert!(
        c["query"]
            .as_array()
            .unwrap()
            .contains(&json!(["sub", "7"])),
        "{c}"
    );
    assert_eq!(c["ip"], "203.0.113.7");
    assert!(c["fbc"].as_str().unwrap().ends_with(".FBX"));

    // Found by click ID and by external ID (exact, percent-decoded).
    for key in [
        id.as_str(),
        &id.to_uppercase(),
        "CRM-Lead-42",
        "%20CRM-Lead-42",
    ] {
        let g = s
            .admin(Method::GET, &format!("/api/v1/clicks/{key}"), None)
            .await;
        assert_eq!(g.status, 200, "{key}: {}", text(&g));
        assert_eq!(g.json()["click_id"], id.as_str());
    }
    let wrong_case = s
        .admin(Method::GET, "/api/v1/clicks/crm-lead-42", None)
        .await;
    assert_eq!(wrong_case.status, 404, "external IDs are case-sensitive");
    assert_eq!(wrong_case.json()["error"], "unknown_click");

    // A lead by external ID (no transaction ID), then the same event by
    // click ID: one conversion, on the click.
    let lead = s.postback(&src, "click_id=CRM-Lead-42&event=signup").await;
    assert_eq!(lead.status, 200, "{}", text(&lead));
    assert_eq!(lead.json()["result"], "matched");
    assert_eq!(lead.json()["click_id"], id.as_str());
    let again = s
        .postback(&src, &format!("click_id={id}&event=signup"))
        .await;
    assert_eq!(again.json()["result"], "duplicate", "{}", text(&again));
    let again = s
        .postback(&src, "click_id=%20CRM-Lead-42%20&event=signup")
        .await;
    assert_eq!(again.json()["result"], "duplicate", "{}", text(&again));
    // A sale by external ID with a transaction ID; its retry is a duplicate.
    let sale = s
        .postback(&src, "click_id=CRM-Lead-42&amount=49.00&transaction_id=T-1")
        .await;
    assert_eq!(sale.json()["result"], "matched", "{}", text(&sale));
    let conv = sale.json()["conversion_id"].as_str().unwrap().to_string();
    let retry = s
        .postback(&src, "click_id=CRM-Lead-42&amount=49.00&transaction_id=T-1")
        .await;
    assert_eq!(retry.json()["result"], "duplicate");
    // Case matters for external IDs: this one is not the click.
    let other = s
        .postback(&src, "click_id=crm-lead-42&amount=1&transaction_id=T-2")
        .await;
    assert_eq!(other.status, 202, "{}", text(&other));
    assert_eq!(other.json()["result"], "unmatched");

    let stored = s
        .admin(Method::GET, &format!("/api/v1/conversions/{conv}"), None)
        .await
        .json();
    assert_eq!(stored["click_id"], id.as_str());
    assert_eq!(stored["matched"], true);

    // Forwarded to Meta with the click's browser IDs, IP and user agent:
    // the lead and the sale, once each (and the unmatched one, without).
    let reqs = wait_requests(&meta, 3).await;
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    let lead_req = reqs
        .iter()
        .map(|r| r.json())
        .find(|b| b["data"][0]["event_name"] == "signup")
        .expect("the lead was forwarded");
    assert_eq!(
        lead_req["data"][0]["user_data"]["fbp"],
        "fb.1.1700000000000.777"
    );
    let sale_req = reqs
        .iter()
        .map(|r| r.json())
        .find(|b| b["data"][0]["event_id"] == conv.as_str())
        .expect("the sale was forwarded");
    let u = &sale_req["data"][0]["user_data"];
    assert_eq!(u["fbp"], "fb.1.1700000000000.777");
    assert!(u["fbc"].as_str().unwrap().ends_with(".FBX"), "{u}");
    assert_eq!(u["client_ip_address"], "203.0.113.7");
    assert_eq!(u["client_user_agent"], CHROME);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(meta.requests().len(), 3, "nothing forwarded twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn api_click_refusals() {
    let s = TestServer::start().await;
    s.link(json!({"slug": "f", "destination": "https://offer.example/?s={click_id}"}))
        .await;
    let ok = s
        .admin(
            Method::POST,
            "/api/v1/clicks",
            Some(json!({"link": "f", "external_id": "L-1"})),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", text(&ok));
    let first = ok.json()["click_id"].as_str().unwrap().to_string();
    assert_eq!(
        ok.json()["bot"],
        false,
        "a server-side click without a user agent is not a bot"
    );
    assert_eq!(ok.json()["unique"], true, "told apart by its external ID");
    let anon = s
        .admin(Method::POST, "/api/v1/clicks", Some(json!({"link": "f"})))
        .await;
    assert_eq!(anon.status, 201, "{}", text(&anon));
    assert_eq!(
        anon.json()["unique"],
        false,
        "no IP, no external ID: not unique"
    );

    let dup = s
        .admin(
            Method::POST,
            "/api/v1/clicks",
            Some(json!({"link": "f", "external_id": " L-1"})),
        )
        .await;
    assert_eq!(dup.status, 409, "{}", text(&dup));
    assert_eq!(dup.json()["error"], "external_id_taken");
    assert!(text(&dup).contains(&first), "names the click that has it");
    // Another click's ID cannot be an external ID (it would shadow it).
    let shadow = s
        .admin(
            Method::POST,
            "/api/v1/clicks",
            Some(json!({"link": "f", "external_id": first.to_uppercase()})),
        )
        .await;
    assert_eq!(shadow.status, 409, "{}", text(&shadow));

    let cases = [
        (json!({}), 400, "invalid_link"),
        (json!({"link": "nope"}), 404, "unknown_link"),
        (json!({"link": "f", "ip": "not-an-ip"}), 400, "invalid_ip"),
        (
            json!({"link": "f", "params": {"a": {"b": 1}}}),
            400,
            "invalid_params",
        ),
        (
            json!({"link": "f", "landing_url": "ftp://x"}),
            400,
            "invalid_landing_url",
        ),
        (
            json!({"link": "f", "external_id": "x".repeat(200)}),
            400,
            "too_large",
        ),
        (
            json!({"link": "f", "external_id": "a\nb"}),
            400,
            "invalid_text",
        ),
        (json!({"link": "f", "colour": "red"}), 400, "invalid_json"),
    ];
    for (body, status, code) in cases {
        let r = s
            .admin(Method::POST, "/api/v1/clicks", Some(body.clone()))
            .await;
        assert_eq!(r.status, status, "{body}: {}", text(&r));
        assert_eq!(r.json()["error"], code, "{body}: {}", text(&r));
    }
    let unauth = s
        .send(Method::POST, "/api/v1/clicks", &[], br#"{"link":"f"}"#)
        .await;
    assert_eq!(unauth.status, 401);
    assert_eq!(
        clicks_stored(&s).await,
        2,
        "refused requests stored nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_external_id_is_purged_with_its_click() {
    use postbackd::retention::{self, Retention};
    let s = TestServer::start().await;
    s.link(json!({"slug": "f", "destination": "https://offer.example/?s={click_id}"}))
        .await;
    let body = json!({"link": "f", "external_id": "Lead-7", "ip": "198.51.100.2"});
    let r = s
        .admin(Method::POST, "/api/v1/clicks", Some(body.clone()))
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let r = s
        .admin(Method::POST, "/api/v1/clicks", Some(body.clone()))
        .await;
    assert_eq!(r.status, 409, "{}", text(&r));
    let day = 86_400_000;
    let now = postbackd::util::clock::now_ms();
    let keep = Retention {
        clicks_days: Some(30),
        events_days: None,
    };
    let (purged, _) = retention::purge(&s.app.store, keep, now + 31 * day)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let gone = s.admin(Method::GET, "/api/v1/clicks/Lead-7", None).await;
    assert_eq!(gone.status, 404, "{}", text(&gone));
    // The ID is free again: a new click may take it.
    let again = s.admin(Method::POST, "/api/v1/clicks", Some(body)).await;
    assert_eq!(again.status, 201, "{}", text(&again));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_beacon_records_a_click_of_no_link() {
    let s = TestServer::start_with(allow_lp).await;
    let src = s.source(json!({"name": "net"})).await;
    let id = src["id"].as_u64().unwrap();
    // A link's origins do not allow a source's clicks: only the server's do.
    s.link(
        json!({"slug": "x", "destination": "https://offer.example/?s={click_id}",
                  "tag_origins": ["https://shop.example"]}),
    )
    .await;
    let body =
        format!(r#"{{"source":"{id}","url":"http://lp.test:8000/?utm_source=tiktok&ttclid=T1"}}"#);
    let refused = beacon(&s, Some("https://shop.example"), body.as_bytes()).await;
    assert_eq!(refused.status, 403, "{}", text(&refused));
    assert_eq!(refused.json()["error"], "origin_not_allowed");
    let unknown = beacon(&s, Some(LP), br#"{"source":999}"#).await;
    assert_eq!(unknown.status, 404, "{}", text(&unknown));
    assert_eq!(unknown.json()["error"], "unknown_source");
    assert_eq!(clicks_stored(&s).await, 0);

    let r = beacon(&s, Some(LP), body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let cid = r.json()["click_id"].as_str().unwrap().to_string();
    let c = s
        .admin(Method::GET, &format!("/api/v1/clicks/{cid}"), None)
        .await
        .json();
    assert_eq!(
        (c["source"].as_u64(), c["link"].as_str()),
        (Some(id), Some(""))
    );
    assert_eq!(c["ttclid"], "T1");
    assert_eq!(c["utm_source"], "tiktok");
    let p = s.postback(&src, &format!("click_id={cid}&amount=5")).await;
    assert_eq!(p.json()["result"], "matched", "{}", text(&p));
}
