//! WarriorPlus IPN: a form POST that carries the account's security key in
//! clear as `WP_SECURITYKEY` (compared in constant time). The action is
//! `WP_ACTION`, the sale `WP_SALE`, each message's own ID `IPN_ID`, the
//! click ID `WP_SID` (the `s` parameter of the affiliate link; or a
//! configured field such as `WP_HOP_SID`), amounts `WP_SALE_EARNINGS_AFF`
//! (commission) and `WP_SALE_AMOUNT` (order).
//!
//! Because the key travels in the body, the stored copy of the request has
//! it replaced by `[redacted]` ([`redact`]).

use super::{
    Auth, Fields, Format, Notification, REDACTED, Rejection, Request, Sample, Settings, TxType,
    bad_signature, chosen_amount, click_candidate, currency_field, form, form_params, missing,
    secret_eq, text_field, unknown_type,
};
use crate::inbound::query::Limits;

const F: Format = Format::WarriorPlus;

/// The field holding the security key.
pub const KEY_FIELD: &str = "WP_SECURITYKEY";

fn tx_type(action: &str) -> Option<TxType> {
    let a = action.to_ascii_lowercase();
    Some(match a.as_str() {
        "sale" => TxType::Sale,
        "subscr_payment" | "rebill" => TxType::Rebill,
        "refund" | "refunded" => TxType::Refund,
        "dispute" | "chargeback" | "reversal" => TxType::Chargeback,
        // Subscription bookkeeping (created, cancelled, ended, failed...)
        // and the dashboard's connection test move no money.
        "test" => TxType::Other,
        _ if a.starts_with("subscr_") => TxType::Other,
        _ => return None,
    })
}

pub fn decode(
    req: &Request<'_>,
    settings: &Settings,
    limits: &Limits,
    auth: Auth,
) -> Result<Notification, Rejection> {
    let params = form_params(F, req.body, limits)?;
    let f = Fields { params: &params };
    if auth == Auth::Verify {
        let ok = !f.has_duplicates()
            && f.get(KEY_FIELD)
                .is_some_and(|k| secret_eq(k.trim().as_bytes(), settings.secret.as_bytes()));
        if !ok {
            return Err(bad_signature(F));
        }
    }
    let raw_type = f
        .text("WP_ACTION")
        .ok_or_else(|| missing(F, "WP_ACTION", "what happened"))?;
    let tx = tx_type(raw_type).ok_or_else(|| unknown_type(F, "WP_ACTION", raw_type))?;
    let mut n = Notification::new(tx, raw_type);
    n.receipt = text_field(F, "WP_SALE", f.get("WP_SALE"))?;
    if tx.is_money() && n.receipt.is_none() {
        return Err(missing(F, "WP_SALE", "the sale ID"));
    }
    if tx == TxType::Rebill {
        n.sequence = text_field(F, "IPN_ID", f.get("IPN_ID"))?;
        if n.sequence.is_none() {
            return Err(missing(F, "IPN_ID", "which payment of the subscription"));
        }
    }
    // Not confirmed from WarriorPlus's public documentation: a test IPN
    // sent from the dashboard is flagged with WP_TEST (or WP_SANDBOX).
    n.test = ["WP_TEST", "WP_SANDBOX"].iter().any(|k| {
        f.text(k)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
    });
    let click_field = settings.click_id_field.as_deref().unwrap_or("WP_SID");
    n.click_ids
        .extend(f.text(click_field).and_then(click_candidate));
    n.amount = chosen_amount(
        F,
        settings.amount,
        ("WP_SALE_EARNINGS_AFF", "WP_SALE_AMOUNT"),
        tx,
        |k| f.text(k).map(str::to_string),
    )?;
    n.currency = currency_field(F, "WP_SALE_CURRENCY", f.get("WP_SALE_CURRENCY"))?;
    n.country = text_field(F, "WP_BUYER_COUNTRY", f.get("WP_BUYER_COUNTRY"))?;
    for (k, name) in [
        ("WP_ITEM_NUMBER", "warriorplus_item"),
        ("IPN_ID", "warriorplus_ipn_id"),
    ] {
        if let Some(v) = text_field(F, k, f.get(k))? {
            n.extra.push((name.to_string(), v));
        }
    }
    Ok(n)
}

