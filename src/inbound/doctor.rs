//! The postback doctor: reads a postback URL as the user pasted it into a
//! network (or as the network shows it) and names every problem it can see
//! before the URL goes live, each with a stable code, the parameter, a
//! sentence and the fix.
//!
//! Why a separate reader rather than the normalizer: a URL pasted into a
//! network is *supposed* to hold literal macros (`{sub1}`, `#s2#`), which
//! the normalizer rightly refuses, and it is often not a valid URL at all
//! (CAKE's `#s2#` is a fragment to a URL parser). So this reads the text
//! loosely, the way the network will substitute it, and compares it with
//! what the source's mapping and preset expect. Pure: no I/O, no clock;
//! fuzzed (`fuzz/fuzz_targets/doctor.rs`).

use serde::Serialize;

use crate::inbound::postback::{self, Mapping};
use crate::inbound::presets::{MacroSyntax, Preset};

/// Longest URL the doctor reads (a postback URL is a few hundred bytes).
pub const MAX_URL_LEN: usize = 8192;

/// One source as the doctor sees it.
#[derive(Clone, Debug)]
pub struct DoctorSource {
    pub id: u64,
    pub name: String,
    pub key: String,
    pub preset: Option<&'static Preset>,
    /// The macro syntax the source's postback URL is written in: its own
    /// `macro_syntax`, else its preset's; `None` when neither says.
    pub syntax: Option<MacroSyntax>,
    /// The source's own parameter overrides (canonical field, the
    /// network's name), which its generated URL uses as macros.
    pub own_params: Vec<(String, String)>,
    /// The effective mapping (preset first, then the source's overrides).
    pub mapping: Mapping,
}

/// What the doctor compares a URL with.
#[derive(Clone, Debug, Default)]
pub struct DoctorContext {
    /// The server's `public_url` (scheme and host the URL should use).
    pub public_url: String,
    pub sources: Vec<DoctorSource>,
    /// The source the user means this URL for, when they said: a key of
    /// another source is then `wrong_source_key`.
    pub expected_source: Option<u64>,
}

/// One problem found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable machine code (README, "Postback health").
    pub code: &'static str,
    /// The query parameter concerned, when there is one.
    pub param: Option<String>,
    /// What is wrong, in one sentence.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

/// Every finding code, for the README and the tests.
pub const CODES: &[&str] = &[
    "not_a_url",
    "click_link",
    "not_a_postback_path",
    "unknown_source_key",
    "wrong_source_key",
    "insecure_http",
    "wrong_host",
    "html_entity",
    "double_encoded",
    "missing_query",
    "trailing_separator",
    "unbalanced_macro",
    "encoded_macro",
    "foreign_macro_syntax",
    "unknown_macro",
    "literal_macro",
    "missing_click_id",
    "missing_amount",
    "missing_transaction_id",
];

fn finding(code: &'static str, param: Option<&str>, message: String, fix: String) -> Finding {
    Finding {
        code,
        param: param.map(|p| clip(p, 64)),
        message,
        fix,
    }
}

/// A value cut for a sentence (the URL is the user's own, but a sentence
/// should not quote 8 KB).
fn clip(s: &str, max: usize) -> String {
    crate::util::text::ellipsize(s, max)
}

