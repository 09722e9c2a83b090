//! Google Ads (`ConversionUploadService.UploadClickConversions`, REST): a
//! `google_ads` destination's config, its request, how Google's answers and
//! errors read, and the OAuth refresh-token exchange the request needs.
//!
//! `POST {origin}/{api_version}/customers/{customer_id}:uploadClickConversions`,
//! headers `authorization: Bearer <token>`, `developer-token`,
//! `login-customer-id` (when configured), `content-type`; body
//! `{"conversions":[{gclid|gbraid|wbraid, conversionAction, conversionDateTime, conversionValue?, currencyCode?, orderId}], "partialFailure": true}`.
//! The access token comes from [`google_token_request`] /
//! [`parse_google_token`], cached by the caller until it expires.
//!
//! Confirmed in Google's documentation (stored copies, Nov 2026):
//! `UploadClickConversionsRequest` fields `conversions`, `partial_failure`
//! ("should always be set to true"), `ClickConversion` fields
//! `gclid`/`gbraid`/`wbraid`, `conversion_action` (resource name),
//! `conversion_date_time` `"yyyy-mm-dd hh:mm:ss+|-hh:mm"`,
//! `conversion_value`, `currency_code`, `order_id`; `partial_failure_error`
//! is a `google.rpc.Status` returned with a 200
//! (developers.google.com/google-ads/api/reference/rpc/v26/…); headers
//! `developer-token`, `login-customer-id`, `Authorization: Bearer`
//! (developers.google.com/google-ads/api/rest/auth); v26 is the latest
//! version (released October 2026, sunset about November 2027,
//! developers.google.com/google-ads/api/docs/sunset-dates). REST JSON uses
//! the proto3 JSON mapping (lowerCamelCase field names).
//!
//! Not confirmed (best knowledge, kept explicit so it is easy to change):
//! the 90-day limit (counted from the click, the longest click-through
//! conversion window); 401 treated as an expired access token (retried, so
//! the caller must drop its cached token on a 401). Note that Google
//! announced the deprecation of click-conversion uploads through
//! `UploadClickConversions` on 2026-06-15 in favour of the Data Manager
//! API; the method still exists in v26. The OAuth token endpoint
//! `https://oauth2.googleapis.com/token` with a form-encoded
//! `grant_type=refresh_token` body (RFC 6749 §6; Google's pages found only
//! show it through client libraries).

use hyper::Method;
use serde_json::{Map, Value, json};

use super::answer::{clean, generic_error};
use super::{
    Answer, Attempt, BuildError, Config, Event, Info, MAX_REASON_CHARS, OutRequest, Platform,
    Verdict, amount_number, base_origin, check_header_value, days, is_version, json_post, param,
    permanent,
};
use crate::store::records::ClickRecord;
use crate::util::text::ellipsize;

/// Google Ads API version used when a google_ads destination sets none.
pub const GOOGLE_ADS_DEFAULT_API_VERSION: &str = "v26";
/// Google's OAuth 2.0 origin (token endpoint `{origin}/token`).
pub const GOOGLE_OAUTH_ORIGIN: &str = "https://oauth2.googleapis.com";

pub(super) struct GoogleAds;

static INFO: Info = Info {
    name: "google_ads",
    label: "Google Ads",
    // Not confirmed; counted from the click (see `event_time`).
    max_age: days(90),
    default_origin: Some("https://googleads.googleapis.com"),
    required: &[
        (
            "customer_id",
            "the Google Ads account ID (123-456-7890 or 1234567890)",
        ),
        (
            "conversion_action",
            "the conversion action ID or its resource name customers/<id>/conversionActions/<id>",
        ),
        (
            "developer_token",
            "the developer token from the Google Ads API Center",
        ),
        ("client_id", "the OAuth client of your Google Cloud project"),
        (
            "client_secret",
            "the OAuth client of your Google Cloud project",
        ),
        (
            "refresh_token",
            "an OAuth refresh token with the https://www.googleapis.com/auth/adwords scope",
        ),
    ],
    optional: &[
        (
            "login_customer_id",
            "the manager (MCC) account ID, when you log in through one",
        ),
        ("api_version", "a Google Ads API version such as v26"),
    ],
    secret_fields: &["developer_token", "client_secret", "refresh_token"],
};

