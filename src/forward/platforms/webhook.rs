//! Webhooks: a `webhook` destination's config (the admin's URL and a
//! Standard Webhooks secret), the JSON it is sent, and its signed request.
//! The receiver is the admin's own, so its answers need no more than the
//! shared status rules.
//!
//! `POST {url}` with the JSON documented at [`webhook_payload`], signed per
//! Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`).

use hyper::Method;
use serde_json::{Map, Value, json};

use super::{
    Attempt, BuildError, Config, Event, Info, OutRequest, Platform, days, permanent, with_origin,
};
use crate::util::signing;

pub(super) struct Webhook;

static INFO: Info = Info {
    name: "webhook",
    label: "the webhook",
    // How long the caller keeps retrying a delivery.
    max_age: days(7),
    default_origin: None,
    required: &[
        ("url", "the http(s) URL that receives the JSON events"),
        (
            "secret",
            "a Standard Webhooks secret whsec_<base64> (at least 16 bytes)",
        ),
    ],
    optional: &[],
    secret_fields: &["secret"],
};

impl Platform for Webhook {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn validate(&self, config: Config<'_>) -> Result<(), String> {
        if let Some(u) = config.get("url") {
            crate::tracking::click::validate_destination(u).map_err(|e| {
                format!(
                    "config.url is not usable ({}); it must be {}",
                    e,
                    INFO.hint("url")
                )
            })?;
            if u.contains(['{', '}']) {
                return Err(
                    "config.url must be a literal URL; use a postback destination for URL templates"
                        .into(),
                );
            }
        }
        if let Some(s) = config.get("secret") {
            signing::decode_secret(s).map_err(|e| {
                format!("config.secret is not usable: {e}; the server can generate one")
            })?;
        }
        Ok(())
    }

    fn admin_url(&self, config: Config<'_>) -> Option<String> {
        config.get("url").map(str::to_string)
    }

    /// No limit of its own: an update about an old conversion (a chargeback
    /// weeks later) is as fresh as the change, and the caller bounds the
    /// retries with `max_age`.
    fn event_time(&self, _ev: &Event<'_>) -> Option<(u64, &'static str)> {
        None
    }

    fn build(&self, a: &Attempt<'_>) -> Result<OutRequest, BuildError> {
        let ev = a.ev;
        let url = with_origin(a.config.str("url"), a.base_origin);
        let key = signing::decode_secret(a.config.str("secret"))
            .map_err(|e| permanent(format!("the webhook secret is not usable: {e}")))?;
        let body = serde_json::to_vec(&webhook_payload(ev)).unwrap_or_default();
        let ts = i64::try_from(ev.now_ms / 1000).unwrap_or(i64::MAX);
        let sig = signing::sign_webhook(&key, ev.delivery_id, ts, &body);
        Ok(OutRequest {
            method: Method::POST,
            url,
            headers: vec![
                ("content-type".to_string(), "application/json".to_string()),
                ("webhook-id".to_string(), ev.delivery_id.to_string()),
                ("webhook-timestamp".to_string(), ts.to_string()),
                ("webhook-signature".to_string(), sig),
            ],
            body,
        })
    }
}

