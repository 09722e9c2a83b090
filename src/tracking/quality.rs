//! Click quality, decided from the request alone: the device class, OS and
//! browser from the user agent (uap-core's data through the `ua-parser`
//! crate), whether the click is a bot (the `isbot` crate's patterns, an
//! empty user agent, HEAD, a prefetch header), the country a trusted proxy
//! names (`CF-IPCountry`), and the keyed visitor hash the writer uses to
//! decide `unique`. Pure: the parsers are compiled once per process from
//! data compiled into the binary.

use std::net::IpAddr;
use std::sync::LazyLock;

use hmac::{KeyInit, Mac};
use hyper::HeaderMap;
use ipnet::IpNet;
use serde::Deserialize;

use crate::util::net;

/// Device classes, as stored in `ClickRecord::device` and reported.
pub const DESKTOP: &str = "desktop";
pub const MOBILE: &str = "mobile";
pub const TABLET: &str = "tablet";
pub const BOT: &str = "bot";
pub const OTHER: &str = "other";

/// What a click's request says about its visitor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quality {
    /// One of [`DESKTOP`], [`MOBILE`], [`TABLET`], [`BOT`], [`OTHER`].
    pub device: &'static str,
    /// uap-core's OS family (`iOS`, `Android`, `Windows`, `Mac OS X`...),
    /// without a version: reports group by it, and versions would split
    /// every row a dozen ways.
    pub os: Option<String>,
    /// uap-core's browser family (`Chrome`, `Mobile Safari`, `Facebook`,
    /// `Googlebot`, `curl`...), without a version, for the same reason.
    pub browser: Option<String>,
    pub bot: bool,
}

/// The browser and OS halves of uap-core's `regexes.yaml` (its device half
/// is brand/model data postbackd does not keep: see Cargo.toml).
#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    user_agent_parsers: Vec<ua_parser::user_agent::Parser<'a>>,
    #[serde(borrow)]
    os_parsers: Vec<ua_parser::os::Parser<'a>>,
}

struct Parsers {
    browser: ua_parser::user_agent::Extractor<'static>,
    os: ua_parser::os::Extractor<'static>,
    bots: isbot::Bots,
}

static DATA: &str = include_str!("uap-core/regexes.json");

static PARSERS: LazyLock<Parsers> = LazyLock::new(|| {
    // The data is compiled in and checked by the tests: a failure here is
    // a broken build, not bad input.
    let data: Data<'static> = serde_json::from_str(DATA).expect("uap-core data parses");
    let browser = ua_parser::user_agent::Builder::new()
        .push_all(data.user_agent_parsers)
        .expect("uap-core browser regexes compile")
        .build()
        .expect("uap-core browser parser builds");
    let os = ua_parser::os::Builder::new()
        .push_all(data.os_parsers)
        .expect("uap-core OS regexes compile")
        .build()
        .expect("uap-core OS parser builds");
    Parsers {
        browser,
        os,
        bots: isbot::Bots::default(),
    }
});

/// Compile the parsers now (at start), so the first click does not wait
/// for it (~60 ms optimized, longer in a debug build). Safe to call from
/// any number of threads: the others wait for the one that compiles.
pub fn warm() {
    LazyLock::force(&PARSERS);
}

/// Classify one click. `head`: a HEAD request; `prefetch`: the request
/// carried a prefetch header ([`is_prefetch`]).
pub fn classify(user_agent: Option<&str>, head: bool, prefetch: bool) -> Quality {
    let ua = user_agent.map(str::trim).unwrap_or("");
    let mut q = if ua.len() <= CACHED_UA_LEN {
        match CACHE.get(ua) {
            Some(q) => q,
            None => {
                let q = parse_agent(ua);
                CACHE.insert(ua.to_string(), q.clone());
                q
            }
        }
    } else {
        parse_agent(ua)
    };
    if head || prefetch {
        q.bot = true;
        q.device = BOT;
    }
    q
}

/// User agents up to this length are cached (real browsers' are 100-300
/// bytes; a longer one is parsed every time, so the cache's memory stays
/// bounded: at most [`CACHED_AGENTS`] × this).
const CACHED_UA_LEN: usize = 512;
/// How many user agents' verdicts are kept (about 1 MiB at most).
const CACHED_AGENTS: usize = 2048;

