//! The Postbacks page: the events log (every postback and IPN request with
//! its result), green for matched, amber for duplicate or unmatched, red
//! for refused, with the reason and its fix sentence, the raw request, and
//! a replay button. New rows arrive without a reload (`app.js` polls
//! `/ui/postbacks/rows?after=ID`). The same `manage::records` operations
//! as `GET /api/v1/events` and `POST /api/v1/events/{id}/replay`.

use hyper::StatusCode;
use maud::{Markup, html};

use super::form::{Form, encode};
use super::layout::{Tone, badge, copy_field, empty, page, respond, see_other};
use super::session::Viewer;
use crate::app::App;
use crate::http::Resp;
use crate::manage::query::Query;
use crate::manage::records;
use crate::store::records::EventRecord;
use crate::util::clock::rfc3339;

/// Results a filter offers (error codes are refusals: any other value).
const RESULTS: [&str; 5] = ["matched", "duplicate", "updated", "unmatched", "refused"];

/// The colour of a result: green worked, amber needs a look, red refused.
pub fn tone(result: &str) -> Tone {
    match result {
        "matched" | "updated" => Tone::Ok,
        "duplicate" | "unmatched" => Tone::Warn,
        _ => Tone::Bad,
    }
}

fn source_name(app: &App, id: u64) -> String {
    app.store
        .catalog()
        .sources
        .get(&id)
        .map_or_else(|| format!("source {id} (deleted)"), |s| s.rec.name.clone())
}

fn when(ms: u64) -> String {
    // `2026-12-01T22:41:08.123Z` → `2026-12-01 22:41:08`.
    let s = rfc3339(ms);
    s.get(..19).map_or(s.clone(), |t| t.replace('T', " "))
}

/// The log's column headings (the result first: it is what a phone shows).
pub fn head() -> Markup {
    html! { thead { tr { th { "Result" } th { "Received (UTC)" } th { "Source" } th { "Reason and fix" } th { "Click ID" } th.n { "HTTP" } } } }
}

/// One row of the log (also the unit of the live updates).
pub fn row(app: &App, id: &str, e: &EventRecord) -> Markup {
    html! {
        tr data-id=(id) {
            td { (badge(tone(&e.result), &e.result)) }
            td.mono { a href=(format!("/ui/postbacks/{}", encode(id))) { (when(e.ms)) } }
            td { (source_name(app, e.source_id)) }
            td.wrap {
                @if let Some(m) = &e.message { (m) }
                @if e.replay_of.is_some() { " " span.muted { "(replay)" } }
            }
            td.mono { (e.click_id.as_deref().unwrap_or("—")) }
            td.n { (e.http_status) }
        }
    }
}

/// The log's query from the page's filters; `refused` means any error
/// code, filtered after the read.
fn query(q: &Form, limit: usize) -> (Query, bool) {
    let refused = q.get("result") == "refused";
    let mut parts: Vec<String> = Vec::new();
    for k in ["source", "cursor", "after", "since", "until"] {
        if let Some(v) = q.opt(k) {
            parts.push(format!("{k}={}", encode(&v)));
        }
    }
    if let Some(r) = q.opt("result").filter(|r| r != "refused") {
        parts.push(format!("result={}", encode(&r)));
    }
    parts.push(format!("limit={limit}"));
    (Query::parse(&parts.join("&")), refused)
}

fn keep(refused: bool, e: &EventRecord) -> bool {
    !refused || tone(&e.result) == Tone::Bad
}

