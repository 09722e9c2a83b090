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

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// Click `path` with `headers` (and `method`); expects the 302; returns the
/// stored click's JSON.
async fn click_json(
    s: &TestServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> serde_json::Value {
    let r = s.send(method, path, headers, b"").await;
    assert_eq!(r.status, 302, "{}", text(&r));
    assert!(r.header("location").is_some());
    let id = r.header("x-postbackd-click-id").unwrap();
    let c = s
        .admin(Method::GET, &format!("/api/v1/clicks/{id}"), None)
        .await;
    assert_eq!(c.status, 200, "{}", text(&c));
    c.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn click_quality_is_recorded() {
    let s = TestServer::start().await;
    s.link(json!({"slug": "q", "destination": "https://n.example/?s={click_id}"}))
        .await;
    let c = click_json(&s, Method::GET, "/c/q", &[("user-agent", IPHONE)]).await;
    assert_eq!(c["device"], "mobile");
    assert_eq!(c["os"], "iOS");
    assert_eq!(c["browser"], "Mobile Safari");
    assert_eq!(c["bot"], false);
    assert_eq!(c["unique"], true);
    // The peer is loopback and there is no database: unknown.
    assert_eq!(c["country"], serde_json::Value::Null);
}

/// Bots, HEAD requests, prefetches and agent-less clicks are stored and
/// redirected like any click, flagged `bot`, and never unique.
#[tokio::test(flavor = "multi_thread")]
async fn bots_head_and_prefetch_are_stored_redirected_and_flagged() {
    let s = TestServer::start().await;
    s.link(json!({"slug": "b", "destination": "https://n.example/?s={click_id}"}))
        .await;
    type Case<'a> = (Method, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (Method::GET, &[("user-agent", GOOGLEBOT)], "Googlebot"),
        (Method::GET, &[("user-agent", "curl/8.5.0")], "curl"),
        (Method::GET, &[], "no user agent"),
        (Method::HEAD, &[("user-agent", CHROME)], "HEAD"),
        (
            Method::GET,
            &[("user-agent", CHROME), ("sec-purpose", "prefetch")],
            "Sec-Purpose: prefetch",
        ),
        (
            Method::GET,
            &[("user-agent", CHROME), ("x-moz", "prefetch")],
            "X-Moz",
        ),
    ];
    for (method, headers, what) in cases {
        let c = click_json(&s, method.clone(), "/c/b", headers).await;
        assert_eq!(c["bot"], true, "{what}: {c}");
        assert_eq!(c["device"], "bot", "{what}");
        assert_eq!(c["unique"], false, "{what}");
    }
    // The same browser without a prefetch header is a visitor, and
    // unique: the bot clicks above were not remembered as its visits.
    let c = click_json(&s, Method::GET, "/c/b", &[("user-agent", CHROME)]).await;
    assert_eq!(
        (&c["bot"], &c["device"]),
        (&json!(false), &json!("desktop"))
    );
    assert_eq!(c["unique"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn unique_per_visitor_and_link_within_the_window() {
    let s = TestServer::start().await;
    for slug in ["u1", "u2"] {
        s.link(json!({"slug": slug, "destination": "https://n.example/?s={click_id}"}))
            .await;
    }
    let ua = |u: &'static str| [("user-agent", u)];
    let unique = |c: serde_json::Value| c["unique"].as_bool().unwrap();
    assert!(unique(
        click_json(&s, Method::GET, "/c/u1", &ua(IPHONE)).await
    ));
    assert!(!unique(
        click_json(&s, Method::GET, "/c/u1?x=2", &ua(IPHONE)).await
    ));
    // Another link, same visitor: unique there.
    assert!(unique(
        click_json(&s, Method::GET, "/c/u2", &ua(IPHONE)).await
    ));
    // Another user agent from the same IP: another visitor.
    assert!(unique(
        click_json(&s, Method::GET, "/c/u1", &ua(CHROME)).await
    ));
    assert!(!unique(
        click_json(&s, Method::GET, "/c/u1", &ua(CHROME)).await
    ));

    // Clicks racing from one visitor: exactly one is unique.
    let bot = ua(GOOGLEBOT);
    let racing: Vec<_> = (0..8)
        .map(|_| click_json(&s, Method::GET, "/c/u2", &bot))
        .collect();
    for c in futures_join(racing).await {
        assert_eq!(c["unique"], false, "bots are never unique");
    }
    const FIREFOX: &str =
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
    let firefox = ua(FIREFOX);
    let racing: Vec<_> = (0..8)
        .map(|_| click_json(&s, Method::GET, "/c/u2", &firefox))
        .collect();
    let n = futures_join(racing)
        .await
        .into_iter()
        .filter(|c| c["unique"] == true)
        .count();
    assert_eq!(n, 1);
}

/// Runs the futures concurrently (on the test's runtime) and collects
/// their outputs in order.
async fn futures_join<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = fs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

/// A repeat click after the window is unique again (the window is read
/// from the setting; the test moves the stored visit back in time rather
/// than waiting an hour).
#[tokio::test(flavor = "multi_thread")]
async fn unique_again_after_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_at(dir.path(), |c| c.unique_window_hours = 1).await;
    s.link(json!({"slug": "w", "destination": "https://n.example/?s={click_id}"}))
        .await;
    let c = click_json(&s, Method::GET, "/c/w", &[("user-agent", CHROME)]).await;
    assert_eq!(c["unique"], true);
    s.stop().await;
    let store = postbackd::store::Store::open(&dir.path().join("postbackd.redb")).unwrap();
    store
        .write(|ctx| {
            use redb::ReadableTable;
            let keys: Vec<Vec<u8>> = ctx
                .visits()?
                .iter()?
                .map(|r| r.map(|(k, _)| k.value().to_vec()))
                .collect::<Result<_, _>>()?;
            assert_eq!(keys.len(), 1, "one visitor remembered, by hash");
            let hour_ago = postbackd::util::clock::now_ms() - 3_600_000;
            ctx.visits()?.insert(keys[0].as_slice(), hour_ago)?;
            Ok(())
        })
        .await
        .unwrap();
    store.close().await;
    let s = TestServer::start_at(dir.path(), |c| c.unique_window_hours = 1).await;
    let c = click_json(&s, Method::GET, "/c/w", &[("user-agent", CHROME)]).await;
    assert_eq!(c["unique"], true);
    let c = click_json(&s, Method::GET, "/c/w", &[("user-agent", CHROME)]).await;
    assert_eq!(c["unique"], false);
    s.stop().await;
}

fn country_db(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("country.mmdb");
    let bytes = crate::mmdb_writer::build(
        &[([81, 2, 64, 0], 18, "GB"), ([203, 0, 113, 0], 24, "AU")],
        crate::mmdb_writer::Shape::CountryCode,
    );
    std::fs::write(&path, bytes).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn country_from_the_geoip_db() {
    let dir = tempfile::tempdir().unwrap();
    let db = country_db(dir.path());
    let s = TestServer::start_with(|c| {
        c.geoip_db = Some(db.clone());
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    s.link(json!({"slug": "g", "destination": "https://n.example/?s={click_id}"}))
        .await;
    let country = |c: serde_json::Value| c["country"].clone();
    let fwd = |ip: &'static str| [("user-agent", CHROME), ("x-forwarded-for", ip)];
    assert_eq!(
        country(click_json(&s, Method::GET, "/c/g", &fwd("81.2.69.160")).await),
        "GB"
    );
    assert_eq!(
        country(click_json(&s, Method::GET, "/c/g", &fwd("203.0.113.9")).await),
        "AU"
    );
    // Not in the database: unknown...
    assert_eq!(
        country(click_json(&s, Method::GET, "/c/g", &fwd("192.0.2.1")).await),
        serde_json::Value::Null
    );
    // ...unless the trusted proxy names it.
    let c = click_json(
        &s,
        Method::GET,
        "/c/g",
        &[("x-forwarded-for", "192.0.2.1"), ("cf-ipcountry", "NZ")],
    )
    .await;
    assert_eq!(country(c), "NZ");
    // The database wins over the header where it knows the address.
    let c = click_json(
        &s,
        Method::GET,
        "/c/g",
        &[("x-forwarded-for", "81.2.69.160"), ("cf-ipcountry", "NZ")],
    )
    .await;
    assert_eq!(country(c), "GB");
}

#[tokio::test(flavor = "multi_thread")]
async fn cf_ipcountry_only_behind_a_trusted_proxy() {
    let s = TestServer::start().await;
    s.link(json!({"slug": "cf", "destination": "https://n.example/?s={click_id}"}))
        .await;
    // The peer (127.0.0.1) is not trusted: anyone could send the header.
    let c = click_json(&s, Method::GET, "/c/cf", &[("cf-ipcountry", "DE")]).await;
    assert_eq!(c["country"], serde_json::Value::Null);
    let s =
        TestServer::start_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    s.link(json!({"slug": "cf", "destination": "https://n.example/?s={click_id}"}))
        .await;
    let c = click_json(&s, Method::GET, "/c/cf", &[("cf-ipcountry", "de")]).await;
    assert_eq!(c["country"], "DE");
    // Cloudflare's "unknown" and Tor codes are stored as unknown.
    for code in ["XX", "T1"] {
        let c = click_json(&s, Method::GET, "/c/cf", &[("cf-ipcountry", code)]).await;
        assert_eq!(c["country"], serde_json::Value::Null, "{code}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_geoip_db_that_is_not_one_refuses_the_start() {
    use postbackd::app::{App, StartError};
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("country.mmdb");
    std::fs::write(&bad, "ip,country\n1.2.3.4,US\n").unwrap();
    for (path, says) in [
        (bad, "not a MaxMind DB"),
        (dir.path().join("missing.mmdb"), "cannot read it"),
    ] {
        let mut cfg = postbackd::config::Config::with_data_dir(dir.path().join("data"));
        cfg.geoip_db = Some(path.clone());
        let err = match App::open(cfg) {
            Err(e @ StartError::Geo(_)) => e.to_string(),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("started with geoip_db {}", path.display()),
        };
        assert!(err.contains(says) && err.contains("geoip_db"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}
