//! Destination types: config validation, request builders and response
//! classification. Pure: no I/O, no clock (the attempt time is passed in),
//! no randomness.
//!
//! This file holds what the rest of the crate calls ([`validate_config`],
//! [`build`], [`classify`], [`secret_fields`], [`admin_url`]), the shared
//! types, and everything that is the same for every destination type: the
//! generic config checks, `base_url`, the age limit, and what an HTTP
//! status means; `answer.rs` adds the shared reading of a response body
//! and the scrubbing of reasons. What differs lives in one file per
//! platform, each implementing `Platform`, so that a platform's config,
//! request, answers and error text are read (and changed) in one place:
//!
//! - `meta_capi.rs`: Meta Conversions API (`meta`; the normalization and
//!   hashing of user data stay in [`super::meta`]).
//! - `google_ads.rs`: Google Ads click-conversion uploads (`google_ads`)
//!   and the OAuth token exchange they need.
//! - `ga4.rs`: GA4 Measurement Protocol (`ga4`).
//! - `tiktok.rs`: TikTok Events API (`tiktok`).
//! - `webhook.rs`: signed JSON webhooks (`webhook`).
//! - `postback.rs`: a traffic source's postback URL template (`postback`).
//!
//! **Adding a platform** is one new file implementing `Platform` (start
//! from the closest existing one) plus one line registering it in the
//! `platforms!` table below, which declares its [`Kind`] variant and routes
//! the variant to the file; the file also needs its `mod` line next to the
//! others (a module declared inside the macro would be invisible to
//! rustfmt). Nothing else in the crate changes.
//!
//! # Origins
//!
//! `{origin}` in the platforms' endpoints is the platform's documented
//! origin, or the origin (`scheme://host:port`) of the destination's
//! `base_url` when one is set; paths are always the platform's own.
//!
//! # Where each detail comes from
//!
//! Each platform's file lists which of its details are confirmed in the
//! platform's documentation (stored copies, Nov 2026) and which are best
//! knowledge, kept explicit so they are easy to change.

use std::time::Duration;

use hyper::{HeaderMap, Method, header};
use serde_json::Value;

use crate::store::records::{ClickRecord, ConversionRecord};

mod answer;
mod ga4;
mod google_ads;
mod meta_capi;
mod postback;
mod tiktok;
mod webhook;

use crate::util::text::ellipsize;
use answer::Answer;
pub use ga4::ga4_event_name;
pub use google_ads::{
    GOOGLE_ADS_DEFAULT_API_VERSION, GOOGLE_OAUTH_ORIGIN, google_token_request, parse_google_token,
};
pub use meta_capi::META_DEFAULT_API_VERSION;
pub use postback::expand_postback;
pub use webhook::webhook_payload;

/// Longest reason returned by [`classify`] and [`BuildError`], characters.
pub const MAX_REASON_CHARS: usize = 300;

// ---------------------------------------------------------------------------
// The registry and what a platform provides
// ---------------------------------------------------------------------------

/// Declares [`Kind`], one variant per line in the contract's order (that of
/// [`Kind::ALL`]), and routes each variant to its [`Platform`]: a macro so
/// that registering a platform is one line, not an edit to the enum, the
/// list and the dispatch.
macro_rules! platforms {
    ($($variant:ident => $platform:path,)+) => {
        /// A destination type.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Kind {
            $($variant,)+
        }

        impl Kind {
            /// Every kind, in the contract's order.
            pub const ALL: [Kind; [$(Kind::$variant),+].len()] = [$(Kind::$variant),+];

            fn platform(self) -> &'static dyn Platform {
                match self {
                    $(Kind::$variant => &$platform,)+
                }
            }
        }
    };
}

platforms! {
    Meta => meta_capi::Meta,
    GoogleAds => google_ads::GoogleAds,
    Ga4 => ga4::Ga4,
    TikTok => tiktok::TikTok,
    Webhook => webhook::Webhook,
    Postback => postback::Postback,
}

