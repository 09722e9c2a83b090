//! GA4 (Measurement Protocol): a `ga4` destination's config and its
//! request, including the event names GA accepts. Its answers need no more
//! than the shared status rules: no body is read, no error is special.
//!
//! `POST {origin}/mp/collect?measurement_id=…&api_secret=…`, body
//! `{"client_id", "timestamp_micros", "events":[{"name", "params":{transaction_id, value?, currency?}}]}`.
//! The API secret is in the query string because that is the only place GA
//! accepts it: do not log GA4 request URLs.
//!
//! Confirmed in Google's documentation (stored copies, Nov 2026):
//! `POST /mp/collect` on `www.google-analytics.com`, `measurement_id` and
//! `api_secret` in the URL, `client_id`, `timestamp_micros`, `events` with
//! `name`/`params`, backdating up to 72 hours
//! (developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events);
//! event names start with a letter, use letters, digits and underscores, at
//! most 40 characters, reserved names and prefixes
//! (support.google.com/analytics/answer/13316687, …/9267744); `purchase`
//! and `generate_lead` are recommended events taking `value` and `currency`
//! (support.google.com/analytics/answer/9267735).

use serde_json::{Map, json};

use super::{
    Attempt, BuildError, Config, Event, Info, OutRequest, Platform, amount_number, check_no_spaces,
    enc, event_name, hours, json_post,
};
use crate::forward::meta;
use crate::store::records::ConversionRecord;

pub(super) struct Ga4;

static INFO: Info = Info {
    name: "ga4",
    label: "GA4",
    // Documented: events are backdated up to 72 hours.
    max_age: hours(72),
    default_origin: Some("https://www.google-analytics.com"),
    required: &[
        (
            "measurement_id",
            "the web stream's Measurement ID (G-XXXXXXX)",
        ),
        (
            "api_secret",
            "a Measurement Protocol API secret (Admin > Data streams > your stream)",
        ),
    ],
    optional: &[],
    secret_fields: &["api_secret"],
};

impl Platform for Ga4 {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn validate(&self, config: Config<'_>) -> Result<(), String> {
        check_no_spaces(&INFO, config)
    }

    fn build(&self, a: &Attempt<'_>) -> Result<OutRequest, BuildError> {
        let ev = a.ev;
        let url = format!(
            "{}/mp/collect?measurement_id={}&api_secret={}",
            a.origin(),
            enc(a.config.str("measurement_id")),
            enc(a.config.str("api_secret")),
        );
        let mut params = Map::new();
        params.insert("transaction_id".into(), json!(ev.conversion_id));
        if let Some(v) = amount_number(ev.conversion) {
            params.insert("value".into(), v);
            params.insert("currency".into(), json!(ev.conversion.currency));
        }
        let body = json!({
            "client_id": ga4_client_id(ev),
            "timestamp_micros": ev.conversion.created_ms.saturating_mul(1000),
            "events": [{"name": ga4_event_name(ev.conversion), "params": params}],
        });
        Ok(json_post(url, vec![], &body))
    }
}

/// GA's `client_id` shape `<u32>.<unix seconds>`, stable per click: the
/// number is the first 4 bytes of SHA-256(click ID), the seconds the click's
/// time (the conversion's without a stored click).
fn ga4_client_id(ev: &Event<'_>) -> String {
    let digest = meta::sha256_hex(ev.conversion.click_id.as_bytes());
    let n = u32::from_str_radix(&digest[..8], 16).unwrap_or(0);
    let secs = ev.click.map_or(ev.conversion.created_ms, |c| c.ms) / 1000;
    format!("{n}.{secs}")
}

