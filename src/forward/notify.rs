//! Alert notifications: the request that carries an alert's message to
//! its `notify` target, for the outbox's worker. Pure: no I/O, no clock.
//!
//! Three kinds, as the contract names them:
//! - `slack`: a Slack incoming webhook, `POST {url}` with `{"text"}`
//!   (Slack answers 200 `ok`; 400 `invalid_payload`, 403/404/410 for a
//!   revoked hook or archived channel).
//! - `telegram`: the Bot API, `POST https://api.telegram.org/bot<token>/sendMessage`
//!   with `{"chat_id", "text"}`; `base_url` replaces the origin (proxies,
//!   tests). The token is in the path, so it is a secret of the URL: it is
//!   scrubbed from every reason the worker records.
//! - `webhook`: `POST {url}` with a JSON event, signed per Standard
//!   Webhooks like the `webhook` destination (`webhook-id`,
//!   `webhook-timestamp`, `webhook-signature`).

use hyper::Method;
use serde_json::json;

use super::platforms::{BuildError, OutRequest, base_origin};
use crate::store::health::NotifyRecord;
use crate::util::signing;

/// The Telegram Bot API's origin.
pub const TELEGRAM_ORIGIN: &str = "https://api.telegram.org";

/// How long a notification is retried: a message about an alert older than
/// a day is noise.
pub const MAX_AGE_MS: u64 = 86_400_000;

/// One notification to send.
#[derive(Clone, Copy, Debug)]
pub struct Notice<'a> {
    /// Stable across attempts (the webhook-id).
    pub delivery_id: &'a str,
    pub alert_id: u64,
    /// `alert.fired` or `alert.resolved`.
    pub event_type: &'a str,
    pub text: &'a str,
    /// When the alert changed state (ms).
    pub at_ms: u64,
    /// Attempt time (ms).
    pub now_ms: u64,
}

