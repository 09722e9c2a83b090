//! The admin API under `/api/v1`, behind `Authorization: Bearer <token>`
//! compared in constant time. JSON in and out. This file routes, checks the
//! token and reads bodies; one file per resource turns a request into a
//! `manage` operation and its typed result into JSON.

pub mod destinations;
pub mod health;
pub mod links;
pub mod ops;
pub mod records;
pub mod reports;
pub mod sources;
pub mod users;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::Resp;
use super::error::ApiError;
use crate::app::App;
pub use crate::manage::query::Page;
use crate::manage::query::Query;
use crate::util::text::truncate;

/// Largest admin request body.
const MAX_ADMIN_BODY: usize = 256 * 1024;

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
        (&Method::GET, ["sources"]) => Ok(sources::list(app)),
        (&Method::POST, ["sources"]) => sources::create(app, req).await,
        (&Method::GET, ["sources", id]) => sources::get(app, id),
        (&Method::PATCH, ["sources", id]) => sources::update(app, id, req).await,
        (&Method::DELETE, ["sources", id]) => sources::delete(app, id).await,
        (&Method::POST, ["sources", id, "ipn-sample"]) => sources::ipn_sample(app, id, req).await,
        (&Method::GET, ["links"]) => Ok(links::list(app)),
        (&Method::POST, ["links"]) => links::create(app, req).await,
        (&Method::GET, ["links", slug]) => links::get(app, slug),
        (&Method::PATCH, ["links", slug]) => links::update(app, slug, req).await,
        (&Method::DELETE, ["links", slug]) => links::delete(app, slug).await,
        (&Method::POST, ["clicks"]) => records::create_click(app, req).await,
        (&Method::GET, ["clicks", id]) => records::get_click(app, id).await,
        (&Method::GET, ["conversions"]) => records::list_conversions(app, &query).await,
        (&Method::GET, ["conversions", id]) => records::get_conversion(app, id).await,
        (&Method::GET, ["events"]) => records::list_events(app, &query).await,
        (&Method::GET, ["events", id]) => records::get_event(app, id).await,
        (&Method::POST, ["events", id, "replay"]) => records::replay_event(app, id).await,
        (&Method::POST, ["events", "replay"]) => health::start_replay(app, req).await,
        (&Method::GET, ["events", "replay", job]) => health::get_replay(app, job).await,
        (&Method::POST, ["doctor"]) => health::doctor(app, req).await,
        (&Method::GET, ["sources", id, "health"]) => health::source_health(app, id).await,
        (&Method::GET, ["alerts"]) => health::list_alerts(app).await,
        (&Method::POST, ["alerts"]) => health::create_alert(app, req).await,
        (&Method::DELETE, ["alerts", id]) => health::delete_alert(app, id).await,
        (&Method::GET, ["reports"]) => reports::get(app, req.uri().query().unwrap_or("")).await,
        (&Method::GET, ["rates"]) => reports::get_rates(app).await,
        (&Method::PUT, ["rates"]) => reports::put_rates(app, req).await,
        (&Method::GET, ["costs"]) => reports::list_costs(app, &query).await,
        (&Method::POST, ["costs"]) => reports::post_cost(app, req).await,
        (&Method::GET, ["presets"]) => Ok(ops::list_presets()),
        (&Method::GET, ["stats"]) => ops::stats(app).await,
        (&Method::POST, ["backup"]) => ops::backup(app).await,
        (&Method::GET, ["users"]) => users::list(app).await,
        (&Method::POST, ["users"]) => users::create(app, req).await,
        (&Method::PATCH, ["users", name]) => users::update(app, name, req).await,
        (&Method::DELETE, ["users", name]) => users::delete(app, name).await,
        (&Method::GET, ["destinations"]) => Ok(destinations::list(app)),
        (&Method::POST, ["destinations"]) => destinations::create(app, req).await,
        (&Method::GET, ["destinations", id]) => destinations::get(app, id),
        (&Method::PATCH, ["destinations", id]) => destinations::update(app, id, req).await,
        (&Method::DELETE, ["destinations", id]) => destinations::delete(app, id).await,
        (&Method::GET, ["deliveries"]) => destinations::list_deliveries(app, &query).await,
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

/// Read a JSON request body into an operation's input.
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
