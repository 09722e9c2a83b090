//! The invariants the fuzz targets assert. Each `check_*` panics (a
//! libFuzzer crash) when postbackd breaks a promise on the given input.

use std::str::FromStr;

use postbackd::inbound::postback::{self, Fields, Kind, Mapping, Rejection, Request, Status};
use postbackd::inbound::query::{self, Limits, Param, ParseError};
use postbackd::inbound::currency;
use postbackd::tracking::click;
use postbackd::util::{ids, signing};
use rust_decimal::Decimal;

use crate::{ClickIdInput, ExpandInput, FieldsInput, PostbackInput, SignatureInput};

/// Every error code `postback::parse` may answer with (README's table).
pub const REJECTION_CODES: &[&str] = &[
    "missing_click_id",
    "unsubstituted_macro",
    "invalid_amount",
    "invalid_currency",
    "invalid_status",
    "invalid_click_id",
    "invalid_parameter",
    "conflicting_parameters",
    "invalid_encoding",
    "invalid_json",
    "too_many_parameters",
    "parameter_too_long",
];

const UNLIMITED: Limits = Limits {
    max_params: usize::MAX,
    max_name_len: usize::MAX,
    max_value_len: usize::MAX,
};

/// (a) `query::parse_form` against `form_urlencoded::parse`.
///
/// - Without limits, ours fails only with `InvalidUtf8`, and only when
///   `form_urlencoded` had to insert U+FFFD (it decodes lossily where ours
///   is strict); when ours succeeds, every (name, value) equals theirs.
/// - With the server's limits, an `Ok` is the unlimited result, and a
///   limit error is justified by the unlimited result.
pub fn check_query_form(data: &[u8]) {
    let theirs: Vec<(String, String)> = form_urlencoded::parse(data)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut ours = Vec::new();
    let unlimited = query::parse_form(data, &UNLIMITED, &mut ours);
    match &unlimited {
        Ok(()) => {
            let got: Vec<(String, String)> = ours
                .iter()
                .map(|p| {
                    assert!(!p.structured, "form parameters are never structured");
                    (p.name.clone(), p.value.clone())
                })
                .collect();
            assert_eq!(got, theirs, "parse_form disagrees with form_urlencoded");
        }
        Err(ParseError::InvalidUtf8 { name }) => {
            assert!(
                theirs
                    .iter()
                    .any(|(k, v)| k.contains('\u{FFFD}') || v.contains('\u{FFFD}')),
                "parse_form refused UTF-8 that form_urlencoded decoded without replacement"
            );
            assert!(name.len() <= 32, "error names are bounded: {}", name.len());
        }
        Err(e) => panic!("no limits, yet {e:?}"),
    }

    let limits = Limits::default();
    let mut bounded = Vec::new();
    match query::parse_form(data, &limits, &mut bounded) {
        Ok(()) => {
            assert!(unlimited.is_ok(), "limits turned an error into success");
            assert_eq!(bounded, ours);
            assert!(bounded.len() <= limits.max_params);
            for p in &bounded {
                assert!(p.name.len() <= limits.max_name_len);
                assert!(p.value.len() <= limits.max_value_len);
            }
        }
        Err(ParseError::InvalidUtf8 { name }) => {
            assert!(unlimited.is_err(), "InvalidUtf8 only with limits");
            assert!(name.len() <= 32, "error names are bounded: {}", name.len());
        }
        Err(ParseError::TooManyParams { limit }) => {
            assert_eq!(limit, limits.max_params);
            if unlimited.is_ok() {
                assert!(
                    ours.len() > limits.max_params,
                    "TooManyParams for {}",
                    ours.len()
                );
            }
        }
        Err(ParseError::TooLong { name, limit }) => {
            assert!(limit == limits.max_name_len || limit == limits.max_value_len);
            assert!(name.len() <= limits.max_name_len);
            if unlimited.is_ok() {
                assert!(
                    ours.iter().any(|p| p.name.len() > limits.max_name_len
                        || p.value.len() > limits.max_value_len),
                    "TooLong without a long parameter"
                );
            }
        }
        Err(e @ ParseError::InvalidJson { .. }) => panic!("form parsing said {e:?}"),
    }
}