impl Kind {
    /// `meta`, `google_ads`, `ga4`, `tiktok`, `webhook` or `postback`.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        self.info().name
    }

    /// How old an event may be and still be sent. For the ad platforms this
    /// is the platform's limit on the event time ([`build`] refuses older
    /// events); for webhooks and postbacks it is how long the caller keeps
    /// retrying a delivery.
    pub fn max_age(self) -> Duration {
        self.info().max_age
    }

    /// The platform's documented origin; `None` for webhook and postback,
    /// whose URL is the admin's.
    pub fn default_origin(self) -> Option<&'static str> {
        self.info().default_origin
    }

    /// The platform's name in sentences.
    pub fn label(self) -> &'static str {
        self.info().label
    }

    fn info(self) -> &'static Info {
        self.platform().info()
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One destination type. The defaults are what an ad platform with no
/// special cases does.
trait Platform {
    fn info(&self) -> &'static Info;

    /// Checks of this platform's own formats, run after the shared ones
    /// (the config is an object of known fields, each a sane string).
    /// Messages name the field and the fix, and never contain a value.
    fn validate(&self, _config: Config<'_>) -> Result<(), String> {
        Ok(())
    }

    /// See [`admin_url`]: `None` when the endpoint is the platform's own.
    fn admin_url(&self, _config: Config<'_>) -> Option<String> {
        None
    }

    /// The time the platform's age limit ([`Info::max_age`]) counts from,
    /// and what that time is, for the refusal; `None` when the platform
    /// refuses nothing for its age (the caller bounds retries instead).
    fn event_time(&self, ev: &Event<'_>) -> Option<(u64, &'static str)> {
        Some((ev.conversion.created_ms, "the conversion"))
    }

    /// The request for one attempt.
    fn build(&self, attempt: &Attempt<'_>) -> Result<OutRequest, BuildError>;

    /// Some platforms answer 2xx and say in the body that the event was
    /// not taken: the verdict then, `None` for delivered.
    fn refused(&self, _answer: &Answer<'_>, _body: &Value) -> Option<Verdict> {
        None
    }

    /// A 4xx the platform means as temporary: retried, not dead.
    fn transient(&self, _answer: &Answer<'_>) -> bool {
        false
    }

    /// The platform's own error shape in a JSON body; `None` (or blank)
    /// falls back to the usual shapes, then to the body's text.
    fn error_text(&self, _body: &Value) -> Option<String> {
        None
    }
}

/// A platform's fixed facts.
struct Info {
    /// A destination's `kind` in the API and the store.
    name: &'static str,
    /// See [`Kind::label`].
    label: &'static str,
    /// See [`Kind::max_age`].
    max_age: Duration,
    /// See [`Kind::default_origin`].
    default_origin: Option<&'static str>,
    required: &'static [Field],
    optional: &'static [Field],
    /// See [`secret_fields`].
    secret_fields: &'static [&'static str],
}

/// A config field and where to find its value: the hint ends the error
/// messages about the field, which must never quote its value.
pub type Field = (&'static str, &'static str);

impl Info {
    fn hint(&self, field: &str) -> &'static str {
        self.required
            .iter()
            .chain(self.optional)
            .find(|(f, _)| *f == field)
            .map_or("a string", |(_, hint)| hint)
    }

    fn field_list(&self) -> String {
        let mut parts: Vec<String> = self
            .required
            .iter()
            .map(|(f, _)| format!("`{f}`"))
            .collect();
        parts.extend(
            self.optional
                .iter()
                .map(|(f, _)| format!("`{f}` (optional)")),
        );
        parts.join(", ")
    }
}

const fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

const fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3_600)
}

/// A destination's config, read the one way every platform reads it: a
/// field's string value, trimmed.
#[derive(Clone, Copy)]
struct Config<'a>(&'a Value);

impl<'a> Config<'a> {
    fn get(self, field: &str) -> Option<&'a str> {
        self.0.get(field).and_then(Value::as_str).map(str::trim)
    }

    /// The value, or `""` when the field is absent (validation has already
    /// refused a missing required field).
    fn str(self, field: &str) -> &'a str {
        self.get(field).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------

