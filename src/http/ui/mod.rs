//! The dashboard: server-rendered pages under `/ui/`, signed in with a
//! user and a session (see `session`). Pages call the same `manage`
//! operations and report queries the JSON API calls; none calls the API
//! over HTTP or carries a copy of its logic. Every page reads without
//! JavaScript; `static/app.js` adds copy buttons, confirmations and the
//! live postback log.
//!
//! This file routes: assets (no session needed), the session pages
//! (`/login`, `/logout`, `/setup/...`), then every `/ui/` page behind a
//! session, with the CSRF token checked on every POST and changes refused
//! to viewers before any page code runs.

pub mod alerts;
pub mod assets;
pub mod chart;
pub mod destinations;
pub mod form;
pub mod health;
pub mod layout;
pub mod links;
pub mod overview;
pub mod postbacks;
pub mod records;
pub mod reports;
pub mod session;
pub mod signin;
pub mod sources;
pub mod users;

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use maud::html;

use crate::app::App;
use crate::http::Resp;
use form::Form;
use layout::{bare, respond, see_other};
use session::Viewer;

/// Whether the dashboard serves `path` (so the router sends it here).
pub fn owns(path: &str) -> bool {
    path == "/" || path == "/ui" || path.starts_with("/ui/") || session::owns(path)
}

pub async fn handle(app: &Arc<App>, peer: SocketAddr, req: Request<Incoming>, path: &str) -> Resp {
    if let Some(name) = path.strip_prefix("/ui/assets/") {
        return assets::serve(name).unwrap_or_else(|| {
            problem(
                StatusCode::NOT_FOUND,
                "Not found",
                "This file is not part of this build of postbackd.",
            )
        });
    }
    if session::owns(path) {
        return session::handle(app, peer, req, path).await;
    }
    if path == "/" || path == "/ui" || path == "/ui/" {
        return see_other("/ui/overview");
    }
    let Some(viewer) = session::current(app, req.headers()).await else {
        return see_other(&format!(
            "/login?next={}",
            form::encode(&path_and_query(&req))
        ));
    };
    let method = req.method().clone();
    match method {
        Method::GET | Method::HEAD => {
            let query = req.uri().query().unwrap_or("").to_string();
            get(app, &viewer, path, &Form::from_query(&query)).await
        }
        Method::POST => {
            if !session::same_origin(app, &req) {
                return problem(
                    StatusCode::FORBIDDEN,
                    "This form was sent from another site",
                    "The request did not come from a page of this dashboard, so nothing was \
                     changed. Open the dashboard's own address and use its form.",
                );
            }
            let form = match Form::read(req).await {
                Ok(f) => f,
                Err(resp) => return resp,
            };
            if !viewer.csrf_ok(form.get("csrf")) {
                return problem(
                    StatusCode::FORBIDDEN,
                    "This form has expired",
                    "The page was open too long or from an old session, so the change was not made. \
                     Go back, reload the page and submit it again.",
                );
            }
            if !viewer.is_admin() {
                return problem(
                    StatusCode::FORBIDDEN,
                    "Viewers cannot change anything",
                    "You are signed in as a viewer: nothing was changed. Ask an admin to make this change \
                     or to give you the admin role.",
                );
            }
            post(app, &viewer, path, &form).await
        }
        _ => problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "The dashboard answers GET and POST only.",
        ),
    }
}

fn path_and_query(req: &Request<Incoming>) -> String {
    req.uri()
        .path_and_query()
        .map_or_else(|| "/ui/overview".to_string(), |pq| pq.as_str().to_string())
}

async fn get(app: &Arc<App>, viewer: &Viewer, path: &str, q: &Form) -> Resp {
    match path {
        "/ui/overview" => overview::get(app, viewer, q).await,
        "/ui/reports" => reports::get(app, viewer, q).await,
        "/ui/reports.csv" => reports::csv(app, q).await,
        "/ui/postbacks" => postbacks::list(app, viewer, q).await,
        "/ui/postbacks/rows" => postbacks::rows(app, q).await,
        "/ui/conversions" => records::conversions(app, viewer, q).await,
        "/ui/clicks" => records::clicks(app, viewer, q).await,
        "/ui/sources" => sources::list(app, viewer, &Form::default(), None).await,
        "/ui/links" => links::list(app, viewer, &Form::default(), None).await,
        "/ui/destinations" => destinations::list(app, viewer).await,
        "/ui/destinations/new" if viewer.is_admin() => destinations::new_form(viewer, q, None),
        "/ui/alerts" => alerts::list(app, viewer, &Form::default(), None).await,
        "/ui/users" if viewer.is_admin() => users::list(app, viewer, &Form::default(), None).await,
        "/ui/users" => problem(
            StatusCode::FORBIDDEN,
            "Admins only",
            "The users page is for admins; ask one to add or remove users.",
        ),
        _ => match segments(path)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["postbacks", id] => postbacks::detail(app, viewer, id).await,
            ["conversions", id] => records::conversion(app, viewer, id).await,
            ["sources", id] => sources::detail(app, viewer, id).await,
            ["replays", id] => health::job(app, viewer, id).await,
            ["links", slug] => links::detail(app, viewer, slug, None, None),
            ["destinations", id] => destinations::detail(app, viewer, id, q).await,
            _ => not_found(),
        },
    }
}

/// `/ui/a/b` → `["a", "b"]`, each segment percent-decoded.
fn segments(path: &str) -> Vec<String> {
    path.trim_start_matches("/ui/")
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

async fn post(app: &Arc<App>, viewer: &Viewer, path: &str, f: &Form) -> Resp {
    let segs = segments(path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["postbacks", id, "replay"] => postbacks::replay(app, id).await,
        ["sources"] => sources::create(app, viewer, f).await,
        ["sources", id] => sources::update(app, viewer, id, f).await,
        ["sources", id, "delete"] => sources::delete(app, id).await,
        ["sources", id, "test"] => sources::test_fire(app, viewer, id, f).await,
        ["sources", id, "doctor"] => sources::doctor(app, viewer, id, f).await,
        ["sources", id, "replay"] => health::start(app, id.parse().unwrap_or(0), f).await,
        ["links"] => links::create(app, viewer, f).await,
        ["links", slug] => links::update(app, viewer, slug, f).await,
        ["links", slug, "delete"] => links::delete(app, slug).await,
        ["destinations"] => destinations::create(app, viewer, f).await,
        ["destinations", id, "delete"] => destinations::delete(app, id).await,
        ["deliveries", id, "retry"] => destinations::retry(app, id, f).await,
        ["alerts"] => alerts::create(app, viewer, f).await,
        ["alerts", id, "delete"] => alerts::delete(app, viewer, id).await,
        ["users"] => users::create(app, viewer, f).await,
        ["users", name, "delete"] => users::remove(app, viewer, name).await,
        _ => not_found(),
    }
}

fn not_found() -> Resp {
    problem(
        StatusCode::NOT_FOUND,
        "No such page",
        "This address is not a page of the dashboard. Use the navigation above.",
    )
}

/// A page that explains a refusal: what happened and what to do.
pub fn problem(status: StatusCode, title: &str, sentence: &str) -> Resp {
    respond(
        status,
        bare(
            title,
            html! {
                div.panel {
                    h1 { (title) }
                    p { (sentence) }
                    p { a href="/ui/overview" { "Back to the dashboard" } }
                }
            },
        ),
    )
}
