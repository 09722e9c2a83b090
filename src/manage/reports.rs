//! Reports and the currency rates they convert with: the operations the
//! report API, the CLI and the dashboard share.

use serde_json::{Map, Value};

use super::Error;
use crate::app::App;
use crate::reports::output::{self, Report};
use crate::reports::rates::{self, Rates};
use crate::reports::{self as engine, Params};
use crate::util::clock::now_ms;

fn refused(e: engine::Error) -> Error {
    Error::invalid(e.code, e.message)
}

/// Run a report from its request parameters (`group_by`, `from`, `to`,
/// `tz`, `time_basis`, `filter.D`, `sort`, `order`, `limit`, `format`).
pub async fn run(app: &App, pairs: Vec<(String, String)>) -> Result<(Params, Report), Error> {
    let p = Params::parse(&pairs, &app.config.report_timezone, now_ms()).map_err(refused)?;
    let q = p.clone();
    let (grouped, rates) = app
        .store
        .read(move |rtx| Ok((engine::run(rtx, &q)?, rates::load(rtx)?)))
        .await?;
    let report = output::build(grouped, &p, &app.config.report_currency, &rates);
    Ok((p, report))
}

pub async fn rates(app: &App) -> Result<Rates, Error> {
    Ok(app.store.read(rates::load).await?)
}

/// Replace the rates (`{"EUR": "1.08"}`: one unit in the report currency).
pub async fn set_rates(app: &App, input: Map<String, Value>) -> Result<Rates, Error> {
    let parsed = rates::parse(&input).map_err(refused)?;
    if parsed.contains_key(&app.config.report_currency) {
        return Err(Error::invalid(
            "invalid_rates",
            format!(
                "{} is the report currency (its rate is 1); leave it out",
                app.config.report_currency
            ),
        ));
    }
    let stored = parsed.clone();
    app.store
        .write(move |ctx| rates::store(ctx, &stored))
        .await?;
    Ok(parsed)
}
