//! Pure parsing of untrusted request parameters: query strings,
//! `application/x-www-form-urlencoded` bodies and JSON object bodies.
//!
//! No I/O, no clock. Output is an ordered list of `(name, value)` pairs;
//! duplicates are kept (the caller decides whether they conflict), and
//! invalid UTF-8 after percent-decoding is an error rather than a silent
//! replacement character: a mangled click ID would quietly never match.

use percent_encoding::percent_decode;

use crate::util::text::truncate;

/// Bounds that keep a hostile request from making us allocate without limit.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most parameters taken from one request (query and body together).
    pub max_params: usize,
    /// Longest parameter name, in bytes after decoding.
    pub max_name_len: usize,
    /// Longest parameter value, in bytes after decoding.
    pub max_value_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_params: 128,
            max_name_len: 128,
            max_value_len: 4096,
        }
    }
}

/// A parameter value: a string, or the JSON text of a non-scalar JSON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub value: String,
    /// The value was a JSON object or array (kept as compact JSON text).
    pub structured: bool,
}

/// Why a set of parameters could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A name or value is not valid UTF-8 once percent-decoded.
    InvalidUtf8 { name: String },
    /// More parameters than [`Limits::max_params`].
    TooManyParams { limit: usize },
    /// A name or value longer than its limit.
    TooLong { name: String, limit: usize },
    /// The body claims to be JSON but is not a JSON object.
    InvalidJson { detail: String },
}

/// Parse a query string or form body (`a=1&b=2`, `+` is a space).
pub fn parse_form(input: &[u8], limits: &Limits, out: &mut Vec<Param>) -> Result<(), ParseError> {
    for pair in input.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let name = decode_component(name).map_err(|_| ParseError::InvalidUtf8 {
            name: lossy_name(name),
        })?;
        // The name goes into the error message: bounded like the others
        // (it has not been checked against `max_name_len` yet).
        let value = decode_component(value).map_err(|_| ParseError::InvalidUtf8 {
            name: truncate(&name, 32).to_string(),
        })?;
        push(out, name, value, false, limits)?;
    }
    Ok(())
}

/// Parse a JSON object body. Top-level scalars become string values (numbers
/// keep their literal text, so `12.50` stays `12.50`); `null` is skipped;
/// nested objects and arrays are kept as compact JSON text, marked
/// `structured` so a canonical field can refuse them.
pub fn parse_json(input: &[u8], limits: &Limits, out: &mut Vec<Param>) -> Result<(), ParseError> {
    // serde_json's default recursion limit (128) bounds nesting depth.
    let JsonPairs(pairs) = serde_json::from_slice(input).map_err(|e| ParseError::InvalidJson {
        detail: e.to_string(),
    })?;
    for (name, value) in pairs {
        let (text, structured) = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => (s, false),
            serde_json::Value::Bool(b) => (b.to_string(), false),
            serde_json::Value::Number(n) => (n.to_string(), false),
            other @ (serde_json::Value::Array(_) | serde_json::Value::Object(_)) => {
                (other.to_string(), true)
            }
        };
        push(out, name, text, structured, limits)?;
    }
    Ok(())
}

/// A JSON object read as ordered pairs, so duplicate keys are seen (a plain
/// map would keep the last one silently).
struct JsonPairs(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for JsonPairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonPairs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<JsonPairs, A::Error> {
                let mut v = Vec::new();
                while let Some(pair) = m.next_entry()? {
                    v.push(pair);
                }
                Ok(JsonPairs(v))
            }
        }
        d.deserialize_map(V)
    }
}

fn push(
    out: &mut Vec<Param>,
    name: String,
    value: String,
    structured: bool,
    limits: &Limits,
) -> Result<(), ParseError> {
    if out.len() >= limits.max_params {
        return Err(ParseError::TooManyParams {
            limit: limits.max_params,
        });
    }
    if name.len() > limits.max_name_len {
        return Err(ParseError::TooLong {
            name: truncate(&name, 32).to_string(),
            limit: limits.max_name_len,
        });
    }
    if value.len() > limits.max_value_len {
        return Err(ParseError::TooLong {
            name,
            limit: limits.max_value_len,
        });
    }
    out.push(Param {
        name,
        value,
        structured,
    });
    Ok(())
}

