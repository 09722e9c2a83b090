//! The page shell every dashboard page shares (head, navigation, who is
//! signed in), the HTML response with the dashboard's security headers, and
//! the small formatting helpers tables use (thousands separators, money,
//! result badges). Markup is `maud`: checked at compile time, escaped by
//! default.

use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::assets;
use super::session::Viewer;
use crate::http::{Resp, full};
use crate::manage;

/// No inline script or style, nothing from another origin, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The navigation: (path, label, admins only).
const NAV: [(&str, &str, bool); 10] = [
    ("/ui/overview", "Overview", false),
    ("/ui/reports", "Reports", false),
    ("/ui/postbacks", "Postbacks", false),
    ("/ui/conversions", "Conversions", false),
    ("/ui/clicks", "Clicks", false),
    ("/ui/sources", "Sources", false),
    ("/ui/links", "Links", false),
    ("/ui/destinations", "Destinations", false),
    ("/ui/alerts", "Alerts", false),
    ("/ui/users", "Users", true),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · postbackd" }
            link rel="icon" href=(assets::url("icon.svg")) type="image/svg+xml";
            link rel="stylesheet" href=(assets::url("app.css"));
            script src=(assets::url("app.js")) defer {}
        }
    }
}

/// A signed-in page: navigation with `active` marked, the viewer's name
/// and the sign-out button.
pub fn page(viewer: &Viewer, active: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    div.bar {
                        a.brand href="/ui/overview" {
                            img src=(assets::url("icon.svg")) alt="";
                            "postbackd"
                        }
                        nav.main aria-label="Main" {
                            @for (href, label, admin_only) in NAV {
                                @if !admin_only || viewer.is_admin() {
                                    @if href == active {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                        div.who {
                            span { (viewer.name) " · " (viewer.role_label()) }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(viewer.csrf);
                                button.secondary type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// A page outside the signed-in shell (sign-in, first set-up, errors
/// before a session exists).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { main #main.login { (body) } }
        }
    }
}

/// An HTML response with the dashboard's headers: the CSP, no caching
/// (pages carry CSRF tokens and private numbers), no sniffing, no referrer
/// to other origins.
pub fn respond(status: StatusCode, m: Markup) -> Resp {
    let mut r = Response::new(full(m.into_string()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure_headers(h);
    r
}

/// The headers every dashboard answer carries, pages and redirects alike.
pub fn secure_headers(h: &mut hyper::HeaderMap) {
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
}

/// `303 See Other` to a path of this site (after a form post).
pub fn see_other(location: &str) -> Resp {
    let mut r = Response::new(full(""));
    *r.status_mut() = StatusCode::SEE_OTHER;
    // Only our own paths: never a URL taken from the request.
    let loc = if location.starts_with('/') && !location.starts_with("//") {
        location
    } else {
        "/ui/overview"
    };
    if let Ok(v) = HeaderValue::from_str(loc) {
        r.headers_mut().insert(hyper::header::LOCATION, v);
    }
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure_headers(r.headers_mut());
    r
}

/// `1234567` → `1,234,567`.
pub fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A decimal string (`-12345.5`) rounded half away from zero to `places`
/// decimals, with thousands separators (`-12,345.50`); anything that is
/// not a decimal is returned as it came.
pub fn decimal(s: &str, places: u32) -> String {
    use rust_decimal::{Decimal, RoundingStrategy};
    let Ok(d) = s.parse::<Decimal>() else {
        return s.to_string();
    };
    let r = d.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero);
    let text = format!("{:.*}", places as usize, r.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let grouped = int.parse::<u64>().map_or_else(|_| int.to_string(), num);
    let sign = if r.is_sign_negative() && !r.is_zero() {
        "-"
    } else {
        ""
    };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// Money: `12,345.50 USD`.
pub fn money(amount: &str, currency: &str) -> String {
    if currency.is_empty() {
        decimal(amount, 2)
    } else {
        format!("{} {currency}", decimal(amount, 2))
    }
}

/// A coloured badge for an outcome: green for what worked, amber for what
/// needs a look, red for what was refused. Colour only ever means status.
pub fn badge(tone: Tone, label: &str) -> Markup {
    let class = match tone {
        Tone::Ok => "badge ok",
        Tone::Warn => "badge warn",
        Tone::Bad => "badge bad",
        Tone::Plain => "badge",
    };
    html! { span class=(class) { (label) } }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Ok,
    Warn,
    Bad,
    Plain,
}

/// A domain error's sentence beside the form field it concerns (`field_of`
/// maps the page's error codes to its fields); nothing for other fields.
pub fn field_error(
    err: Option<&manage::Error>,
    field: &str,
    field_of: fn(&str) -> &'static str,
) -> Markup {
    html! {
        @if let Some(e) = err.filter(|e| field_of(e.code) == field) {
            span.err id=(format!("{field}-err")) role="alert" { (e.message) }
        }
    }
}

/// A copy button (shown by app.js; without JS the text is selectable).
pub fn copy_field(text: &str, label: &str) -> Markup {
    html! {
        div.copy {
            code { (text) }
            button.secondary type="button" data-copy=(text) hidden aria-label=(label) { "Copy" }
        }
    }
}

/// An empty state: what to do next.
pub fn empty(title: &str, next: Markup) -> Markup {
    html! { div.empty { strong { (title) } (next) } }
}

/// Raw markup already escaped by its producer (the SVG chart).
pub fn raw(s: String) -> Markup {
    PreEscaped(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_separators() {
        assert_eq!(num(0), "0");
        assert_eq!(num(999), "999");
        assert_eq!(num(1000), "1,000");
        assert_eq!(num(1234567), "1,234,567");
        assert_eq!(decimal("-12345.5", 2), "-12,345.50");
        assert_eq!(decimal("0.049", 2), "0.05");
        assert_eq!(decimal("-0.001", 2), "0.00");
        assert_eq!(decimal("7", 2), "7.00");
        assert_eq!(decimal("n/a", 2), "n/a");
        assert_eq!(money("1500", "EUR"), "1,500.00 EUR");
    }
}
