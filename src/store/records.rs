//! Storage records: what is written to redb, kept apart from the JSON API
//! types because serialized types are forever.
//!
//! Each value is one version byte followed by a MessagePack array
//! (`rmp_serde::to_vec`, positional: compact, no field names on disk). New
//! fields go at the end with `#[serde(default)]`; anything more drastic
//! bumps the version byte and adds a decode arm.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::StoreError;

/// A type stored as a redb value.
pub trait Record: Serialize + DeserializeOwned {
    /// Written as the first byte of every value of this type.
    const VERSION: u8;
    /// Table name, for error messages.
    const KIND: &'static str;
}

pub fn encode<R: Record>(r: &R) -> Vec<u8> {
    let mut out = vec![R::VERSION];
    // Serializing plain structs of strings and integers into a Vec cannot
    // fail; a failure here is a programming error worth a loud stop.
    rmp_serde::encode::write(&mut out, r).expect("record serialization");
    out
}

pub fn decode<R: Record>(bytes: &[u8]) -> Result<R, StoreError> {
    match bytes.split_first() {
        Some((&v, rest)) if v == R::VERSION => rmp_serde::from_slice(rest)
            .map_err(|e| StoreError::Corrupt(format!("{} record: {e}", R::KIND).into())),
        Some((&v, _)) => Err(StoreError::Corrupt(
            format!("{} record version {v} is not known to this build", R::KIND).into(),
        )),
        None => Err(StoreError::Corrupt(
            format!("empty {} record", R::KIND).into(),
        )),
    }
}

/// A postback source: one network account.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourceRecord {
    pub name: String,
    /// The unguessable key in `/p/{key}`.
    pub key: String,
    pub preset: Option<String>,
    /// canonical field -> parameter name (overrides the preset).
    pub params: Vec<(String, String)>,
    /// raw status value (lowercase) -> canonical status (overrides the preset).
    pub status_map: Vec<(String, String)>,
    pub default_currency: String,
    /// Macro syntax for the generated postback URL, when not the preset's.
    pub macro_syntax: Option<String>,
    pub created_ms: u64,
    /// Active signing secrets (`whsec_…`); signing is required when any.
    /// Never logged; shown masked by the API.
    #[serde(default)]
    pub signing_secrets: Vec<String>,
    /// Signature timestamp tolerance, seconds.
    #[serde(default = "default_tolerance")]
    pub signing_tolerance_s: u64,
    /// Allowed client networks (CIDR); empty = any.
    #[serde(default)]
    pub allow_ips: Vec<String>,
    /// Per-source rate limit (per second, burst); `None` = the server default.
    #[serde(default)]
    pub rate_limit: Option<(u32, u32)>,
    /// IPN receiver settings (`/ipn/{key}`); `None` = postbacks only.
    #[serde(default)]
    pub ipn: Option<IpnRecord>,
}

/// A source's IPN settings. The secret is never logged; the API shows it
/// masked.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IpnRecord {
    /// `clickbank`, `jvzoo`, `warriorplus` or `digistore24`.
    pub format: String,
    pub secret: String,
    pub click_id_field: Option<String>,
    /// `commission` or `order`.
    pub amount: String,
    /// Forward test transactions too.
    pub include_tests: bool,
}

fn default_tolerance() -> u64 {
    crate::util::signing::DEFAULT_TOLERANCE_S
}

impl Record for SourceRecord {
    const VERSION: u8 = 1;
    const KIND: &'static str = "source";
}

/// A tracking link, keyed by slug.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LinkRecord {
    /// Validated destination template (see `click::validate_destination`).
    pub destination: String,
    pub source_id: Option<u64>,
    pub campaign: Option<String>,
    /// Parameter appended with the click ID when the destination has no
    /// placeholder.
    pub param: String,
    pub created_ms: u64,
    /// Which click parameter fills each sub-ID slot: `("sub1", "zoneid")`.
    #[serde(default)]
    pub subs: Vec<(String, String)>,
    /// What the traffic costs.
    #[serde(default)]
    pub cost: Option<LinkCost>,
    /// Landing-page origins (normalized `scheme://host[:port]`) whose
    /// pages may record clicks on this link with the page tag, beside the
    /// server's `tag_origins`.
    #[serde(default)]
    pub tag_origins: Vec<String>,
}

