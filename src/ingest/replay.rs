//! Replay: a stored event processed again with its source's current
//! mapping or IPN settings; the result is a new event pointing back at the
//! original, written through the same path as live traffic.

use redb::ReadableTable;

use super::{Outcome, Postback, RawRequest, not_configured, record_ipn, record_postback};
use crate::inbound::ipn;
use crate::inbound::postback::{self, Rejection};
use crate::inbound::query::Limits;
use crate::store::records::{self, EventRecord};
use crate::store::{StoreError, WriteCtx};

/// Why a replay could not run.
#[derive(Debug)]
pub enum ReplayError {
    NotFound,
    SourceGone(u64),
    Store(StoreError),
}

impl From<StoreError> for ReplayError {
    fn from(e: StoreError) -> Self {
        ReplayError::Store(e)
    }
}

/// Re-process a stored event with its source's current mapping; the result
/// is a new event pointing back at the original.
pub fn replay(
    ctx: &mut WriteCtx<'_>,
    event_id: &str,
    limits: &Limits,
    now_ms: u64,
) -> Result<Outcome, ReplayError> {
    let ev: EventRecord = match ctx.events()?.get(event_id).map_err(StoreError::from)? {
        Some(v) => records::decode(v.value())?,
        None => return Err(ReplayError::NotFound),
    };
    let source = ctx
        .catalog()
        .sources
        .get(&ev.source_id)
        .cloned()
        .ok_or(ReplayError::SourceGone(ev.source_id))?;
    if ev.path.starts_with("/ipn/") {
        return Ok(replay_ipn(ctx, event_id, ev, &source, limits, now_ms)?);
    }
    let parsed = postback::parse(
        &postback::Request {
            query: ev.query.as_bytes(),
            content_type: ev.content_type.as_deref(),
            body: &ev.body,
        },
        &source.mapping,
        limits,
    );
    let parsed = if ev.body_truncated && parsed.is_ok() {
        // Never guess from a partial body.
        Err(Rejection {
            code: "too_large",
            message: "the original body was over the size limit and is stored truncated; \
                      it cannot be replayed"
                .into(),
            field: None,
        })
    } else {
        parsed
    };
    let source_id = ev.source_id;
    let raw = RawRequest::from(ev);
    let p = Postback {
        source_id,
        raw,
        parsed,
        replay_of: Some(event_id.to_string()),
        signature: None,
        click: None,
    };
    Ok(record_postback(ctx, p, now_ms)?)
}

/// Re-decode a stored IPN request with the source's current IPN settings
/// (a changed secret or click ID field applies). A WarriorPlus request was
/// stored with its key redacted: it is taken as authentic when the
/// original was.
fn replay_ipn(
    ctx: &mut WriteCtx<'_>,
    event_id: &str,
    ev: EventRecord,
    source: &crate::store::catalog::SourceEntry,
    limits: &Limits,
    now_ms: u64,
) -> Result<Outcome, StoreError> {
    let decoded = match &source.ipn {
        None => Err(not_configured()),
        Some(_) if ev.body_truncated => Err(Rejection::new(
            "too_large",
            None,
            "the original body was over the size limit and is stored truncated; it cannot be \
             replayed"
                .into(),
        )),
        Some(settings) => {
            let auth = if settings.format == ipn::Format::WarriorPlus && ev.authenticated {
                ipn::Auth::AlreadyVerified
            } else {
                ipn::Auth::Verify
            };
            let req = ipn::Request {
                content_type: ev.content_type.as_deref(),
                body: &ev.body,
            };
            ipn::decode(&req, settings, limits, auth)
        }
    };
    let include_tests = source.ipn.as_ref().is_some_and(|s| s.include_tests);
    let source_id = ev.source_id;
    let raw = RawRequest::from(ev);
    record_ipn(
        ctx,
        source_id,
        raw,
        decoded,
        include_tests,
        Some(event_id.to_string()),
        now_ms,
    )
}
