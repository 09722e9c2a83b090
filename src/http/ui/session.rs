//! Who is signed in: the `postbackd_session` cookie, looked up through
//! `manage::users::session` (idle and absolute expiry), the viewer of a
//! request with its session's CSRF token, the cookie's flags, and the
//! same-origin check every dashboard POST passes. The pages that make and
//! end sessions (`/login`, `/logout`, `/setup/{token}`) are `signin`.

use hyper::HeaderMap;
use hyper::header::{COOKIE, HOST, ORIGIN, REFERER};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::manage::users::{self, NewSession, Role};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "postbackd_session";

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

/// The session token in the request's cookies, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    // HTTP/2 may split cookies over several headers.
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The signed-in user of this request, if any. A storage error counts as
/// signed out (and is logged by `manage`): the page then asks to sign in
/// rather than showing anything.
pub async fn current(app: &App, headers: &HeaderMap) -> Option<Viewer> {
    let token = cookie_token(headers)?;
    match users::session(app, &token).await {
        Ok(Some(s)) => Some(Viewer {
            name: s.user,
            role: s.role,
            csrf: s.csrf,
        }),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(
                code = e.code,
                "session lookup failed; answering as signed out"
            );
            None
        }
    }
}

/// `Set-Cookie` for a new session: HttpOnly (no script reads it),
/// SameSite=Strict (no other site's page sends it), Path=/, Secure when
/// the dashboard is served over https, Max-Age = the absolute expiry.
pub fn set_cookie(app: &App, s: &NewSession) -> String {
    format!(
        "{COOKIE_NAME}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        s.token,
        s.max_age_s,
        secure_flag(app)
    )
}

/// `Set-Cookie` that makes the browser forget the session cookie.
pub fn clear_cookie(app: &App) -> String {
    format!(
        "{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        secure_flag(app)
    )
}

fn secure_flag(app: &App) -> &'static str {
    if app.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

/// The `scheme://host[:port]` part of a URL (lowercase), `None` when it
/// has none.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    (!scheme.is_empty() && !host.is_empty()).then(|| {
        format!(
            "{}://{}",
            scheme.to_ascii_lowercase(),
            host.to_ascii_lowercase()
        )
    })
}

/// Did this POST come from a page of this site? The browser's `Origin`
/// (or, when a browser sends none, the `Referer`'s origin) must be the
/// configured `public_url`'s origin or the origin the request was sent to
/// (its `Host`, over http or https: the dashboard may be reached on
/// `admin_listen` or behind a proxy). A request with neither header is
/// refused: every browser sends `Origin` on a form POST, and a client that
/// sends none is not a browser whose cookies an attacker could borrow,
/// so it loses nothing by sending one.
///
/// This is the sign-in form's CSRF protection (login CSRF: another site
/// posting its own credentials so the victim works in the attacker's
/// account). There is no session yet whose token a hidden field could
/// carry, and a pre-session cookie would only restate what `Origin`
/// already proves; on signed-in pages it sits in front of the
/// per-session token and SameSite=Strict.
pub fn same_origin<B>(app: &App, req: &hyper::Request<B>) -> bool {
    let headers = req.headers();
    let header = |n| headers.get(n).and_then(|v| v.to_str().ok());
    let claimed = match header(ORIGIN) {
        Some(o) => origin_of(o.trim()),
        None => header(REFERER).and_then(|r| origin_of(r.trim())),
    };
    let Some(claimed) = claimed else {
        return false;
    };
    if origin_of(&app.config.public_url).is_some_and(|o| o == claimed) {
        return true;
    }
    // HTTP/2 carries the host in the request's authority, HTTP/1 in `Host`.
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| header(HOST))
        .map(|h| h.trim().to_ascii_lowercase());
    host.is_some_and(|h| {
        !h.is_empty() && (claimed == format!("http://{h}") || claimed == format!("https://{h}"))
    })
}

/// The session pages this module serves.
pub fn owns(path: &str) -> bool {
    path == "/login" || path == "/logout" || path.starts_with("/setup/")
}

/// `/login`, `/logout`, `/setup/{token}`.
pub async fn handle(
    app: &std::sync::Arc<App>,
    peer: std::net::SocketAddr,
    req: hyper::Request<hyper::body::Incoming>,
    path: &str,
) -> crate::http::Resp {
    super::signin::handle(app, peer, req, path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_and_origin_parsing() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, "a=1; postbackd_session=abc ; b=2".parse().unwrap());
        assert_eq!(cookie_token(&h).as_deref(), Some("abc"));
        assert_eq!(
            origin_of("https://T.example.com:8443/ui/x?y").as_deref(),
            Some("https://t.example.com:8443")
        );
        assert_eq!(origin_of("null"), None);
    }
}
