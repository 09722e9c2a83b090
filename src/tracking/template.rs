//! The one URL template expander, shared by click destinations (the
//! redirect's `Location`) and outbound traffic-source postbacks.
//!
//! The invariant that matters: the expanded URL has the same scheme, host
//! and port as the admin-configured template, whatever the substituted
//! values contain. Only the part after the authority is expanded, and every
//! substituted value is percent-encoded down to RFC 3986's unreserved
//! characters, so it cannot introduce `/`, `?`, `#`, `@` or `\`. (Admin
//! validation separately refuses placeholders in the authority.)

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters encoded in substituted values: everything but RFC 3986's
/// unreserved set.
pub const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The AnyTrack-style click ID placeholder (click destinations only).
pub const CLICK_ID_DASHES: &str = "--CLICK-ID--";
/// The brace-style click ID placeholder.
pub const CLICK_ID_BRACES: &str = "{click_id}";

/// Which placeholders a template knows besides `{name}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholders {
    /// `{name}` only (outbound postbacks).
    Braces,
    /// `{name}` and `--CLICK-ID--`, which stands for `{click_id}` (click
    /// destinations, as networks and AnyTrack write them).
    BracesAndDashes,
}

/// A `{name}` token: 1 to 64 of letters, digits, `_`, `-`, `.`. Anything
/// else between braces (JSON, `{}`, spaces) is left as written.
pub fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `v` percent-encoded as a substituted value.
pub fn encode(v: &str) -> String {
    utf8_percent_encode(v, VALUE).to_string()
}

/// Split `url` after its authority: (`scheme://host:port`, the rest). A
/// text without `://` is all rest.
pub fn split_origin(url: &str) -> (&str, &str) {
    match url.find("://") {
        Some(i) => {
            let start = i + 3;
            let end = start
                + url[start..]
                    .find(['/', '?', '#'])
                    .unwrap_or(url.len() - start);
            url.split_at(end)
        }
        None => ("", url),
    }
}

/// Expand `template`: each token is replaced by `lookup(name)`,
/// percent-encoded, or by nothing when the lookup has no value. Returns the
/// URL and whether a click ID placeholder (`{click_id}`, or `--CLICK-ID--`
/// where known) was present.
pub fn expand(
    template: &str,
    placeholders: Placeholders,
    mut lookup: impl FnMut(&str) -> Option<String>,
) -> (String, bool) {
    let (origin, rest) = split_origin(template);
    let mut out = String::with_capacity(template.len() + 64);
    out.push_str(origin);
    let mut had_click = false;
    let mut s = rest;
    while !s.is_empty() {
        if placeholders == Placeholders::BracesAndDashes
            && let Some(after) = s.strip_prefix(CLICK_ID_DASHES)
        {
            if let Some(v) = lookup("click_id") {
                out.extend(utf8_percent_encode(&v, VALUE));
            }
            had_click = true;
            s = after;
            continue;
        }
        if s.starts_with('{')
            && let Some(close) = s[1..].find('}')
        {
            let name = &s[1..1 + close];
            if is_token(name) {
                if let Some(v) = lookup(name) {
                    out.extend(utf8_percent_encode(&v, VALUE));
                }
                had_click |= name == "click_id";
                s = &s[close + 2..];
                continue;
            }
        }
        let ch = s.chars().next().unwrap_or('\0');
        out.push(ch);
        s = &s[ch.len_utf8()..];
    }
    (out, had_click)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(template: &str, p: Placeholders, want: &str, want_click: bool) {
        let (got, click) = expand(template, p, |n| match n {
            "click_id" => Some("c1".into()),
            "sub" => Some("a b/c?d#e".into()),
            _ => None,
        });
        assert_eq!((got.as_str(), click), (want, want_click), "{template}");
    }

    #[test]
    fn expands_tokens_after_the_authority_only() {
        use Placeholders::*;
        check(
            "https://h.example/x?c={click_id}",
            Braces,
            "https://h.example/x?c=c1",
            true,
        );
        check(
            "https://h.example/--CLICK-ID--",
            BracesAndDashes,
            "https://h.example/c1",
            true,
        );
        check(
            "https://h.example/--CLICK-ID--",
            Braces,
            "https://h.example/--CLICK-ID--",
            false,
        );
        check(
            "https://h.example/?s={sub}",
            Braces,
            "https://h.example/?s=a%20b%2Fc%3Fd%23e",
            false,
        );
        check(
            "https://h.example/?m={missing}",
            Braces,
            "https://h.example/?m=",
            false,
        );
        check(
            "https://h.example/?j={\"a\":1}&e={}",
            Braces,
            "https://h.example/?j={\"a\":1}&e={}",
            false,
        );
        // The authority is never expanded, even where validation was skipped.
        check(
            "https://{sub}.example/",
            Braces,
            "https://{sub}.example/",
            false,
        );
        check(
            "no-scheme/{sub}",
            Braces,
            "no-scheme/a%20b%2Fc%3Fd%23e",
            false,
        );
    }
}
