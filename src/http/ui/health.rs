//! Postback health on the dashboard: a source's match rate, last
//! postback, refusals and the findings drawn from its refused requests;
//! the doctor for a pasted URL; bulk replay of refused postbacks after a
//! mapping fix, with the job's progress. The same `manage::health` and
//! `manage::replay` operations as the API.

use hyper::StatusCode;
use maud::{Markup, PreEscaped, html};

use super::form::{Form, encode};
use super::layout::{Tone, badge, num, page, respond, see_other};
use super::session::Viewer;
use crate::app::App;
use crate::http::Resp;
use crate::manage::health::{self, DoctorReport};
use crate::manage::{self, replay};
use crate::util::clock::now_ms;

fn rate_tone(rate: Option<f64>) -> Tone {
    match rate {
        Some(r) if r >= 90.0 => Tone::Ok,
        Some(r) if r >= 60.0 => Tone::Warn,
        Some(_) => Tone::Bad,
        None => Tone::Plain,
    }
}

/// The health panel of a source page.
pub async fn panel(app: &App, viewer: &Viewer, source_id: u64) -> Markup {
    let h = match health::source_health(app, source_id).await {
        Ok(h) => h,
        Err(e) => return html! { p.flash.bad { (e.message) } },
    };
    html! {
        div.panel {
            h2 { "Health" }
            p.muted { "Last postback: " (h.last_postback_at.as_deref().map_or("never".to_string(), |t| t.get(..19).unwrap_or(t).replace('T', " ") + " UTC")) }
            div.cards {
                @for w in &h.windows {
                    div.card {
                        div.k { "Match rate, " (w.window) }
                        div.v { (badge(rate_tone(w.match_rate), &w.match_rate.map_or("—".to_string(), |r| format!("{r:.1}%")))) }
                        div.muted { (num(w.postbacks)) " postbacks, " (num(w.refused)) " refused" }
                    }
                }
            }
            @if !h.refusals_24h.is_empty() {
                h2 { "Refused in the last 24 h" }
                div.tablewrap { table {
                    thead { tr { th { "Reason" } th.n { "Requests" } } }
                    tbody { @for (code, n) in &h.refusals_24h {
                        tr { td { a href=(format!("/ui/postbacks?source={source_id}&result={}", encode(code))) { (badge(Tone::Bad, code)) } } td.n { (num(*n)) } }
                    } }
                } }
            }
            @for f in &h.findings {
                div.flash.warn role="status" {
                    strong { (f.message) } " " (f.fix)
                }
            }
            @if viewer.is_admin() && !h.refusals_24h.is_empty() {
                form method="post" action=(format!("/ui/sources/{source_id}/replay")) data-confirm="Replay this source's refused postbacks of the last 7 days with the current mapping? A conversion is never counted twice." {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    div.row {
                        div.field {
                            label for="r-result" { "Replay postbacks refused with" }
                            select id="r-result" name="result" {
                                @for code in h.refusals_24h.keys() { option value=(code) { (code) } }
                            }
                        }
                        div.field { span.label { (PreEscaped("&nbsp;")) } button type="submit" { "Replay them (last 7 days)" } }
                    }
                    p.muted { "Fix the mapping first; each replayed request that now matches creates its conversion once." }
                }
            }
        }
    }
}

