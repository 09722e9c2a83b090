//! The Reports page: the report API as a table. Up to three group-bys, a
//! range preset or custom dates, a time zone, the time basis, sorting by
//! any column, drill-down (a row's values become filters and the table
//! regroups by the next dimension), CSV download, and a chart of the
//! chosen metric over time. Both the table and the chart come from
//! `manage::reports::run`, the operation behind `GET /api/v1/reports`.

use hyper::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use maud::{Markup, html};

use super::chart;
use super::form::{Form, encode};
use super::layout::{Tone, badge, decimal, num, page, respond};
use super::session::Viewer;
use crate::app::App;
use crate::http::{Resp, full};
use crate::manage::{self, reports};
use crate::reports::output::{self, Metrics, Report};
use crate::reports::range::{PRESETS, names as names_of};
use crate::reports::{Params, TIME_DIMS};
use crate::store::rollup::BUCKET_MS;
use crate::store::rollup::DIMS;
use crate::util::clock::now_ms;

/// The metric columns of the table, in order: (metric, heading).
const COLUMNS: [(&str, &str); 12] = [
    ("clicks", "Clicks"),
    ("unique_clicks", "Unique"),
    ("bot_clicks", "Bots"),
    ("conversions", "Conv."),
    ("pending_conversions", "Pending"),
    ("revenue", "Revenue"),
    ("cost", "Cost"),
    ("profit", "Profit"),
    ("roi", "ROI"),
    ("cr", "CR"),
    ("epc", "EPC"),
    ("cpa", "CPA"),
];

/// Metrics the chart can draw.
const CHART_METRICS: [&str; 7] = [
    "clicks",
    "conversions",
    "revenue",
    "cost",
    "profit",
    "roi",
    "epc",
];

/// Rows shown on the page; the CSV has them all.
const PAGE_ROWS: usize = 200;

/// Where a report error is shown: the form field it concerns.
fn field_of(code: &str) -> &'static str {
    match code {
        "invalid_tz" => "tz",
        "invalid_range" => "range",
        "unknown_dimension" | "invalid_group_by" => "group_by",
        "invalid_sort" | "invalid_order" => "sort",
        "invalid_time_basis" => "time_basis",
        _ => "form",
    }
}

/// The page's state, read from its query string.
struct State {
    group_by: Vec<String>,
    range: String,
    from: String,
    to: String,
    tz: String,
    basis: String,
    sort: String,
    order: String,
    filters: Vec<(String, String)>,
    metric: String,
}

impl State {
    fn read(app: &App, q: &Form) -> State {
        let mut group_by: Vec<String> =
            ["g1", "g2", "g3"].iter().filter_map(|g| q.opt(g)).collect();
        if group_by.is_empty() {
            group_by = q
                .get("group_by")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
        if group_by.is_empty() {
            group_by.push("day".into());
        }
        group_by.dedup();
        let range = q.opt("range").unwrap_or_else(|| "7d".into());
        State {
            group_by,
            from: q.get("from").to_string(),
            to: q.get("to").to_string(),
            range,
            tz: q
                .opt("tz")
                .unwrap_or_else(|| app.config.report_timezone.clone()),
            basis: q.opt("time_basis").unwrap_or_else(|| "click".into()),
            sort: q.get("sort").to_string(),
            order: q.get("order").to_string(),
            filters: q
                .pairs()
                .iter()
                .filter(|(k, _)| k.starts_with("filter."))
                .cloned()
                .collect(),
            metric: q
                .opt("metric")
                .filter(|m| CHART_METRICS.contains(&m.as_str()))
                .unwrap_or_else(|| "clicks".into()),
        }
    }

    /// `from`/`to` for the report: the preset's days in the zone, or the
    /// custom dates as typed.
    fn dates(&self) -> (String, String) {
        if self.range != "custom"
            && let Ok(tz) = crate::reports::range::zone(&self.tz)
            && let Some((a, b)) = crate::reports::range::preset(&self.range, &tz, now_ms())
        {
            return (a.to_string(), b.to_string());
        }
        (self.from.clone(), self.to.clone())
    }

    /// The report request, as the API takes it.
    fn pairs(&self, group_by: &str, sort: bool) -> Vec<(String, String)> {
        let (from, to) = self.dates();
        let mut p = vec![
            ("group_by".to_string(), group_by.to_string()),
            ("from".into(), from),
            ("to".into(), to),
            ("tz".into(), self.tz.clone()),
            ("time_basis".into(), self.basis.clone()),
        ];
        if sort && !self.sort.is_empty() {
            p.push(("sort".into(), self.sort.clone()));
            if !self.order.is_empty() {
                p.push(("order".into(), self.order.clone()));
            }
        }
        p.extend(self.filters.iter().cloned());
        p
    }

    /// This page's URL with some parameters replaced.
    fn url(&self, path: &str, change: &[(&str, &str)]) -> String {
        let mut p: Vec<(String, String)> = vec![
            ("group_by".into(), self.group_by.join(",")),
            ("range".into(), self.range.clone()),
            ("tz".into(), self.tz.clone()),
            ("time_basis".into(), self.basis.clone()),
            ("metric".into(), self.metric.clone()),
        ];
        if self.range == "custom" {
            p.push(("from".into(), self.from.clone()));
            p.push(("to".into(), self.to.clone()));
        }
        if !self.sort.is_empty() {
            p.push(("sort".into(), self.sort.clone()));
            p.push(("order".into(), self.order.clone()));
        }
        p.extend(self.filters.iter().cloned());
        for (k, v) in change {
            p.retain(|(n, _)| n != k);
            if !v.is_empty() {
                p.push((k.to_string(), v.to_string()));
            }
        }
        let q: Vec<String> = p
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!("{path}?{}", q.join("&"))
    }

    /// The dimension a drill-down regroups by: the first useful one not
    /// already grouped or filtered.
    fn drill_dim(&self) -> &'static str {
        [
            "campaign", "source", "link", "country", "device", "sub1", "day", "hour",
        ]
        .into_iter()
        .find(|d| {
            !self.group_by.iter().any(|g| g == d)
                && !self
                    .filters
                    .iter()
                    .any(|(k, _)| k.strip_prefix("filter.") == Some(d))
        })
        .unwrap_or("day")
    }
}

