//! The Users page (admins only): who can sign in to the dashboard, with
//! which role; add a user, remove one. The same `manage::users`
//! operations as `/api/v1/users` and `postbackd user`.

use hyper::StatusCode;
use maud::{Markup, html};

use super::form::{Form, encode};
use super::layout::{Tone, badge, page, respond, see_other};
use super::session::Viewer;
use crate::app::App;
use crate::http::Resp;
use crate::manage::{self, users};
use crate::util::clock::rfc3339;

fn field_of(code: &str) -> &'static str {
    match code {
        "invalid_user_name" | "user_exists" => "name",
        "password_too_short" | "password_too_long" => "password",
        "invalid_role" => "role",
        _ => "form",
    }
}

fn err_for(err: Option<&manage::Error>, field: &str) -> Markup {
    super::layout::field_error(err, field, field_of)
}

pub async fn list(app: &App, viewer: &Viewer, f: &Form, err: Option<&manage::Error>) -> Resp {
    let all = match users::list_users(app).await {
        Ok(u) => u,
        Err(e) => {
            return super::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Users cannot be listed",
                &e.message,
            );
        }
    };
    let invalid = |name: &str| {
        err.is_some_and(|e| field_of(e.code) == name)
            .then_some("true")
    };
    let body = html! {
        h1 { "Users" }
        p.lead { "Admins change everything and see secrets; viewers read reports and logs, see no secret and change nothing." }
        div.tablewrap { table {
            thead { tr { th { "Name" } th { "Role" } th { "Created (UTC)" } th { "" } } }
            tbody { @for u in &all {
                tr {
                    td { (u.name) @if u.name == viewer.name { " " span.muted { "(you)" } } }
                    td { (badge(if u.role == users::Role::Admin { Tone::Ok } else { Tone::Plain }, u.role.label())) }
                    td.mono { (rfc3339(u.created_ms).get(..19).unwrap_or("").replace('T', " ")) }
                    td {
                        form method="post" action=(format!("/ui/users/{}/delete", encode(&u.name))) data-confirm=(format!("Remove {}? Their sessions end at once.", u.name)) {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button.secondary type="submit" aria-label=(format!("Remove {}", u.name)) { "Remove" }
                        }
                    }
                }
            } }
        } }
        @if let Some(e) = err.filter(|e| field_of(e.code) == "form") { p.flash.bad role="alert" { (e.message) } }
        form.panel.stack method="post" action="/ui/users" autocomplete="off" {
            h2 { "Add a user" }
            input type="hidden" name="csrf" value=(viewer.csrf);
            div.field {
                label for="name" { "Name" }
                input type="text" id="name" name="name" value=(f.get("name")) required aria-invalid=[invalid("name")] aria-describedby="name-err";
                (err_for(err, "name"))
            }
            div.field {
                label for="password" { "Password" }
                input type="password" id="password" name="password" required minlength="10" autocomplete="new-password" aria-invalid=[invalid("password")] aria-describedby="password-err";
                span.hint { "At least 10 characters; give it to them in person or through a password manager." }
                (err_for(err, "password"))
            }
            div.field {
                label for="role" { "Role" }
                select id="role" name="role" {
                    option value="viewer" selected[f.get("role") != "admin"] { "viewer: reads, changes nothing" }
                    option value="admin" selected[f.get("role") == "admin"] { "admin: everything" }
                }
                (err_for(err, "role"))
            }
            div { button type="submit" { "Add user" } }
        }
    };
    let status = if err.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    respond(status, page(viewer, "/ui/users", "Users", body))
}

pub async fn create(app: &App, viewer: &Viewer, f: &Form) -> Resp {
    let input = users::UserIn {
        name: f.get("name").to_string(),
        password: f.get("password").to_string(),
        role: f.get("role").to_string(),
    };
    match users::create_user(app, input).await {
        Ok(_) => see_other("/ui/users"),
        Err(e) => list(app, viewer, f, Some(&e)).await,
    }
}

pub async fn remove(app: &App, viewer: &Viewer, name: &str) -> Resp {
    match users::remove_user(app, name).await {
        Ok(()) => see_other("/ui/users"),
        Err(e) => list(app, viewer, &Form::default(), Some(&e)).await,
    }
}