/// What every successful parse promises, whatever the request.
pub fn assert_fields_invariants(f: &Fields, mapping: &Mapping) {
    let c = &f.click_id;
    assert_eq!(
        &ids::normalize_click_id(&f.click_id_as_sent),
        c,
        "click ID is not its as-sent text normalized"
    );
    assert_eq!(f.click_id_as_sent.trim(), f.click_id_as_sent, "as-sent click ID not trimmed");
    assert!(!c.is_empty(), "empty click ID accepted");
    assert_eq!(c.trim(), c, "click ID not trimmed: {c:?}");
    assert_eq!(&c.to_ascii_lowercase(), c, "click ID not lowercase: {c:?}");
    assert!(
        c.len() <= ids::MAX_CLICK_ID_LEN,
        "click ID of {} bytes",
        c.len()
    );
    assert!(!c.chars().any(char::is_control), "control char in {c:?}");
    assert_eq!(
        postback::literal_macro(c),
        None,
        "an unsubstituted macro was accepted as a click ID"
    );
    assert_eq!(
        ids::normalize_click_id(c),
        *c,
        "normalization not idempotent"
    );

    // A currency from the request is a valid, uppercase ISO code; absent,
    // it is the source's default as configured (validated by the admin API,
    // not here).
    if f.currency != mapping.default_currency {
        assert!(
            currency::is_iso4217(&f.currency),
            "currency {:?}",
            f.currency
        );
        assert_eq!(f.currency.to_ascii_uppercase(), f.currency);
    }

    match f.amount {
        Some(a) => {
            assert!(a >= Decimal::ZERO, "negative amount {a}");
            assert!(a.scale() <= 10, "amount {a} has scale {}", a.scale());
            assert!(a < Decimal::from(10u64.pow(15)), "amount {a} too large");
            let kind = if a > Decimal::ZERO {
                Kind::Purchase
            } else {
                Kind::Lead
            };
            assert_eq!(f.kind, kind, "kind does not match amount {a}");
        }
        None => assert_eq!(f.kind, Kind::Lead, "purchase without an amount"),
    }
    assert!(Status::ALL.contains(&f.status));

    for (name, v) in optional_text(f) {
        if let Some(v) = v {
            assert!(!v.is_empty(), "{name} is Some(\"\")");
            assert_eq!(v.trim(), v, "{name} not trimmed");
            assert!(v.len() <= 256, "{name} of {} bytes", v.len());
            assert!(!v.chars().any(char::is_control), "{name} with control char");
            assert_eq!(postback::literal_macro(v), None, "{name} is a macro");
        }
    }
    assert!(!f.event_name().is_empty());
}

/// The optional free-text fields, by canonical name.
fn optional_text(f: &Fields) -> [(&'static str, &Option<String>); 6] {
    [
        ("transaction_id", &f.transaction_id),
        ("event", &f.event),
        ("country", &f.country),
        ("state", &f.state),
        ("city", &f.city),
        ("zip", &f.zip),
    ]
}

/// Every rejection names a known code and says something.
pub fn assert_rejection_shape(r: &Rejection) {
    assert!(REJECTION_CODES.contains(&r.code), "unknown code {}", r.code);
    assert!(!r.message.is_empty(), "{} without a message", r.code);
    if let Some(f) = r.field {
        assert!(postback::is_canonical(f), "field {f} is not canonical");
    }
}

/// The canonical fields as a query string in canonical names (what a
/// postback carrying exactly these fields would look like).
pub fn canonical_query(f: &Fields) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    // As sent (trimmed, case kept): it normalizes to `click_id`, and reads
    // back as the same `click_id_as_sent`.
    s.append_pair("click_id", &f.click_id_as_sent);
    if let Some(a) = f.amount {
        s.append_pair("amount", &a.to_string());
    }
    // A default currency the source was given is not re-sent (it may be
    // anything: the parser does not validate the source's own setting).
    if currency::normalize(&f.currency).as_ref() == Some(&f.currency) {
        s.append_pair("currency", &f.currency);
    }
    s.append_pair("status", f.status.as_str());
    for (name, v) in optional_text(f) {
        if let Some(v) = v {
            s.append_pair(name, v);
        }
    }
    s.finish()
}