/// Diagnose `url` against `ctx`. A text that is not an http(s) URL gives
/// the single finding `not_a_url` (the API answers it with a 400).
pub fn diagnose(url: &str, ctx: &DoctorContext) -> Vec<Finding> {
    let mut out = Vec::new();
    let trimmed = url.trim();
    if trimmed.is_empty() || trimmed.len() > MAX_URL_LEN || trimmed.chars().any(char::is_control) {
        return vec![not_a_url(trimmed)];
    }
    // `&amp;` is what a page's HTML source shows for `&`: copied from
    // there, every separator after the first is wrong.
    let mut text = trimmed.to_string();
    for entity in ["&amp;", "&AMP;", "&#38;", "&#038;"] {
        if text.contains(entity) {
            if !out.iter().any(|f: &Finding| f.code == "html_entity") {
                out.push(finding(
                    "html_entity",
                    None,
                    format!(
                        "the URL contains `{entity}`, the HTML entity for `&`: the network \
                             sends it as is and the parameters after it are lost"
                    ),
                    "copy the URL from the API or the dashboard's text, not from a page's HTML \
                     source, and replace every `&amp;` with `&`"
                        .into(),
                ));
            }
            text = text.replace(entity, "&");
        }
    }
    let Some((scheme, rest)) = split_scheme(&text) else {
        return vec![not_a_url(trimmed)];
    };
    let auth_end = rest.find(['/', '?', '#', '&']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    if authority.is_empty()
        || authority.contains(['{', '}', '[', ']', ' ', '@']) && !is_ipv6(authority)
    {
        return vec![not_a_url(trimmed)];
    }
    let after = &rest[auth_end..];
    check_origin(&scheme, authority, ctx, &mut out);
    // The path ends at `?`; `#` is not a fragment here, since CAKE's
    // macros are written `#x#`.
    let (path, query, had_q) = match after.find('?') {
        Some(i) => (&after[..i], &after[i + 1..], true),
        None => match after.find('&') {
            Some(i) => (&after[..i], &after[i + 1..], false),
            None => (after, "", false),
        },
    };
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let key = match segs.as_slice() {
        ["c", _slug, ..] => {
            out.push(finding(
                "click_link",
                None,
                "this is a tracking link (/c/...), the link visitors click, not the postback \
                 URL the network calls when a conversion happens"
                    .into(),
                "put the tracking link in the offer's landing page field, and paste the source's \
                 postback_url (GET /api/v1/sources/ID, or the dashboard) into the network's \
                 postback settings"
                    .into(),
            ));
            return out;
        }
        ["p", key] => *key,
        _ => {
            out.push(finding(
                "not_a_postback_path",
                None,
                format!(
                    "the path `{}` is not a postback path; postbacks go to /p/<source key>",
                    clip(path, 80)
                ),
                "paste the source's postback_url exactly as the API or the dashboard shows it"
                    .into(),
            ));
            return out;
        }
    };
    let source = check_key(key, ctx, &mut out);
    if !had_q {
        if query.is_empty() {
            // Nothing to read: the other checks would only repeat it.
            out.push(missing_params(key));
            return out;
        } else {
            out.push(finding(
                "missing_query",
                None,
                "the URL has parameters but no `?` before them, so they are read as part of \
                 the path and the key is wrong"
                    .into(),
                format!(
                    "put `?` after the key: /p/{}?{}",
                    clip(key, 40),
                    clip(query, 60)
                ),
            ));
        }
    }
    if text.ends_with('&') || text.ends_with('?') {
        out.push(finding(
            "trailing_separator",
            None,
            format!(
                "the URL ends with `{}`: it looks cut short (a copy that lost its last \
                 parameters)",
                &text[text.len() - 1..]
            ),
            "copy the whole postback URL again; it ends with a parameter, e.g. ...&amount={payout}"
                .into(),
        ));
    }
    check_params(query, source, &mut out);
    out
}

fn not_a_url(text: &str) -> Finding {
    finding(
        "not_a_url",
        None,
        format!("`{}` is not an http:// or https:// URL", clip(text, 80)),
        "paste the whole postback URL, starting with https:// (the source's postback_url: GET \
         /api/v1/sources/ID)"
            .into(),
    )
}

fn missing_params(key: &str) -> Finding {
    finding(
        "missing_query",
        None,
        "the URL has no parameters: the network would send no click ID, and every postback \
         would be refused with missing_click_id"
            .into(),
        format!(
            "add the parameters after a `?`, e.g. /p/{}?click_id={{sub1}}&amount={{payout}}",
            clip(key, 40)
        ),
    )
}

fn split_scheme(text: &str) -> Option<(String, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    let s = scheme.to_ascii_lowercase();
    (s == "http" || s == "https").then_some((s, rest))
}

fn is_ipv6(authority: &str) -> bool {
    authority.starts_with('[')
        && authority
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || matches!(b, b'[' | b']' | b':' | b'.'))
}