/// A link's cost model: `cpc` (amount per click), `cpa` (amount per
/// approved conversion), `revshare` (percent of approved revenue) or
/// `param` (each click's own price in a click parameter: auto-cost).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LinkCost {
    pub model: String,
    pub amount: Option<String>,
    pub percent: Option<String>,
    pub param: Option<String>,
    /// Currency of `amount` / the parameter; `None`: the report currency.
    pub currency: Option<String>,
}

impl Record for LinkRecord {
    const VERSION: u8 = 1;
    const KIND: &'static str = "link";
}

/// One click, keyed by click ID (time-ordered).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClickRecord {
    pub ms: u64,
    pub slug: String,
    pub source_id: Option<u64>,
    pub campaign: Option<String>,
    /// Served to a HEAD request (link checkers, unfurlers): stored, because
    /// every redirect served has its click, but flagged.
    pub head: bool,
    pub ip: String,
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
    /// All query parameters of the click, in order (bounded).
    pub params: Vec<(String, String)>,
    /// Meta click ID (`fb.1.<ms>.<fbclid>` or the `_fbc` cookie).
    pub fbc: Option<String>,
    /// Meta browser ID from the `_fbp` cookie.
    pub fbp: Option<String>,
    // Click quality (`tracking::quality`), appended in round 2: records
    // written before it decode with these defaults (empty device, no
    // country, not a bot, not unique).
    /// `desktop`, `mobile`, `tablet`, `bot` or `other`; empty on clicks
    /// recorded before click quality.
    #[serde(default)]
    pub device: String,
    /// OS family (`iOS`, `Android`, `Windows`...), no version.
    #[serde(default)]
    pub os: Option<String>,
    /// Browser family (`Chrome`, `Mobile Safari`, `Facebook`...), no version.
    #[serde(default)]
    pub browser: Option<String>,
    /// ISO 3166-1 alpha-2, uppercase; `None` when unknown.
    #[serde(default)]
    pub country: Option<String>,
    /// A bot, crawler, prefetch, HEAD or empty user agent: stored and
    /// redirected like any click, counted apart.
    #[serde(default)]
    pub bot: bool,
    /// The values of sub1..sub5, from the click parameters the link names
    /// (`subs`) when the click arrived.
    #[serde(default)]
    pub subs: Vec<String>,
    /// What this click cost (CPC or auto-cost from a parameter): exact
    /// decimal text and currency.
    #[serde(default)]
    pub cost: Option<(String, String)>,
    /// The visitor (IP + user agent) had not clicked this link within
    /// `unique_window_hours`; decided by the writer (see [`set_unique`]).
    /// Always false for bots. Only the [`ClickTail`] fields may follow it.
    #[serde(default)]
    pub unique: bool,
    // Tracking without a redirect, appended after `unique`: clicks written
    // before it decode as redirect clicks without these.
    /// How the click arrived: empty for a `/c/` redirect, `tag` for the
    /// page tag (`POST /e/click`), `api` for `POST /api/v1/clicks`.
    #[serde(default)]
    pub via: String,
    /// The landing page the click was recorded on (tag, API); `None` for
    /// redirects, whose landing page is the destination.
    #[serde(default)]
    pub landing_url: Option<String>,
    /// The caller's own ID for this click (`POST /api/v1/clicks`), trimmed,
    /// as given: postbacks carrying it match this click. Indexed in
    /// `store::EXTERNAL_IDS`.
    #[serde(default)]
    pub external_id: Option<String>,
}

/// The fields encoded after `unique`, in order: [`unique_offset`] measures
/// them. A field appended to [`ClickRecord`] is appended here too (the
/// round-trip test fails otherwise).
type ClickTail<'a> = (&'a String, &'a Option<String>, &'a Option<String>);

