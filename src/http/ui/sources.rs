//! The Sources page: sources created from a network preset, the postback
//! URL to paste into the network (with a copy button), the IPN URL when
//! the source has a receiver, the parameter mapping (editable, the fix for
//! refused postbacks), signing secrets shown once when generated. Viewers
//! see no key: the postback URL carries it, so theirs is masked. The same
//! `manage::sources` operations as `/api/v1/sources`.

use std::collections::BTreeMap;

use hyper::StatusCode;
use maud::{Markup, html};

use super::form::{Form, encode};
use super::layout::{Tone, badge, copy_field, empty, page, respond, see_other};
use super::session::Viewer;
use super::{health, postbacks};
use crate::app::App;
use crate::http::Resp;
use crate::inbound::presets::{self, CANONICAL_FIELDS};
use crate::manage::health::DoctorReport;
use crate::manage::testfire::{self, TestFire};
use crate::manage::{self, links, sources};
use crate::store::catalog::SourceEntry;
use crate::views;

/// The form field a source error concerns.
fn field_of(code: &str) -> &'static str {
    match code {
        "invalid_name" => "name",
        "unknown_preset" | "invalid_preset" => "preset",
        "invalid_currency" => "default_currency",
        "invalid_params" | "invalid_mapping" => "params",
        _ => "form",
    }
}

/// The postback URL as this viewer may see it: with the key for admins,
/// masked for viewers.
fn postback_url(app: &App, viewer: &Viewer, s: &SourceEntry) -> String {
    let url = views::postback_url(&app.config.public_url, s);
    if viewer.is_admin() {
        url
    } else {
        url.replace(&s.rec.key, "••••••••")
    }
}

fn err_for(err: Option<&manage::Error>, field: &str) -> Markup {
    super::layout::field_error(err, field, field_of)
}

fn create_form(viewer: &Viewer, f: &Form, err: Option<&manage::Error>) -> Markup {
    let invalid = |name: &str| {
        err.is_some_and(|e| field_of(e.code) == name)
            .then_some("true")
    };
    html! {
        form.panel.stack method="post" action="/ui/sources" {
            h2 { "New source" }
            input type="hidden" name="csrf" value=(viewer.csrf);
            div.field {
                label for="name" { "Name" }
                input type="text" id="name" name="name" value=(f.get("name")) required aria-invalid=[invalid("name")] aria-describedby="name-err";
                (err_for(err, "name"))
            }
            div.field {
                label for="preset" { "Network" }
                select id="preset" name="preset" aria-invalid=[invalid("preset")] {
                    option value="" { "Other (generic parameters)" }
                    @for p in presets::all() {
                        option value=(p.id) selected[f.get("preset") == p.id] { (p.name) }
                    }
                }
                span.hint { "The preset knows the network's macros and parameter names, so the postback URL is ready to paste." }
                (err_for(err, "preset"))
            }
            div.field {
                label for="default_currency" { "Currency when the network sends none" }
                input type="text" id="default_currency" name="default_currency" value=(f.opt("default_currency").unwrap_or_else(|| "USD".into())) maxlength="3" aria-invalid=[invalid("default_currency")];
                (err_for(err, "default_currency"))
            }
            div.field {
                label { input type="checkbox" name="signing" value="1" checked[f.get("signing") == "1"]; " Require signed postbacks (a secret is generated and shown once)" }
            }
            @if let Some(e) = err.filter(|e| field_of(e.code) == "form") { p.flash.bad role="alert" { (e.message) } }
            div { button type="submit" { "Create source" } }
        }
    }
}

pub async fn list(app: &App, viewer: &Viewer, f: &Form, err: Option<&manage::Error>) -> Resp {
    let all = sources::list(app);
    let body = html! {
        h1 { "Sources" }
        p.lead { "A source is a network or advertiser that sends postbacks. Each has its own unguessable postback URL." }
        div.tablewrap {
            @if all.is_empty() {
                (empty("No sources yet", html! { @if viewer.is_admin() { "Create one below from your network's preset, then paste its postback URL into the network." } @else { "An admin creates sources." } }))
            } @else {
                table {
                    thead { tr { th { "Name" } th { "Network" } th { "Postback URL" } th { "Signed" } } }
                    tbody {
                        @for s in &all {
                            tr {
                                td { a href=(format!("/ui/sources/{}", s.id)) { (s.rec.name) } }
                                td { (s.rec.preset.as_deref().and_then(presets::find).map_or("Other", |p| p.name)) }
                                td.mono.wrap { (postback_url(app, viewer, s)) }
                                td { @if s.rec.signing_secrets.is_empty() { "no" } @else { (badge(Tone::Ok, "required")) } }
                            }
                        }
                    }
                }
            }
        }
        @if viewer.is_admin() { (create_form(viewer, f, err)) }
    };
    let status = if err.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    respond(status, page(viewer, "/ui/sources", "Sources", body))
}

