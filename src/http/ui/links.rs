//! The Links page: tracking links with their URL (copy button), offer,
//! source, campaign, cost model and sub-ID parameters; create, edit cost
//! and subs, delete. The same `manage::links` operations as
//! `/api/v1/links`; errors are shown by the field they concern.

use std::collections::BTreeMap;

use hyper::StatusCode;
use maud::{Markup, html};

use super::form::{Form, encode};
use super::layout::{copy_field, empty, page, respond, see_other};
use super::session::Viewer;
use crate::app::App;
use crate::http::Resp;
use crate::manage::{self, links};
use crate::store::catalog::LinkEntry;

const SUBS: [&str; 5] = ["sub1", "sub2", "sub3", "sub4", "sub5"];

fn field_of(code: &str) -> &'static str {
    match code {
        "invalid_slug" | "slug_taken" => "slug",
        "invalid_destination" => "destination",
        "unknown_source" => "source",
        "invalid_campaign" => "campaign",
        "invalid_param" => "param",
        "invalid_cost" | "invalid_currency" => "cost",
        "invalid_subs" => "subs",
        _ => "form",
    }
}

fn err_for(err: Option<&manage::Error>, field: &str) -> Markup {
    super::layout::field_error(err, field, field_of)
}

fn url(app: &App, l: &LinkEntry) -> String {
    format!("{}/c/{}", app.config.public_url, l.slug)
}

fn cost_text(l: &LinkEntry) -> String {
    match &l.rec.cost {
        None => "—".into(),
        Some(c) => {
            let cur = c.currency.as_deref().unwrap_or("");
            match c.model.as_str() {
                "cpc" => format!("CPC {} {cur}", c.amount.as_deref().unwrap_or("")),
                "cpa" => format!("CPA {} {cur}", c.amount.as_deref().unwrap_or("")),
                "revshare" => format!("Revshare {}%", c.percent.as_deref().unwrap_or("")),
                "param" => format!("From parameter {}", c.param.as_deref().unwrap_or("")),
                m => m.to_string(),
            }
        }
    }
}

/// The cost and subs fields, shared by the create and the edit forms.
fn cost_and_subs(f: &dyn Fn(&str) -> String, err: Option<&manage::Error>) -> Markup {
    let model = f("cost_model");
    html! {
        fieldset.field {
            legend.label { "Cost" }
            div.row {
                div.field {
                    label for="cost_model" { "Model" }
                    select id="cost_model" name="cost_model" {
                        @for (v, label) in [("", "No cost"), ("cpc", "CPC: per click"), ("cpa", "CPA: per conversion"), ("revshare", "Revshare: % of revenue"), ("param", "From a click parameter")] {
                            option value=(v) selected[model == v] { (label) }
                        }
                    }
                }
                div.field {
                    label for="cost_value" { "Amount, percent or parameter" }
                    input type="text" id="cost_value" name="cost_value" value=(f("cost_value")) placeholder="0.05";
                }
                div.field {
                    label for="cost_currency" { "Currency" }
                    input type="text" id="cost_currency" name="cost_currency" value=(f("cost_currency")) maxlength="3" placeholder="report currency";
                }
            }
            (err_for(err, "cost"))
        }
        fieldset.field {
            legend.label { "Sub-IDs" }
            span.hint { "The click parameter that fills each sub-ID (your traffic source's tokens, e.g. zoneid)." }
            div.row {
                @for s in SUBS {
                    div.field {
                        label for=(s) { (s) }
                        input type="text" id=(s) name=(s) value=(f(s));
                    }
                }
            }
            (err_for(err, "subs"))
        }
    }
}

/// The cost model from the form (`None`: field absent; `Some(None)`: no cost).
fn cost_in(f: &Form) -> Option<Option<links::CostIn>> {
    let model = f.get("cost_model").trim().to_string();
    if model.is_empty() {
        return Some(None);
    }
    let value = f.opt("cost_value");
    let mut c = links::CostIn {
        model: model.clone(),
        currency: f.opt("cost_currency"),
        ..Default::default()
    };
    match model.as_str() {
        "revshare" => c.percent = value.map(serde_json::Value::String),
        "param" => c.param = value,
        _ => c.amount = value.map(serde_json::Value::String),
    }
    Some(Some(c))
}

