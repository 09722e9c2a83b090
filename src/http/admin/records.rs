//! `/api/v1/clicks` (read and create), `/api/v1/conversions`, `/api/v1/events` and replay:
//! a `manage::records` read, JSON out.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use crate::app::App;
use crate::http::error::ApiError;
use crate::http::{Resp, json_response};
use crate::manage::query::Query;
use crate::manage::{clicks, records};
use crate::views;

pub async fn get_click(app: &App, raw: &str) -> Result<Resp, ApiError> {
    let (id, rec) = clicks::find(app, raw).await?;
    Ok(json_response(StatusCode::OK, &views::click(&id, &rec)))
}

pub async fn create_click(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let (id, rec) = clicks::create(app, super::body(req).await?).await?;
    Ok(json_response(StatusCode::CREATED, &views::click(&id, &rec)))
}

pub async fn get_conversion(app: &App, id: &str) -> Result<Resp, ApiError> {
    let rec = records::conversion(app, id).await?;
    Ok(json_response(StatusCode::OK, &views::conversion(id, &rec)))
}

pub async fn get_event(app: &App, id: &str) -> Result<Resp, ApiError> {
    let rec = records::event(app, id).await?;
    Ok(json_response(StatusCode::OK, &views::event(id, &rec)))
}

pub async fn list_conversions(app: &App, q: &Query) -> Result<Resp, ApiError> {
    let (rows, next) = records::conversions(app, q).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|(id, c)| views::conversion(id, c))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"items": items, "next_cursor": next}),
    ))
}

pub async fn list_events(app: &App, q: &Query) -> Result<Resp, ApiError> {
    let (rows, next) = records::events(app, q).await?;
    let items: Vec<Value> = rows.iter().map(|(id, e)| views::event(id, e)).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"items": items, "next_cursor": next}),
    ))
}

pub async fn replay_event(app: &App, id: &str) -> Result<Resp, ApiError> {
    let o = records::replay(app, id).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"replay_of": id, "event_id": o.event_id, "http_status": o.http_status, "response": o.body()}),
    ))
}
