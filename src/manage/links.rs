//! Tracking links: validation of a link's fields, and create / change /
//! delete in one write transaction that also updates the catalog.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use rust_decimal::Decimal;

use super::{Error, double_option};
use crate::app::App;
use crate::inbound::currency;
use crate::store::catalog::LinkEntry;
use crate::store::records::LinkCost;
use crate::store::records::{self, LinkRecord};
use crate::store::rollup::SUBS;
use crate::tracking::{click, origin};
use crate::util::clock::now_ms;
use crate::util::ids;
use crate::util::text::truncate;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LinkIn {
    pub slug: Option<String>,
    pub destination: Option<String>,
    pub source: Option<Option<u64>>,
    pub campaign: Option<String>,
    pub param: Option<String>,
    /// `{"sub1": "zoneid", ...}`: the click parameter that fills each sub-ID
    /// slot (the traffic source's tokens). Replaces the whole map.
    pub subs: Option<BTreeMap<String, String>>,
    /// The cost model; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    pub cost: Option<Option<CostIn>>,
    /// Landing-page origins allowed to record clicks on this link with the
    /// page tag (`["https://lp.example.com"]`). Replaces the whole list.
    pub tag_origins: Option<Vec<String>>,
}

/// Most origins on one link.
const MAX_TAG_ORIGINS: usize = 32;

/// `"cost": {"model": "cpc", "amount": "0.05"}`, `{"model": "cpa",
/// "amount": "12.00"}`, `{"model": "revshare", "percent": "40"}` or
/// `{"model": "param", "param": "cost"}`; `currency` optional (default:
/// the report currency).
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct CostIn {
    pub model: String,
    pub amount: Option<serde_json::Value>,
    pub percent: Option<serde_json::Value>,
    pub param: Option<String>,
    pub currency: Option<String>,
}

