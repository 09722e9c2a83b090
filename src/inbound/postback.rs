//! Pure normalization of a postback request into canonical conversion
//! fields: parameter resolution (canonical names, built-in aliases,
//! per-source mapping), amount / currency / status validation and
//! unsubstituted-macro detection.
//!
//! No I/O, no clock: this is what `fuzz/` drives. Every rejection carries a
//! stable machine code and a sentence that names the fix.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::inbound::currency;
use crate::inbound::query::{self, Limits, Param, ParseError};
use crate::util::ids::{self, MAX_CLICK_ID_LEN};

/// Canonical fields, each with its built-in aliases, in resolution order.
/// A per-source mapping for a field replaces that field's aliases.
pub const FIELDS: &[(&str, &[&str])] = &[
    (
        "click_id",
        &["clickid", "cid", "subid", "sub_id", "sub1", "aff_sub"],
    ),
    ("amount", &["payout", "sum", "commission", "revenue"]),
    ("currency", &["cur", "currency_code"]),
    (
        "transaction_id",
        &[
            "txid",
            "txn_id",
            "tx_id",
            "transactionid",
            "order_id",
            "orderid",
        ],
    ),
    ("event", &["event_name", "event_type", "goal"]),
    ("status", &["conversion_status"]),
    ("country", &["country_code", "geo"]),
    ("state", &["region"]),
    ("city", &[]),
    ("zip", &["zipcode", "postal_code", "postcode"]),
];

/// The canonical field names, for messages ("map one of: ...").
pub const FIELD_LIST: &str =
    "click_id, amount, currency, transaction_id, event, status, country, state, city, zip";

/// Is `name` one of the canonical field names?
pub fn is_canonical(name: &str) -> bool {
    FIELDS.iter().any(|(f, _)| *f == name)
}

/// Conversion status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Approved,
    Pending,
    Rejected,
    Refunded,
    Chargeback,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Approved,
        Status::Pending,
        Status::Rejected,
        Status::Refunded,
        Status::Chargeback,
    ];

    /// The canonical names, for messages ("status must be ...").
    pub const LIST: &'static str = "approved, pending, rejected, refunded or chargeback";

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Approved => "approved",
            Status::Pending => "pending",
            Status::Rejected => "rejected",
            Status::Refunded => "refunded",
            Status::Chargeback => "chargeback",
        }
    }

    /// The canonical name only (`approved`, ...).
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Storage code; never reorder (it is written to disk).
    pub fn code(self) -> u8 {
        match self {
            Status::Approved => 0,
            Status::Pending => 1,
            Status::Rejected => 2,
            Status::Refunded => 3,
            Status::Chargeback => 4,
        }
    }

    pub fn from_code(c: u8) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.code() == c)
    }
}

/// Built-in status words every source understands (lowercase). A source's
/// own `status_map` and its preset's statuses are consulted first.
const STATUS_SYNONYMS: &[(&str, Status)] = &[
    ("approved", Status::Approved),
    ("approve", Status::Approved),
    ("confirmed", Status::Approved),
    ("accepted", Status::Approved),
    ("paid", Status::Approved),
    ("sale", Status::Approved),
    ("complete", Status::Approved),
    ("completed", Status::Approved),
    ("success", Status::Approved),
    ("pending", Status::Pending),
    ("hold", Status::Pending),
    ("on_hold", Status::Pending),
    ("waiting", Status::Pending),
    ("rejected", Status::Rejected),
    ("declined", Status::Rejected),
    ("denied", Status::Rejected),
    ("cancelled", Status::Rejected),
    ("canceled", Status::Rejected),
    ("reversed", Status::Rejected),
    ("invalid", Status::Rejected),
    ("fraud", Status::Rejected),
    ("refunded", Status::Refunded),
    ("refund", Status::Refunded),
    ("chargeback", Status::Chargeback),
    ("charged_back", Status::Chargeback),
];

/// Lead (amount absent or zero) or purchase (amount above zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Lead,
    Purchase,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Lead => "lead",
            Kind::Purchase => "purchase",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "lead" => Some(Kind::Lead),
            "purchase" => Some(Kind::Purchase),
            _ => None,
        }
    }
}

/// How one source reads its postbacks: the effective result of its preset
/// plus its own overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    /// canonical field -> the parameter name this source sends it under.
    pub params: BTreeMap<String, String>,
    /// lowercase raw status value -> canonical status.
    pub statuses: BTreeMap<String, Status>,
    /// ISO 4217 code used when a postback carries no currency.
    pub default_currency: String,
}