/// Where `unique` sits in `encode(rec)`: the handler encodes the record
/// (off the writer thread) before the writer knows whether the click is
/// unique, and the writer patches that one byte with [`set_unique`].
pub fn unique_offset(rec: &ClickRecord, encoded_len: usize) -> usize {
    let tail: ClickTail<'_> = (&rec.via, &rec.landing_url, &rec.external_id);
    // The tuple is a MessagePack array: a one-byte header (three elements)
    // then exactly the bytes the record ends with.
    let tail_len = rmp_serde::to_vec(&tail).map_or(1, |v| v.len()) - 1;
    encoded_len - tail_len - 1
}

/// Set `unique` in an encoded [`ClickRecord`] without encoding it again:
/// `unique` is a MessagePack boolean (one byte, `0xc2` false / `0xc3`
/// true) at `at` ([`unique_offset`]).
pub fn set_unique(encoded: &mut [u8], at: usize, unique: bool) {
    const FALSE: u8 = 0xc2;
    const TRUE: u8 = 0xc3;
    if let Some(b) = encoded.get_mut(at) {
        debug_assert!(
            *b == FALSE || *b == TRUE,
            "unique_offset must point at the unique flag"
        );
        *b = if unique { TRUE } else { FALSE };
    }
}

impl Record for ClickRecord {
    const VERSION: u8 = 1;
    const KIND: &'static str = "click";
}

/// A conversion, keyed by conversion ID (time-ordered).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConversionRecord {
    pub source_id: u64,
    /// Normalized click ID as received.
    pub click_id: String,
    /// A stored click with that ID existed when the conversion arrived.
    pub matched: bool,
    pub slug: Option<String>,
    pub campaign: Option<String>,
    /// `lead` or `purchase`.
    pub kind: String,
    pub event: Option<String>,
    /// Exact decimal text; never a float.
    pub amount: Option<String>,
    pub currency: String,
    pub status: String,
    pub transaction_id: Option<String>,
    pub country: Option<String>,
    pub state: Option<String>,
    pub city: Option<String>,
    pub zip: Option<String>,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// Every status the conversion has had, with its time.
    pub history: Vec<(u64, String)>,
    /// The postback events that created or changed it.
    pub event_ids: Vec<String>,
    /// Non-canonical postback parameters.
    pub extra: Vec<(String, String)>,
    /// Where the conversion is counted in the report roll-ups: its click's
    /// bucket and dimension values (see `store::rollup`), fixed at creation
    /// so a status change moves exactly what was counted.
    #[serde(default)]
    pub rollup_bucket: u32,
    #[serde(default)]
    pub rollup_dims: Vec<String>,
    /// The link's cost model for this conversion (CPA, revshare) when it
    /// was created.
    #[serde(default)]
    pub rollup_cost: Option<super::rollup::ConversionCost>,
    /// A network's test transaction (IPN): stored, left out of reports,
    /// not forwarded unless the source includes tests.
    #[serde(default)]
    pub test: bool,
    /// For a rebill: the conversion of the original sale.
    #[serde(default)]
    pub original_id: Option<String>,
}

impl Record for ConversionRecord {
    const VERSION: u8 = 1;
    const KIND: &'static str = "conversion";
}

/// One postback request and what became of it, keyed by event ID.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventRecord {
    pub source_id: u64,
    pub ms: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    /// The body was longer than the stored cap.
    pub body_truncated: bool,
    pub remote_ip: String,
    pub user_agent: Option<String>,
    pub http_status: u16,
    /// `matched`, `duplicate`, `updated`, `unmatched` or an error code.
    pub result: String,
    pub message: Option<String>,
    pub conversion_id: Option<String>,
    pub click_id: Option<String>,
    /// The event this one re-processed.
    pub replay_of: Option<String>,
    /// What the request decoded to, when the raw body is not readable on
    /// its own (ClickBank's decrypted JSON).
    #[serde(default)]
    pub decoded: Option<String>,
    /// An IPN request that passed its network's authentication (a replay
    /// of a stored request whose secret was redacted relies on it).
    #[serde(default)]
    pub authenticated: bool,
}

impl Record for EventRecord {
    const VERSION: u8 = 1;
    const KIND: &'static str = "event";
}

