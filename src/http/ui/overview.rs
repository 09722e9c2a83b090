//! The Overview page: the range's clicks, conversions, revenue, cost,
//! profit, ROI and match rate; a chart of clicks and conversions over
//! time; delivery health; the newest postbacks, live. The numbers are the
//! Reports page's totals (the same `manage::reports::run`), so the two
//! pages cannot disagree.

use hyper::StatusCode;
use maud::{Markup, html};

use super::chart;
use super::form::Form;
use super::layout::{Tone, badge, decimal, empty, num, page, respond};
use super::postbacks;
use super::session::Viewer;
use crate::app::App;
use crate::http::Resp;
use crate::manage::query::Query;
use crate::manage::{destinations, records, reports};
use crate::reports::output::Metrics;
use crate::reports::range::{self, PRESETS};
use crate::util::clock::now_ms;

fn card(k: &str, v: String) -> Markup {
    // "1,234.50 USD": the currency small, so the number fits one line.
    let (n, cur) = match v.rsplit_once(' ') {
        Some((n, c)) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => {
            (n.to_string(), Some(c.to_string()))
        }
        _ => (v, None),
    };
    html! { div.card { div.k { (k) } div.v { (n) @if let Some(c) = cur { span.cur { (c) } } } } }
}

fn int(m: &Metrics, metric: &str) -> i64 {
    m.value(metric).as_i64().unwrap_or(0)
}

fn money_of(m: &Metrics, metric: &str, currency: &str) -> String {
    match m.value(metric) {
        serde_json::Value::String(s) => format!("{} {currency}", decimal(&s, 2)),
        _ => "—".into(),
    }
}

fn percent(m: &Metrics, metric: &str) -> String {
    match m.value(metric) {
        serde_json::Value::String(s) => match s.parse::<rust_decimal::Decimal>() {
            Ok(d) => format!(
                "{}%",
                decimal(&(d * rust_decimal::Decimal::from(100)).to_string(), 1)
            ),
            Err(_) => s,
        },
        _ => "—".into(),
    }
}

pub async fn get(app: &App, viewer: &Viewer, q: &Form) -> Resp {
    let tz_name = app.config.report_timezone.clone();
    let preset = q
        .opt("range")
        .filter(|r| PRESETS.iter().any(|(n, _)| n == r))
        .unwrap_or_else(|| "7d".into());
    let tz = range::zone(&tz_name).ok();
    let (from, to) = tz
        .as_ref()
        .and_then(|tz| range::preset(&preset, tz, now_ms()))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap_or_default();
    let by = if matches!(preset.as_str(), "today" | "yesterday") {
        "hour"
    } else {
        "day"
    };
    let pairs = vec![
        ("group_by".to_string(), by.to_string()),
        ("from".into(), from),
        ("to".into(), to),
    ];
    let report = reports::run(app, pairs).await;
    let events = records::events(app, &Query::parse("limit=10")).await;
    let now = now_ms();
    let queue = destinations::queue(app, now).await.ok();
    let cat = app.store.catalog();
    let currency = &app.config.report_currency;
    let body = html! {
        div.row.between {
            h1 { "Overview" }
            div.presets role="group" aria-label="Date range" {
                @for (name, label) in PRESETS {
                    a href=(format!("/ui/overview?range={name}")) aria-current=[(preset == name).then_some("true")] { (label) }
                }
            }
        }
        @match &report {
            Err(e) => { p.flash.bad role="alert" { (e.message) } }
            Ok((params, r)) => {
                @let t = &r.totals;
                @let matched = int(t, "conversions");
                @let unmatched = int(t, "unmatched_conversions");
                div.cards {
                    (card("Clicks", num(int(t, "clicks").max(0) as u64)))
                    (card("Conversions", num(matched.max(0) as u64)))
                    (card("Revenue", money_of(t, "revenue", currency)))
                    (card("Cost", money_of(t, "cost", currency)))
                    (card("Profit", money_of(t, "profit", currency)))
                    (card("ROI", percent(t, "roi")))
                    (card("Match rate", if matched + unmatched == 0 { "—".to_string() } else {
                        format!("{}%", decimal(&format!("{}", (matched as f64) * 100.0 / ((matched + unmatched) as f64)), 1))
                    }))
                }
                div.panel {
                    h2 { "Clicks by " (by) " (" (params.tz_name) ")" }
                    @let points = super::reports::time_series(params, r, |m| int(m, "clicks") as f64);
                    @if int(t, "clicks") == 0 {
                        (empty("No clicks in this range", html! { "Create a tracking link on the " a href="/ui/links" { "Links" } " page and send traffic through it." }))
                    } @else {
                        (chart::line(&format!("Clicks by {by}"), &points))
                    }
                    p { a href=(format!("/ui/reports?range={preset}&group_by={by}")) { "Open in Reports →" } }
                }
            }
        }
        div.panel {
            h2 { "Deliveries" }
            @if cat.destinations.is_empty() {
                p.muted { "No destinations yet: conversions are counted but not forwarded. " a href="/ui/destinations" { "Add one" } " (Meta, Google Ads, GA4, TikTok, a webhook or a postback URL)." }
            } @else {
                @if let Some((pending, oldest)) = queue {
                    p {
                        @if pending == 0 { (badge(Tone::Ok, "up to date")) " Nothing waiting to be sent." }
                        @else {
                            (badge(if oldest.is_some_and(|o| now.saturating_sub(o) > 600_000) { Tone::Bad } else { Tone::Warn }, "pending"))
                            " " (num(pending)) " deliveries waiting"
                            @if let Some(o) = oldest { ", the oldest for " (num(now.saturating_sub(o) / 1000)) " s" }
                            "."
                        }
                    }
                }
                div.tablewrap { table {
                    thead { tr { th { "Destination" } th { "Type" } th.n { "Delivered" } th.n { "Retried" } th.n { "Dead" } } }
                    tbody {
                        @for d in cat.destinations.values() {
                            @let c = destinations::counters(app, d.id);
                            tr {
                                td { a href=(format!("/ui/destinations/{}", d.id)) { (d.rec.name) } }
                                td { (d.rec.kind) }
                                td.n { (num(c.0)) } td.n { (num(c.1)) }
                                td.n { @if c.2 > 0 { (badge(Tone::Bad, &num(c.2))) } @else { "0" } }
                            }
                        }
                    }
                } }
                p.muted { "Counts since the server started." }
            }
        }
        h2 { "Newest postbacks" }
        div.tablewrap {
            table {
                (postbacks::head())
                @let rows = events.map(|p| p.0).unwrap_or_default();
                tbody #newest data-live="/ui/postbacks/rows" data-after=(rows.first().map(|(id, _)| id.as_str()).unwrap_or("")) {
                    @for (id, e) in &rows { (postbacks::row(app, id, e)) }
                }
            }
            @if rows.is_empty() {
                div data-empty-for="newest" {
                    (empty("No postbacks yet", html! { "Paste a source's postback URL into your network (" a href="/ui/sources" { "Sources" } "); they appear here live." }))
                }
            }
        }
        p { a href="/ui/postbacks" { "All postbacks →" } }
    };
    respond(
        StatusCode::OK,
        page(viewer, "/ui/overview", "Overview", body),
    )
}
