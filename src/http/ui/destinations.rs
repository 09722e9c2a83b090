//! The Destinations page: where conversions are forwarded (Meta, Google
//! Ads, GA4, TikTok, a signed webhook, a postback URL). Each type's form is
//! built from the platform's own field list (`forward::platforms`), so a
//! new platform gets its form without a change here. Delivery counts, the
//! dead letters with the platform's answer, and a retry button. Secrets
//! are masked for admins and hidden from viewers. The same
//! `manage::destinations` operations as `/api/v1/destinations`.

use hyper::StatusCode;
use maud::{Markup, html};
use serde_json::{Map, Value};

use super::form::{Form, encode};
use super::layout::{Tone, badge, empty, num, page, respond, see_other};
use super::session::Viewer;
use crate::app::App;
use crate::forward::platforms::{self, Kind};
use crate::http::Resp;
use crate::manage::query::Query;
use crate::manage::{self, destinations};
use crate::store::catalog::DestinationEntry;
use crate::util::clock::rfc3339;

fn kind_label(kind: &str) -> String {
    Kind::parse(kind).map_or_else(|| kind.to_string(), |k| k.label().to_string())
}

pub fn state_tone(state: &str) -> Tone {
    match state {
        "delivered" => Tone::Ok,
        "pending" => Tone::Warn,
        _ => Tone::Bad,
    }
}

fn field_of(code: &str) -> &'static str {
    match code {
        "invalid_name" => "name",
        "invalid_base_url" => "base_url",
        "invalid_type" | "unknown_type" => "type",
        _ => "config",
    }
}

fn err_for(err: Option<&manage::Error>, field: &str) -> Markup {
    super::layout::field_error(err, field, field_of)
}

/// A config value as this viewer may see it.
fn shown(viewer: &Viewer, kind: Option<Kind>, field: &str, v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let secret = kind.is_some_and(|k| platforms::secret_fields(k).contains(&field));
    match (secret, viewer.is_admin()) {
        (false, _) => text,
        (true, true) => destinations::mask(&text),
        (true, false) => "hidden".into(),
    }
}

pub async fn list(app: &App, viewer: &Viewer) -> Resp {
    let all = destinations::list(app);
    let body = html! {
        h1 { "Destinations" }
        p.lead { "Where conversions are forwarded, through a durable queue that retries until the platform accepts them." }
        div.tablewrap {
            @if all.is_empty() {
                (empty("No destinations yet", html! { "Conversions are counted but not forwarded. Add one below." }))
            } @else {
                table {
                    thead { tr { th { "Name" } th { "Type" } th.n { "Delivered" } th.n { "Retried" } th.n { "Dead" } } }
                    tbody {
                        @for d in &all {
                            @let c = destinations::counters(app, d.id);
                            tr {
                                td { a href=(format!("/ui/destinations/{}", d.id)) { (d.rec.name) } }
                                td { (kind_label(&d.rec.kind)) }
                                td.n { (num(c.0)) } td.n { (num(c.1)) }
                                td.n { @if c.2 > 0 { (badge(Tone::Bad, &num(c.2))) } @else { "0" } }
                            }
                        }
                    }
                }
            }
        }
        p.muted { "Delivery counts are since the server started." }
        @if viewer.is_admin() {
            div.panel {
                h2 { "Add a destination" }
                div.presets {
                    @for k in Kind::ALL { a href=(format!("/ui/destinations/new?type={}", k.as_str())) { (k.label()) } }
                }
            }
        }
    };
    respond(
        StatusCode::OK,
        page(viewer, "/ui/destinations", "Destinations", body),
    )
}

