//! The admin API under `/api/v1`, behind `Authorization: Bearer <token>`
//! compared in constant time. JSON in and out.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::Ordering;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use redb::ReadableTableMetadata;
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::{Resp, destinations, json, json_response, truncate};
use crate::ingest::{self, ReplayError};
use crate::postback::{self, Status};
use crate::presets::{self, MacroSyntax};
use crate::server::App;
use crate::store::records::{
    self, ClickRecord, ConversionRecord, EventRecord, LinkRecord, SourceRecord,
};
use crate::store::{self, CLICKS, CONVERSIONS, EVENTS, StoreError};
use crate::{click, config, currency, ids, signing};

/// Largest admin request body.
const MAX_ADMIN_BODY: usize = 256 * 1024;
/// Page size limits for list endpoints.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;
/// Records examined per list request at most; past it the page ends early
/// with a cursor, so one request never scans a huge table.
const SCAN_BUDGET: usize = 100_000;

pub async fn handle(app: &App, req: Request<Incoming>, path: &str) -> Result<Resp, ApiError> {
    authorize(app, &req)?;
    let segs: Vec<&str> = path
        .trim_start_matches("/api/v1")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let method = req.method().clone();
    let query = Query::parse(req.uri().query().unwrap_or(""));
    match (&method, segs.as_slice()) {
        (&Method::GET, ["sources"]) => Ok(list_sources(app)),
        (&Method::POST, ["sources"]) => create_source(app, body(req).await?).await,
        (&Method::GET, ["sources", id]) => get_source(app, parse_id(id)?),
        (&Method::PATCH, ["sources", id]) => {
            update_source(app, parse_id(id)?, body(req).await?).await
        }
        (&Method::DELETE, ["sources", id]) => delete_source(app, parse_id(id)?).await,
        (&Method::GET, ["links"]) => Ok(list_links(app)),
        (&Method::POST, ["links"]) => create_link(app, body(req).await?).await,
        (&Method::GET, ["links", slug]) => get_link(app, slug),
        (&Method::PATCH, ["links", slug]) => update_link(app, slug, body(req).await?).await,
        (&Method::DELETE, ["links", slug]) => delete_link(app, slug).await,
        (&Method::GET, ["clicks", id]) => get_click(app, id).await,
        (&Method::GET, ["conversions"]) => list_conversions(app, query).await,
        (&Method::GET, ["conversions", id]) => get_conversion(app, id).await,
        (&Method::GET, ["events"]) => list_events(app, query).await,
        (&Method::GET, ["events", id]) => get_event(app, id).await,
        (&Method::POST, ["events", id, "replay"]) => replay_event(app, id).await,
        (&Method::GET, ["presets"]) => Ok(list_presets()),
        (&Method::GET, ["stats"]) => stats(app).await,
        (&Method::POST, ["backup"]) => backup(app).await,
        (&Method::GET, ["destinations"]) => Ok(destinations::list(app)),
        (&Method::POST, ["destinations"]) => destinations::create(app, body(req).await?).await,
        (&Method::GET, ["destinations", id]) => destinations::get(app, parse_dest_id(id)?),
        (&Method::PATCH, ["destinations", id]) => {
            destinations::update(app, parse_dest_id(id)?, body(req).await?).await
        }
        (&Method::DELETE, ["destinations", id]) => {
            destinations::delete(app, parse_dest_id(id)?).await
        }
        (&Method::GET, ["deliveries"]) => destinations::list_deliveries(app, query).await,
        (&Method::GET, ["deliveries", id]) => destinations::get_delivery(app, id).await,
        (&Method::POST, ["deliveries", id, "retry"]) => destinations::retry_delivery(app, id).await,
        _ => Err(ApiError::not_found(
            "not_found",
            format!(
                "no admin endpoint {method} {}; see the README's API reference",
                truncate(path, 80)
            ),
        )),
    }
}