/// A forwarding destination (ad platform, webhook, postback).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DestinationRecord {
    pub name: String,
    /// `meta`, `google_ads`, `ga4`, `tiktok`, `webhook` or `postback`.
    pub kind: String,
    /// The type's settings as JSON text (validated by
    /// `forward::platforms::validate_config`); holds secrets, never logged.
    pub config: String,
    /// Replaces the origin of the platform's endpoint (proxies, tests).
    pub base_url: Option<String>,
    /// Only conversions of these sources (empty = all).
    pub filter_sources: Vec<u64>,
    /// Only these types, `lead` / `purchase` (empty = all).
    pub filter_types: Vec<String>,
    /// Only conversions in these statuses (default: approved).
    pub filter_statuses: Vec<String>,
    pub created_ms: u64,
}

impl Record for DestinationRecord {
    const VERSION: u8 = 1;
    const KIND: &'static str = "destination";
}

/// One conversion to send to one destination, keyed by delivery ID
/// (time-ordered). The delivery ID is the idempotency key sent on every
/// attempt (webhook-id); platforms dedupe on the conversion ID.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub destination_id: u64,
    pub conversion_id: String,
    /// The conversion's status when this delivery was created.
    pub status: String,
    /// `conversion.created` or `conversion.updated` (webhook event type).
    pub event_type: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    pub attempts: u32,
    pub created_ms: u64,
    /// When the next attempt is due (pending only).
    pub next_ms: u64,
    pub last_attempt_ms: Option<u64>,
    /// HTTP status of the last attempt, if a response arrived.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, or the platform's answer (redacted,
    /// at most a few hundred characters).
    pub last_error: Option<String>,
    pub delivered_ms: Option<u64>,
    /// The most recent attempts and retry requests, oldest first (at most
    /// [`DELIVERY_LOG_LEN`]).
    #[serde(default)]
    pub log: Vec<AttemptLog>,
    /// A retry was requested while the attempt due at `next_ms` may have
    /// been in flight. That attempt's result stands; if it is a retryable
    /// failure, the next attempt is due at once instead of after the
    /// backoff, so the request is still honoured.
    #[serde(default)]
    pub retry_requested: bool,
    /// The due time a retry moved `next_ms` away from. An attempt the
    /// worker started under it just before the move is still recorded
    /// (not dropped, which would make the worker send a second time).
    #[serde(default)]
    pub superseded_ms: Option<u64>,
    /// An alert's notification rather than a conversion's delivery: the
    /// alert (`store::health::ALERTS`) whose `notify` says where it goes;
    /// `destination_id` is then 0 and `conversion_id` empty.
    #[serde(default)]
    pub alert_id: Option<u64>,
    /// The notification's text (alerts only).
    #[serde(default)]
    pub notice: Option<String>,
}

/// Attempts kept in a delivery's log.
pub const DELIVERY_LOG_LEN: usize = 20;

/// One attempt of a delivery, or a retry request (`retry_requested`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttemptLog {
    /// When the attempt was decided, or the retry requested (ms).
    pub at_ms: u64,
    /// `delivered`, `retry` or `dead` for an attempt; `retry_requested`
    /// for `POST /api/v1/deliveries/{id}/retry` (not an attempt: it does
    /// not count in `attempts`).
    pub outcome: String,
    pub status: Option<u16>,
    /// When the next attempt was scheduled, for `retry`.
    pub next_ms: Option<u64>,
    /// The redacted error or platform answer.
    pub note: Option<String>,
}

impl Record for DeliveryRecord {
    const VERSION: u8 = 1;
    const KIND: &'static str = "delivery";
}

/// A dashboard user, keyed by name (lowercase).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserRecord {
    /// `admin` or `viewer`.
    pub role: String,
    /// The argon2id PHC string. Never logged, never answered.
    pub hash: String,
    pub created_ms: u64,
}

impl Record for UserRecord {
    const VERSION: u8 = 1;
    const KIND: &'static str = "user";
}

/// A signed-in session, keyed by the SHA-256 of its cookie token (the
/// token itself is only ever in the browser's cookie).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionRecord {
    pub user: String,
    pub created_ms: u64,
    /// Updated at most once a minute (a write is an fsync).
    pub last_seen_ms: u64,
    /// This session's CSRF token: every dashboard form posts it back.
    pub csrf: String,
}