/// The parts of an HTTP request a postback is read from.
#[derive(Clone, Debug, Default)]
pub struct Request<'a> {
    pub query: &'a [u8],
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// A postback read successfully.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields {
    /// Normalized (trimmed, lowercased) click ID.
    pub click_id: String,
    /// The click ID trimmed, its case kept: external IDs (the caller's own
    /// IDs given to `POST /api/v1/clicks`) match case-sensitively.
    pub click_id_as_sent: String,
    pub amount: Option<Decimal>,
    pub kind: Kind,
    pub currency: String,
    pub transaction_id: Option<String>,
    pub event: Option<String>,
    pub status: Status,
    pub country: Option<String>,
    pub state: Option<String>,
    pub city: Option<String>,
    pub zip: Option<String>,
    /// Parameters that are not canonical fields, kept with the conversion.
    pub extra: Vec<(String, String)>,
}

impl Fields {
    /// The event name used for dedup and reports: the `event` parameter, or
    /// the classification.
    pub fn event_name(&self) -> &str {
        self.event.as_deref().unwrap_or(self.kind.as_str())
    }
}

/// Why a postback was refused: a stable code and a sentence naming the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
    /// The canonical field at fault, when there is one.
    pub field: Option<&'static str>,
}

impl Rejection {
    pub fn new(code: &'static str, field: Option<&'static str>, message: String) -> Self {
        Rejection {
            code,
            message,
            field,
        }
    }
}

/// Longest accepted value of a free-text field (event, transaction ID, geo).
const MAX_FIELD_LEN: usize = 256;

/// Read all parameters of a request: query first, then the body.
pub fn collect_params(req: &Request<'_>, limits: &Limits) -> Result<Vec<Param>, Rejection> {
    let mut params = Vec::new();
    query::parse_form(req.query, limits, &mut params).map_err(parse_rejection)?;
    if !req.body.iter().all(u8::is_ascii_whitespace) {
        let ct = req
            .content_type
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let json = if ct == "application/json" || ct.ends_with("+json") {
            true
        } else if ct == "application/x-www-form-urlencoded" {
            false
        } else {
            // Some networks POST without a usable content type; the raw body
            // is kept in the event either way, so sniffing loses nothing.
            req.body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        };
        if json {
            query::parse_json(req.body, limits, &mut params).map_err(parse_rejection)?;
        } else {
            query::parse_form(req.body, limits, &mut params).map_err(parse_rejection)?;
        }
    }
    Ok(params)
}

fn parse_rejection(e: ParseError) -> Rejection {
    match e {
        ParseError::InvalidUtf8 { name } => Rejection::new(
            "invalid_encoding",
            None,
            format!(
                "the `{name}` parameter is not valid UTF-8 after percent-decoding; \
                 send UTF-8 and percent-encode it exactly once"
            ),
        ),
        ParseError::TooManyParams { limit } => Rejection::new(
            "too_many_parameters",
            None,
            format!("the request has more than {limit} parameters; send only the postback fields"),
        ),
        ParseError::TooLong { name, limit } => Rejection::new(
            "parameter_too_long",
            None,
            format!(
                "the `{name}` parameter is longer than {limit} bytes; check the network's macro"
            ),
        ),
        ParseError::InvalidJson { detail } => Rejection::new(
            "invalid_json",
            None,
            format!("the body is not a JSON object ({detail}); send a JSON object or a form body"),
        ),
    }
}

/// Normalize a request with a source's mapping.
pub fn parse(req: &Request<'_>, mapping: &Mapping, limits: &Limits) -> Result<Fields, Rejection> {
    let params = collect_params(req, limits)?;
    normalize(&params, mapping)
}

/// A field's value as found in the request.
struct Found<'a> {
    /// The parameter name it came from.
    name: &'a str,
    value: &'a str,
}

