//! Admin API for forwarding: `/api/v1/destinations` and
//! `/api/v1/deliveries`.

use std::sync::atomic::Ordering;

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::admin::{Query, double_option, get_record, no_content, scan};
use super::error::ApiError;
use super::{Resp, json, json_response, truncate};
use crate::forward::http::{check_url, forbidden};
use crate::forward::outbox;
use crate::forward::platforms::{self, Kind};
use crate::postback::{Kind as ConvKind, Status};
use crate::server::App;
use crate::store::catalog::DestinationEntry;
use crate::store::records::{self, DeliveryRecord, DestinationRecord};
use crate::store::{self, DELIVERIES};

/// Body of `POST /api/v1/destinations` and `PATCH /api/v1/destinations/{id}`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DestinationIn {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    config: Option<Value>,
    #[serde(default, deserialize_with = "double_option")]
    base_url: Option<Option<String>>,
    filter: Option<FilterIn>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FilterIn {
    sources: Option<Vec<u64>>,
    types: Option<Vec<String>>,
    statuses: Option<Vec<String>>,
}

/// `scheme://host[:port]` only: `base_url` replaces the platform's origin.
fn validate_base_url(u: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_base_url",
            "base_url must be an origin such as https://proxy.example:8443, without a path",
        )
    };
    let uri: hyper::Uri = u.trim_end_matches('/').parse().map_err(|_| bad())?;
    if !matches!(uri.scheme_str(), Some("http" | "https"))
        || uri.host().is_none()
        || uri
            .path_and_query()
            .is_some_and(|pq| pq.as_str() != "/" && !pq.as_str().is_empty())
    {
        return Err(bad());
    }
    Ok(u.trim_end_matches('/').to_string())
}

/// The SSRF guard at save time: refuse URLs whose host is, or resolves
/// only to, a private / loopback / link-local address (checked again at
/// every connect).
async fn guard_url(app: &App, url: &str) -> Result<(), ApiError> {
    if app.config.allow_private_destinations {
        return Ok(());
    }
    let refused = |why: String| {
        ApiError::bad_request(
            "private_destination",
            format!(
                "{why}; private, loopback and link-local targets need allow_private_destinations = true"
            ),
        )
    };
    check_url(url, false).map_err(|e| refused(format!("{e:?}")))?;
    let uri: hyper::Uri = url.parse().map_err(|_| refused("not a URL".into()))?;
    let host = uri
        .host()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    // A name that does not resolve now may later: only a name that
    // resolves to nothing but forbidden addresses is refused here.
    if let Ok(addrs) = tokio::net::lookup_host((host.as_str(), 0)).await {
        let addrs: Vec<_> = addrs.collect();
        if !addrs.is_empty() && addrs.iter().all(|a| forbidden(a.ip())) {
            return Err(refused(format!(
                "{host} resolves only to private addresses"
            )));
        }
    }
    Ok(())
}

impl DestinationIn {
    async fn apply(
        self,
        app: &App,
        rec: &mut DestinationRecord,
        creating: bool,
    ) -> Result<(), ApiError> {
        if let Some(n) = self.name {
            rec.name = super::valid_name(&n)?;
        }
        if let Some(k) = self.kind {
            if !creating && k != rec.kind {
                return Err(ApiError::bad_request(
                    "invalid_type",
                    "a destination's type cannot change; create a new one",
                ));
            }
            Kind::parse(&k).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_type",
                    "type must be one of meta, google_ads, ga4, tiktok, webhook, postback",
                )
            })?;
            rec.kind = k;
        }
        let kind = Kind::parse(&rec.kind)
            .ok_or_else(|| ApiError::bad_request("invalid_type", "type is required"))?;
        if let Some(mut c) = self.config {
            // Masked secrets from a GET keep their stored values.
            if let (Some(obj), Ok(Value::Object(old))) = (
                c.as_object_mut(),
                serde_json::from_str::<Value>(&rec.config),
            ) {
                for f in platforms::secret_fields(kind) {
                    if let (Some(Value::String(given)), Some(Value::String(stored))) =
                        (obj.get(*f), old.get(*f))
                        && *given == mask(stored)
                    {
                        obj.insert((*f).to_string(), Value::String(stored.clone()));
                    }
                }
            }
            platforms::validate_config(kind, &c)
                .map_err(|m| ApiError::bad_request("invalid_config", m))?;
            rec.config = c.to_string();
        }
        if let Some(b) = self.base_url {
            rec.base_url = match b {
                None => None,
                Some(u) if u.is_empty() => None,
                Some(u) => Some(validate_base_url(&u)?),
            };
        }
        if let Some(f) = self.filter {
            if let Some(src) = f.sources {
                let cat = app.store.catalog();
                if let Some(bad) = src.iter().find(|id| !cat.sources.contains_key(id)) {
                    return Err(ApiError::bad_request(
                        "invalid_filter",
                        format!("no source with id {bad}"),
                    ));
                }
                rec.filter_sources = src;
            }
            if let Some(t) = f.types {
                if let Some(bad) = t.iter().find(|t| ConvKind::parse(t).is_none()) {
                    return Err(ApiError::bad_request(
                        "invalid_filter",
                        format!("type `{}` is not lead or purchase", truncate(bad, 32)),
                    ));
                }
                rec.filter_types = t;
            }
            if let Some(st) = f.statuses {
                if let Some(bad) = st.iter().find(|s| Status::parse(s).is_none()) {
                    return Err(ApiError::bad_request(
                        "invalid_filter",
                        format!(
                            "status `{}` is not approved, pending, rejected, refunded or chargeback",
                            truncate(bad, 32)
                        ),
                    ));
                }
                rec.filter_statuses = st;
            }
        }
        let config: Value = serde_json::from_str(&rec.config).unwrap_or(Value::Null);
        if config.is_null() {
            return Err(ApiError::bad_request(
                "invalid_config",
                "config is required",
            ));
        }
        if let Some(u) = platforms::admin_url(kind, &config) {
            guard_url(app, &u).await?;
        }
        if let Some(b) = &rec.base_url {
            guard_url(app, b).await?;
        }
        Ok(())
    }
}