fn subs_in(f: &Form) -> BTreeMap<String, String> {
    SUBS.iter()
        .filter_map(|s| f.opt(s).map(|v| (s.to_string(), v)))
        .collect()
}

pub async fn list(app: &App, viewer: &Viewer, f: &Form, err: Option<&manage::Error>) -> Resp {
    let all = links::list(app);
    let cat = app.store.catalog();
    let invalid = |name: &str| {
        err.is_some_and(|e| field_of(e.code) == name)
            .then_some("true")
    };
    let get = |k: &str| f.get(k).to_string();
    let body = html! {
        h1 { "Links" }
        p.lead { "A tracking link records the click, then sends the visitor to the offer with the click ID in the URL." }
        div.tablewrap {
            @if all.is_empty() {
                (empty("No links yet", html! { @if viewer.is_admin() { "Create one below: the offer URL with {click_id} where the network takes your sub-ID." } @else { "An admin creates links." } }))
            } @else {
                table {
                    thead { tr { th { "Slug" } th { "Tracking URL" } th { "Offer" } th { "Source" } th { "Campaign" } th { "Cost" } } }
                    tbody {
                        @for l in &all {
                            tr {
                                td { a href=(format!("/ui/links/{}", encode(&l.slug))) { (l.slug) } }
                                td { (copy_field(&url(app, l), "Copy the tracking URL")) }
                                td.mono.wrap { (l.rec.destination) }
                                td { (l.rec.source_id.and_then(|id| cat.sources.get(&id)).map_or("—".to_string(), |s| s.rec.name.clone())) }
                                td { (l.rec.campaign.as_deref().unwrap_or("—")) }
                                td { (cost_text(l)) }
                            }
                        }
                    }
                }
            }
        }
        @if viewer.is_admin() {
            form.panel.stack method="post" action="/ui/links" {
                h2 { "New link" }
                input type="hidden" name="csrf" value=(viewer.csrf);
                div.field {
                    label for="destination" { "Offer URL" }
                    input type="url" id="destination" name="destination" value=(f.get("destination")) required placeholder="https://offer.example/lp?sub1={click_id}" aria-invalid=[invalid("destination")] aria-describedby="destination-err";
                    span.hint { "Write {click_id} where the network takes your click ID; without it the ID is appended as ?cid=." }
                    (err_for(err, "destination"))
                }
                div.row {
                    div.field {
                        label for="slug" { "Slug (optional)" }
                        input type="text" id="slug" name="slug" value=(f.get("slug")) aria-invalid=[invalid("slug")] aria-describedby="slug-err";
                        (err_for(err, "slug"))
                    }
                    div.field {
                        label for="source" { "Source" }
                        select id="source" name="source" aria-invalid=[invalid("source")] {
                            option value="" { "None" }
                            @for s in cat.sources.values() {
                                option value=(s.id) selected[f.get("source") == s.id.to_string()] { (s.rec.name) }
                            }
                        }
                        (err_for(err, "source"))
                    }
                    div.field {
                        label for="campaign" { "Campaign" }
                        input type="text" id="campaign" name="campaign" value=(f.get("campaign")) aria-invalid=[invalid("campaign")];
                        (err_for(err, "campaign"))
                    }
                }
                (cost_and_subs(&get, err))
                @if let Some(e) = err.filter(|e| field_of(e.code) == "form") { p.flash.bad role="alert" { (e.message) } }
                div { button type="submit" { "Create link" } }
            }
        }
    };
    let status = if err.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    respond(status, page(viewer, "/ui/links", "Links", body))
}