/// The body with every `WP_SECURITYKEY` value replaced, byte for byte
/// otherwise (so the stored request is still the one received).
pub fn redact(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for (i, pair) in body.split(|&b| b == b'&').enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        let name_end = pair.iter().position(|&b| b == b'=').unwrap_or(pair.len());
        let name = crate::inbound::query::decode_component(&pair[..name_end]).unwrap_or_default();
        if name.trim().eq_ignore_ascii_case(KEY_FIELD) {
            out.extend_from_slice(&pair[..name_end]);
            out.push(b'=');
            out.extend_from_slice(REDACTED.as_bytes());
        } else {
            out.extend_from_slice(pair);
        }
    }
    out
}

pub fn sample(settings: &Settings, s: &Sample) -> Vec<u8> {
    let action = match s.tx_type {
        TxType::Sale => "sale",
        TxType::Rebill => "subscr_payment",
        TxType::Refund => "refund",
        TxType::Chargeback => "dispute",
        TxType::Other => "subscr_cancelled",
    };
    let click_field = settings.click_id_field.as_deref().unwrap_or("WP_SID");
    let click = s.click_id.clone().unwrap_or_default();
    let ipn_id = format!("{}-{}", s.receipt, s.sequence);
    let mut pairs: Vec<(&str, &str)> = vec![
        ("WP_ACTION", action),
        ("WP_ITEM_NUMBER", "wso_test"),
        ("WP_SALE", &s.receipt),
        ("IPN_ID", &ipn_id),
        ("WP_SALE_AMOUNT", &s.amount),
        ("WP_SALE_EARNINGS_AFF", &s.amount),
        ("WP_SALE_CURRENCY", "USD"),
        ("WP_BUYER_COUNTRY", "US"),
        (click_field, &click),
        (KEY_FIELD, &settings.secret),
    ];
    if s.test {
        pairs.push(("WP_TEST", "1"));
    }
    form(&pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::ipn::decode as decode_any;

    fn settings() -> Settings {
        crate::inbound::ipn::test_settings(F, "wp-key-123")
    }

    fn req(body: &[u8]) -> Request<'_> {
        Request {
            content_type: Some("application/x-www-form-urlencoded"),
            body,
        }
    }

    #[test]
    fn key_is_checked_and_redacted() {
        let body = b"WP_ACTION=sale&WP_SALE=77&WP_SALE_EARNINGS_AFF=5.00&WP_SALE_AMOUNT=10.00&WP_SID=Abc&WP_SECURITYKEY=wp-key-123";
        let n = decode_any(&req(body), &settings(), &Limits::default(), Auth::Verify).unwrap();
        assert_eq!(n.tx_type, TxType::Sale);
        assert_eq!(n.amount.unwrap().to_string(), "5.00");
        assert_eq!(n.click_ids, vec!["abc".to_string()]);
        let stored = redact(body);
        assert!(!String::from_utf8_lossy(&stored).contains("wp-key-123"));
        assert!(String::from_utf8_lossy(&stored).ends_with("WP_SECURITYKEY=[redacted]"));
        // The redacted copy no longer authenticates; a replay of an
        // authenticated original says so.
        let e = decode_any(&req(&stored), &settings(), &Limits::default(), Auth::Verify);
        assert_eq!(e.unwrap_err().code, "bad_signature");
        let again = decode_any(
            &req(&stored),
            &settings(),
            &Limits::default(),
            Auth::AlreadyVerified,
        );
        assert_eq!(again.unwrap(), n);
        // Wrong or missing key.
        for b in [
            &b"WP_ACTION=sale&WP_SALE=77&WP_SALE_AMOUNT=1&WP_SECURITYKEY=wp-key-12"[..],
            &b"WP_ACTION=sale&WP_SALE=77&WP_SALE_AMOUNT=1"[..],
        ] {
            let e = decode_any(&req(b), &settings(), &Limits::default(), Auth::Verify);
            assert_eq!(e.unwrap_err(), bad_signature(F));
        }
    }

    #[test]
    fn redaction_catches_encoded_names() {
        let stored = redact(b"a=1&WP%5FSECURITYKEY=secret&b=2");
        assert_eq!(stored, b"a=1&WP%5FSECURITYKEY=[redacted]&b=2");
    }
}
