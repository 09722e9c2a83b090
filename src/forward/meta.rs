//! Meta Conversions API customer information: normalization and SHA-256
//! hashing (pure).
//!
//! Meta matches on the SHA-256 of the *normalized* value, so formatting
//! matters as much as hashing. The rules follow Meta's "Customer Information
//! Parameters" page
//! (<https://developers.facebook.com/documentation/ads-commerce/conversions-api/parameters/customer-information-parameters>)
//! and Meta's own Business SDK (`facebook-python-business-sdk`,
//! `facebook_business/adobjects/serverside/normalize.py`), and are checked
//! against `tests/data/meta_capi_normalization.json`:
//!
//! | field | normalization |
//! |---|---|
//! | `em` | trim, lowercase; refused unless `local@domain.tld` |
//! | `ph` | digits only (drops `+`, spaces, `-`, `()`), leading zeros removed; the country code must already be there |
//! | `fn`, `ln` | trim, lowercase (UTF-8 kept) |
//! | `ge` | `f` or `m` (first letter of `female`/`male`) |
//! | `db` | `YYYYMMDD` (separators such as `-`, `/`, `.` dropped) |
//! | `ct`, `st` | lowercase, digits, spaces, `.`, `-`, `(`, `)` removed |
//! | `zp` | lowercase, spaces removed, cut at the first `-` (US ZIP+4 → 5 digits) |
//! | `country` | lowercase ISO 3166-1 alpha-2 (`a-z` only, exactly 2 letters) |
//! | `currency` | lowercase ISO 4217 (`a-z` only, exactly 3 letters); not hashed by CAPI, kept for the test vectors |
//! | `external_id` | trim, lowercase |
//!
//! A value that already is a lowercase SHA-256 hex digest (64 hex
//! characters) is passed through unchanged, as Meta's SDKs do.
//!
//! Not confirmed from Meta's docs and therefore not done: mapping US state
//! names to their 2-letter codes (`st` expects `wa`, not `washington`),
//! adding a missing phone country code, reordering non-ISO birth dates.

use sha2::{Digest, Sha256};

/// Fields [`normalize`] knows.
pub const FIELDS: &[&str] = &[
    "em",
    "ph",
    "fn",
    "ln",
    "ge",
    "db",
    "ct",
    "st",
    "zp",
    "country",
    "currency",
    "external_id",
];

/// Normalize `value` for the Meta user-data `field` (`em`, `ph`, `fn`, `ln`,
/// `ge`, `db`, `ct`, `st`, `zp`, `country`, `currency`, `external_id`).
/// `None` when the field is unknown or the value is empty or unusable (a
/// malformed email, a country that is not two letters...): such values are
/// left out rather than sent wrong.
pub fn normalize(field: &str, value: &str) -> Option<String> {
    let v = value.trim().to_lowercase();
    if v.is_empty() {
        return None;
    }
    if !FIELDS.contains(&field) {
        return None;
    }
    if is_sha256_hex(&v) && field != "currency" && field != "country" {
        return Some(v);
    }
    let out = match field {
        "em" => valid_email(&v).then_some(v)?,
        "ph" => {
            let digits: String = v.chars().filter(char::is_ascii_digit).collect();
            let digits = digits.trim_start_matches('0');
            // E.164 numbers have at most 15 digits; anything much shorter
            // than a subscriber number is noise.
            if !(7..=15).contains(&digits.len()) {
                return None;
            }
            digits.to_string()
        }
        "fn" | "ln" | "external_id" => v,
        "ge" => match v.chars().next()? {
            c @ ('f' | 'm') => c.to_string(),
            _ => return None,
        },
        "db" => {
            let digits: String = v.chars().filter(char::is_ascii_digit).collect();
            let separators_ok = v
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '-' | '/' | '.' | ' '));
            if digits.len() != 8 || !separators_ok {
                return None;
            }
            let year: u32 = digits[..4].parse().ok()?;
            let month: u32 = digits[4..6].parse().ok()?;
            let day: u32 = digits[6..].parse().ok()?;
            if !(1900..=2100).contains(&year)
                || !(1..=12).contains(&month)
                || !(1..=31).contains(&day)
            {
                return None;
            }
            digits
        }
        "ct" | "st" => v
            .chars()
            .filter(|c| {
                !(c.is_ascii_digit() || c.is_whitespace() || matches!(c, '.' | '-' | '(' | ')'))
            })
            .collect(),
        "zp" => {
            let no_space: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            no_space.split('-').next().unwrap_or_default().to_string()
        }
        "country" | "currency" => {
            let letters: String = v.chars().filter(char::is_ascii_lowercase).collect();
            let want = if field == "country" { 2 } else { 3 };
            if letters.len() != want {
                return None;
            }
            letters
        }
        _ => return None,
    };
    (!out.is_empty()).then_some(out)
}

