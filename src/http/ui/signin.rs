//! The pages that make and end sessions: `/login` (the sign-in form,
//! rate-limited per client IP and per name), `/logout`, and
//! `/setup/{token}` (the one-time link printed on first start, which
//! creates the first admin). Every POST here passes `session::same_origin`
//! first; what each page does is a `manage::users` operation.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, RETRY_AFTER, SET_COOKIE};
use hyper::{Method, Request, StatusCode};
use maud::{Markup, html};

use super::form::Form;
use super::layout::{bare, respond, see_other};
use super::problem;
use super::session::{self, clear_cookie, set_cookie};
use crate::app::App;
use crate::http::Resp;
use crate::manage::users::{self, MIN_PASSWORD, NewSession};
use crate::util::net;

/// Where to go after signing in when `next` is missing or not ours.
const HOME: &str = "/ui/overview";

pub async fn handle(app: &Arc<App>, peer: SocketAddr, req: Request<Incoming>, path: &str) -> Resp {
    let method = req.method().clone();
    let setup = path.strip_prefix("/setup/").map(str::to_string);
    match (method, path, setup) {
        (Method::GET | Method::HEAD, "/login", _) => {
            let q = Form::from_query(req.uri().query().unwrap_or(""));
            let next = safe_next(q.get("next"));
            if session::current(app, req.headers()).await.is_some() {
                return see_other(&next);
            }
            // A cookie that no longer signs in: the session expired, was
            // signed out elsewhere, or its user was removed. Say so, and
            // let the browser forget it.
            if session::cookie_token(req.headers()).is_some() {
                let page = login_page(StatusCode::OK, &next, "", Some((At::Notice, ENDED)));
                return with_cookie(page, &clear_cookie(app));
            }
            login_page(StatusCode::OK, &next, "", None)
        }
        (Method::POST, "/login", _) => login_post(app, peer, req).await,
        (Method::POST, "/logout", _) => logout(app, req).await,
        (Method::GET | Method::HEAD, _, Some(token)) => {
            match users::setup_open(app, &token).await {
                Ok(true) => setup_page(StatusCode::OK, &token, "", None),
                Ok(false) => setup_gone(),
                Err(e) => unavailable(&e.message),
            }
        }
        (Method::POST, _, Some(token)) => setup_post(app, req, &token).await,
        _ => problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "Sign in with the form at /login; sign out with the button at the top of every page.",
        ),
    }
}

/// `next` when it is a dashboard path of this site, else the overview:
/// never a redirect to another site (`//evil.example`, `/\evil.example`,
/// `https://...` are all refused).
pub fn safe_next(next: &str) -> String {
    let ours = (next == "/ui" || next.starts_with("/ui/"))
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control() || c.is_whitespace());
    if ours {
        next.to_string()
    } else {
        HOME.to_string()
    }
}

fn cross_site() -> Resp {
    problem(
        StatusCode::FORBIDDEN,
        "This form was sent from another site",
        "The request did not come from a page of this dashboard, so nothing was done. Open the \
         dashboard's own address and use its form.",
    )
}

fn unavailable(message: &str) -> Resp {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "The dashboard cannot answer right now",
        &format!("Storage is not available: {message}."),
    )
}

fn with_cookie(mut r: Resp, cookie: &str) -> Resp {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(SET_COOKIE, v);
    }
    r
}

fn signed_in(app: &App, s: &NewSession, next: &str) -> Resp {
    with_cookie(see_other(next), &set_cookie(app, s))
}

/// One labelled input with the error sentence for it, if any, beside it.
fn field(id: &str, label: &str, kind: &str, value: &str, auto: &str, err: Option<&str>) -> Markup {
    let err_id = format!("{id}-error");
    html! {
        div.field {
            label for=(id) { (label) }
            @if let Some(e) = err {
                input id=(id) type=(kind) name=(id) value=(value) autocomplete=(auto) required
                    aria-invalid="true" aria-describedby=(err_id);
                p.err id=(err_id) role="alert" { (e) }
            } @else {
                input id=(id) type=(kind) name=(id) value=(value) autocomplete=(auto) required;
            }
        }
    }
}

/// Which field an error from `manage::users` belongs beside (or a notice
/// above the form).
enum At {
    Name,
    Password,
    Notice,
}

const ENDED: &str =
    "Your session has ended (it expired, or was signed out or removed). Sign in again.";

fn login_page(status: StatusCode, next: &str, name: &str, err: Option<(At, &str)>) -> Resp {
    let (name_err, pw_err, notice) = match &err {
        Some((At::Name, e)) => (Some(*e), None, None),
        Some((At::Password, e)) => (None, Some(*e), None),
        Some((At::Notice, e)) => (None, None, Some(*e)),
        None => (None, None, None),
    };
    respond(
        status,
        bare(
            "Sign in",
            html! {
                h1 { "Sign in to postbackd" }
                @if let Some(n) = notice {
                    p.flash.warn role="status" { (n) }
                }
                div.panel {
                    form.stack method="post" action="/login" {
                        input type="hidden" name="next" value=(next);
                        (field("name", "Name", "text", name, "username", name_err))
                        (field("password", "Password", "password", "", "current-password", pw_err))
                        button type="submit" { "Sign in" }
                    }
                }
                p.muted {
                    "No account? An admin adds users on the Users page or with "
                    code { "postbackd user add" } "."
                }
            },
        ),
    )
}

