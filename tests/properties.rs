//! Property tests (proptest) of the pure parsers of untrusted input: the
//! invariants `fuzz/` checks for hours, here checked on every `cargo test`
//! with a few hundred generated cases each, plus the inputs fuzzing found.

use std::str::FromStr;

use postbackd::inbound::currency;
use postbackd::inbound::postback::{self, Fields, Kind, Mapping, Request, Status};
use postbackd::inbound::query::{self, Limits, Param, ParseError};
use postbackd::tracking::click;
use postbackd::util::{ids, signing};
use proptest::prelude::*;
use rust_decimal::Decimal;

const UNLIMITED: Limits = Limits {
    max_params: usize::MAX,
    max_name_len: usize::MAX,
    max_value_len: usize::MAX,
};

/// Bytes that make query strings interesting: separators, escapes (valid,
/// malformed, overlong, invalid UTF-8), `+`, multi-byte text.
fn query_bytes() -> impl Strategy<Value = Vec<u8>> {
    let atom = prop_oneof![
        Just(b"&".to_vec()),
        Just(b"=".to_vec()),
        Just(b"+".to_vec()),
        Just(b"%".to_vec()),
        Just(b"%2".to_vec()),
        Just(b"%zz".to_vec()),
        Just(b"%20".to_vec()),
        Just(b"%26".to_vec()),
        Just(b"%3D".to_vec()),
        Just(b"%2B".to_vec()),
        Just(b"%c3%a9".to_vec()),
        Just(b"%C3".to_vec()),
        Just(b"%c0%af".to_vec()),
        Just(b"%ff".to_vec()),
        Just(b"%ed%a0%80".to_vec()),
        Just(b"%00".to_vec()),
        Just("é€".as_bytes().to_vec()),
        Just(vec![0xff]),
        Just(vec![0xc3]),
        "[a-z0-9_]{1,6}".prop_map(String::into_bytes),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(atom, 0..24).prop_map(|v| v.concat())
}

/// A click ID value as networks send it back (ours, other trackers', junk).
fn click_value() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<u64>(), any::<u128>()).prop_map(|(ms, r)| ids::id_from_parts(ms, r)),
        (any::<u64>(), any::<u128>()).prop_map(|(ms, r)| ids::id_from_parts(ms, r).to_uppercase()),
        "[ \t]{0,2}[A-Za-z0-9_-]{1,40}[ \t]{0,2}",
        "\\PC{0,20}",
        ".{0,200}",
        macro_value(),
    ]
}

/// Unreplaced macros in every syntax networks use, some percent-encoded.
fn macro_value() -> impl Strategy<Value = String> {
    let name = "[A-Za-z_][A-Za-z0-9_]{0,12}";
    (name, 0..9usize, any::<bool>()).prop_map(|(n, syntax, encode)| {
        let m = match syntax {
            0 => format!("{{{n}}}"),
            1 => format!("${{{n}}}"),
            2 => format!("#{n}#"),
            3 => format!("[{n}]"),
            4 => format!("%{n}%"),
            5 => format!("--{}--", n.to_uppercase()),
            6 => format!("{{{{{n}}}}}"),
            7 => "REPLACE".to_string(),
            _ => "OPTIONAL".to_string(),
        };
        if encode {
            m.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        } else {
            m
        }
    })
}

fn amount_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,18}(\\.[0-9]{0,12})?",
        "[ ]?[-+]?[0-9]{1,4}[.,eE]?[0-9]{0,4}[ ]?",
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("0x10".to_string()),
        Just("１２".to_string()),
        "\\PC{0,8}",
    ]
}

fn currency_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z]{3}",
        "[ ]?(USD|eur|Sek|XTS|XXX|HRK|BTC)[ ]?",
        "\\PC{0,5}",
    ]
}

fn status_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "approved",
            "Pending",
            "REJECTED",
            "refunded",
            "chargeback",
            "sale",
            "refund",
            "declined",
            "maybe",
            "",
            " ",
            "ok",
        ])
        .prop_map(str::to_string),
        "\\PC{0,10}",
    ]
}

