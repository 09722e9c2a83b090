//! Dashboard users and sessions as stored: the `users` and `sessions`
//! tables and the one-time set-up link in `meta`. Only table access and the
//! expiry rule live here; validation, password hashing and the sign-in flow
//! are `manage::users`. The upkeep loop (`app`) purges expired sessions
//! through [`purge_sessions`].

use redb::{ReadTransaction, ReadableTable};

use super::records::{self, SessionRecord, UserRecord};
use super::{META, SESSIONS, StoreError, USERS, WriteCtx};

/// `meta` key of the set-up link: SHA-256 of its token (32 bytes), then its
/// expiry (ms, little-endian u64).
const SETUP_LINK: &str = "setup_link";

/// A session is over once idle for `idle_ms` or older than `max_ms`,
/// whichever comes first.
pub fn session_expired(s: &SessionRecord, now_ms: u64, idle_ms: u64, max_ms: u64) -> bool {
    now_ms.saturating_sub(s.last_seen_ms) >= idle_ms
        || now_ms.saturating_sub(s.created_ms) >= max_ms
}

pub fn read_user(rtx: &ReadTransaction, name: &str) -> Result<Option<UserRecord>, StoreError> {
    let t = rtx.open_table(USERS)?;
    t.get(name)?
        .map(|v| records::decode::<UserRecord>(v.value()))
        .transpose()
}

/// Every user, by name.
pub fn read_users(rtx: &ReadTransaction) -> Result<Vec<(String, UserRecord)>, StoreError> {
    let t = rtx.open_table(USERS)?;
    let mut out = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        out.push((k.value().to_string(), records::decode(v.value())?));
    }
    Ok(out)
}

/// A session and its user (`None` when either is gone).
pub fn read_session(
    rtx: &ReadTransaction,
    key: &[u8; 32],
) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
    let t = rtx.open_table(SESSIONS)?;
    let Some(s) = t
        .get(key.as_slice())?
        .map(|v| records::decode::<SessionRecord>(v.value()))
        .transpose()?
    else {
        return Ok(None);
    };
    Ok(read_user(rtx, &s.user)?.map(|u| (s, u)))
}

pub fn has_users(ctx: &mut WriteCtx<'_>) -> Result<bool, StoreError> {
    Ok(ctx.users()?.first()?.is_some())
}

pub fn get_user(ctx: &mut WriteCtx<'_>, name: &str) -> Result<Option<UserRecord>, StoreError> {
    ctx.users()?
        .get(name)?
        .map(|v| records::decode::<UserRecord>(v.value()))
        .transpose()
}

pub fn put_user(ctx: &mut WriteCtx<'_>, name: &str, rec: &UserRecord) -> Result<(), StoreError> {
    ctx.users()?.insert(name, records::encode(rec).as_slice())?;
    Ok(())
}

/// Admins other than `except`.
pub fn other_admins(ctx: &mut WriteCtx<'_>, except: &str) -> Result<usize, StoreError> {
    let mut n = 0;
    for row in ctx.users()?.iter()? {
        let (k, v) = row?;
        let u: UserRecord = records::decode(v.value())?;
        if u.role == "admin" && k.value() != except {
            n += 1;
        }
    }
    Ok(n)
}

/// Remove a user and end every session of theirs. False when there was
/// no such user.
pub fn remove_user(ctx: &mut WriteCtx<'_>, name: &str) -> Result<bool, StoreError> {
    if ctx.users()?.remove(name)?.is_none() {
        return Ok(false);
    }
    end_sessions(ctx, name)?;
    Ok(true)
}

/// Delete every session of `name`.
pub fn end_sessions(ctx: &mut WriteCtx<'_>, name: &str) -> Result<(), StoreError> {
    let mut theirs = Vec::new();
    for row in ctx.sessions()?.iter()? {
        let (k, v) = row?;
        let s: SessionRecord = records::decode(v.value())?;
        if s.user == name {
            theirs.push(k.value().to_vec());
        }
    }
    let t = ctx.sessions()?;
    for k in theirs {
        t.remove(k.as_slice())?;
    }
    Ok(())
}

pub fn put_session(
    ctx: &mut WriteCtx<'_>,
    key: &[u8; 32],
    rec: &SessionRecord,
) -> Result<(), StoreError> {
    ctx.sessions()?
        .insert(key.as_slice(), records::encode(rec).as_slice())?;
    Ok(())
}