impl Platform for GoogleAds {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn validate(&self, config: Config<'_>) -> Result<(), String> {
        check_header_value(&INFO, config, "developer_token")?;
        for f in ["customer_id", "login_customer_id"] {
            if let Some(v) = config.get(f)
                && customer_digits(v).is_none()
            {
                return Err(format!(
                    "config.{f} must be a 10-digit Google Ads account ID such as 123-456-7890"
                ));
            }
        }
        if let Some(v) = config.get("conversion_action")
            && conversion_action_id(v).is_none()
        {
            return Err(format!(
                "config.conversion_action must be {}",
                INFO.hint("conversion_action")
            ));
        }
        if let Some(v) = config.get("api_version")
            && !is_version(v, false)
        {
            return Err(format!(
                "config.api_version must look like v26 (a Google Ads API version), or be left out for {GOOGLE_ADS_DEFAULT_API_VERSION}"
            ));
        }
        Ok(())
    }

    /// Google counts its window from the click.
    fn event_time(&self, ev: &Event<'_>) -> Option<(u64, &'static str)> {
        Some(match ev.click {
            Some(c) => (c.ms, "the click"),
            None => (ev.conversion.created_ms, "the conversion"),
        })
    }

    fn build(&self, a: &Attempt<'_>) -> Result<OutRequest, BuildError> {
        let (cfg, ev) = (a.config, a.ev);
        let Some(token) = a.google_access_token.filter(|t| !t.is_empty()) else {
            return Err(permanent(
                "no Google OAuth access token was obtained for this attempt (internal error)",
            ));
        };
        let version = cfg
            .get("api_version")
            .unwrap_or(GOOGLE_ADS_DEFAULT_API_VERSION);
        let customer = customer_digits(cfg.str("customer_id")).unwrap_or_default();
        let action = conversion_action_id(cfg.str("conversion_action")).unwrap_or_default();
        let Some((id_field, id_value)) = google_click_id(ev.click) else {
            return Err(permanent(if ev.click.is_none() {
                "Google Ads needs the click's gclid, gbraid or wbraid, and this conversion has no stored click"
            } else {
                "the click has no gclid, gbraid or wbraid parameter, so Google Ads cannot attribute it; \
                 enable auto-tagging and keep the parameter on the tracking link"
            }));
        };
        let mut conv = Map::new();
        conv.insert(id_field.into(), json!(id_value));
        conv.insert(
            "conversionAction".into(),
            json!(format!("customers/{customer}/conversionActions/{action}")),
        );
        conv.insert(
            "conversionDateTime".into(),
            json!(google_date_time(ev.conversion.created_ms)),
        );
        if let Some(v) = amount_number(ev.conversion) {
            conv.insert("conversionValue".into(), v);
            conv.insert("currencyCode".into(), json!(ev.conversion.currency));
        }
        conv.insert("orderId".into(), json!(ev.conversion_id));
        let body = json!({"conversions": [conv], "partialFailure": true});
        let mut headers = vec![
            ("authorization".to_string(), format!("Bearer {token}")),
            (
                "developer-token".to_string(),
                cfg.str("developer_token").to_string(),
            ),
        ];
        if let Some(login) = cfg.get("login_customer_id").and_then(customer_digits) {
            headers.push(("login-customer-id".to_string(), login));
        }
        Ok(json_post(
            format!(
                "{}/{version}/customers/{customer}:uploadClickConversions",
                a.origin()
            ),
            headers,
            &body,
        ))
    }

    /// A partial failure: a 200 carrying the rows Google refused.
    fn refused(&self, answer: &Answer<'_>, body: &Value) -> Option<Verdict> {
        let pf = body
            .get("partialFailureError")
            .or_else(|| body.get("partial_failure_error"))
            .filter(|pf| pf.as_object().is_some_and(|o| !o.is_empty()))?;
        Some(answer.dead(format!(
            "Google Ads rejected the conversion: {}",
            google_failure_text(pf)
        )))
    }