/// Check a notify target; the message names the field and the fix and
/// never quotes a secret.
pub fn validate(n: &NotifyRecord) -> Result<(), String> {
    let url_ok = |field: &str, u: Option<&str>| -> Result<(), String> {
        let Some(u) = u else {
            return Err(format!(
                "notify.{field} is required for a {} target",
                n.kind
            ));
        };
        crate::tracking::click::validate_destination(u)
            .map_err(|e| format!("notify.{field} is not usable: {e}"))?;
        if u.contains(['{', '}']) {
            return Err(format!(
                "notify.{field} must be a literal URL, without placeholders"
            ));
        }
        Ok(())
    };
    match n.kind.as_str() {
        "slack" => url_ok("url", n.url.as_deref()),
        "telegram" => {
            let token = n.bot_token.as_deref().unwrap_or_default();
            let ok = token.split_once(':').is_some_and(|(id, rest)| {
                !id.is_empty()
                    && id.bytes().all(|b| b.is_ascii_digit())
                    && rest.len() >= 20
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
            });
            if !ok {
                return Err(
                    "notify.bot_token must be the token @BotFather gave, such as \
                            123456789:AAH...(digits, a colon, then 20+ letters, digits, _ or -)"
                        .into(),
                );
            }
            let chat = n.chat_id.as_deref().unwrap_or_default();
            let chat_ok = chat
                .strip_prefix('-')
                .unwrap_or(chat)
                .bytes()
                .all(|b| b.is_ascii_digit())
                && !chat.trim_start_matches('-').is_empty()
                || (chat.starts_with('@')
                    && chat.len() > 1
                    && chat.len() <= 64
                    && chat[1..]
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            if !chat_ok {
                return Err(
                    "notify.chat_id must be a chat's numeric ID (e.g. -1001234567890) or a \
                            channel's @username"
                        .into(),
                );
            }
            if let Some(b) = &n.base_url {
                base_origin(b).map_err(|e| format!("notify.{e}"))?;
            }
            Ok(())
        }
        "webhook" => {
            url_ok("url", n.url.as_deref())?;
            let s = n.secret.as_deref().ok_or(
                "notify.secret is required for a webhook target: \
                 a Standard Webhooks secret whsec_<base64>",
            )?;
            signing::decode_secret(s).map_err(|e| format!("notify.secret is not usable: {e}"))?;
            Ok(())
        }
        other => Err(format!(
            "notify.type `{}` is not known; use slack, telegram or webhook",
            crate::util::text::ellipsize(other, 30)
        )),
    }
}

/// The URL a target's requests go to (for the SSRF guard at save time).
pub fn target_url(n: &NotifyRecord) -> String {
    match n.kind.as_str() {
        "telegram" => n
            .base_url
            .as_deref()
            .and_then(|b| base_origin(b).ok())
            .unwrap_or_else(|| TELEGRAM_ORIGIN.to_string()),
        _ => n.url.clone().unwrap_or_default(),
    }
}

/// Values to scrub from reasons: the Telegram token, the webhook secret.
pub fn secrets(n: &NotifyRecord) -> Vec<String> {
    [n.bot_token.clone(), n.secret.clone()]
        .into_iter()
        .flatten()
        .collect()
}

/// The request for one attempt.
pub fn build(n: &NotifyRecord, notice: &Notice<'_>) -> Result<OutRequest, BuildError> {
    validate(n)
        .map_err(|e| BuildError::Permanent(format!("the alert's notify target is invalid: {e}")))?;
    let post = |url: String, body: serde_json::Value, mut headers: Vec<(String, String)>| {
        headers.push(("content-type".into(), "application/json".into()));
        OutRequest {
            method: Method::POST,
            url,
            headers,
            body: serde_json::to_vec(&body).unwrap_or_default(),
        }
    };
    match n.kind.as_str() {
        "slack" => Ok(post(
            n.url.clone().unwrap_or_default(),
            json!({"text": notice.text}),
            Vec::new(),
        )),
        "telegram" => Ok(post(
            format!(
                "{}/bot{}/sendMessage",
                target_url(n),
                n.bot_token.as_deref().unwrap_or_default()
            ),
            json!({
                "chat_id": n.chat_id,
                "text": notice.text,
                "disable_web_page_preview": true,
            }),
            Vec::new(),
        )),
        _ => {
            let key =
                signing::decode_secret(n.secret.as_deref().unwrap_or_default()).map_err(|e| {
                    BuildError::Permanent(format!("the webhook secret is not usable: {e}"))
                })?;
            let body = json!({
                "type": notice.event_type,
                "id": notice.delivery_id,
                "timestamp": crate::util::clock::rfc3339(notice.at_ms),
                "data": {"alert_id": notice.alert_id, "message": notice.text},
            });
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            let ts = i64::try_from(notice.now_ms / 1000).unwrap_or(i64::MAX);
            let sig = signing::sign_webhook(&key, notice.delivery_id, ts, &bytes);
            Ok(OutRequest {
                method: Method::POST,
                url: n.url.clone().unwrap_or_default(),
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("webhook-id".into(), notice.delivery_id.to_string()),
                    ("webhook-timestamp".into(), ts.to_string()),
                    ("webhook-signature".into(), sig),
                ],
                body: bytes,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice<'static> {
        Notice {
            delivery_id: "d1",
            alert_id: 7,
            event_type: "alert.fired",
            text: "Match rate fell",
            at_ms: 1_700_000_000_000,
            now_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn telegram_goes_to_the_bot_api_with_the_token_in_the_path() {
        let n = NotifyRecord {
            kind: "telegram".into(),
            bot_token: Some("123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw".into()),
            chat_id: Some("-1001234567890".into()),
            ..Default::default()
        };
        let r = build(&n, &notice()).unwrap();
        assert_eq!(
            r.url,
            "https://api.telegram.org/bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage"
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["chat_id"], "-1001234567890");
        assert_eq!(v["text"], "Match rate fell");
        let bad = NotifyRecord {
            chat_id: Some("me".into()),
            ..n
        };
        assert!(validate(&bad).unwrap_err().contains("chat_id"));
    }

    #[test]
    fn slack_and_webhook_shapes() {
        let s = NotifyRecord {
            kind: "slack".into(),
            url: Some("https://hooks.slack.com/services/T0/B0/XYZ".into()),
            ..Default::default()
        };
        let r = build(&s, &notice()).unwrap();
        assert_eq!(r.body, br#"{"text":"Match rate fell"}"#);
        let w = NotifyRecord {
            kind: "webhook".into(),
            url: Some("https://ops.example.com/hook".into()),
            secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
            ..Default::default()
        };
        let r = build(&w, &notice()).unwrap();
        assert_eq!(r.header("webhook-id"), Some("d1"));
        assert!(r.header("webhook-signature").unwrap().starts_with("v1,"));
        assert!(
            validate(&NotifyRecord {
                kind: "email".into(),
                ..Default::default()
            })
            .is_err()
        );
    }
}
