//! Landing-page origins: the `scheme://host[:port]` an admin allows to
//! call `/e/click` from a browser (CORS), written the way a browser writes
//! its `Origin` header (lowercase, no default port, no path), so checking a
//! request is a plain comparison.

/// Normalize an admin-given origin, or say what is wrong with it.
pub fn normalize(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    let s = s.strip_suffix('/').unwrap_or(s);
    let Some((scheme, authority)) = s.split_once("://") else {
        return Err(format!(
            "`{}` is not an origin; write scheme://host[:port], such as https://lp.example.com",
            s.escape_debug()
        ));
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err("an origin starts with http:// or https://".into());
    }
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "`{}` has a path, query or user name; an origin is only scheme://host[:port]",
            s.escape_debug()
        ));
    }
    // The host and port rules of a destination (what a browser parses).
    super::click::validate_destination(&format!("{scheme}://{authority}/"))
        .map_err(|m| m.replacen("destination", "origin", 1))?;
    let authority = authority.to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority
        .strip_suffix(default_port)
        .unwrap_or(&authority)
        .to_string();
    Ok(format!("{scheme}://{authority}"))
}

/// Is the request's `Origin` header one of the allowed (normalized)
/// origins? `null` (sandboxed frames, `file:`) never is.
pub fn allowed(origin: &str, lists: &[&[String]]) -> bool {
    origin != "null"
        && lists
            .iter()
            .any(|l| l.iter().any(|o| o.eq_ignore_ascii_case(origin)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_a_browser_origin() {
        for (given, want) in [
            ("https://LP.Example.com", "https://lp.example.com"),
            ("https://lp.example.com/", "https://lp.example.com"),
            ("https://lp.example.com:443", "https://lp.example.com"),
            ("http://lp.example.com:80", "http://lp.example.com"),
            ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
            ("HTTPS://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
            (" https://a.b ", "https://a.b"),
        ] {
            assert_eq!(normalize(given).as_deref(), Ok(want), "{given}");
        }
        for bad in [
            "lp.example.com",
            "ftp://a.b",
            "https://",
            "https://a.b/path",
            "https://a.b?x",
            "https://u@a.b",
            "https://a.b:99999",
            "https://*.a.b",
            "null",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allowed_compares_exactly() {
        let server = vec!["https://a.example".to_string()];
        let link = vec!["http://127.0.0.1:9000".to_string()];
        assert!(allowed("https://a.example", &[&server, &link]));
        assert!(allowed("http://127.0.0.1:9000", &[&server, &link]));
        assert!(!allowed("https://a.example.evil", &[&server, &link]));
        assert!(!allowed("http://a.example", &[&server]));
        assert!(!allowed("null", &[&server]));
        assert!(!allowed("https://a.example", &[]));
    }
}
