//! Dashboard users and sessions over HTTP: the users API, the sign-in form
//! and its cookie, pages with and without a session, wrong passwords,
//! the login rate limit, sign-out, idle and absolute expiry, CSRF and
//! Origin checks, viewers, `next` without an open redirect, the one-time
//! set-up link, and `postbackd user add|list|remove`. The helpers (add a
//! user, sign in, post a form as the dashboard's own page does) are public
//! for the page tests.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hyper::{HeaderMap, Method};
use postbackd::http::ui::session;
use postbackd::manage::users;
use serde_json::json;

use crate::util::{TOKEN, TestServer, text};

pub const PASSWORD: &str = "correct horse battery";
pub const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

pub async fn add_user(srv: &TestServer, name: &str, role: &str) {
    let r = srv
        .admin(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": name, "password": PASSWORD, "role": role})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
}

pub fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish().into_bytes()
}

/// POST a form the way a browser on the dashboard's own page does.
pub async fn post_form(
    srv: &TestServer,
    path: &str,
    cookie: Option<&str>,
    pairs: &[(&str, &str)],
) -> postbackd::util::client::HttpResponse {
    let c = cookie.map(|c| format!("{}={c}", session::COOKIE_NAME));
    let mut h = vec![FORM, ("origin", srv.base.as_str())];
    if let Some(c) = &c {
        h.push(("cookie", c));
    }
    srv.send(Method::POST, path, &h, &form(pairs)).await
}

pub async fn login(
    srv: &TestServer,
    name: &str,
    password: &str,
) -> postbackd::util::client::HttpResponse {
    post_form(
        srv,
        "/login",
        None,
        &[("name", name), ("password", password)],
    )
    .await
}

/// The session token a response set.
pub fn cookie_of(r: &postbackd::util::client::HttpResponse) -> String {
    let sc = r.header("set-cookie").expect("a Set-Cookie");
    let v = sc
        .strip_prefix(&format!("{}=", session::COOKIE_NAME))
        .unwrap_or_else(|| panic!("not the session cookie: {sc}"));
    v.split(';').next().unwrap().to_string()
}

pub async fn signed_in(srv: &TestServer, name: &str) -> String {
    let r = login(srv, name, PASSWORD).await;
    assert_eq!(r.status, 303, "{}", text(&r));
    cookie_of(&r)
}

pub async fn get_with(
    srv: &TestServer,
    path: &str,
    cookie: &str,
) -> postbackd::util::client::HttpResponse {
    let c = format!("{}={cookie}", session::COOKIE_NAME);
    srv.send(Method::GET, path, &[("cookie", &c)], b"").await
}

/// Whether a cookie still signs in: `/ui/...` answers without sending
/// the browser to /login.
pub async fn works(srv: &TestServer, cookie: &str) -> bool {
    let r = get_with(srv, "/ui/overview", cookie).await;
    let to_login = r.status == 303
        && r.header("location")
            .is_some_and(|l| l.starts_with("/login"));
    !to_login
}

/// The viewer behind a cookie, as the page router sees it.
pub async fn viewer(srv: &TestServer, cookie: &str) -> Option<session::Viewer> {
    let mut h = HeaderMap::new();
    h.insert(
        "cookie",
        format!("{}={cookie}", session::COOKIE_NAME)
            .parse()
            .unwrap(),
    );
    session::current(&srv.app, &h).await
}

