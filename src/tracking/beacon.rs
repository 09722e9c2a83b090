//! The page tag's beacon (`POST /e/click`): a small JSON object from the
//! visitor's browser, so untrusted. Parsed into bounded fields or refused
//! with a stable code and a sentence; never a panic (fuzzed:
//! `fuzz/fuzz_targets/beacon.rs`).

use serde::Deserialize;

use super::click;
use crate::util::text::truncate;

/// Largest beacon body accepted (bytes).
pub const MAX_BEACON_BYTES: usize = 16 * 1024;
/// Longest landing URL accepted.
pub const MAX_URL: usize = 4096;
/// Longest referrer kept (longer ones are cut, like a redirect's).
pub const MAX_REFERRER: usize = 1024;
/// Longest `_fbc` / `_fbp` kept.
pub const MAX_COOKIE: usize = 256;

/// A beacon read successfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    /// The link's slug (`data-link` on the script tag); empty when the
    /// beacon names a source instead.
    pub link: String,
    /// A source ID (`data-source`): a click of no link, converting
    /// through that source.
    pub source: Option<u64>,
    /// The landing page's URL (`location.href`): its query holds the click
    /// parameters.
    pub url: Option<String>,
    /// `document.referrer`: where the visitor came from.
    pub referrer: Option<String>,
    pub fbc: Option<String>,
    pub fbp: Option<String>,
}

/// Why a beacon was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

#[derive(Deserialize)]
struct Raw {
    link: Option<String>,
    source: Option<serde_json::Value>,
    url: Option<String>,
    referrer: Option<String>,
    fbc: Option<String>,
    fbp: Option<String>,
}

/// An optional text field: empty is absent, control characters refused,
/// cut at `max` bytes (on a character boundary).
fn text(v: Option<String>, field: &str, max: usize) -> Result<Option<String>, Refusal> {
    match v {
        Some(s) if s.chars().any(char::is_control) => Err(refuse(
            "invalid_beacon",
            format!("`{field}` contains control characters"),
        )),
        Some(s) if s.trim().is_empty() => Ok(None),
        // Trimmed again after the cut: a cut can end inside inner spaces.
        Some(s) => Ok(Some(truncate(s.trim(), max).trim_end().to_string())),
        None => Ok(None),
    }
}

/// Parse a beacon body (JSON whatever its `Content-Type`: the tag sends
/// `text/plain` so the browser needs no preflight).
pub fn parse(body: &[u8]) -> Result<Beacon, Refusal> {
    if body.len() > MAX_BEACON_BYTES {
        return Err(refuse(
            "too_large",
            format!("the beacon is larger than {MAX_BEACON_BYTES} bytes"),
        ));
    }
    let raw: Raw = serde_json::from_slice(body).map_err(|e| {
        refuse(
            "invalid_json",
            format!(
                "the beacon is not a JSON object {{\"link\": \"SLUG\", \"url\": \"...\"}}: {e}"
            ),
        )
    })?;
    let source = match raw.source {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => None,
        Some(v) => {
            let n = match &v {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(s) => s.trim().parse::<u64>().ok(),
                _ => None,
            };
            Some(n.ok_or_else(|| {
                refuse(
                    "invalid_source",
                    "`source` must be a source's numeric ID (data-source=\"ID\" on the tag's script element)",
                )
            })?)
        }
    };
    let link = raw.link.unwrap_or_default();
    let link = link.trim();
    let slug_ok = !link.is_empty()
        && link.len() <= 64
        && link
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !(slug_ok || (link.is_empty() && source.is_some())) {
        return Err(refuse(
            "invalid_link",
            "`link` must be a tracking link's slug (set data-link=\"SLUG\" on the tag's script \
             element, or data-source=\"ID\" for a click of no link)",
        ));
    }
    let url = match raw.url {
        Some(u) if u.len() > MAX_URL => {
            return Err(refuse(
                "too_large",
                format!("`url` is longer than {MAX_URL} bytes"),
            ));
        }
        Some(u) if u.is_empty() => None,
        Some(u) => {
            if click::validate_destination(&u).is_err() {
                return Err(refuse(
                    "invalid_landing_url",
                    "`url` must be the landing page's absolute http(s) URL (location.href)",
                ));
            }
            Some(u)
        }
        None => None,
    };
    Ok(Beacon {
        link: link.to_string(),
        source,
        url,
        referrer: text(raw.referrer, "referrer", MAX_REFERRER)?,
        fbc: text(raw.fbc, "fbc", MAX_COOKIE)?,
        fbp: text(raw.fbp, "fbp", MAX_COOKIE)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_beacon() {
        let b = parse(
            br#"{"link":"spring","url":"https://lp.example/?gclid=G1&utm_source=fb","referrer":"https://www.google.com/","fbp":"fb.1.1.2","extra":1}"#,
        )
        .unwrap();
        assert_eq!(b.link, "spring");
        assert_eq!(
            b.url.as_deref(),
            Some("https://lp.example/?gclid=G1&utm_source=fb")
        );
        assert_eq!(b.referrer.as_deref(), Some("https://www.google.com/"));
        assert_eq!((b.fbp.as_deref(), b.fbc), (Some("fb.1.1.2"), None));
    }

    #[test]
    fn regression_a_cut_inside_inner_spaces_is_trimmed() {
        // Found by the beacon fuzz target: a cookie longer than the limit
        // whose cut fell inside a run of spaces kept them at its end.
        let fbc = format!("fb.1.{}{}tail", "7".repeat(200), " ".repeat(100));
        let body = format!(r#"{{"link":"spring","fbc":"{fbc}"}}"#);
        let b = parse(body.as_bytes()).unwrap();
        let got = b.fbc.unwrap();
        assert_eq!(got, format!("fb.1.{}", "7".repeat(200)));
        assert!(got.len() <= MAX_COOKIE);
    }

    #[test]
    fn refusals() {
        let code = |b: &[u8]| parse(b).unwrap_err().code;
        assert_eq!(code(b"not json"), "invalid_json");
        assert_eq!(code(b"[]"), "invalid_json");
        assert_eq!(code(br#"{"link":5}"#), "invalid_json");
        assert_eq!(code(br#"{}"#), "invalid_link");
        assert_eq!(code(br#"{"link":"a/b"}"#), "invalid_link");
        assert_eq!(code(br#"{"source":"x"}"#), "invalid_source");
        assert_eq!(code(br#"{"source":-1}"#), "invalid_source");
        assert_eq!(code(br#"{"source":""}"#), "invalid_link");
        assert_eq!(parse(br#"{"source":"7"}"#).unwrap().source, Some(7));
        assert_eq!(parse(br#"{"source":7}"#).unwrap().link, "");
        assert_eq!(
            code(br#"{"link":"a","url":"javascript:alert(1)"}"#),
            "invalid_landing_url"
        );
        assert_eq!(
            code(br#"{"link":"a","referrer":"x\u0000"}"#),
            "invalid_beacon"
        );
        let long = format!(
            r#"{{"link":"a","url":"https://a.b/?{}"}}"#,
            "x".repeat(MAX_URL)
        );
        assert_eq!(code(long.as_bytes()), "too_large");
        assert_eq!(code(&vec![b' '; MAX_BEACON_BYTES + 1]), "too_large");
    }

    #[test]
    fn long_referrer_is_cut_not_refused() {
        let body = format!(
            r#"{{"link":"a","referrer":"https://r.example/{}"}}"#,
            "é".repeat(900)
        );
        let b = parse(body.as_bytes()).unwrap();
        assert!(b.referrer.unwrap().len() <= MAX_REFERRER);
    }
}