static CACHE: LazyLock<quick_cache::sync::Cache<String, Quality>> =
    LazyLock::new(|| quick_cache::sync::Cache::new(CACHED_AGENTS));

/// What the user agent alone says (the part [`classify`] caches).
fn parse_agent(ua: &str) -> Quality {
    let p = &*PARSERS;
    let browser = p
        .browser
        .extract(ua)
        .map(|v| v.family.into_owned())
        .filter(|f| f != "Other");
    let os =
        p.os.extract(ua)
            .map(|v| v.os.into_owned())
            .filter(|f| f != "Other");
    // No user agent at all is a script; real browsers always send one.
    let bot = ua.is_empty() || p.bots.is_bot(ua);
    let device = if bot {
        BOT
    } else {
        device_class(ua, os.as_deref())
    };
    Quality {
        device,
        os,
        browser,
        bot,
    }
}

/// The device class from the OS family uap-core found and the one token
/// browsers use to say "phone" (`Mobile`, as Google asks of Android
/// browsers; Firefox also says `Tablet`). iPads that ask for desktop sites
/// send a Mac user agent and count as desktop: nothing in the request says
/// otherwise.
fn device_class(ua: &str, os: Option<&str>) -> &'static str {
    let Some(os) = os else { return OTHER };
    match os {
        "iOS" if ua.contains("iPad") => TABLET,
        "iOS" => MOBILE,
        "Android" | "Fire OS" | "HarmonyOS" => {
            if ua.contains("Tablet") {
                TABLET
            } else if ua.contains("Mobile") {
                MOBILE
            } else {
                TABLET
            }
        }
        "Windows Phone" | "BlackBerry OS" | "KaiOS" | "Firefox OS" | "Symbian OS" | "Symbian^3"
        | "Sailfish" | "Tizen" => MOBILE,
        "BlackBerry Tablet OS" | "Kindle" => TABLET,
        "Mac OS X" | "Chrome OS" | "Linux" | "Ubuntu" | "Debian" | "Fedora" | "Red Hat"
        | "Mint" | "FreeBSD" | "OpenBSD" | "NetBSD" | "Solaris" => DESKTOP,
        w if w.starts_with("Windows") => DESKTOP,
        _ => OTHER,
    }
}

/// A prefetch or prerender, not a visit: `Purpose: prefetch` (older
/// Chrome), `Sec-Purpose: prefetch[;prerender]` (Chrome, Firefox),
/// `X-Moz: prefetch` (older Firefox).
pub fn is_prefetch(headers: &HeaderMap) -> bool {
    let says = |name: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(';')
                    .any(|t| t.trim().eq_ignore_ascii_case("prefetch"))
            })
        })
    };
    says("purpose") || says("sec-purpose") || says("x-moz")
}

/// The country a trusted proxy put in `CF-IPCountry`, when the TCP peer is
/// one of `trusted` (anyone else can send the header). Two ASCII letters,
/// uppercased; Cloudflare's `XX` (unknown) and `T1` (Tor) are unknown.
pub fn proxy_country(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> Option<String> {
    if !net::is_trusted(peer, trusted) {
        return None;
    }
    let v = headers.get("cf-ipcountry")?.to_str().ok()?.trim();
    country_code(v)
}

/// An ISO 3166-1 alpha-2 code, uppercased, or `None` for anything else and
/// for the codes that mean "unknown" (`XX`, `ZZ`) or Tor (`T1`).
pub fn country_code(v: &str) -> Option<String> {
    let b = v.as_bytes();
    if b.len() != 2 || !b.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let up = v.to_ascii_uppercase();
    (!matches!(up.as_str(), "XX" | "ZZ" | "T1")).then_some(up)
}

/// Length of a visitor hash (the key of the writer's unique-visit table).
pub const VISITOR_HASH_LEN: usize = 16;

/// The visitor key of a click: HMAC-SHA256 over (slug, IP, user agent)
/// under a per-database random key, cut to 16 bytes. Keyed, so the table
/// does not hold a second, reversible copy of visitors' IPs (an unkeyed
/// hash of an IPv4 address is undone by trying all 2^32); 128 bits, so
/// two visitors share a key with negligible probability. Each part is
/// length-prefixed so `("ab", "c")` and `("a", "bc")` differ.
pub fn visitor_hash(key: &[u8], slug: &str, ip: &str, user_agent: &str) -> [u8; VISITOR_HASH_LEN] {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
    for part in [slug, ip, user_agent] {
        mac.update(&(part.len() as u64).to_le_bytes());
        mac.update(part.as_bytes());
    }
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; VISITOR_HASH_LEN];
    out.copy_from_slice(&full[..VISITOR_HASH_LEN]);
    out
}