fn check_origin(scheme: &str, authority: &str, ctx: &DoctorContext, out: &mut Vec<Finding>) {
    let Some((public_scheme, public_rest)) = split_scheme(ctx.public_url.trim()) else {
        return;
    };
    let public_auth = &public_rest[..public_rest.find('/').unwrap_or(public_rest.len())];
    if public_scheme == "https" && scheme == "http" {
        out.push(finding(
            "insecure_http",
            None,
            "the URL uses http:// but this server is served over https://: the postback and \
             its click ID travel unencrypted, and a redirect to https may drop them"
                .into(),
            "change http:// to https:// at the start of the URL".into(),
        ));
    }
    if !authority.eq_ignore_ascii_case(public_auth) {
        out.push(finding(
            "wrong_host",
            None,
            format!(
                "the URL points at `{}` but this server's public_url is `{}`",
                clip(authority, 80),
                clip(public_auth, 80)
            ),
            format!(
                "use {public_scheme}://{public_auth}/p/<key>, or set public_url if the server \
                 is reached under another name"
            ),
        ));
    }
}

fn check_key<'c>(
    key: &str,
    ctx: &'c DoctorContext,
    out: &mut Vec<Finding>,
) -> Option<&'c DoctorSource> {
    let expected = ctx
        .expected_source
        .and_then(|id| ctx.sources.iter().find(|s| s.id == id));
    if let Some(s) = ctx.sources.iter().find(|s| s.key == key) {
        if let Some(e) = expected
            && e.id != s.id
        {
            out.push(finding(
                "wrong_source_key",
                None,
                format!(
                    "the key is that of source {} ({}), not of source {} ({}): its postbacks \
                     would be counted under the wrong network",
                    s.id,
                    clip(&s.name, 60),
                    e.id,
                    clip(&e.name, 60)
                ),
                format!("use source {}'s postback_url", e.id),
            ));
            return Some(e);
        }
        return Some(s);
    }
    let cut = ctx
        .sources
        .iter()
        .find(|s| key.len() >= 4 && s.key.starts_with(key) && s.key.len() > key.len());
    let message = match cut {
        Some(s) => format!(
            "the source key `{}` is the start of source {}'s key ({}): the URL was cut short",
            clip(key, 40),
            s.id,
            clip(&s.name, 60)
        ),
        None => format!(
            "no source has the key `{}`: the server would answer every postback 404 \
             unknown_source",
            clip(key, 40)
        ),
    };
    out.push(finding(
        "unknown_source_key",
        None,
        message,
        "copy the source's postback_url again (GET /api/v1/sources/ID); keys are case-sensitive"
            .into(),
    ));
    cut.or(expected)
}

/// A macro as written: its syntax and its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Macro<'a> {
    syntax: Option<MacroSyntax>,
    name: &'a str,
}

fn is_token(inner: &str) -> bool {
    !inner.is_empty()
        && inner.len() <= 64
        && inner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// `{x}`, `${x}`, `#x#`, `[x]` (one of the presets' syntaxes), or another
/// common macro shape (`{{x}}`, `%x%`, `--x--`) with no syntax.
fn parse_macro(v: &str) -> Option<Macro<'_>> {
    let wrapped = |open: &str, close: &str| {
        v.strip_prefix(open)
            .and_then(|r| r.strip_suffix(close))
            .filter(|i| is_token(i))
    };
    if let Some(n) = wrapped("${", "}") {
        return Some(Macro {
            syntax: Some(MacroSyntax::DollarBraces),
            name: n,
        });
    }
    if let Some(n) = wrapped("{{", "}}")
        .or_else(|| wrapped("%", "%"))
        .or_else(|| wrapped("--", "--"))
    {
        return Some(Macro {
            syntax: None,
            name: n,
        });
    }
    for (open, close, syntax) in [
        ("{", "}", MacroSyntax::Braces),
        ("#", "#", MacroSyntax::Hash),
        ("[", "]", MacroSyntax::Brackets),
    ] {
        if let Some(n) = wrapped(open, close) {
            return Some(Macro {
                syntax: Some(syntax),
                name: n,
            });
        }
    }
    None
}

/// Placeholders no network replaces: left in from an example.
fn is_placeholder(v: &str) -> bool {
    const WORDS: &[&str] = &[
        "replace",
        "optional",
        "xxx",
        "clickid",
        "click_id",
        "your_click_id",
        "yourclickid",
        "insert_click_id",
        "{}",
        "[]",
        "##",
        "--click-id--",
    ];
    let l = v.to_ascii_lowercase();
    WORDS.contains(&l.as_str()) || (l.starts_with('<') && l.ends_with('>') && l.len() > 2)
}

