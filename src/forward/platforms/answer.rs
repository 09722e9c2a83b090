//! Reading a platform's answer, the part that is the same everywhere: the
//! platform's error text (its own shape first, then the usual ones, then the
//! body's text), `Retry-After`, and the hygiene that makes that text a
//! reason safe to store, log and show: no secrets or token-looking values,
//! no markup, whitespace collapsed, at most [`MAX_REASON_CHARS`] characters.
//! A platform may echo what it was sent (a token inside an error message),
//! so every reason is scrubbed, whatever the platform.

use crate::util::text::ellipsize;
use std::time::Duration;

use hyper::{HeaderMap, header};
use serde_json::Value;

use super::{MAX_REASON_CHARS, Platform, Verdict, enc};

/// A response being classified: what a platform's checks read, and the
/// verdicts whose reasons are scrubbed of secrets and at most
/// [`MAX_REASON_CHARS`] characters.
pub(super) struct Answer<'a> {
    pub(super) status: u16,
    /// The body, when it is JSON.
    pub(super) json: Option<&'a Value>,
    pub(super) platform: &'static dyn Platform,
    pub(super) headers: &'a HeaderMap,
    pub(super) body: &'a [u8],
    pub(super) now_ms: u64,
    pub(super) secrets: &'a [&'a str],
}

impl Answer<'_> {
    pub(super) fn reason(&self, text: &str) -> String {
        ellipsize(&clean(text, self.secrets), MAX_REASON_CHARS)
    }

    pub(super) fn dead(&self, text: String) -> Verdict {
        Verdict::Dead {
            reason: self.reason(&text),
        }
    }

    /// Retry, after the platform's `Retry-After` when it sent one.
    pub(super) fn retry(&self, text: String) -> Verdict {
        Verdict::Retry {
            after: retry_after(self.headers, self.now_ms),
            reason: self.reason(&text),
        }
    }

    /// `prefix: <the platform's error text>`, or `prefix` alone when the
    /// body has none.
    pub(super) fn with_detail(&self, prefix: String) -> String {
        let d = self.detail();
        if d.is_empty() {
            prefix
        } else {
            format!("{prefix}: {d}")
        }
    }

    /// The platform's error text from the body (not yet redacted or
    /// truncated).
    fn detail(&self) -> String {
        if let Some(v) = self.json {
            if let Some(s) = self.platform.error_text(v).filter(|s| !s.trim().is_empty()) {
                return s;
            }
            if let Some(s) = generic_error(v) {
                return s;
            }
        }
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(2048)]).to_string();
        strip_tags(&text)
    }
}

/// `{"error": {"message"}}`, `{"error", "error_description"}`,
/// `{"message"}`, `{"detail"}`, `{"title"}`.
pub(super) fn generic_error(v: &Value) -> Option<String> {
    if let Some(e) = v.get("error") {
        if let Some(m) = e.get("message").and_then(Value::as_str) {
            return Some(m.to_string());
        }
        if let Some(code) = e.as_str() {
            return Some(match v.get("error_description").and_then(Value::as_str) {
                Some(d) => format!("{code}: {d}"),
                None => code.to_string(),
            });
        }
    }
    for k in ["message", "detail", "title", "error_description"] {
        if let Some(m) = v.get(k).and_then(Value::as_str) {
            return Some(m.to_string());
        }
    }
    None
}

/// `Retry-After` as delay seconds or an HTTP-date (relative to `now_ms`;
/// a date in the past means "now").
fn retry_after(headers: &HeaderMap, now_ms: u64) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(v)?;
    let at_ms = u64::try_from(at).ok()?.saturating_mul(1000);
    Some(Duration::from_millis(at_ms.saturating_sub(now_ms)))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7) as
/// Unix seconds. The obsolete RFC 850 and asctime forms are not accepted.
fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_ascii_whitespace().collect();
    let [_weekday, day, month, year, hms, zone] = parts.as_slice() else {
        return None;
    };
    if *zone != "GMT" {
        return None;
    }
    let month = match *month {
        "Jan" => time::Month::January,
        "Feb" => time::Month::February,
        "Mar" => time::Month::March,
        "Apr" => time::Month::April,
        "May" => time::Month::May,
        "Jun" => time::Month::June,
        "Jul" => time::Month::July,
        "Aug" => time::Month::August,
        "Sep" => time::Month::September,
        "Oct" => time::Month::October,
        "Nov" => time::Month::November,
        "Dec" => time::Month::December,
        _ => return None,
    };
    let date = time::Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()?;
    let mut t = hms.split(':');
    let (h, m, sec) = (t.next()?, t.next()?, t.next()?);
    if t.next().is_some() {
        return None;
    }
    let tod = time::Time::from_hms(h.parse().ok()?, m.parse().ok()?, sec.parse().ok()?).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, tod)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// Remove secrets and token-looking values, and collapse whitespace and