/// (b) A whole request through `postback::parse`.
pub fn check_postback(input: &PostbackInput) {
    let mapping = input.mapping.mapping();
    let limits = input.limits.limits();
    let req = Request {
        query: &input.query,
        content_type: input.content_type(),
        body: &input.body,
    };
    let result = postback::parse(&req, &mapping, &limits);
    // Deterministic, and `parse` is `collect_params` then `normalize`.
    assert_eq!(postback::parse(&req, &mapping, &limits), result);
    match postback::collect_params(&req, &limits) {
        Ok(params) => {
            assert!(params.len() <= limits.max_params);
            assert_eq!(postback::normalize(&params, &mapping), result);
        }
        Err(e) => assert_eq!(Err(e), result),
    }
    match &result {
        Ok(f) => {
            assert_fields_invariants(f, &mapping);
            // Normalization is idempotent: the canonical fields, sent again
            // under their canonical names to a source without a mapping,
            // read back the same.
            let q = canonical_query(f);
            let plain = Mapping {
                default_currency: f.currency.clone(),
                ..Mapping::default()
            };
            let again = postback::parse(
                &Request {
                    query: q.as_bytes(),
                    ..Request::default()
                },
                &plain,
                &Limits::default(),
            );
            let mut want = f.clone();
            want.extra.clear();
            assert_eq!(again, Ok(want), "re-parse of {q:?}");
        }
        Err(r) => assert_rejection_shape(r),
    }
}

/// What a redirect's target is, as a browser parses it (WHATWG URL).
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: Option<String>,
    port: Option<u16>,
    username: String,
    has_password: bool,
}

fn origin_of(u: &str) -> Result<Origin, String> {
    let url = url::Url::parse(u).map_err(|e| format!("{u:?} is not a URL: {e}"))?;
    Ok(Origin {
        scheme: url.scheme().to_string(),
        host: url.host_str().map(str::to_string),
        port: url.port_or_known_default(),
        username: url.username().to_string(),
        has_password: url.password().is_some(),
    })
}

/// (c) No open redirect: when the admin's template validates, every
/// expansion is a URL with the template's scheme, host, port (and no
/// credentials), whatever the click's values; and it is a valid `Location`
/// header value (else the click would answer 500).
pub fn check_expand(input: &ExpandInput) {
    let valid = click::validate_destination(&input.template);
    let got = click::expand(
        &input.template,
        &input.click_id,
        &input.params,
        &input.append_param,
    );
    if valid.is_err() {
        return;
    }
    // Textually: the expansion starts with the template's own
    // `scheme://authority`, followed by the end, `/`, `?` or `#`.
    let t = &input.template;
    let start = t.find("://").expect("validated") + 3;
    let end = start + t[start..].find(['/', '?', '#']).unwrap_or(t.len() - start);
    let origin_text = &t[..end];
    assert!(
        got.starts_with(origin_text),
        "{got:?} does not start with {origin_text:?}"
    );
    assert!(
        matches!(got.as_bytes().get(end), None | Some(b'/' | b'?' | b'#')),
        "{got:?} extends the authority {origin_text:?}"
    );

    // As a browser parses it. The template with placeholders filled by a
    // plain value is the reference.
    let reference = click::expand(t, "plainclickid", &[], "click_id");
    let want = match origin_of(&reference) {
        Ok(w) => w,
        // An `xn--` label must be valid punycode mapping to allowed
        // characters (UTS 46); postbackd has no IDNA tables, so it cannot
        // check that and does not try. Such a destination is broken for
        // every click alike (the click's values cannot change it, as the
        // textual check above proves), an admin's typo, not a redirect.
        Err(_)
            if t[start..end]
                .to_ascii_lowercase()
                .split(['.', ':'])
                .any(|l| l.starts_with("xn--")) =>
        {
            return;
        }
        Err(e) => panic!("validate_destination accepted {t:?} but {e}"),
    };
    assert!(
        want.host.as_deref().is_some_and(|h| !h.is_empty()),
        "no host"
    );
    assert!(
        matches!(want.scheme.as_str(), "http" | "https"),
        "scheme {}",
        want.scheme
    );
    let have = origin_of(&got).unwrap_or_else(|e| panic!("expansion is not a URL: {e}"));
    assert_eq!(
        have, want,
        "expansion {got:?} left the origin of {:?}",
        input.template
    );
    assert!(
        http::HeaderValue::from_str(&got).is_ok(),
        "expansion {got:?} is not a valid Location header"
    );
}