/// A value shaped like a postbackd click ID (time-ordered, `[0-9a-z]`,
/// 20 to 32 characters): a URL the network already fired.
fn looks_like_click_id(v: &str) -> bool {
    (20..=32).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        && v.bytes().any(|b| b.is_ascii_digit())
}

fn unbalanced(v: &str) -> bool {
    let count = |c: char| v.matches(c).count();
    count('{') != count('}') || count('[') != count(']') || count('#') % 2 == 1
}

/// The canonical field a parameter name feeds under `mapping`, as the
/// normalizer resolves it (mapped name first, else canonical or alias).
fn field_of(name: &str, mapping: &Mapping) -> Option<&'static str> {
    postback::FIELDS.iter().find_map(|(field, aliases)| {
        let hit = match mapping.params.get(*field) {
            Some(mapped) => name.eq_ignore_ascii_case(mapped) || name.eq_ignore_ascii_case(field),
            None => {
                name.eq_ignore_ascii_case(field)
                    || aliases.iter().any(|a| name.eq_ignore_ascii_case(a))
            }
        };
        hit.then_some(*field)
    })
}

/// The names the mapping reads `field` from, for sentences.
fn read_names(field: &str, mapping: &Mapping) -> String {
    match mapping.params.get(field) {
        Some(m) if m != field => format!("`{m}` or `{field}`"),
        _ => format!("`{field}`"),
    }
}

struct Pair<'a> {
    name: String,
    raw: &'a str,
    decoded: String,
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn check_params(query: &str, source: Option<&DoctorSource>, out: &mut Vec<Finding>) {
    let default_mapping = Mapping::default();
    let mapping = source.map_or(&default_mapping, |s| &s.mapping);
    let preset = source.and_then(|s| s.preset);
    let dialect = Dialect {
        preset,
        syntax: source.and_then(|s| s.syntax),
        own: source.map_or(&[][..], |s| s.own_params.as_slice()),
    };
    let pairs: Vec<Pair<'_>> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .take(256)
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            Pair {
                name: decode(n).trim().to_string(),
                raw: v,
                decoded: decode(v),
            }
        })
        .collect();
    // A whole query encoded once more: `click_id%3D%7Bsub1%7D%26amount...`.
    if pairs.len() == 1 && pairs[0].raw.is_empty() && pairs[0].name.contains('=') {
        out.push(finding(
            "double_encoded",
            None,
            "the parameters are percent-encoded as one value (`=` and `&` written as %3D and \
             %26): the server sees a single parameter with no value"
                .into(),
            format!("write them plainly: ?{}", clip(&pairs[0].name, 80)),
        ));
        return;
    }
    let fired = pairs.iter().any(|p| {
        field_of(&p.name, mapping) == Some("click_id") && looks_like_click_id(p.decoded.trim())
    });
    let mut fields_seen: Vec<&'static str> = Vec::new();
    for p in &pairs {
        let field = field_of(&p.name, mapping);
        if let Some(f) = field {
            fields_seen.push(f);
        }
        check_value(p, field, &dialect, fired, out);
    }
    if !fields_seen.contains(&"click_id") {
        let guess = pairs.iter().find(|p| {
            field_of(&p.name, mapping).is_none() && probably_click_id(&p.name, &p.decoded)
        });
        let (param, hint) = match guess {
            Some(g) => (
                Some(g.name.as_str()),
                format!(
                    "; `{}={}` probably carries it",
                    clip(&g.name, 40),
                    clip(g.raw, 40)
                ),
            ),
            None => (None, String::new()),
        };
        let fix = match guess {
            Some(g) => format!(
                "rename `{0}` to `click_id` in the URL, or set the source's params mapping \
                 {{\"click_id\": \"{0}\"}} (PATCH /api/v1/sources/ID)",
                clip(&g.name, 40)
            ),
            None => format!(
                "add click_id={} with the network's click-ID macro",
                dialect
                    .macro_for(Some("click_id"))
                    .unwrap_or_else(|| "{sub1}".into())
            ),
        };
        out.push(finding(
            "missing_click_id",
            param,
            format!(
                "no parameter the mapping reads as the click ID ({}){hint}: every postback \
                 would be refused with missing_click_id",
                read_names("click_id", mapping)
            ),
            fix,
        ));
    }
    for (field, code, why) in [
        (
            "amount",
            "missing_amount",
            "every conversion would be a lead with no revenue",
        ),
        (
            "transaction_id",
            "missing_transaction_id",
            "a second sale on the same click with the same event would be answered as a duplicate, and status updates cannot find their conversion",
        ),
    ] {
        if fields_seen.contains(&field) {
            continue;
        }
        // A network with no macro for it cannot send it: nothing to fix.
        let macro_text = match (preset, dialect.macro_for(Some(field))) {
            (_, Some(m)) => m,
            (Some(_), None) => continue,
            (None, None) => "the network's macro".to_string(),
        };
        out.push(finding(
            code,
            None,
            format!(
                "no parameter the mapping reads as the {} ({}): {why}",
                field.replace('_', " "),
                read_names(field, mapping)
            ),
            format!("add &{field}={macro_text}"),
        ));
    }
}