/// control characters.
pub(super) fn clean(s: &str, secrets: &[&str]) -> String {
    let mut out = s.to_string();
    for sec in secrets {
        let sec = sec.trim();
        // Very short "secrets" would blank out ordinary words.
        if sec.len() < 4 {
            continue;
        }
        out = out.replace(sec, "[redacted]");
        let encoded = enc(sec);
        if encoded != sec {
            out = out.replace(&encoded, "[redacted]");
        }
        let form: String = form_urlencoded::byte_serialize(sec.as_bytes()).collect();
        if form != sec {
            out = out.replace(&form, "[redacted]");
        }
    }
    for marker in [
        "access_token=",
        "access_token\":\"",
        "access_token\": \"",
        "api_secret=",
        "client_secret=",
        "refresh_token=",
        "bearer ",
    ] {
        out = redact_after(&out, marker);
    }
    let mut collapsed = String::with_capacity(out.len());
    let mut space = false;
    for ch in out.chars() {
        if ch.is_whitespace() || ch.is_control() {
            if !space && !collapsed.is_empty() {
                collapsed.push(' ');
            }
            space = true;
        } else {
            collapsed.push(ch);
            space = false;
        }
    }
    collapsed.trim_end().to_string()
}

/// Replace the token that follows each (ASCII case-insensitive) `marker`.
fn redact_after(s: &str, marker: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(pos) = lower[i..].find(marker) {
        let start = i + pos + marker.len();
        out.push_str(&s[i..start]);
        let len = s[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-._~+/=%".contains(c)))
            .unwrap_or(s.len() - start);
        if len > 0 && !s[start..start + len].starts_with("[redacted]") {
            out.push_str("[redacted]");
        }
        i = start + len;
    }
    out.push_str(&s[i..]);
    out
}

fn strip_tags(s: &str) -> String {
    if !s.trim_start().starts_with('<') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for ch in s.chars() {
        match ch {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(ch),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::platforms::fixtures::*;
    use crate::forward::platforms::{Kind, classify};

    #[test]
    fn retry_after_seconds_and_date() {
        let v = classify(
            Kind::Meta,
            429,
            &headers(&[("retry-after", "120")]),
            b"",
            NOW_MS,
            &[],
        );
        assert!(
            matches!(v, Verdict::Retry { after: Some(d), .. } if d == Duration::from_secs(120))
        );
        // NOW_MS is 2025-11-21T04:40:00Z; 90 s later:
        let v = classify(
            Kind::Webhook,
            503,
            &headers(&[("retry-after", "Fri, 21 Nov 2025 04:41:30 GMT")]),
            b"down",
            NOW_MS,
            &[],
        );
        assert_eq!(
            v,
            Verdict::Retry {
                after: Some(Duration::from_secs(90)),
                reason: s("the webhook answered HTTP 503: down")
            }
        );
        // A date in the past: retry now.
        let v = classify(
            Kind::Webhook,
            503,
            &headers(&[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]),
            b"",
            NOW_MS,
            &[],
        );
        assert!(matches!(v, Verdict::Retry { after: Some(d), .. } if d.is_zero()));
        // Garbage: no hint.
        let v = classify(
            Kind::Webhook,
            503,
            &headers(&[("retry-after", "soon")]),
            b"",
            NOW_MS,
            &[],
        );
        assert!(matches!(v, Verdict::Retry { after: None, .. }));
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
    }

    #[test]
    fn reasons_are_scrubbed_and_short() {
        let none = HeaderMap::new();
        let secrets = ["EAAtoken123", "s3cr/et"];
        let body = r#"{"error":{"message":"Invalid OAuth access token EAAtoken123 (url ...?access_token=EAAtoken123&api_secret=s3cr%2Fet), also Bearer ya29.zzz and access_token=OTHERTOKEN","type":"OAuthException","code":190}}"#;
        let v = classify(Kind::Meta, 400, &none, body.as_bytes(), NOW_MS, &secrets);
        let r = reason(&v);
        assert!(!r.contains("EAAtoken123"), "{r}");
        assert!(!r.contains("s3cr"), "{r}");
        assert!(!r.contains("ya29.zzz"), "{r}");
        assert!(!r.contains("OTHERTOKEN"), "{r}");
        assert!(r.contains("[redacted]"), "{r}");
        let long = "x".repeat(5000);
        let v = classify(Kind::Webhook, 400, &none, long.as_bytes(), NOW_MS, &[]);
        assert_eq!(reason(&v).chars().count(), MAX_REASON_CHARS);
        assert!(reason(&v).ends_with('…'));
    }
}
