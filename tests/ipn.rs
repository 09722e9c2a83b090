//! `POST /ipn/{key}` per network: a sale matched to a real click, its
//! retry a duplicate, refund and chargeback updating the original, a rebill
//! linked to it, a test transaction flagged and not forwarded, tampered
//! bodies and wrong secrets refused 401, a notification without a click ID
//! stored unmatched, non-money types ignored, the events log (redacted,
//! decrypted) and replay.

use hyper::Method;
use postbackd::inbound::ipn::{self, AmountBasis, Format, Sample, Settings, TxType};
use serde_json::{Value, json};

use crate::util::{TestServer, text};

const SECRET: &str = "S3CRET-KEY-2026";

fn settings(format: Format, secret: &str) -> Settings {
    Settings {
        format,
        secret: secret.into(),
        click_id_field: None,
        amount: AmountBasis::Commission,
        include_tests: false,
    }
}

/// A notification as the network sends it: (content type, body).
pub fn notification(
    format: Format,
    secret: &str,
    tx_type: TxType,
    test: bool,
    click_id: Option<&str>,
    receipt: &str,
    sequence: &str,
) -> (&'static str, Vec<u8>) {
    let amount = if tx_type == TxType::Refund && format == Format::ClickBank {
        // ClickBank reports a refund as the negative reversal.
        "-7.50"
    } else {
        "7.50"
    };
    ipn::sample(
        &settings(format, secret),
        &Sample {
            tx_type,
            test,
            click_id: click_id.map(str::to_string),
            receipt: receipt.into(),
            sequence: sequence.into(),
            amount: amount.into(),
            iv: *b"0123456789ABCDEF",
        },
    )
}

pub async fn post(
    s: &TestServer,
    key: &str,
    n: &(&str, Vec<u8>),
) -> postbackd::util::client::HttpResponse {
    s.send(
        Method::POST,
        &format!("/ipn/{key}"),
        &[("content-type", n.0)],
        &n.1,
    )
    .await
}

/// The verdict as JSON: the body, or for Digistore24's `OK` the stored
/// event (result, conversion ID) named by `X-Postbackd-Event-Id`.
async fn verdict(s: &TestServer, r: &postbackd::util::client::HttpResponse) -> Value {
    if r.body.as_ref() == b"OK" {
        assert_eq!(r.status, 200);
        let id = r.header("x-postbackd-event-id").expect("event id header");
        let e = s
            .admin(Method::GET, &format!("/api/v1/events/{id}"), None)
            .await
            .json();
        return json!({"result": e["result"], "conversion_id": e["conversion_id"], "event_id": id, "http_status": e["http_status"]});
    }
    let mut v = r.json();
    v["http_status"] = json!(r.status);
    v
}

async fn setup(s: &TestServer, format: Format) -> (Value, String) {
    s.source_and_link(
        json!({"name": format.as_str(), "ipn": {"format": format.as_str(), "secret": SECRET}}),
    )
    .await
}

async fn conversion(s: &TestServer, id: &Value) -> Value {
    s.admin(
        Method::GET,
        &format!("/api/v1/conversions/{}", id.as_str().unwrap()),
        None,
    )
    .await
    .json()
}