async fn login_post(app: &Arc<App>, peer: SocketAddr, req: Request<Incoming>) -> Resp {
    if !session::same_origin(app, &req) {
        return cross_site();
    }
    let ip = net::client_ip(peer.ip(), req.headers(), &app.config.trusted_proxies);
    let form = match Form::read(req).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let (name, password) = (form.get("name"), form.get("password"));
    let next = safe_next(form.get("next"));
    // Before any argon2 work: a refused attempt costs nothing.
    if let Err(wait) = app.rate.check_login(ip, name) {
        let secs = crate::ratelimit::retry_after_secs(wait);
        let mut r = problem(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts",
            &format!(
                "Sign-in attempts from your address or for this name came too fast. Wait {secs} \
                 second{} and sign in again.",
                if secs == 1 { "" } else { "s" }
            ),
        );
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        return r;
    }
    match users::sign_in(app, name, password).await {
        Ok(s) => {
            tracing::info!(user = %s.user, "dashboard sign-in");
            signed_in(app, &s, &next)
        }
        Err(e) if e.code == "wrong_credentials" => {
            // Not the name: people type their password into it by mistake.
            tracing::info!("dashboard sign-in refused: wrong name or password");
            login_page(
                StatusCode::UNAUTHORIZED,
                &next,
                name,
                Some((At::Password, &e.message)),
            )
        }
        Err(e) => unavailable(&e.message),
    }
}

async fn logout(app: &Arc<App>, req: Request<Incoming>) -> Resp {
    if !session::same_origin(app, &req) {
        return cross_site();
    }
    let token = session::cookie_token(req.headers());
    let viewer = session::current(app, req.headers()).await;
    let form = match Form::read(req).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    if let Some(v) = &viewer {
        if !v.csrf_ok(form.get("csrf")) {
            return problem(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The sign-out button came from an old page or another session, so you are still \
                 signed in. Reload the page and press Sign out again.",
            );
        }
        if let Some(t) = &token
            && let Err(e) = users::sign_out(app, t).await
        {
            return unavailable(&e.message);
        }
    }
    // Signed out already (expired, or another tab): just forget the cookie.
    with_cookie(see_other("/login"), &clear_cookie(app))
}

fn setup_gone() -> Resp {
    problem(
        StatusCode::GONE,
        "This set-up link no longer works",
        "The link works once, for 24 hours, while postbackd has no user. A user exists now (or a \
         newer link was printed at a restart): sign in at /login, or add a user with \
         `postbackd user add NAME --role admin --password-stdin`.",
    )
}

fn setup_page(status: StatusCode, token: &str, name: &str, err: Option<(At, &str)>) -> Resp {
    let (name_err, pw_err) = match &err {
        Some((At::Name, e)) => (Some(*e), None),
        Some((At::Password, e)) => (None, Some(*e)),
        _ => (None, None),
    };
    let action = format!("/setup/{token}");
    respond(
        status,
        bare(
            "Create the first admin",
            html! {
                h1 { "Welcome to postbackd" }
                div.panel {
                    p { "Create the first admin. This link then stops working; more users are added on the Users page." }
                    form.stack method="post" action=(action) {
                        (field("name", "Name", "text", name, "username", name_err))
                        (field("password", "Password", "password", "", "new-password", pw_err))
                        p.hint.muted { "At least " (MIN_PASSWORD) " characters." }
                        button type="submit" { "Create admin and sign in" }
                    }
                }
            },
        ),
    )
}

async fn setup_post(app: &Arc<App>, req: Request<Incoming>, token: &str) -> Resp {
    if !session::same_origin(app, &req) {
        return cross_site();
    }
    let form = match Form::read(req).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let name = form.get("name");
    match users::setup_first_admin(app, token, name, form.get("password")).await {
        Ok(s) => {
            tracing::info!(user = %s.user, "first admin created through the set-up link");
            signed_in(app, &s, HOME)
        }
        Err(e) if e.code == "setup_link_used" => setup_gone(),
        Err(e) if e.code == "invalid_user_name" => setup_page(
            StatusCode::BAD_REQUEST,
            token,
            name,
            Some((At::Name, &e.message)),
        ),
        Err(e) if e.code.starts_with("password_") => setup_page(
            StatusCode::BAD_REQUEST,
            token,
            name,
            Some((At::Password, &e.message)),
        ),
        Err(e) => unavailable(&e.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_only_ever_a_dashboard_path() {
        assert_eq!(safe_next("/ui/reports?x=1"), "/ui/reports?x=1");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/ui/",
            "/login",
            "",
            "/ui/\tx",
        ] {
            assert_eq!(safe_next(bad), HOME, "{bad}");
        }
    }
}