pub async fn list(app: &App, viewer: &Viewer, q: &Form) -> Resp {
    let (query, refused) = query(q, 100);
    let page_result = records::events(app, &query).await;
    let (rows, next) = match page_result {
        Ok(p) => p,
        Err(e) => {
            return super::problem(
                StatusCode::BAD_REQUEST,
                "This log cannot be shown",
                &e.message,
            );
        }
    };
    let rows: Vec<_> = rows.into_iter().filter(|(_, e)| keep(refused, e)).collect();
    let cat = app.store.catalog();
    let mut live = String::from("/ui/postbacks/rows");
    let filt: Vec<String> = ["source", "result"]
        .iter()
        .filter_map(|k| q.opt(k).map(|v| format!("{k}={}", encode(&v))))
        .collect();
    if !filt.is_empty() {
        live.push('?');
        live.push_str(&filt.join("&"));
    }
    let first = rows.first().map(|(id, _)| id.clone()).unwrap_or_default();
    let body = html! {
        h1 { "Postbacks" }
        p.lead { "Every postback and IPN request, newest first, with what postbackd did with it. New ones appear here as they arrive." }
        form.panel.inline method="get" action="/ui/postbacks" {
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
                label for="result" { "Result" }
                select id="result" name="result" {
                    option value="" { "All results" }
                    @for r in RESULTS {
                        option value=(r) selected[q.get("result") == r] { (r) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        div.tablewrap {
            table {
                (head())
                tbody #log data-live=(live) data-after=(first) {
                    @for (id, e) in &rows { (row(app, id, e)) }
                }
            }
            @if rows.is_empty() {
                div data-empty-for="log" {
                    @if cat.sources.is_empty() {
                        (empty("No postbacks yet", html! { "Create a source on the " a href="/ui/sources" { "Sources" } " page, then paste its postback URL into your network." }))
                    } @else {
                        (empty("No postbacks yet", html! { "Paste a source's postback URL into your network (Sources page), or fire a test from there. They appear here as they arrive." }))
                    }
                }
            }
        }
        @if let Some(c) = next {
            div.pager { a href=(format!("/ui/postbacks?cursor={}{}", encode(&c), filt.iter().map(|f| format!("&{f}")).collect::<String>())) { "Older →" } }
        }
    };
    respond(
        StatusCode::OK,
        page(viewer, "/ui/postbacks", "Postbacks", body),
    )
}

/// `GET /ui/postbacks/rows?after=ID`: the rows newer than `after`, for the
/// live log (an HTML fragment: the same `row` markup as the page).
pub async fn rows(app: &App, q: &Form) -> Resp {
    let (query, refused) = query(q, 50);
    let html = match records::events(app, &query).await {
        Ok((rows, _)) => html! {
            @for (id, e) in rows.iter().filter(|(_, e)| keep(refused, e)) { (row(app, id, e)) }
        }
        .into_string(),
        Err(_) => String::new(),
    };
    respond(StatusCode::OK, maud::PreEscaped(html))
}

pub async fn detail(app: &App, viewer: &Viewer, id: &str) -> Resp {
    let e = match records::event(app, id).await {
        Ok(e) => e,
        Err(err) => return super::problem(StatusCode::NOT_FOUND, "No such postback", &err.message),
    };
    let raw = format!(
        "{} {}{}{}",
        e.method,
        e.path,
        if e.query.is_empty() { "" } else { "?" },
        e.query
    );
    let body_text = String::from_utf8_lossy(&e.body).into_owned();
    let body = html! {
        h1 { "Postback " (badge(tone(&e.result), &e.result)) }
        div.panel {
            dl.kv {
                dt { "Received" } dd { (rfc3339(e.ms)) }
                dt { "Source" } dd { (source_name(app, e.source_id)) }
                dt { "Result" } dd { (e.result) " (HTTP " (e.http_status) ")" }
                @if let Some(m) = &e.message { dt { "Reason and fix" } dd { (m) } }
                @if let Some(c) = &e.click_id { dt { "Click ID" } dd.mono { a href=(format!("/ui/clicks?id={}", encode(c))) { (c) } } }
                @if let Some(c) = &e.conversion_id { dt { "Conversion" } dd.mono { a href=(format!("/ui/conversions/{}", encode(c))) { (c) } } }
                @if let Some(r) = &e.replay_of { dt { "Replay of" } dd.mono { a href=(format!("/ui/postbacks/{}", encode(r))) { (r) } } }
                dt { "From" } dd { (e.remote_ip) @if let Some(ua) = &e.user_agent { " · " (ua) } }
            }
        }
        h2 { "Raw request" }
        (copy_field(&raw, "Copy the request line"))
        @if !e.body.is_empty() {
            pre { (body_text) }
            @if e.body_truncated { p.muted { "The body was longer than the stored limit and is cut here." } }
        }
        @if let Some(d) = &e.decoded { h2 { "Decoded" } pre { (d) } }
        @if viewer.is_admin() {
            form method="post" action=(format!("/ui/postbacks/{}/replay", encode(id))) data-confirm="Run this request again with the source's current mapping?" {
                input type="hidden" name="csrf" value=(viewer.csrf);
                p { button type="submit" { "Replay with the current mapping" } }
                p.muted { "Fixed the source's mapping? Replaying runs the stored request again; a conversion is never counted twice." }
            }
        }
    };
    respond(
        StatusCode::OK,
        page(viewer, "/ui/postbacks", "Postback", body),
    )
}

/// `POST /ui/postbacks/{id}/replay`: replay, then show the new event.
pub async fn replay(app: &App, id: &str) -> Resp {
    match records::replay(app, id).await {
        Ok(o) => see_other(&format!("/ui/postbacks/{}", encode(&o.event_id))),
        Err(e) => super::problem(
            StatusCode::BAD_REQUEST,
            "This postback cannot be replayed",
            &e.message,
        ),
    }
}
