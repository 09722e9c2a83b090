//! `/api/v1/destinations` and `/api/v1/deliveries`: JSON in, a
//! `manage::destinations` operation, JSON out.

use std::sync::atomic::Ordering;

use hyper::StatusCode;
use serde_json::{Value, json};

use super::{Page, body};
use crate::app::App;
use crate::forward::outbox;
use crate::forward::platforms::{self, Kind};
use crate::http::error::ApiError;
use crate::http::{Resp, json_response, no_content};
use crate::manage::destinations::{self, mask};
use crate::manage::query::Query;
use crate::store::catalog::DestinationEntry;
use crate::store::records::DeliveryRecord;
use crate::util::clock::rfc3339;
use hyper::Request;
use hyper::body::Incoming;

/// A destination with its secrets masked and its delivery counters.
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
        "created_at": rfc3339(d.rec.created_ms),
    })
}

/// A delivery with its attempt log.
fn delivery_view(id: &str, d: &DeliveryRecord) -> Value {
    let mut v = json!({
        "id": id,
        "destination": d.destination_id,
        "conversion_id": d.conversion_id,
        "event_type": d.event_type,
        "status": d.status,
        "state": d.state,
        "attempts": d.attempts,
        "created_at": rfc3339(d.created_ms),
        "next_attempt_at": (d.state == outbox::PENDING).then(|| rfc3339(d.next_ms)),
        "last_attempt_at": d.last_attempt_ms.map(rfc3339),
        "last_status": d.last_status,
        "last_error": d.last_error,
        "delivered_at": d.delivered_ms.map(rfc3339),
        "log": d.log.iter().map(|a| json!({
            "at": rfc3339(a.at_ms),
            "outcome": a.outcome,
            "status": a.status,
            "next_attempt_at": a.next_ms.map(rfc3339),
            "note": a.note,
        })).collect::<Vec<_>>(),
    });
    // An alert's notification (destination 0): which alert, what it says.
    if let Some(alert) = d.alert_id {
        v["alert"] = json!(alert);
        v["notice"] = json!(d.notice);
    }
    v
}

fn parse_id(s: &str) -> Result<u64, ApiError> {
    s.parse().map_err(|_| {
        ApiError::not_found(
            "unknown_destination",
            format!(
                "no destination with id `{}`",
                crate::util::text::truncate(s, 32)
            ),
        )
    })
}

pub fn list(app: &App) -> Resp {
    let items: Vec<Value> = destinations::list(app)
        .iter()
        .map(|d| view(app, d))
        .collect();
    json_response(StatusCode::OK, &json!({"items": items}))
}

pub fn get(app: &App, id: &str) -> Result<Resp, ApiError> {
    let d = destinations::get(app, parse_id(id)?)?;
    Ok(json_response(StatusCode::OK, &view(app, &d)))
}

pub async fn create(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let d = destinations::create(app, body(req).await?).await?;
    Ok(json_response(StatusCode::CREATED, &view(app, &d)))
}

pub async fn update(app: &App, id: &str, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let id = parse_id(id)?;
    let d = destinations::update(app, id, body(req).await?).await?;
    Ok(json_response(StatusCode::OK, &view(app, &d)))
}

pub async fn delete(app: &App, id: &str) -> Result<Resp, ApiError> {
    destinations::delete(app, parse_id(id)?).await?;
    Ok(no_content())
}

pub async fn list_deliveries(app: &App, q: &Query) -> Result<Resp, ApiError> {
    let (rows, next): Page<DeliveryRecord> = destinations::deliveries(app, q).await?;
    let items: Vec<Value> = rows.iter().map(|(id, d)| delivery_view(id, d)).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"items": items, "next_cursor": next}),
    ))
}

pub async fn get_delivery(app: &App, id: &str) -> Result<Resp, ApiError> {
    let d = destinations::delivery(app, id).await?;
    Ok(json_response(StatusCode::OK, &delivery_view(id, &d)))
}

pub async fn retry_delivery(app: &App, id: &str) -> Result<Resp, ApiError> {
    let done = destinations::retry(app, id).await?;
    // `action` says what the retry did: a re-send of a delivered delivery
    // must not pass for a harmless retry.
    let mut v = delivery_view(id, &done.delivery);
    v["action"] = done.action.as_str().into();
    Ok(json_response(StatusCode::OK, &v))
}