fn authorize(app: &App, req: &Request<Incoming>) -> Result<(), ApiError> {
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or(b"");
    if bool::from(given.ct_eq(app.admin_token().as_bytes())) {
        return Ok(());
    }
    // The path only: never the header, which may hold a near-miss token.
    tracing::warn!(path = %req.uri().path(), "admin request without a valid token");
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or wrong admin token; send `Authorization: Bearer <token>` with the token printed \
         at first start (stored in the data dir's admin_token file) or POSTBACKD_ADMIN_TOKEN",
    ))
}

pub(super) async fn body<T: for<'de> Deserialize<'de>>(
    req: Request<Incoming>,
) -> Result<T, ApiError> {
    // The body is read as JSON whatever the Content-Type says: `curl -d`
    // labels JSON as a form, and refusing that helps nobody.
    let bytes = Limited::new(req.into_body(), MAX_ADMIN_BODY)
        .collect()
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("admin request bodies are limited to {MAX_ADMIN_BODY} bytes"),
            )
        })?
        .to_bytes();
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        &bytes[..]
    };
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the JSON body is not valid: {e}"))
    })
}

fn parse_dest_id(s: &str) -> Result<u64, ApiError> {
    s.parse().map_err(|_| {
        ApiError::not_found(
            "unknown_destination",
            format!("no destination with id `{}`", truncate(s, 32)),
        )
    })
}

pub(super) fn parse_id(s: &str) -> Result<u64, ApiError> {
    s.parse().map_err(|_| {
        ApiError::not_found(
            "unknown_source",
            format!("no source with id `{}`", truncate(s, 32)),
        )
    })
}

/// Query-string options of list endpoints.
#[derive(Default)]
pub(super) struct Query(BTreeMap<String, String>);

impl Query {
    fn parse(q: &str) -> Query {
        Query(form_urlencoded::parse(q.as_bytes()).into_owned().collect())
    }
    pub(super) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }
    pub(super) fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_limit",
                        format!("limit must be 1 to {MAX_LIMIT}"),
                    )
                }),
        }
    }
    fn time(&self, k: &str) -> Result<Option<u64>, ApiError> {
        self.get(k)
            .map(|v| {
                json::parse_time(v).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_time",
                        format!("{k} must be RFC 3339 (2026-01-31T00:00:00Z) or Unix seconds"),
                    )
                })
            })
            .transpose()
    }
    pub(super) fn u64(&self, k: &str) -> Result<Option<u64>, ApiError> {
        self.get(k)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::bad_request("invalid_filter", format!("{k} must be a number"))
                })
            })
            .transpose()
    }
}

// ---- sources ----------------------------------------------------------------

/// Body of `POST /api/v1/sources` and `PATCH /api/v1/sources/{id}`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SourceIn {
    name: Option<String>,
    preset: Option<String>,
    params: Option<BTreeMap<String, String>>,
    status_map: Option<BTreeMap<String, String>>,
    default_currency: Option<String>,
    macro_syntax: Option<String>,
    signing: Option<SigningIn>,
    allow_ips: Option<Vec<String>>,
    /// `null` returns the source to the server's default limit.
    #[serde(default, deserialize_with = "double_option")]
    rate_limit: Option<Option<RateLimitIn>>,
}