/// A destination secret (access token, API secret) for display.
fn mask(s: &str) -> String {
    crate::signing::mask_after(s, 4)
}

fn view(app: &App, d: &DestinationEntry) -> Value {
    let mut config = d.config.clone();
    if let (Some(kind), Some(obj)) = (Kind::parse(&d.rec.kind), config.as_object_mut()) {
        for f in platforms::secret_fields(kind) {
            if let Some(Value::String(s)) = obj.get(*f) {
                let m = mask(s);
                obj.insert((*f).to_string(), Value::String(m));
            }
        }
    }
    let c = app.forwarder.counters_for(d.id);
    json!({
        "id": d.id,
        "name": d.rec.name,
        "type": d.rec.kind,
        "config": config,
        "base_url": d.rec.base_url,
        "filter": {
            "sources": d.rec.filter_sources,
            "types": d.rec.filter_types,
            "statuses": d.rec.filter_statuses,
        },
        "counters": {
            "delivered": c.delivered.load(Ordering::Relaxed),
            "retried": c.retried.load(Ordering::Relaxed),
            "dead": c.dead.load(Ordering::Relaxed),
        },
        "created_at": json::time(d.rec.created_ms),
    })
}

fn unknown(id: u64) -> ApiError {
    ApiError::not_found(
        "unknown_destination",
        format!("no destination with id {id}"),
    )
}

pub fn list(app: &App) -> Resp {
    let cat = app.store.catalog();
    let items: Vec<Value> = cat.destinations.values().map(|d| view(app, d)).collect();
    json_response(StatusCode::OK, &json!({"items": items}))
}

pub fn get(app: &App, id: u64) -> Result<Resp, ApiError> {
    let cat = app.store.catalog();
    let d = cat.destinations.get(&id).ok_or_else(|| unknown(id))?;
    Ok(json_response(StatusCode::OK, &view(app, d)))
}

pub async fn create(app: &App, input: DestinationIn) -> Result<Resp, ApiError> {
    if input.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(ApiError::bad_request("invalid_name", "name is required"));
    }
    if input.kind.is_none() {
        return Err(ApiError::bad_request(
            "invalid_type",
            "type is required: meta, google_ads, ga4, tiktok, webhook or postback",
        ));
    }
    let mut rec = DestinationRecord {
        name: String::new(),
        kind: String::new(),
        config: String::new(),
        base_url: None,
        filter_sources: Vec::new(),
        filter_types: Vec::new(),
        filter_statuses: vec!["approved".into()],
        created_ms: store::now_ms(),
    };
    input.apply(app, &mut rec, true).await?;
    let entry = app
        .store
        .write(move |ctx| {
            let id = store::next_counter(ctx, "next_destination_id")?;
            ctx.destinations()?
                .insert(id, records::encode(&rec).as_slice())?;
            Ok(ctx.catalog_mut().put_destination(id, rec))
        })
        .await?;
    Ok(json_response(StatusCode::CREATED, &view(app, &entry)))
}

pub async fn update(app: &App, id: u64, input: DestinationIn) -> Result<Resp, ApiError> {
    let mut rec = app
        .store
        .catalog()
        .destinations
        .get(&id)
        .map(|d| d.rec.clone())
        .ok_or_else(|| unknown(id))?;
    input.apply(app, &mut rec, false).await?;
    let entry = app
        .store
        .write(move |ctx| {
            if !ctx.catalog().destinations.contains_key(&id) {
                return Ok(None);
            }
            ctx.destinations()?
                .insert(id, records::encode(&rec).as_slice())?;
            Ok(Some(ctx.catalog_mut().put_destination(id, rec)))
        })
        .await?
        .ok_or_else(|| unknown(id))?;
    Ok(json_response(StatusCode::OK, &view(app, &entry)))
}

