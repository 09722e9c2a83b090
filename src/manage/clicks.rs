//! Recording a click, whichever way it arrives: the `/c/` redirect, the
//! page tag's `POST /e/click` and the admin's `POST /api/v1/clicks` build
//! it here and store it through one writer job (`ingest::record_click`),
//! so the three get the same bounds, click quality, unique decision and
//! report roll-ups. The edge reads the request (headers, body); this file
//! knows no HTTP.

use std::net::IpAddr;

use serde::Deserialize;

use super::Error;
use crate::app::App;
use crate::ingest;
use crate::store::catalog::LinkEntry;
use crate::store::records::ClickRecord;
use crate::store::rollup;
use crate::tracking::{click, quality};
use crate::util::clock::now_ms;
use crate::util::ids;
use crate::util::text::truncate;

/// Most query parameters recorded per click.
pub const MAX_CLICK_PARAMS: usize = 64;
/// Longest recorded parameter name / value, user agent, referrer.
pub const MAX_CLICK_VALUE: usize = 1024;
/// Longest recorded landing URL.
pub const MAX_LANDING_URL: usize = 4096;
/// Longest `_fbc` / `_fbp` value kept.
pub const MAX_COOKIE_VALUE: usize = 256;
/// Longest external ID.
pub const MAX_EXTERNAL_ID: usize = 128;

/// How a click arrived (`ClickRecord::via`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Redirect,
    Tag,
    Api,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Redirect => "",
            Via::Tag => "tag",
            Via::Api => "api",
        }
    }
}

/// What the edge read from the request (or the API caller gave).
#[derive(Debug)]
pub struct NewClick {
    pub via: Via,
    /// The visitor's address (the client IP; the caller's for the API).
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
    /// The click parameters (bounded by [`click_params`]).
    pub params: Vec<(String, String)>,
    /// `_fbc` as the browser has it; built from `fbclid` when absent.
    pub fbc: Option<String>,
    pub fbp: Option<String>,
    pub head: bool,
    pub prefetch: bool,
    /// `CF-IPCountry` from a trusted proxy, when there is one.
    pub proxy_country: Option<String>,
    pub landing_url: Option<String>,
    pub external_id: Option<String>,
}

/// A click built and encoded, not yet stored.
pub struct Prepared {
    pub id: String,
    pub rec: ClickRecord,
    write: ingest::ClickWrite,
}

/// Build the click record for `link` (pure work, on the handler's thread).
pub fn prepare(app: &App, link: &LinkEntry, c: NewClick) -> Prepared {
    let now = now_ms();
    let id = ids::new_id(now);
    // A redirect builds `fbc` from a new fbclid (the cookie may be an older
    // click's); the tag sends the `_fbc` cookie it keeps current itself,
    // which is the value Meta's pixel sees on the page.
    let from_fbclid = || {
        c.params
            .iter()
            .find(|(k, _)| k == "fbclid")
            .filter(|(_, v)| !v.is_empty())
            .map(|(_, v)| click::fbc(now, v))
    };
    let fbc = match (c.via, c.fbc) {
        (Via::Tag, Some(f)) => Some(f),
        (_, f) => from_fbclid().or(f),
    };
    let mut q = quality::classify(c.user_agent.as_deref(), c.head, c.prefetch);
    if c.via == Via::Api && c.user_agent.is_none() {
        // A server-side funnel that passes no user agent is the admin's own
        // server, not a bot visiting: counted as a click of unknown device.
        q = quality::Quality {
            device: "other",
            os: None,
            browser: None,
            bot: false,
        };
    }
    // The database when there is one; a trusted proxy's header when the
    // database is unset or has no entry for the address (private ranges).
    let country =
        c.ip.and_then(|ip| app.geo.as_ref().and_then(|g| g.country(ip)))
            .or(c.proxy_country);
    let ip_text = c.ip.map(|ip| ip.to_string()).unwrap_or_default();
    // Bots are never unique, and are not visitors to remember. An API
    // click without an IP is told apart by its external ID, and without
    // either it cannot be: not unique.
    let who = match (&c.ip, &c.external_id) {
        (Some(_), _) => Some(ip_text.clone()),
        (None, Some(e)) => Some(format!("external:{e}")),
        (None, None) => None,
    };
    let visitor = who.filter(|_| !q.bot).map(|who| {
        quality::visitor_hash(
            app.store.visitor_key(),
            &link.slug,
            &who,
            c.user_agent.as_deref().unwrap_or(""),
        )
    });
    let rec = ClickRecord {
        ms: now,
        slug: link.slug.clone(),
        source_id: link.rec.source_id,
        campaign: link.rec.campaign.clone(),
        head: c.head,
        ip: ip_text,
        user_agent: c.user_agent,
        referrer: c.referrer,
        fbc,
        fbp: c.fbp,
        subs: rollup::click_subs(&link.rec.subs, &c.params),
        cost: rollup::click_cost(link.rec.cost.as_ref(), &c.params),
        params: c.params,
        device: q.device.to_string(),
        os: q.os,
        browser: q.browser,
        country,
        bot: q.bot,
        unique: false,
        via: c.via.as_str().to_string(),
        landing_url: c.landing_url,
        external_id: c.external_id,
    };
    let window_ms = u64::from(app.config.unique_window_hours) * 3_600_000;
    let write = ingest::ClickWrite::new(id.clone(), &rec).with_visitor(visitor, now, window_ms);
    Prepared { id, rec, write }
}