/// `"signing": {"secrets": [...], "generate": true, "tolerance_s": 300}`.
/// Secrets may be given in full, or as their masked form from a GET to keep
/// an existing one; `generate` adds a new random secret; `[]` turns signing
/// off.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SigningIn {
    secrets: Option<Vec<String>>,
    #[serde(default)]
    generate: bool,
    tolerance_s: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitIn {
    per_second: u32,
    burst: Option<u32>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
pub(super) fn double_option<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Most secrets active at once (rotation needs two; a few more is slack).
const MAX_SECRETS: usize = 4;

impl SourceIn {
    /// Apply to a record, validating every field.
    /// Returns the secrets set or generated by this request (shown once).
    fn apply(self, rec: &mut SourceRecord) -> Result<Vec<String>, ApiError> {
        let mut new_secrets = Vec::new();
        if let Some(sg) = self.signing {
            if let Some(list) = sg.secrets {
                let mut out = Vec::new();
                for given in list {
                    // A masked secret from a GET keeps the existing one.
                    if let Some(existing) = rec
                        .signing_secrets
                        .iter()
                        .find(|e| signing::mask(e) == given)
                    {
                        out.push(existing.clone());
                        continue;
                    }
                    signing::decode_secret(&given).map_err(|why| {
                        ApiError::bad_request(
                            "invalid_signing",
                            format!("invalid signing secret: {why}"),
                        )
                    })?;
                    new_secrets.push(given.clone());
                    out.push(given);
                }
                rec.signing_secrets = out;
            }
            if sg.generate {
                let s = signing::generate_secret();
                new_secrets.push(s.clone());
                rec.signing_secrets.insert(0, s);
            }
            rec.signing_secrets.dedup();
            if rec.signing_secrets.len() > MAX_SECRETS {
                return Err(ApiError::bad_request(
                    "invalid_signing",
                    format!(
                        "at most {MAX_SECRETS} secrets can be active; drop old ones from `secrets`"
                    ),
                ));
            }
            if let Some(t) = sg.tolerance_s {
                if !(1..=3600).contains(&t) {
                    return Err(ApiError::bad_request(
                        "invalid_signing",
                        "tolerance_s must be 1 to 3600 seconds",
                    ));
                }
                rec.signing_tolerance_s = t;
            }
        }
        if let Some(list) = self.allow_ips {
            let mut out = Vec::new();
            for ip in list {
                let net = config::parse_net(ip.trim())
                    .map_err(|e| ApiError::bad_request("invalid_allow_ips", e.to_string()))?;
                out.push(net.trunc().to_string());
            }
            rec.allow_ips = out;
        }
        if let Some(rl) = self.rate_limit {
            rec.rate_limit = match rl {
                None => None,
                Some(r) => {
                    let burst = r.burst.unwrap_or(r.per_second.saturating_mul(2));
                    if !(1..=1_000_000).contains(&r.per_second) || !(1..=1_000_000).contains(&burst)
                    {
                        return Err(ApiError::bad_request(
                            "invalid_rate_limit",
                            "rate_limit needs per_second and burst from 1 to 1000000",
                        ));
                    }
                    Some((r.per_second, burst))
                }
            };
        }
        if let Some(n) = self.name {
            rec.name = super::valid_name(&n)?;
        }
        if let Some(p) = self.preset {
            if p.is_empty() {
                rec.preset = None;
            } else {
                let preset = presets::find(&p).ok_or_else(|| {
                    let ids: Vec<&str> = presets::all().iter().map(|p| p.id).collect();
                    ApiError::bad_request(
                        "unknown_preset",
                        format!(
                            "no preset `{}`; use one of: {}",
                            truncate(&p, 32),
                            ids.join(", ")
                        ),
                    )
                })?;
                rec.preset = Some(preset.id.to_string());
            }
        }
        if let Some(params) = self.params {
            let mut out = Vec::new();
            for (field, name) in params {
                if !postback::is_canonical(&field) {
                    return Err(ApiError::bad_request(
                        "invalid_params",
                        format!(
                            "`{}` is not a canonical field; map one of: click_id, amount, currency, \
                             transaction_id, event, status, country, state, city, zip",
                            truncate(&field, 32)
                        ),
                    ));
                }
                let ok = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.[]".contains(&b));
                if !ok {
                    return Err(ApiError::bad_request(
                        "invalid_params",
                        format!(
                            "parameter name for {field} must be 1-64 letters, digits, _ - . [ ]"
                        ),
                    ));
                }
                out.push((field, name));
            }
            rec.params = out;
        }
        if let Some(map) = self.status_map {
            let mut out = Vec::new();
            for (raw, st) in map {
                if Status::parse(&st).is_none() || raw.is_empty() || raw.len() > 64 {
                    return Err(ApiError::bad_request(
                        "invalid_status_map",
                        format!(
                            "status_map maps a network's value to approved, pending, rejected, refunded \
                             or chargeback; `{}` → `{}` is not valid",
                            truncate(&raw, 32),
                            truncate(&st, 32)
                        ),
                    ));
                }
                out.push((raw.to_ascii_lowercase(), st));
            }
            rec.status_map = out;
        }
        if let Some(c) = self.default_currency {
            rec.default_currency = currency::normalize(&c).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_currency",
                    "default_currency must be an ISO 4217 code such as USD",
                )
            })?;
        }
        if let Some(m) = self.macro_syntax {
            if m.is_empty() {
                rec.macro_syntax = None;
            } else {
                let s = MacroSyntax::parse(&m).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_macro_syntax",
                        "macro_syntax must be one of {x}, ${x}, #x#, [x]",
                    )
                })?;
                rec.macro_syntax = Some(s.as_str().to_string());
            }
        }
        Ok(new_secrets)
    }
}

