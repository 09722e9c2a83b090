//! `GET /api/v1/reports` (JSON or CSV), `GET|PUT /api/v1/rates` and
//! `GET|POST /api/v1/costs`.

use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::body;
use crate::app::App;
use crate::http::error::ApiError;
use crate::http::{Resp, full, json_response};
use crate::manage::query::Query;
use crate::manage::{costs, reports};
use crate::reports::costs::CostUpdateRecord;
use crate::reports::output;
use crate::reports::rates::Rates;
use crate::util::clock::rfc3339;

pub async fn get(app: &App, query: &str) -> Result<Resp, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let (p, report) = reports::run(app, pairs).await?;
    if p.csv {
        let mut r = Response::new(full(output::csv(&report, &p)));
        let h = r.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        h.insert(
            hyper::header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"report.csv\""),
        );
        h.insert(
            hyper::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        return Ok(r);
    }
    Ok(json_response(
        StatusCode::OK,
        &output::json(&report, &p, &app.config.report_currency),
    ))
}

fn rates_view(app: &App, r: &Rates) -> Value {
    json!({
        "currency": app.config.report_currency,
        "rates": r.iter().map(|(k, v)| (k.clone(), json!(v.to_string()))).collect::<Map<String, Value>>(),
    })
}

pub async fn get_rates(app: &App) -> Result<Resp, ApiError> {
    let r = reports::rates(app).await?;
    Ok(json_response(StatusCode::OK, &rates_view(app, &r)))
}

pub async fn put_rates(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let input: Map<String, Value> = body(req).await?;
    let r = reports::set_rates(app, input).await?;
    Ok(json_response(StatusCode::OK, &rates_view(app, &r)))
}

fn cost_view(app: &App, id: &str, c: &CostUpdateRecord) -> Value {
    let mut filter = Map::new();
    for (k, v) in &c.scope.filter {
        filter.insert(k.clone(), json!(v));
    }
    json!({
        "id": id,
        "link": c.scope.link,
        "campaign": c.scope.campaign,
        "source": c.scope.source,
        "filter": filter,
        "from": c.from,
        "to": c.to,
        "tz": c.tz,
        "amount": c.amount,
        "currency": if c.currency.is_empty() { app.config.report_currency.as_str() } else { c.currency.as_str() },
        "matched_clicks": c.matched_clicks,
        "created_at": rfc3339(c.created_ms),
    })
}

pub async fn post_cost(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let (id, c) = costs::update(app, body(req).await?).await?;
    let mut v = cost_view(app, &id, &c);
    if c.matched_clicks == 0 {
        // Not an error (a day without traffic is real), never a silent
        // success either.
        v["message"] = json!(
            "no clicks matched this link/campaign/source, range and filter; nothing was changed"
        );
    }
    Ok(json_response(StatusCode::OK, &v))
}

pub async fn list_costs(app: &App, q: &Query) -> Result<Resp, ApiError> {
    let (rows, next) = costs::list(app, q).await?;
    let items: Vec<Value> = rows.iter().map(|(id, c)| cost_view(app, id, c)).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"items": items, "next_cursor": next}),
    ))
}
