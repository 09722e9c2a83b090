//! `/api/v1/links`: JSON in, a `manage::links` operation, JSON out.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use super::body;
use crate::app::App;
use crate::http::error::ApiError;
use crate::http::{Resp, json_response, no_content};
use crate::manage::links;
use crate::store::catalog::LinkEntry;
use crate::views;

/// A link's JSON, with the page-tag snippet to paste on its landing page.
fn link_json(app: &App, l: &LinkEntry) -> Value {
    let mut v = views::link(&app.config.public_url, l);
    v["tag_snippet"] = json!(crate::http::tag::snippet(&app.config.public_url, &l.slug));
    v
}

pub fn list(app: &App) -> Resp {
    let items: Vec<Value> = links::list(app).iter().map(|l| link_json(app, l)).collect();
    json_response(StatusCode::OK, &json!({"items": items}))
}

pub fn get(app: &App, slug: &str) -> Result<Resp, ApiError> {
    let l = links::get(app, slug)?;
    Ok(json_response(StatusCode::OK, &link_json(app, &l)))
}

pub async fn create(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let l = links::create(app, body(req).await?).await?;
    Ok(json_response(StatusCode::CREATED, &link_json(app, &l)))
}

pub async fn update(app: &App, slug: &str, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let l = links::update(app, slug, body(req).await?).await?;
    Ok(json_response(StatusCode::OK, &link_json(app, &l)))
}

pub async fn delete(app: &App, slug: &str) -> Result<Resp, ApiError> {
    links::delete(app, slug).await?;
    Ok(no_content())
}