fn list_sources(app: &App) -> Resp {
    let cat = app.store.catalog();
    let items: Vec<Value> = cat
        .sources
        .values()
        .map(|s| json::source(&app.config.public_url, s))
        .collect();
    json_response(StatusCode::OK, &json!({"items": items}))
}

fn get_source(app: &App, id: u64) -> Result<Resp, ApiError> {
    let cat = app.store.catalog();
    let s = cat
        .sources
        .get(&id)
        .ok_or_else(|| ApiError::not_found("unknown_source", format!("no source with id {id}")))?;
    Ok(json_response(
        StatusCode::OK,
        &json::source(&app.config.public_url, s),
    ))
}

async fn create_source(app: &App, input: SourceIn) -> Result<Resp, ApiError> {
    if input.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(ApiError::bad_request("invalid_name", "name is required"));
    }
    let mut rec = SourceRecord {
        name: String::new(),
        key: ids::random_hex(16),
        preset: None,
        params: Vec::new(),
        status_map: Vec::new(),
        default_currency: "USD".into(),
        macro_syntax: None,
        created_ms: store::now_ms(),
        signing_secrets: Vec::new(),
        signing_tolerance_s: signing::DEFAULT_TOLERANCE_S,
        allow_ips: Vec::new(),
        rate_limit: None,
    };
    let new_secrets = input.apply(&mut rec)?;
    let entry = app
        .store
        .write(move |ctx| {
            let id = store::next_counter(ctx, "next_source_id")?;
            ctx.sources()?
                .insert(id, records::encode(&rec).as_slice())?;
            Ok(ctx.catalog_mut().put_source(id, rec))
        })
        .await?;
    let mut body = json::source(&app.config.public_url, &entry);
    show_new_secrets(&mut body, new_secrets);
    Ok(json_response(StatusCode::CREATED, &body))
}

/// Secrets set or generated by this request are returned in full once, so
/// the sender can be configured; every later GET shows them masked.
fn show_new_secrets(body: &mut Value, secrets: Vec<String>) {
    if !secrets.is_empty() {
        body["signing"]["new_secrets"] = json!(secrets);
    }
}