/// A cell's text: counts with separators, money to the cent, ratios
/// as percentages (ROI, CR) or money per unit (EPC, CPA).
fn cell(m: &Metrics, metric: &str) -> String {
    let v = m.value(metric);
    let text = match &v {
        serde_json::Value::Null => return "—".into(),
        serde_json::Value::Number(n) => return n.as_u64().map_or_else(|| n.to_string(), num),
        serde_json::Value::String(s) => s.clone(),
        _ => return String::new(),
    };
    match metric {
        "roi" | "cr" => match text.parse::<rust_decimal::Decimal>() {
            Ok(d) => format!(
                "{}%",
                decimal(&(d * rust_decimal::Decimal::from(100)).to_string(), 1)
            ),
            Err(_) => text,
        },
        // Money: the currency is in the column heading.
        "epc" | "cpa" | "cpc" => decimal(&text, 3),
        _ => decimal(&text, 2),
    }
}

/// Columns holding money in the report currency.
fn is_money(metric: &str) -> bool {
    matches!(
        metric,
        "revenue"
            | "cost"
            | "profit"
            | "epc"
            | "cpa"
            | "cpc"
            | "pending_revenue"
            | "refunded_revenue"
    )
}

fn chart_value(m: &Metrics, metric: &str) -> f64 {
    match m.value(metric) {
        serde_json::Value::Number(n) => n.as_f64().unwrap_or(0.0),
        serde_json::Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// A dimension value as a person reads it (a source's name, not its ID).
fn dim_label(app: &App, dim: &str, v: &str) -> String {
    if v.is_empty() {
        return "(none)".into();
    }
    if dim == "source"
        && let Ok(id) = v.parse::<u64>()
        && let Some(s) = app.store.catalog().sources.get(&id)
    {
        return format!("{} ({id})", s.rec.name);
    }
    v.to_string()
}

pub async fn get(app: &App, viewer: &Viewer, q: &Form) -> Resp {
    let st = State::read(app, q);
    let gb = st.group_by.join(",");
    let result = reports::run(app, st.pairs(&gb, true)).await;
    // The chart: the same filters over time, by hour for short ranges.
    let (table, chart, status) = match result {
        Ok((params, report)) => {
            let by = if params.range.to_ms - params.range.from_ms <= 2 * 86_400_000 {
                "hour"
            } else {
                "day"
            };
            let chart = reports::run(app, st.pairs(by, false)).await.ok();
            (Ok((params, report)), chart, StatusCode::OK)
        }
        Err(e) => (Err(e), None, StatusCode::BAD_REQUEST),
    };
    let err = table.as_ref().err();
    let body = html! {
        h1 { "Reports" }
        (form(&st, err))
        @match &table {
            Ok((params, report)) => {
                (filters(&st))
                @if let Some(series) = &chart {
                    (chart_panel(app, &st, series))
                }
                (grid(app, &st, params, report))
            }
            Err(e) => {
                @if field_of(e.code) == "form" {
                    p.flash.bad role="alert" { (e.message) }
                }
            }
        }
    };
    let _ = viewer;
    respond(status, page(viewer, "/ui/reports", "Reports", body))
}

/// `GET /ui/reports.csv`: the whole table as the API's CSV.
pub async fn csv(app: &App, q: &Form) -> Resp {
    let st = State::read(app, q);
    match reports::run(app, st.pairs(&st.group_by.join(","), true)).await {
        Ok((params, report)) => {
            let mut r = Response::new(full(output::csv(&report, &params)));
            let h = r.headers_mut();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            let name = format!(
                "postbackd-{}-{}-{}.csv",
                st.group_by.join("-"),
                params.range.from,
                params.range.to
            );
            let name: String = name
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                .collect();
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
                h.insert(CONTENT_DISPOSITION, v);
            }
            super::layout::secure_headers(h);
            r
        }
        Err(e) => super::problem(
            StatusCode::BAD_REQUEST,
            "This report cannot be made",
            &e.message,
        ),
    }
}

fn field_error(err: Option<&manage::Error>, field: &str) -> Markup {
    super::layout::field_error(err, field, field_of)
}

fn dim_select(name: &str, label: &str, current: Option<&String>, optional: bool) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                @if optional { option value="" { "—" } }
                @for d in TIME_DIMS.iter().chain(DIMS.iter()) {
                    option value=(d) selected[current.is_some_and(|c| c == d)] { (d) }
                }
            }
        }
    }
}