async fn full_cycle(format: Format) {
    let s = TestServer::start_with(|c| c.allow_private_destinations = true).await;
    let (src, slug) = setup(&s, format).await;
    let key = src["key"].as_str().unwrap().to_string();
    assert_eq!(src["ipn"]["format"], format.as_str());
    assert_eq!(src["ipn"]["secret"], "S3C…", "secret masked");
    assert!(
        src["ipn_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/ipn/{key}"))
    );
    // A destination, to see what is forwarded.
    let d = s
        .admin(
            Method::POST,
            "/api/v1/destinations",
            Some(json!({"name": "ts", "type": "postback", "config": {"url_template": "http://127.0.0.1:9/cb?c={click_id}"}, "filter": {"statuses": ["approved", "refunded", "chargeback"]}})),
        )
        .await;
    assert_eq!(d.status, 201, "{}", text(&d));
    let n = |tx, test, click: Option<&str>, receipt: &str, seq: &str| {
        notification(format, SECRET, tx, test, click, receipt, seq)
    };

    // Sale, matched to a real click.
    let click = s.click(&slug, "").await;
    let sale = n(TxType::Sale, false, Some(&click), "R100", "1");
    let v = verdict(&s, &post(&s, &key, &sale).await).await;
    assert_eq!(
        (v["result"].clone(), v["http_status"].clone()),
        (json!("matched"), json!(200)),
        "{v}"
    );
    let conv = v["conversion_id"].clone();
    let c = conversion(&s, &conv).await;
    assert_eq!(c["click_id"], click.as_str());
    assert_eq!(
        (c["type"].clone(), c["amount"].clone()),
        (json!("purchase"), json!("7.50"))
    );
    assert_eq!(c["transaction_id"], "R100");
    assert_eq!(c["test"], false);

    // The network's retry: a duplicate, never counted twice.
    let v = verdict(&s, &post(&s, &key, &sale).await).await;
    assert_eq!(v["result"], "duplicate", "{v}");
    assert_eq!(v["conversion_id"], conv);

    // Rebill: a new conversion tied to the sale and its click.
    let rebill = n(TxType::Rebill, false, None, "R100", "2");
    let v = verdict(&s, &post(&s, &key, &rebill).await).await;
    assert_eq!(v["result"], "matched", "{v}");
    assert_ne!(v["conversion_id"], conv);
    let r = conversion(&s, &v["conversion_id"]).await;
    assert_eq!(r["event"], "rebill");
    assert_eq!(r["original_conversion_id"], conv);
    assert_eq!(r["click_id"], click.as_str());
    let v = verdict(&s, &post(&s, &key, &rebill).await).await;
    assert_eq!(v["result"], "duplicate", "{v}");

    // Refund: the original's status, answered updated, its retry duplicate.
    let refund = n(TxType::Refund, false, Some(&click), "R100", "3");
    let v = verdict(&s, &post(&s, &key, &refund).await).await;
    assert_eq!(v["result"], "updated", "{v}");
    assert_eq!(v["conversion_id"], conv);
    assert_eq!(conversion(&s, &conv).await["status"], "refunded");
    let v = verdict(&s, &post(&s, &key, &refund).await).await;
    assert_eq!(v["result"], "duplicate", "{v}");

    // Chargeback of a second sale.
    let click2 = s.click(&slug, "").await;
    let v = verdict(
        &s,
        &post(
            &s,
            &key,
            &n(TxType::Sale, false, Some(&click2), "R200", "1"),
        )
        .await,
    )
    .await;
    let conv2 = v["conversion_id"].clone();
    let v = verdict(
        &s,
        &post(&s, &key, &n(TxType::Chargeback, false, None, "R200", "4")).await,
    )
    .await;
    assert_eq!(v["result"], "updated", "{v}");
    assert_eq!(v["conversion_id"], conv2);
    assert_eq!(conversion(&s, &conv2).await["status"], "chargeback");

    // A test transaction: stored flagged, not forwarded, not in reports.
    let report_before = s
        .admin(Method::GET, "/api/v1/reports?group_by=source", None)
        .await
        .json();
    let before = s
        .admin(Method::GET, "/api/v1/deliveries?limit=500", None)
        .await
        .json()["items"]
        .as_array()
        .unwrap()
        .len();
    let click3 = s.click(&slug, "").await;
    let test_sale = n(TxType::Sale, true, Some(&click3), "R300", "1");
    let v = verdict(&s, &post(&s, &key, &test_sale).await).await;
    assert_eq!(v["result"], "matched", "{v}");
    let t = conversion(&s, &v["conversion_id"]).await;
    assert_eq!(t["test"], true);
    let after = s
        .admin(Method::GET, "/api/v1/deliveries?limit=500", None)
        .await
        .json()["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "a test transaction was forwarded");
    let report_after = s
        .admin(Method::GET, "/api/v1/reports?group_by=source", None)
        .await
        .json();
    // Its click counts (a real visit), its sale does not.
    for m in ["conversions", "revenue", "refunds", "purchases"] {
        assert_eq!(
            report_after["totals"][m], report_before["totals"][m],
            "a test transaction counted in reports ({m}): {report_after}"
        );
    }
    // Sale, rebill, refund and chargeback were (the filter takes all three statuses).
    assert!(before >= 4, "{before} deliveries");
    let tests_only = s
        .admin(Method::GET, "/api/v1/conversions?test=true", None)
        .await
        .json();
    assert_eq!(tests_only["items"].as_array().unwrap().len(), 1);
    let real = s
        .admin(Method::GET, "/api/v1/conversions?test=false", None)
        .await
        .json();
    assert_eq!(real["items"].as_array().unwrap().len(), 3);

    // No click ID: stored unmatched, answered as a success (the network
    // would retry for days; nothing it can send later would fix it).
    let v = verdict(
        &s,
        &post(&s, &key, &n(TxType::Sale, false, None, "R400", "1")).await,
    )
    .await;
    assert_eq!(
        (v["result"].clone(), v["http_status"].clone()),
        (json!("unmatched"), json!(200)),
        "{v}"
    );
    assert_eq!(conversion(&s, &v["conversion_id"]).await["matched"], false);

    // Not about money: logged, answered, nothing counted.
    let v = verdict(
        &s,
        &post(
            &s,
            &key,
            &n(TxType::Other, false, Some(&click), "R100", "9"),
        )
        .await,
    )
    .await;
    assert_eq!(v["result"], "ignored", "{v}");

    // Wrong secret and a tampered body: 401, the uniform message, logged.
    let wrong = notification(
        format,
        "another-secret",
        TxType::Sale,
        false,
        Some(&click),
        "R500",
        "1",
    );
    let r = post(&s, &key, &wrong).await;
    assert_eq!(r.status, 401, "{}", text(&r));
    assert_eq!(r.json()["error"], "bad_signature");
    assert_eq!(
        r.json()["message"],
        ipn::bad_signature(format).message.as_str()
    );
    let wrong_event = r.json()["event_id"].as_str().unwrap().to_string();
    let mut tampered = n(TxType::Sale, false, Some(&click), "R600", "1");
    tamper(format, &mut tampered.1);
    let r = post(&s, &key, &tampered).await;
    assert_eq!(r.status, 401, "{}", text(&r));
    assert_eq!(r.json()["error"], "bad_signature");
    let e = s
        .admin(
            Method::GET,
            &format!("/api/v1/events/{}", r.json()["event_id"].as_str().unwrap()),
            None,
        )
        .await
        .json();
    assert_eq!(e["result"], "bad_signature");
    assert!(!e["body"].as_str().unwrap().is_empty(), "raw body logged");

    // Events: raw request stored, the secret never; ClickBank's plaintext kept.
    let sale_event = s
        .admin(
            Method::GET,
            &format!("/api/v1/conversions/{}", conv.as_str().unwrap()),
            None,
        )
        .await
        .json()["event_ids"][0]
        .as_str()
        .unwrap()
        .to_string();
    let e = s
        .admin(Method::GET, &format!("/api/v1/events/{sale_event}"), None)
        .await
        .json();
    assert_eq!(e["path"], format!("/ipn/{key}"));
    assert!(!e.to_string().contains(SECRET), "secret stored: {e}");
    if format == Format::ClickBank {
        assert!(
            e["decoded"]
                .as_str()
                .unwrap()
                .contains("\"receipt\":\"R100\""),
            "{e}"
        );
    }
    let all = s.admin(Method::GET, "/api/v1/events?limit=500", None).await;
    assert!(!text(&all).contains(SECRET));

    // Replay: the sale again is a duplicate; the refused one, after the
    // secret is fixed, is counted (except WarriorPlus, whose stored copy
    // lost its key: a refused one stays refused).
    let rp = s
        .admin(
            Method::POST,
            &format!("/api/v1/events/{sale_event}/replay"),
            None,
        )
        .await;
    assert_eq!(rp.status, 200, "{}", text(&rp));
    assert_eq!(
        rp.json()["response"]["result"],
        "duplicate",
        "{}",
        text(&rp)
    );
    let p = s
        .admin(
            Method::PATCH,
            &format!("/api/v1/sources/{}", src["id"]),
            Some(json!({"ipn": {"secret": "another-secret"}})),
        )
        .await;
    assert_eq!(p.status, 200, "{}", text(&p));
    let rp = s
        .admin(
            Method::POST,
            &format!("/api/v1/events/{wrong_event}/replay"),
            None,
        )
        .await;
    let want = if format == Format::WarriorPlus {
        "bad_signature"
    } else {
        "matched"
    };
    assert_eq!(
        rp.json()["response"]["result"]
            .as_str()
            .unwrap_or(rp.json()["response"]["error"].as_str().unwrap_or("")),
        want,
        "{}",
        text(&rp)
    );
    if format == Format::WarriorPlus {
        // A WarriorPlus event that was authentic replays without its key.
        let rp = s
            .admin(
                Method::POST,
                &format!("/api/v1/events/{sale_event}/replay"),
                None,
            )
            .await;
        assert_eq!(
            rp.json()["response"]["result"],
            "duplicate",
            "{}",
            text(&rp)
        );
    }

    let m = s.get("/metrics").await;
    assert!(
        text(&m).contains(&format!(
            "postbackd_ipn_total{{format=\"{}\",result=\"matched\"}}",
            format.as_str()
        )),
        "{}",
        text(&m)
    );
    s.stop().await;
}