/// `GET /ui/destinations/new?type=meta`: that platform's form.
pub fn new_form(viewer: &Viewer, f: &Form, err: Option<&manage::Error>) -> Resp {
    let Some(kind) = Kind::parse(f.get("type")) else {
        return super::problem(
            StatusCode::BAD_REQUEST,
            "Unknown destination type",
            "Pick a type on the Destinations page.",
        );
    };
    let (required, optional) = platforms::config_fields(kind);
    let invalid = |name: &str| {
        err.is_some_and(|e| field_of(e.code) == name)
            .then_some("true")
    };
    let body = html! {
        h1 { "New " (kind.label()) " destination" }
        form.panel.stack method="post" action="/ui/destinations" {
            input type="hidden" name="csrf" value=(viewer.csrf);
            input type="hidden" name="type" value=(kind.as_str());
            div.field {
                label for="name" { "Name" }
                input type="text" id="name" name="name" value=(f.get("name")) required aria-invalid=[invalid("name")] aria-describedby="name-err";
                (err_for(err, "name"))
            }
            @for (field, hint) in required {
                div.field {
                    label for=(format!("c-{field}")) { (field) }
                    input type=(if platforms::secret_fields(kind).contains(field) { "password" } else { "text" }) id=(format!("c-{field}")) name=(format!("config.{field}")) value=(f.get(&format!("config.{field}"))) required autocomplete="off";
                    span.hint { (hint) }
                }
            }
            @for (field, hint) in optional {
                div.field {
                    label for=(format!("c-{field}")) { (field) " (optional)" }
                    input type="text" id=(format!("c-{field}")) name=(format!("config.{field}")) value=(f.get(&format!("config.{field}"))) autocomplete="off";
                    span.hint { (hint) }
                }
            }
            (err_for(err, "config"))
            div.field {
                label for="base_url" { "Base URL (optional)" }
                input type="url" id="base_url" name="base_url" value=(f.get("base_url")) placeholder="https://proxy.example:8443" aria-invalid=[invalid("base_url")];
                span.hint { "Replaces only the platform's origin, for a proxy." }
                (err_for(err, "base_url"))
            }
            fieldset.field {
                legend.label { "Forward conversions that are" }
                div.row {
                    @for st in ["approved", "pending", "rejected", "refunded", "chargeback"] {
                        label { input type="checkbox" name="status" value=(st) checked[f.all("status").contains(&st) || (f.all("status").is_empty() && st == "approved")]; " " (st) }
                    }
                }
            }
            div { button type="submit" { "Create destination" } }
        }
    };
    let status = if err.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    respond(
        status,
        page(viewer, "/ui/destinations", "New destination", body),
    )
}

pub async fn create(app: &App, viewer: &Viewer, f: &Form) -> Resp {
    let mut config = Map::new();
    for (k, v) in f.pairs() {
        if let Some(field) = k.strip_prefix("config.")
            && !v.trim().is_empty()
        {
            config.insert(field.to_string(), Value::String(v.trim().to_string()));
        }
    }
    let statuses: Vec<String> = f.all("status").iter().map(|s| s.to_string()).collect();
    let input = destinations::DestinationIn {
        name: Some(f.get("name").to_string()),
        kind: Some(f.get("type").to_string()),
        config: Some(Value::Object(config)),
        base_url: f.opt("base_url").map(Some),
        filter: Some(destinations::FilterIn {
            statuses: (!statuses.is_empty()).then_some(statuses),
            ..Default::default()
        }),
    };
    match destinations::create(app, input).await {
        Ok(d) => see_other(&format!("/ui/destinations/{}", d.id)),
        Err(e) => new_form(viewer, f, Some(&e)),
    }
}

fn entry(app: &App, id: &str) -> Option<std::sync::Arc<DestinationEntry>> {
    destinations::get(app, id.parse().ok()?).ok()
}