#[tokio::test(flavor = "multi_thread")]
async fn users_api_creates_lists_and_removes_without_hashes() {
    let srv = TestServer::start().await;
    add_user(&srv, "Alice", "admin").await;
    let cases = [
        (
            json!({"name": "alice", "password": PASSWORD, "role": "admin"}),
            409,
            "user_exists",
        ),
        (
            json!({"name": "bob", "password": "short", "role": "viewer"}),
            400,
            "password_too_short",
        ),
        (
            json!({"name": "b b", "password": PASSWORD, "role": "viewer"}),
            400,
            "invalid_user_name",
        ),
        (
            json!({"name": "bob", "password": PASSWORD, "role": "root"}),
            400,
            "invalid_role",
        ),
        (
            json!({"name": "bob", "password": PASSWORD}),
            400,
            "invalid_role",
        ),
        (
            json!({"name": "bob", "password": PASSWORD, "role": "viewer", "x": 1}),
            400,
            "invalid_json",
        ),
    ];
    for (body, status, code) in cases {
        let r = srv
            .admin(Method::POST, "/api/v1/users", Some(body.clone()))
            .await;
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        assert!(!r.json()["message"].as_str().unwrap_or("").is_empty());
    }
    add_user(&srv, "bob", "viewer").await;
    let r = srv.admin(Method::GET, "/api/v1/users", None).await;
    assert_eq!(r.status, 200);
    let body = text(&r);
    assert!(!body.contains("argon2") && !body.contains("hash"), "{body}");
    let items: Vec<(String, String)> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().into(),
                u["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            ("alice".into(), "admin".into()),
            ("bob".into(), "viewer".into())
        ]
    );
    assert!(
        r.json()["items"][0]["created_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    // A new role applies to open sessions; a new password ends them.
    let bob = signed_in(&srv, "bob").await;
    assert!(!viewer(&srv, &bob).await.unwrap().is_admin());
    let patch = |body: serde_json::Value| srv.admin(Method::PATCH, "/api/v1/users/bob", Some(body));
    let r = patch(json!({"role": "admin"})).await;
    assert_eq!(
        (r.status, r.json()["role"].as_str()),
        (200, Some("admin")),
        "{}",
        text(&r)
    );
    assert!(viewer(&srv, &bob).await.unwrap().is_admin());
    let r = patch(json!({"password": "short"})).await;
    assert_eq!(r.json()["error"], "password_too_short");
    let r = patch(json!({"role": "viewer", "password": "a brand new passphrase"})).await;
    assert_eq!(r.status, 200);
    assert!(
        viewer(&srv, &bob).await.is_none(),
        "a new password signs out"
    );
    assert_eq!(login(&srv, "bob", PASSWORD).await.status, 401);
    assert_eq!(
        login(&srv, "bob", "a brand new passphrase").await.status,
        303
    );
    let r = srv
        .admin(
            Method::PATCH,
            "/api/v1/users/alice",
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (409, Some("last_admin"))
    );
    let r = srv
        .admin(
            Method::PATCH,
            "/api/v1/users/nobody",
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = patch(json!({"role": "viewer", "name": "x"})).await;
    assert_eq!(r.json()["error"], "invalid_json");
    // Back to the password the rest of the test uses.
    assert_eq!(patch(json!({"password": PASSWORD})).await.status, 200);
    // The last admin stays; a viewer goes, with their sessions.
    let r = srv.admin(Method::DELETE, "/api/v1/users/alice", None).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (409, Some("last_admin"))
    );
    let bob = signed_in(&srv, "bob").await;
    assert!(works(&srv, &bob).await);
    let r = srv.admin(Method::DELETE, "/api/v1/users/bob", None).await;
    assert_eq!(r.status, 204, "{}", text(&r));
    assert!(
        !works(&srv, &bob).await,
        "removing a user ends their sessions"
    );
    let r = srv.admin(Method::DELETE, "/api/v1/users/bob", None).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (404, Some("unknown_user"))
    );
    // The admin token is required.
    let r = srv
        .send(
            Method::GET,
            "/api/v1/users",
            &[("authorization", "Bearer nope")],
            b"",
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_form_sets_a_strict_cookie_and_opens_the_pages() {
    let srv = TestServer::start().await;
    add_user(&srv, "alice", "admin").await;
    let r = srv.get("/login").await;
    assert_eq!(r.status, 200);
    let page = text(&r);
    assert!(page.contains(r#"<label for="name">Name</label>"#), "{page}");
    assert!(
        page.contains(r#"<label for="password">Password</label>"#),
        "{page}"
    );
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    // No session: a page sends the browser to /login, keeping where it was.
    let r = srv.get("/ui/reports?group_by=day").await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("/login?next=%2Fui%2Freports%3Fgroup_by%3Dday")
    );
    let r = srv
        .send(
            Method::GET,
            "/ui/overview",
            &[("cookie", "postbackd_session=00ff")],
            b"",
        )
        .await;
    assert_eq!(r.status, 303, "a made-up cookie signs nobody in");
    // Sign in: 303 to `next`, the cookie with every flag.
    let r = post_form(
        &srv,
        "/login",
        None,
        &[
            ("name", "Alice"),
            ("password", PASSWORD),
            ("next", "/ui/reports"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    assert_eq!(r.header("location"), Some("/ui/reports"));
    let sc = r.header("set-cookie").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=1209600"] {
        assert!(sc.split("; ").any(|f| f == flag), "{flag} missing: {sc}");
    }
    assert!(
        !sc.contains("Secure"),
        "http public_url: no Secure flag: {sc}"
    );
    let cookie = cookie_of(&r);
    assert_eq!(cookie.len(), 64);
    // Pages read the session without writing it each time (a write is an
    // fsync): last_seen moves at most once a minute.
    let commits = |srv: &TestServer| {
        srv.app
            .store
            .stats
            .commits
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    let before = commits(&srv);
    for _ in 0..5 {
        assert!(works(&srv, &cookie).await);
    }
    assert_eq!(commits(&srv), before, "no write per page view");
    let v = viewer(&srv, &cookie).await.expect("signed in");
    assert_eq!(
        (v.name.as_str(), v.is_admin(), v.csrf.len()),
        ("alice", true, 64)
    );
    // Signed in, /login goes straight on.
    let r = get_with(&srv, "/login?next=/ui/links", &cookie).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/ui/links")));
    // The database holds the token's hash, not the token.
    let stored: Vec<Vec<u8>> = srv
        .app
        .store
        .read(|rtx| {
            let t = rtx.open_table(postbackd::store::SESSIONS)?;
            let mut keys = Vec::new();
            for row in redb::ReadableTable::iter(&t)? {
                keys.push(row?.0.value().to_vec());
            }
            Ok(keys)
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], cookie.as_bytes());
    assert!(!String::from_utf8_lossy(&stored[0]).contains(&cookie));

    // With an https public_url the cookie is Secure.
    let tls = TestServer::start_with(|c| c.public_url = "https://t.example.com".into()).await;
    add_user(&tls, "alice", "admin").await;
    let r = tls
        .send(
            Method::POST,
            "/login",
            &[FORM, ("origin", "https://t.example.com")],
            &form(&[("name", "alice"), ("password", PASSWORD)]),
        )
        .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    assert!(r.header("set-cookie").unwrap().ends_with("; Secure"));
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let srv = TestServer::start().await;
    add_user(&srv, "alice", "admin").await;
    let mut wrong_time = Duration::ZERO;
    let mut unknown_time = Duration::ZERO;
    let mut pages = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        let r = login(&srv, "alice", "not the password").await;
        wrong_time += t.elapsed();
        assert_eq!(r.status, 401);
        assert!(r.header("set-cookie").is_none());
        pages.push(text(&r).replace("value=\"alice\"", "value=\"NAME\""));
        let name = format!("nobody{i}");
        let t = Instant::now();
        let r = login(&srv, &name, "not the password").await;
        unknown_time += t.elapsed();
        assert_eq!(r.status, 401);
        pages.push(text(&r).replace(&format!("value=\"{name}\""), "value=\"NAME\""));
    }
    assert!(pages.windows(2).all(|w| w[0] == w[1]), "the same answer");
    let page = &pages[0];
    // The sentence sits next to the password field, the name is kept.
    let field = page.find(r#"id="password""#).unwrap();
    let err = page.find(r#"id="password-error""#).unwrap();
    assert!(err > field && page[field..err].len() < 300, "{page}");
    assert!(page.contains("Wrong name or password"), "{page}");
    assert!(page.contains("value=\"NAME\""));
    // An unknown name pays the same argon2 work (a loose bound: the
    // machine is shared; without the dummy hash it is ~100x less).
    assert!(
        unknown_time * 3 > wrong_time,
        "unknown {unknown_time:?} vs wrong {wrong_time:?}"
    );
    // The right password still works.
    assert_eq!(login(&srv, "alice", PASSWORD).await.status, 303);
}

#[tokio::test(flavor = "multi_thread")]
async fn too_fast_sign_in_gets_429_with_how_long_to_wait() {
    let srv = TestServer::start().await;
    add_user(&srv, "alice", "admin").await;
    // Per name: five at once.
    for _ in 0..5 {
        assert_eq!(login(&srv, "alice", "guess guess guess").await.status, 401);
    }
    let r = login(&srv, "ALICE", PASSWORD).await;
    assert_eq!(r.status, 429, "{}", text(&r));
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=12).contains(&wait), "{wait}");
    let page = text(&r);
    assert!(page.contains("Too many sign-in attempts"), "{page}");
    assert!(page.contains(&format!("Wait {wait} second")), "{page}");
    assert!(r.header("set-cookie").is_none());
    // Per address: ten at once, whatever the names.
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(
            login(&srv, &format!("user{i}"), "guess guess guess")
                .await
                .status,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429]);
    // Counted in /metrics, not stored one by one.
    let m = text(&srv.get("/metrics").await);
    assert!(
        m.contains("postbackd_rate_limited_total{limit=\"login\"} 3"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_ends_the_session_and_needs_its_csrf_token() {
    let srv = TestServer::start().await;
    add_user(&srv, "alice", "admin").await;
    let cookie = signed_in(&srv, "alice").await;
    let other = signed_in(&srv, "alice").await;
    let csrf = viewer(&srv, &cookie).await.unwrap().csrf;
    let other_csrf = viewer(&srv, &other).await.unwrap().csrf;
    assert_ne!(csrf, other_csrf, "one CSRF token per session");
    for bad in ["", "nope", other_csrf.as_str()] {
        let r = post_form(&srv, "/logout", Some(&cookie), &[("csrf", bad)]).await;
        assert_eq!(r.status, 403, "{}", text(&r));
        assert!(text(&r).contains("This form has expired"));
    }
    // From another site, even with the token: refused.
    let c = format!("postbackd_session={cookie}");
    let r = srv
        .send(
            Method::POST,
            "/logout",
            &[FORM, ("cookie", &c), ("origin", "https://evil.example")],
            &form(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(works(&srv, &cookie).await);
    let r = post_form(&srv, "/logout", Some(&cookie), &[("csrf", &csrf)]).await;
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    let sc = r.header("set-cookie").unwrap();
    assert!(
        sc.starts_with("postbackd_session=;") && sc.contains("Max-Age=0"),
        "{sc}"
    );
    assert!(
        !works(&srv, &cookie).await,
        "the old cookie no longer works"
    );
    assert!(viewer(&srv, &cookie).await.is_none());
    assert!(works(&srv, &other).await, "other sessions stay");
    // Signing out again (an old tab) just clears the cookie.
    let r = post_form(&srv, "/logout", Some(&cookie), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 303);
}

async fn session_rows(srv: &TestServer) -> u64 {
    srv.app
        .store
        .read(|rtx| {
            let t = rtx.open_table(postbackd::store::SESSIONS)?;
            Ok(redb::ReadableTableMetadata::len(&t)?)
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_expire_when_idle_and_at_the_absolute_limit() {
    // Idle: 2 s without a request ends it; requests in between keep it.
    let srv = TestServer::start_with(|c| {
        c.session_idle = Duration::from_secs(2);
        c.upkeep_interval = Duration::from_millis(300);
    })
    .await;
    add_user(&srv, "alice", "admin").await;
    let cookie = signed_in(&srv, "alice").await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(works(&srv, &cookie).await, "active sessions stay");
    }
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert!(!works(&srv, &cookie).await, "idle too long");
    // The sign-in page says why, and clears the dead cookie.
    let r = get_with(&srv, "/login?next=/ui/overview", &cookie).await;
    assert_eq!(r.status, 200);
    assert!(text(&r).contains("Your session has ended"), "{}", text(&r));
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    // The upkeep loop deletes it.
    let t = Instant::now();
    while session_rows(&srv).await > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "expired session not purged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Absolute: 3 s after sign-in, however active.
    let srv = TestServer::start_with(|c| c.session_max = Duration::from_secs(3)).await;
    add_user(&srv, "alice", "admin").await;
    let r = login(&srv, "alice", PASSWORD).await;
    assert!(
        r.header("set-cookie")
            .unwrap()
            .split("; ")
            .any(|f| f == "Max-Age=3")
    );
    let cookie = cookie_of(&r);
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(2000) {
        assert!(works(&srv, &cookie).await);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!works(&srv, &cookie).await, "past the absolute expiry");
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_posts_need_origin_and_csrf_and_viewers_change_nothing() {
    let srv = TestServer::start().await;
    add_user(&srv, "alice", "admin").await;
    add_user(&srv, "vera", "viewer").await;
    let admin = signed_in(&srv, "alice").await;
    let csrf = viewer(&srv, &admin).await.unwrap().csrf;
    let create = |csrf: &str| vec![("csrf", csrf.to_string()), ("name", "From the page".into())];
    let send = |cookie: &str, fields: Vec<(&'static str, String)>, origin: Option<&str>| {
        let c = format!("postbackd_session={cookie}");
        let body: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = form(&body);
        let origin = origin.map(str::to_string);
        let srv = &srv;
        async move {
            let mut h = vec![FORM, ("cookie", c.as_str())];
            if let Some(o) = &origin {
                h.push(("origin", o.as_str()));
            }
            srv.send(Method::POST, "/ui/sources", &h, &body).await
        }
    };
    let base = srv.base.clone();
    // No CSRF token, a wrong one: 403, the form has expired.
    for fields in [vec![("name", "x".to_string())], create("wrong")] {
        let r = send(&admin, fields, Some(&base)).await;
        assert_eq!(r.status, 403, "{}", text(&r));
        assert!(text(&r).contains("This form has expired"));
    }
    // The right token from another site, or with no Origin/Referer: 403.
    for origin in [Some("https://evil.example"), Some("null"), None] {
        let r = send(&admin, create(&csrf), origin).await;
        assert_eq!(r.status, 403, "{origin:?}");
        assert!(text(&r).contains("from another site"));
    }
    // A Referer of this site stands in for a missing Origin.
    let c = format!("postbackd_session={admin}");
    let referer = format!("{base}/ui/sources");
    let r = srv
        .send(
            Method::POST,
            "/ui/nothing-here",
            &[FORM, ("cookie", &c), ("referer", &referer)],
            &form(&[("csrf", &csrf)]),
        )
        .await;
    assert_ne!(r.status, 403, "{}", text(&r));
    // A viewer with a valid token: 403, and nothing changed.
    let vera = signed_in(&srv, "vera").await;
    let v = viewer(&srv, &vera).await.unwrap();
    assert!(!v.is_admin() && v.role_label() == "viewer");
    let r = send(&vera, create(&v.csrf), Some(&base)).await;
    assert_eq!(r.status, 403);
    assert!(
        text(&r).contains("Viewers cannot change anything"),
        "{}",
        text(&r)
    );
    let sources = srv.admin(Method::GET, "/api/v1/sources", None).await.json();
    assert_eq!(
        sources["items"],
        json!([]),
        "a viewer's POST changed nothing"
    );

    // The sign-in form itself (login CSRF): only from this site.
    for h in [
        vec![FORM, ("origin", "https://evil.example")],
        vec![FORM, ("referer", "https://evil.example/login")],
        vec![FORM],
    ] {
        let r = srv
            .send(
                Method::POST,
                "/login",
                &h,
                &form(&[("name", "alice"), ("password", PASSWORD)]),
            )
            .await;
        assert_eq!(r.status, 403, "{h:?}");
        assert!(r.header("set-cookie").is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn next_is_kept_but_never_leaves_the_site() {
    let srv = TestServer::start().await;
    add_user(&srv, "alice", "admin").await;
    let r = srv.get("/login?next=%2F%2Fevil.example").await;
    assert!(
        text(&r).contains(r#"name="next" value="/ui/overview""#),
        "{}",
        text(&r)
    );
    let r = srv.get("/login?next=%2Fui%2Flinks").await;
    assert!(text(&r).contains(r#"name="next" value="/ui/links""#));
    for (next, to) in [
        ("//evil.example", "/ui/overview"),
        ("/\\evil.example", "/ui/overview"),
        ("https://evil.example/ui/", "/ui/overview"),
        (
            "/ui/reports?group_by=campaign",
            "/ui/reports?group_by=campaign",
        ),
    ] {
        let r = post_form(
            &srv,
            "/login",
            None,
            &[("name", "alice"), ("password", PASSWORD), ("next", next)],
        )
        .await;
        assert_eq!((r.status, r.header("location")), (303, Some(to)), "{next}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_link_creates_the_first_admin_once() {
    let srv = TestServer::start().await;
    let token = users::setup_link(&srv.app)
        .await
        .unwrap()
        .expect("no user yet");
    let path = format!("/setup/{token}");
    let r = srv.get(&path).await;
    assert_eq!(r.status, 200);
    let page = text(&r);
    assert!(
        page.contains(">Name</label>") && page.contains(">Password</label>"),
        "{page}"
    );
    for bad in ["/setup/nope", &format!("/setup/{}", "0".repeat(64))] {
        assert_eq!(srv.get(bad).await.status, 410, "{bad}");
    }
    // Bad input: the sentence beside its field, nothing created.
    let r = post_form(
        &srv,
        &path,
        None,
        &[("name", "root"), ("password", "short")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(text(&r).contains(r#"id="password-error""#) && text(&r).contains("at least 10"));
    let r = post_form(
        &srv,
        &path,
        None,
        &[("name", "a b"), ("password", PASSWORD)],
    )
    .await;
    assert!(text(&r).contains(r#"id="name-error""#), "{}", text(&r));
    // From another site: refused.
    let r = srv
        .send(
            Method::POST,
            &path,
            &[FORM, ("origin", "https://evil.example")],
            &form(&[("name", "eve"), ("password", PASSWORD)]),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = post_form(
        &srv,
        &path,
        None,
        &[("name", "root"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/ui/overview")),
        "{}",
        text(&r)
    );
    let cookie = cookie_of(&r);
    let v = viewer(&srv, &cookie).await.unwrap();
    assert_eq!((v.name.as_str(), v.is_admin()), ("root", true));
    // Used: the link is gone for good.
    assert_eq!(srv.get(&path).await.status, 410);
    let r = post_form(
        &srv,
        &path,
        None,
        &[("name", "eve"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(r.status, 410);
    assert!(users::setup_link(&srv.app).await.unwrap().is_none());
    let list = srv.admin(Method::GET, "/api/v1/users", None).await.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

fn cli(base: &str, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_postbackd"))
        .args(args)
        .args(["--server", base])
        .env("POSTBACKD_ADMIN_TOKEN", TOKEN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn first_start_link_and_user_commands() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_postbackd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("POSTBACKD_ADMIN_TOKEN", TOKEN)
        .env("POSTBACKD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    let link = loop {
        let line = lines.next().expect("banner ended").unwrap();
        banner.push(line.clone());
        if let Some(w) = line.split_whitespace().find(|w| w.contains("/setup/")) {
            break w.to_string();
        }
        assert!(banner.len() < 40, "no set-up link: {banner:#?}");
    };
    std::thread::spawn(move || for _ in lines {});
    let base = banner[0]
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    assert!(link.starts_with(&format!("{base}/setup/")), "{link}");

    let (ok, out) = cli(&base, &["user", "add", "alice", "--role", "admin"], None);
    assert!(!ok && out.contains("--password-stdin"), "{out}");
    let (ok, out) = cli(
        &base,
        &[
            "user",
            "add",
            "alice",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(ok && out.contains("user alice created (admin)"), "{out}");
    let (ok, out) = cli(
        &base,
        &["user", "add", "bob", "--role", "viewer", "--password-stdin"],
        Some("short\n"),
    );
    assert!(!ok && out.contains("password_too_short"), "{out}");
    let (ok, _) = cli(
        &base,
        &["user", "add", "bob", "--role", "viewer", "--password-stdin"],
        Some(PASSWORD),
    );
    assert!(ok);
    let (ok, out) = cli(&base, &["user", "list"], None);
    assert!(ok, "{out}");
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!((rows[0][0], rows[0][1]), ("alice", "admin"));
    assert_eq!((rows[1][0], rows[1][1]), ("bob", "viewer"));
    // The password from stdin signs in; the set-up link is dead now.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = postbackd::util::client::HttpClient::new();
    let (signin, setup) = rt.block_on(async {
        let signin = http
            .send(
                Method::POST,
                &format!("{base}/login"),
                &[FORM, ("origin", &base)],
                Some(form(&[("name", "bob"), ("password", PASSWORD)])),
            )
            .await
            .unwrap();
        let setup = http.send(Method::GET, &link, &[], None).await.unwrap();
        (signin.status, setup.status)
    });
    assert_eq!((signin, setup), (303, 410));
    let (ok, out) = cli(&base, &["user", "remove", "alice"], None);
    assert!(!ok && out.contains("last_admin"), "{out}");
    let (ok, out) = cli(&base, &["user", "set", "alice", "--role", "viewer"], None);
    assert!(!ok && out.contains("last_admin"), "{out}");
    let (ok, out) = cli(&base, &["user", "set", "bob"], None);
    assert!(!ok && out.contains("nothing to change"), "{out}");
    let (ok, out) = cli(
        &base,
        &["user", "set", "bob", "--role", "admin", "--password-stdin"],
        Some("another long passphrase\n"),
    );
    assert!(ok && out.contains("user bob updated (admin)"), "{out}");
    let (ok, out) = cli(&base, &["user", "remove", "bob"], None);
    assert!(ok, "{out}");
    let (ok, out) = cli(&base, &["user", "list"], None);
    assert!(ok && !out.contains("bob"), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Method, path, headers, body, expected status.
type Case<'a> = (Method, String, Vec<(&'a str, &'a str)>, Vec<u8>, u16);

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_on_the_session_pages_gets_a_page_never_a_5xx() {
    let srv = TestServer::start().await;
    add_user(&srv, "alice", "admin").await;
    let origin = srv.base.clone();
    let big = vec![b'a'; 100 * 1024];
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/login".into(),
            vec![("content-type", "application/json"), ("origin", &origin)],
            b"{}".to_vec(),
            415,
        ),
        (
            Method::POST,
            "/login".into(),
            vec![FORM, ("origin", &origin)],
            big.clone(),
            413,
        ),
        (
            Method::POST,
            "/login".into(),
            vec![FORM, ("origin", &origin)],
            b"name=%ff%fe&password=%zz".to_vec(),
            401,
        ),
        (
            Method::POST,
            "/login".into(),
            vec![FORM, ("origin", &origin)],
            b"&&&==&name".to_vec(),
            401,
        ),
        (
            Method::POST,
            "/login".into(),
            vec![FORM, ("origin", "http://[::1")],
            b"name=a".to_vec(),
            403,
        ),
        (Method::PUT, "/login".into(), vec![], vec![], 405),
        (Method::GET, "/logout".into(), vec![], vec![], 405),
        (Method::GET, "/setup/".into(), vec![], vec![], 410),
        (Method::GET, "/setup/%00%2F..".into(), vec![], vec![], 410),
        (
            Method::GET,
            format!("/setup/{}", "a".repeat(4000)),
            vec![],
            vec![],
            410,
        ),
        (
            Method::POST,
            "/setup/x".into(),
            vec![FORM, ("origin", &origin)],
            b"name=a&password=bbbbbbbbbbbb".to_vec(),
            410,
        ),
        (
            Method::GET,
            "/ui/overview".into(),
            vec![("cookie", "postbackd_session=")],
            vec![],
            303,
        ),
        (
            Method::GET,
            "/ui/overview".into(),
            vec![("cookie", ";;=;postbackd_session=;;x")],
            vec![],
            303,
        ),
        (
            Method::GET,
            "/login".into(),
            vec![("cookie", "postbackd_session=zz")],
            vec![],
            200,
        ),
    ];
    for (method, path, headers, body, want) in cases {
        let r = srv.send(method.clone(), &path, &headers, &body).await;
        assert_eq!(
            r.status,
            want,
            "{method} {} {headers:?}: {}",
            &path[..path.len().min(40)],
            text(&r)
        );
        assert!(
            r.header("content-type")
                .is_none_or(|c| c.starts_with("text/html")),
            "a page: {path}"
        );
    }
    // The server still signs in after all that.
    assert_eq!(login(&srv, "alice", PASSWORD).await.status, 303);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_keeps_the_users_and_signs_everyone_out() {
    let srv = TestServer::start().await;
    add_user(&srv, "alice", "admin").await;
    let cookie = signed_in(&srv, "alice").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.redb");
    let (status, _) = srv
        .client
        .download(
            Method::POST,
            &format!("{}/api/v1/backup", srv.base),
            &[("authorization", &format!("Bearer {TOKEN}"))],
            &file,
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&file, restored.path().join("postbackd.redb")).unwrap();
    let r = TestServer::start_at(restored.path(), |_| {}).await;
    assert!(!works(&r, &cookie).await, "sessions are not restored");
    assert_eq!(login(&r, "alice", PASSWORD).await.status, 303, "users are");
    r.stop().await;
}