/// Normalize already-collected parameters.
pub fn normalize(params: &[Param], mapping: &Mapping) -> Result<Fields, Rejection> {
    let mut used = vec![false; params.len()];
    let mut values: BTreeMap<&'static str, Option<Found<'_>>> = BTreeMap::new();
    for (field, aliases) in FIELDS {
        let found = resolve(field, aliases, params, mapping, &mut used)?;
        if let Some(f) = &found
            && let Some(m) = literal_macro(f.value)
        {
            return Err(Rejection::new(
                "unsubstituted_macro",
                Some(field),
                format!(
                    "the `{}` parameter ({field}) is the literal macro `{m}`: the network did not \
                         replace it; use the exact macro your network documents for this value \
                         (syntax such as {{x}}, ${{x}}, #x# or [x])",
                    f.name
                ),
            ));
        }
        values.insert(field, found);
    }
    fn take<'a>(
        values: &mut BTreeMap<&'static str, Option<Found<'a>>>,
        f: &str,
    ) -> Option<Found<'a>> {
        values.get_mut(f).and_then(Option::take)
    }

    let click = take(&mut values, "click_id").ok_or_else(|| missing_click_id(mapping))?;
    let click_id = ids::normalize_click_id(click.value);
    if click_id.is_empty() {
        return Err(missing_click_id(mapping));
    }
    if click_id.len() > MAX_CLICK_ID_LEN || click_id.chars().any(char::is_control) {
        return Err(Rejection::new(
            "invalid_click_id",
            Some("click_id"),
            format!(
                "the `{}` parameter is not a click ID (longer than {MAX_CLICK_ID_LEN} characters or \
                 containing control characters); pass the click ID from the tracking link unchanged",
                click.name
            ),
        ));
    }

    let amount = match take(&mut values, "amount") {
        None => None,
        Some(f) => Some(parse_amount(f.value).map_err(|why| {
            Rejection::new(
                "invalid_amount",
                Some("amount"),
                format!(
                    "the `{}` parameter `{}` is not an amount: {why}",
                    f.name,
                    shorten(f.value)
                ),
            )
        })?),
    };
    let kind = match amount {
        Some(a) if a > Decimal::ZERO => Kind::Purchase,
        _ => Kind::Lead,
    };

    let currency = match take(&mut values, "currency") {
        None => mapping.default_currency.clone(),
        Some(f) => currency::normalize(f.value).ok_or_else(|| {
            Rejection::new(
                "invalid_currency",
                Some("currency"),
                format!(
                    "the `{}` parameter `{}` is not an ISO 4217 currency code; send a three-letter \
                     code such as USD or EUR, or leave it out to use the source's default ({})",
                    f.name,
                    shorten(f.value),
                    mapping.default_currency
                ),
            )
        })?,
    };

    let status = match take(&mut values, "status") {
        None => Status::Approved,
        Some(f) => map_status(f.value, mapping).ok_or_else(|| {
            Rejection::new(
                "invalid_status",
                Some("status"),
                format!(
                    "the `{}` parameter `{}` is not a known status; send {}, or map this value in \
                     the source's status_map",
                    f.name,
                    shorten(f.value),
                    Status::LIST
                ),
            )
        })?,
    };

    let mut text = |f: &'static str| -> Result<Option<String>, Rejection> {
        match take(&mut values, f) {
            None => Ok(None),
            Some(found) => {
                let v = found.value.trim();
                if v.len() > MAX_FIELD_LEN || v.chars().any(char::is_control) {
                    Err(Rejection::new(
                        "invalid_parameter",
                        Some(f),
                        format!(
                            "the `{}` parameter ({f}) is longer than {MAX_FIELD_LEN} bytes or \
                             contains control characters; check the network's macro",
                            found.name
                        ),
                    ))
                } else {
                    Ok(Some(v.to_string()))
                }
            }
        }
    };
    let transaction_id = text("transaction_id")?;
    let event = text("event")?;
    let country = text("country")?;
    let state = text("state")?;
    let city = text("city")?;
    let zip = text("zip")?;

    let extra = params
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(p, _)| (p.name.clone(), p.value.clone()))
        .collect();

    Ok(Fields {
        click_id_as_sent: click.value.trim().to_string(),
        click_id,
        amount,
        kind,
        currency,
        transaction_id,
        event,
        status,
        country,
        state,
        city,
        zip,
        extra,
    })
}

