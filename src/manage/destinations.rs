//! Destinations (ad platforms, webhooks, traffic-source postbacks) and
//! their deliveries: validation of a destination's config with its
//! platform's rules, the SSRF guard at save time, create / change / delete,
//! listing deliveries and retrying one.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::query::{Page, Query, get_record, scan};
use super::{Error, double_option, valid_name};
use crate::app::App;
use crate::forward::http::{check_url, forbidden};
use crate::forward::outbox;
use crate::forward::platforms::{self, Kind};
use crate::inbound::postback::{Kind as ConvKind, Status};
use crate::store::catalog::DestinationEntry;
use crate::store::records::{self, DeliveryRecord, DestinationRecord};
use crate::store::{self, DELIVERIES};
use crate::util::clock::now_ms;
use crate::util::text::truncate;

/// Body of `POST /api/v1/destinations` and `PATCH /api/v1/destinations/{id}`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DestinationIn {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub config: Option<Value>,
    #[serde(default, deserialize_with = "double_option")]
    pub base_url: Option<Option<String>>,
    pub filter: Option<FilterIn>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FilterIn {
    pub sources: Option<Vec<u64>>,
    pub types: Option<Vec<String>>,
    pub statuses: Option<Vec<String>>,
}

/// `scheme://host[:port]` only: `base_url` replaces the platform's origin.
fn validate_base_url(u: &str) -> Result<String, Error> {
    let bad = || {
        Error::invalid(
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
pub(super) async fn guard_url(app: &App, url: &str) -> Result<(), Error> {
    if app.config.allow_private_destinations {
        return Ok(());
    }
    let refused = |why: String| {
        Error::invalid(
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
    pub async fn apply(
        self,
        app: &App,
        rec: &mut DestinationRecord,
        creating: bool,
    ) -> Result<(), Error> {
        if let Some(n) = self.name {
            rec.name = valid_name(&n)?;
        }
        if let Some(k) = self.kind {
            if !creating && k != rec.kind {
                return Err(Error::invalid(
                    "invalid_type",
                    "a destination's type cannot change; create a new one",
                ));
            }
            Kind::parse(&k).ok_or_else(|| {
                Error::invalid(
                    "invalid_type",
                    "type must be one of meta, google_ads, ga4, tiktok, webhook, postback",
                )
            })?;
            rec.kind = k;
        }
        let kind = Kind::parse(&rec.kind)
            .ok_or_else(|| Error::invalid("invalid_type", "type is required"))?;
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
                .map_err(|m| Error::invalid("invalid_config", m))?;
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
                    return Err(Error::invalid(
                        "invalid_filter",
                        format!("no source with id {bad}"),
                    ));
                }
                rec.filter_sources = src;
            }
            if let Some(t) = f.types {
                if let Some(bad) = t.iter().find(|t| ConvKind::parse(t).is_none()) {
                    return Err(Error::invalid(
                        "invalid_filter",
                        format!("type `{}` is not lead or purchase", truncate(bad, 32)),
                    ));
                }
                rec.filter_types = t;
            }
            if let Some(st) = f.statuses {
                if let Some(bad) = st.iter().find(|s| Status::parse(s).is_none()) {
                    return Err(Error::invalid(
                        "invalid_filter",
                        format!("status `{}` is not {}", truncate(bad, 32), Status::LIST),
                    ));
                }
                rec.filter_statuses = st;
            }
        }
        let config: Value = serde_json::from_str(&rec.config).unwrap_or(Value::Null);
        if config.is_null() {
            return Err(Error::invalid("invalid_config", "config is required"));
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
pub fn mask(s: &str) -> String {
    crate::util::signing::mask_after(s, 4)
}

fn unknown(id: u64) -> Error {
    Error::not_found(
        "unknown_destination",
        format!("no destination with id {id}"),
    )
}

/// Every destination, by id.
pub fn list(app: &App) -> Vec<Arc<DestinationEntry>> {
    app.store.catalog().destinations.values().cloned().collect()
}

pub fn get(app: &App, id: u64) -> Result<Arc<DestinationEntry>, Error> {
    app.store
        .catalog()
        .destinations
        .get(&id)
        .cloned()
        .ok_or_else(|| unknown(id))
}

pub async fn create(app: &App, input: DestinationIn) -> Result<Arc<DestinationEntry>, Error> {
    if input.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(Error::invalid("invalid_name", "name is required"));
    }
    if input.kind.is_none() {
        return Err(Error::invalid(
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
        created_ms: now_ms(),
    };
    input.apply(app, &mut rec, true).await?;
    Ok(app
        .store
        .write(move |ctx| {
            let id = store::next_counter(ctx, "next_destination_id")?;
            ctx.destinations()?
                .insert(id, records::encode(&rec).as_slice())?;
            Ok(ctx.catalog_mut().put_destination(id, rec))
        })
        .await?)
}

pub async fn update(
    app: &App,
    id: u64,
    input: DestinationIn,
) -> Result<Arc<DestinationEntry>, Error> {
    let mut rec = get(app, id)?.rec.clone();
    input.apply(app, &mut rec, false).await?;
    app.store
        .write(move |ctx| {
            if !ctx.catalog().destinations.contains_key(&id) {
                return Ok(None);
            }
            ctx.destinations()?
                .insert(id, records::encode(&rec).as_slice())?;
            Ok(Some(ctx.catalog_mut().put_destination(id, rec)))
        })
        .await?
        .ok_or_else(|| unknown(id))
}

pub async fn delete(app: &App, id: u64) -> Result<(), Error> {
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
    if removed { Ok(()) } else { Err(unknown(id)) }
}

/// Deliveries newest first; filters `state` (pending, delivered, dead),
/// `destination`, `conversion`, `cursor`, `limit`.
pub async fn deliveries(app: &App, q: &Query) -> Result<Page<DeliveryRecord>, Error> {
    let limit = q.limit()?;
    let state = match q.get("state") {
        None => None,
        Some(s @ (outbox::PENDING | outbox::DELIVERED | outbox::DEAD)) => Some(s.to_string()),
        Some(_) => {
            return Err(Error::invalid(
                "invalid_filter",
                "state must be pending, delivered or dead",
            ));
        }
    };
    let dest = q.u64("destination")?;
    let conversion = q.get("conversion").map(str::to_string);
    let cursor = q.get("cursor").map(str::to_string);
    Ok(app
        .store
        .read(move |rtx| {
            scan::<DeliveryRecord, _>(rtx, DELIVERIES, "", cursor.as_deref(), limit, |d| {
                state.as_deref().is_none_or(|s| d.state == s)
                    && dest.is_none_or(|id| d.destination_id == id)
                    && conversion.as_deref().is_none_or(|c| d.conversion_id == c)
            })
        })
        .await?)
}

pub async fn delivery(app: &App, id: &str) -> Result<DeliveryRecord, Error> {
    get_record(app, DELIVERIES, id, "unknown_delivery").await
}

/// `POST /api/v1/deliveries/{id}/retry`: see [`outbox::retry`] (attempt a
/// pending delivery now, once; re-send a delivered one; revive a dead one).
pub async fn retry(app: &App, id: &str) -> Result<outbox::RetryOutcome, Error> {
    let key = id.to_string();
    let now = now_ms();
    app.store
        .write(move |ctx| outbox::retry(ctx, &key, now))
        .await?
        .ok_or_else(|| {
            Error::not_found(
                "unknown_delivery",
                format!("no delivery with id `{}`", truncate(id, 64)),
            )
        })
}

/// The outbox: deliveries waiting and when the oldest was queued.
pub async fn queue(app: &App, now_ms: u64) -> Result<(u64, Option<u64>), Error> {
    Ok(app
        .store
        .read(move |rtx| crate::forward::worker::queue_stats(rtx, now_ms))
        .await?)
}

/// A destination's delivery counts since the server started:
/// (delivered, retried, dead).
pub fn counters(app: &App, id: u64) -> (u64, u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let c = app.forwarder.counters_for(id);
    (
        c.delivered.load(Relaxed),
        c.retried.load(Relaxed),
        c.dead.load(Relaxed),
    )
}