/// Check a destination's `config` JSON object: required fields present,
/// every field a non-empty string without control characters, no unknown
/// fields, and the per-type formats (numeric IDs, URL shape, `whsec_`
/// secret). Messages name the field and the fix, and never contain a
/// config value.
pub fn validate_config(kind: Kind, config: &Value) -> Result<(), String> {
    let info = kind.info();
    let Some(obj) = config.as_object() else {
        return Err(format!(
            "config must be a JSON object; a {kind} destination takes {}",
            info.field_list()
        ));
    };
    let known = |k: &str| {
        info.required
            .iter()
            .chain(info.optional)
            .any(|(f, _)| *f == k)
    };
    let mut unknown: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !known(k))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        let names: Vec<String> = unknown
            .iter()
            .map(|k| format!("`{}`", ellipsize(k, 40)))
            .collect();
        return Err(format!(
            "unknown config field {} for a {kind} destination; it takes {}",
            names.join(", "),
            info.field_list()
        ));
    }
    for &(f, hint) in info.required {
        match obj.get(f) {
            None | Some(Value::Null) => {
                return Err(format!(
                    "config.{f} is missing: a {kind} destination needs {hint}"
                ));
            }
            Some(v) => check_string(f, hint, v)?,
        }
    }
    for &(f, hint) in info.optional {
        match obj.get(f) {
            None | Some(Value::Null) => {}
            Some(v) => check_string(f, hint, v)?,
        }
    }
    kind.platform().validate(Config(config))
}

fn check_string(f: &str, hint: &str, v: &Value) -> Result<(), String> {
    let Some(s) = v.as_str() else {
        return Err(format!(
            "config.{f} must be a string (quote numbers, e.g. \"1234\"): {hint}"
        ));
    };
    if s.trim().is_empty() {
        return Err(format!("config.{f} is empty: it must be {hint}"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!(
            "config.{f} contains control characters (a stray newline?)"
        ));
    }
    if s.len() > 4096 {
        return Err(format!("config.{f} is longer than 4096 bytes"));
    }
    Ok(())
}

/// A value sent as an HTTP header value must be visible ASCII.
fn check_header_value(info: &Info, config: Config<'_>, f: &str) -> Result<(), String> {
    if config
        .get(f)
        .is_some_and(|v| !v.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(format!(
            "config.{f} must be printable ASCII without spaces (it is sent as an HTTP header): {}",
            info.hint(f)
        ));
    }
    Ok(())
}

/// IDs and keys that travel in a URL or a header: a space in one is a
/// pasting mistake.
fn check_no_spaces(info: &Info, config: Config<'_>) -> Result<(), String> {
    for &(f, hint) in info.required {
        if config
            .get(f)
            .is_some_and(|v| v.chars().any(char::is_whitespace))
        {
            return Err(format!("config.{f} must not contain spaces: {hint}"));
        }
    }
    Ok(())
}

/// `v26` (`dotted = false`) or `v26.0` (`dotted = true`).
fn is_version(v: &str, dotted: bool) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit());
    if dotted {
        rest.split_once('.')
            .is_some_and(|(a, b)| digits(a) && digits(b))
    } else {
        digits(rest)
    }
}

/// A platform's config fields as `(name, hint)`: required, then optional
/// (the dashboard builds each type's form from these).
pub fn config_fields(kind: Kind) -> (&'static [Field], &'static [Field]) {
    (kind.info().required, kind.info().optional)
}

/// Config keys holding secrets: shown masked by the API, never logged, and
/// scrubbed from [`classify`]'s reasons (pass their values as `secrets`).
pub fn secret_fields(kind: Kind) -> &'static [&'static str] {
    kind.info().secret_fields
}

/// The admin-supplied URL an SSRF guard must check: the webhook `url`, or
/// the origin (`scheme://host:port`) of a postback `url_template`. `None`
/// for the ad platforms, whose endpoints are fixed. (A destination's
/// `base_url` is admin-supplied too and replaces any origin: the guard
/// should check it as well, or simply check every [`OutRequest::url`].)
pub fn admin_url(kind: Kind, config: &Value) -> Option<String> {
    kind.platform().admin_url(Config(config))
}

/// `scheme://authority` and the rest, for an absolute http(s) URL.
fn split_origin(url: &str) -> Option<(&str, &str)> {
    let i = url.find("://")?;
    let scheme = &url[..i];
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let start = i + 3;
    let end = start
        + url[start..]
            .find(['/', '?', '#'])
            .unwrap_or(url.len() - start);
    if end == start {
        return None;
    }
    Some(url.split_at(end))
}

