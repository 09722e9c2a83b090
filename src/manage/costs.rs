//! Manual cost updates (`POST /api/v1/costs`, `postbackd cost import`):
//! validation of the request, then one writer transaction that sets the
//! total cost of the matching clicks (see `reports::costs`).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Deserialize;

use super::Error;
use super::query::{Page, Query, scan};
use crate::app::App;
use crate::inbound::currency;
use crate::reports::costs::{self, CostScope, CostUpdateRecord};
use crate::reports::range;
use crate::store::COSTS;
use crate::store::rollup::{self, DIMS};
use crate::util::clock::now_ms;
use crate::util::ids;

/// Body of `POST /api/v1/costs`.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct CostIn {
    pub link: Option<String>,
    pub campaign: Option<String>,
    pub source: Option<u64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub tz: Option<String>,
    pub amount: Option<serde_json::Value>,
    pub currency: Option<String>,
    /// `{"sub1": "zone7"}`: narrow to clicks with these values.
    #[serde(default)]
    pub filter: BTreeMap<String, String>,
}

/// Dimensions a cost update may narrow on (what a click has).
fn filterable(d: &str) -> bool {
    rollup::dim_index(d).is_some() && !matches!(d, "event" | "link" | "campaign" | "source")
}

/// Validate and apply; returns the stored update (with `matched_clicks`)
/// and its ID.
pub async fn update(app: &App, input: CostIn) -> Result<(String, CostUpdateRecord), Error> {
    let named = [
        input.link.is_some(),
        input.campaign.is_some(),
        input.source.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if named != 1 {
        return Err(Error::invalid(
            "invalid_cost_scope",
            "name exactly one of link (a slug), campaign or source (an id) whose clicks the cost covers",
        ));
    }
    if let Some(l) = &input.link
        && !app.store.catalog().links.contains_key(l)
    {
        return Err(Error::invalid(
            "unknown_link",
            format!("no link with slug `{}`", crate::util::text::truncate(l, 64)),
        ));
    }
    if let Some(s) = input.source
        && !app.store.catalog().sources.contains_key(&s)
    {
        return Err(Error::invalid(
            "unknown_source",
            format!("no source with id {s}"),
        ));
    }
    let (Some(from), Some(to)) = (input.from.as_deref(), input.to.as_deref()) else {
        return Err(Error::invalid(
            "invalid_range",
            "from and to are required: dates (both inclusive) or RFC 3339 instants",
        ));
    };
    let tz_name = input
        .tz
        .clone()
        .unwrap_or_else(|| app.config.report_timezone.clone());
    let tz = range::zone(&tz_name).map_err(|e| Error::invalid(e.code, e.message))?;
    let r = range::resolve(Some(from), Some(to), &tz, now_ms())
        .map_err(|e| Error::invalid(e.code, e.message))?;
    let text = match &input.amount {
        Some(serde_json::Value::String(s)) => s.trim().to_string(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let amount: Decimal = text
        .parse::<Decimal>()
        .ok()
        .filter(|d| !d.is_sign_negative() && !text.contains(['e', 'E']))
        .ok_or_else(|| {
            Error::invalid(
                "invalid_amount",
                "amount is the total cost of the range, a non-negative decimal such as \"125.40\"",
            )
        })?;
    let currency = match &input.currency {
        None => String::new(),
        Some(c) => currency::normalize(c).ok_or_else(|| {
            Error::invalid(
                "invalid_currency",
                "currency must be an ISO 4217 code such as USD",
            )
        })?,
    };
    let mut filter = Vec::new();
    for (d, v) in input.filter {
        if !filterable(&d) {
            let names: Vec<&str> = DIMS.iter().copied().filter(|d| filterable(d)).collect();
            return Err(Error::invalid(
                "unknown_dimension",
                format!(
                    "`{}` cannot narrow a cost update; use one of: {}",
                    crate::util::text::truncate(&d, 32),
                    names.join(", ")
                ),
            ));
        }
        filter.push((d, v));
    }
    let rec = CostUpdateRecord {
        scope: CostScope {
            link: input.link,
            campaign: input.campaign,
            source: input.source,
            filter,
        },
        from_ms: r.from_ms,
        to_ms: r.to_ms,
        from: r.from,
        to: r.to,
        tz: tz_name,
        amount: amount.normalize().to_string(),
        currency,
        matched_clicks: 0,
        created_ms: now_ms(),
    };
    let id = ids::new_id(rec.created_ms);
    let (key, stored) = (id.clone(), rec.clone());
    let n = app
        .store
        .write(move |ctx| costs::apply(ctx, &key, stored))
        .await?;
    let mut rec = rec;
    rec.matched_clicks = n;
    Ok((id, rec))
}

/// Cost updates, newest first (`cursor`, `limit`).
pub async fn list(app: &App, q: &Query) -> Result<Page<CostUpdateRecord>, Error> {
    let limit = q.limit()?;
    let cursor = q.get("cursor").map(str::to_string);
    Ok(app
        .store
        .read(move |rtx| scan(rtx, COSTS, "", cursor.as_deref(), limit, |_| true))
        .await?)
}
