//! Meta (Conversions API): a `meta` destination's config, its request, and
//! how Meta's answers and errors read. The normalization and hashing of the
//! user data sent stay in [`crate::forward::meta`], which has its own test
//! vectors.
//!
//! `POST {origin}/{api_version}/{pixel_id}/events`,
//! `content-type: application/json`, body
//! `{"data":[{event_name, event_time, event_id, action_source, user_data, custom_data?}], "test_event_code"?, "access_token"}`.
//! The token travels in the body, never in the URL (URLs end up in proxy
//! logs). Default origin `https://graph.facebook.com`, default
//! `api_version` [`META_DEFAULT_API_VERSION`].
//!
//! Confirmed in Meta's documentation (stored copies, Nov 2026): the
//! `/{API_VERSION}/{PIXEL_ID}/events` edge, `data`, `test_event_code`,
//! `event_time` in Unix seconds and at most 7 days old ("If any event_time
//! in data is greater than 7 days in the past, we return an error for the
//! entire request"), `event_id` for deduplication
//! (developers.facebook.com/documentation/ads-commerce/conversions-api/using-the-api,
//! …/parameters/server-event); Graph API v26.0 is the latest version
//! (released 2026-07-29), v21.0 is available only until 2027-01-21
//! (developers.facebook.com/docs/graph-api/changelog).
//!
//! Not confirmed (best knowledge, kept explicit so it is easy to change):
//! `access_token` inside a JSON body (the docs' curl example sends `data`
//! and `access_token` as form fields of the POST body, and the Graph API
//! reads POST parameters from a JSON body too, but no page found shows
//! exactly this form); `action_source` `website` for a conversion with a
//! stored click (the docs also want `event_source_url` for website events,
//! which postbacks do not carry) and `other` without one; 4xx errors with
//! `is_transient: true` or codes 1, 2, 4, 17, 32, 613 retried.

use serde_json::{Map, Value, json};

use super::{
    Answer, Attempt, BuildError, Config, Event, Info, OutRequest, Platform, Verdict, amount_number,
    days, event_name, is_version, json_post,
};
use crate::forward::meta;

/// Graph API version used when a meta destination sets none.
pub const META_DEFAULT_API_VERSION: &str = "v26.0";

pub(super) struct Meta;

static INFO: Info = Info {
    name: "meta",
    label: "Meta",
    // Documented.
    max_age: days(7),
    default_origin: Some("https://graph.facebook.com"),
    required: &[
        (
            "pixel_id",
            "the dataset (pixel) ID from Meta Events Manager, digits only",
        ),
        (
            "access_token",
            "a Conversions API access token (Events Manager > dataset > Settings > Generate access token)",
        ),
    ],
    optional: &[
        (
            "test_event_code",
            "the code shown in Events Manager's Test events tab",
        ),
        ("api_version", "a Graph API version such as v26.0"),
    ],
    secret_fields: &["access_token"],
};

impl Platform for Meta {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn validate(&self, config: Config<'_>) -> Result<(), String> {
        if let Some(p) = config.get("pixel_id")
            && !p.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(format!("config.pixel_id must be {}", INFO.hint("pixel_id")));
        }
        if let Some(v) = config.get("api_version")
            && !is_version(v, true)
        {
            return Err(format!(
                "config.api_version must look like v26.0 (a Graph API version), or be left out for {META_DEFAULT_API_VERSION}"
            ));
        }
        Ok(())
    }

    fn build(&self, a: &Attempt<'_>) -> Result<OutRequest, BuildError> {
        let version = a
            .config
            .get("api_version")
            .unwrap_or(META_DEFAULT_API_VERSION);
        let pixel = a.config.str("pixel_id");
        let mut body = Map::new();
        body.insert("data".into(), Value::Array(vec![meta_event(a.ev)]));
        if let Some(code) = a.config.get("test_event_code") {
            body.insert("test_event_code".into(), json!(code));
        }
        body.insert("access_token".into(), json!(a.config.str("access_token")));
        Ok(json_post(
            format!("{}/{version}/{pixel}/events", a.origin()),
            vec![],
            &Value::Object(body),
        ))
    }

    fn refused(&self, answer: &Answer<'_>, body: &Value) -> Option<Verdict> {
        (body.get("events_received").and_then(Value::as_u64) == Some(0)).then(|| {
            answer.dead(
                answer.with_detail(format!("Meta received 0 events (HTTP {})", answer.status)),
            )
        })
    }

    /// `is_transient`, or the documented throttling and temporary codes (1
    /// unknown, 2 service, 4/17/32/613 rate limits).
    fn transient(&self, answer: &Answer<'_>) -> bool {
        let Some(e) = answer.json.and_then(|v| v.get("error")) else {
            return false;
        };
        e.get("is_transient").and_then(Value::as_bool) == Some(true)
            || e.get("code")
                .and_then(Value::as_i64)
                .is_some_and(|c| matches!(c, 1 | 2 | 4 | 17 | 32 | 613))
    }

    /// `{"error": {"type", "code", "error_subcode", "error_user_msg" or
    /// "message"}}` as `type #code/subcode message`.
    fn error_text(&self, body: &Value) -> Option<String> {
        body.get("error").filter(|e| e.is_object()).map(|e| {
            let msg = e.get("error_user_msg").or_else(|| e.get("message"));
            let mut s = String::new();
            if let Some(t) = e.get("type").and_then(Value::as_str) {
                s.push_str(t);
                s.push(' ');
            }
            if let Some(c) = e.get("code").and_then(Value::as_i64) {
                s.push_str(&format!("#{c}"));
                if let Some(sc) = e.get("error_subcode").and_then(Value::as_i64) {
                    s.push_str(&format!("/{sc}"));
                }
                s.push(' ');
            }
            if let Some(m) = msg.and_then(Value::as_str) {
                s.push_str(m);
            }
            s
        })
    }
}

