//! The Alerts page: rules that watch the postbacks and deliveries and
//! notify Slack, Telegram or a signed webhook through the outbox; their
//! state (ok / firing) and history; create and delete. Viewers see the
//! alerts but not where they notify (a Slack URL or a bot token is a
//! credential). The same `manage::alerts` operations as `/api/v1/alerts`.

use hyper::StatusCode;
use maud::{Markup, html};
use serde_json::Value;

use super::form::Form;
use super::layout::{Tone, badge, empty, page, respond, see_other};
use super::session::Viewer;
use crate::app::App;
use crate::http::Resp;
use crate::manage::{self, alerts};

fn field_of(code: &str) -> &'static str {
    match code {
        "unknown_rule" | "invalid_rule" => "rule",
        "invalid_threshold" => "threshold",
        "invalid_window" => "window_minutes",
        "unknown_source" | "invalid_source" => "source",
        _ => "notify",
    }
}

fn err_for(err: Option<&manage::Error>, field: &str) -> Markup {
    super::layout::field_error(err, field, field_of)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        o => o.to_string(),
    }
}

pub async fn list(app: &App, viewer: &Viewer, f: &Form, err: Option<&manage::Error>) -> Resp {
    let all = match alerts::list_alerts(app).await {
        Ok(a) => a,
        Err(e) => {
            return super::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Alerts cannot be listed",
                &e.message,
            );
        }
    };
    let cat = app.store.catalog();
    let invalid = |name: &str| {
        err.is_some_and(|e| field_of(e.code) == name)
            .then_some("true")
    };
    let body = html! {
        h1 { "Alerts" }
        p.lead { "Be told when a source's postbacks stop, fail or stop matching, or deliveries pile up: once when it starts, once when it clears." }
        div.tablewrap {
            @if all.is_empty() {
                (empty("No alerts yet", html! { @if viewer.is_admin() { "Add one below: a match rate below 80% over an hour is a good first alert." } @else { "An admin sets up alerts." } }))
            } @else {
                table {
                    thead { tr { th { "Rule" } th { "Source" } th.n { "Threshold" } th.n { "Window" } th { "State" } th { "Last value" } th { "Notifies" } @if viewer.is_admin() { th {} } } }
                    tbody { @for a in &all {
                        tr {
                            td { (a.rule) }
                            td { (a.source.and_then(|id| cat.sources.get(&id)).map_or("all".to_string(), |s| s.rec.name.clone())) }
                            td.n { (a.threshold.as_deref().unwrap_or("—")) }
                            td.n { (a.window_minutes.map_or("—".to_string(), |w| format!("{w} min"))) }
                            td { (badge(if a.state == "firing" { Tone::Bad } else { Tone::Ok }, &a.state)) " " span.muted { "since " (a.since.get(..16).unwrap_or(&a.since).replace('T', " ")) } }
                            td { (a.last_value.as_deref().unwrap_or("—")) }
                            td.mono.wrap { @if viewer.is_admin() { (text(&a.notify["type"])) " " (text(&a.notify["url"])) (text(&a.notify["chat_id"])) } @else { (text(&a.notify["type"])) } }
                            @if viewer.is_admin() {
                                td { form method="post" action=(format!("/ui/alerts/{}/delete", a.id)) data-confirm="Delete this alert?" {
                                    input type="hidden" name="csrf" value=(viewer.csrf);
                                    button.secondary type="submit" { "Delete" }
                                } }
                            }
                        }
                        @if !a.history.is_empty() {
                            tr { td colspan="8" { details { summary { "History (" (a.history.len()) ")" }
                                ul { @for h in a.history.iter().rev().take(20) { li { (text(&h["at"])) " " (text(&h["event"])) " — " (text(&h["message"])) } } }
                            } } }
                        }
                    } }
                }
            }
        }
        @if viewer.is_admin() {
            form.panel.stack method="post" action="/ui/alerts" {
                h2 { "New alert" }
                input type="hidden" name="csrf" value=(viewer.csrf);
                div.row {
                    div.field {
                        label for="rule" { "Rule" }
                        select id="rule" name="rule" aria-invalid=[invalid("rule")] {
                            @for r in alerts::RULES {
                                option value=(r.name) selected[f.get("rule") == r.name] { (r.name) " (" (r.unit) ")" }
                            }
                        }
                        (err_for(err, "rule"))
                    }
                    div.field {
                        label for="source" { "Source" }
                        select id="source" name="source" aria-invalid=[invalid("source")] {
                            option value="" { "All / not per source" }
                            @for s in cat.sources.values() { option value=(s.id) selected[f.get("source") == s.id.to_string()] { (s.rec.name) } }
                        }
                        (err_for(err, "source"))
                    }
                    div.field {
                        label for="threshold" { "Threshold" }
                        input type="text" id="threshold" name="threshold" value=(f.get("threshold")) placeholder="80" aria-invalid=[invalid("threshold")] aria-describedby="threshold-err";
                        (err_for(err, "threshold"))
                    }
                    div.field {
                        label for="window_minutes" { "Window (minutes)" }
                        input type="number" id="window_minutes" name="window_minutes" value=(f.get("window_minutes")) placeholder="60" min="5" aria-invalid=[invalid("window_minutes")];
                        (err_for(err, "window_minutes"))
                    }
                }
                fieldset.field {
                    legend.label { "Notify" }
                    div.row {
                        div.field {
                            label for="notify_type" { "Through" }
                            select id="notify_type" name="notify_type" {
                                @for (v, l) in [("slack", "Slack incoming webhook"), ("telegram", "Telegram bot"), ("webhook", "Signed webhook")] {
                                    option value=(v) selected[f.get("notify_type") == v] { (l) }
                                }
                            }
                        }
                        div.field {
                            label for="notify_url" { "URL (Slack, webhook)" }
                            input type="url" id="notify_url" name="notify_url" value=(f.get("notify_url")) placeholder="https://hooks.slack.com/services/…";
                        }
                        div.field {
                            label for="bot_token" { "Bot token (Telegram)" }
                            input type="password" id="bot_token" name="bot_token" autocomplete="off";
                        }
                        div.field {
                            label for="chat_id" { "Chat ID (Telegram)" }
                            input type="text" id="chat_id" name="chat_id" value=(f.get("chat_id"));
                        }
                        div.field {
                            label for="secret" { "Secret (webhook, whsec_…)" }
                            input type="password" id="secret" name="secret" autocomplete="off";
                        }
                    }
                    (err_for(err, "notify"))
                }
                div { button type="submit" { "Create alert" } }
            }
        }
    };
    let status = if err.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    respond(status, page(viewer, "/ui/alerts", "Alerts", body))
}