/// An independent reading of the amount grammar: digits with an optional
/// `.` fraction, at least one digit, at most 15 significant integer and 10
/// fraction digits. Returns (mantissa, scale).
fn amount_oracle(raw: &str) -> Option<(u128, u32)> {
    let s = raw.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !all_digits(frac) || int.len() + frac.len() == 0 {
        return None;
    }
    if int.trim_start_matches('0').len() > 15 || frac.len() > 10 {
        return None;
    }
    let mut m: u128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        m = m * 10 + u128::from(b - b'0');
    }
    Some((m, u32::try_from(frac.len()).unwrap()))
}

/// The status a value must map to, when the oracle knows: the mapping
/// first, then the canonical names; `None` = some built-in synonym or an
/// error, not predicted here.
fn status_oracle(raw: &str, mapping: &Mapping) -> Option<Status> {
    let key = raw.trim().to_ascii_lowercase();
    mapping
        .statuses
        .get(&key)
        .copied()
        .or_else(|| Status::parse(&key))
}

/// (d) Amount, currency and status: each parser alone, and the same values
/// inside a postback, agree.
pub fn check_fields(input: &FieldsInput) {
    // Parameter renames are `check_postback`'s business; here the values go
    // in under their canonical names, which a rename would redirect.
    let mut mapping = input.mapping.mapping();
    mapping.params.clear();

    let amount = postback::parse_amount(&input.amount);
    let oracle = amount_oracle(&input.amount);
    match (&amount, oracle) {
        (Ok(d), Some((m, scale))) => {
            assert_eq!(
                d.mantissa(),
                i128::try_from(m).unwrap(),
                "{:?}",
                input.amount
            );
            assert_eq!(d.scale(), scale, "{:?}", input.amount);
            assert_eq!(postback::parse_amount(&d.to_string()), Ok(*d), "round trip");
            assert_eq!(Decimal::from_str(&d.to_string()), Ok(*d));
        }
        (Err(why), None) => assert!(!why.is_empty()),
        (a, o) => panic!("parse_amount({:?}) = {a:?}, oracle {o:?}", input.amount),
    }

    let cur = currency::normalize(&input.currency);
    assert_eq!(
        cur.is_some(),
        currency::is_iso4217(input.currency.trim()),
        "{:?}",
        input.currency
    );
    if let Some(c) = &cur {
        assert_eq!(*c, input.currency.trim().to_ascii_uppercase());
        assert!(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()));
        assert_eq!(currency::normalize(c).as_ref(), Some(c));
        assert_eq!(
            currency::normalize(&c.to_ascii_lowercase()).as_ref(),
            Some(c)
        );
    }

    // The same values in a postback.
    let p = |name: &str, value: &str| Param {
        name: name.into(),
        value: value.into(),
        structured: false,
    };
    let params = [
        p("click_id", "abc"),
        p("amount", &input.amount),
        p("currency", &input.currency),
        p("status", &input.status),
    ];
    let result = postback::normalize(&params, &mapping);
    let blank = |v: &str| v.trim().is_empty();
    let is_macro = |v: &str| postback::literal_macro(v).is_some();
    // Every field is checked for a macro before any is parsed.
    let expected_code =
        if is_macro(&input.amount) || is_macro(&input.currency) || is_macro(&input.status) {
            Some("unsubstituted_macro")
        } else if !blank(&input.amount) && amount.is_err() {
            Some("invalid_amount")
        } else if !blank(&input.currency) && cur.is_none() {
            Some("invalid_currency")
        } else {
            None
        };
    match (&result, expected_code) {
        (Err(r), Some(code)) => assert_eq!(r.code, code, "{r:?}"),
        (Err(r), None) => {
            assert_eq!(r.code, "invalid_status", "{r:?}");
            assert!(!blank(&input.status));
            assert_eq!(status_oracle(&input.status, &mapping), None);
        }
        (Ok(f), None) => {
            assert_fields_invariants(f, &mapping);
            assert_eq!(f.click_id, "abc");
            if blank(&input.amount) {
                assert_eq!(f.amount, None);
            } else {
                assert_eq!(Ok(f.amount.unwrap()), amount);
            }
            if blank(&input.currency) {
                assert_eq!(f.currency, mapping.default_currency);
            } else {
                assert_eq!(Some(&f.currency), cur.as_ref());
            }
            if blank(&input.status) {
                assert_eq!(f.status, Status::Approved);
            } else if let Some(st) = status_oracle(&input.status, &mapping) {
                assert_eq!(f.status, st, "status {:?}", input.status);
            }
        }
        (Ok(f), Some(code)) => panic!("expected {code}, got {f:?}"),
    }
}