/// Percent-decode one component, `+` meaning space, strictly UTF-8.
/// Malformed escapes (`%zz`, a trailing `%`) are kept literally, as
/// browsers and `form_urlencoded` do.
pub fn decode_component(raw: &[u8]) -> Result<String, std::string::FromUtf8Error> {
    if !raw.iter().any(|&b| b == b'+' || b == b'%') {
        return String::from_utf8(raw.to_vec());
    }
    let replaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    String::from_utf8(percent_decode(&replaced).collect())
}

fn lossy_name(raw: &[u8]) -> String {
    truncate(&String::from_utf8_lossy(raw), 32).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(s: &str) -> Result<Vec<(String, String)>, ParseError> {
        let mut out = Vec::new();
        parse_form(s.as_bytes(), &Limits::default(), &mut out)?;
        Ok(out.into_iter().map(|p| (p.name, p.value)).collect())
    }

    #[test]
    fn form_decodes_plus_and_percent() {
        assert_eq!(
            form("a=1+2&b=%7Bx%7D&c&&d=").unwrap(),
            vec![
                ("a".into(), "1 2".into()),
                ("b".into(), "{x}".into()),
                ("c".into(), "".into()),
                ("d".into(), "".into())
            ]
        );
    }

    #[test]
    fn form_keeps_duplicates_in_order() {
        assert_eq!(form("a=1&a=2").unwrap().len(), 2);
    }

    #[test]
    fn malformed_escapes_stay_literal() {
        assert_eq!(form("a=%zz%").unwrap(), vec![("a".into(), "%zz%".into())]);
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_replacement() {
        assert_eq!(
            form("click_id=%ff"),
            Err(ParseError::InvalidUtf8 {
                name: "click_id".into()
            })
        );
        // overlong encoding of '/'
        assert!(form("a=%c0%af").is_err());
    }

    /// Found by `fuzz/fuzz_targets/query_form.rs`: a long name before an
    /// invalid value was echoed whole (up to the 64 KiB body) in the
    /// `invalid_encoding` message and the events log.
    #[test]
    fn regression_invalid_utf8_error_name_is_bounded() {
        let q = format!("{}=%d3", "n".repeat(10_000));
        match form(&q) {
            Err(ParseError::InvalidUtf8 { name }) => assert_eq!(name, "n".repeat(32)),
            other => panic!("{other:?}"),
        }
        // Cut on a character boundary.
        let q = format!("{}=%ff", "é".repeat(40));
        match form(&q) {
            Err(ParseError::InvalidUtf8 { name }) => assert_eq!(name, "é".repeat(16)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limits_hold() {
        let many = (0..200)
            .map(|i| format!("p{i}=1"))
            .collect::<Vec<_>>()
            .join("&");
        assert!(matches!(form(&many), Err(ParseError::TooManyParams { .. })));
        let long = format!("a={}", "x".repeat(5000));
        assert!(matches!(form(&long), Err(ParseError::TooLong { .. })));
    }

    #[test]
    fn json_scalars_and_structures() {
        let mut out = Vec::new();
        parse_json(
            br#"{"click_id":"abc","amount":12.50,"ok":true,"n":null,"x":{"a":1}}"#,
            &Limits::default(),
            &mut out,
        )
        .unwrap();
        let got: Vec<_> = out
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str(), p.structured))
            .collect();
        assert_eq!(
            got,
            vec![
                ("click_id", "abc", false),
                ("amount", "12.50", false),
                ("ok", "true", false),
                ("x", r#"{"a":1}"#, true)
            ]
        );
        assert!(parse_json(b"[1,2]", &Limits::default(), &mut out).is_err());
        out.clear();
        parse_json(br#"{"a":1,"a":2}"#, &Limits::default(), &mut out).unwrap();
        assert_eq!(out.len(), 2, "duplicate JSON keys are kept, not collapsed");
    }
}