    /// A 401 with a `google.rpc.Status` body: the access token expired. The
    /// OAuth token endpoint's own 401 (`{"error": "invalid_client"}`) is
    /// permanent.
    fn transient(&self, answer: &Answer<'_>) -> bool {
        answer.status == 401
            && !answer
                .json
                .and_then(|v| v.get("error"))
                .is_some_and(Value::is_string)
    }

    fn error_text(&self, body: &Value) -> Option<String> {
        body.get("error")
            .filter(|e| e.is_object())
            .map(google_failure_text)
    }
}

/// A Google Ads customer ID without dashes (10 digits).
fn customer_digits(v: &str) -> Option<String> {
    let v = v.trim();
    if !v.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return None;
    }
    let d: String = v.chars().filter(char::is_ascii_digit).collect();
    (d.len() == 10).then_some(d)
}

/// The numeric ID of `123` or `customers/456/conversionActions/123`.
fn conversion_action_id(v: &str) -> Option<&str> {
    let v = v.trim();
    let id = match v.strip_prefix("customers/") {
        Some(rest) => {
            let (cust, action) = rest.split_once("/conversionActions/")?;
            if cust.is_empty() || !cust.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            action
        }
        None => v,
    };
    (!id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// The click's Google click ID: `gclid`, else `gbraid`, else `wbraid`
/// (Google refuses a conversion carrying more than one).
fn google_click_id(click: Option<&ClickRecord>) -> Option<(&'static str, &str)> {
    let c = click?;
    ["gclid", "gbraid", "wbraid"]
        .into_iter()
        .find_map(|f| param(c, f).map(|v| (f, v)))
}

/// `yyyy-mm-dd hh:mm:ss+00:00` in UTC.
fn google_date_time(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(0);
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Google's OAuth 2.0 refresh-token exchange: `POST {origin}/token`,
/// form-encoded `grant_type=refresh_token&client_id=…&client_secret=…&refresh_token=…`.
/// `origin` is [`GOOGLE_OAUTH_ORIGIN`], or `base_url`'s origin when given
/// (an invalid `base_url` is rejected by [`build`](super::build) first, so
/// it is ignored here).
pub fn google_token_request(config: &Value, base_url: Option<&str>) -> OutRequest {
    let cfg = Config(config);
    let origin = base_url
        .and_then(|b| base_origin(b).ok())
        .unwrap_or_else(|| GOOGLE_OAUTH_ORIGIN.to_string());
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("client_id", cfg.str("client_id"))
        .append_pair("client_secret", cfg.str("client_secret"))
        .append_pair("refresh_token", cfg.str("refresh_token"))
        .finish();
    OutRequest {
        method: Method::POST,
        url: format!("{origin}/token"),
        headers: vec![(
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        )],
        body: body.into_bytes(),
    }
}

/// Read a token endpoint answer: `(access_token, expires_in seconds)`.
/// An `{"error", "error_description"}` answer becomes a short message (no
/// token is ever echoed). `expires_in` defaults to 3600 when absent.
pub fn parse_google_token(body: &[u8]) -> Result<(String, u64), String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| "the OAuth token endpoint did not answer JSON".to_string())?;
    if let Some(tok) = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        let expires = match v.get("expires_in") {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(3600),
            Some(Value::String(s)) => s.trim().parse().unwrap_or(3600),
            _ => 3600,
        };
        return Ok((tok.to_string(), expires));
    }
    let err = generic_error(&v).unwrap_or_else(|| "no access_token in the answer".into());
    Err(ellipsize(
        &clean(&format!("OAuth token refresh failed: {err}"), &[]),
        MAX_REASON_CHARS,
    ))
}