/// (e) Click IDs: normalization, the time prefix, macro detection.
pub fn check_click_id(input: &ClickIdInput) {
    let raw = input.raw.as_str();
    let n = ids::normalize_click_id(raw);
    assert_eq!(n.trim(), n);
    assert_eq!(n.to_ascii_lowercase(), n);
    assert_eq!(ids::normalize_click_id(&n), n, "not idempotent");
    assert_eq!(ids::normalize_click_id(&raw.to_ascii_uppercase()), n);
    assert_eq!(ids::normalize_click_id(&format!(" \t{raw}\r\n")), n);

    // time_of: Some exactly when the first 9 bytes are [0-9a-z]; then the
    // prefix round-trips.
    let prefix = raw.as_bytes().get(..ids::TIME_DIGITS);
    let well_formed = prefix.is_some_and(|p| {
        p.iter()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    });
    match ids::time_of(raw) {
        Some(t) => {
            assert!(well_formed);
            let id = ids::id_from_parts(t, 0);
            assert_eq!(
                id.as_bytes()[..ids::TIME_DIGITS],
                raw.as_bytes()[..ids::TIME_DIGITS]
            );
        }
        None => assert!(!well_formed, "time_of({raw:?}) = None"),
    }

    // New IDs: the contract's shape, time-ordered.
    let id = ids::id_from_parts(input.ms, input.random);
    assert_eq!(id.len(), ids::ID_LEN);
    assert!(id.len() <= 32);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    );
    let span = 36u64.pow(ids::TIME_DIGITS as u32);
    assert_eq!(ids::time_of(&id), Some(input.ms % span));
    assert_eq!(ids::normalize_click_id(&id.to_ascii_uppercase()), id);
    if input.ms < span - 1 {
        let later = ids::id_from_parts(input.ms + 1, input.random);
        assert!(id < later, "{id} !< {later}");
        assert!(ids::lower_bound(input.ms + 1) <= later);
        assert!(ids::lower_bound(input.ms + 1) > id);
    }

    // Macro detection, alone and as the click ID of a postback.
    let mac = postback::literal_macro(raw);
    if let Some(m) = mac {
        assert_eq!(m, raw.trim());
    }
    let token: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect();
    if !token.is_empty() {
        for wrapped in [
            format!("{{{token}}}"),
            format!("${{{token}}}"),
            format!("#{token}#"),
            format!("[{token}]"),
            format!("%{token}%"),
            format!("--{token}--"),
            format!("{{{{{token}}}}}"),
        ] {
            assert!(
                postback::literal_macro(&wrapped).is_some(),
                "{wrapped} not a macro"
            );
        }
    }
    let params = [Param {
        name: "click_id".into(),
        value: raw.into(),
        structured: false,
    }];
    let mapping = Mapping {
        default_currency: "USD".into(),
        ..Mapping::default()
    };
    match postback::normalize(&params, &mapping) {
        Ok(f) => {
            assert!(mac.is_none(), "macro {mac:?} accepted");
            assert_eq!(f.click_id, n);
            assert_fields_invariants(&f, &mapping);
        }
        Err(r) => {
            let want = if mac.is_some() {
                "unsubstituted_macro"
            } else if n.is_empty() {
                "missing_click_id"
            } else {
                "invalid_click_id"
            };
            assert_eq!(r.code, want, "{raw:?}: {r:?}");
            if want == "invalid_click_id" {
                assert!(n.len() > ids::MAX_CLICK_ID_LEN || n.chars().any(char::is_control));
            }
        }
    }
}