pub fn remove_session(ctx: &mut WriteCtx<'_>, key: &[u8; 32]) -> Result<bool, StoreError> {
    Ok(ctx.sessions()?.remove(key.as_slice())?.is_some())
}

/// Move a session's `last_seen` to `now_ms` (if it still exists).
pub fn touch_session(
    ctx: &mut WriteCtx<'_>,
    key: &[u8; 32],
    now_ms: u64,
) -> Result<(), StoreError> {
    let rec = ctx
        .sessions()?
        .get(key.as_slice())?
        .map(|v| records::decode::<SessionRecord>(v.value()))
        .transpose()?;
    if let Some(mut s) = rec
        && s.last_seen_ms < now_ms
    {
        s.last_seen_ms = now_ms;
        put_session(ctx, key, &s)?;
    }
    Ok(())
}

/// Delete every expired session; returns how many. The table holds one
/// row per signed-in browser, so a full scan is small.
pub fn purge_sessions(
    ctx: &mut WriteCtx<'_>,
    now_ms: u64,
    idle_ms: u64,
    max_ms: u64,
) -> Result<usize, StoreError> {
    let mut dead = Vec::new();
    for row in ctx.sessions()?.iter()? {
        let (k, v) = row?;
        let s: SessionRecord = records::decode(v.value())?;
        if session_expired(&s, now_ms, idle_ms, max_ms) {
            dead.push(k.value().to_vec());
        }
    }
    let t = ctx.sessions()?;
    for k in &dead {
        t.remove(k.as_slice())?;
    }
    Ok(dead.len())
}

/// Store the set-up link (its token's hash and expiry), replacing any
/// earlier one.
pub fn put_setup_link(
    ctx: &mut WriteCtx<'_>,
    hash: &[u8; 32],
    expires_ms: u64,
) -> Result<(), StoreError> {
    let mut v = hash.to_vec();
    v.extend_from_slice(&expires_ms.to_le_bytes());
    ctx.meta()?.insert(SETUP_LINK, v.as_slice())?;
    Ok(())
}

/// The set-up link's (hash, expiry), if one was made.
pub fn setup_link(ctx: &mut WriteCtx<'_>) -> Result<Option<([u8; 32], u64)>, StoreError> {
    let v = ctx.meta()?.get(SETUP_LINK)?.map(|v| v.value().to_vec());
    Ok(v.and_then(|v| parse_setup(&v)))
}

/// The set-up link as a reader sees it.
pub fn read_setup_link(rtx: &ReadTransaction) -> Result<Option<([u8; 32], u64)>, StoreError> {
    let t = rtx.open_table(META)?;
    let v = t.get(SETUP_LINK)?.map(|v| v.value().to_vec());
    Ok(v.and_then(|v| parse_setup(&v)))
}

pub fn remove_setup_link(ctx: &mut WriteCtx<'_>) -> Result<(), StoreError> {
    ctx.meta()?.remove(SETUP_LINK)?;
    Ok(())
}

fn parse_setup(v: &[u8]) -> Option<([u8; 32], u64)> {
    let hash: [u8; 32] = v.get(..32)?.try_into().ok()?;
    let exp: [u8; 8] = v.get(32..40)?.try_into().ok()?;
    Some((hash, u64::from_le_bytes(exp)))
}

/// Whether the users table has any row (a reader's view).
pub fn read_has_users(rtx: &ReadTransaction) -> Result<bool, StoreError> {
    Ok(rtx.open_table(USERS)?.first()?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_and_absolute_expiry() {
        let s = SessionRecord {
            user: "a".into(),
            created_ms: 1_000,
            last_seen_ms: 5_000,
            csrf: String::new(),
        };
        // idle 10 s, absolute 60 s
        assert!(!session_expired(&s, 14_999, 10_000, 60_000));
        assert!(session_expired(&s, 15_000, 10_000, 60_000));
        let active = SessionRecord {
            last_seen_ms: 60_500,
            ..s.clone()
        };
        assert!(!session_expired(&active, 60_999, 10_000, 60_000));
        assert!(session_expired(&active, 61_000, 10_000, 60_000));
        // A clock that went back never underflows.
        assert!(!session_expired(&s, 0, 10_000, 60_000));
        assert_eq!(parse_setup(&[0u8; 39]), None);
        let mut v = vec![7u8; 32];
        v.extend_from_slice(&42u64.to_le_bytes());
        assert_eq!(parse_setup(&v), Some(([7u8; 32], 42)));
    }
}