pub async fn detail(app: &App, viewer: &Viewer, id: &str, q: &Form) -> Resp {
    let Some(d) = entry(app, id) else {
        return super::problem(
            StatusCode::NOT_FOUND,
            "No such destination",
            "This destination does not exist (it may have been deleted).",
        );
    };
    let state = q.opt("state").unwrap_or_else(|| "dead".into());
    let list = destinations::deliveries(
        app,
        &Query::parse(&format!(
            "destination={}&state={}&limit=50",
            d.id,
            encode(&state)
        )),
    )
    .await;
    let kind = Kind::parse(&d.rec.kind);
    let c = destinations::counters(app, d.id);
    let body = html! {
        h1 { (d.rec.name) " " span.muted { (kind_label(&d.rec.kind)) } }
        div.cards {
            div.card { div.k { "Delivered" } div.v { (num(c.0)) } }
            div.card { div.k { "Retried" } div.v { (num(c.1)) } }
            div.card { div.k { "Dead" } div.v { (num(c.2)) } }
        }
        div.panel {
            h2 { "Settings" }
            dl.kv {
                @if let Value::Object(m) = &d.config {
                    @for (k, v) in m { dt { (k) } dd.mono { (shown(viewer, kind, k, v)) } }
                }
                @if let Some(b) = &d.rec.base_url { dt { "base_url" } dd.mono { (b) } }
                dt { "statuses" } dd { (if d.rec.filter_statuses.is_empty() { "approved".to_string() } else { d.rec.filter_statuses.join(", ") }) }
            }
        }
        div.row.between {
            h2 { "Deliveries" }
            div.presets {
                @for s in ["dead", "pending", "delivered"] {
                    a href=(format!("/ui/destinations/{}?state={s}", d.id)) aria-current=[(state == s).then_some("true")] { (s) }
                }
            }
        }
        div.tablewrap {
            @match &list {
                Err(e) => { p.flash.bad { (e.message) } }
                Ok((rows, _)) if rows.is_empty() => { (empty(&format!("No {state} deliveries"), html! { @if state == "dead" { "Nothing has failed for good." } @else { "" } })) }
                Ok((rows, _)) => {
                    table {
                        thead { tr { th { "Created (UTC)" } th { "Conversion" } th { "State" } th.n { "Attempts" } th.n { "HTTP" } th { "Platform's answer" } @if viewer.is_admin() { th { "" } } } }
                        tbody { @for (did, r) in rows {
                            tr {
                                td.mono { (rfc3339(r.created_ms).get(..19).unwrap_or("").replace('T', " ")) }
                                td.mono { a href=(format!("/ui/conversions/{}", encode(&r.conversion_id))) { (r.conversion_id) } }
                                td { (badge(state_tone(&r.state), &r.state)) }
                                td.n { (r.attempts) }
                                td.n { (r.last_status.map_or("—".to_string(), |s| s.to_string())) }
                                td.wrap { (r.last_error.as_deref().unwrap_or("")) }
                                @if viewer.is_admin() {
                                    td { form method="post" action=(format!("/ui/deliveries/{}/retry", encode(did))) {
                                        input type="hidden" name="csrf" value=(viewer.csrf);
                                        input type="hidden" name="back" value=(d.id);
                                        button.secondary type="submit" { (if r.state == "delivered" { "Send again" } else { "Retry now" }) }
                                    } }
                                }
                            }
                        } }
                    }
                }
            }
        }
        @if viewer.is_admin() {
            form method="post" action=(format!("/ui/destinations/{}/delete", d.id)) data-confirm="Delete this destination? Its pending deliveries are dropped." {
                input type="hidden" name="csrf" value=(viewer.csrf);
                button.danger type="submit" { "Delete destination" }
            }
        }
    };
    respond(
        StatusCode::OK,
        page(viewer, "/ui/destinations", &d.rec.name, body),
    )
}

pub async fn retry(app: &App, id: &str, f: &Form) -> Resp {
    match destinations::retry(app, id).await {
        Ok(_) => see_other(&format!(
            "/ui/destinations/{}?state=pending",
            f.get("back").parse::<u64>().unwrap_or(0)
        )),
        Err(e) => super::problem(
            StatusCode::BAD_REQUEST,
            "This delivery cannot be retried",
            &e.message,
        ),
    }
}

pub async fn delete(app: &App, id: &str) -> Resp {
    let Ok(id) = id.parse::<u64>() else {
        return super::problem(
            StatusCode::NOT_FOUND,
            "No such destination",
            "This destination does not exist.",
        );
    };
    match destinations::delete(app, id).await {
        Ok(()) => see_other("/ui/destinations"),
        Err(e) => super::problem(
            StatusCode::BAD_REQUEST,
            "This destination cannot be deleted",
            &e.message,
        ),
    }
}