fn form(st: &State, err: Option<&manage::Error>) -> Markup {
    // The dates a preset stands for, shown in the custom fields.
    let (from, to) = st.dates();
    let invalid = |f: &str| err.is_some_and(|e| field_of(e.code) == f);
    html! {
        form.panel method="get" action="/ui/reports" {
            div.presets role="group" aria-label="Date range" {
                @for (name, label) in PRESETS {
                    a href=(st.url("/ui/reports", &[("range", name)])) aria-current=[(st.range == name).then_some("true")] { (label) }
                }
            }
            div.row.mt {
                (dim_select("g1", "Group by", st.group_by.first(), false))
                (dim_select("g2", "then by", st.group_by.get(1), true))
                (dim_select("g3", "then by", st.group_by.get(2), true))
            }
            (field_error(err, "group_by"))
            div.row {
                div.field {
                    label for="range" { "Range" }
                    select id="range" name="range" aria-invalid=[invalid("range").then_some("true")] {
                        @for (name, label) in PRESETS {
                            option value=(name) selected[st.range == name] { (label) }
                        }
                        option value="custom" selected[st.range == "custom"] { "Custom dates" }
                    }
                }
                div.field {
                    label for="from" { "From" }
                    input type="date" id="from" name="from" value=(from);
                }
                div.field {
                    label for="to" { "To" }
                    input type="date" id="to" name="to" value=(to);
                }
                div.field {
                    label for="tz" { "Time zone" }
                    input type="text" id="tz" name="tz" value=(st.tz) list="zones" aria-invalid=[invalid("tz").then_some("true")] aria-describedby="tz-err";
                }
                div.field {
                    label for="time_basis" { "Count conversions at" }
                    select id="time_basis" name="time_basis" {
                        option value="click" selected[st.basis == "click"] { "the click's time" }
                        option value="conversion" selected[st.basis == "conversion"] { "the conversion's time" }
                    }
                }
                div.field {
                    label for="metric" { "Chart" }
                    select id="metric" name="metric" {
                        @for m in CHART_METRICS {
                            option value=(m) selected[st.metric == m] { (m) }
                        }
                    }
                }
                @for (k, v) in &st.filters {
                    input type="hidden" name=(k) value=(v);
                }
                @if !st.sort.is_empty() {
                    input type="hidden" name="sort" value=(st.sort);
                    input type="hidden" name="order" value=(st.order);
                }
                div.field { span.label { " " } button type="submit" { "Apply" } }
            }
            (field_error(err, "range"))
            (field_error(err, "tz"))
            (field_error(err, "sort"))
            (field_error(err, "time_basis"))
            p.hint.muted { "Custom dates apply when the range is “Custom dates”; both days are included." }
            datalist id="zones" {
                @for z in ["UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Chicago", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney"] {
                    option value=(z) {}
                }
            }
        }
    }
}

fn filters(st: &State) -> Markup {
    html! {
        @if !st.filters.is_empty() {
            div.row.mb {
                span.muted { "Filtered on:" }
                @for (k, v) in &st.filters {
                    @let dim = k.trim_start_matches("filter.");
                    span.badge {
                        (dim) " = " (if v.is_empty() { "(none)" } else { v })
                        " "
                        a href=(st.url("/ui/reports", &[(k.as_str(), "")])) aria-label=(format!("Remove the filter on {dim}")) { "×" }
                    }
                }
            }
        }
    }
}