/// Store a prepared click; returns once it is durable (fsynced), with its
/// roll-up rows in the same transaction.
pub async fn commit(app: &App, p: Prepared) -> Result<(String, ClickRecord), Error> {
    let w = p.write;
    let taken = app
        .store
        .write(move |ctx| ingest::record_click(ctx, w))
        .await?;
    let unique = taken.map_err(|other| {
        Error::conflict(
            "external_id_taken",
            format!(
                "external_id already names click {other}; every click needs its own external ID \
                 (look the click up with GET /api/v1/clicks/EXTERNAL_ID)"
            ),
        )
    })?;
    let mut rec = p.rec;
    rec.unique = unique;
    Ok((p.id, rec))
}

/// Query parameters, decoded leniently (a click is never refused for a
/// malformed query: the visitor must still reach the offer), bounded.
pub fn click_params(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .take(MAX_CLICK_PARAMS)
        .map(|(k, v)| {
            (
                truncate(&k, MAX_CLICK_VALUE).to_string(),
                truncate(&v, MAX_CLICK_VALUE).to_string(),
            )
        })
        .collect()
}

/// The query of a landing URL (`https://lp.example/?gclid=x#top` → `gclid=x`).
pub fn landing_query(url: &str) -> &str {
    let before_fragment = url.split('#').next().unwrap_or("");
    before_fragment.split_once('?').map_or("", |(_, q)| q)
}

/// `POST /api/v1/clicks`: a click created by the admin's own server (a
/// funnel or CRM that does not redirect).
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ClickIn {
    pub link: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
    pub landing_url: Option<String>,
    /// Click parameters (`{"gclid": "...", "utm_source": "..."}`), after
    /// the landing URL's own.
    pub params: Option<serde_json::Map<String, serde_json::Value>>,
    pub external_id: Option<String>,
    pub fbc: Option<String>,
    pub fbp: Option<String>,
}

/// Validate and record an API click.
pub async fn create(app: &App, input: ClickIn) -> Result<(String, ClickRecord), Error> {
    let slug = input.link.as_deref().unwrap_or("").trim();
    if slug.is_empty() {
        return Err(Error::invalid(
            "invalid_link",
            "link is required: the slug of the tracking link this click belongs to",
        ));
    }
    let link = super::links::get(app, slug)?;
    let ip = match input.ip.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(s.parse::<IpAddr>().map_err(|_| {
            Error::invalid(
                "invalid_ip",
                "ip must be the visitor's IPv4 or IPv6 address, such as 203.0.113.7",
            )
        })?),
    };
    let bounded = |v: Option<String>, max: usize, field: &'static str| -> Result<_, Error> {
        match v {
            Some(s) if s.len() > max => Err(Error::invalid(
                "too_large",
                format!("{field} is longer than {max} bytes"),
            )),
            Some(s) if s.chars().any(char::is_control) => Err(Error::invalid(
                "invalid_text",
                format!("{field} contains control characters"),
            )),
            Some(s) if s.trim().is_empty() => Ok(None),
            other => Ok(other),
        }
    };
    let landing_url = bounded(input.landing_url, MAX_LANDING_URL, "landing_url")?;
    if let Some(u) = &landing_url
        && click::validate_destination(u).is_err()
    {
        return Err(Error::invalid(
            "invalid_landing_url",
            "landing_url must be an absolute http:// or https:// URL (the page the visitor landed on)",
        ));
    }
    let external_id =
        bounded(input.external_id, MAX_EXTERNAL_ID, "external_id")?.map(|e| e.trim().to_string());
    let mut params = click_params(landing_url.as_deref().map_or("", landing_query));
    for (k, v) in input.params.unwrap_or_default() {
        let v = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                return Err(Error::invalid(
                    "invalid_params",
                    format!("params.{} must be a string or a number", truncate(&k, 64)),
                ));
            }
        };
        if params.len() >= MAX_CLICK_PARAMS {
            return Err(Error::invalid(
                "too_large",
                format!("a click records at most {MAX_CLICK_PARAMS} parameters"),
            ));
        }
        if k.len() > MAX_CLICK_VALUE || v.len() > MAX_CLICK_VALUE {
            return Err(Error::invalid(
                "too_large",
                format!("parameter names and values are limited to {MAX_CLICK_VALUE} bytes"),
            ));
        }
        params.push((k, v));
    }
    let c = NewClick {
        via: Via::Api,
        ip,
        user_agent: bounded(input.user_agent, MAX_CLICK_VALUE, "user_agent")?,
        referrer: bounded(input.referrer, MAX_CLICK_VALUE, "referrer")?,
        params,
        fbc: bounded(input.fbc, MAX_COOKIE_VALUE, "fbc")?,
        fbp: bounded(input.fbp, MAX_COOKIE_VALUE, "fbp")?,
        head: false,
        prefetch: false,
        proxy_country: None,
        landing_url,
        external_id,
    };
    commit(app, prepare(app, &link, c)).await
}

/// A click by click ID (any case, as a network or a person typed it) or by
/// external ID (exact). Returns the click ID with the record.
pub async fn find(app: &App, raw: &str) -> Result<(String, ClickRecord), Error> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned();
    let id = ids::normalize_click_id(&decoded);
    let exact = decoded.trim().to_string();
    let found = app
        .store
        .read(move |rtx| {
            let clicks = rtx.open_table(crate::store::CLICKS)?;
            let id = match clicks.get(id.as_str())? {
                Some(_) => id,
                None => {
                    let ext = rtx.open_table(crate::store::EXTERNAL_IDS)?;
                    match ext.get(exact.as_str())? {
                        Some(v) => v.value().to_string(),
                        None => return Ok(None),
                    }
                }
            };
            let Some(v) = clicks.get(id.as_str())? else {
                return Ok(None);
            };
            let rec: ClickRecord = crate::store::records::decode(v.value())?;
            Ok(Some((id, rec)))
        })
        .await?;
    found.ok_or_else(|| {
        Error::not_found(
            "unknown_click",
            format!("no click with ID or external ID `{}`", truncate(raw, 64)),
        )
    })
}