pub async fn create(app: &App, viewer: &Viewer, f: &Form) -> Resp {
    let req = alerts::AlertRequest {
        rule: f.opt("rule"),
        source: f.opt("source").and_then(|s| s.parse().ok()),
        threshold: f.opt("threshold").map(Value::String),
        window_minutes: f.opt("window_minutes").and_then(|w| w.parse().ok()),
        notify: Some(alerts::NotifyIn {
            kind: f.opt("notify_type"),
            url: f.opt("notify_url"),
            bot_token: f.opt("bot_token"),
            chat_id: f.opt("chat_id").map(Value::String),
            secret: f.opt("secret"),
            ..Default::default()
        }),
        ..Default::default()
    };
    match alerts::create_alert(app, req).await {
        Ok(_) => see_other("/ui/alerts"),
        Err(e) => list(app, viewer, f, Some(&e)).await,
    }
}

pub async fn delete(app: &App, viewer: &Viewer, id: &str) -> Resp {
    match id.parse::<u64>().map_err(|_| ()) {
        Ok(id) => match alerts::delete_alert(app, id).await {
            Ok(()) => see_other("/ui/alerts"),
            Err(e) => list(app, viewer, &Form::default(), Some(&e)).await,
        },
        Err(()) => super::problem(
            StatusCode::NOT_FOUND,
            "No such alert",
            "This alert does not exist.",
        ),
    }
}
