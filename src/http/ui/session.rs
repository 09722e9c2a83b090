//! Who is signed in. NOT FINISHED: the real sessions (cookie → session
//! record in redb, sign-in form, sign-out, CSRF tokens per session, login
//! rate limit) are being built on the `wt-auth` branch. Until then no
//! request is signed in, so every page redirects to `/login`.

use hyper::HeaderMap;
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::manage::users::Role;

/// The signed-in user of one request.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub name: String,
    pub role: Role,
    /// This session's CSRF token: every form posts it back.
    pub csrf: String,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn role_label(&self) -> &'static str {
        self.role.label()
    }

    /// The form's token matches this session's (constant time).
    pub fn csrf_ok(&self, token: &str) -> bool {
        !self.csrf.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes()))
    }
}

/// The signed-in user of this request, if any.
pub async fn current(_app: &App, _headers: &HeaderMap) -> Option<Viewer> {
    None
}

/// The session pages this module serves.
pub fn owns(path: &str) -> bool {
    path == "/login" || path == "/logout" || path.starts_with("/setup/")
}

/// `/login`, `/logout`, `/setup/{token}`.
pub async fn handle(
    _app: &std::sync::Arc<App>,
    _peer: std::net::SocketAddr,
    _req: hyper::Request<hyper::body::Incoming>,
    _path: &str,
) -> crate::http::Resp {
    super::problem(
        hyper::StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in is not built yet",
        "This build has no dashboard users yet; use the admin API with the admin token.",
    )
}