async fn update_source(app: &App, id: u64, input: SourceIn) -> Result<Resp, ApiError> {
    let current = app
        .store
        .catalog()
        .sources
        .get(&id)
        .map(|s| s.rec.clone())
        .ok_or_else(|| ApiError::not_found("unknown_source", format!("no source with id {id}")))?;
    let mut rec = current;
    let new_secrets = input.apply(&mut rec)?;
    let entry = app
        .store
        .write(move |ctx| {
            if !ctx.catalog().sources.contains_key(&id) {
                return Ok(None);
            }
            ctx.sources()?
                .insert(id, records::encode(&rec).as_slice())?;
            Ok(Some(ctx.catalog_mut().put_source(id, rec)))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_source", format!("no source with id {id}")))?;
    let mut body = json::source(&app.config.public_url, &entry);
    show_new_secrets(&mut body, new_secrets);
    Ok(json_response(StatusCode::OK, &body))
}

async fn delete_source(app: &App, id: u64) -> Result<Resp, ApiError> {
    let removed = app
        .store
        .write(move |ctx| {
            let existed = ctx.sources()?.remove(id)?.is_some();
            if existed {
                ctx.catalog_mut().remove_source(id);
            }
            Ok(existed)
        })
        .await?;
    if !removed {
        return Err(ApiError::not_found(
            "unknown_source",
            format!("no source with id {id}"),
        ));
    }
    Ok(no_content())
}

pub(super) fn no_content() -> Resp {
    let mut r = Response::new(super::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

// ---- links ------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LinkIn {
    slug: Option<String>,
    destination: Option<String>,
    source: Option<Option<u64>>,
    campaign: Option<String>,
    param: Option<String>,
}

fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn valid_param(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.[]".contains(&b))
}

impl LinkIn {
    fn apply(self, app: &App, rec: &mut LinkRecord) -> Result<(), ApiError> {
        if let Some(d) = self.destination {
            click::validate_destination(&d)
                .map_err(|m| ApiError::bad_request("invalid_destination", m))?;
            rec.destination = d;
        }
        if let Some(s) = self.source {
            if let Some(id) = s
                && !app.store.catalog().sources.contains_key(&id)
            {
                return Err(ApiError::bad_request(
                    "unknown_source",
                    format!("no source with id {id}"),
                ));
            }
            rec.source_id = s;
        }
        if let Some(c) = self.campaign {
            if c.len() > 200 {
                return Err(ApiError::bad_request(
                    "invalid_campaign",
                    "campaign must be at most 200 characters",
                ));
            }
            rec.campaign = (!c.is_empty()).then_some(c);
        }
        if let Some(p) = self.param {
            if !valid_param(&p) {
                return Err(ApiError::bad_request(
                    "invalid_param",
                    "param must be 1-64 letters, digits, _ - . [ ]",
                ));
            }
            rec.param = p;
        }
        Ok(())
    }
}

fn list_links(app: &App) -> Resp {
    let cat = app.store.catalog();
    let items: Vec<Value> = cat
        .links
        .values()
        .map(|l| json::link(&app.config.public_url, l))
        .collect();
    json_response(StatusCode::OK, &json!({"items": items}))
}

fn get_link(app: &App, slug: &str) -> Result<Resp, ApiError> {
    let cat = app.store.catalog();
    let l = cat.links.get(slug).ok_or_else(|| unknown_link(slug))?;
    Ok(json_response(
        StatusCode::OK,
        &json::link(&app.config.public_url, l),
    ))
}

fn unknown_link(slug: &str) -> ApiError {
    ApiError::not_found(
        "unknown_link",
        format!("no link with slug `{}`", truncate(slug, 64)),
    )
}

async fn create_link(app: &App, input: LinkIn) -> Result<Resp, ApiError> {
    if input.destination.is_none() {
        return Err(ApiError::bad_request(
            "invalid_destination",
            "destination is required: the offer URL, with {click_id} or --CLICK-ID-- where the network's tracking parameter takes it",
        ));
    }
    let slug = match &input.slug {
        Some(s) if !valid_slug(s) => {
            return Err(ApiError::bad_request(
                "invalid_slug",
                "slug must be 1-64 letters, digits, - or _",
            ));
        }
        Some(s) => s.clone(),
        None => ids::new_id(0)[ids::TIME_DIGITS..ids::TIME_DIGITS + 10].to_string(),
    };
    let mut rec = LinkRecord {
        destination: String::new(),
        source_id: None,
        campaign: None,
        param: String::new(),
        created_ms: store::now_ms(),
    };
    let explicit_param = input.param.is_some();
    input.apply(app, &mut rec)?;
    if !explicit_param {
        // The network's own tracking parameter when the source knows it.
        rec.param = rec
            .source_id
            .and_then(|id| {
                app.store
                    .catalog()
                    .sources
                    .get(&id)
                    .and_then(|s| s.mapping.params.get("click_id").cloned())
            })
            .unwrap_or_else(|| "click_id".to_string());
    }
    let entry = app
        .store
        .write(move |ctx| {
            if ctx.catalog().links.contains_key(&slug) {
                return Ok(None);
            }
            ctx.links()?
                .insert(slug.as_str(), records::encode(&rec).as_slice())?;
            Ok(Some(ctx.catalog_mut().put_link(slug, rec)))
        })
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "slug_taken",
                "a link with this slug exists; choose another slug",
            )
        })?;
    Ok(json_response(
        StatusCode::CREATED,
        &json::link(&app.config.public_url, &entry),
    ))
}