pub async fn delete(app: &App, id: u64) -> Result<Resp, ApiError> {
    let removed = app
        .store
        .write(move |ctx| {
            let existed = ctx.destinations()?.remove(id)?.is_some();
            if existed {
                ctx.catalog_mut().remove_destination(id);
            }
            Ok(existed)
        })
        .await?;
    if !removed {
        return Err(unknown(id));
    }
    Ok(no_content())
}

fn delivery_view(id: &str, d: &DeliveryRecord) -> Value {
    json!({
        "id": id,
        "destination": d.destination_id,
        "conversion_id": d.conversion_id,
        "event_type": d.event_type,
        "status": d.status,
        "state": d.state,
        "attempts": d.attempts,
        "created_at": json::time(d.created_ms),
        "next_attempt_at": (d.state == outbox::PENDING).then(|| json::time(d.next_ms)),
        "last_attempt_at": d.last_attempt_ms.map(json::time),
        "last_status": d.last_status,
        "last_error": d.last_error,
        "delivered_at": d.delivered_ms.map(json::time),
        "log": d.log.iter().map(|a| json!({
            "at": json::time(a.at_ms),
            "outcome": a.outcome,
            "status": a.status,
            "next_attempt_at": a.next_ms.map(json::time),
            "note": a.note,
        })).collect::<Vec<_>>(),
    })
}

pub(super) async fn list_deliveries(app: &App, q: Query) -> Result<Resp, ApiError> {
    let limit = q.limit()?;
    let state = match q.get("state") {
        None => None,
        Some(s @ (outbox::PENDING | outbox::DELIVERED | outbox::DEAD)) => Some(s.to_string()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_filter",
                "state must be pending, delivered or dead",
            ));
        }
    };
    let dest = q.u64("destination")?;
    let cursor = q.get("cursor").map(str::to_string);
    let (rows, next) = app
        .store
        .read(move |rtx| {
            scan::<DeliveryRecord, _>(rtx, DELIVERIES, "", cursor.as_deref(), limit, |d| {
                state.as_deref().is_none_or(|s| d.state == s)
                    && dest.is_none_or(|id| d.destination_id == id)
            })
        })
        .await?;
    let items: Vec<Value> = rows.iter().map(|(id, d)| delivery_view(id, d)).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"items": items, "next_cursor": next}),
    ))
}

pub async fn get_delivery(app: &App, id: &str) -> Result<Resp, ApiError> {
    let d: DeliveryRecord = get_record(app, DELIVERIES, id, "unknown_delivery").await?;
    Ok(json_response(StatusCode::OK, &delivery_view(id, &d)))
}

pub async fn retry_delivery(app: &App, id: &str) -> Result<Resp, ApiError> {
    let key = id.to_string();
    let now = store::now_ms();
    let done = app
        .store
        .write(move |ctx| outbox::retry(ctx, &key, now))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_delivery",
                format!("no delivery with id `{}`", truncate(id, 64)),
            )
        })?;
    // `action` says what the retry did: a re-send of a delivered delivery
    // must not pass for a harmless retry.
    let mut v = delivery_view(id, &done.delivery);
    v["action"] = done.action.as_str().into();
    Ok(json_response(StatusCode::OK, &v))
}

/// Metrics lines for forwarding.
pub fn metrics(app: &App, depth: u64, oldest_ms: Option<u64>) -> String {
    let mut out = String::new();
    out.push_str("# HELP postbackd_outbox_pending Deliveries waiting to be sent.\n# TYPE postbackd_outbox_pending gauge\n");
    out.push_str(&format!("postbackd_outbox_pending {depth}\n"));
    out.push_str("# HELP postbackd_outbox_oldest_pending_seconds Age of the oldest pending delivery.\n# TYPE postbackd_outbox_oldest_pending_seconds gauge\n");
    out.push_str(&format!(
        "postbackd_outbox_oldest_pending_seconds {}\n",
        oldest_ms.map_or(0.0, |m| m as f64 / 1000.0)
    ));
    out.push_str("# HELP postbackd_deliveries_total Delivery attempts by destination and outcome.\n# TYPE postbackd_deliveries_total counter\n");
    let cat = app.store.catalog();
    for d in cat.destinations.values() {
        let c = app.forwarder.counters_for(d.id);
        for (outcome, n) in [
            ("delivered", c.delivered.load(Ordering::Relaxed)),
            ("retried", c.retried.load(Ordering::Relaxed)),
            ("dead", c.dead.load(Ordering::Relaxed)),
        ] {
            out.push_str(&format!(
                "postbackd_deliveries_total{{destination=\"{}\",type=\"{}\",outcome=\"{outcome}\"}} {n}\n",
                d.id, d.rec.kind
            ));
        }
    }
    out
}