/// Change one authenticated value of a notification.
fn tamper(format: Format, body: &mut Vec<u8>) {
    match format {
        Format::ClickBank => {
            // One bit of the ciphertext's last block: padding or JSON breaks.
            let mut env: Value = serde_json::from_slice(body).unwrap();
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD;
            let mut ct = b64.decode(env["notification"].as_str().unwrap()).unwrap();
            let i = ct.len() - 17;
            ct[i] ^= 0x20;
            env["notification"] = json!(b64.encode(ct));
            *body = serde_json::to_vec(&env).unwrap();
        }
        // WarriorPlus signs nothing: the key in the body is the whole
        // authentication, so "tampered" is a changed key.
        Format::WarriorPlus => {
            let s = String::from_utf8(body.clone()).unwrap();
            let t = s.replacen("S3CRET", "S3CRFT", 1);
            assert_ne!(s, t);
            *body = t.into_bytes();
        }
        _ => {
            let s = String::from_utf8(body.clone()).unwrap();
            let t = s.replacen("7.50", "750.00", 1);
            assert_ne!(s, t);
            *body = t.into_bytes();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn clickbank_ins() {
    full_cycle(Format::ClickBank).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jvzoo_jvzipn() {
    full_cycle(Format::JvZoo).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn warriorplus_ipn() {
    full_cycle(Format::WarriorPlus).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn digistore24_ipn() {
    full_cycle(Format::Digistore24).await;
}

/// The published ClickBank vector over HTTP: authentic, no trackingCodes,
/// so stored unmatched with its customer's geography.
#[tokio::test(flavor = "multi_thread")]
async fn clickbank_published_vector_is_stored_unmatched() {
    let s = TestServer::start().await;
    let v: Value = serde_json::from_str(include_str!("data/ipn_vectors.json")).unwrap();
    let cb = &v["clickbank_ins"];
    let src = s
        .source(json!({"name": "cb", "ipn": {"format": "clickbank", "secret": cb["secret"], "amount": "order"}}))
        .await;
    let body = serde_json::to_vec(&cb["body"]).unwrap();
    let r = post(
        &s,
        src["key"].as_str().unwrap(),
        &("application/json", body),
    )
    .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["result"], "unmatched");
    let c = conversion(&s, &r.json()["conversion_id"]).await;
    assert_eq!(
        (c["amount"].clone(), c["transaction_id"].clone()),
        (json!("10.00"), json!("AXN66NVG"))
    );
    assert_eq!(
        (c["country"].clone(), c["state"].clone(), c["zip"].clone()),
        (json!("US"), json!("NY"), json!("12845"))
    );
}

/// Digistore24's connection test gets its `OK`; refusals are JSON; a
/// source without IPN settings, a GET, an IP outside the allowlist and a
/// body that is not a form are each their documented refusal.
#[tokio::test(flavor = "multi_thread")]
async fn refusals_and_the_connection_test() {
    let s = TestServer::start().await;
    let src = s
        .source(json!({"name": "ds", "ipn": {"format": "digistore24", "secret": SECRET}}))
        .await;
    let key = src["key"].as_str().unwrap();
    let ok = notification(
        Format::Digistore24,
        SECRET,
        TxType::Other,
        false,
        None,
        "X",
        "1",
    );
    let r = post(&s, key, &ok).await;
    assert_eq!((r.status, r.body.as_ref()), (200, &b"OK"[..]));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));

    let plain = s.source(json!({"name": "plain"})).await;
    let r = post(&s, plain["key"].as_str().unwrap(), &ok).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("ipn_not_configured")),
        "{}",
        text(&r)
    );
    assert!(plain["ipn_url"].is_null());

    let r = s.get(&format!("/ipn/{key}")).await;
    assert_eq!(r.status, 405);
    let r = post(&s, "nosuchkey", &ok).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (404, json!("unknown_source"))
    );

    let r = post(
        &s,
        key,
        &(
            "application/x-www-form-urlencoded",
            b"event=on_payment&a=%FF".to_vec(),
        ),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("invalid_body")),
        "{}",
        text(&r)
    );

    // A ClickBank body that is not an INS v6 envelope (an old INS version).
    let cb = s
        .source(json!({"name": "cb", "ipn": {"format": "clickbank", "secret": "K"}}))
        .await;
    let r = post(
        &s,
        cb["key"].as_str().unwrap(),
        &(
            "application/x-www-form-urlencoded",
            b"ctransreceipt=1".to_vec(),
        ),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("invalid_body")),
        "{}",
        text(&r)
    );

    let locked = s
        .source(json!({"name": "locked", "allow_ips": ["203.0.113.0/24"], "ipn": {"format": "digistore24", "secret": SECRET}}))
        .await;
    let r = post(&s, locked["key"].as_str().unwrap(), &ok).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("ip_not_allowed"))
    );

    // The source's own rate limit applies to its IPN URL.
    let limited = s
        .source(json!({"name": "slow", "rate_limit": {"per_second": 1, "burst": 1}, "ipn": {"format": "digistore24", "secret": SECRET}}))
        .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(post(&s, limited["key"].as_str().unwrap(), &ok).await.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");

    // Settings validation.
    for (body, code) in [
        (
            json!({"name": "x", "ipn": {"format": "paypal", "secret": "k"}}),
            "invalid_ipn",
        ),
        (
            json!({"name": "x", "ipn": {"format": "jvzoo"}}),
            "invalid_ipn",
        ),
        (
            json!({"name": "x", "ipn": {"format": "jvzoo", "secret": "k", "amount": "gross"}}),
            "invalid_ipn",
        ),
        (
            json!({"name": "x", "ipn": {"format": "jvzoo", "secret": " k"}}),
            "invalid_ipn",
        ),
    ] {
        let r = s.admin(Method::POST, "/api/v1/sources", Some(body)).await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (400, json!(code)),
            "{}",
            text(&r)
        );
    }
    // The masked secret keeps the stored one; null removes the receiver.
    let id = src["id"].clone();
    let p = s
        .admin(
            Method::PATCH,
            &format!("/api/v1/sources/{id}"),
            Some(json!({"ipn": {"secret": "S3C…", "include_tests": true}})),
        )
        .await;
    assert_eq!(p.json()["ipn"]["include_tests"], true, "{}", text(&p));
    let r = post(&s, key, &ok).await;
    assert_eq!(r.body.as_ref(), b"OK");
    let p = s
        .admin(
            Method::PATCH,
            &format!("/api/v1/sources/{id}"),
            Some(json!({"ipn": null})),
        )
        .await;
    assert!(p.json()["ipn"].is_null());
}