/// Check a destination's `base_url` and return the origin that replaces
/// the platform's (`scheme://host:port`, any path ignored).
pub fn base_origin(base_url: &str) -> Result<String, String> {
    let b = base_url.trim();
    if b.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("base_url contains spaces or control characters".into());
    }
    let Some((origin, _)) = split_origin(b) else {
        return Err("base_url must be an absolute http:// or https:// URL such as https://proxy.example:8443".into());
    };
    let authority = &origin[origin.find("://").unwrap_or(0) + 3..];
    if authority.contains(['@', '\\', '{', '}']) {
        return Err("base_url must not contain user:password@ or placeholders".into());
    }
    let scheme = &origin[..origin.find("://").unwrap_or(0)];
    Ok(format!("{}://{authority}", scheme.to_ascii_lowercase()))
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// One attempt's input.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// Stable across attempts (the webhook-id).
    pub delivery_id: &'a str,
    /// The platform-side dedup ID: Meta `event_id`, Google `orderId`, GA4
    /// `transaction_id`, TikTok `event_id`.
    pub conversion_id: &'a str,
    pub conversion: &'a ConversionRecord,
    pub click: Option<&'a ClickRecord>,
    /// Attempt time, Unix milliseconds.
    pub now_ms: u64,
}

/// An HTTP request to send. Header names are lowercase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl OutRequest {
    /// The first header with that (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why no request can be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The delivery can never succeed as configured (no gclid on the click,
    /// event older than the platform accepts, invalid config...): it goes
    /// dead with this reason.
    Permanent(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Permanent(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for BuildError {}

fn permanent(why: impl Into<String>) -> BuildError {
    BuildError::Permanent(ellipsize(&why.into(), MAX_REASON_CHARS))
}

/// What [`Platform::build`] gets: a config that passed [`validate_config`]
/// and an event within the platform's age limit.
struct Attempt<'a> {
    config: Config<'a>,
    /// The origin of the destination's `base_url`, when one is set.
    base_origin: Option<&'a str>,
    ev: &'a Event<'a>,
    /// google_ads only: the OAuth access token obtained for this attempt.
    google_access_token: Option<&'a str>,
    default_origin: Option<&'static str>,
}

impl Attempt<'_> {
    /// The origin of the platform's endpoint: `base_url`'s, else the
    /// platform's documented one.
    fn origin(&self) -> &str {
        self.base_origin.or(self.default_origin).unwrap_or_default()
    }
}

/// Build the request for one attempt. `base_url`, when given, replaces only
/// the origin of the platform's endpoint (for webhook and postback, of the
/// configured URL). `google_access_token` is required for google_ads and
/// ignored otherwise.
pub fn build(
    kind: Kind,
    config: &Value,
    base_url: Option<&str>,
    ev: &Event<'_>,
    google_access_token: Option<&str>,
) -> Result<OutRequest, BuildError> {
    validate_config(kind, config)
        .map_err(|e| permanent(format!("the destination's config is invalid: {e}")))?;
    let origin = match base_url {
        Some(b) => Some(base_origin(b).map_err(permanent)?),
        None => None,
    };
    check_age(kind, ev)?;
    kind.platform().build(&Attempt {
        config: Config(config),
        base_origin: origin.as_deref(),
        ev,
        google_access_token,
        default_origin: kind.default_origin(),
    })
}

fn json_post(url: String, mut headers: Vec<(String, String)>, body: &Value) -> OutRequest {
    headers.push(("content-type".to_string(), "application/json".to_string()));
    OutRequest {
        method: Method::POST,
        url,
        headers,
        // Serializing a Value into a Vec cannot fail.
        body: serde_json::to_vec(body).unwrap_or_default(),
    }
}

/// `url` with its origin replaced by `origin`, when one is given.
fn with_origin(url: &str, origin: Option<&str>) -> String {
    match (origin, split_origin(url)) {
        (Some(o), Some((_, rest))) => format!("{o}{rest}"),
        _ => url.to_string(),
    }
}

fn enc(s: &str) -> String {
    crate::tracking::template::encode(s)
}

/// Refuse an event older than the platform accepts (ad platforms only; for
/// webhooks and postbacks the caller bounds retries with `max_age`).
fn check_age(kind: Kind, ev: &Event<'_>) -> Result<(), BuildError> {
    let Some((event_ms, what)) = kind.platform().event_time(ev) else {
        return Ok(());
    };
    let age = Duration::from_millis(ev.now_ms.saturating_sub(event_ms));
    if age > kind.max_age() {
        return Err(permanent(format!(
            "{what} is {} old and {} accepts events up to {} old",
            human(age),
            kind.label(),
            human(kind.max_age())
        )));
    }
    Ok(())
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 7 * 86_400 {
        format!("{} days", s / 86_400)
    } else if s >= 3_600 {
        format!("{} hours", s / 3_600)
    } else {
        format!("{} minutes", s / 60)
    }
}

