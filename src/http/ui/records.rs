//! The Conversions and Clicks pages: conversions with filters, one
//! conversion with its status history, the postbacks behind it and its
//! deliveries; a click looked up by its ID. The same `manage::records`
//! operations and JSON views (`views::conversion`, `views::click`) as the
//! admin API, so the page shows exactly the fields the API answers.

use hyper::StatusCode;
use maud::{Markup, html};
use serde_json::Value;

use super::form::{Form, encode};
use super::layout::{Tone, badge, decimal, empty, page, respond};
use super::session::Viewer;
use crate::app::App;
use crate::http::Resp;
use crate::inbound::postback::Status;
use crate::manage::query::Query;
use crate::manage::{destinations, records};
use crate::util::clock::rfc3339;
use crate::views;

fn status_tone(s: &str) -> Tone {
    match s {
        "approved" => Tone::Ok,
        "pending" => Tone::Warn,
        _ => Tone::Bad,
    }
}

fn short_time(ms: u64) -> String {
    let s = rfc3339(ms);
    s.get(..19).map_or(s.clone(), |t| t.replace('T', " "))
}

/// A JSON view as a definition list (nulls left out).
fn kv(v: &Value, skip: &[&str]) -> Markup {
    html! {
        dl.kv {
            @if let Value::Object(m) = v {
                @for (k, val) in m {
                    @if !val.is_null() && !skip.contains(&k.as_str()) {
                        dt { (k) }
                        dd.mono { (match val { Value::String(s) => s.clone(), other => other.to_string() }) }
                    }
                }
            }
        }
    }
}