/// `POST /ui/sources`: create, then show the new source (with its new
/// secrets, once).
pub async fn create(app: &App, viewer: &Viewer, f: &Form) -> Resp {
    let input = sources::SourceIn {
        name: Some(f.get("name").to_string()),
        preset: f.opt("preset"),
        default_currency: f.opt("default_currency"),
        signing: (f.get("signing") == "1").then(|| sources::SigningIn {
            generate: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    match sources::create(app, input).await {
        Ok(saved) => {
            let extra = Extra {
                new_secrets: &saved.new_secrets,
                ..Default::default()
            };
            detail_page(app, viewer, &saved.entry, extra, StatusCode::CREATED).await
        }
        Err(e) => list(app, viewer, f, Some(&e)).await,
    }
}

pub async fn detail(app: &App, viewer: &Viewer, id: &str) -> Resp {
    match id
        .parse()
        .map_err(|_| ())
        .and_then(|id| sources::get(app, id).map_err(|_| ()))
    {
        Ok(s) => detail_page(app, viewer, &s, Extra::default(), StatusCode::OK).await,
        Err(()) => super::problem(
            StatusCode::NOT_FOUND,
            "No such source",
            "This source does not exist (it may have been deleted).",
        ),
    }
}

/// What a source page shows beyond the source: the answer to the form
/// just posted.
#[derive(Default)]
struct Extra<'a> {
    /// Signing secrets just generated (shown once).
    new_secrets: &'a [String],
    /// The mapping form's error.
    err: Option<&'a manage::Error>,
    fired: Option<&'a Result<TestFire, manage::Error>>,
    /// The doctor's URL and verdict.
    doctor: Option<(&'a str, &'a Result<DoctorReport, manage::Error>)>,
}

async fn detail_page(
    app: &App,
    viewer: &Viewer,
    s: &SourceEntry,
    extra: Extra<'_>,
    status: StatusCode,
) -> Resp {
    let Extra {
        new_secrets,
        err,
        fired,
        doctor,
    } = extra;
    let health_panel = health::panel(app, viewer, s.id).await;
    let preset = s.rec.preset.as_deref().and_then(presets::find);
    let own_links: Vec<_> = links::list(app)
        .into_iter()
        .filter(|l| l.rec.source_id == Some(s.id))
        .collect();
    let body = html! {
        h1 { (s.rec.name) }
        @if let Some(f) = fired { (verdict(f)) }
        @if !new_secrets.is_empty() {
            div.flash.warn role="status" {
                strong { "Signing secret: shown only now." }
                " Copy it into the sender's signing settings; later pages show it masked."
                @for sec in new_secrets { (copy_field(sec, "Copy the signing secret")) }
            }
        }
        div.panel {
            h2 { "Postback URL" }
            p.muted { "Paste this into " (preset.map_or("your network", |p| p.name)) "'s postback (S2S) settings. The network replaces the macros with each conversion's values." }
            @if viewer.is_admin() {
                (copy_field(&postback_url(app, viewer, s), "Copy the postback URL"))
            } @else {
                code { (postback_url(app, viewer, s)) }
                p.muted { "The key is hidden from viewers." }
            }
            @if s.rec.ipn.is_some() {
                h2 { "IPN URL" }
                @if viewer.is_admin() { (copy_field(&views::ipn_url(&app.config.public_url, s), "Copy the IPN URL")) }
                @else { code { "hidden from viewers" } }
            }
            @if let Some(p) = preset { p.muted { (p.notes) } }
        }
        (health_panel)
        @if viewer.is_admin() {
            (health::doctor_form(viewer, s.id, doctor.map_or("", |d| d.0), doctor.map(|d| d.1)))
        }
        div.panel {
            h2 { "Parameter mapping" }
            p.muted { "Which parameter of the network's request carries each field. Fix a mapping here, then replay the refused postbacks from the Postbacks page." }
            @if viewer.is_admin() {
                form.stack method="post" action=(format!("/ui/sources/{}", s.id)) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    div.fields { @for f in CANONICAL_FIELDS {
                        div.field {
                            label for=(format!("p-{f}")) { (f) }
                            input type="text" id=(format!("p-{f}")) name=(format!("param.{f}")) value=(s.mapping.params.get(*f).map_or("", String::as_str)) placeholder=(f);
                        }
                    } }
                    @if let Some(e) = err { span.err role="alert" { (e.message) } }
                    div { button type="submit" { "Save mapping" } }
                }
            } @else {
                dl.kv { @for (k, v) in &s.mapping.params { dt { (k) } dd.mono { (v) } } }
            }
        }
        @if viewer.is_admin() {
            form.panel.stack method="post" action=(format!("/ui/sources/{}/test", s.id)) {
                h2 { "Test-fire" }
                p.muted { "Records a click on one of this source's links, then sends the postback your network would send for it, with this mapping. The verdict is the one a real postback gets." }
                input type="hidden" name="csrf" value=(viewer.csrf);
                @if own_links.is_empty() {
                    p { "This source has no tracking link yet: " a href="/ui/links" { "create one" } " with this source, then fire a test." }
                } @else {
                    div.row {
                        div.field {
                            label for="t-link" { "Link" }
                            select id="t-link" name="link" { @for l in &own_links { option value=(l.slug) { (l.slug) } } }
                        }
                        div.field {
                            label for="t-amount" { "Amount" }
                            input type="text" id="t-amount" name="amount" value="1.00";
                        }
                    }
                    div { button type="submit" { "Fire a test postback" } }
                }
            }
        }
        p { a href=(format!("/ui/postbacks?source={}", s.id)) { "This source's postbacks →" } }
        @if viewer.is_admin() {
            form method="post" action=(format!("/ui/sources/{}/delete", s.id)) data-confirm="Delete this source? Its postback URL stops working at once." {
                input type="hidden" name="csrf" value=(viewer.csrf);
                button.danger type="submit" { "Delete source" }
            }
        }
    };
    respond(status, page(viewer, "/ui/sources", &s.rec.name, body))
}

/// `POST /ui/sources/{id}`: save the mapping (only the fields that differ
/// from the preset's own are stored as overrides).
pub async fn update(app: &App, viewer: &Viewer, id: &str, f: &Form) -> Resp {
    let Ok(id) = id.parse::<u64>() else {
        return super::problem(
            StatusCode::NOT_FOUND,
            "No such source",
            "This source does not exist.",
        );
    };
    let Ok(current) = sources::get(app, id) else {
        return super::problem(
            StatusCode::NOT_FOUND,
            "No such source",
            "This source does not exist.",
        );
    };
    let preset = current.rec.preset.as_deref().and_then(presets::find);
    let mut params = BTreeMap::new();
    for field in CANONICAL_FIELDS {
        let v = f.get(&format!("param.{field}")).trim().to_string();
        let default = preset.and_then(|p| p.param_for(field)).unwrap_or(field);
        if !v.is_empty() && v != default {
            params.insert(field.to_string(), v);
        }
    }
    let input = sources::SourceIn {
        params: Some(params),
        ..Default::default()
    };
    match sources::update(app, id, input).await {
        Ok(_) => see_other(&format!("/ui/sources/{id}")),
        Err(e) => {
            let extra = Extra {
                err: Some(&e),
                ..Default::default()
            };
            detail_page(app, viewer, &current, extra, StatusCode::BAD_REQUEST).await
        }
    }
}

fn verdict(f: &Result<TestFire, manage::Error>) -> Markup {
    html! {
        @match f {
            Ok(t) => {
                div.panel role="status" {
                    h2 { "Test-fire: " (badge(postbacks::tone(&t.result), &t.result)) }
                    p {
                        @if t.result == "matched" { "It works: the postback matched click " code { (t.click_id) } " on link " code { (t.slug) } "." }
                        @else if let Some(m) = &t.message { (m) }
                        @else { "The postback was answered " (t.result) "." }
                    }
                    p.muted { "Sent: " code { (t.query) } " · HTTP " (t.http_status) " · " a href=(format!("/ui/postbacks/{}", encode(&t.event_id))) { "open it in the log" } }
                }
            }
            Err(e) => { p.flash.bad role="alert" { (e.message) } }
        }
    }
}

/// `POST /ui/sources/{id}/test`: fire, then show the source with the verdict.
pub async fn test_fire(app: &App, viewer: &Viewer, id: &str, f: &Form) -> Resp {
    let Ok(id) = id.parse::<u64>() else {
        return super::problem(
            StatusCode::NOT_FOUND,
            "No such source",
            "This source does not exist.",
        );
    };
    let Ok(current) = sources::get(app, id) else {
        return super::problem(
            StatusCode::NOT_FOUND,
            "No such source",
            "This source does not exist.",
        );
    };
    let amount = f.opt("amount").unwrap_or_else(|| "1.00".into());
    let fired = testfire::fire(app, id, f.opt("link").as_deref(), &amount).await;
    let status = if fired.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let extra = Extra {
        fired: Some(&fired),
        ..Default::default()
    };
    detail_page(app, viewer, &current, extra, status).await
}

/// `POST /ui/sources/{id}/doctor`.
pub async fn doctor(app: &App, viewer: &Viewer, id: &str, f: &Form) -> Resp {
    let Some(current) = id
        .parse::<u64>()
        .ok()
        .and_then(|id| sources::get(app, id).ok())
    else {
        return super::problem(
            StatusCode::NOT_FOUND,
            "No such source",
            "This source does not exist.",
        );
    };
    let (url, report) = health::doctor(app, current.id, f);
    let extra = Extra {
        doctor: Some((&url, &report)),
        ..Default::default()
    };
    detail_page(app, viewer, &current, extra, StatusCode::OK).await
}

pub async fn delete(app: &App, id: &str) -> Resp {
    let Ok(id) = id.parse::<u64>() else {
        return super::problem(
            StatusCode::NOT_FOUND,
            "No such source",
            "This source does not exist.",
        );
    };
    match sources::delete(app, id).await {
        Ok(()) => see_other("/ui/sources"),
        Err(e) => super::problem(
            StatusCode::BAD_REQUEST,
            "This source cannot be deleted",
            &e.message,
        ),
    }
}
