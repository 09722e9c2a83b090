//! ClickBank Instant Notification Service (INS) v6+: a JSON envelope
//! `{"notification": base64, "iv": base64}` whose notification is
//! AES-256-CBC (PKCS#7) with key = the ASCII of the first 32 hex characters
//! of SHA-1(secret key), decrypting to the notification's JSON.
//!
//! There is no MAC: authenticity is "decrypts, unpads and is a JSON object
//! under our key". Every failure past the envelope is the one uniform
//! `bad_signature` (no padding oracle).

use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use sha1::{Digest, Sha1};

use super::{
    Format, Notification, Rejection, Request, Sample, Settings, TxType, bad_signature,
    chosen_amount, click_candidate, currency_field, missing, text_field, unknown_type,
};
use crate::inbound::query::Limits;

type Decryptor = cbc::Decryptor<aes::Aes256>;
type Encryptor = cbc::Encryptor<aes::Aes256>;

const F: Format = Format::ClickBank;

/// The AES key: the first 32 characters of the lowercase hex SHA-1 of the
/// secret key, as ASCII bytes (ClickBank's own sample code).
pub fn derive_key(secret: &str) -> [u8; 32] {
    let digest = Sha1::digest(secret.as_bytes());
    let mut hex = [0u8; 40];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in digest.iter().enumerate() {
        hex[2 * i] = HEX[usize::from(b >> 4)];
        hex[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&hex[..32]);
    key
}

fn envelope_error(why: &str) -> Rejection {
    Rejection::new(
        "invalid_body",
        None,
        format!(
            "the body is not a ClickBank INS v6 envelope ({why}); set the INS version to 6.0 or \
             later in ClickBank (Account Settings > My Site > Advanced Tools) and point it at \
             this URL unchanged"
        ),
    )
}

/// Decrypt a notification to its JSON text, or the uniform refusal.
pub fn decrypt(body: &[u8], secret: &str) -> Result<String, Rejection> {
    let env: Value = serde_json::from_slice(body).map_err(|_| envelope_error("not JSON"))?;
    let field = |name: &str| {
        env.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| envelope_error("no `notification` and `iv` strings"))
    };
    let (ct_b64, iv_b64) = (field("notification")?, field("iv")?);
    let ct = B64
        .decode(ct_b64.trim())
        .map_err(|_| envelope_error("`notification` is not base64"))?;
    let iv = B64
        .decode(iv_b64.trim())
        .map_err(|_| envelope_error("`iv` is not base64"))?;
    // Shape checks that do not depend on the key are not an oracle.
    if iv.len() != 16 {
        return Err(envelope_error("`iv` is not 16 bytes"));
    }
    if ct.is_empty() || ct.len() % 16 != 0 {
        return Err(envelope_error("`notification` is not whole AES blocks"));
    }
    let key = derive_key(secret);
    let dec = Decryptor::new_from_slices(&key, &iv).map_err(|_| bad_signature(F))?;
    // From here on every failure (padding, UTF-8, JSON) is one answer,
    // reached after the whole ciphertext was decrypted.
    let plain = dec.decrypt_padded_vec::<Pkcs7>(&ct).ok();
    let text = plain.and_then(|p| String::from_utf8(p).ok());
    match text {
        Some(t) if serde_json::from_str::<Value>(&t).is_ok_and(|v| v.is_object()) => Ok(t),
        _ => Err(bad_signature(F)),
    }
}

fn tx_type(t: &str) -> Option<(TxType, bool)> {
    Some(match t {
        "SALE" => (TxType::Sale, false),
        "BILL" => (TxType::Rebill, false),
        "RFND" => (TxType::Refund, false),
        "CGBK" => (TxType::Chargeback, false),
        // ClickBank's "Test" button sends TEST: a test sale.
        "TEST" | "TEST_SALE" => (TxType::Sale, true),
        "TEST_BILL" => (TxType::Rebill, true),
        "TEST_RFND" => (TxType::Refund, true),
        // A failed rebill (insufficient funds), subscription changes and
        // abandoned carts move no money.
        "INSF" | "CANCEL-REBILL" | "UNCANCEL-REBILL" | "ABANDONED_ORDER" => (TxType::Other, false),
        _ => return None,
    })
}