/// Find a field's value. With a mapping for the field, the mapped name is
/// read, and the canonical name only when the mapped one is absent (the
/// admin said which parameter carries the value; a canonical-named
/// parameter beside it stays in `extra`). Without a mapping, the canonical
/// name and the built-in aliases are read with equal weight, and two
/// different non-empty values are a conflict, never a silent pick. Names
/// match ASCII case-insensitively.
fn resolve<'a>(
    field: &'static str,
    aliases: &[&'static str],
    params: &'a [Param],
    mapping: &Mapping,
    used: &mut [bool],
) -> Result<Option<Found<'a>>, Rejection> {
    match mapping.params.get(field).map(String::as_str) {
        Some(mapped) => {
            let found = collect(field, params, used, |n| n.eq_ignore_ascii_case(mapped))?;
            if found.is_some() {
                return Ok(found);
            }
            collect(field, params, used, |n| n.eq_ignore_ascii_case(field))
        }
        None => collect(field, params, used, |n| {
            n.eq_ignore_ascii_case(field) || aliases.iter().any(|a| n.eq_ignore_ascii_case(a))
        }),
    }
}

/// The one value of `field` among the parameters whose names match.
fn collect<'a>(
    field: &'static str,
    params: &'a [Param],
    used: &mut [bool],
    matches: impl Fn(&str) -> bool,
) -> Result<Option<Found<'a>>, Rejection> {
    let mut found: Option<Found<'a>> = None;
    for (i, p) in params.iter().enumerate() {
        if !matches(&p.name) {
            continue;
        }
        used[i] = true;
        if p.structured {
            return Err(Rejection::new(
                "invalid_parameter",
                Some(field),
                format!(
                    "the `{}` parameter ({field}) is a JSON object or array; send a string or number",
                    p.name
                ),
            ));
        }
        let v = p.value.trim();
        if v.is_empty() {
            // An empty parameter counts as absent.
            continue;
        }
        match &found {
            None => {
                found = Some(Found {
                    name: &p.name,
                    value: &p.value,
                })
            }
            // Click IDs match case-insensitively, so `a` and `A` agree.
            Some(prev)
                if prev.value.trim() == v
                    || (field == "click_id" && prev.value.trim().eq_ignore_ascii_case(v)) => {}
            Some(prev) => {
                return Err(Rejection::new(
                    "conflicting_parameters",
                    Some(field),
                    format!(
                        "{field} is given twice with different values (`{}`={} and `{}`={}); \
                         send it once, or set the source's params mapping to name the parameter to use",
                        prev.name,
                        shorten(prev.value),
                        p.name,
                        shorten(&p.value)
                    ),
                ));
            }
        }
    }
    Ok(found)
}

fn missing_click_id(mapping: &Mapping) -> Rejection {
    let expected = match mapping.params.get("click_id") {
        Some(m) => format!("`{m}`"),
        None => "`click_id` (or clickid, cid, subid, sub_id, sub1, aff_sub)".to_string(),
    };
    Rejection::new(
        "missing_click_id",
        Some("click_id"),
        format!(
            "Missing click_id: the request has no non-empty {expected} parameter; check the click ID \
             token in your network's postback settings and that your tracking link passes the click ID"
        ),
    )
}

/// Is `value` a macro the network left unreplaced? Returns it if so.
///
/// A macro that arrives still percent-encoded after the one decoding every
/// parameter gets (`%7Bclickid%7D`: the network, or a copy-paste of an
/// encoded URL, encoded the template twice) is one too: such a value can
/// never be a click ID or a transaction ID, and calling it unmatched would
/// hide the fix.
pub fn literal_macro(value: &str) -> Option<&str> {
    let v = value.trim();
    if is_macro(v) {
        return Some(v);
    }
    // Up to two more decodings (`%257B` is `{` encoded three times).
    let mut decoded = std::borrow::Cow::Borrowed(v);
    for _ in 0..2 {
        if !decoded.contains('%') {
            break;
        }
        let next = match percent_encoding::percent_decode_str(&decoded).decode_utf8() {
            Ok(d) if d != decoded => d.into_owned(),
            _ => break,
        };
        if is_macro(next.trim()) {
            return Some(v);
        }
        decoded = std::borrow::Cow::Owned(next);
    }
    None
}

fn is_macro(v: &str) -> bool {
    let token = |inner: &str| {
        !inner.is_empty()
            && inner.len() <= 64
            && inner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b' '))
    };
    let wrapped = |open: &str, close: &str| {
        v.strip_prefix(open)
            .and_then(|r| r.strip_suffix(close))
            .is_some_and(token)
    };
    wrapped("${", "}")
        || wrapped("{{", "}}")
        || wrapped("{", "}")
        || wrapped("#", "#")
        || wrapped("[", "]")
        || wrapped("%", "%")
        || wrapped("--", "--")
        // Voluum's template placeholders, left in by copy-paste.
        || v == "REPLACE"
        || v == "OPTIONAL"
}