async fn update_link(app: &App, slug: &str, input: LinkIn) -> Result<Resp, ApiError> {
    if input.slug.as_deref().is_some_and(|s| s != slug) {
        return Err(ApiError::bad_request(
            "invalid_slug",
            "a link's slug cannot change; create a new link",
        ));
    }
    let mut rec = app
        .store
        .catalog()
        .links
        .get(slug)
        .map(|l| l.rec.clone())
        .ok_or_else(|| unknown_link(slug))?;
    input.apply(app, &mut rec)?;
    let slug_owned = slug.to_string();
    let entry = app
        .store
        .write(move |ctx| {
            if !ctx.catalog().links.contains_key(&slug_owned) {
                return Ok(None);
            }
            ctx.links()?
                .insert(slug_owned.as_str(), records::encode(&rec).as_slice())?;
            Ok(Some(ctx.catalog_mut().put_link(slug_owned, rec)))
        })
        .await?
        .ok_or_else(|| unknown_link(slug))?;
    Ok(json_response(
        StatusCode::OK,
        &json::link(&app.config.public_url, &entry),
    ))
}

async fn delete_link(app: &App, slug: &str) -> Result<Resp, ApiError> {
    let s = slug.to_string();
    let removed = app
        .store
        .write(move |ctx| {
            let existed = ctx.links()?.remove(s.as_str())?.is_some();
            if existed {
                ctx.catalog_mut().remove_link(&s);
            }
            Ok(existed)
        })
        .await?;
    if !removed {
        return Err(unknown_link(slug));
    }
    Ok(no_content())
}

// ---- clicks, conversions, events ---------------------------------------------

/// One record by key from a string-keyed table, or a 404 with `code`.
pub(super) async fn get_record<R: records::Record + Send + 'static>(
    app: &App,
    table: redb::TableDefinition<'static, &'static str, &'static [u8]>,
    id: &str,
    code: &'static str,
) -> Result<R, ApiError> {
    let key = id.to_string();
    app.store
        .read(move |rtx| {
            let t = rtx.open_table(table)?;
            let v = t.get(key.as_str())?;
            v.map(|v| records::decode::<R>(v.value())).transpose()
        })
        .await?
        .ok_or_else(|| {
            let what = code.trim_start_matches("unknown_");
            ApiError::not_found(code, format!("no {what} with id `{}`", truncate(id, 64)))
        })
}

async fn get_click(app: &App, raw: &str) -> Result<Resp, ApiError> {
    let id =
        ids::normalize_click_id(&percent_encoding::percent_decode_str(raw).decode_utf8_lossy());
    let rec: ClickRecord = get_record(app, CLICKS, &id, "unknown_click").await?;
    Ok(json_response(StatusCode::OK, &json::click(&id, &rec)))
}

async fn get_conversion(app: &App, id: &str) -> Result<Resp, ApiError> {
    let rec: ConversionRecord = get_record(app, CONVERSIONS, id, "unknown_conversion").await?;
    Ok(json_response(StatusCode::OK, &json::conversion(id, &rec)))
}