impl Record for SessionRecord {
    const VERSION: u8 = 1;
    const KIND: &'static str = "session";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_check() {
        let l = LinkRecord {
            destination: "https://x.com/?s={click_id}".into(),
            source_id: Some(3),
            campaign: None,
            param: "sub1".into(),
            created_ms: 5,
            ..Default::default()
        };
        let bytes = encode(&l);
        assert_eq!(bytes[0], 1);
        assert_eq!(decode::<LinkRecord>(&bytes).unwrap(), l);
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(matches!(
            decode::<LinkRecord>(&bad),
            Err(StoreError::Corrupt(_))
        ));
    }

    /// A click written before click quality (round 1's eleven fields)
    /// still decodes, with the quality defaults.
    #[test]
    fn click_without_the_quality_fields_decodes() {
        #[derive(Serialize, Deserialize)]
        struct Before {
            ms: u64,
            slug: String,
            source_id: Option<u64>,
            campaign: Option<String>,
            head: bool,
            ip: String,
            user_agent: Option<String>,
            referrer: Option<String>,
            params: Vec<(String, String)>,
            fbc: Option<String>,
            fbp: Option<String>,
        }
        impl Record for Before {
            const VERSION: u8 = 1;
            const KIND: &'static str = "click";
        }
        let old = Before {
            ms: 7,
            slug: "spring".into(),
            source_id: Some(1),
            campaign: None,
            head: true,
            ip: "203.0.113.5".into(),
            user_agent: Some("curl/8".into()),
            referrer: None,
            params: vec![("a".into(), "b".into())],
            fbc: None,
            fbp: Some("fb.1.2.3".into()),
        };
        let c: ClickRecord = decode(&encode(&old)).unwrap();
        assert_eq!((c.ms, c.slug.as_str(), c.head), (7, "spring", true));
        assert_eq!(c.fbp.as_deref(), Some("fb.1.2.3"));
        assert_eq!(c.device, "");
        assert_eq!((c.os, c.browser, c.country), (None, None, None));
        assert!(!c.bot && !c.unique);
    }

    /// A click and a link written before tracking without a redirect (no
    /// `via`, `landing_url`, `external_id`; no `tag_origins`) still decode.
    #[test]
    fn records_without_the_tag_fields_decode() {
        let c = ClickRecord {
            ms: 3,
            slug: "s".into(),
            unique: true,
            ..ClickRecord::default()
        };
        // As an old build wrote it: the array of 22 fields without the last
        // three (`""`, `nil`, `nil`), ending with `unique`.
        let mut bytes = encode(&c);
        assert_eq!(&bytes[1..4], &[0xdc, 0x00, 22]);
        assert_eq!(&bytes[bytes.len() - 4..], &[0xc3, 0xa0, 0xc0, 0xc0]);
        bytes.truncate(bytes.len() - 3);
        bytes[3] = 19;
        let back: ClickRecord = decode(&bytes).unwrap();
        assert_eq!(back, c);
        assert_eq!((back.via.as_str(), back.external_id), ("", None));
        let l = LinkRecord {
            destination: "https://x.com/".into(),
            ..Default::default()
        };
        let mut bytes = encode(&l);
        assert_eq!(bytes.pop(), Some(0x90), "tag_origins: an empty array");
        bytes[1] -= 1;
        let back: LinkRecord = decode(&bytes).unwrap();
        assert_eq!(back, l);
    }

    #[test]
    fn set_unique_flips_only_the_unique_field() {
        let c = ClickRecord {
            ms: 1,
            slug: "s".into(),
            device: "mobile".into(),
            country: Some("DE".into()),
            ..ClickRecord::default()
        };
        for (via, landing, external) in [
            ("", None, None),
            ("api", Some("https://lp.example/?a=1"), Some("CRM-Lead 42")),
            ("tag", Some(&"x".repeat(300)[..]), None),
        ] {
            let c = ClickRecord {
                via: via.into(),
                landing_url: landing.map(str::to_string),
                external_id: external.map(str::to_string),
                ..c.clone()
            };
            let mut bytes = encode(&c);
            let at = unique_offset(&c, bytes.len());
            set_unique(&mut bytes, at, true);
            let back: ClickRecord = decode(&bytes).unwrap();
            assert_eq!(
                back,
                ClickRecord {
                    unique: true,
                    ..c.clone()
                }
            );
            set_unique(&mut bytes, at, false);
            assert_eq!(decode::<ClickRecord>(&bytes).unwrap(), c);
        }
    }

    /// A source and an event written before the IPN fields were appended
    /// still decode, with their defaults.
    #[test]
    fn records_without_the_ipn_fields_decode() {
        #[derive(Serialize, Deserialize)]
        struct SourceBefore {
            name: String,
            key: String,
            preset: Option<String>,
            params: Vec<(String, String)>,
            status_map: Vec<(String, String)>,
            default_currency: String,
            macro_syntax: Option<String>,
            created_ms: u64,
            signing_secrets: Vec<String>,
            signing_tolerance_s: u64,
            allow_ips: Vec<String>,
            rate_limit: Option<(u32, u32)>,
        }
        impl Record for SourceBefore {
            const VERSION: u8 = 1;
            const KIND: &'static str = "source";
        }
        let old = SourceBefore {
            name: "n".into(),
            key: "k".into(),
            preset: None,
            params: vec![],
            status_map: vec![],
            default_currency: "USD".into(),
            macro_syntax: None,
            created_ms: 1,
            signing_secrets: vec![],
            signing_tolerance_s: 300,
            allow_ips: vec![],
            rate_limit: Some((1, 2)),
        };
        let s: SourceRecord = decode(&encode(&old)).unwrap();
        assert_eq!((s.rate_limit, s.ipn), (Some((1, 2)), None));
        let ev = EventRecord {
            source_id: 1,
            ms: 2,
            method: "GET".into(),
            path: "/p/k".into(),
            query: String::new(),
            content_type: None,
            body: vec![],
            body_truncated: false,
            remote_ip: "192.0.2.1".into(),
            user_agent: None,
            http_status: 200,
            result: "matched".into(),
            message: None,
            conversion_id: None,
            click_id: None,
            replay_of: None,
            decoded: None,
            authenticated: false,
        };
        // The same event without its last two fields, as an old build wrote
        // it: an array of 16 instead of 18 (`nil`, `false` dropped).
        let mut bytes = encode(&ev);
        assert_eq!(&bytes[1..4], &[0xdc, 0x00, 18]);
        assert_eq!(&bytes[bytes.len() - 2..], &[0xc0, 0xc2]);
        bytes.truncate(bytes.len() - 2);
        bytes[3] = 16;
        let back: EventRecord = decode(&bytes).unwrap();
        assert_eq!((back.decoded, back.authenticated), (None, false));
        assert_eq!(back.path, "/p/k");
    }

    /// A delivery written before `retry_requested` and `superseded_ms`
    /// were appended still decodes, with their defaults.
    #[test]
    fn delivery_without_the_retry_fields_decodes() {
        #[derive(Serialize, Deserialize)]
        struct Before {
            destination_id: u64,
            conversion_id: String,
            status: String,
            event_type: String,
            state: String,
            attempts: u32,
            created_ms: u64,
            next_ms: u64,
            last_attempt_ms: Option<u64>,
            last_status: Option<u16>,
            last_error: Option<String>,
            delivered_ms: Option<u64>,
            log: Vec<AttemptLog>,
        }
        impl Record for Before {
            const VERSION: u8 = 1;
            const KIND: &'static str = "delivery";
        }
        let old = Before {
            destination_id: 2,
            conversion_id: "c".into(),
            status: "approved".into(),
            event_type: "conversion.created".into(),
            state: "pending".into(),
            attempts: 1,
            created_ms: 5,
            next_ms: 9,
            last_attempt_ms: Some(6),
            last_status: Some(500),
            last_error: Some("down".into()),
            delivered_ms: None,
            log: vec![AttemptLog {
                at_ms: 6,
                outcome: "retry".into(),
                status: Some(500),
                next_ms: Some(9),
                note: Some("down".into()),
            }],
        };
        let d: DeliveryRecord = decode(&encode(&old)).unwrap();
        assert_eq!((d.next_ms, d.log.len()), (9, 1));
        assert!(!d.retry_requested);
        assert_eq!(d.superseded_ms, None);
    }
}