const GA4_RESERVED: &[&str] = &[
    "ad_activeview",
    "ad_click",
    "ad_exposure",
    "ad_impression",
    "ad_query",
    "adunit_exposure",
    "app_background",
    "app_clear_data",
    "app_exception",
    "app_remove",
    "app_store_refund",
    "app_store_subscription_cancel",
    "app_store_subscription_convert",
    "app_store_subscription_renew",
    "app_update",
    "app_upgrade",
    "click",
    "dynamic_link_app_open",
    "dynamic_link_app_update",
    "dynamic_link_first_open",
    "error",
    "file_download",
    "firebase_campaign",
    "firebase_in_app_message_action",
    "firebase_in_app_message_dismiss",
    "firebase_in_app_message_impression",
    "first_open",
    "first_visit",
    "form_start",
    "form_submit",
    "in_app_purchase",
    "notification_dismiss",
    "notification_foreground",
    "notification_open",
    "notification_receive",
    "os_update",
    "page_view",
    "screen_view",
    "scroll",
    "session_start",
    "session_start_with_rollout",
    "user_engagement",
    "video_complete",
    "video_progress",
    "video_start",
    "view_complete",
    "view_search_results",
];

/// `purchase`, `generate_lead`, or the custom event name made valid for GA:
/// lowercase, characters other than `[a-z0-9_]` become `_`, a leading
/// letter (`e_` prefixed otherwise), at most 40 characters, and reserved
/// names or prefixes (`_`, `firebase_`, `ga_`, `google_`, `gtag.`) moved
/// out of the way with an `e_` prefix.
pub fn ga4_event_name(c: &ConversionRecord) -> String {
    let raw = event_name(c, "purchase", "generate_lead");
    let mut name: String = raw
        .trim()
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() {
                ch.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let reserved_prefix = ["firebase_", "ga_", "google_", "gtag_"]
        .iter()
        .any(|p| name.starts_with(p));
    if !name.starts_with(|ch: char| ch.is_ascii_alphabetic())
        || reserved_prefix
        || GA4_RESERVED.contains(&name.as_str())
    {
        name.insert_str(0, "e_");
    }
    name.truncate(40);
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::platforms::fixtures::*;
    use crate::forward::platforms::{Kind, build, validate_config};

    #[test]
    fn ga4_request() {
        let (c, cl) = (conversion(), click());
        let cfg = json!({"measurement_id": "G-ABC123", "api_secret": "s3cr/et"});
        let r = build(Kind::Ga4, &cfg, None, &ev(&c, Some(&cl)), None).unwrap();
        assert_eq!(
            r.url,
            "https://www.google-analytics.com/mp/collect?measurement_id=G-ABC123&api_secret=s3cr%2Fet"
        );
        assert_eq!(r.headers, vec![(s("content-type"), s("application/json"))]);
        let b = body(&r);
        let cid = b["client_id"].as_str().unwrap().to_string();
        let (n, secs) = cid.split_once('.').unwrap();
        assert!(n.parse::<u32>().is_ok());
        assert_eq!(secs, (CLICK_MS / 1000).to_string());
        assert_eq!(
            b,
            json!({
                "client_id": cid,
                "timestamp_micros": CONV_MS * 1000,
                "events": [{
                    "name": "purchase",
                    "params": {"transaction_id": "cnv_01", "value": dec("12.50"), "currency": "USD"},
                }],
            })
        );
        // Stable per click.
        let r2 = build(Kind::Ga4, &cfg, None, &ev(&c, Some(&cl)), None).unwrap();
        assert_eq!(body(&r2)["client_id"], b["client_id"]);
    }

    #[test]
    fn ga4_event_names() {
        let mut c = conversion();
        let name = |c: &ConversionRecord| ga4_event_name(c);
        assert_eq!(name(&c), "purchase");
        c.kind = s("lead");
        assert_eq!(name(&c), "generate_lead");
        for (given, want) in [
            ("Free Trial!", "free_trial_"),
            ("2nd-step", "e_2nd_step"),
            ("page_view", "e_page_view"),
            ("google_thing", "e_google_thing"),
            ("_x", "e__x"),
            ("Sign-Up", "sign_up"),
            ("Ünïcode", "e__n_code"),
        ] {
            c.event = Some(s(given));
            assert_eq!(name(&c), want, "{given}");
        }
        c.event = Some("x".repeat(60));
        assert_eq!(name(&c).len(), 40);
    }

    #[test]
    fn ga4_config() {
        assert!(
            validate_config(
                Kind::Ga4,
                &json!({"measurement_id": "G-1", "api_secret": "x"})
            )
            .is_ok()
        );
    }
}