/// The doctor form and, after a check, its findings.
pub fn doctor_form(
    viewer: &Viewer,
    source_id: u64,
    url: &str,
    report: Option<&Result<DoctorReport, manage::Error>>,
) -> Markup {
    html! {
        form.panel.stack method="post" action=(format!("/ui/sources/{source_id}/doctor")) {
            h2 { "Check a postback URL" }
            p.muted { "Paste the URL as you entered it in the network (or as the network shows it): the doctor finds cut-off URLs, macros in the wrong syntax, a click ID the mapping does not read, and more." }
            input type="hidden" name="csrf" value=(viewer.csrf);
            div.field {
                label for="doctor-url" { "Postback URL" }
                textarea id="doctor-url" name="url" rows="3" aria-describedby="doctor-result" { (url) }
            }
            div { button.secondary type="submit" { "Check" } }
            div #doctor-result role="status" {
                @match report {
                    None => {}
                    Some(Err(e)) => { span.err { (e.message) } }
                    Some(Ok(r)) if r.ok => { p { (badge(Tone::Ok, "no problems")) " This URL is ready to paste." } }
                    Some(Ok(r)) => {
                        ul { @for f in &r.findings {
                            li { (badge(Tone::Warn, f.code)) " " @if let Some(p) = &f.param { code { (p) } " " } (f.message) ". " strong { (f.fix) } }
                        } }
                    }
                }
            }
        }
    }
}

/// `POST /ui/sources/{id}/doctor`: the doctor on the pasted URL.
pub fn doctor(
    app: &App,
    source_id: u64,
    f: &Form,
) -> (String, Result<DoctorReport, manage::Error>) {
    let url = f.get("url").trim().to_string();
    let r = health::diagnose(
        app,
        &health::DoctorRequest {
            url: Some(url.clone()),
            source: Some(source_id),
        },
    );
    (url, r)
}

/// `POST /ui/sources/{id}/replay`: start a bulk replay of the last 7 days.
pub async fn start(app: &App, source_id: u64, f: &Form) -> Resp {
    let since = (now_ms() - 7 * 86_400_000) / 1000;
    let req = replay::ReplayRequest {
        source: Some(source_id),
        result: f.opt("result"),
        since: Some(serde_json::Value::from(since)),
        until: None,
    };
    match replay::start_replay(app, req).await {
        Ok(job) => see_other(&format!("/ui/replays/{}", job.id)),
        Err(e) => super::problem(
            StatusCode::BAD_REQUEST,
            "The replay cannot start",
            &e.message,
        ),
    }
}

/// `GET /ui/replays/{id}`: a job's progress (the page reloads itself
/// every two seconds while the job runs: a meta refresh, no script).
pub async fn job(app: &App, viewer: &Viewer, id: &str) -> Resp {
    let Ok(id) = id.parse::<u64>() else {
        return super::problem(
            StatusCode::NOT_FOUND,
            "No such replay",
            "This replay job does not exist.",
        );
    };
    let j = match replay::get_replay(app, id).await {
        Ok(j) => j,
        Err(e) => return super::problem(StatusCode::NOT_FOUND, "No such replay", &e.message),
    };
    let running = j.state == "running";
    let body = html! {
        @if running { meta http-equiv="refresh" content="2"; }
        h1 { "Bulk replay " (badge(match j.state.as_str() { "done" => Tone::Ok, "running" => Tone::Warn, _ => Tone::Bad }, &j.state)) }
        div.cards {
            div.card { div.k { "Examined" } div.v { (num(j.scanned)) } }
            div.card { div.k { "Replayed" } div.v { (num(j.replayed)) } }
            div.card { div.k { "New conversions" } div.v { (num(j.created)) } }
            div.card { div.k { "Matched a click" } div.v { (num(j.matched)) } }
            div.card { div.k { "Already counted" } div.v { (num(j.unchanged)) } }
        }
        @if !j.still_refused.is_empty() {
            div.panel {
                h2 { "Still refused" }
                p.muted { "The mapping still does not fit these; check the source's mapping and the doctor." }
                ul { @for (code, n) in &j.still_refused { li { (badge(Tone::Bad, code)) " " (num(*n)) } } }
            }
        }
        @if let Some(e) = &j.error { p.flash.bad { (e) } }
        p { a href=(format!("/ui/sources/{}", j.source)) { "Back to the source" } }
    };
    respond(
        StatusCode::OK,
        page(viewer, "/ui/sources", "Bulk replay", body),
    )
}
