//! Postback health endpoints: `POST /api/v1/doctor`,
//! `GET /api/v1/sources/{id}/health`, bulk replay
//! (`POST /api/v1/events/replay`, `GET /api/v1/events/replay/{job}`) and
//! alerts (`/api/v1/alerts`). Each parses, calls its `manage` operation
//! and serialises the typed result.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Serialize;

use super::body;
use crate::app::App;
use crate::http::error::ApiError;
use crate::http::{Resp, json_response, no_content};
use crate::manage::{alerts, health, replay};
use crate::util::text::truncate;

fn ok<T: Serialize>(status: StatusCode, v: &T) -> Resp {
    json_response(status, &serde_json::to_value(v).unwrap_or_default())
}

fn id_of(s: &str, code: &'static str, what: &str) -> Result<u64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::not_found(code, format!("no {what} with id `{}`", truncate(s, 32))))
}

pub async fn doctor(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let input: health::DoctorRequest = body(req).await?;
    Ok(ok(StatusCode::OK, &health::diagnose(app, &input)?))
}

pub async fn source_health(app: &App, id: &str) -> Result<Resp, ApiError> {
    let id = id_of(id, "unknown_source", "source")?;
    Ok(ok(StatusCode::OK, &health::source_health(app, id).await?))
}

pub async fn start_replay(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let input: replay::ReplayRequest = body(req).await?;
    Ok(ok(
        StatusCode::ACCEPTED,
        &replay::start_replay(app, input).await?,
    ))
}

pub async fn get_replay(app: &App, id: &str) -> Result<Resp, ApiError> {
    let id = id_of(id, "unknown_replay", "replay job")?;
    Ok(ok(StatusCode::OK, &replay::get_replay(app, id).await?))
}

pub async fn create_alert(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let input: alerts::AlertRequest = body(req).await?;
    Ok(ok(
        StatusCode::CREATED,
        &alerts::create_alert(app, input).await?,
    ))
}

pub async fn list_alerts(app: &App) -> Result<Resp, ApiError> {
    let items = alerts::list_alerts(app).await?;
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({"items": serde_json::to_value(&items).unwrap_or_default()}),
    ))
}

pub async fn delete_alert(app: &App, id: &str) -> Result<Resp, ApiError> {
    let id = id_of(id, "unknown_alert", "alert")?;
    alerts::delete_alert(app, id).await?;
    Ok(no_content())
}