/// SHA-256 (lowercase hex) of the normalized value; `None` when
/// [`normalize`] refuses it. An already hashed value is returned as is.
pub fn hash(field: &str, value: &str) -> Option<String> {
    let n = normalize(field, value)?;
    if is_sha256_hex(&n) {
        return Some(n);
    }
    Some(sha256_hex(n.as_bytes()))
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `local@domain.tld`, no spaces, one `@` (the shape Meta's SDK accepts:
/// `^[a-z0-9_.+-]+@[a-z0-9-]+\.[a-z0-9-.]+$`, widened to UTF-8 letters).
fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain
            .split_once('.')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        && !domain.ends_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/meta_capi_normalization.json"
    ));

    fn vectors() -> serde_json::Value {
        serde_json::from_str(VECTORS).expect("meta_capi_normalization.json is JSON")
    }

    #[test]
    fn shared_normalize_vectors() {
        let v = vectors();
        let cases = v["normalize"].as_array().expect("normalize cases");
        assert!(!cases.is_empty());
        for c in cases {
            let field = c["field"].as_str().unwrap();
            let input = c["in"].as_str().unwrap();
            let out = c["out"].as_str().unwrap();
            assert_eq!(
                normalize(field, input).as_deref(),
                Some(out),
                "normalize({field:?}, {input:?})"
            );
        }
    }

    #[test]
    fn shared_hash_vectors() {
        let v = vectors();
        let cases = v["hash_of_normalized"].as_array().expect("hash cases");
        assert!(!cases.is_empty());
        for c in cases {
            let field = c["field"].as_str().unwrap();
            let normalized = c["normalized"].as_str().unwrap();
            let sha = c["sha256"].as_str().unwrap();
            assert_eq!(
                sha256_hex(normalized.as_bytes()),
                sha,
                "{field} {normalized}"
            );
            // Normalizing a normalized value changes nothing, so hash()
            // gives the same digest.
            assert_eq!(
                normalize(field, normalized).as_deref(),
                Some(normalized),
                "{field} {normalized} is a fixed point"
            );
            assert_eq!(hash(field, normalized).as_deref(), Some(sha), "{field}");
        }
    }

    #[test]
    fn hashing_goes_through_normalization() {
        assert_eq!(hash("em", "  Joe@Email.com "), hash("em", "joe@email.com"));
        assert_eq!(
            hash("em", "joe@email.com").as_deref(),
            Some("971fa2e631db2a508b3fc6ed98016d354e61ecf0d41268e8ab6396771233d293")
        );
        assert_eq!(hash("ph", "+1 (206) 206-2006"), hash("ph", "12062062006"));
    }

    #[test]
    fn refusals() {
        for (f, v) in [
            ("em", "not-an-email"),
            ("em", "a@b"),
            ("em", "a b@c.com"),
            ("em", "   "),
            ("ph", "12"),
            ("ph", "phone"),
            ("ge", "x"),
            ("db", "2000-13-01"),
            ("db", "01/02/2000"),
            ("db", "yesterday"),
            ("country", "USA"),
            ("currency", "EURO"),
            ("ct", "12345"),
            ("unknown", "x"),
        ] {
            assert_eq!(normalize(f, v), None, "{f} {v:?}");
        }
    }

    #[test]
    fn field_rules() {
        assert_eq!(normalize("ge", "Female").as_deref(), Some("f"));
        assert_eq!(normalize("ge", " M ").as_deref(), Some("m"));
        assert_eq!(normalize("db", "2000-01-01").as_deref(), Some("20000101"));
        assert_eq!(
            normalize("ph", "0044 20 7183 8750").as_deref(),
            Some("442071838750")
        );
        assert_eq!(normalize("st", "WA").as_deref(), Some("wa"));
        assert_eq!(normalize("fn", " Zoë ").as_deref(), Some("zoë"));
        assert_eq!(
            normalize("external_id", " User-7 ").as_deref(),
            Some("user-7")
        );
        let hashed = "971fa2e631db2a508b3fc6ed98016d354e61ecf0d41268e8ab6396771233d293";
        assert_eq!(hash("em", &hashed.to_uppercase()).as_deref(), Some(hashed));
    }
}
