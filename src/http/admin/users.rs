//! `/api/v1/users`: dashboard users. JSON in, a `manage::users` operation,
//! JSON out; a password hash is never part of an answer.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use super::body;
use crate::app::App;
use crate::http::error::ApiError;
use crate::http::{Resp, json_response, no_content};
use crate::manage::users::{self, User};
use crate::util::clock::rfc3339;

fn view(u: &User) -> Value {
    json!({
        "name": u.name,
        "role": u.role.label(),
        "created_at": rfc3339(u.created_ms),
    })
}

pub async fn list(app: &App) -> Result<Resp, ApiError> {
    let items: Vec<Value> = users::list_users(app).await?.iter().map(view).collect();
    Ok(json_response(StatusCode::OK, &json!({"items": items})))
}

pub async fn create(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let u = users::create_user(app, body(req).await?).await?;
    Ok(json_response(StatusCode::CREATED, &view(&u)))
}

pub async fn update(app: &App, name: &str, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    let u = users::update_user(app, &name, body(req).await?).await?;
    Ok(json_response(StatusCode::OK, &view(&u)))
}

pub async fn delete(app: &App, name: &str) -> Result<Resp, ApiError> {
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    users::remove_user(app, &name).await?;
    Ok(no_content())
}
