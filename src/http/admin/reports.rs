//! `GET /api/v1/reports` (JSON or CSV) and `GET|PUT /api/v1/rates`.

use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::body;
use crate::app::App;
use crate::http::error::ApiError;
use crate::http::{Resp, full, json_response};
use crate::manage::reports;
use crate::reports::output;
use crate::reports::rates::Rates;

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
