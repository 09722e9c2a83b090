//! Dashboard users and their sessions: name and password rules, argon2id
//! hashing (on the blocking pool, never on a tokio worker), sign-in, the
//! session lookup every page makes (idle and absolute expiry, `last_seen`
//! touched at most once a minute), sign-out, and the one-time set-up link
//! printed on first start. Tables are `store::users`.
//!
//! A session's cookie holds a random 32-byte token; the database keeps only
//! its SHA-256, so a copy of the database (a backup) signs nobody in.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::Error;
use crate::app::App;
use crate::store::records::{SessionRecord, UserRecord};
use crate::store::{StoreError, users as table};
use crate::util::clock::now_ms;
use crate::util::ids;

/// What a signed-in user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, secrets included.
    Admin,
    /// Reads reports and logs; sees no secret; changes nothing.
    Viewer,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    /// A stored role; anything unknown reads as the weaker one.
    fn stored(s: &str) -> Role {
        Role::parse(s).unwrap_or(Role::Viewer)
    }
}

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;
/// Longest password accepted (bytes): argon2 takes any length, but a
/// megabyte "password" is only a way to make the server hash a megabyte.
pub const MAX_PASSWORD: usize = 1024;
/// How long the set-up link works.
pub const SETUP_LINK_MS: u64 = 24 * 3_600_000;

/// Hashes at a time. Each argon2id hash takes 19 MiB (the OWASP
/// parameters, argon2's defaults) and a core for tens of milliseconds: a
/// burst of sign-ins from many addresses queues here instead of filling
/// memory and the blocking pool.
static HASHING: Semaphore = Semaphore::const_new(2);

/// `POST /api/v1/users`, `postbackd user add`.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub password: String,
    /// `admin` or `viewer`.
    #[serde(default)]
    pub role: String,
}

/// A user as answered: never the hash.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub created_ms: u64,
}

/// A session just made: the cookie gets `token`, never stored anywhere.
#[derive(Clone)]
pub struct NewSession {
    pub token: String,
    pub user: String,
    pub role: Role,
    pub csrf: String,
    /// Seconds until the absolute expiry: the cookie's Max-Age.
    pub max_age_s: u64,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token and CSRF token are secrets: never in a debug print.
        f.debug_struct("NewSession")
            .field("user", &self.user)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The live session of a request.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: Role,
    pub csrf: String,
}

/// A user name: trimmed and lowercased (names are not case-sensitive),
/// 1 to 64 characters: letters, digits and `. _ - @`, starting with a
/// letter or digit (an email address works).
pub fn valid_user_name(name: &str) -> Result<String, Error> {
    let n = name.trim().to_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.starts_with(|c: char| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(n)
    } else {
        Err(Error::invalid(
            "invalid_user_name",
            "the name must be 1 to 64 letters, digits or . _ - @, starting with a letter or digit \
             (for example alice or alice@example.com)",
        ))
    }
}

fn valid_password(p: &str) -> Result<(), Error> {
    if p.chars().count() < MIN_PASSWORD {
        return Err(Error::invalid(
            "password_too_short",
            format!(
                "the password must be at least {MIN_PASSWORD} characters; a few unrelated words \
                 make a long one that is easy to remember"
            ),
        ));
    }
    if p.len() > MAX_PASSWORD {
        return Err(Error::invalid(
            "password_too_long",
            format!("the password must be at most {MAX_PASSWORD} bytes"),
        ));
    }
    Ok(())
}

fn valid_role(r: &str) -> Result<Role, Error> {
    Role::parse(r).ok_or_else(|| {
        Error::invalid(
            "invalid_role",
            "role must be admin (changes everything, sees secrets) or viewer (reads reports and \
             logs, sees no secret, changes nothing)",
        )
    })
}

fn wrong_credentials() -> Error {
    Error::invalid(
        "wrong_credentials",
        "Wrong name or password. Check both and try again; names are not case-sensitive.",
    )
}

fn setup_used() -> Error {
    Error::conflict(
        "setup_link_used",
        "This set-up link has been used or has expired: a user exists already. Sign in at /login, \
         or create a user with `postbackd user add NAME --role admin --password-stdin`.",
    )
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::from(StoreError::Unavailable(e.to_string().into()))
}