/// A time report as chart points: every hour or day of the range in
/// order, the empty ones at zero (a quiet day is a dip, not a gap), with
/// short labels (`13:00`, `12-01`).
pub fn time_series(p: &Params, r: &Report, value: impl Fn(&Metrics) -> f64) -> Vec<(String, f64)> {
    let by = p.group_by.first().map_or("day", |d| d.name());
    let mut names: Vec<String> = Vec::new();
    let mut ms = p.range.from_ms;
    while ms < p.range.to_ms && names.len() < 2000 {
        let n = names_of(ms, &p.tz);
        let name = if by == "hour" { n.hour } else { n.day };
        if names.last() != Some(&name) {
            names.push(name);
        }
        ms += BUCKET_MS;
    }
    names
        .into_iter()
        .map(|name| {
            let v = r
                .rows
                .iter()
                .find(|(k, _)| k.first() == Some(&name))
                .map_or(0.0, |(_, m)| value(m));
            let short = if by == "hour" {
                name.get(11..16).unwrap_or(&name).to_string()
            } else {
                name.get(5..).unwrap_or(&name).to_string()
            };
            (short, v)
        })
        .collect()
}

fn chart_panel(_app: &App, st: &State, series: &(Params, Report)) -> Markup {
    let (p, r) = series;
    let by = p.group_by.first().map_or("day", |d| d.name());
    let points = time_series(p, r, |m| chart_value(m, &st.metric));
    html! {
        div.panel {
            h2 { (st.metric) " by " (by) }
            (chart::line(&format!("{} by {by}", st.metric), &points))
        }
    }
}

fn grid(app: &App, st: &State, params: &Params, r: &Report) -> Markup {
    let currency = &app.config.report_currency;
    let dims: Vec<&str> = params.group_by.iter().map(|d| d.name()).collect();
    let sort_link = |col: &str| {
        let order = if st.sort == col && st.order != "asc" {
            "asc"
        } else {
            "desc"
        };
        st.url("/ui/reports", &[("sort", col), ("order", order)])
    };
    let aria_sort = |col: &str| {
        (st.sort == col).then_some(if st.order == "asc" {
            "ascending"
        } else {
            "descending"
        })
    };
    let drill = st.drill_dim();
    html! {
        div.row.between {
            span.muted {
                (params.range.from) " to " (params.range.to) " · " (params.tz_name) " · money in " (currency)
                @if r.total_rows > PAGE_ROWS { " · showing " (num(PAGE_ROWS as u64)) " of " (num(r.total_rows as u64)) " rows" }
            }
            a.btn.secondary href=(st.url("/ui/reports.csv", &[])) download { "Download CSV" }
        }
        @if r.rows.is_empty() {
            div.tablewrap { (super::layout::empty("No clicks or conversions in this range", html! {
                "Pick a longer range, remove a filter, or send traffic through a tracking link (Links page)."
            })) }
        } @else {
            div.tablewrap {
                table #report {
                    thead { tr {
                        @for d in &dims {
                            th scope="col" aria-sort=[aria_sort(d)] { a href=(sort_link(d)) { (d) } }
                        }
                        @for (m, label) in COLUMNS {
                            th.n scope="col" aria-sort=[aria_sort(m)] { a href=(sort_link(m)) { (label) @if is_money(m) { " " span.muted { (currency) } } } }
                        }
                    } }
                    tbody {
                        @for (key, m) in r.rows.iter().take(PAGE_ROWS) {
                            @let change: Vec<(String, String)> = dims.iter().zip(key).map(|(d, v)| (format!("filter.{d}"), v.clone())).chain(std::iter::once(("group_by".to_string(), drill.to_string()))).collect();
                            @let change_ref: Vec<(&str, &str)> = change.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                            tr {
                                @for (i, (d, v)) in dims.iter().zip(key).enumerate() {
                                    td {
                                        @if i == 0 {
                                            a href=(st.url("/ui/reports", &change_ref)) title=(format!("Drill down by {drill}")) { (dim_label(app, d, v)) }
                                        } @else {
                                            (dim_label(app, d, v))
                                        }
                                    }
                                }
                                @for (col, _) in COLUMNS {
                                    td.n { (cell(m, col)) }
                                }
                            }
                        }
                    }
                    tfoot { tr {
                        td colspan=(dims.len()) { "Total" }
                        @for (col, _) in COLUMNS {
                            td.n { (cell(&r.totals, col)) }
                        }
                    } }
                }
            }
            @if !r.totals.unconverted.is_empty() {
                p { (badge(Tone::Warn, "unconverted")) " Some amounts are in a currency without a rate and are not in the money columns: "
                    @for (c, v) in &r.totals.unconverted { (decimal(&v[0].to_string(), 2)) " " (c) " " }
                    "Set a rate with PUT /api/v1/rates." }
            }
        }
    }
}
