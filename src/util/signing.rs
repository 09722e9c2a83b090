//! Signed postbacks (pure: no I/O, no clock; time is passed in).
//!
//! - GET: the sender appends `ts` (Unix seconds) and, last, `sig` = lowercase
//!   hex HMAC-SHA256(secret, the exact path and query as sent, up to but
//!   excluding `&sig=`).
//! - POST: Standard Webhooks headers: `webhook-id`, `webhook-timestamp`,
//!   `webhook-signature: v1,<base64>` over `id.timestamp.body`.
//!
//! Secrets have the Standard Webhooks form `whsec_<base64>`; the HMAC key is
//! the decoded bytes. Several secrets may be active (rotation). Comparison is
//! constant-time (`Mac::verify_slice`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Default timestamp tolerance, seconds.
pub const DEFAULT_TOLERANCE_S: u64 = 300;

/// Why a signature was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigError {
    /// No signature where one is required.
    Missing(&'static str),
    /// Present but wrong, or malformed.
    Bad(&'static str),
    /// The timestamp is outside the tolerance.
    Stale { ts: i64, now: i64, tolerance_s: u64 },
}

impl SigError {
    /// The contract's error code.
    pub fn code(&self) -> &'static str {
        match self {
            SigError::Stale { .. } => "stale_signature",
            _ => "bad_signature",
        }
    }

    /// A sentence naming the fix (never containing a secret).
    pub fn message(&self) -> String {
        match self {
            SigError::Missing(what) => format!(
                "this source requires signed postbacks: {what}; see the README's signing section"
            ),
            SigError::Bad(what) => format!(
                "the signature does not verify: {what}; sign with the source's current secret, \
                 over the exact path and query as sent"
            ),
            SigError::Stale {
                ts,
                now,
                tolerance_s,
            } => format!(
                "the signature timestamp {ts} is {}s away from the server's clock ({now}); the \
                 tolerance is {tolerance_s}s: sign with the current time and check the sender's clock",
                now.abs_diff(*ts)
            ),
        }
    }
}

/// A verified signature: what replay detection remembers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The signed timestamp (Unix seconds).
    pub ts: i64,
    /// The signature bytes (32 for HMAC-SHA256).
    pub sig: Vec<u8>,
}

/// Decode a `whsec_<base64>` secret into HMAC key bytes.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or_else(|| "a secret has the form whsec_<base64>".to_string())?;
    let key = B64
        .decode(b64)
        .map_err(|_| "the part after whsec_ is not valid base64".to_string())?;
    if key.len() < 16 {
        return Err(
            "a secret needs at least 16 bytes of key material (24 base64 characters)".into(),
        );
    }
    if key.len() > 128 {
        return Err("a secret has at most 128 bytes of key material".into());
    }
    Ok(key)
}

/// A new random secret (32 bytes).
pub fn generate_secret() -> String {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("OS random number generator unavailable");
    format!("{SECRET_PREFIX}{}", B64.encode(key))
}

/// A signing secret for display: the prefix and 4 characters, never the key.
pub fn mask(secret: &str) -> String {
    mask_after(secret, SECRET_PREFIX.len() + 4)
}

/// Any secret for display: its first `shown` characters and an ellipsis
/// (enough to tell two apart, never enough to use).
pub fn mask_after(secret: &str, shown: usize) -> String {
    let shown: String = secret.chars().take(shown).collect();
    format!("{shown}…")
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; decode_secret bounds them anyway.
    HmacSha256::new_from_slice(key).expect("HMAC takes keys of any size")
}