/// Is a click at `now_ms` unique, given the visitor's previous click on the
/// link (if the table still has it) and the window? A clock that stepped
/// back counts as within the window.
pub fn is_unique(previous_ms: Option<u64>, now_ms: u64, window_ms: u64) -> bool {
    previous_ms.is_none_or(|p| now_ms.saturating_sub(p) >= window_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_verdicts_equal_parsed_ones_and_keep_head_apart() {
        for ua in [CHROME_DESKTOP, IPHONE_SAFARI, GOOGLEBOT, ""] {
            let parsed = parse_agent(ua);
            // The first call fills the cache, the second reads it.
            assert_eq!(classify(Some(ua), false, false), parsed, "{ua}");
            assert_eq!(classify(Some(ua), false, false), parsed, "{ua}");
        }
        // A HEAD or prefetch makes this click a bot, not the agent's later
        // clicks.
        assert!(classify(Some(IPAD), true, false).bot);
        assert!(classify(Some(IPAD), false, true).bot);
        assert_eq!(classify(Some(IPAD), false, false).device, TABLET);
        // Agents too long to cache are still parsed.
        let long = format!("{ANDROID_CHROME} {}", "x".repeat(CACHED_UA_LEN));
        assert_eq!(classify(Some(&long), false, false).device, MOBILE);
    }

    /// Realistic user agents, one per kind of click a tracker sees.
    const CHROME_DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    const IPHONE_SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    const ANDROID_CHROME: &str = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    const FACEBOOK_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/21E219 [FBAN/FBIOS;FBAV/458.0.0.38.108;FBBV/577247683;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.4;FBSS/3;FBCR/;FBID/phone;FBLC/en_US;FBOP/80]";
    const FACEBOOK_ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/462.0.0.45.108;]";
    const GOOGLEBOT: &str =
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    const CURL: &str = "curl/8.5.0";

    /// (device, os, browser, bot)
    type Expected = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        bool,
    );

    fn check(ua: &str, expected: Expected) {
        let q = classify(Some(ua), false, false);
        let got = (q.device, q.os.as_deref(), q.browser.as_deref(), q.bot);
        assert_eq!(got, expected, "{ua:?}");
    }

    #[test]
    fn classifies_the_user_agents_a_tracker_sees() {
        let table: &[(&str, Expected)] = &[
            (
                CHROME_DESKTOP,
                (DESKTOP, Some("Windows"), Some("Chrome"), false),
            ),
            (
                IPHONE_SAFARI,
                (MOBILE, Some("iOS"), Some("Mobile Safari"), false),
            ),
            (
                ANDROID_CHROME,
                (MOBILE, Some("Android"), Some("Chrome Mobile"), false),
            ),
            (IPAD, (TABLET, Some("iOS"), Some("Mobile Safari"), false)),
            (FACEBOOK_IOS, (MOBILE, Some("iOS"), Some("Facebook"), false)),
            (
                FACEBOOK_ANDROID,
                (MOBILE, Some("Android"), Some("Facebook"), false),
            ),
            (
                "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
                (TABLET, Some("Android"), Some("Chrome"), false),
            ),
            (
                "Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0",
                (TABLET, Some("Android"), Some("Firefox Mobile"), false),
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
                (DESKTOP, Some("Mac OS X"), Some("Safari"), false),
            ),
            (
                "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
                (DESKTOP, Some("Chrome OS"), Some("Chrome"), false),
            ),
            (
                "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
                (DESKTOP, Some("Ubuntu"), Some("Firefox"), false),
            ),
            (GOOGLEBOT, (BOT, None, Some("Googlebot"), true)),
            (
                "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
                (BOT, None, Some("FacebookBot"), true),
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
                (BOT, Some("Linux"), Some("HeadlessChrome"), true),
            ),
            (CURL, (BOT, None, Some("curl"), true)),
            (
                "python-requests/2.31.0",
                (BOT, None, Some("Python Requests"), true),
            ),
            ("", (BOT, None, None, true)),
            ("   ", (BOT, None, None, true)),
            ("SomethingNew/1.0", (OTHER, None, None, false)),
        ];
        for (ua, expected) in table {
            check(ua, *expected);
        }
    }

    #[test]
    fn head_prefetch_and_a_missing_agent_are_bots() {
        assert_eq!(classify(None, false, false).device, BOT);
        let head = classify(Some(IPHONE_SAFARI), true, false);
        assert!(head.bot);
        assert_eq!(head.device, BOT);
        // The OS and browser are still what the agent says.
        assert_eq!(head.os.as_deref(), Some("iOS"));
        assert!(classify(Some(CHROME_DESKTOP), false, true).bot);
        assert!(!classify(Some(CHROME_DESKTOP), false, false).bot);
    }

    #[test]
    fn prefetch_headers() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.append(*k, v.parse().unwrap());
            }
            is_prefetch(&m)
        };
        assert!(h(&[("purpose", "prefetch")]));
        assert!(h(&[("sec-purpose", "prefetch;prerender")]));
        assert!(h(&[("sec-purpose", "Prefetch")]));
        assert!(h(&[("x-moz", "prefetch")]));
        assert!(!h(&[]));
        assert!(!h(&[("sec-purpose", "prerender-ish")]));
        assert!(!h(&[("sec-fetch-dest", "document")]));
    }

    #[test]
    fn cf_ipcountry_is_believed_only_from_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert("cf-ipcountry", "de".parse().unwrap());
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(
            proxy_country(proxy, &headers, &trusted).as_deref(),
            Some("DE")
        );
        // IPv4-mapped IPv6 peers compare as IPv4, as for client_ip.
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(
            proxy_country(mapped, &headers, &trusted).as_deref(),
            Some("DE")
        );
        assert_eq!(proxy_country(stranger, &headers, &trusted), None);
        assert_eq!(proxy_country(proxy, &headers, &[]), None);
        for (v, want) in [
            ("US", Some("US")),
            (" gb ", Some("GB")),
            ("XX", None),
            ("T1", None),
            ("t1", None),
            ("USA", None),
            ("1A", None),
            ("", None),
        ] {
            headers.insert("cf-ipcountry", v.parse().unwrap());
            assert_eq!(
                proxy_country(proxy, &headers, &trusted).as_deref(),
                want,
                "{v:?}"
            );
        }
    }

    #[test]
    fn visitor_hash_is_keyed_and_separates_its_parts() {
        let a = visitor_hash(b"k1", "s", "203.0.113.5", CURL);
        assert_eq!(a, visitor_hash(b"k1", "s", "203.0.113.5", CURL));
        assert_ne!(a, visitor_hash(b"k2", "s", "203.0.113.5", CURL));
        assert_ne!(a, visitor_hash(b"k1", "t", "203.0.113.5", CURL));
        assert_ne!(a, visitor_hash(b"k1", "s", "203.0.113.6", CURL));
        assert_ne!(a, visitor_hash(b"k1", "s", "203.0.113.5", GOOGLEBOT));
        assert_ne!(
            visitor_hash(b"k", "ab", "c", ""),
            visitor_hash(b"k", "a", "bc", "")
        );
    }

    #[test]
    fn unique_window() {
        let h = 3_600_000;
        assert!(is_unique(None, 10 * h, 24 * h));
        assert!(!is_unique(Some(10 * h), 10 * h + 1, 24 * h));
        assert!(!is_unique(Some(10 * h), 34 * h - 1, 24 * h));
        assert!(is_unique(Some(10 * h), 34 * h, 24 * h));
        // The clock stepped back: not unique.
        assert!(!is_unique(Some(10 * h), 9 * h, 24 * h));
    }
}