/// An argon2id PHC string for `password` (fresh random salt).
async fn hash_password(password: String) -> Result<String, Error> {
    let _permit = HASHING.acquire().await.map_err(unavailable)?;
    tokio::task::spawn_blocking(move || {
        let h: PasswordHash = Argon2::default()
            .hash_password(password.as_bytes())
            .map_err(unavailable)?;
        Ok(h.to_string())
    })
    .await
    .map_err(unavailable)?
}

/// The hash checked when the name is unknown, so an unknown name costs the
/// same argon2 work as a wrong password (made once per process, with the
/// same parameters as every stored hash, from a password nobody knows).
static DUMMY_HASH: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Does `password` match `hash`? With `None` (no such user) the dummy hash
/// is checked and the answer is no: the same time, the same answer.
async fn verify_password(password: String, hash: Option<String>) -> Result<bool, Error> {
    let _permit = HASHING.acquire().await.map_err(unavailable)?;
    tokio::task::spawn_blocking(move || {
        let dummy = DUMMY_HASH.get_or_init(|| {
            let h: Option<PasswordHash> = Argon2::default()
                .hash_password(ids::random_hex(16).as_bytes())
                .ok();
            h.map(|h| h.to_string())
        });
        let target = hash.as_deref().or(dummy.as_deref()).unwrap_or("");
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), target)
            .is_ok();
        ok && hash.is_some()
    })
    .await
    .map_err(unavailable)
}

fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A cookie token as issued: 64 lowercase hex digits. Anything else is not
/// looked up at all.
fn plausible_token(t: &str) -> bool {
    t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

fn idle_ms(app: &App) -> u64 {
    app.config.session_idle.as_millis() as u64
}

fn max_ms(app: &App) -> u64 {
    app.config.session_max.as_millis() as u64
}

/// How stale `last_seen` may get before a request writes it again: a
/// minute (each write is an fsync), or a tenth of the idle expiry when
/// that is shorter, so an active session never idles out between touches.
fn touch_every_ms(app: &App) -> u64 {
    (idle_ms(app) / 10).clamp(1, 60_000)
}

pub async fn create_user(app: &App, input: UserIn) -> Result<User, Error> {
    let name = valid_user_name(&input.name)?;
    valid_password(&input.password)?;
    let role = valid_role(&input.role)?;
    let hash = hash_password(input.password).await?;
    let created_ms = now_ms();
    let rec = UserRecord {
        role: role.label().to_string(),
        hash,
        created_ms,
    };
    let key = name.clone();
    let created = app
        .store
        .write(move |ctx| {
            if table::get_user(ctx, &key)?.is_some() {
                return Ok(false);
            }
            table::put_user(ctx, &key, &rec)?;
            Ok(true)
        })
        .await?;
    if !created {
        return Err(Error::conflict(
            "user_exists",
            format!(
                "a user named `{name}` exists already; choose another name or remove that user first"
            ),
        ));
    }
    Ok(User {
        name,
        role,
        created_ms,
    })
}

pub async fn list_users(app: &App) -> Result<Vec<User>, Error> {
    let rows = app.store.read(table::read_users).await?;
    Ok(rows
        .into_iter()
        .map(|(name, u)| User {
            name,
            role: Role::stored(&u.role),
            created_ms: u.created_ms,
        })
        .collect())
}

/// `PATCH /api/v1/users/{name}`, `postbackd user set`: a new password
/// and/or role. Absent fields stay as they are.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub password: Option<String>,
    pub role: Option<String>,
}