/// The webhook body. Schema (every key always present; `null` when unknown):
///
/// ```text
/// {
///   "type": "conversion.created" | "conversion.updated",
///   "id": "<delivery ID>",              // equals the webhook-id header
///   "timestamp": "<RFC 3339>",          // the conversion's last change
///   "data": {
///     "conversion_id": "<ID>",
///     "created_at": "<RFC 3339>", "updated_at": "<RFC 3339>",
///     "source": <source ID, integer>,
///     "click_id": "<click ID as received>",
///     "matched": true | false,          // a stored click existed
///     "link": "<slug>" | null, "campaign": "<name>" | null,
///     "type": "lead" | "purchase",
///     "event": "<custom event name>" | null,
///     "amount": "<exact decimal text, e.g. \"12.50\">" | null,
///     "currency": "<ISO 4217>",
///     "status": "approved" | "pending" | "rejected" | "refunded" | "chargeback",
///     "transaction_id": "<ID>" | null,
///     "country": …, "state": …, "city": …, "zip": …,   // strings or null
///     "history": [{"at": "<RFC 3339>", "status": "<status>"}, …],
///     "extra": {"<postback parameter>": "<value>", …}, // first value wins
///     "click": null | {
///       "click_id": "<ID>", "created_at": "<RFC 3339>",
///       "link": "<slug>", "source": <integer> | null, "campaign": … | null,
///       "ip": "<address>", "user_agent": … | null, "referrer": … | null,
///       "fbc": … | null, "fbp": … | null,
///       "query": {"<parameter>": "<value>", …},       // first value wins
///       "device": "desktop" | "mobile" | "tablet" | "bot" | "other" | null,
///       "os": … | null, "browser": … | null,          // families, no versions
///       "country": "<ISO 3166-1 alpha-2>" | null,
///       "bot": true | false, "unique": true | false
///     }
///   }
/// }
/// ```
///
/// `type` is `conversion.updated` once the conversion's status has changed
/// (its history has more than one entry). Keys are sorted; the body is the
/// same on every attempt (only `webhook-timestamp` and the signature move).
pub fn webhook_payload(ev: &Event<'_>) -> Value {
    let c = ev.conversion;
    let time = crate::util::clock::rfc3339;
    let first_wins = |pairs: &[(String, String)]| {
        let mut m = Map::new();
        for (k, v) in pairs {
            m.entry(k.clone()).or_insert_with(|| json!(v));
        }
        Value::Object(m)
    };
    let click = ev.click.map(|cl| {
        json!({
            "click_id": c.click_id,
            "created_at": time(cl.ms),
            "link": cl.slug,
            "source": cl.source_id,
            "campaign": cl.campaign,
            "ip": cl.ip,
            "user_agent": cl.user_agent,
            "referrer": cl.referrer,
            "fbc": cl.fbc,
            "fbp": cl.fbp,
            "query": first_wins(&cl.params),
            "device": crate::views::device(cl),
            "os": cl.os,
            "browser": cl.browser,
            "country": cl.country,
            "bot": cl.bot,
            "unique": cl.unique,
        })
    });
    // The conversion's fields are the shared view (`views`), as in the
    // admin API; the payload names its ID `conversion_id` and gives the
    // extra parameters as an object (first value wins).
    let mut data = crate::views::conversion_fields(c);
    data.insert("conversion_id".into(), json!(ev.conversion_id));
    data.insert("extra".into(), first_wins(&c.extra));
    data.insert("click".into(), json!(click));
    let updated = c.history.len() > 1;
    json!({
        "type": if updated { "conversion.updated" } else { "conversion.created" },
        "id": ev.delivery_id,
        "timestamp": time(c.updated_ms.max(c.created_ms)),
        "data": data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::platforms::fixtures::*;
    use crate::forward::platforms::{Kind, admin_url, build, validate_config};

    #[test]
    fn webhook_request_is_signed() {
        let (c, cl) = (conversion(), click());
        let cfg = webhook_cfg();
        let r = build(Kind::Webhook, &cfg, None, &ev(&c, Some(&cl)), None).unwrap();
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.url, "https://hooks.example/in?x=1");
        let ts = (NOW_MS / 1000).to_string();
        assert_eq!(r.header("webhook-id"), Some("dlv_01"));
        assert_eq!(r.header("webhook-timestamp"), Some(ts.as_str()));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let key = signing::decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let verified = signing::verify_webhook(
            r.header("webhook-id"),
            r.header("webhook-timestamp"),
            r.header("webhook-signature"),
            &r.body,
            &[key],
            i64::try_from(NOW_MS / 1000).unwrap(),
            300,
        );
        assert!(verified.is_ok());
        let b = body(&r);
        assert_eq!(b["type"], "conversion.created");
        assert_eq!(b["id"], "dlv_01");
        assert_eq!(b["timestamp"], crate::util::clock::rfc3339(CONV_MS));
        assert_eq!(b["data"]["conversion_id"], "cnv_01");
        assert_eq!(b["data"]["amount"], "12.50");
        assert_eq!(b["data"]["extra"]["Email"], " Joe@Email.com ");
        assert_eq!(b["data"]["click"]["query"]["gclid"], "Cj0KCQ-abc");
        assert_eq!(b["data"]["click"]["ip"], "203.0.113.7");
        let cl_json = &b["data"]["click"];
        assert_eq!(
            (&cl_json["device"], &cl_json["os"], &cl_json["browser"]),
            (&json!("desktop"), &json!("Linux"), &json!("Firefox"))
        );
        assert_eq!(
            (&cl_json["country"], &cl_json["bot"], &cl_json["unique"]),
            (&json!("US"), &json!(false), &json!(true))
        );
        // Same body on a later attempt; only the timestamp header moves.
        let later = Event {
            now_ms: NOW_MS + 60_000,
            ..ev(&c, Some(&cl))
        };
        let r2 = build(
            Kind::Webhook,
            &cfg,
            Some("http://127.0.0.1:8081"),
            &later,
            None,
        )
        .unwrap();
        assert_eq!(r2.body, r.body);
        assert_eq!(r2.url, "http://127.0.0.1:8081/in?x=1");
        assert_ne!(
            r2.header("webhook-signature"),
            r.header("webhook-signature")
        );
        // An updated conversion.
        let mut up = conversion();
        up.history.push((NOW_MS, s("refunded")));
        let r3 = build(Kind::Webhook, &cfg, None, &ev(&up, None), None).unwrap();
        assert_eq!(body(&r3)["type"], "conversion.updated");
        assert_eq!(body(&r3)["data"]["click"], Value::Null);
    }

    #[test]
    fn webhook_shared_vector() {
        let v: Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/standard_webhooks.json"
        )))
        .unwrap();
        let key = signing::decode_secret(v["secret"].as_str().unwrap()).unwrap();
        let ts: i64 = v["timestamp"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            signing::sign_webhook(
                &key,
                v["id"].as_str().unwrap(),
                ts,
                v["payload"].as_str().unwrap().as_bytes()
            ),
            v["signature"].as_str().unwrap()
        );
    }

    #[test]
    fn webhook_config() {
        assert!(validate_config(Kind::Webhook, &webhook_cfg()).is_ok());
        let err = |k: Kind, v: Value| validate_config(k, &v).unwrap_err();
        let e = err(
            Kind::Webhook,
            json!({"url": "https://h.example/", "secret": "nope"}),
        );
        assert!(e.contains("config.secret") && e.contains("whsec_"), "{e}");
        assert!(
            err(
                Kind::Webhook,
                json!({"url": "javascript:alert(1)", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
            )
            .contains("config.url")
        );
        assert_eq!(
            admin_url(Kind::Webhook, &webhook_cfg()).as_deref(),
            Some("https://hooks.example/in?x=1")
        );
    }
}
