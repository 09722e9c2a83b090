//! Pure parts of the click path: destination validation, a click's
//! redirect URL ("AutoTag", through the shared [`template`] expander) and
//! the Meta `fbc` value.
//!
//! The invariant that matters: the expanded URL has the same scheme, host
//! and port as the admin-configured destination, whatever the click's
//! parameters contain. Placeholders are refused in the authority here, and
//! the expander percent-encodes every substituted value.

use super::template::{self, Placeholders};
pub use super::template::{CLICK_ID_BRACES, CLICK_ID_DASHES};

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
    check_host_port(authority)?;
    let uri: hyper::Uri = format!("{scheme}://{authority}/")
        .parse()
        .map_err(|_| "destination host or port is not valid".to_string())?;
    if uri.host().is_none_or(str::is_empty) {
        return Err("destination has no host".into());
    }
    Ok(())
}

/// The authority as a browser will read it (WHATWG URL): a port of at most
/// 65535, and a host that is an `[IPv6]` address, a dotted-quad IPv4
/// address, or a name of non-empty labels whose last label is not a number
/// (a browser would parse `a.123` or `shop.0x1` as a broken IPv4 address).
/// `hyper::Uri` alone accepts ports such as `:.....`, so the redirect
/// would be a URL no browser can follow.
fn check_host_port(authority: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return Err("destination has an unclosed [IPv6] address".into());
        };
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("destination's [IPv6] address is not valid".into());
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (None, Some(p)),
                None => return Err("destination has text after its [IPv6] address".into()),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(authority), None),
        }
    };
    if let Some(p) = port
        && (p.is_empty()
            || p.len() > 5
            || !p.bytes().all(|b| b.is_ascii_digit())
            || p.parse::<u32>().is_ok_and(|n| n > 65535))
    {
        return Err("destination port must be a number from 0 to 65535".into());
    }
    if let Some(host) = host {
        let name = host.strip_suffix('.').unwrap_or(host);
        if name.is_empty()
            || name
                .split('.')
                .any(|label| label.is_empty() || label.contains('[') || label.contains(']'))
        {
            return Err("destination host has an empty label or a stray bracket".into());
        }
        let last = name.rsplit('.').next().unwrap_or(name);
        let numeric = last.bytes().all(|b| b.is_ascii_digit())
            || last
                .strip_prefix("0x")
                .or_else(|| last.strip_prefix("0X"))
                .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if numeric && name.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(
                "destination host ends in a number but is not a dotted-quad IPv4 address".into(),
            );
        }
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
    let (out, had_click) = template::expand(dest, Placeholders::BracesAndDashes, |name| {
        if name == "click_id" {
            Some(click_id.to_string())
        } else {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    });
    if had_click {
        return out;
    }
    let (base, fragment) = match out.find('#') {
        Some(i) => out.split_at(i),
        None => (out.as_str(), ""),
    };
    let sep = if !base.contains('?') {
        "?"
    } else if base.ends_with('?') || base.ends_with('&') {
        ""
    } else {
        "&"
    };
    format!(
        "{base}{sep}{}={}{fragment}",
        template::encode(append_param),
        template::encode(click_id)
    )
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

    /// Found by `fuzz/fuzz_targets/link_expand.rs`: `hyper::Uri` accepted
    /// `offer.example:.......` (and other authorities no browser parses), so
    /// a link could be saved whose every redirect was a broken URL.
    #[test]
    fn regression_authority_a_browser_cannot_parse_is_refused() {
        for bad in [
            "https://offer.exampl:......./lp",
            "https://n.com:/x",
            "https://n.com:65536/x",
            "https://n.com:80:80/x",
            "https://n.com:+80/x",
            "https://a.123/x",
            "https://shop.0x1f/x",
            "https://1.2.3/x",
            "https://01.2.3.4/x",
            "https://999.1.1.1/x",
            "https://a..b/x",
            "https://./x",
            "https://[::1/x",
            "https://[::g]/x",
            "https://[::1]x/",
            "https://a]b/x",
        ] {
            assert!(validate_destination(bad).is_err(), "{bad}");
        }
        for good in [
            "https://n.com:8443/x",
            "https://n.com./x",
            "https://1.2.3.4:80/x",
            "https://[2001:db8::1]/x",
            "https://[::ffff:1.2.3.4]:8080/x",
            "https://shop.0xg/x",
            "https://123.example/x",
            "https://localhost:0/",
            "https://xn--mnchen-3ya.de/",
        ] {
            assert!(validate_destination(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn fbc_format() {
        assert_eq!(fbc(1700000000123, "IwAR1"), "fb.1.1700000000123.IwAR1");
    }
}
