//! TikTok (Events API 2.0, `v1.3/event/track`): a `tiktok` destination's
//! config, its request, and how TikTok's answers read (it reports errors
//! as a non-zero `code` in a 2xx body).
//!
//! `POST {origin}/open_api/v1.3/event/track/`, headers `access-token`,
//! `content-type`; body
//! `{"event_source":"web", "event_source_id": pixel_code, "data":[{event, event_time, event_id, user:{ttclid?, ip?, user_agent?}, properties:{value?, currency?}}]}`.
//!
//! Confirmed in TikTok's documentation (stored copies, Nov 2026):
//! `POST https://business-api.tiktok.com/open_api/v1.3/event/track/`,
//! `Access-Token` header, `event_source`, `event_source_id`, `data[]` with
//! `event`, `event_id`, `event_time` (Unix seconds), `user.ttclid`,
//! `user.ip`, `user.user_agent`, `properties.value`/`currency`; a success
//! answer is `{"code":0,"message":"OK"}`. Since May 2025 the standard
//! events `CompletePayment` and `SubmitForm` are renamed `Purchase` and
//! `Lead` ("any new Pixel setup should use Lead or Purchase"; the legacy
//! names are still converted), so the new names are sent
//! (ads.tiktok.com/help/article/how-to-adopt-tiktoks-updated-standard-events).
//!
//! Not confirmed (best knowledge, kept explicit so it is easy to change):
//! the 7-day age limit; `code` 40100 (rate limit) and codes of 50000 and
//! above (server errors) retried, every other non-zero `code` dead.

use serde_json::{Map, Value, json};

use super::{
    Answer, Attempt, BuildError, Config, Info, OutRequest, Platform, Verdict, amount_number,
    check_header_value, check_no_spaces, days, event_name, json_post, param,
};

pub(super) struct TikTok;

static INFO: Info = Info {
    name: "tiktok",
    label: "TikTok",
    // Not confirmed.
    max_age: days(7),
    default_origin: Some("https://business-api.tiktok.com"),
    required: &[
        ("pixel_code", "the pixel code from TikTok Events Manager"),
        (
            "access_token",
            "an Events API access token (pixel Settings > Generate Access Token)",
        ),
    ],
    optional: &[],
    secret_fields: &["access_token"],
};

impl Platform for TikTok {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn validate(&self, config: Config<'_>) -> Result<(), String> {
        check_header_value(&INFO, config, "access_token")?;
        check_no_spaces(&INFO, config)
    }

    fn build(&self, a: &Attempt<'_>) -> Result<OutRequest, BuildError> {
        let ev = a.ev;
        let mut user = Map::new();
        if let Some(c) = ev.click {
            if let Some(t) = param(c, "ttclid") {
                user.insert("ttclid".into(), json!(t));
            }
            if !c.ip.is_empty() {
                user.insert("ip".into(), json!(c.ip));
            }
            if let Some(ua) = c.user_agent.as_deref().filter(|u| !u.is_empty()) {
                user.insert("user_agent".into(), json!(ua));
            }
        }
        let mut props = Map::new();
        if let Some(v) = amount_number(ev.conversion) {
            props.insert("value".into(), v);
            props.insert("currency".into(), json!(ev.conversion.currency));
        }
        let body = json!({
            "event_source": "web",
            "event_source_id": a.config.str("pixel_code"),
            "data": [{
                "event": event_name(ev.conversion, "Purchase", "Lead"),
                "event_time": ev.conversion.created_ms / 1000,
                "event_id": ev.conversion_id,
                "user": user,
                "properties": props,
            }],
        });
        Ok(json_post(
            format!("{}/open_api/v1.3/event/track/", a.origin()),
            vec![(
                "access-token".to_string(),
                a.config.str("access_token").to_string(),
            )],
            &body,
        ))
    }

    fn refused(&self, answer: &Answer<'_>, body: &Value) -> Option<Verdict> {
        let code = body.get("code").and_then(Value::as_i64).unwrap_or(0);
        if code == 0 {
            return None;
        }
        let text = answer.with_detail(format!("TikTok refused the event (HTTP {})", answer.status));
        Some(if code == 40100 || code >= 50000 {
            answer.retry(text)
        } else {
            answer.dead(text)
        })
    }

    fn error_text(&self, body: &Value) -> Option<String> {
        body.get("code").map(|c| {
            let msg = body.get("message").and_then(Value::as_str).unwrap_or("");
            format!("code {c}: {msg}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::platforms::fixtures::*;
    use crate::forward::platforms::{Kind, build, classify, validate_config};
    use hyper::HeaderMap;

    #[test]
    fn tiktok_request() {
        let (c, cl) = (conversion(), click());
        let cfg = json!({"pixel_code": "CABC123", "access_token": "tt-token-1"});
        let r = build(Kind::TikTok, &cfg, None, &ev(&c, Some(&cl)), None).unwrap();
        assert_eq!(
            r.url,
            "https://business-api.tiktok.com/open_api/v1.3/event/track/"
        );
        assert_eq!(
            r.headers,
            vec![
                (s("access-token"), s("tt-token-1")),
                (s("content-type"), s("application/json")),
            ]
        );
        assert_eq!(
            body(&r),
            json!({
                "event_source": "web",
                "event_source_id": "CABC123",
                "data": [{
                    "event": "Purchase",
                    "event_time": CONV_MS / 1000,
                    "event_id": "cnv_01",
                    "user": {"ttclid": "E.C.P.xyz", "ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (X11)"},
                    "properties": {"value": dec("12.50"), "currency": "USD"},
                }],
            })
        );
        let mut lead = conversion();
        lead.kind = s("lead");
        lead.amount = None;
        let r = build(Kind::TikTok, &cfg, None, &ev(&lead, None), None).unwrap();
        let b = body(&r);
        assert_eq!(b["data"][0]["event"], "Lead");
        assert_eq!(b["data"][0]["user"], json!({}));
        assert_eq!(b["data"][0]["properties"], json!({}));
    }

    #[test]
    fn tiktok_config() {
        let err = |k: Kind, v: Value| validate_config(k, &v).unwrap_err();
        let e = err(
            Kind::TikTok,
            json!({"pixel_code": "C1", "access_token": "tök en"}),
        );
        assert!(e.contains("HTTP header"), "{e}");
    }

    #[test]
    fn tiktok_answers() {
        let none = HeaderMap::new();
        let ok = |k, st, b: &str| classify(k, st, &none, b.as_bytes(), NOW_MS, &[]);
        assert_eq!(
            ok(
                Kind::TikTok,
                200,
                r#"{"code":0,"message":"OK","request_id":"r"}"#
            ),
            Verdict::Delivered
        );
        // TikTok answers 200 with a non-zero code.
        let v = ok(
            Kind::TikTok,
            200,
            r#"{"code":40002,"message":"Invalid pixel_code","request_id":"r"}"#,
        );
        assert!(matches!(v, Verdict::Dead { .. }), "{v:?}");
        assert!(
            reason(&v).contains("code 40002: Invalid pixel_code"),
            "{v:?}"
        );
        assert!(matches!(
            ok(
                Kind::TikTok,
                200,
                r#"{"code":40100,"message":"Too many requests"}"#
            ),
            Verdict::Retry { .. }
        ));
        assert!(matches!(
            ok(
                Kind::TikTok,
                202,
                r#"{"code":50000,"message":"System error"}"#
            ),
            Verdict::Retry { .. }
        ));
    }
}
