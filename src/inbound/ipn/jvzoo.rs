//! JVZoo JVZIPN: a form POST authenticated by `cverify`, the first 8
//! uppercase hex characters of SHA-1 over every other field's value in
//! bytewise key order, each followed by `|`, then the secret key.
//!
//! The click ID is `caffitid` (the `tid` of the affiliate link), the
//! receipt `ctransreceipt`, the amount `ctransamount` (JVZIPN carries no
//! separate commission, so both amount bases read it).

use sha1::{Digest, Sha1};

use super::{
    Fields, Format, Notification, Rejection, Request, Sample, Settings, TxType, amount_field,
    bad_signature, click_candidate, form, form_params, hex_upper, missing, secret_eq, text_field,
    unknown_type,
};
use crate::inbound::query::{Limits, Param};

const F: Format = Format::JvZoo;

/// `cverify` of a set of fields (every field but `cverify` itself).
pub fn cverify<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>, secret: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = fields
        .into_iter()
        .filter(|(k, _)| *k != "cverify")
        .collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut h = Sha1::new();
    for (_, v) in pairs {
        h.update(v.as_bytes());
        h.update(b"|");
    }
    h.update(secret.as_bytes());
    let mut hex = hex_upper(&h.finalize());
    hex.truncate(8);
    hex
}