/// A `google.rpc.Status` (`{"code", "message", "status", "details": [{
/// "errors": [{"errorCode": {...}, "message", "location": {...}}]}]}`) as
/// `STATUS: row 0: ERROR_CODE: message; ...`.
fn google_failure_text(st: &Value) -> String {
    let mut rows: Vec<String> = Vec::new();
    for d in st
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for e in d
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let code = e
                .get("errorCode")
                .and_then(Value::as_object)
                .and_then(|o| o.values().next())
                .and_then(Value::as_str);
            let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
            let index = e
                .pointer("/location/fieldPathElements/0/index")
                .and_then(Value::as_u64);
            let mut s = String::new();
            if let Some(i) = index {
                s.push_str(&format!("row {i}: "));
            }
            if let Some(c) = code {
                s.push_str(c);
                s.push_str(": ");
            }
            s.push_str(msg);
            rows.push(s);
        }
    }
    let head = st.get("status").and_then(Value::as_str).map(str::to_string);
    let message = st.get("message").and_then(Value::as_str).unwrap_or("");
    match (head, rows.is_empty()) {
        (Some(h), false) => format!("{h}: {}", rows.join("; ")),
        (None, false) => rows.join("; "),
        (Some(h), true) => format!("{h}: {message}"),
        (None, true) => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::platforms::fixtures::*;
    use crate::forward::platforms::{Kind, build, classify, secret_fields, validate_config};
    use hyper::HeaderMap;

    #[test]
    fn google_ads_request() {
        let (c, cl) = (conversion(), click());
        let r = build(
            Kind::GoogleAds,
            &gads_cfg(),
            None,
            &ev(&c, Some(&cl)),
            Some("ya29.token"),
        )
        .unwrap();
        assert_eq!(
            r.url,
            "https://googleads.googleapis.com/v26/customers/1234567890:uploadClickConversions"
        );
        assert_eq!(
            r.headers,
            vec![
                (s("authorization"), s("Bearer ya29.token")),
                (s("developer-token"), s("devtok-abc")),
                (s("login-customer-id"), s("9876543210")),
                (s("content-type"), s("application/json")),
            ]
        );
        assert_eq!(
            body(&r),
            json!({
                "conversions": [{
                    "gclid": "Cj0KCQ-abc",
                    "conversionAction": "customers/1234567890/conversionActions/555",
                    "conversionDateTime": google_date_time(CONV_MS),
                    "conversionValue": dec("12.50"),
                    "currencyCode": "USD",
                    "orderId": "cnv_01",
                }],
                "partialFailure": true,
            })
        );
        assert_eq!(
            google_date_time(1_700_000_000_123),
            "2023-11-14 22:13:20+00:00"
        );
    }

    #[test]
    fn google_ads_ids_and_refusals() {
        let c = conversion();
        let mut cl = click();
        cl.params = vec![(s("wbraid"), s("WB")), (s("gbraid"), s("GB"))];
        let mut cfg = gads_cfg();
        cfg["conversion_action"] = json!("customers/111/conversionActions/777");
        cfg.as_object_mut().unwrap().remove("login_customer_id");
        let r = build(Kind::GoogleAds, &cfg, None, &ev(&c, Some(&cl)), Some("t")).unwrap();
        let b = body(&r);
        assert_eq!(b["conversions"][0]["gbraid"], "GB");
        assert!(b["conversions"][0].get("wbraid").is_none());
        assert_eq!(
            b["conversions"][0]["conversionAction"],
            "customers/1234567890/conversionActions/777"
        );
        assert_eq!(r.header("login-customer-id"), None);

        cl.params = vec![(s("fbclid"), s("x"))];
        let BuildError::Permanent(why) =
            build(Kind::GoogleAds, &cfg, None, &ev(&c, Some(&cl)), Some("t")).unwrap_err();
        assert!(why.contains("gclid"), "{why}");
        assert!(build(Kind::GoogleAds, &cfg, None, &ev(&c, None), Some("t")).is_err());
        assert!(build(Kind::GoogleAds, &cfg, None, &ev(&c, Some(&click())), None).is_err());
        // 90 days from the click.
        let mut old = click();
        old.ms = NOW_MS - 91 * 86_400_000;
        let BuildError::Permanent(why) =
            build(Kind::GoogleAds, &cfg, None, &ev(&c, Some(&old)), Some("t")).unwrap_err();
        assert!(why.starts_with("the click is 91 days old"), "{why}");
    }

    #[test]
    fn google_token_exchange() {
        let r = google_token_request(&gads_cfg(), None);
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.url, "https://oauth2.googleapis.com/token");
        assert_eq!(
            r.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            "grant_type=refresh_token&client_id=cid.apps.googleusercontent.com\
             &client_secret=csecret-xyz&refresh_token=1%2F%2Frefresh-abc"
        );
        let r = google_token_request(&gads_cfg(), Some("http://127.0.0.1:4000/x"));
        assert_eq!(r.url, "http://127.0.0.1:4000/token");

        assert_eq!(
            parse_google_token(
                br#"{"access_token":"ya29.a","expires_in":3599,"token_type":"Bearer"}"#
            ),
            Ok((s("ya29.a"), 3599))
        );
        let err = parse_google_token(
            br#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "OAuth token refresh failed: invalid_grant: Token has been expired or revoked."
        );
        assert!(parse_google_token(b"<html>").is_err());
    }

    #[test]
    fn google_ads_config() {
        assert!(validate_config(Kind::GoogleAds, &gads_cfg()).is_ok());
        let err = |k: Kind, v: Value| validate_config(k, &v).unwrap_err();
        let mut g = gads_cfg();
        g["customer_id"] = json!("12345");
        assert!(err(Kind::GoogleAds, g).contains("10-digit"));
        let mut g = gads_cfg();
        g["conversion_action"] = json!("customers/1/conversionActions/abc");
        assert!(err(Kind::GoogleAds, g).contains("conversion_action"));
        assert_eq!(
            secret_fields(Kind::GoogleAds),
            &["developer_token", "client_secret", "refresh_token"]
        );
    }

    #[test]
    fn google_ads_answers() {
        let none = HeaderMap::new();
        let ok = |k, st, b: &str| classify(k, st, &none, b.as_bytes(), NOW_MS, &[]);
        // Google Ads partial failure: 200 with per-row errors.
        let pf = r#"{"partialFailureError":{"code":3,"message":"This customer does not have an import conversion action that matches the conversion action provided., at conversions[0].conversion_action","details":[{"@type":"type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure","errors":[{"errorCode":{"conversionUploadError":"INVALID_CONVERSION_ACTION"},"message":"This customer does not have an import conversion action that matches the conversion action provided.","location":{"fieldPathElements":[{"fieldName":"conversions","index":0},{"fieldName":"conversion_action"}]}}]}]},"results":[{}],"jobId":"1"}"#;
        let v = ok(Kind::GoogleAds, 200, pf);
        assert_eq!(
            v,
            Verdict::Dead {
                reason: s(
                    "Google Ads rejected the conversion: row 0: INVALID_CONVERSION_ACTION: This customer \
                           does not have an import conversion action that matches the conversion action provided."
                )
            }
        );
        assert_eq!(
            ok(
                Kind::GoogleAds,
                200,
                r#"{"results":[{"gclid":"x","conversionAction":"customers/1/conversionActions/2","conversionDateTime":"2025-01-01 00:00:00+00:00"}],"jobId":"2"}"#
            ),
            Verdict::Delivered
        );

        // Google 401: the cached access token expired.
        let v = classify(
            Kind::GoogleAds,
            401,
            &none,
            br#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#,
            NOW_MS,
            &[],
        );
        assert_eq!(
            v,
            Verdict::Retry {
                after: None,
                reason: s(
                    "Google Ads answered HTTP 401: UNAUTHENTICATED: Request had invalid authentication credentials."
                )
            }
        );
        // The OAuth token endpoint's errors are permanent.
        let v = classify(
            Kind::GoogleAds,
            401,
            &none,
            br#"{"error":"invalid_client","error_description":"The OAuth client was not found."}"#,
            NOW_MS,
            &[],
        );
        assert_eq!(
            v,
            Verdict::Dead {
                reason: s(
                    "Google Ads answered HTTP 401: invalid_client: The OAuth client was not found."
                )
            }
        );
        let v = classify(
            Kind::GoogleAds,
            403,
            &none,
            br#"{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure","errors":[{"errorCode":{"authorizationError":"DEVELOPER_TOKEN_NOT_APPROVED"},"message":"The developer token is only approved for use with test accounts."}]}]}}"#,
            NOW_MS,
            &[],
        );
        assert_eq!(
            reason(&v),
            "Google Ads answered HTTP 403: PERMISSION_DENIED: DEVELOPER_TOKEN_NOT_APPROVED: The developer token is only approved for use with test accounts."
        );
        assert!(matches!(v, Verdict::Dead { .. }));
    }
}