/// Change a user's password or role. A new password ends the user's
/// sessions (whoever knew the old one is signed out); a new role applies
/// to the open sessions at their next request. The last admin keeps the
/// admin role, as in [`remove_user`].
pub async fn update_user(app: &App, name: &str, patch: UserPatch) -> Result<User, Error> {
    let key = name.trim().to_lowercase();
    let role = patch.role.as_deref().map(valid_role).transpose()?;
    let hash = match patch.password {
        Some(p) => {
            valid_password(&p)?;
            Some(hash_password(p).await?)
        }
        None => None,
    };
    enum Outcome {
        Updated(UserRecord),
        Unknown,
        LastAdmin,
    }
    let k = key.clone();
    let outcome = app
        .store
        .write(move |ctx| {
            let Some(mut u) = table::get_user(ctx, &k)? else {
                return Ok(Outcome::Unknown);
            };
            if role == Some(Role::Viewer) && u.role == "admin" && table::other_admins(ctx, &k)? == 0
            {
                return Ok(Outcome::LastAdmin);
            }
            if let Some(r) = role {
                u.role = r.label().to_string();
            }
            if let Some(h) = hash {
                u.hash = h;
                table::end_sessions(ctx, &k)?;
            }
            table::put_user(ctx, &k, &u)?;
            Ok(Outcome::Updated(u))
        })
        .await?;
    match outcome {
        Outcome::Updated(u) => Ok(User {
            name: key,
            role: Role::stored(&u.role),
            created_ms: u.created_ms,
        }),
        Outcome::Unknown => Err(unknown_user(&key)),
        Outcome::LastAdmin => Err(last_admin(&key)),
    }
}

fn unknown_user(key: &str) -> Error {
    Error::not_found(
        "unknown_user",
        format!(
            "no user named `{}`; `postbackd user list` shows the users",
            crate::util::text::truncate(key, 64)
        ),
    )
}

fn last_admin(key: &str) -> Error {
    Error::conflict(
        "last_admin",
        format!(
            "`{key}` is the last admin; add another admin first, so someone can still manage users"
        ),
    )
}

/// Remove a user and end their sessions. The last admin is kept: without
/// one nobody can manage users from the dashboard, and the first-start
/// link does not come back while any user exists.
pub async fn remove_user(app: &App, name: &str) -> Result<(), Error> {
    let key = name.trim().to_lowercase();
    enum Outcome {
        Removed,
        Unknown,
        LastAdmin,
    }
    let k = key.clone();
    let outcome = app
        .store
        .write(move |ctx| {
            let Some(u) = table::get_user(ctx, &k)? else {
                return Ok(Outcome::Unknown);
            };
            if u.role == "admin" && table::other_admins(ctx, &k)? == 0 {
                return Ok(Outcome::LastAdmin);
            }
            table::remove_user(ctx, &k)?;
            Ok(Outcome::Removed)
        })
        .await?;
    match outcome {
        Outcome::Removed => Ok(()),
        Outcome::Unknown => Err(unknown_user(&key)),
        Outcome::LastAdmin => Err(last_admin(&key)),
    }
}

/// Store a new session for `user`.
async fn start_session(app: &App, user: String, role: Role) -> Result<NewSession, Error> {
    let token = ids::random_hex(32);
    let csrf = ids::random_hex(32);
    let now = now_ms();
    let rec = SessionRecord {
        user: user.clone(),
        created_ms: now,
        last_seen_ms: now,
        csrf: csrf.clone(),
    };
    let key = token_key(&token);
    app.store
        .write(move |ctx| table::put_session(ctx, &key, &rec))
        .await?;
    Ok(NewSession {
        token,
        user,
        role,
        csrf,
        max_age_s: max_ms(app) / 1000,
    })
}

/// Check a name and password and start a session. An unknown name and a
/// wrong password cost the same argon2 work and give the same error,
/// `wrong_credentials`.
pub async fn sign_in(app: &App, name: &str, password: &str) -> Result<NewSession, Error> {
    let key = valid_user_name(name).ok();
    let user = match &key {
        Some(k) => {
            let k = k.clone();
            app.store.read(move |rtx| table::read_user(rtx, &k)).await?
        }
        None => None,
    };
    let ok = verify_password(password.to_string(), user.as_ref().map(|u| u.hash.clone())).await?;
    match (ok, key, user) {
        (true, Some(name), Some(u)) => start_session(app, name, Role::stored(&u.role)).await,
        _ => Err(wrong_credentials()),
    }
}