/// Parameter names: canonical fields, aliases (any case), preset names,
/// and others.
fn param_name() -> impl Strategy<Value = String> {
    let mut known: Vec<&'static str> = Vec::new();
    for (f, aliases) in postback::FIELDS {
        known.push(f);
        known.extend(aliases.iter().copied());
    }
    known.extend(["s2", "tid", "subId1", "price", "leadid", "foo", ""]);
    prop_oneof![
        4 => prop::sample::select(known).prop_map(str::to_string),
        1 => prop::sample::select(vec!["CLICK_ID", "Payout", "CuR", "TxId"]).prop_map(str::to_string),
        1 => "[a-z_]{1,8}",
    ]
}

fn param_value() -> impl Strategy<Value = String> {
    prop_oneof![
        click_value(),
        amount_value(),
        currency_value(),
        status_value(),
        macro_value(),
        "\\PC{0,12}",
        ".{0,6}",
    ]
}

fn mapping() -> impl Strategy<Value = Mapping> {
    let field = prop::sample::select(postback::FIELDS.iter().map(|(f, _)| *f).collect::<Vec<_>>());
    let status = prop::sample::select(Status::ALL.to_vec());
    (
        prop::collection::btree_map(field.prop_map(str::to_string), param_name(), 0..3),
        prop::collection::btree_map(
            "[A-Za-z]{1,8}".prop_map(|s| s.to_ascii_lowercase()),
            status,
            0..3,
        ),
        prop::sample::select(vec!["USD", "EUR", "SEK"]),
    )
        .prop_map(|(params, statuses, cur)| Mapping {
            params,
            statuses,
            default_currency: cur.to_string(),
        })
}

fn form_encode(pairs: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn json_encode(pairs: &[(String, String)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}:{}",
                serde_json::Value::from(k.as_str()),
                serde_json::Value::from(v.as_str())
            )
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

/// What every successful parse promises.
fn assert_fields_invariants(f: &Fields, mapping: &Mapping) -> Result<(), TestCaseError> {
    let c = &f.click_id;
    prop_assert!(!c.is_empty());
    prop_assert_eq!(c.trim(), c.as_str());
    prop_assert_eq!(&c.to_ascii_lowercase(), c);
    prop_assert!(c.len() <= ids::MAX_CLICK_ID_LEN);
    prop_assert!(!c.chars().any(char::is_control));
    prop_assert_eq!(postback::literal_macro(c), None);
    if f.currency != mapping.default_currency {
        prop_assert!(
            currency::is_iso4217(&f.currency),
            "currency {:?}",
            f.currency
        );
        prop_assert_eq!(f.currency.to_ascii_uppercase(), f.currency.clone());
    }
    match f.amount {
        Some(a) => {
            prop_assert!(a >= Decimal::ZERO);
            prop_assert!(a.scale() <= 10);
            prop_assert_eq!(f.kind == Kind::Purchase, a > Decimal::ZERO);
        }
        None => prop_assert_eq!(f.kind, Kind::Lead),
    }
    for v in [
        &f.transaction_id,
        &f.event,
        &f.country,
        &f.state,
        &f.city,
        &f.zip,
    ]
    .into_iter()
    .flatten()
    {
        prop_assert!(!v.is_empty() && v.trim() == v && v.len() <= 256);
        prop_assert!(!v.chars().any(char::is_control));
        prop_assert_eq!(postback::literal_macro(v), None);
    }
    Ok(())
}

/// An independent reading of the documented amount grammar.
fn amount_oracle(raw: &str) -> Option<(u128, u32)> {
    let s = raw.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) || int.len() + frac.len() == 0 {
        return None;
    }
    if int.trim_start_matches('0').len() > 15 || frac.len() > 10 {
        return None;
    }
    let m = int
        .bytes()
        .chain(frac.bytes())
        .fold(0u128, |m, b| m * 10 + u128::from(b - b'0'));
    Some((m, u32::try_from(frac.len()).unwrap()))
}