/// The conversion's amount as an exact JSON number (`12.50` stays `12.50`),
/// `None` without an amount.
fn amount_number(c: &ConversionRecord) -> Option<Value> {
    let a = c.amount.as_deref()?.trim();
    let ok = !a.is_empty()
        && a.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && a.bytes().filter(|&b| b == b'.').count() <= 1
        && !a.starts_with('.')
        && !a.ends_with('.');
    if !ok {
        return None;
    }
    serde_json::from_str::<serde_json::Number>(a)
        .ok()
        .map(Value::Number)
}

/// The conversion's event: the standard name for `purchase` and `lead`
/// (also when the postback's `event` says so), else the custom event name.
fn event_name<'a>(c: &'a ConversionRecord, purchase: &'a str, lead: &'a str) -> &'a str {
    let name = c
        .event
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .unwrap_or(c.kind.as_str());
    if name.eq_ignore_ascii_case("purchase") {
        purchase
    } else if name.eq_ignore_ascii_case("lead") {
        lead
    } else {
        name
    }
}

/// The click's first non-blank query parameter `name`, trimmed.
fn param<'a>(c: &'a ClickRecord, name: &str) -> Option<&'a str> {
    c.params
        .iter()
        .find(|(k, v)| k == name && !v.trim().is_empty())
        .map(|(_, v)| v.trim())
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/// What became of an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again: `after` is the platform's `Retry-After` when it sent one
    /// (else the worker's own backoff).
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Never retried automatically.
    Dead {
        reason: String,
    },
}

/// Classify a response. 2xx → `Delivered` unless the body says otherwise
/// (TikTok `code` ≠ 0, Google Ads `partialFailureError`, Meta
/// `events_received: 0`); 408, 429 and 5xx → `Retry` (with `Retry-After` as
/// seconds or an HTTP-date relative to `now_ms`); 3xx (redirects are not
/// followed) and other 4xx → `Dead` with the platform's error text. Some
/// platform errors are retried whatever their status: Meta transient
/// errors, Google Ads 401 with a `google.rpc.Status` body (expired access
/// token: the caller must drop its cached token; the OAuth token endpoint's
/// own 401 `invalid_client` stays dead). Reasons are at most [`MAX_REASON_CHARS`] characters and
/// never contain any of `secrets` (nor `access_token=…`/`Bearer …` values).
pub fn classify(
    kind: Kind,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: u64,
    secrets: &[&str],
) -> Verdict {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let platform = kind.platform();
    let answer = Answer {
        status,
        json: json.as_ref(),
        platform,
        headers,
        body,
        now_ms,
        secrets,
    };

    if (200..300).contains(&status) {
        return json
            .as_ref()
            .and_then(|v| platform.refused(&answer, v))
            .unwrap_or(Verdict::Delivered);
    }

    let label = kind.label();
    if matches!(status, 408 | 429) || (500..600).contains(&status) {
        return answer.retry(answer.with_detail(format!("{label} answered HTTP {status}")));
    }
    if (300..400).contains(&status) {
        let location = headers
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(|l| format!(" to {}", ellipsize(l, 120)))
            .unwrap_or_default();
        return answer.dead(format!(
            "{label} answered HTTP {status} (a redirect{location}); redirects are not followed: \
             configure the final URL"
        ));
    }
    if (400..500).contains(&status) {
        let text = answer.with_detail(format!("{label} answered HTTP {status}"));
        return if platform.transient(&answer) {
            answer.retry(text)
        } else {
            answer.dead(text)
        };
    }
    // 1xx or a status outside the HTTP range: treat as a transport fault.
    Verdict::Retry {
        after: None,
        reason: answer.reason(&format!(
            "{label} answered an unexpected HTTP status {status}"
        )),
    }
}

/// The conversion and click every platform's tests send, at fixed times,
/// and the configs several of them use.
#[cfg(test)]
mod fixtures {
    use hyper::HeaderMap;
    use hyper::header::HeaderValue;
    use serde_json::{Value, json};

    use super::{Event, OutRequest, Verdict};
    use crate::store::records::{ClickRecord, ConversionRecord};