async fn get_event(app: &App, id: &str) -> Result<Resp, ApiError> {
    let rec: EventRecord = get_record(app, EVENTS, id, "unknown_event").await?;
    Ok(json_response(StatusCode::OK, &json::event(id, &rec)))
}

/// Key range of a newest-first listing: `since` <= time < `until`, and
/// strictly before `cursor`.
pub(super) fn range_bounds(q: &Query) -> Result<(String, Option<String>), ApiError> {
    let lo = q.time("since")?.map(ids::lower_bound).unwrap_or_default();
    let until = q.time("until")?.map(ids::lower_bound);
    let cursor = q.get("cursor").map(str::to_string);
    let hi = match (until, cursor) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok((lo, hi))
}

/// One page of a listing: `(key, record)` rows and the cursor of the next
/// page, if there may be one.
pub(super) type Page<R> = (Vec<(String, R)>, Option<String>);

/// Scan a time-keyed table newest first, keeping rows that pass `keep`.
pub(super) fn scan<R: records::Record, F: Fn(&R) -> bool>(
    rtx: &redb::ReadTransaction,
    table: redb::TableDefinition<&'static str, &'static [u8]>,
    lo: &str,
    hi: Option<&str>,
    limit: usize,
    keep: F,
) -> Result<Page<R>, StoreError> {
    let t = rtx.open_table(table)?;
    let upper = match hi {
        Some(h) => Bound::Excluded(h),
        None => Bound::Unbounded,
    };
    let range = t.range::<&str>((Bound::Included(lo), upper))?;
    let mut out = Vec::new();
    let mut scanned = 0usize;
    for row in range.rev() {
        let (k, v) = row?;
        scanned += 1;
        let key = k.value().to_string();
        let rec: R = records::decode(v.value())?;
        if keep(&rec) {
            out.push((key.clone(), rec));
            if out.len() == limit {
                return Ok((out, Some(key)));
            }
        }
        if scanned >= SCAN_BUDGET {
            return Ok((out, Some(key)));
        }
    }
    Ok((out, None))
}

async fn list_conversions(app: &App, q: Query) -> Result<Resp, ApiError> {
    let limit = q.limit()?;
    let (lo, hi) = range_bounds(&q)?;
    let source = q.u64("source")?;
    let status = match q.get("status") {
        None => None,
        Some(s) => Some(
            Status::parse(s)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_status",
                        "status must be approved, pending, rejected, refunded or chargeback",
                    )
                })?
                .as_str(),
        ),
    };
    let matched = match q.get("matched") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_filter",
                "matched must be true or false",
            ));
        }
    };
    let (rows, next) = app
        .store
        .read(move |rtx| {
            scan::<ConversionRecord, _>(rtx, CONVERSIONS, &lo, hi.as_deref(), limit, |c| {
                source.is_none_or(|s| c.source_id == s)
                    && status.is_none_or(|s| c.status == s)
                    && matched.is_none_or(|m| c.matched == m)
            })
        })
        .await?;
    let items: Vec<Value> = rows.iter().map(|(id, c)| json::conversion(id, c)).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"items": items, "next_cursor": next}),
    ))
}

async fn list_events(app: &App, q: Query) -> Result<Resp, ApiError> {
    let limit = q.limit()?;
    let (lo, hi) = range_bounds(&q)?;
    let source = q.u64("source")?;
    let result = q.get("result").map(str::to_string);
    let (rows, next) = app
        .store
        .read(move |rtx| {
            scan::<EventRecord, _>(rtx, EVENTS, &lo, hi.as_deref(), limit, |e| {
                source.is_none_or(|s| e.source_id == s)
                    && result.as_deref().is_none_or(|r| e.result == r)
            })
        })
        .await?;
    let items: Vec<Value> = rows.iter().map(|(id, e)| json::event(id, e)).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"items": items, "next_cursor": next}),
    ))
}

