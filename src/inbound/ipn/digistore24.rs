//! Digistore24 IPN: a form POST authenticated by `sha_sign`, the uppercase
//! hex SHA-512 over `key=value` + passphrase for every non-empty field
//! (but `sha_sign` / `SHASIGN`) in bytewise key order.
//!
//! `event` says what happened (`on_payment`, `on_refund`,
//! `on_chargeback`, ... and `connection_test`); a payment with
//! `pay_sequence_no` above 1 is a rebill. The click ID is `cid` /
//! `click_id`, else `trackingkey` / `campaignkey` / `custom`; the receipt
//! is `order_id`, each payment's own ID `transaction_id`. A successful
//! receiver answers the body `OK`.

use sha2::{Digest, Sha512};

use super::{
    Fields, Format, Notification, Rejection, Request, Sample, Settings, TxType, bad_signature,
    chosen_amount, click_candidate, currency_field, form, form_params, hex_upper, missing,
    secret_eq, text_field, unknown_type,
};
use crate::inbound::query::{Limits, Param};

const F: Format = Format::Digistore24;

/// The click ID fields, in the order they are read.
pub const CLICK_FIELDS: &[&str] = &["cid", "click_id", "trackingkey", "campaignkey", "custom"];

/// `sha_sign` of a set of fields.
pub fn sha_sign<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    passphrase: &str,
) -> String {
    let mut pairs: Vec<(&str, &str)> = fields
        .into_iter()
        .filter(|(k, v)| *k != "sha_sign" && *k != "SHASIGN" && !v.is_empty())
        .collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut h = Sha512::new();
    for (k, v) in pairs {
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.as_bytes());
        h.update(passphrase.as_bytes());
    }
    hex_upper(&h.finalize())
}

fn authenticate(params: &[Param], passphrase: &str) -> Result<(), Rejection> {
    let fields = Fields { params };
    let given = fields
        .get("sha_sign")
        .or_else(|| fields.get("SHASIGN"))
        .filter(|_| !fields.has_duplicates());
    let Some(given) = given else {
        return Err(bad_signature(F));
    };
    let want = sha_sign(
        params.iter().map(|p| (p.name.as_str(), p.value.as_str())),
        passphrase,
    );
    if secret_eq(
        given.trim().to_ascii_uppercase().as_bytes(),
        want.as_bytes(),
    ) {
        Ok(())
    } else {
        Err(bad_signature(F))
    }
}

fn tx_type(event: &str, sequence: Option<u64>) -> Option<TxType> {
    Some(match event {
        "on_payment" if sequence.is_some_and(|n| n > 1) => TxType::Rebill,
        "on_payment" => TxType::Sale,
        "on_refund" => TxType::Refund,
        "on_chargeback" => TxType::Chargeback,
        "connection_test"
        | "on_payment_missed"
        | "on_rebill_cancelled"
        | "on_rebill_resumed"
        | "on_affiliation"
        | "on_affiliation_cancelled"
        | "last_paid_day"
        | "on_revoked" => TxType::Other,
        _ => return None,
    })
}

