//! Pure parts of the click path: destination validation, tracking-template
//! expansion ("AutoTag") and the Meta `fbc` value.
//!
//! The invariant that matters: the expanded URL has the same scheme, host
//! and port as the admin-configured destination, whatever the click's
//! parameters contain. Placeholders are refused in the authority, and every
//! substituted value is percent-encoded, so it cannot introduce `/`, `?`,
//! `#`, `@` or `\`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters encoded in substituted values: everything but RFC 3986's
/// unreserved set.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The AnyTrack-style click ID placeholder.
pub const CLICK_ID_DASHES: &str = "--CLICK-ID--";
/// The brace-style click ID placeholder.
pub const CLICK_ID_BRACES: &str = "{click_id}";
/// Longest destination template accepted.
pub const MAX_DESTINATION_LEN: usize = 2048;

/// Check an admin-supplied destination template. Returns a sentence naming
/// the fix on error.
pub fn validate_destination(dest: &str) -> Result<(), String> {
    if dest.len() > MAX_DESTINATION_LEN {
        return Err(format!(
            "destination is longer than {MAX_DESTINATION_LEN} bytes"
        ));
    }
    if dest.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(
            "destination contains spaces or control characters; percent-encode them".into(),
        );
    }
    let Some((scheme, rest)) = dest.split_once("://") else {
        return Err("destination must be an absolute http:// or https:// URL".into());
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err("destination must be an absolute http:// or https:// URL".into());
    }
    let authority = &rest[..authority_end(rest)];
    if authority.is_empty() {
        return Err("destination has no host".into());
    }
    if authority.contains(CLICK_ID_DASHES)
        || !authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'[' | b']'))
    {
        return Err(
            "destination host may hold only letters, digits, '-', '.', a :port or an [IPv6] \
             address; placeholders and user:password@ are not allowed there"
                .into(),
        );
    }
    let uri: hyper::Uri = format!("{scheme}://{authority}/")
        .parse()
        .map_err(|_| "destination host or port is not valid".to_string())?;
    if uri.host().is_none_or(str::is_empty) {
        return Err("destination has no host".into());
    }
    Ok(())
}

/// Length of the authority at the start of `rest` (the text after `://`).
fn authority_end(rest: &str) -> usize {
    rest.find(['/', '?', '#']).unwrap_or(rest.len())
}

/// Does the template carry a click ID placeholder?
pub fn has_click_placeholder(dest: &str) -> bool {
    dest.contains(CLICK_ID_DASHES) || dest.contains(CLICK_ID_BRACES)
}

/// Expand a validated destination for one click.
///
/// `{click_id}` and `--CLICK-ID--` become the click ID; `{name}` becomes the
/// click's first query parameter `name`, percent-encoded (empty when the
/// click has none). Without a click placeholder, `append_param=<click_id>`
/// is added to the query. Only the part after the authority is touched.
pub fn expand(
    dest: &str,
    click_id: &str,
    params: &[(String, String)],
    append_param: &str,
) -> String {
    let (origin, rest) = match dest.find("://") {
        Some(i) => {
            let start = i + 3;
            dest.split_at(start + authority_end(&dest[start..]))
        }
        None => ("", dest),
    };
    let mut out = String::with_capacity(dest.len() + 32);
    out.push_str(origin);
    let click_enc = utf8_percent_encode(click_id, VALUE).to_string();
    let mut s = rest;
    let mut had_click = false;
    while !s.is_empty() {
        if let Some(after) = s.strip_prefix(CLICK_ID_DASHES) {
            out.push_str(&click_enc);
            had_click = true;
            s = after;
            continue;
        }
        if s.starts_with('{')
            && let Some(close) = s[1..].find('}')
        {
            let name = &s[1..1 + close];
            if is_token(name) {
                if name == "click_id" {
                    out.push_str(&click_enc);
                    had_click = true;
                } else if let Some((_, v)) = params.iter().find(|(k, _)| k == name) {
                    out.extend(utf8_percent_encode(v, VALUE));
                }
                s = &s[close + 2..];
                continue;
            }
        }
        let ch = s.chars().next().unwrap_or('\0');
        out.push(ch);
        s = &s[ch.len_utf8()..];
    }
    if !had_click {
        let (base, fragment) = match out.find('#') {
            Some(i) => (out[..i].to_string(), out[i..].to_string()),
            None => (out.clone(), String::new()),
        };
        let sep = if !base.contains('?') {
            "?"
        } else if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        };
        let mut appended = base;
        appended.push_str(sep);
        appended.extend(utf8_percent_encode(append_param, VALUE));
        appended.push('=');
        appended.push_str(&click_enc);
        appended.push_str(&fragment);
        out = appended;
    }
    out
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Meta's click ID cookie format, built from `fbclid`: `fb.1.<ms>.<fbclid>`.
pub fn fbc(click_ms: u64, fbclid: &str) -> String {
    format!("fb.1.{click_ms}.{fbclid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn replaces_both_placeholders() {
        assert_eq!(
            expand(
                "https://n.com/o?sub1=--CLICK-ID--&x={click_id}",
                "abc",
                &[],
                "sub1"
            ),
            "https://n.com/o?sub1=abc&x=abc"
        );
    }

    #[test]
    fn appends_when_no_placeholder() {
        assert_eq!(
            expand("https://n.com/o", "abc", &[], "tid"),
            "https://n.com/o?tid=abc"
        );
        assert_eq!(
            expand("https://n.com/o?a=1#f", "abc", &[], "tid"),
            "https://n.com/o?a=1&tid=abc#f"
        );
        assert_eq!(
            expand("https://n.com", "abc", &[], "tid"),
            "https://n.com?tid=abc"
        );
    }

    #[test]
    fn substituted_values_are_encoded() {
        let params = p(&[("utm_source", "a/b?c#d@e\\f g&h=i")]);
        assert_eq!(
            expand(
                "https://n.com/o?s={utm_source}&c={click_id}&m={missing}",
                "abc",
                &params,
                "x"
            ),
            "https://n.com/o?s=a%2Fb%3Fc%23d%40e%5Cf%20g%26h%3Di&c=abc&m="
        );
    }

    #[test]
    fn validation() {
        assert!(validate_destination("https://n.com/o?sub1={click_id}").is_ok());
        assert!(validate_destination("http://[::1]:8080/x").is_ok());
        for bad in [
            "ftp://n.com/",
            "//n.com/",
            "javascript:alert(1)",
            "https://{utm_source}.n.com/",
            "https://--CLICK-ID--.com/",
            "https://user@evil.com/",
            "https://good.com\\@evil.com/",
            "https:///path",
            "https://n.com/a b",
        ] {
            assert!(validate_destination(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fbc_format() {
        assert_eq!(fbc(1700000000123, "IwAR1"), "fb.1.1700000000123.IwAR1");
    }
}