    pub const NOW_MS: u64 = 1_763_700_000_000; // 2025-11-21T04:40:00Z
    pub const CONV_MS: u64 = NOW_MS - 3_600_000; // an hour earlier
    pub const CLICK_MS: u64 = NOW_MS - 86_400_000; // a day earlier

    pub fn s(v: &str) -> String {
        v.to_string()
    }

    /// An exact JSON number (`json!(12.50)` would be the float 12.5).
    pub fn dec(v: &str) -> Value {
        serde_json::from_str(v).unwrap()
    }

    pub fn conversion() -> ConversionRecord {
        ConversionRecord {
            source_id: 3,
            click_id: s("0k2x9abcdefghjkmnpqrstvw"),
            matched: true,
            slug: Some(s("summer")),
            campaign: Some(s("c1")),
            kind: s("purchase"),
            event: None,
            amount: Some(s("12.50")),
            currency: s("USD"),
            status: s("approved"),
            transaction_id: Some(s("tx 1/2")),
            country: Some(s("US")),
            state: Some(s("WA")),
            city: Some(s("Seattle")),
            zip: Some(s("98121-4892")),
            created_ms: CONV_MS,
            updated_ms: CONV_MS,
            history: vec![(CONV_MS, s("approved"))],
            event_ids: vec![s("ev1")],
            extra: vec![
                (s("Email"), s(" Joe@Email.com ")),
                (s("phone"), s("+1 (206) 206-2006")),
                (s("first-name"), s("George")),
                (s("note"), s("not pii")),
            ],
            ..Default::default()
        }
    }

    pub fn click() -> ClickRecord {
        ClickRecord {
            ms: CLICK_MS,
            slug: s("summer"),
            source_id: Some(3),
            campaign: Some(s("c1")),
            head: false,
            ip: s("203.0.113.7"),
            user_agent: Some(s("Mozilla/5.0 (X11)")),
            referrer: Some(s("https://news.example/")),
            params: vec![
                (s("gclid"), s("Cj0KCQ-abc")),
                (s("ttclid"), s("E.C.P.xyz")),
                (s("fbclid"), s("IwAR1")),
                (s("s2"), s("src click/1")),
                (s("utm_source"), s("fb")),
            ],
            fbc: Some(s("fb.1.1763613600000.IwAR1")),
            fbp: Some(s("fb.1.1700000000.123")),
            device: s("desktop"),
            os: Some(s("Linux")),
            browser: Some(s("Firefox")),
            country: Some(s("US")),
            bot: false,
            unique: true,
            ..Default::default()
        }
    }

    pub fn ev<'a>(c: &'a ConversionRecord, cl: Option<&'a ClickRecord>) -> Event<'a> {
        Event {
            delivery_id: "dlv_01",
            conversion_id: "cnv_01",
            conversion: c,
            click: cl,
            now_ms: NOW_MS,
        }
    }

    pub fn body(r: &OutRequest) -> Value {
        serde_json::from_slice(&r.body).expect("JSON body")
    }

    pub fn meta_cfg() -> Value {
        json!({"pixel_id": "1234567890", "access_token": "EAAtoken123", "test_event_code": "TEST42"})
    }

    pub fn gads_cfg() -> Value {
        json!({
            "customer_id": "123-456-7890",
            "conversion_action": "555",
            "developer_token": "devtok-abc",
            "client_id": "cid.apps.googleusercontent.com",
            "client_secret": "csecret-xyz",
            "refresh_token": "1//refresh-abc",
            "login_customer_id": "9876543210",
        })
    }