pub fn decode(
    req: &Request<'_>,
    settings: &Settings,
    limits: &Limits,
) -> Result<Notification, Rejection> {
    let params = form_params(F, req.body, limits)?;
    authenticate(&params, &settings.secret)?;
    let f = Fields { params: &params };
    let raw_type = f
        .text("event")
        .ok_or_else(|| missing(F, "event", "what happened"))?;
    let seq_text = f.text("pay_sequence_no");
    let seq = seq_text.and_then(|s| s.parse::<u64>().ok());
    let tx = tx_type(raw_type, seq).ok_or_else(|| unknown_type(F, "event", raw_type))?;
    let mut n = Notification::new(tx, raw_type);
    n.receipt = text_field(F, "order_id", f.get("order_id"))?;
    if tx.is_money() && n.receipt.is_none() {
        return Err(missing(F, "order_id", "the order ID"));
    }
    if tx == TxType::Rebill {
        // The payment's own transaction ID, else its number.
        n.sequence = text_field(F, "transaction_id", f.get("transaction_id"))?
            .or_else(|| seq_text.map(str::to_string));
    }
    // Not confirmed from Digistore24's public documentation beyond its
    // field list: test orders say so in `mode` (`live` / `test`).
    n.test = f
        .text("mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("test"));
    let fields: Vec<&str> = match &settings.click_id_field {
        Some(c) => vec![c.as_str()],
        None => CLICK_FIELDS.to_vec(),
    };
    n.click_ids.extend(
        fields
            .iter()
            .find_map(|k| f.text(k))
            .and_then(click_candidate),
    );
    n.amount = chosen_amount(
        F,
        settings.amount,
        ("amount_affiliate", "amount_brutto"),
        tx,
        |k| f.text(k).map(str::to_string),
    )?;
    n.currency = currency_field(F, "currency", f.get("currency"))?;
    n.country = text_field(F, "address_country", f.get("address_country"))?;
    n.state = text_field(F, "address_state", f.get("address_state"))?;
    n.city = text_field(F, "address_city", f.get("address_city"))?;
    n.zip = text_field(F, "address_zipcode", f.get("address_zipcode"))?;
    for (k, name) in [
        ("product_id", "digistore24_product"),
        ("transaction_id", "digistore24_transaction"),
    ] {
        if let Some(v) = text_field(F, k, f.get(k))? {
            n.extra.push((name.to_string(), v));
        }
    }
    Ok(n)
}

pub fn sample(settings: &Settings, s: &Sample) -> Vec<u8> {
    let (event, seq) = match s.tx_type {
        TxType::Sale => ("on_payment", "1"),
        TxType::Rebill => ("on_payment", "2"),
        TxType::Refund => ("on_refund", "1"),
        TxType::Chargeback => ("on_chargeback", "1"),
        TxType::Other => ("connection_test", ""),
    };
    let click_field = settings.click_id_field.as_deref().unwrap_or("cid");
    let click = s.click_id.clone().unwrap_or_default();
    let txid = format!("{}-{}", s.receipt, s.sequence);
    let mode = if s.test { "test" } else { "live" };
    let mut pairs: Vec<(&str, &str)> = vec![
        ("event", event),
        ("api_mode", "production"),
        ("mode", mode),
        ("order_id", &s.receipt),
        ("transaction_id", &txid),
        ("pay_sequence_no", seq),
        ("amount_affiliate", &s.amount),
        ("amount_brutto", &s.amount),
        ("currency", "EUR"),
        ("address_country", "DE"),
        ("address_zipcode", "10115"),
        ("product_id", "12345"),
        (click_field, &click),
    ];
    let sig = sha_sign(pairs.iter().copied(), &settings.secret);
    pairs.push(("sha_sign", &sig));
    form(&pairs)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::inbound::ipn::{Auth, decode as decode_any};

    fn settings(secret: &str) -> Settings {
        crate::inbound::ipn::test_settings(F, secret)
    }

    #[test]
    fn published_vector_verifies() {
        let all: Value =
            serde_json::from_str(include_str!("../../../tests/data/ipn_vectors.json")).unwrap();
        for v in all["digistore24"]["vectors"].as_array().unwrap() {
            let pass = v["passphrase"].as_str().unwrap();
            let pairs: Vec<(String, String)> = v["fields"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let got = sha_sign(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), pass);
            assert_eq!(got, v["sha_sign"].as_str().unwrap());
            let mut with: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            with.push(("sha_sign", v["sha_sign"].as_str().unwrap()));
            // Empty fields do not count.
            with.push(("empty", ""));
            let body = form(&with);
            let mut params = Vec::new();
            crate::inbound::query::parse_form(&body, &Limits::default(), &mut params).unwrap();
            authenticate(&params, pass).unwrap();
            assert_eq!(authenticate(&params, "x").unwrap_err(), bad_signature(F));
        }
    }

    #[test]
    fn connection_test_and_rebill() {
        let s = settings("pass");
        let body = form(&[
            ("event", "connection_test"),
            (
                "sha_sign",
                &sha_sign([("event", "connection_test")], "pass"),
            ),
        ]);
        let req = Request {
            content_type: None,
            body: &body,
        };
        let n = decode_any(&req, &s, &Limits::default(), Auth::Verify).unwrap();
        assert_eq!(n.tx_type, TxType::Other);
        let fields = [
            ("event", "on_payment"),
            ("order_id", "O1"),
            ("transaction_id", "T2"),
            ("pay_sequence_no", "2"),
            ("amount_brutto", "9.99"),
            ("trackingkey", "CLICK1"),
        ];
        let sig = sha_sign(fields, "pass");
        let mut with = fields.to_vec();
        with.push(("sha_sign", &sig));
        let body = form(&with);
        let req = Request {
            content_type: None,
            body: &body,
        };
        let n = decode_any(&req, &s, &Limits::default(), Auth::Verify).unwrap();
        assert_eq!(n.tx_type, TxType::Rebill);
        assert_eq!(n.sequence.as_deref(), Some("T2"));
        assert_eq!(n.click_ids, vec!["click1".to_string()]);
        assert_eq!(n.amount.unwrap().to_string(), "9.99");
    }
}