/// The live session behind a cookie token, if any: `None` for an unknown,
/// expired or malformed token, or a removed user.
pub async fn session(app: &App, token: &str) -> Result<Option<Session>, Error> {
    if !plausible_token(token) {
        return Ok(None);
    }
    let key = token_key(token);
    let Some((s, u)) = app
        .store
        .read(move |rtx| table::read_session(rtx, &key))
        .await?
    else {
        return Ok(None);
    };
    let now = now_ms();
    if table::session_expired(&s, now, idle_ms(app), max_ms(app)) {
        return Ok(None);
    }
    if now.saturating_sub(s.last_seen_ms) >= touch_every_ms(app) {
        app.store
            .write(move |ctx| table::touch_session(ctx, &key, now))
            .await?;
    }
    Ok(Some(Session {
        user: s.user,
        role: Role::stored(&u.role),
        csrf: s.csrf,
    }))
}

/// End the session behind a cookie token (nothing to do when there is
/// none).
pub async fn sign_out(app: &App, token: &str) -> Result<(), Error> {
    if !plausible_token(token) {
        return Ok(());
    }
    let key = token_key(token);
    app.store
        .write(move |ctx| table::remove_session(ctx, &key))
        .await?;
    Ok(())
}

/// On a start with no user yet: a new one-time set-up link token (stored
/// hashed, valid [`SETUP_LINK_MS`], replacing any earlier one). `None` once
/// a user exists.
pub async fn setup_link(app: &App) -> Result<Option<String>, Error> {
    let token = ids::random_hex(32);
    let key = token_key(&token);
    let expires = now_ms() + SETUP_LINK_MS;
    let made = app
        .store
        .write(move |ctx| {
            if table::has_users(ctx)? {
                table::remove_setup_link(ctx)?;
                return Ok(false);
            }
            table::put_setup_link(ctx, &key, expires)?;
            Ok(true)
        })
        .await?;
    Ok(made.then_some(token))
}

fn setup_matches(link: Option<([u8; 32], u64)>, token: &str, now: u64) -> bool {
    let given = token_key(token);
    link.is_some_and(|(hash, expires)| now < expires && bool::from(hash.ct_eq(&given)))
}

/// Does this set-up link still work (no user yet, not expired, the token
/// of the newest link)?
pub async fn setup_open(app: &App, token: &str) -> Result<bool, Error> {
    if !plausible_token(token) {
        return Ok(false);
    }
    let token = token.to_string();
    Ok(app
        .store
        .read(move |rtx| {
            Ok(!table::read_has_users(rtx)?
                && setup_matches(table::read_setup_link(rtx)?, &token, now_ms()))
        })
        .await?)
}

/// Create the first admin through the set-up link and sign them in. The
/// link is spent in the same transaction that creates the user.
pub async fn setup_first_admin(
    app: &App,
    token: &str,
    name: &str,
    password: &str,
) -> Result<NewSession, Error> {
    if !setup_open(app, token).await? {
        return Err(setup_used());
    }
    let name = valid_user_name(name)?;
    valid_password(password)?;
    let hash = hash_password(password.to_string()).await?;
    let rec = UserRecord {
        role: Role::Admin.label().to_string(),
        hash,
        created_ms: now_ms(),
    };
    let (token, key) = (token.to_string(), name.clone());
    let created = app
        .store
        .write(move |ctx| {
            // Checked again here: two forms posted at once make one admin.
            if table::has_users(ctx)? || !setup_matches(table::setup_link(ctx)?, &token, now_ms()) {
                return Ok(false);
            }
            table::put_user(ctx, &key, &rec)?;
            table::remove_setup_link(ctx)?;
            Ok(true)
        })
        .await?;
    if !created {
        return Err(setup_used());
    }
    start_session(app, name, Role::Admin).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tokens() {
        assert_eq!(
            valid_user_name(" Alice@Example.com ").unwrap(),
            "alice@example.com"
        );
        for bad in ["", ".alice", "a b", "a/b", &"x".repeat(65), "ä"] {
            assert_eq!(
                valid_user_name(bad).unwrap_err().code,
                "invalid_user_name",
                "{bad}"
            );
        }
        assert_eq!(
            valid_password("short").unwrap_err().code,
            "password_too_short"
        );
        assert!(valid_password("ten chars!").is_ok());
        assert!(plausible_token(&"ab".repeat(32)));
        assert!(!plausible_token("../etc"));
        assert_eq!(Role::parse("Admin"), Some(Role::Admin));
        assert_eq!(Role::stored("root"), Role::Viewer);
    }
}