pub async fn create(app: &App, viewer: &Viewer, f: &Form) -> Resp {
    let input = links::LinkIn {
        slug: f.opt("slug"),
        destination: Some(f.get("destination").trim().to_string()),
        source: f.opt("source").map(|s| s.parse().ok()),
        campaign: f.opt("campaign"),
        subs: Some(subs_in(f)),
        cost: cost_in(f).filter(|c| c.is_some()),
        ..Default::default()
    };
    match links::create(app, input).await {
        Ok(l) => see_other(&format!("/ui/links/{}", encode(&l.slug))),
        Err(e) => list(app, viewer, f, Some(&e)).await,
    }
}

pub fn detail(
    app: &App,
    viewer: &Viewer,
    slug: &str,
    f: Option<&Form>,
    err: Option<&manage::Error>,
) -> Resp {
    let Ok(l) = links::get(app, slug) else {
        return super::problem(
            StatusCode::NOT_FOUND,
            "No such link",
            "This link does not exist (it may have been deleted).",
        );
    };
    let current = |k: &str| -> String {
        if let Some(f) = f {
            return f.get(k).to_string();
        }
        match k {
            "cost_model" => l
                .rec
                .cost
                .as_ref()
                .map_or(String::new(), |c| c.model.clone()),
            "cost_value" => l
                .rec
                .cost
                .as_ref()
                .and_then(|c| c.amount.clone().or(c.percent.clone()).or(c.param.clone()))
                .unwrap_or_default(),
            "cost_currency" => l
                .rec
                .cost
                .as_ref()
                .and_then(|c| c.currency.clone())
                .unwrap_or_default(),
            s => l
                .rec
                .subs
                .iter()
                .find(|(k, _)| k == s)
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
        }
    };
    let body = html! {
        h1 { "Link " code { (l.slug) } }
        div.panel {
            h2 { "Tracking URL" }
            (copy_field(&url(app, &l), "Copy the tracking URL"))
            p.muted { "Use it as the ad's URL. Add your traffic source's tokens as parameters (e.g. ?zoneid={zoneid}); the sub-ID fields below say which fill sub1–sub5." }
            dl.kv {
                dt { "Offer" } dd.mono { (l.rec.destination) }
                dt { "Campaign" } dd { (l.rec.campaign.as_deref().unwrap_or("—")) }
                dt { "Cost" } dd { (cost_text(&l)) }
            }
        }
        @if viewer.is_admin() {
            form.panel.stack method="post" action=(format!("/ui/links/{}", encode(&l.slug))) {
                h2 { "Cost and sub-IDs" }
                input type="hidden" name="csrf" value=(viewer.csrf);
                (cost_and_subs(&current, err))
                @if let Some(e) = err.filter(|e| field_of(e.code) == "form") { p.flash.bad role="alert" { (e.message) } }
                div { button type="submit" { "Save" } }
            }
            form method="post" action=(format!("/ui/links/{}/delete", encode(&l.slug))) data-confirm="Delete this link? Clicks on it will get a 404." {
                input type="hidden" name="csrf" value=(viewer.csrf);
                button.danger type="submit" { "Delete link" }
            }
        }
        p { a href=(format!("/ui/reports?group_by=day&filter.link={}", encode(&l.slug))) { "This link's report →" } }
    };
    let status = if err.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    respond(status, page(viewer, "/ui/links", &l.slug, body))
}

pub async fn update(app: &App, viewer: &Viewer, slug: &str, f: &Form) -> Resp {
    let input = links::LinkIn {
        subs: Some(subs_in(f)),
        cost: cost_in(f),
        ..Default::default()
    };
    match links::update(app, slug, input).await {
        Ok(l) => see_other(&format!("/ui/links/{}", encode(&l.slug))),
        Err(e) => detail(app, viewer, slug, Some(f), Some(&e)),
    }
}

pub async fn delete(app: &App, slug: &str) -> Resp {
    match links::delete(app, slug).await {
        Ok(()) => see_other("/ui/links"),
        Err(e) => super::problem(
            StatusCode::BAD_REQUEST,
            "This link cannot be deleted",
            &e.message,
        ),
    }
}