/// Calls `message()` (it formats numbers from the request) and checks the
/// code is the contract's.
fn assert_sig_error_shape(e: &signing::SigError) {
    assert!(matches!(e.code(), "bad_signature" | "stale_signature"));
    assert!(!e.message().is_empty());
}

/// A key that differs from `key` as an HMAC key (HMAC pads short keys with
/// zeros, so appending a zero byte would not do).
fn other_key(key: &[u8]) -> Vec<u8> {
    let mut k = key.to_vec();
    match k.first_mut() {
        Some(b) => *b ^= 1,
        None => k.push(1),
    }
    k
}

/// (f) Signature verification: never panics (error messages included);
/// a correctly signed request verifies exactly when its timestamp is within
/// the tolerance; any change to the signed bytes, or the wrong key, fails;
/// rotation (several keys) accepts any one of them; the fuzzer's own
/// signatures never verify.
pub fn check_signature(input: &SignatureInput) {
    // Secrets: bounds and masking.
    match signing::decode_secret(&input.secret) {
        Ok(k) => {
            assert!((16..=128).contains(&k.len()), "key of {} bytes", k.len());
            assert!(input.secret.starts_with(signing::SECRET_PREFIX));
        }
        Err(m) => assert!(!m.is_empty()),
    }
    let masked = signing::mask(&input.secret);
    assert!(masked.chars().count() <= signing::SECRET_PREFIX.len() + 4 + 1);

    let key = input.key.clone();
    let wrong = other_key(&key);
    let (now, tol) = (input.now, input.tolerance_s);
    let in_time = now.abs_diff(input.ts) <= tol;

    if input.is_get() {
        let (signed_part, full) = if input.signed() {
            let sep = if input.message.contains('?') {
                '&'
            } else {
                '?'
            };
            let signed_part = format!("{}{sep}ts={}", input.message, input.ts);
            let sig = signing::sign_hex(&key, signed_part.as_bytes());
            assert!(sig.len() == 64 && sig.bytes().all(|b| b.is_ascii_hexdigit()));
            let full = format!("{signed_part}&sig={sig}");
            (signed_part, full)
        } else {
            let full = format!("{}&sig={}", input.message, input.signature);
            (String::new(), full)
        };
        let got = signing::verify_get(&full, std::slice::from_ref(&key), now, tol);
        if let Err(e) = &got {
            assert_sig_error_shape(e);
        }
        if !input.signed() {
            assert!(got.is_err(), "an unsigned request verified: {full:?}");
            return;
        }
        // Exactly one `ts=` pair in the signed query, else refused.
        let query = signed_part.split_once('?').map_or("", |(_, q)| q);
        let ts_pairs = query.split('&').filter(|p| p.starts_with("ts=")).count();
        match (&got, ts_pairs) {
            (Ok(v), 1) => {
                assert!(in_time, "accepted outside the tolerance");
                assert_eq!(v.ts, input.ts);
                assert_eq!(v.sig.len(), 32);
            }
            (Err(e), 1) => {
                assert!(!in_time, "valid signature refused: {e:?} for {full:?}");
                assert_eq!(e.code(), "stale_signature");
            }
            (Err(e), _) => assert_eq!(e.code(), "bad_signature"),
            (Ok(_), n) => panic!("accepted with {n} ts pairs"),
        }
        // Rotation: the right key among others verifies the same way.
        let rotated = signing::verify_get(&full, &[wrong.clone(), key.clone()], now, tol);
        assert_eq!(rotated, got);
        // The wrong key never verifies, and never says "stale".
        let bad = signing::verify_get(&full, std::slice::from_ref(&wrong), now, tol)
            .expect_err("verified with the wrong key");
        assert_sig_error_shape(&bad);
        if ts_pairs == 1 {
            assert_eq!(bad.code(), "bad_signature");
        }
        // A change to the signed bytes never verifies.
        if input.tamper != 0 && !signed_part.is_empty() {
            let mut b = full.clone().into_bytes();
            let i = usize::from(input.tamper) % signed_part.len();
            b[i] ^= 0x01;
            if let Ok(t) = String::from_utf8(b) {
                let r = signing::verify_get(&t, std::slice::from_ref(&key), now, tol);
                assert!(r.is_err(), "tampered {t:?} verified");
                assert_sig_error_shape(&r.unwrap_err());
            }
        }
    } else {
        let id = input.message.as_str();
        let ts_text = input.ts.to_string();
        let header = if input.signed() {
            // A sender's own rotation: junk first, then the real one.
            let real = signing::sign_webhook(&key, id, input.ts, &input.body);
            assert!(real.starts_with("v1,"));
            format!("{} {real}", input.signature)
        } else {
            input.signature.clone()
        };
        let got = signing::verify_webhook(
            Some(id),
            Some(&ts_text),
            Some(&header),
            &input.body,
            std::slice::from_ref(&key),
            now,
            tol,
        );
        if let Err(e) = &got {
            assert_sig_error_shape(e);
        }
        if !input.signed() {
            assert!(got.is_err(), "an unsigned webhook verified");
            // Arbitrary header text as the timestamp too.
            let r = signing::verify_webhook(
                Some(id),
                Some(&input.signature),
                Some(&header),
                &input.body,
                std::slice::from_ref(&key),
                now,
                tol,
            );
            assert!(r.is_err());
            assert_sig_error_shape(&r.unwrap_err());
            return;
        }
        match &got {
            Ok(v) => {
                assert!(in_time, "accepted outside the tolerance");
                assert_eq!(v.ts, input.ts);
            }
            Err(e) => {
                assert!(!in_time, "valid webhook refused: {e:?}");
                assert_eq!(e.code(), "stale_signature");
            }
        }
        let bad = signing::verify_webhook(
            Some(id),
            Some(&ts_text),
            Some(&header),
            &input.body,
            std::slice::from_ref(&wrong),
            now,
            tol,
        )
        .expect_err("verified with the wrong key");
        assert_eq!(bad.code(), "bad_signature");
        if input.tamper != 0 && !input.body.is_empty() {
            let mut body = input.body.clone();
            let i = usize::from(input.tamper) % body.len();
            body[i] ^= 0x01;
            let r = signing::verify_webhook(
                Some(id),
                Some(&ts_text),
                Some(&header),
                &body,
                std::slice::from_ref(&key),
                now,
                tol,
            );
            assert!(r.is_err(), "tampered body verified");
        }
    }
}