/// The literal text of a JSON scalar (numbers keep their digits).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn decode(
    req: &Request<'_>,
    settings: &Settings,
    _limits: &Limits,
) -> Result<Notification, Rejection> {
    let text = decrypt(req.body, &settings.secret)?;
    let json: Value = serde_json::from_str(&text).map_err(|_| bad_signature(F))?;
    let raw_type = json
        .get("transactionType")
        .and_then(Value::as_str)
        .ok_or_else(|| missing(F, "transactionType", "what happened"))?;
    let (tx, test) =
        tx_type(raw_type).ok_or_else(|| unknown_type(F, "transactionType", raw_type))?;
    let mut n = Notification::new(tx, raw_type);
    n.test = test;
    n.receipt = text_field(F, "receipt", json.get("receipt").and_then(Value::as_str))?;
    if tx.is_money() && n.receipt.is_none() {
        return Err(missing(F, "receipt", "the order's receipt number"));
    }
    if tx == TxType::Rebill {
        // Every payment of one subscription shares the receipt; the
        // transaction time tells them apart (and is the same on a retry).
        n.sequence = text_field(
            F,
            "transactionTime",
            json.get("transactionTime").and_then(Value::as_str),
        )?;
        if n.sequence.is_none() {
            return Err(missing(
                F,
                "transactionTime",
                "which payment of the subscription",
            ));
        }
    }
    // trackingCodes: the hoplink's tid, in order; or a configured field
    // (top level, else in vendorVariables).
    match &settings.click_id_field {
        Some(f) => {
            let v = json
                .get(f)
                .or_else(|| json.get("vendorVariables").and_then(|vv| vv.get(f)))
                .and_then(scalar);
            n.click_ids.extend(v.as_deref().and_then(click_candidate));
        }
        None => {
            if let Some(codes) = json.get("trackingCodes").and_then(Value::as_array) {
                n.click_ids.extend(
                    codes
                        .iter()
                        .filter_map(Value::as_str)
                        .filter_map(click_candidate),
                );
            }
        }
    }
    n.amount = chosen_amount(
        F,
        settings.amount,
        ("totalAccountAmount", "totalOrderAmount"),
        tx,
        |k| json.get(k).and_then(scalar),
    )?;
    n.currency = currency_field(F, "currency", json.get("currency").and_then(Value::as_str))?;
    let address = json
        .pointer("/customer/billing/address")
        .or_else(|| json.pointer("/customer/shipping/address"));
    let addr = |k: &str| address.and_then(|a| a.get(k)).and_then(Value::as_str);
    n.country = text_field(F, "country", addr("country"))?;
    n.state = text_field(F, "state", addr("state"))?;
    n.city = text_field(F, "city", addr("city"))?;
    n.zip = text_field(F, "postalCode", addr("postalCode"))?;
    for (k, name) in [("vendor", "clickbank_vendor"), ("role", "clickbank_role")] {
        if let Some(v) = text_field(F, k, json.get(k).and_then(Value::as_str))? {
            n.extra.push((name.to_string(), v));
        }
    }
    n.plaintext = Some(text);
    Ok(n)
}

/// Encrypt a notification JSON as ClickBank does (tests, `test-ipn`).
pub fn encrypt(plaintext: &str, secret: &str, iv: &[u8; 16]) -> Vec<u8> {
    let key = derive_key(secret);
    let enc = Encryptor::new(&key.into(), &(*iv).into());
    let ct = enc.encrypt_padded_vec::<Pkcs7>(plaintext.as_bytes());
    serde_json::to_vec(&serde_json::json!({
        "notification": B64.encode(ct),
        "iv": B64.encode(iv),
    }))
    .unwrap_or_default()
}

