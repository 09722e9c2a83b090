use hyper::Method;
use serde_json::json;

use crate::util::{TestServer, text};

#[tokio::test(flavor = "multi_thread")]
async fn click_redirects_and_records_everything() {
    let s = TestServer::start().await;
    s.link(json!({
        "slug": "spring",
        "destination": "https://network.example/offer?sub1=--CLICK-ID--&src={utm_source}#top",
        "campaign": "spring-sale"
    }))
    .await;
    let r = s
        .send(
            Method::GET,
            "/c/spring?utm_source=face%20book&utm_medium=cpc&utm_campaign=c1&gclid=G1&fbclid=IwAR9&ttclid=T1&msclkid=M1&gbraid=GB&wbraid=WB&x=1",
            &[
                ("user-agent", "Mozilla/5.0 test"),
                ("referer", "https://news.example/a"),
                ("cookie", "a=b; _fbp=fb.1.1700000000000.123456; c=d"),
                ("x-forwarded-for", "203.0.113.50"),
            ],
            b"",
        )
        .await;
    assert_eq!(r.status, 302, "{}", text(&r));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let id = r.header("x-postbackd-click-id").unwrap().to_string();
    assert_eq!(id.len(), 25);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    );
    assert_eq!(
        r.header("location").unwrap(),
        format!("https://network.example/offer?sub1={id}&src=face%20book#top")
    );

    let c = s
        .admin(
            Method::GET,
            &format!("/api/v1/clicks/{}", id.to_uppercase()),
            None,
        )
        .await;
    assert_eq!(c.status, 200, "{}", text(&c));
    let c = c.json();
    assert_eq!(c["click_id"], id.as_str());
    assert_eq!(c["utm_source"], "face book");
    assert_eq!(c["utm_medium"], "cpc");
    assert_eq!(c["gclid"], "G1");
    assert_eq!(c["gbraid"], "GB");
    assert_eq!(c["wbraid"], "WB");
    assert_eq!(c["ttclid"], "T1");
    assert_eq!(c["msclkid"], "M1");
    assert_eq!(c["fbclid"], "IwAR9");
    let fbc = c["fbc"].as_str().unwrap();
    assert!(fbc.starts_with("fb.1.") && fbc.ends_with(".IwAR9"), "{fbc}");
    assert_eq!(c["fbp"], "fb.1.1700000000000.123456");
    assert_eq!(c["user_agent"], "Mozilla/5.0 test");
    assert_eq!(c["referrer"], "https://news.example/a");
    assert_eq!(c["campaign"], "spring-sale");
    // The peer (127.0.0.1) is not a trusted proxy: X-Forwarded-For ignored.
    assert_eq!(c["ip"], "127.0.0.1");
    assert!(
        c["query"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == &json!(["x", "1"]))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_proxy_forwarded_for_is_honoured() {
    let s =
        TestServer::start_with(|c| c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    s.link(json!({"slug": "p", "destination": "https://n.example/?s={click_id}"}))
        .await;
    let r = s
        .send(
            Method::GET,
            "/c/p",
            &[("x-forwarded-for", "198.51.100.9, 127.0.0.2")],
            b"",
        )
        .await;
    let id = r.header("x-postbackd-click-id").unwrap();
    let c = s
        .admin(Method::GET, &format!("/api/v1/clicks/{id}"), None)
        .await
        .json();
    assert_eq!(c["ip"], "198.51.100.9");
}

#[tokio::test(flavor = "multi_thread")]
async fn head_is_recorded_and_flagged() {
    let s = TestServer::start().await;
    s.link(json!({"slug": "h", "destination": "https://n.example/?s={click_id}"}))
        .await;
    let r = s.send(Method::HEAD, "/c/h", &[], b"").await;
    assert_eq!(r.status, 302);
    let id = r.header("x-postbackd-click-id").unwrap();
    let c = s
        .admin(Method::GET, &format!("/api/v1/clicks/{id}"), None)
        .await
        .json();
    assert_eq!(c["method"], "HEAD");
}

#[tokio::test(flavor = "multi_thread")]
async fn appends_configured_param_without_placeholder() {
    let s = TestServer::start().await;
    let src = s.source(json!({"name": "cb", "preset": "clickbank"})).await;
    let l = s.link(json!({"slug": "cb", "destination": "https://hop.example/?vendor=x", "source": src["id"]})).await;
    assert_eq!(l["param"], "tid", "the preset's tracking parameter");
    let r = s.get("/c/cb").await;
    let id = r.header("x-postbackd-click-id").unwrap();
    assert_eq!(
        r.header("location").unwrap(),
        format!("https://hop.example/?vendor=x&tid={id}")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_slug_is_404_json_never_a_redirect() {
    let s = TestServer::start().await;
    for path in [
        "/c/nope",
        "/c/nope?url=https://evil.example/",
        "/c/%2F%2Fevil.example",
        "/c/",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(r.header("location").is_none());
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json()["error"], "unknown_link", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn substituted_values_cannot_change_the_host() {
    let s = TestServer::start().await;
    s.link(
        json!({"slug": "x", "destination": "https://good.example/p?a={utm_source}&c={click_id}"}),
    )
    .await;
    let r = s
        .get("/c/x?utm_source=%2F%2Fevil.example%2F%3F%40x%5C")
        .await;
    let loc = r.header("location").unwrap();
    assert!(
        loc.starts_with("https://good.example/p?a=%2F%2Fevil.example%2F%3F%40x%5C&c="),
        "{loc}"
    );
    // Placeholders in the host are refused when the link is created.
    let bad = s
        .admin(
            Method::POST,
            "/api/v1/links",
            Some(json!({"destination": "https://{utm_source}.example/"})),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"], "invalid_destination");
    let bad = s
        .admin(
            Method::POST,
            "/api/v1/links",
            Some(json!({"destination": "javascript:alert(1)"})),
        )
        .await;
    assert_eq!(bad.status, 400);
}