    pub fn webhook_cfg() -> Value {
        json!({"url": "https://hooks.example/in?x=1", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
    }

    pub fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    pub fn reason(v: &Verdict) -> &str {
        match v {
            Verdict::Delivered => "",
            Verdict::Retry { reason, .. } | Verdict::Dead { reason } => reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("Meta"), None);
        assert_eq!(Kind::Ga4.max_age(), Duration::from_secs(72 * 3600));
        assert_eq!(Kind::Meta.max_age(), Duration::from_secs(7 * 86_400));
        assert_eq!(Kind::Webhook.default_origin(), None);
        assert_eq!(
            Kind::TikTok.default_origin(),
            Some("https://business-api.tiktok.com")
        );
    }

    #[test]
    fn too_old_is_permanent() {
        let mut c = conversion();
        c.created_ms = NOW_MS - 8 * 86_400_000;
        let err = build(Kind::Meta, &meta_cfg(), None, &ev(&c, None), None).unwrap_err();
        let BuildError::Permanent(why) = err;
        assert!(why.contains("8 days old") && why.contains("Meta"), "{why}");
        c.created_ms = NOW_MS - 73 * 3_600_000;
        let cfg = json!({"measurement_id": "G-ABC123", "api_secret": "sec"});
        let BuildError::Permanent(why) =
            build(Kind::Ga4, &cfg, None, &ev(&c, None), None).unwrap_err();
        assert!(
            why.contains("73 hours") && why.contains("72 hours"),
            "{why}"
        );
        // Webhooks carry old conversions' updates.
        assert!(build(Kind::Webhook, &webhook_cfg(), None, &ev(&c, None), None).is_ok());
    }

    /// The checks every type shares; each platform's file tests its own.
    #[test]
    fn config_validation() {
        let err = |k: Kind, v: Value| validate_config(k, &v).unwrap_err();
        let e = err(Kind::Meta, json!({"pixel_id": "1"}));
        assert!(e.contains("config.access_token is missing"), "{e}");
        let e = err(Kind::Meta, json!({"pixel_id": 1, "access_token": "t"}));
        assert!(e.contains("must be a string"), "{e}");
        let e = err(
            Kind::Meta,
            json!({"pixel_id": "1", "access_token": "t", "token": "x"}),
        );
        assert!(e.contains("unknown config field `token`"), "{e}");
        assert!(e.contains("`pixel_id`"), "{e}");
        assert!(err(Kind::Meta, json!([])).contains("JSON object"));
        let e = err(
            Kind::TikTok,
            json!({"pixel_code": "C1", "access_token": "a\nb"}),
        );
        assert!(e.contains("control characters"), "{e}");
        // Messages never echo values.
        let e = err(
            Kind::Meta,
            json!({"pixel_id": "SECRETVALUE", "access_token": "t"}),
        );
        assert!(!e.contains("SECRETVALUE"));
        // An invalid config is a permanent build error.
        let c = conversion();
        assert!(matches!(
            build(Kind::Meta, &json!({}), None, &ev(&c, None), None),
            Err(BuildError::Permanent(_))
        ));
        assert!(
            build(
                Kind::Meta,
                &meta_cfg(),
                Some("ftp://x"),
                &ev(&c, None),
                None
            )
            .is_err()
        );
    }

    #[test]
    fn base_origins() {
        assert_eq!(
            base_origin("HTTP://127.0.0.1:9000/a/b").as_deref(),
            Ok("http://127.0.0.1:9000")
        );
        assert!(base_origin("http://u:p@h/").is_err());
        assert!(base_origin("127.0.0.1:9000").is_err());
    }

    /// What a status means, whatever the platform; each platform's file
    /// tests its own bodies and errors.
    #[test]
    fn classify_statuses() {
        let none = HeaderMap::new();
        let ok = |k, st, b: &str| classify(k, st, &none, b.as_bytes(), NOW_MS, &[]);
        assert_eq!(ok(Kind::Ga4, 204, ""), Verdict::Delivered);
        assert_eq!(ok(Kind::Webhook, 202, "accepted"), Verdict::Delivered);

        let v = classify(
            Kind::Webhook,
            400,
            &none,
            b"bad payload\n\n  here",
            NOW_MS,
            &[],
        );
        assert_eq!(
            v,
            Verdict::Dead {
                reason: s("the webhook answered HTTP 400: bad payload here")
            }
        );
        let v = classify(Kind::Webhook, 408, &none, b"", NOW_MS, &[]);
        assert_eq!(
            v,
            Verdict::Retry {
                after: None,
                reason: s("the webhook answered HTTP 408")
            }
        );
        for st in [500, 502, 503] {
            assert!(matches!(
                classify(
                    Kind::TikTok,
                    st,
                    &none,
                    b"<html><body>Bad gateway</body></html>",
                    NOW_MS,
                    &[]
                ),
                Verdict::Retry { .. }
            ));
        }
        let v = classify(
            Kind::Postback,
            302,
            &headers(&[("location", "https://elsewhere.example/")]),
            b"",
            NOW_MS,
            &[],
        );
        assert!(matches!(v, Verdict::Dead { .. }));
        assert!(reason(&v).contains("redirects are not followed"), "{v:?}");
    }
}