async fn replay_event(app: &App, id: &str) -> Result<Resp, ApiError> {
    let key = id.to_string();
    let limits = app.limits;
    let now = store::now_ms();
    let res = app
        .store
        .write(move |ctx| match ingest::replay(ctx, &key, &limits, now) {
            Ok(o) => Ok(Ok(o)),
            Err(ReplayError::Store(e)) => Err(e),
            Err(e) => Ok(Err(e)),
        })
        .await?;
    match res {
        Ok(o) => Ok(json_response(
            StatusCode::OK,
            &json!({"replay_of": id, "event_id": o.event_id, "http_status": o.http_status, "response": o.body()}),
        )),
        Err(ReplayError::NotFound) => Err(ApiError::not_found(
            "unknown_event",
            format!("no event with id `{}`", truncate(id, 64)),
        )),
        Err(ReplayError::SourceGone(s)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "source_deleted",
            format!("the event's source {s} was deleted; it cannot be replayed"),
        )),
        Err(ReplayError::Store(e)) => Err(e.into()),
    }
}

fn list_presets() -> Resp {
    let items: Vec<Value> = presets::all()
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "name": p.name,
                "macro_syntax": p.syntax.as_str(),
                "click_id_param": p.param_for("click_id"),
                "postback_query": p.postback_query(),
                "notes": p.notes,
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({"items": items}))
}

async fn stats(app: &App) -> Result<Resp, ApiError> {
    let counts = app
        .store
        .read(|rtx| {
            let n = |t| -> Result<u64, StoreError> { Ok(rtx.open_table(t)?.len()?) };
            Ok((n(CLICKS)?, n(CONVERSIONS)?, n(EVENTS)?))
        })
        .await?;
    let s = &app.store.stats;
    let commits = s.commits.load(Ordering::Relaxed);
    let jobs = s.committed_jobs.load(Ordering::Relaxed);
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "clicks": counts.0,
            "conversions": counts.1,
            "events": counts.2,
            "commits": commits,
            "committed_writes": jobs,
            "avg_batch": if commits == 0 { 0.0 } else { jobs as f64 / commits as f64 },
            "max_batch": s.max_batch.load(Ordering::Relaxed),
            "failed_commits": s.failed_commits.load(Ordering::Relaxed),
            "avg_commit_ms": if commits == 0 { 0.0 } else { s.commit_micros.load(Ordering::Relaxed) as f64 / commits as f64 / 1000.0 },
        }),
    ))
}

/// `POST /api/v1/backup`: a consistent snapshot of the database, streamed
/// as a redb file. Restore: stop the server, put the file in place of
/// `postbackd.redb` in the data dir, start it.
async fn backup(app: &App) -> Result<Resp, ApiError> {
    use tokio::io::AsyncReadExt;
    let tmp = app
        .config
        .data_dir
        .join(format!(".backup-{}.redb", ids::new_id(store::now_ms())));
    let snap = app.store.snapshot(tmp.clone()).await;
    let records = match snap {
        Ok(n) => n,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e.into());
        }
    };
    let io_err = |e: std::io::Error| {
        tracing::error!(error = %e, "backup file");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the snapshot could not be read back; check disk space and retry",
        )
    };
    let mut file = tokio::fs::File::open(&tmp).await.map_err(io_err)?;
    let len = file.metadata().await.map_err(io_err)?.len();
    // Unlinked now; the open handle keeps the data until the stream ends.
    let _ = tokio::fs::remove_file(&tmp).await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let mut buf = vec![0u8; 256 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(bytes::Bytes::from(buf))).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
        }
    });
    let mut r = Response::new(http_body_util::BodyExt::boxed(super::ChannelBody(rx)));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert("x-postbackd-records", HeaderValue::from(records));
    Ok(r)
}

/// `GET /metrics`: Prometheus text format (no secrets, no per-request data).
pub async fn metrics(app: &App) -> Resp {
    let text = crate::metrics::render(app).await;
    let mut r = Response::new(super::full(text));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}