/// A decimal given as text or as a JSON number (numbers keep their
/// literal text), non-negative, never in exponent form.
fn decimal(v: &serde_json::Value, what: &str) -> Result<Decimal, Error> {
    let text = match v {
        serde_json::Value::String(s) => s.trim().to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    text.parse::<Decimal>()
        .ok()
        .filter(|d| !d.is_sign_negative() && !text.contains(['e', 'E']))
        .map(|d| d.normalize())
        .ok_or_else(|| {
            Error::invalid(
                "invalid_cost",
                format!("{what} must be a non-negative decimal such as \"0.05\""),
            )
        })
}

impl CostIn {
    fn validate(self) -> Result<LinkCost, Error> {
        let currency = match self.currency {
            None => None,
            Some(c) => Some(currency::normalize(&c).ok_or_else(|| {
                Error::invalid(
                    "invalid_currency",
                    "cost.currency must be an ISO 4217 code such as USD",
                )
            })?),
        };
        let mut out = LinkCost {
            model: self.model.clone(),
            amount: None,
            percent: None,
            param: None,
            currency,
        };
        let need = |v: Option<serde_json::Value>, field: &str| {
            v.ok_or_else(|| {
                Error::invalid(
                    "invalid_cost",
                    format!("cost model {} needs `{field}`", self.model),
                )
            })
        };
        match self.model.as_str() {
            "cpc" | "cpa" => {
                out.amount =
                    Some(decimal(&need(self.amount, "amount")?, "cost.amount")?.to_string());
            }
            "revshare" => {
                let p = decimal(&need(self.percent, "percent")?, "cost.percent")?;
                if p > Decimal::ONE_HUNDRED {
                    return Err(Error::invalid(
                        "invalid_cost",
                        "cost.percent is a share of revenue from 0 to 100",
                    ));
                }
                out.percent = Some(p.to_string());
            }
            "param" => {
                let p = self.param.unwrap_or_default();
                if !valid_param(&p) {
                    return Err(Error::invalid(
                        "invalid_cost",
                        "cost.param names the click parameter that carries the price (the traffic \
                         source's {cost} token), 1-64 letters, digits, _ - . [ ]",
                    ));
                }
                out.param = Some(p);
            }
            other => {
                return Err(Error::invalid(
                    "invalid_cost",
                    format!(
                        "cost model `{}` is not known; use cpc, cpa, revshare or param",
                        truncate(other, 32)
                    ),
                ));
            }
        }
        Ok(out)
    }
}

fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn valid_param(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.[]".contains(&b))
}

impl LinkIn {
    pub fn apply(self, app: &App, rec: &mut LinkRecord) -> Result<(), Error> {
        if let Some(d) = self.destination {
            click::validate_destination(&d)
                .map_err(|m| Error::invalid("invalid_destination", m))?;
            rec.destination = d;
        }
        if let Some(s) = self.source {
            if let Some(id) = s
                && !app.store.catalog().sources.contains_key(&id)
            {
                return Err(Error::invalid(
                    "unknown_source",
                    format!("no source with id {id}"),
                ));
            }
            rec.source_id = s;
        }
        if let Some(c) = self.campaign {
            if c.len() > 200 {
                return Err(Error::invalid(
                    "invalid_campaign",
                    "campaign must be at most 200 characters",
                ));
            }
            rec.campaign = (!c.is_empty()).then_some(c);
        }
        if let Some(subs) = self.subs {
            let mut out = Vec::new();
            for (slot, param) in subs {
                if !SUBS.contains(&slot.as_str()) {
                    return Err(Error::invalid(
                        "invalid_subs",
                        format!(
                            "`{}` is not a sub-ID slot; use sub1 to sub5",
                            truncate(&slot, 32)
                        ),
                    ));
                }
                if !valid_param(&param) {
                    return Err(Error::invalid(
                        "invalid_subs",
                        format!(
                            "subs.{slot} names a click parameter: 1-64 letters, digits, _ - . [ ]"
                        ),
                    ));
                }
                out.push((slot, param));
            }
            rec.subs = out;
        }
        if let Some(cost) = self.cost {
            rec.cost = cost.map(CostIn::validate).transpose()?;
        }
        if let Some(list) = self.tag_origins {
            if list.len() > MAX_TAG_ORIGINS {
                return Err(Error::invalid(
                    "invalid_tag_origins",
                    format!("a link allows at most {MAX_TAG_ORIGINS} tag_origins"),
                ));
            }
            let mut out: Vec<String> = Vec::new();
            for o in &list {
                let n = origin::normalize(o).map_err(|m| {
                    Error::invalid("invalid_tag_origins", format!("tag_origins: {m}"))
                })?;
                if !out.contains(&n) {
                    out.push(n);
                }
            }
            rec.tag_origins = out;
        }
        if let Some(p) = self.param {
            if !valid_param(&p) {
                return Err(Error::invalid(
                    "invalid_param",
                    "param must be 1-64 letters, digits, _ - . [ ]",
                ));
            }
            rec.param = p;
        }
        Ok(())
    }
}

/// Every link, by slug.
pub fn list(app: &App) -> Vec<Arc<LinkEntry>> {
    app.store.catalog().links.values().cloned().collect()
}

pub fn get(app: &App, slug: &str) -> Result<Arc<LinkEntry>, Error> {
    app.store
        .catalog()
        .links
        .get(slug)
        .cloned()
        .ok_or_else(|| unknown(slug))
}

fn unknown(slug: &str) -> Error {
    Error::not_found(
        "unknown_link",
        format!("no link with slug `{}`", truncate(slug, 64)),
    )
}

pub async fn create(app: &App, input: LinkIn) -> Result<Arc<LinkEntry>, Error> {
    if input.destination.is_none() {
        return Err(Error::invalid(
            "invalid_destination",
            "destination is required: the offer URL, with {click_id} or --CLICK-ID-- where the network's tracking parameter takes it",
        ));
    }
    let slug = match &input.slug {
        Some(s) if !valid_slug(s) => {
            return Err(Error::invalid(
                "invalid_slug",
                "slug must be 1-64 letters, digits, - or _",
            ));
        }
        Some(s) => s.clone(),
        None => ids::new_id(0)[ids::TIME_DIGITS..ids::TIME_DIGITS + 10].to_string(),
    };
    let mut rec = LinkRecord {
        destination: String::new(),
        source_id: None,
        campaign: None,
        param: String::new(),
        created_ms: now_ms(),
        subs: Vec::new(),
        cost: None,
        tag_origins: Vec::new(),
    };
    let explicit_param = input.param.is_some();
    input.apply(app, &mut rec)?;
    if !explicit_param {
        // The network's own tracking parameter when the source knows it.
        rec.param = rec
            .source_id
            .and_then(|id| {
                app.store
                    .catalog()
                    .sources
                    .get(&id)
                    .and_then(|s| s.mapping.params.get("click_id").cloned())
            })
            .unwrap_or_else(|| "click_id".to_string());
    }
    let entry = app
        .store
        .write(move |ctx| {
            if ctx.catalog().links.contains_key(&slug) {
                return Ok(None);
            }
            ctx.links()?
                .insert(slug.as_str(), records::encode(&rec).as_slice())?;
            Ok(Some(ctx.catalog_mut().put_link(slug, rec)))
        })
        .await?
        .ok_or_else(|| {
            Error::conflict(
                "slug_taken",
                "a link with this slug exists; choose another slug",
            )
        })?;
    Ok(entry)
}

pub async fn update(app: &App, slug: &str, input: LinkIn) -> Result<Arc<LinkEntry>, Error> {
    if input.slug.as_deref().is_some_and(|s| s != slug) {
        return Err(Error::invalid(
            "invalid_slug",
            "a link's slug cannot change; create a new link",
        ));
    }
    let mut rec = app
        .store
        .catalog()
        .links
        .get(slug)
        .map(|l| l.rec.clone())
        .ok_or_else(|| unknown(slug))?;
    input.apply(app, &mut rec)?;
    let slug_owned = slug.to_string();
    let entry = app
        .store
        .write(move |ctx| {
            if !ctx.catalog().links.contains_key(&slug_owned) {
                return Ok(None);
            }
            ctx.links()?
                .insert(slug_owned.as_str(), records::encode(&rec).as_slice())?;
            Ok(Some(ctx.catalog_mut().put_link(slug_owned, rec)))
        })
        .await?
        .ok_or_else(|| unknown(slug))?;
    Ok(entry)
}

pub async fn delete(app: &App, slug: &str) -> Result<(), Error> {
    let s = slug.to_string();
    let removed = app
        .store
        .write(move |ctx| {
            let existed = ctx.links()?.remove(s.as_str())?.is_some();
            if existed {
                ctx.catalog_mut().remove_link(&s);
            }
            Ok(existed)
        })
        .await?;
    if removed { Ok(()) } else { Err(unknown(slug)) }
}