/// The expansion's (scheme, host, port) by `hyper::Uri`.
fn origin(u: &str) -> Option<(String, String, Option<u16>)> {
    let uri: hyper::Uri = u.parse().ok()?;
    Some((
        uri.scheme_str()?.to_ascii_lowercase(),
        uri.host()?.to_ascii_lowercase(),
        uri.port_u16(),
    ))
}

/// Destination templates as admins write them, with placeholders and
/// punctuation in the path, query and fragment.
fn template() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9-]{0,6}){0,2}",
        Just("1.2.3.4".to_string()),
        Just("[2001:db8::1]".to_string()),
        Just("[::1]".to_string()),
    ];
    let port = prop_oneof![Just(String::new()), (0u16..).prop_map(|p| format!(":{p}"))];
    let piece = prop_oneof![
        Just("{click_id}".to_string()),
        Just("--CLICK-ID--".to_string()),
        Just("{utm_source}".to_string()),
        Just("{gclid}".to_string()),
        Just("{missing}".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("/".to_string()),
        Just("?".to_string()),
        Just("&".to_string()),
        Just("=".to_string()),
        Just("#".to_string()),
        Just("@".to_string()),
        Just(":".to_string()),
        Just("%2F".to_string()),
        "[a-z0-9._~-]{1,6}",
    ];
    (
        prop::sample::select(vec!["http", "https", "HTTPS"]),
        host,
        port,
        prop::collection::vec(piece, 0..10),
    )
        .prop_map(|(scheme, host, port, pieces)| {
            let rest = pieces.concat();
            let sep = if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
                ""
            } else {
                "/"
            };
            format!("{scheme}://{host}{port}{sep}{rest}")
        })
}

/// Click values an attacker chooses: anything, with URL punctuation.
fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,16}",
        ".{0,16}",
        prop::sample::select(vec![
            "//evil.example/",
            "https://evil.example:1/",
            "@evil.example",
            "\\\\evil.example",
            "#@evil",
            "?x=1&y=2",
            "%2F%2Fevil",
            "\r\nLocation: https://evil.example/",
            "../../..",
        ])
        .prop_map(str::to_string),
    ]
}

fn check_expansion(
    t: &str,
    click_id: &str,
    params: &[(String, String)],
    append: &str,
) -> Result<(), TestCaseError> {
    let got = click::expand(t, click_id, params, append);
    // The authority is copied verbatim, and nothing is appended to it.
    let start = t.find("://").unwrap() + 3;
    let end = start + t[start..].find(['/', '?', '#']).unwrap_or(t.len() - start);
    prop_assert!(got.starts_with(&t[..end]), "{got:?}");
    prop_assert!(matches!(
        got.as_bytes().get(end),
        None | Some(b'/' | b'?' | b'#')
    ));
    // No character a Location header cannot carry.
    prop_assert!(
        hyper::header::HeaderValue::from_str(&got).is_ok(),
        "{got:?}"
    );
    let reference = click::expand(t, "plainclickid", &[], "click_id");
    let want = origin(&reference);
    prop_assert!(want.is_some(), "reference {reference:?} does not parse");
    prop_assert_eq!(origin(&got), want, "{} -> {}", t, got);
    Ok(())
}