fn authenticate(params: &[Param], secret: &str) -> Result<(), Rejection> {
    let fields = Fields { params };
    // A repeated field makes "the value" ambiguous: never authenticated.
    let given = fields.get("cverify").filter(|_| !fields.has_duplicates());
    let Some(given) = given else {
        return Err(bad_signature(F));
    };
    let want = cverify(
        params.iter().map(|p| (p.name.as_str(), p.value.as_str())),
        secret,
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

fn tx_type(t: &str) -> Option<TxType> {
    Some(match t {
        "SALE" => TxType::Sale,
        "BILL" => TxType::Rebill,
        "RFND" => TxType::Refund,
        "CGBK" => TxType::Chargeback,
        "INSF" | "CANCEL-REBILL" | "UNCANCEL-REBILL" => TxType::Other,
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
        .text("ctransaction")
        .ok_or_else(|| missing(F, "ctransaction", "what happened"))?;
    let tx = tx_type(raw_type).ok_or_else(|| unknown_type(F, "ctransaction", raw_type))?;
    let mut n = Notification::new(tx, raw_type);
    n.receipt = text_field(F, "ctransreceipt", f.get("ctransreceipt"))?;
    if tx.is_money() && n.receipt.is_none() {
        return Err(missing(F, "ctransreceipt", "the transaction receipt"));
    }
    // JVZoo's demo transaction ("Test IPN" in the product settings) has an
    // all-zero receipt; real receipts never are.
    n.test = n
        .receipt
        .as_deref()
        .is_some_and(|r| r.bytes().all(|b| b == b'0'));
    if tx == TxType::Rebill {
        n.sequence = text_field(F, "ctranstime", f.get("ctranstime"))?;
        if n.sequence.is_none() {
            return Err(missing(
                F,
                "ctranstime",
                "which payment of the subscription",
            ));
        }
    }
    let click_field = settings.click_id_field.as_deref().unwrap_or("caffitid");
    n.click_ids
        .extend(f.text(click_field).and_then(click_candidate));
    if let Some(a) = f.get("ctransamount") {
        n.amount = amount_field(F, "ctransamount", a, tx)?;
    }
    if matches!(tx, TxType::Sale | TxType::Rebill) && n.amount.is_none() {
        return Err(missing(F, "ctransamount", "the amount"));
    }
    n.country = text_field(F, "ccustcc", f.get("ccustcc"))?;
    n.state = text_field(F, "ccuststate", f.get("ccuststate"))?;
    for (k, name) in [
        ("cproditem", "jvzoo_product"),
        ("ctransvendor", "jvzoo_vendor"),
    ] {
        if let Some(v) = text_field(F, k, f.get(k))? {
            n.extra.push((name.to_string(), v));
        }
    }
    Ok(n)
}

pub fn sample(settings: &Settings, s: &Sample) -> Vec<u8> {
    let word = match s.tx_type {
        TxType::Sale => "SALE",
        TxType::Rebill => "BILL",
        TxType::Refund => "RFND",
        TxType::Chargeback => "CGBK",
        TxType::Other => "CANCEL-REBILL",
    };
    let receipt = if s.test {
        "0000000000000000".to_string()
    } else {
        s.receipt.clone()
    };
    let click_field = settings.click_id_field.as_deref().unwrap_or("caffitid");
    let click = s.click_id.clone().unwrap_or_default();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("ccustcc", "US"),
        ("ccustemail", "buyer@example.com"),
        ("ccustname", "Test Buyer"),
        ("ccuststate", "NY"),
        ("cproditem", "1"),
        ("cprodtitle", "postbackd test"),
        ("cprodtype", "STANDARD"),
        ("ctransaction", word),
        ("ctransaffiliate", "1"),
        ("ctransamount", &s.amount),
        ("ctranspaymentmethod", "PYPL"),
        ("ctransreceipt", &receipt),
        ("ctranstime", &s.sequence),
        ("ctransvendor", "1"),
        (click_field, &click),
    ];
    let sig = cverify(pairs.iter().copied(), &settings.secret);
    pairs.push(("cverify", &sig));
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

    fn field_pairs(v: &Value) -> Vec<(String, String)> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect()
    }

    #[test]
    fn published_vectors_verify() {
        let all: Value =
            serde_json::from_str(include_str!("../../../tests/data/ipn_vectors.json")).unwrap();
        let single: Value =
            serde_json::from_str(include_str!("../../../tests/data/jvzoo_ipn.json")).unwrap();
        let mut vectors: Vec<Value> = all["jvzoo_jvzipn"]["vectors"].as_array().unwrap().clone();
        vectors.push(single);
        for v in vectors {
            let secret = v["secret"].as_str().unwrap();
            let pairs = field_pairs(&v["fields"]);
            let got = cverify(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), secret);
            assert_eq!(got, v["cverify"].as_str().unwrap());
            // And through the decoder's authentication, as a posted form.
            let mut with_sig: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            with_sig.push(("cverify", v["cverify"].as_str().unwrap()));
            let body = form(&with_sig);
            let mut params = Vec::new();
            crate::inbound::query::parse_form(&body, &Limits::default(), &mut params).unwrap();
            authenticate(&params, secret).unwrap();
            assert_eq!(
                authenticate(&params, "wrong").unwrap_err().code,
                "bad_signature"
            );
        }
    }

    #[test]
    fn the_demo_transaction_decodes_as_a_test_sale() {
        let all: Value =
            serde_json::from_str(include_str!("../../../tests/data/ipn_vectors.json")).unwrap();
        let v = &all["jvzoo_jvzipn"]["vectors"][0];
        let pairs = field_pairs(&v["fields"]);
        let mut with_sig: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        with_sig.push(("cverify", v["cverify"].as_str().unwrap()));
        let body = form(&with_sig);
        let req = Request {
            content_type: Some("application/x-www-form-urlencoded"),
            body: &body,
        };
        let n = decode_any(&req, &settings("asdasd"), &Limits::default(), Auth::Verify).unwrap();
        assert_eq!((n.tx_type, n.test), (TxType::Sale, true));
        assert_eq!(n.receipt.as_deref(), Some("0000000000000000"));
        assert_eq!(n.click_ids, vec!["0".to_string()]);
        assert_eq!(n.amount.unwrap().to_string(), "0.0");
        assert_eq!(n.country.as_deref(), Some("GB"));
        // One changed value: refused, with the uniform answer.
        let tampered = String::from_utf8(body.clone())
            .unwrap()
            .replace("ctransamount=0.0", "ctransamount=99.0");
        let req = Request {
            content_type: None,
            body: tampered.as_bytes(),
        };
        let e = decode_any(&req, &settings("asdasd"), &Limits::default(), Auth::Verify);
        assert_eq!(e.unwrap_err(), bad_signature(F));
    }

    #[test]
    fn a_repeated_field_is_never_authentic() {
        let s = settings("k");
        let sig = cverify([("ctransaction", "SALE")], "k");
        let body = form(&[
            ("ctransaction", "SALE"),
            ("ctransaction", "RFND"),
            ("cverify", &sig),
        ]);
        let req = Request {
            content_type: None,
            body: &body,
        };
        let e = decode_any(&req, &s, &Limits::default(), Auth::Verify).unwrap_err();
        assert_eq!(e.code, "bad_signature");
    }
}