pub async fn conversions(app: &App, viewer: &Viewer, q: &Form) -> Resp {
    let mut parts = vec!["limit=100".to_string()];
    for k in ["source", "status", "matched", "cursor"] {
        if let Some(v) = q.opt(k) {
            parts.push(format!("{k}={}", encode(&v)));
        }
    }
    let (rows, next) = match records::conversions(app, &Query::parse(&parts.join("&"))).await {
        Ok(p) => p,
        Err(e) => {
            return super::problem(
                StatusCode::BAD_REQUEST,
                "These conversions cannot be listed",
                &e.message,
            );
        }
    };
    let cat = app.store.catalog();
    let filt: String = ["source", "status", "matched"]
        .iter()
        .filter_map(|k| q.opt(k).map(|v| format!("&{k}={}", encode(&v))))
        .collect();
    let body = html! {
        h1 { "Conversions" }
        form.panel.inline method="get" action="/ui/conversions" {
            div.field {
                label for="source" { "Source" }
                select id="source" name="source" {
                    option value="" { "All sources" }
                    @for s in cat.sources.values() {
                        option value=(s.id) selected[q.get("source") == s.id.to_string()] { (s.rec.name) }
                    }
                }
            }
            div.field {
                label for="status" { "Status" }
                select id="status" name="status" {
                    option value="" { "Any status" }
                    @for st in Status::LIST.split(", ") {
                        option value=(st) selected[q.get("status") == st] { (st) }
                    }
                }
            }
            div.field {
                label for="matched" { "Click" }
                select id="matched" name="matched" {
                    option value="" { "Matched or not" }
                    option value="true" selected[q.get("matched") == "true"] { "Matched a click" }
                    option value="false" selected[q.get("matched") == "false"] { "No known click" }
                }
            }
            button type="submit" { "Show" }
        }
        div.tablewrap {
            @if rows.is_empty() {
                (empty("No conversions", html! { "Conversions appear when a network's postback arrives; check the " a href="/ui/postbacks" { "Postbacks" } " page for refused ones." }))
            } @else {
                table {
                    thead { tr { th { "Created (UTC)" } th { "Source" } th { "Status" } th { "Type" } th.n { "Amount" } th { "Click ID" } th { "Transaction" } th { "Campaign" } } }
                    tbody {
                        @for (id, c) in &rows {
                            tr {
                                td.mono { a href=(format!("/ui/conversions/{}", encode(id))) { (short_time(c.created_ms)) } }
                                td { (cat.sources.get(&c.source_id).map_or_else(|| c.source_id.to_string(), |s| s.rec.name.clone())) }
                                td { (badge(status_tone(&c.status), &c.status)) @if c.test { " " (badge(Tone::Plain, "test")) } }
                                td { (c.kind) }
                                td.n { (c.amount.as_deref().map_or_else(|| "—".to_string(), |a| format!("{} {}", decimal(a, 2), c.currency))) }
                                td.mono { (c.click_id) @if !c.matched { " " (badge(Tone::Warn, "no click")) } }
                                td.mono { (c.transaction_id.as_deref().unwrap_or("—")) }
                                td { (c.campaign.as_deref().unwrap_or("—")) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(c) = next {
            div.pager { a href=(format!("/ui/conversions?cursor={}{filt}", encode(&c))) { "Older →" } }
        }
    };
    respond(
        StatusCode::OK,
        page(viewer, "/ui/conversions", "Conversions", body),
    )
}

pub async fn conversion(app: &App, viewer: &Viewer, id: &str) -> Resp {
    let c = match records::conversion(app, id).await {
        Ok(c) => c,
        Err(e) => return super::problem(StatusCode::NOT_FOUND, "No such conversion", &e.message),
    };
    let deliveries = destinations::deliveries(
        app,
        &Query::parse(&format!("conversion={}&limit=50", encode(id))),
    )
    .await
    .map(|p| p.0)
    .unwrap_or_default();
    let cat = app.store.catalog();
    let view = views::conversion(id, &c);
    let body = html! {
        h1 { "Conversion " (badge(status_tone(&c.status), &c.status)) }
        div.panel { (kv(&view, &["history", "event_ids", "extra"])) }
        h2 { "Status history" }
        div.tablewrap { table {
            thead { tr { th { "At (UTC)" } th { "Status" } } }
            tbody { @for (ms, st) in &c.history { tr { td.mono { (short_time(*ms)) } td { (badge(status_tone(st), st)) } } } }
        } }
        h2 { "Postbacks" }
        ul { @for e in &c.event_ids { li.mono { a href=(format!("/ui/postbacks/{}", encode(e))) { (e) } } } }
        @if !c.extra.is_empty() {
            h2 { "Other parameters" }
            dl.kv { @for (k, v) in &c.extra { dt { (k) } dd.mono { (v) } } }
        }
        h2 { "Deliveries" }
        div.tablewrap {
            @if deliveries.is_empty() {
                (empty("Not forwarded", html! { "No destination took this conversion (see each destination's filter on the " a href="/ui/destinations" { "Destinations" } " page)." }))
            } @else {
                table {
                    thead { tr { th { "Destination" } th { "State" } th.n { "Attempts" } th { "Platform's answer" } } }
                    tbody { @for (did, d) in &deliveries {
                        tr {
                            td { a href=(format!("/ui/destinations/{}", d.destination_id)) { (cat.destinations.get(&d.destination_id).map_or_else(|| d.destination_id.to_string(), |x| x.rec.name.clone())) } }
                            td { (badge(super::destinations::state_tone(&d.state), &d.state)) }
                            td.n { (d.attempts) }
                            td.wrap { (d.last_error.as_deref().unwrap_or("")) " " span.muted.mono { (did) } }
                        }
                    } }
                }
            }
        }
    };
    respond(
        StatusCode::OK,
        page(viewer, "/ui/conversions", "Conversion", body),
    )
}

pub async fn clicks(app: &App, viewer: &Viewer, q: &Form) -> Resp {
    let id = q.opt("id");
    let found = match &id {
        Some(id) => Some(crate::manage::clicks::find(app, id).await),
        None => None,
    };
    let (status, err) = match &found {
        Some(Err(e)) => (StatusCode::NOT_FOUND, Some(e.message.clone())),
        _ => (StatusCode::OK, None),
    };
    let body = html! {
        h1 { "Clicks" }
        form.panel.stack method="get" action="/ui/clicks" {
            div.field {
                label for="id" { "Click ID" }
                input type="search" id="id" name="id" value=(id.as_deref().unwrap_or("")) placeholder="the value your network sends back as the click ID" aria-invalid=[err.as_ref().map(|_| "true")] aria-describedby="id-err";
                @if let Some(m) = &err { span.err #id-err role="alert" { (m) } }
            }
            div { button type="submit" { "Look up" } }
        }
        @if let Some(Ok((cid, c))) = &found {
            div.panel {
                h2 { "Click " code { (cid) } }
                (kv(&views::click(cid, c), &[]))
            }
        }
    };
    respond(status, page(viewer, "/ui/clicks", "Clicks", body))
}