/// In a refused request's parameters (name, value), the one that
/// probably carries the click ID but that `mapping` does not read: a
/// parameter no field takes whose name or value has a click ID's shape.
/// Source health draws its findings from this.
pub fn probable_click_id_param<'a>(
    params: &'a [(String, String)],
    mapping: &Mapping,
) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, v)| {
            field_of(n, mapping).is_none() && !v.trim().is_empty() && probably_click_id(n, v)
        })
        .map(|(n, _)| n.as_str())
}

/// The names the mapping reads the click ID from, for sentences.
pub fn click_id_names(mapping: &Mapping) -> String {
    read_names("click_id", mapping)
}

fn probably_click_id(name: &str, value: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let name_hint = [
        "click", "sub", "tid", "sid", "cid", "epi", "external", "aff",
    ]
    .iter()
    .any(|h| n.contains(h));
    let v = value.trim();
    let macro_hint = parse_macro(v).is_some_and(|m| {
        let l = m.name.to_ascii_lowercase();
        [
            "click", "sub", "tid", "sid", "cid", "epi", "external", "s2", "aff_sub",
        ]
        .iter()
        .any(|h| l.contains(h))
    });
    name_hint || macro_hint || looks_like_click_id(v)
}

fn check_value(
    p: &Pair<'_>,
    field: Option<&'static str>,
    dialect: &Dialect<'_>,
    fired: bool,
    out: &mut Vec<Finding>,
) {
    let name = p.name.as_str();
    let raw = p.raw.trim();
    if raw.contains("%25") {
        out.push(finding(
            "double_encoded",
            Some(name),
            format!(
                "`{}` is percent-encoded twice (`%25` is an encoded `%`): the server would \
                 receive `{}`",
                clip(raw, 60),
                clip(&p.decoded, 60)
            ),
            format!(
                "write the value once-encoded: {name}={}",
                clip(&p.decoded, 60)
            ),
        ));
        return;
    }
    if unbalanced(raw) {
        out.push(finding(
            "unbalanced_macro",
            Some(name),
            format!(
                "`{}` opens a macro it does not close: the URL looks cut short",
                clip(raw, 60)
            ),
            "copy the whole URL again; each macro is closed, e.g. {sub1}, #s2# or [sid]".into(),
        ));
        return;
    }
    let decoded = p.decoded.trim();
    if raw != decoded && parse_macro(raw).is_none() && parse_macro(decoded).is_some() {
        out.push(finding(
            "encoded_macro",
            Some(name),
            format!(
                "the macro `{decoded}` is percent-encoded (`{}`): the network looks for the \
                 plain text and will not replace it",
                clip(raw, 60)
            ),
            format!("write it unencoded: {name}={decoded}"),
        ));
        return;
    }
    if is_placeholder(decoded) {
        out.push(finding(
            "literal_macro",
            Some(name),
            format!(
                "`{}` is a placeholder no network replaces: it would arrive as is",
                clip(decoded, 40)
            ),
            match dialect.macro_for(field) {
                Some(m) => format!("use the network's macro: {name}={m}"),
                None => "replace it with the network's macro for this value".into(),
            },
        ));
        return;
    }
    let Some(m) = parse_macro(decoded) else {
        return;
    };
    if fired && field != Some("click_id") {
        out.push(finding(
            "literal_macro",
            Some(name),
            format!(
                "this URL was already fired (the click ID is filled in) but `{}` was left as \
                 is: the network does not know this macro",
                clip(decoded, 40)
            ),
            match dialect.macro_for(field) {
                Some(mm) => format!("use {mm}, the network's macro for this value"),
                None => "use the macro your network documents for this value".into(),
            },
        ));
        return;
    }
    let Some(syntax) = dialect.syntax else {
        return;
    };
    let network = dialect.preset.map_or("this source", |p| p.name);
    if m.syntax != Some(syntax) {
        let fix = match dialect.macro_for(field) {
            Some(mm) => format!("write {name}={mm}"),
            None => format!("write macros as {}", syntax.as_str()),
        };
        out.push(finding(
            "foreign_macro_syntax",
            Some(name),
            format!(
                "`{}` is written in another network's macro syntax; {network} writes macros as \
                 {}, so it would arrive unreplaced",
                clip(decoded, 40),
                syntax.as_str()
            ),
            fix,
        ));
        return;
    }
    let Some(preset) = dialect.preset else {
        return;
    };
    // Exact case: Impact's macros are case-sensitive (`{SubId1}`).
    let known = preset.macros.iter().any(|(_, mm)| *mm == m.name)
        || dialect.own.iter().any(|(_, mm)| mm == m.name);
    if let (false, Some(mm)) = (known, dialect.macro_for(field)) {
        out.push(finding(
            "unknown_macro",
            Some(name),
            format!(
                "`{}` is not {}'s macro for the {}; it would arrive unreplaced",
                clip(decoded, 40),
                preset.name,
                field.unwrap_or("value").replace('_', " ")
            ),
            format!("write {name}={mm}"),
        ));
    }
}