pub fn sample(settings: &Settings, s: &Sample) -> Vec<u8> {
    let word = match (s.tx_type, s.test) {
        (TxType::Sale, false) => "SALE",
        (TxType::Sale, true) => "TEST_SALE",
        (TxType::Rebill, false) => "BILL",
        (TxType::Rebill, true) => "TEST_BILL",
        (TxType::Refund, false) => "RFND",
        (TxType::Refund, true) => "TEST_RFND",
        (TxType::Chargeback, _) => "CGBK",
        (TxType::Other, _) => "CANCEL-REBILL",
    };
    let amount: Value = serde_json::from_str(&s.amount).unwrap_or(Value::Null);
    let mut v = serde_json::json!({
        "transactionTime": s.sequence,
        "receipt": s.receipt,
        "transactionType": word,
        "vendor": "postbackdtest",
        "role": "AFFILIATE",
        "totalAccountAmount": amount,
        "totalOrderAmount": amount,
        "currency": "USD",
        "trackingCodes": s.click_id.iter().collect::<Vec<_>>(),
        "customer": {"billing": {"address": {"country": "US", "state": "NY", "postalCode": "12845"}}},
        "version": 6.0,
        "attemptCount": 1,
    });
    if let (Some(f), Some(c)) = (&settings.click_id_field, &s.click_id) {
        v["vendorVariables"] = serde_json::json!({ f.as_str(): c });
    }
    encrypt(&v.to_string(), &settings.secret, &s.iv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::ipn::AmountBasis;
    use crate::inbound::ipn::{Auth, decode as decode_any};

    fn vectors() -> Value {
        serde_json::from_str(include_str!("../../../tests/data/ipn_vectors.json")).unwrap()
    }

    fn settings(secret: &str) -> Settings {
        crate::inbound::ipn::test_settings(Format::ClickBank, secret)
    }

    #[test]
    fn the_published_vector_decrypts_exactly() {
        let v = &vectors()["clickbank_ins"];
        let secret = v["secret"].as_str().unwrap();
        assert_eq!(
            &derive_key(secret),
            v["derived_key_ascii"].as_str().unwrap().as_bytes()
        );
        let body = serde_json::to_vec(&v["body"]).unwrap();
        let plain = decrypt(&body, secret).unwrap();
        assert_eq!(plain, v["plaintext"].as_str().unwrap());
        let digest = sha2::Sha256::digest(plain.as_bytes());
        assert_eq!(
            super::super::hex_upper(&digest).to_ascii_lowercase(),
            v["plaintext_sha256"].as_str().unwrap()
        );

        let req = Request {
            content_type: Some("application/json"),
            body: &body,
        };
        let n = decode_any(&req, &settings(secret), &Limits::default(), Auth::Verify).unwrap();
        assert_eq!(n.tx_type, TxType::Sale);
        assert!(!n.test);
        assert_eq!(n.receipt.as_deref(), Some("AXN66NVG"));
        // No trackingCodes: the "no click ID" case.
        assert!(n.click_ids.is_empty());
        assert_eq!(n.amount.unwrap().to_string(), "6.79");
        assert_eq!(
            (n.country.as_deref(), n.state.as_deref(), n.zip.as_deref()),
            (Some("US"), Some("NY"), Some("12845"))
        );
        assert_eq!(n.plaintext.as_deref(), v["plaintext"].as_str());
        let mut order = settings(secret);
        order.amount = AmountBasis::Order;
        let n = decode_any(&req, &order, &Limits::default(), Auth::Verify).unwrap();
        assert_eq!(n.amount.unwrap().to_string(), "10.00");
    }

    #[test]
    fn wrong_key_tampering_and_non_json_plaintext_are_one_answer() {
        let v = &vectors()["clickbank_ins"];
        let body = serde_json::to_vec(&v["body"]).unwrap();
        let wrong = decrypt(&body, "NOTTHEKEY").unwrap_err();
        assert_eq!(wrong.code, "bad_signature");
        // Flip a byte of the last block (the padding) and of the first.
        let mut env = v["body"].clone();
        let mut ct = B64.decode(env["notification"].as_str().unwrap()).unwrap();
        let last = ct.len() - 1;
        ct[last] ^= 1;
        env["notification"] = Value::String(B64.encode(&ct));
        let pad = decrypt(&serde_json::to_vec(&env).unwrap(), "BEWAREOBLIVIONIS").unwrap_err();
        // Valid padding, non-JSON plaintext.
        let not_json = encrypt("hello", "BEWAREOBLIVIONIS", b"0123456789abcdef");
        let nj = decrypt(&not_json, "BEWAREOBLIVIONIS").unwrap_err();
        assert_eq!(pad, wrong);
        assert_eq!(nj, wrong);
    }

    #[test]
    fn sample_round_trips_with_tracking_codes() {
        let s = settings("SECRETKEY1");
        for (tx, test) in [
            (TxType::Sale, false),
            (TxType::Rebill, false),
            (TxType::Refund, true),
            (TxType::Chargeback, false),
            (TxType::Other, false),
        ] {
            let body = sample(
                &s,
                &Sample {
                    tx_type: tx,
                    test,
                    click_id: Some("ABC123".into()),
                    receipt: "R1".into(),
                    sequence: "2026-01-01T00:00:00Z".into(),
                    amount: "12.50".into(),
                    iv: *b"526AFD2AE8887CC2",
                },
            );
            let req = Request {
                content_type: None,
                body: &body,
            };
            let n = decode_any(&req, &s, &Limits::default(), Auth::Verify).unwrap();
            assert_eq!((n.tx_type, n.test), (tx, test));
            assert_eq!(n.click_ids, vec!["abc123".to_string()]);
            assert_eq!(n.amount.unwrap().to_string(), "12.50");
        }
    }
}