/// Postback parameter names (lowercase, `-` read as `_`) holding PII, per
/// Meta user-data field.
const META_EXTRA: &[(&str, &[&str])] = &[
    (
        "em",
        &["email", "em", "e_mail", "customer_email", "user_email"],
    ),
    (
        "ph",
        &["phone", "ph", "phone_number", "tel", "telephone", "mobile"],
    ),
    (
        "fn",
        &["first_name", "firstname", "fname", "fn", "given_name"],
    ),
    (
        "ln",
        &[
            "last_name",
            "lastname",
            "lname",
            "ln",
            "surname",
            "family_name",
        ],
    ),
    (
        "db",
        &[
            "dob",
            "db",
            "birthdate",
            "birth_date",
            "date_of_birth",
            "birthday",
        ],
    ),
    ("ge", &["gender", "ge", "sex"]),
    ("external_id", &["external_id", "user_id", "customer_id"]),
];

fn meta_event(ev: &Event<'_>) -> Value {
    let c = ev.conversion;
    let mut user = Map::new();
    if let Some(cl) = ev.click {
        if !cl.ip.is_empty() {
            user.insert("client_ip_address".into(), json!(cl.ip));
        }
        if let Some(ua) = cl.user_agent.as_deref().filter(|u| !u.is_empty()) {
            user.insert("client_user_agent".into(), json!(ua));
        }
        if let Some(fbc) = cl.fbc.as_deref().filter(|v| !v.is_empty()) {
            user.insert("fbc".into(), json!(fbc));
        }
        if let Some(fbp) = cl.fbp.as_deref().filter(|v| !v.is_empty()) {
            user.insert("fbp".into(), json!(fbp));
        }
    }
    for (field, value) in [
        ("ct", &c.city),
        ("st", &c.state),
        ("zp", &c.zip),
        ("country", &c.country),
    ] {
        if let Some(h) = value.as_deref().and_then(|v| meta::hash(field, v)) {
            user.insert(field.into(), json!(h));
        }
    }
    for (field, names) in META_EXTRA {
        let hashed = c.extra.iter().find_map(|(k, v)| {
            let k = k.trim().to_ascii_lowercase().replace('-', "_");
            if names.contains(&k.as_str()) {
                meta::hash(field, v)
            } else {
                None
            }
        });
        if let Some(h) = hashed {
            user.insert((*field).into(), json!(h));
        }
    }
    let has_browser = ev
        .click
        .is_some_and(|cl| cl.user_agent.as_deref().is_some_and(|u| !u.is_empty()));
    let mut event = Map::new();
    event.insert(
        "event_name".into(),
        json!(event_name(c, "Purchase", "Lead")),
    );
    event.insert("event_time".into(), json!(c.created_ms / 1000));
    event.insert("event_id".into(), json!(ev.conversion_id));
    event.insert(
        "action_source".into(),
        json!(if has_browser { "website" } else { "other" }),
    );
    event.insert("user_data".into(), Value::Object(user));
    if let Some(v) = amount_number(c) {
        event.insert(
            "custom_data".into(),
            json!({"value": v, "currency": c.currency}),
        );
    }
    Value::Object(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::platforms::fixtures::*;
    use crate::forward::platforms::{
        Kind, admin_url, build, classify, secret_fields, validate_config,
    };
    use hyper::{HeaderMap, Method};

    #[test]
    fn meta_request() {
        let (c, cl) = (conversion(), click());
        let r = build(Kind::Meta, &meta_cfg(), None, &ev(&c, Some(&cl)), None).unwrap();
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.url, "https://graph.facebook.com/v26.0/1234567890/events");
        assert!(!r.url.contains("EAAtoken123"));
        assert_eq!(r.headers, vec![(s("content-type"), s("application/json"))]);
        let h = |f: &str, v: &str| meta::hash(f, v).unwrap();
        assert_eq!(
            body(&r),
            json!({
                "data": [{
                    "event_name": "Purchase",
                    "event_time": CONV_MS / 1000,
                    "event_id": "cnv_01",
                    "action_source": "website",
                    "user_data": {
                        "client_ip_address": "203.0.113.7",
                        "client_user_agent": "Mozilla/5.0 (X11)",
                        "fbc": "fb.1.1763613600000.IwAR1",
                        "fbp": "fb.1.1700000000.123",
                        "ct": h("ct", "seattle"),
                        "st": h("st", "wa"),
                        "zp": h("zp", "98121"),
                        "country": h("country", "us"),
                        "em": "971fa2e631db2a508b3fc6ed98016d354e61ecf0d41268e8ab6396771233d293",
                        "ph": h("ph", "12062062006"),
                        "fn": h("fn", "george"),
                    },
                    "custom_data": {"value": dec("12.50"), "currency": "USD"},
                }],
                "test_event_code": "TEST42",
                "access_token": "EAAtoken123",
            })
        );
        // The exact decimal text is kept.
        assert!(String::from_utf8_lossy(&r.body).contains("\"value\":12.50"));
    }

    #[test]
    fn meta_lead_custom_and_base_url() {
        let mut c = conversion();
        c.kind = s("lead");
        c.amount = None;
        c.extra.clear();
        let cfg = json!({"pixel_id": "1", "access_token": "EAAtoken123", "api_version": "v25.0"});
        let r = build(
            Kind::Meta,
            &cfg,
            Some("http://127.0.0.1:9999/ignored/path"),
            &ev(&c, None),
            None,
        )
        .unwrap();
        assert_eq!(r.url, "http://127.0.0.1:9999/v25.0/1/events");
        let b = body(&r);
        let e = &b["data"][0];
        assert_eq!(e["event_name"], "Lead");
        assert_eq!(e["action_source"], "other");
        assert!(e.get("custom_data").is_none());
        assert!(e["user_data"].get("client_ip_address").is_none());
        assert!(b.get("test_event_code").is_none());
        c.event = Some(s("Trial"));
        let r = build(Kind::Meta, &cfg, None, &ev(&c, None), None).unwrap();
        assert_eq!(body(&r)["data"][0]["event_name"], "Trial");
    }

    #[test]
    fn meta_config() {
        assert!(validate_config(Kind::Meta, &meta_cfg()).is_ok());
        let err = |k: Kind, v: Value| validate_config(k, &v).unwrap_err();
        let e = err(Kind::Meta, json!({"pixel_id": "abc", "access_token": "t"}));
        assert!(e.contains("digits"), "{e}");
        let e = err(
            Kind::Meta,
            json!({"pixel_id": "1", "access_token": "t", "api_version": "21"}),
        );
        assert!(e.contains("v26.0"), "{e}");
        assert_eq!(secret_fields(Kind::Meta), &["access_token"]);
        assert_eq!(admin_url(Kind::Meta, &meta_cfg()), None);
    }

    #[test]
    fn meta_answers() {
        let none = HeaderMap::new();
        let ok = |k, st, b: &str| classify(k, st, &none, b.as_bytes(), NOW_MS, &[]);
        assert_eq!(
            ok(
                Kind::Meta,
                200,
                r#"{"events_received":1,"messages":[],"fbtrace_id":"x"}"#
            ),
            Verdict::Delivered
        );
        assert!(matches!(
            ok(Kind::Meta, 200, r#"{"events_received":0}"#),
            Verdict::Dead { .. }
        ));

        let meta400 = r#"{"error":{"message":"Invalid parameter","type":"OAuthException","code":100,"error_subcode":2804008,"error_user_msg":"The timestamp for this event is too far in the past.","fbtrace_id":"A"}}"#;
        let v = classify(Kind::Meta, 400, &none, meta400.as_bytes(), NOW_MS, &[]);
        assert_eq!(
            v,
            Verdict::Dead {
                reason: s(
                    "Meta answered HTTP 400: OAuthException #100/2804008 The timestamp for this event is too far in the past."
                )
            }
        );
        let meta_throttle = r#"{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","code":4,"is_transient":true}}"#;
        assert!(matches!(
            classify(
                Kind::Meta,
                400,
                &none,
                meta_throttle.as_bytes(),
                NOW_MS,
                &[]
            ),
            Verdict::Retry { .. }
        ));
        let v = classify(
            Kind::Meta,
            401,
            &none,
            br#"{"error":{"message":"Error validating access token: Session has expired","type":"OAuthException","code":190}}"#,
            NOW_MS,
            &[],
        );
        assert!(matches!(v, Verdict::Dead { .. }), "{v:?}");
        assert!(
            reason(&v).starts_with("Meta answered HTTP 401: OAuthException #190 Error validating")
        );
    }
}