proptest! {
    /// (a) Ours agrees with `form_urlencoded` whenever ours accepts, and
    /// refuses only what `form_urlencoded` had to replace with U+FFFD.
    #[test]
    fn query_parsing_matches_form_urlencoded(data in query_bytes()) {
        let theirs: Vec<(String, String)> = form_urlencoded::parse(&data)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut ours = Vec::new();
        match query::parse_form(&data, &UNLIMITED, &mut ours) {
            Ok(()) => {
                let got: Vec<(String, String)> =
                    ours.into_iter().map(|p| (p.name, p.value)).collect();
                prop_assert_eq!(got, theirs);
            }
            Err(ParseError::InvalidUtf8 { name }) => {
                prop_assert!(name.len() <= 32);
                prop_assert!(theirs
                    .iter()
                    .any(|(k, v)| k.contains(char::REPLACEMENT_CHARACTER) || v.contains(char::REPLACEMENT_CHARACTER)));
            }
            Err(e) => prop_assert!(false, "no limits, yet {:?}", e),
        }
    }

    /// (b) A whole request, as query, form body or JSON body: never panics;
    /// on success the invariants hold and the canonical fields re-parse
    /// identically; the three encodings of the same pairs agree.
    #[test]
    fn postback_requests_keep_invariants(
        pairs in prop::collection::vec((param_name(), param_value()), 0..8),
        m in mapping(),
    ) {
        let q = form_encode(&pairs);
        let limits = Limits::default();
        let by_query = postback::parse(
            &Request { query: q.as_bytes(), ..Request::default() }, &m, &limits);
        let by_form = postback::parse(
            &Request {
                query: b"",
                content_type: Some("application/x-www-form-urlencoded"),
                body: q.as_bytes(),
            },
            &m,
            &limits,
        );
        let json = json_encode(&pairs);
        let by_json = postback::parse(
            &Request { query: b"", content_type: Some("application/json"), body: json.as_bytes() },
            &m,
            &limits,
        );
        prop_assert_eq!(&by_query, &by_form);
        prop_assert_eq!(&by_query, &by_json);
        match &by_query {
            Ok(f) => {
                assert_fields_invariants(f, &m)?;
                // As sent (case kept): it normalizes to `click_id` again.
                prop_assert_eq!(&ids::normalize_click_id(&f.click_id_as_sent), &f.click_id);
                let mut canon = vec![("click_id".to_string(), f.click_id_as_sent.clone())];
                if let Some(a) = f.amount {
                    canon.push(("amount".into(), a.to_string()));
                }
                canon.push(("currency".into(), f.currency.clone()));
                canon.push(("status".into(), f.status.as_str().into()));
                for (n, v) in [
                    ("transaction_id", &f.transaction_id), ("event", &f.event),
                    ("country", &f.country), ("state", &f.state),
                    ("city", &f.city), ("zip", &f.zip),
                ] {
                    if let Some(v) = v {
                        canon.push((n.into(), v.clone()));
                    }
                }
                let cq = form_encode(&canon);
                let again = postback::parse(
                    &Request { query: cq.as_bytes(), ..Request::default() },
                    &Mapping { default_currency: "USD".into(), ..Mapping::default() },
                    &limits,
                );
                let mut want = f.clone();
                want.extra.clear();
                prop_assert_eq!(again, Ok(want));
            }
            Err(r) => {
                prop_assert!(!r.message.is_empty());
                prop_assert!([
                    "missing_click_id", "unsubstituted_macro", "invalid_amount",
                    "invalid_currency", "invalid_status", "invalid_click_id",
                    "invalid_parameter", "conflicting_parameters",
                ].contains(&r.code), "{}", r.code);
            }
        }
    }

    /// The page tag's beacon (the `beacon` fuzz target's invariants): any
    /// JSON object of arbitrary strings is read into bounded, clean fields
    /// or refused with a documented code.
    #[test]
    fn beacons_are_bounded_or_refused(
        link in prop::sample::select(vec!["spring".to_string(), "a-b_9".into(), String::new(), "x/y".into(), "s".repeat(65)]),
        url in prop::option::of(prop::sample::select(vec![
            "https://lp.example/?gclid=G&utm_source=x".to_string(), "javascript:alert(1)".into(),
            "https://[::1]:80/p".into(), "http://a..b/".into(), "".into(), format!("https://lp.example/?q={}", "u".repeat(4100)),
        ])),
        referrer in prop::option::of("\\PC{0,40}|[ \t]{0,3}https://r\\.example/[a-z]{0,5}[ ]{0,2}"),
        fbp in prop::option::of(".{0,300}"),
    ) {
        use postbackd::tracking::beacon;
        let body = serde_json::json!({"link": link, "url": url, "referrer": referrer, "fbp": fbp}).to_string();
        match beacon::parse(body.as_bytes()) {
            Ok(b) => {
                prop_assert!(!b.link.is_empty() && b.link.len() <= 64, "no source sent: a slug");
                prop_assert!(b.link.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
                if let Some(u) = &b.url {
                    prop_assert!(u.len() <= beacon::MAX_URL && click::validate_destination(u).is_ok());
                }
                for (v, max) in [(&b.referrer, beacon::MAX_REFERRER), (&b.fbp, beacon::MAX_COOKIE)] {
                    if let Some(v) = v {
                        prop_assert!(!v.is_empty() && v.len() <= max && v.trim() == v.as_str());
                        prop_assert!(!v.chars().any(char::is_control));
                    }
                }
            }
            Err(r) => prop_assert!(
                ["too_large", "invalid_json", "invalid_link", "invalid_source", "invalid_landing_url", "invalid_beacon"].contains(&r.code),
                "{}", r.code
            ),
        }
    }

    /// Arbitrary bytes with any content type never panic and answer a
    /// known code.
    #[test]
    fn postback_bytes_never_panic(
        query in query_bytes(),
        body in prop::collection::vec(any::<u8>(), 0..64),
        ct in prop::sample::select(vec![
            None, Some("application/json"), Some("application/x-www-form-urlencoded"),
            Some("text/plain"), Some("application/ld+json; charset=x"),
        ]),
        m in mapping(),
    ) {
        let req = Request { query: &query, content_type: ct, body: &body };
        match postback::parse(&req, &m, &Limits::default()) {
            Ok(f) => assert_fields_invariants(&f, &m)?,
            Err(r) => prop_assert!(!r.code.is_empty() && !r.message.is_empty()),
        }
    }

    /// (c) No open redirect: a validated destination keeps its scheme, host
    /// and port whatever the click's parameters contain.
    #[test]
    fn link_expansion_never_leaves_the_destination_origin(
        t in template(),
        click_id in "[0-9a-z]{25}",
        params in prop::collection::vec(
            (prop::sample::select(vec!["utm_source", "gclid", "missing", "x"]), hostile_value()),
            0..4,
        ),
        append in prop_oneof![Just("click_id".to_string()), hostile_value()],
    ) {
        let params: Vec<(String, String)> =
            params.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        if click::validate_destination(&t).is_ok() {
            check_expansion(&t, &click_id, &params, &append)?;
        }
    }

    /// Destinations with placeholders or junk in the authority are refused.
    #[test]
    fn placeholders_in_the_authority_are_refused(
        host in "[a-z]{1,6}",
        junk in prop::sample::select(vec![
            "{utm_source}", "--CLICK-ID--", "{click_id}", "@evil", "\\evil", "%2F", " ", "user:pw@",
        ]),
        before in any::<bool>(),
    ) {
        let authority = if before { format!("{junk}{host}.com") } else { format!("{host}.com{junk}") };
        let t = format!("https://{authority}/lp?x={{click_id}}");
        prop_assert!(click::validate_destination(&t).is_err(), "{}", t);
    }

    /// (d) Amounts: exactly the documented grammar, exact decimals.
    #[test]
    fn amounts_follow_the_grammar(raw in amount_value()) {
        match (postback::parse_amount(&raw), amount_oracle(&raw)) {
            (Ok(d), Some((m, scale))) => {
                prop_assert_eq!(d.mantissa(), i128::try_from(m).unwrap());
                prop_assert_eq!(d.scale(), scale);
                prop_assert!(d >= Decimal::ZERO);
                prop_assert_eq!(postback::parse_amount(&d.to_string()), Ok(d));
                prop_assert_eq!(Decimal::from_str(&d.to_string()), Ok(d));
            }
            (Err(why), None) => prop_assert!(!why.is_empty()),
            (a, o) => prop_assert!(false, "{:?}: {:?} vs oracle {:?}", raw, a, o),
        }
    }

    /// Currencies: trimmed, uppercased, ISO 4217 or refused.
    #[test]
    fn currencies_normalize(raw in currency_value()) {
        let n = currency::normalize(&raw);
        prop_assert_eq!(n.is_some(), currency::is_iso4217(raw.trim()));
        if let Some(c) = n {
            prop_assert_eq!(&c, &raw.trim().to_ascii_uppercase());
            prop_assert_eq!(currency::normalize(&c.to_ascii_lowercase()), Some(c));
        }
    }

    /// Amount, currency and status inside a postback: the first bad one in
    /// field order is the answer; good ones are stored as parsed.
    #[test]
    fn fields_in_a_postback_agree_with_their_parsers(
        amount in amount_value(),
        cur in currency_value(),
        status in status_value(),
        m in mapping(),
    ) {
        let mut m = m;
        m.params.clear();
        let p = |n: &str, v: &str| Param { name: n.into(), value: v.into(), structured: false };
        let params = [p("click_id", "abc"), p("amount", &amount), p("currency", &cur), p("status", &status)];
        let blank = |v: &str| v.trim().is_empty();
        let mac = |v: &str| postback::literal_macro(v).is_some();
        let want = if mac(&amount) || mac(&cur) || mac(&status) {
            Some("unsubstituted_macro")
        } else if !blank(&amount) && postback::parse_amount(&amount).is_err() {
            Some("invalid_amount")
        } else if !blank(&cur) && currency::normalize(&cur).is_none() {
            Some("invalid_currency")
        } else {
            None
        };
        match (postback::normalize(&params, &m), want) {
            (Err(r), Some(code)) => prop_assert_eq!(r.code, code),
            (Err(r), None) => {
                prop_assert_eq!(r.code, "invalid_status");
                let key = status.trim().to_ascii_lowercase();
                prop_assert!(!m.statuses.contains_key(&key) && Status::parse(&key).is_none());
            }
            (Ok(f), None) => {
                assert_fields_invariants(&f, &m)?;
                let a = (!blank(&amount)).then(|| postback::parse_amount(&amount).unwrap());
                prop_assert_eq!(f.amount, a);
                if blank(&cur) {
                    prop_assert_eq!(&f.currency, &m.default_currency);
                } else {
                    prop_assert_eq!(Some(f.currency.clone()), currency::normalize(&cur));
                }
                let key = status.trim().to_ascii_lowercase();
                if blank(&status) {
                    prop_assert_eq!(f.status, Status::Approved);
                } else if let Some(st) = m.statuses.get(&key).copied().or_else(|| Status::parse(&key)) {
                    prop_assert_eq!(f.status, st);
                }
            }
            (Ok(f), Some(code)) => prop_assert!(false, "expected {}, got {:?}", code, f),
        }
    }

    /// (e) Click IDs: normalization is trim + ASCII lowercase, idempotent;
    /// the time prefix round-trips; new IDs have the contract's shape and
    /// order; macros are refused, other values matched or refused by rule.
    #[test]
    fn click_ids_normalize_and_order(raw in click_value(), ms in 0u64..36u64.pow(9) - 1, r in any::<u128>()) {
        let n = ids::normalize_click_id(&raw);
        prop_assert_eq!(n.trim(), n.as_str());
        prop_assert_eq!(&n.to_ascii_lowercase(), &n);
        prop_assert_eq!(ids::normalize_click_id(&n), n.clone());
        prop_assert_eq!(ids::normalize_click_id(&raw.to_ascii_uppercase()), n.clone());
        prop_assert_eq!(ids::normalize_click_id(&format!(" \t{raw}\r\n")), n.clone());

        let well_formed = raw
            .as_bytes()
            .get(..ids::TIME_DIGITS)
            .is_some_and(|p| p.iter().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
        prop_assert_eq!(ids::time_of(&raw).is_some(), well_formed);

        let id = ids::id_from_parts(ms, r);
        prop_assert_eq!(id.len(), ids::ID_LEN);
        prop_assert!(id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
        prop_assert_eq!(ids::time_of(&id), Some(ms));
        prop_assert!(id < ids::id_from_parts(ms + 1, r));

        let params = [Param { name: "click_id".into(), value: raw.clone(), structured: false }];
        let m = Mapping { default_currency: "USD".into(), ..Mapping::default() };
        let mac = postback::literal_macro(&raw);
        match postback::normalize(&params, &m) {
            Ok(f) => {
                prop_assert!(mac.is_none());
                prop_assert_eq!(&f.click_id, &n);
            }
            Err(e) => {
                let want = if mac.is_some() {
                    "unsubstituted_macro"
                } else if n.is_empty() {
                    "missing_click_id"
                } else {
                    "invalid_click_id"
                };
                prop_assert_eq!(e.code, want, "{:?}", raw);
            }
        }
    }

    /// Every macro syntax, plain or percent-encoded once more, is detected.
    #[test]
    fn macros_in_every_syntax_are_detected(m in macro_value(), pad in "[ \t]{0,2}") {
        let v = format!("{pad}{m}{pad}");
        prop_assert_eq!(postback::literal_macro(&v), Some(m.as_str()));
    }

    /// (f) Signed GETs verify exactly when signed with an active key and in
    /// time; one changed byte or the wrong key fails; messages never panic.
    #[test]
    fn signed_gets_verify_exactly(
        key in prop::collection::vec(any::<u8>(), 16..64),
        query in "[a-z0-9_=&%.-]{0,40}",
        // Realistic clocks; the extremes are `signing_stale_message_…` below.
        ts in -(1i64 << 62)..(1i64 << 62),
        now in -(1i64 << 62)..(1i64 << 62),
        tol in 0u64..1000,
        flip in any::<prop::sample::Index>(),
    ) {
        let signed = format!("/p/KEY?{query}&ts={ts}");
        let sig = signing::sign_hex(&key, signed.as_bytes());
        let url = format!("{signed}&sig={sig}");
        let ts_pairs = query.split('&').filter(|p| p.starts_with("ts=")).count() + 1;
        let got = signing::verify_get(&url, std::slice::from_ref(&key), now, tol);
        if let Err(e) = &got {
            prop_assert!(!e.message().is_empty());
        }
        match got {
            Ok(v) => {
                prop_assert_eq!(ts_pairs, 1);
                prop_assert!(now.abs_diff(ts) <= tol);
                prop_assert_eq!(v.ts, ts);
            }
            Err(e) if ts_pairs == 1 => {
                prop_assert!(now.abs_diff(ts) > tol);
                prop_assert_eq!(e.code(), "stale_signature");
            }
            Err(e) => prop_assert_eq!(e.code(), "bad_signature"),
        }
        let mut wrong = key.clone();
        wrong[0] ^= 1;
        prop_assert!(signing::verify_get(&url, &[wrong], now, tol).is_err());
        let mut t = url.clone().into_bytes();
        let i = flip.index(signed.len());
        t[i] ^= 1;
        if let Ok(t) = String::from_utf8(t) {
            prop_assert!(signing::verify_get(&t, std::slice::from_ref(&key), now, tol).is_err());
        }
    }
}

/// Inputs the fuzz targets found, replayed through the same properties.
#[test]
fn fuzz_regressions() {
    // query_form: a long name before an invalid value was echoed whole.
    let q = format!("clic{}k_id=%d3", "\u{12}".repeat(90));
    let mut out = Vec::new();
    match query::parse_form(q.as_bytes(), &UNLIMITED, &mut out) {
        Err(ParseError::InvalidUtf8 { name }) => assert!(name.len() <= 32, "{}", name.len()),
        other => panic!("{other:?}"),
    }
    // link_expand: hyper::Uri accepted a port of dots, which no browser
    // parses; the destination is refused now.
    let t = format!("https://offer.exampl:{}/lp", ".".repeat(40));
    assert!(click::validate_destination(&t).is_err());
    // bad_input: a macro encoded twice is a macro, not an unmatched click.
    assert_eq!(
        postback::literal_macro("%7Bclickid%7D"),
        Some("%7Bclickid%7D")
    );
}

/// Regression (found fuzzing `signing`): the `stale_signature` message
/// computed `(now - ts).abs()` in `i64`, which overflowed for a correctly
/// signed request whose timestamp is far from the clock
/// (`ts=-9223372036854775808`).
#[test]
fn signing_stale_message_handles_extreme_timestamps() {
    let key = vec![7u8; 32];
    for (ts, now) in [
        (i64::MIN, 1_700_000_000),
        (i64::MAX, -1),
        (i64::MIN, i64::MAX),
    ] {
        let signed = format!("/p/KEY?click_id=abc&ts={ts}");
        let url = format!(
            "{signed}&sig={}",
            signing::sign_hex(&key, signed.as_bytes())
        );
        let e = signing::verify_get(&url, std::slice::from_ref(&key), now, 300).unwrap_err();
        assert_eq!(e.code(), "stale_signature");
        let message = std::panic::catch_unwind(|| e.message());
        assert!(
            message.is_ok(),
            "SigError::message panicked for ts={ts}, now={now}"
        );
        let distance = now.abs_diff(ts).to_string();
        assert!(
            message.unwrap().contains(&distance),
            "the message does not state the distance {distance}s"
        );
    }
}

/// Pieces of pasted postback URLs: schemes, hosts, paths, keys, macros in
/// every syntax, encodings, entities, separators.
fn doctor_url() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("https://"),
        Just("http://"),
        Just("t.example.com"),
        Just("[::1]:8080"),
        Just("/p/"),
        Just("/c/"),
        Just("keverflow"),
        Just("kcake"),
        Just("?"),
        Just("&"),
        Just("&amp;"),
        Just("="),
        Just("click_id"),
        Just("subid"),
        Just("amount"),
        Just("transaction_id"),
        Just("{sub1}"),
        Just("#s2#"),
        Just("[sid]"),
        Just("${x}"),
        Just("{{x}}"),
        Just("{"),
        Just("#"),
        Just("%25"),
        Just("%7B"),
        Just("%3D"),
        Just("%ff"),
        Just("REPLACE"),
        Just("0mzx7c1k2p9qwe45rtyu8i"),
        Just("é"),
        Just(" "),
    ];
    proptest::collection::vec(atom, 0..24).prop_map(|v| v.concat())
}

fn doctor_context(https: bool, expected: Option<u64>) -> postbackd::inbound::doctor::DoctorContext {
    use postbackd::inbound::doctor::{DoctorContext, DoctorSource};
    use postbackd::inbound::presets;
    DoctorContext {
        public_url: if https {
            "https://t.example.com"
        } else {
            "http://t.example.com"
        }
        .into(),
        expected_source: expected,
        sources: presets::all()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut mapping = Mapping::default();
                for (f, n) in p.params {
                    mapping.params.insert((*f).into(), (*n).into());
                }
                DoctorSource {
                    id: i as u64 + 1,
                    name: p.name.into(),
                    key: format!("k{}", p.id),
                    preset: Some(p),
                    syntax: Some(p.syntax),
                    own_params: Vec::new(),
                    mapping,
                }
            })
            .collect(),
    }
}

proptest! {
    /// The doctor's fuzz invariants (`fuzz/fuzz_targets/doctor.rs`).
    #[test]
    fn doctor_findings_are_documented_bounded_and_deterministic(
        url in prop_oneof![doctor_url(), any::<String>()],
        https in any::<bool>(),
        expected in proptest::option::of(0u64..12),
    ) {
        use postbackd::inbound::doctor::{self, CODES};
        let ctx = doctor_context(https, expected);
        let a = doctor::diagnose(&url, &ctx);
        prop_assert_eq!(&a, &doctor::diagnose(&url, &ctx));
        prop_assert!(a.len() <= 300);
        for f in &a {
            prop_assert!(CODES.contains(&f.code), "{}", f.code);
            prop_assert!(!f.message.is_empty() && f.message.len() < 1200);
            prop_assert!(!f.fix.is_empty() && f.fix.len() < 1200);
        }
        if a.iter().any(|f| f.code == "not_a_url") {
            prop_assert_eq!(a.len(), 1);
        }
    }
}