/// Parse a decimal amount: digits with an optional `.` fraction; never a
/// float, never negative (refunds are a status, not a sign).
pub fn parse_amount(raw: &str) -> Result<Decimal, &'static str> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("it is empty; leave the parameter out for a lead");
    }
    if s.starts_with('-') {
        return Err("it is negative; report refunds with status=refunded and the original amount");
    }
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if s.contains(',') {
        return Err(
            "it has a comma; use a dot as the decimal separator and no thousands separator",
        );
    }
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int)
        || !frac.is_none_or(digits)
        || (int.is_empty() && frac.is_none_or(str::is_empty))
    {
        return Err("use digits with an optional decimal point, such as 12.50");
    }
    if int.trim_start_matches('0').len() > 15 || frac.is_some_and(|f| f.len() > 10) {
        return Err("it has more than 15 integer or 10 fraction digits");
    }
    let normalized = match frac {
        Some(f) if !f.is_empty() => format!("{}.{f}", if int.is_empty() { "0" } else { int }),
        _ => int.to_string(),
    };
    Decimal::from_str(&normalized)
        .map_err(|_| "use digits with an optional decimal point, such as 12.50")
}

fn map_status(raw: &str, mapping: &Mapping) -> Option<Status> {
    let key = raw.trim().to_ascii_lowercase();
    mapping.statuses.get(&key).copied().or_else(|| {
        STATUS_SYNONYMS
            .iter()
            .find(|(w, _)| *w == key)
            .map(|(_, s)| *s)
    })
}