/// Every error code `beacon::parse` may answer with.
pub const BEACON_CODES: &[&str] = &[
    "too_large",
    "invalid_json",
    "invalid_link",
    "invalid_source",
    "invalid_landing_url",
    "invalid_beacon",
];

/// (k) The page tag's beacon (`POST /e/click`): `beacon::parse` never
/// panics and is deterministic; an accepted beacon has a slug of 1-64
/// `[A-Za-z0-9_-]` (or none, with a source ID), a landing URL that `click::validate_destination`
/// accepts and at most `MAX_URL` bytes, and optional text fields that are
/// trimmed, non-empty, bounded and free of control characters; a refusal
/// has a documented code and a message.
pub fn check_beacon(data: &[u8]) {
    use postbackd::tracking::beacon;
    let first = beacon::parse(data);
    assert_eq!(first, beacon::parse(data), "deterministic");
    match first {
        Ok(b) => {
            assert!(data.len() <= beacon::MAX_BEACON_BYTES);
            assert!(
                (!b.link.is_empty() || b.source.is_some()) && b.link.len() <= 64,
                "{:?}",
                b.link
            );
            assert!(
                b.link
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
                "{:?}",
                b.link
            );
            if let Some(u) = &b.url {
                assert!(u.len() <= beacon::MAX_URL);
                assert!(click::validate_destination(u).is_ok(), "{u:?}");
            }
            for (v, max) in [
                (&b.referrer, beacon::MAX_REFERRER),
                (&b.fbc, beacon::MAX_COOKIE),
                (&b.fbp, beacon::MAX_COOKIE),
            ] {
                if let Some(v) = v {
                    assert!(!v.is_empty() && v.len() <= max, "{v:?}");
                    assert_eq!(v.trim(), v.as_str(), "trimmed");
                    assert!(!v.chars().any(char::is_control), "{v:?}");
                }
            }
        }
        Err(r) => {
            assert!(BEACON_CODES.contains(&r.code), "undocumented code {}", r.code);
            assert!(!r.message.is_empty());
        }
    }
}