/// Lowercase hex HMAC-SHA256 of `msg` (what a GET sender computes).
pub fn sign_hex(key: &[u8], msg: &[u8]) -> String {
    let mut m = mac(key);
    m.update(msg);
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The Standard Webhooks `webhook-signature` value (`v1,<base64>`) for a
/// message (what a POST sender computes, and what outgoing webhooks send).
pub fn sign_webhook(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut m = mac(key);
    m.update(format!("{id}.{timestamp}.").as_bytes());
    m.update(body);
    format!("v1,{}", B64.encode(m.finalize().into_bytes()))
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn check_time(ts: i64, now: i64, tolerance_s: u64) -> Result<(), SigError> {
    if now.abs_diff(ts) > tolerance_s {
        return Err(SigError::Stale {
            ts,
            now,
            tolerance_s,
        });
    }
    Ok(())
}

/// Verify a signed GET. `path_and_query` is the request target exactly as
/// sent (`/p/KEY?click_id=abc&ts=1700000000&sig=…`).
pub fn verify_get(
    path_and_query: &str,
    keys: &[Vec<u8>],
    now: i64,
    tolerance_s: u64,
) -> Result<Verified, SigError> {
    let Some(at) = path_and_query.rfind("&sig=") else {
        return Err(SigError::Missing(
            "append ts=<unix seconds> and, last, sig=<hex HMAC-SHA256>",
        ));
    };
    let (msg, rest) = path_and_query.split_at(at);
    let sig_hex = &rest["&sig=".len()..];
    if sig_hex.contains('&') {
        return Err(SigError::Bad("sig must be the last parameter"));
    }
    let sig = hex_decode(sig_hex)
        .filter(|s| s.len() == 32)
        .ok_or(SigError::Bad("sig must be 64 lowercase hex characters"))?;
    let query = msg.split_once('?').map_or("", |(_, q)| q);
    let mut ts: Option<&str> = None;
    for pair in query.split('&') {
        if let Some(v) = pair.strip_prefix("ts=") {
            if ts.is_some() {
                return Err(SigError::Bad("ts is given twice"));
            }
            ts = Some(v);
        }
    }
    let ts: i64 = ts
        .ok_or(SigError::Missing(
            "the signed query has no ts=<unix seconds>",
        ))?
        .parse()
        .map_err(|_| SigError::Bad("ts must be Unix seconds"))?;
    // The signature is checked before the time, so a stale answer is only
    // ever given to someone who holds the secret.
    verify_any(keys, msg.as_bytes(), &[], &sig)?;
    check_time(ts, now, tolerance_s)?;
    Ok(Verified { ts, sig })
}

/// Verify Standard Webhooks headers over `id.timestamp.body`.
pub fn verify_webhook(
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    keys: &[Vec<u8>],
    now: i64,
    tolerance_s: u64,
) -> Result<Verified, SigError> {
    let (Some(id), Some(timestamp), Some(signature)) = (id, timestamp, signature) else {
        return Err(SigError::Missing(
            "send webhook-id, webhook-timestamp and webhook-signature headers (Standard Webhooks)",
        ));
    };
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SigError::Bad("webhook-timestamp must be Unix seconds"))?;
    let prefix = format!("{id}.{timestamp}.");
    // Several space-separated `v1,<base64>` signatures may be sent (the
    // sender's own rotation); any one valid is enough.
    for candidate in signature.split(' ') {
        let Some(b64) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(sig) = B64.decode(b64) else { continue };
        if verify_any(keys, prefix.as_bytes(), body, &sig).is_ok() {
            check_time(ts, now, tolerance_s)?;
            return Ok(Verified { ts, sig });
        }
    }
    Err(SigError::Bad(
        "no v1 signature in webhook-signature matches",
    ))
}

fn verify_any(keys: &[Vec<u8>], a: &[u8], b: &[u8], sig: &[u8]) -> Result<(), SigError> {
    let mut ok = false;
    // Every key is tried (no early exit), so timing does not reveal which
    // one matched.
    for k in keys {
        let mut m = mac(k);
        m.update(a);
        m.update(b);
        ok |= m.verify_slice(sig).is_ok();
    }
    if ok {
        Ok(())
    } else {
        Err(SigError::Bad("no active secret produces this signature"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Vec<u8> {
        decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    }

    #[test]
    fn get_round_trip_and_tamper() {
        let msg = "/p/KEY?click_id=abc&amount=10&ts=1700000000";
        let sig = sign_hex(&key(), msg.as_bytes());
        let url = format!("{msg}&sig={sig}");
        let v = verify_get(&url, &[key()], 1_700_000_100, 300).unwrap();
        assert_eq!(v.ts, 1_700_000_000);
        let tampered = url.replace("amount=10", "amount=99");
        assert_eq!(
            verify_get(&tampered, &[key()], 1_700_000_100, 300)
                .unwrap_err()
                .code(),
            "bad_signature"
        );
        assert_eq!(
            verify_get(&url, &[key()], 1_700_000_301, 300)
                .unwrap_err()
                .code(),
            "stale_signature"
        );
        assert_eq!(
            verify_get(&url, &[key()], 1_699_999_699, 300)
                .unwrap_err()
                .code(),
            "stale_signature"
        );
        let other = decode_secret(&generate_secret()).unwrap();
        assert!(verify_get(&url, std::slice::from_ref(&other), 1_700_000_000, 300).is_err());
        // Rotation: either secret verifies.
        assert!(verify_get(&url, &[other, key()], 1_700_000_000, 300).is_ok());
    }

    #[test]
    fn get_shape_errors() {
        assert!(matches!(
            verify_get("/p/K?a=1", &[key()], 0, 300),
            Err(SigError::Missing(_))
        ));
        assert!(matches!(
            verify_get("/p/K?a=1&sig=zz", &[key()], 0, 300),
            Err(SigError::Bad(_))
        ));
        let msg = "/p/K?a=1";
        let sig = sign_hex(&key(), msg.as_bytes());
        assert!(matches!(
            verify_get(&format!("{msg}&sig={sig}"), &[key()], 0, 300),
            Err(SigError::Missing(_))
        ));
        assert!(matches!(
            verify_get(&format!("{msg}&ts=1&sig={sig}&x=1"), &[key()], 0, 300),
            Err(SigError::Bad(_))
        ));
    }

    #[test]
    fn standard_webhooks_vector() {
        // The public vector is vendored in tests/data (its `source` says where from).
        let raw = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/standard_webhooks.json"
        ))
        .expect("tests/data/standard_webhooks.json");
        let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let k = decode_secret(v["secret"].as_str().unwrap()).unwrap();
        let ts: i64 = v["timestamp"].as_str().unwrap().parse().unwrap();
        let ok = verify_webhook(
            v["id"].as_str(),
            v["timestamp"].as_str(),
            v["signature"].as_str(),
            v["payload"].as_str().unwrap().as_bytes(),
            std::slice::from_ref(&k),
            ts,
            300,
        );
        assert!(ok.is_ok(), "{ok:?}");
        let sig = sign_webhook(
            &k,
            v["id"].as_str().unwrap(),
            ts,
            v["payload"].as_str().unwrap().as_bytes(),
        );
        assert_eq!(sig, v["signature"].as_str().unwrap());
        let bad = verify_webhook(
            v["id"].as_str(),
            v["timestamp"].as_str(),
            v["must_fail"].as_str(),
            v["payload"].as_str().unwrap().as_bytes(),
            &[k],
            ts,
            300,
        );
        assert!(bad.is_err());
    }

    #[test]
    fn secrets() {
        assert!(decode_secret("nope").is_err());
        assert!(decode_secret("whsec_!!!").is_err());
        assert!(decode_secret("whsec_c2hvcnQ=").is_err(), "too short");
        let s = generate_secret();
        assert_eq!(decode_secret(&s).unwrap().len(), 32);
        assert!(!mask(&s).contains(&s[10..]));
    }
}