/// What the source's network writes: its preset, its syntax, its own
/// parameter names.
struct Dialect<'a> {
    preset: Option<&'static Preset>,
    syntax: Option<MacroSyntax>,
    own: &'a [(String, String)],
}

impl Dialect<'_> {
    /// The macro the source's generated URL uses for `field`, wrapped.
    fn macro_for(&self, field: Option<&str>) -> Option<String> {
        let field = field?;
        let syntax = self.syntax.or(self.preset.map(|p| p.syntax))?;
        let name = self
            .own
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, n)| n.as_str())
            .or_else(|| self.preset.and_then(|p| p.macro_for(field)))?;
        Some(syntax.wrap(name))
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::presets;

    const PUBLIC: &str = "https://t.example.com";

    fn key_of(preset: &str) -> String {
        format!("{preset}Q7mZp2Xc9LwR4tB")
    }

    /// One source per preset (IDs 1..=10), and a custom source (ID 99)
    /// whose mapping reads the click ID from `sub1`.
    fn ctx() -> DoctorContext {
        let mut sources: Vec<DoctorSource> = presets::all()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut mapping = Mapping::default();
                for (f, n) in p.params {
                    mapping.params.insert((*f).into(), (*n).into());
                }
                DoctorSource {
                    id: i as u64 + 1,
                    name: p.name.into(),
                    key: key_of(p.id),
                    preset: Some(p),
                    syntax: Some(p.syntax),
                    own_params: Vec::new(),
                    mapping,
                }
            })
            .collect();
        let mut mapping = Mapping::default();
        mapping.params.insert("click_id".into(), "sub1".into());
        sources.push(DoctorSource {
            id: 99,
            name: "Custom".into(),
            key: key_of("custom"),
            preset: None,
            syntax: None,
            own_params: Vec::new(),
            mapping,
        });
        DoctorContext {
            public_url: PUBLIC.into(),
            sources,
            expected_source: None,
        }
    }

    fn url(preset: &str, query: &str) -> String {
        format!("{PUBLIC}/p/{}?{query}", key_of(preset))
    }

    /// The findings a URL must give: (code, parameter), in order.
    type Expected = Vec<(&'static str, Option<&'static str>)>;

    fn codes(fs: &[Finding]) -> Vec<(&'static str, Option<&str>)> {
        fs.iter().map(|f| (f.code, f.param.as_deref())).collect()
    }

    #[test]
    fn every_presets_generated_url_is_clean() {
        let c = ctx();
        for p in presets::all() {
            let u = url(p.id, &p.postback_query());
            assert_eq!(diagnose(&u, &c), vec![], "{u}");
        }
    }

    #[test]
    fn each_mistake_has_its_exact_findings() {
        let c = ctx();
        let ev = |q: &str| url("everflow", q);
        let ev_ok = "click_id={sub1}&amount={payout_amount}&transaction_id={conversion_id}";
        let key = key_of("everflow");
        let cases: Vec<(String, Expected)> = vec![
            // Another network's macro syntax than the source's preset.
            (
                url(
                    "cake",
                    "click_id={sub1}&amount=#price#&transaction_id=#leadid#",
                ),
                vec![("foreign_macro_syntax", Some("click_id"))],
            ),
            (
                ev("click_id=[sid]&amount={payout_amount}&transaction_id={conversion_id}"),
                vec![("foreign_macro_syntax", Some("click_id"))],
            ),
            (
                ev("click_id=#s2#&amount={payout_amount}&transaction_id={conversion_id}"),
                vec![("foreign_macro_syntax", Some("click_id"))],
            ),
            (
                ev("click_id=${sub1}&amount={payout_amount}&transaction_id={conversion_id}"),
                vec![("foreign_macro_syntax", Some("click_id"))],
            ),
            (
                url(
                    "cj",
                    "click_id={sid}&amount=[commission]&transaction_id=[commission_id]",
                ),
                vec![("foreign_macro_syntax", Some("click_id"))],
            ),
            // Right syntax, not the network's macro (Impact is case-sensitive).
            (
                ev("click_id={clickid}&amount={payout_amount}&transaction_id={conversion_id}"),
                vec![("unknown_macro", Some("click_id"))],
            ),
            (
                url(
                    "impact",
                    "click_id={subId1}&amount={Payout}&transaction_id={ActionId}",
                ),
                vec![("unknown_macro", Some("click_id"))],
            ),
            // Literal placeholders, and a fired URL with a macro left as is.
            (
                ev("click_id=REPLACE&amount={payout_amount}&transaction_id={conversion_id}"),
                vec![("literal_macro", Some("click_id"))],
            ),
            (
                ev("click_id=0mzx7c1k2p9qwe45rtyu8i&amount={payout}&transaction_id=8f1c2b7d90e3"),
                vec![("literal_macro", Some("amount"))],
            ),
            // No click ID parameter the mapping reads; the likely one by shape.
            (
                url(
                    "custom",
                    "subid={subid}&amount={payout}&transaction_id={txid}",
                ),
                vec![("missing_click_id", Some("subid"))],
            ),
            (
                url(
                    "custom",
                    "aff_click=0mzx7c1k2p9qwe45rtyu8i&amount=3.50&transaction_id=T1",
                ),
                vec![("missing_click_id", Some("aff_click"))],
            ),
            (
                ev("amount={payout_amount}&transaction_id={conversion_id}"),
                vec![("missing_click_id", None)],
            ),
            // No amount, no transaction ID.
            (
                ev("click_id={sub1}&transaction_id={conversion_id}"),
                vec![("missing_amount", None)],
            ),
            (
                url("hasoffers", "click_id={aff_sub}&amount={payout}"),
                vec![("missing_transaction_id", None)],
            ),
            // Double encoding and HTML entities.
            (
                ev("click_id=%257Bsub1%257D&amount={payout_amount}&transaction_id={conversion_id}"),
                vec![("double_encoded", Some("click_id"))],
            ),
            (
                ev("click_id%3D%7Bsub1%7D%26amount%3D%7Bpayout_amount%7D"),
                vec![("double_encoded", None)],
            ),
            (
                ev("click_id={sub1}&amp;amount={payout_amount}&amp;transaction_id={conversion_id}"),
                vec![("html_entity", None)],
            ),
            (
                ev("click_id=%7Bsub1%7D&amount={payout_amount}&transaction_id={conversion_id}"),
                vec![("encoded_macro", Some("click_id"))],
            ),
            // Cut short: unbalanced macro, trailing separator, no `?`.
            (
                ev("click_id={sub1&amount={payout_amount}&transaction_id={conversion_id}"),
                vec![("unbalanced_macro", Some("click_id"))],
            ),
            (
                ev("click_id={sub1}&amount={payout_amount}&transaction_id={conversion"),
                vec![("unbalanced_macro", Some("transaction_id"))],
            ),
            (
                url(
                    "cake",
                    "click_id=#s2#&amount=#price#&transaction_id=#leadid",
                ),
                vec![("unbalanced_macro", Some("transaction_id"))],
            ),
            (
                format!("{}&", ev(ev_ok)),
                vec![("trailing_separator", None)],
            ),
            (
                format!("{PUBLIC}/p/{key}&{ev_ok}"),
                vec![("missing_query", None)],
            ),
            (format!("{PUBLIC}/p/{key}"), vec![("missing_query", None)]),
            // Scheme and host.
            (
                ev(ev_ok).replace("https://", "http://"),
                vec![("insecure_http", None)],
            ),
            (
                ev(ev_ok).replace("t.example.com", "tracker.example.net"),
                vec![("wrong_host", None)],
            ),
            // Keys and paths.
            (
                format!(
                    "{PUBLIC}/p/nosuchkey123?click_id={{sub1}}&amount={{payout}}&transaction_id={{txid}}"
                ),
                vec![("unknown_source_key", None)],
            ),
            (
                format!("{PUBLIC}/p/{}?{ev_ok}", &key[..10]),
                vec![("unknown_source_key", None)],
            ),
            (
                format!("{PUBLIC}/c/summer-sale?utm_source=fb"),
                vec![("click_link", None)],
            ),
            (
                format!("{PUBLIC}/postback?{ev_ok}"),
                vec![("not_a_postback_path", None)],
            ),
            (
                "sub1={sub1}&payout={payout}".into(),
                vec![("not_a_url", None)],
            ),
            (
                format!("t.example.com/p/{key}?{ev_ok}"),
                vec![("not_a_url", None)],
            ),
            ("".into(), vec![("not_a_url", None)]),
        ];
        assert!(cases.len() >= 25);
        for (u, want) in &cases {
            let got = diagnose(u, &c);
            assert_eq!(codes(&got), *want, "{u}: {got:#?}");
            for f in &got {
                assert!(CODES.contains(&f.code), "{}", f.code);
                assert!(!f.message.is_empty() && !f.fix.is_empty(), "{u}");
            }
        }
    }

    #[test]
    fn sentences_name_the_fix() {
        let c = ctx();
        let f = &diagnose(
            &url(
                "cake",
                "click_id={sub1}&amount=#price#&transaction_id=#leadid#",
            ),
            &c,
        )[0];
        assert_eq!(f.fix, "write click_id=#s2#");
        assert!(
            f.message.contains("CAKE writes macros as #x#"),
            "{}",
            f.message
        );
        let f = &diagnose(
            &url(
                "custom",
                "subid={subid}&amount={payout}&transaction_id={txid}",
            ),
            &c,
        )[0];
        assert!(
            f.message.contains("(`sub1` or `click_id`)"),
            "{}",
            f.message
        );
        assert!(f.fix.contains("{\"click_id\": \"subid\"}"), "{}", f.fix);
        let key = key_of("everflow");
        let f = &diagnose(&format!("{PUBLIC}/p/{}?click_id={{sub1}}", &key[..10]), &c)[0];
        assert!(f.message.contains("cut short"), "{}", f.message);
    }

    #[test]
    fn a_key_of_another_source_is_wrong_when_the_source_is_named() {
        let mut c = ctx();
        c.expected_source = Some(5); // CAKE
        let u = url(
            "everflow",
            "click_id=#s2#&amount=#price#&transaction_id=#leadid#",
        );
        assert_eq!(codes(&diagnose(&u, &c)), vec![("wrong_source_key", None)]);
    }

    #[test]
    fn hostile_text_never_panics() {
        let c = ctx();
        for s in [
            "https://",
            "https://?",
            "https://a/p/",
            "https://a/p/k?=&=&",
            "https://[::1]/p/x?#",
            "http://a/p/k?a=%",
            "https://a/p/k?%ff%fe=%c3",
            "https://a/c/",
            "https://a/p/k?{=}",
        ] {
            let _ = diagnose(s, &c);
        }
    }
}