/// A value for a message: at most 64 bytes, escaped so control
/// characters cannot forge log lines, `…` when cut.
fn shorten(v: &str) -> String {
    const MAX: usize = 64;
    let cut = crate::util::text::truncate(v, MAX);
    let more = if cut.len() < v.len() { "…" } else { "" };
    format!("{}{more}", cut.escape_debug())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_in_messages_name_every_value() {
        let fields: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
        assert_eq!(FIELD_LIST, fields.join(", "));
        let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        let (head, last) = names.split_at(names.len() - 1);
        assert_eq!(Status::LIST, format!("{} or {}", head.join(", "), last[0]));
    }

    fn mapping() -> Mapping {
        Mapping {
            default_currency: "USD".into(),
            ..Mapping::default()
        }
    }

    fn check(query: &str, m: &Mapping) -> Result<Fields, Rejection> {
        parse(
            &Request {
                query: query.as_bytes(),
                ..Request::default()
            },
            m,
            &Limits::default(),
        )
    }

    fn code(query: &str) -> &'static str {
        check(query, &mapping()).unwrap_err().code
    }

    #[test]
    fn canonical_and_aliases() {
        let f = check(
            "subid=AbC&payout=12.50&txid=T1&status=Sale&foo=bar",
            &mapping(),
        )
        .unwrap();
        assert_eq!(f.click_id, "abc");
        assert_eq!(f.amount, Some(Decimal::new(1250, 2)));
        assert_eq!(f.kind, Kind::Purchase);
        assert_eq!(f.transaction_id.as_deref(), Some("T1"));
        assert_eq!(f.status, Status::Approved);
        assert_eq!(f.currency, "USD");
        assert_eq!(f.extra, vec![("foo".to_string(), "bar".to_string())]);
    }

    #[test]
    fn lead_when_amount_zero_or_absent() {
        assert_eq!(check("click_id=a", &mapping()).unwrap().kind, Kind::Lead);
        assert_eq!(
            check("click_id=a&amount=0.00", &mapping()).unwrap().kind,
            Kind::Lead
        );
    }

    #[test]
    fn mapping_overrides_aliases() {
        let mut m = mapping();
        m.params.insert("click_id".into(), "s2".into());
        // sub1 is an alias normally, but the mapping replaces aliases.
        let f = check("sub1=other&s2=mine", &m).unwrap();
        assert_eq!(f.click_id, "mine");
        // The mapped name wins over the canonical one, which is kept as extra.
        let f = check("click_id=canon&s2=mine", &m).unwrap();
        assert_eq!(f.click_id, "mine");
        assert_eq!(f.extra, vec![("click_id".to_string(), "canon".to_string())]);
        // The canonical name is the fallback.
        assert_eq!(check("click_id=canon", &m).unwrap().click_id, "canon");
        let e = check("sub1=other", &m).unwrap_err();
        assert_eq!(e.code, "missing_click_id");
        assert!(e.message.contains("`s2`"), "{}", e.message);
    }

    #[test]
    fn rejections_have_codes() {
        assert_eq!(code("amount=1"), "missing_click_id");
        assert_eq!(code("click_id="), "missing_click_id");
        for m in [
            "{clickid}",
            "${sub1}",
            "#s2#",
            "[subid]",
            "%7Bclickid%7D",
            "REPLACE",
        ] {
            assert_eq!(code(&format!("click_id={m}")), "unsubstituted_macro", "{m}");
        }
        for a in [
            "-1",
            "1,50",
            "1e5",
            "NaN",
            "inf",
            "12.5.1",
            ".",
            "0x10",
            "1 000",
            "99999999999999999",
        ] {
            assert_eq!(
                code(&format!("click_id=a&amount={a}")),
                "invalid_amount",
                "{a}"
            );
        }
        assert_eq!(code("click_id=a&currency=XYZ"), "invalid_currency");
        assert_eq!(code("click_id=a&status=maybe"), "invalid_status");
        assert_eq!(
            code("click_id=a&amount=1&payout=2"),
            "conflicting_parameters"
        );
        assert_eq!(code("click_id=a&click_id=b"), "conflicting_parameters");
        assert_eq!(code("click_id=%ff"), "invalid_encoding");
    }

    /// Found by `tests/bad_input.rs`: `click_id=%257Bclickid%257D` (a
    /// macro encoded twice) was stored as an unmatched conversion with the
    /// click ID `%7bclickid%7d` instead of being refused as a macro.
    #[test]
    fn regression_percent_encoded_macro_is_a_macro() {
        for v in [
            "%7Bclickid%7D",
            "%7bclickid%7d",
            "%24%7Bsub1%7D",
            "%23s2%23",
            "%5Bsubid%5D",
            "%25x%25",
            "%2D%2DCLICK-ID%2D%2D",
            "%257Bclickid%257D",
            " %7Bclickid%7D ",
        ] {
            assert_eq!(literal_macro(v), Some(v.trim()), "{v}");
        }
        // Encoded once on the wire, twice in the template: refused.
        assert_eq!(code("click_id=%257Bclickid%257D"), "unsubstituted_macro");
        assert_eq!(
            code("click_id=a&transaction_id=%2523leadid%2523"),
            "unsubstituted_macro"
        );
        // Percent signs that do not hide a macro are values.
        for v in [
            "%41bc",
            "100%",
            "%",
            "%zz",
            "%7B%7D",
            "%7Bx%7Dy",
            "%ff%7Bx%7D",
        ] {
            assert_eq!(literal_macro(v), None, "{v}");
        }
        let f = check("click_id=%2541bc", &mapping()).unwrap();
        assert_eq!(f.click_id, "%41bc", "decoded exactly once, never guessed");
    }

    #[test]
    fn same_value_twice_is_not_a_conflict() {
        assert!(check("click_id=a&subid=A", &mapping()).is_ok());
    }

    #[test]
    fn amounts_are_exact_decimals() {
        assert_eq!(parse_amount("0.1").unwrap().to_string(), "0.1");
        assert_eq!(parse_amount(".5").unwrap().to_string(), "0.5");
        assert_eq!(parse_amount("12.").unwrap().to_string(), "12");
        assert_eq!(parse_amount(" 007.50 ").unwrap().to_string(), "7.50");
    }

    #[test]
    fn status_mapping_precedes_synonyms() {
        let mut m = mapping();
        m.statuses.insert("sale".into(), Status::Pending);
        assert_eq!(
            check("click_id=a&status=SALE", &m).unwrap().status,
            Status::Pending
        );
        assert_eq!(
            check("click_id=a&status=refund", &m).unwrap().status,
            Status::Refunded
        );
    }

    #[test]
    fn json_body() {
        let f = parse(
            &Request {
                query: b"",
                content_type: Some("application/json; charset=utf-8"),
                body: br#"{"clickid":"x1","amount":9.99,"currency":"eur"}"#,
            },
            &mapping(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!((f.click_id.as_str(), f.currency.as_str()), ("x1", "EUR"));
        assert_eq!(f.amount.unwrap().to_string(), "9.99");
    }
}
