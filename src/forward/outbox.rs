//! The durable outbox: deliveries are created in the same redb transaction
//! as the conversion that causes them, and every attempt's result is written
//! back before the next one is scheduled. These functions run inside the
//! writer's transaction.
//!
//! Guarantee: at-least-once to the platform. A crash between a platform's
//! 2xx and our write of "delivered" re-sends on restart, with the same
//! event ID (the conversion ID), which the platforms deduplicate on.

use redb::ReadableTable;

use crate::store::records::{self, AttemptLog, ConversionRecord, DELIVERY_LOG_LEN, DeliveryRecord};
use crate::store::{StoreError, WriteCtx, health};
use crate::util::ids;

/// Destination types that get one delivery per conversion (they dedupe on
/// the conversion ID, so a status change is not re-sent).
pub const AD_PLATFORMS: &[&str] = &["meta", "google_ads", "ga4", "tiktok"];

/// Delivery states.
pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const DEAD: &str = "dead";

/// Key of a pending delivery in the due index.
pub fn outbox_key(next_ms: u64, delivery_id: &str) -> Vec<u8> {
    let mut k = next_ms.to_be_bytes().to_vec();
    k.extend_from_slice(delivery_id.as_bytes());
    k
}

/// Split a due-index key.
pub fn parse_outbox_key(k: &[u8]) -> Option<(u64, &str)> {
    let (t, id) = k.split_at_checked(8)?;
    Some((
        u64::from_be_bytes(t.try_into().ok()?),
        std::str::from_utf8(id).ok()?,
    ))
}

/// Queue deliveries of a conversion that was just created or changed status.
pub fn enqueue(
    ctx: &mut WriteCtx<'_>,
    conversion_id: &str,
    conv: &ConversionRecord,
    event_type: &str,
    now_ms: u64,
) -> Result<(), StoreError> {
    let targets: Vec<(u64, bool)> = ctx
        .catalog()
        .destinations
        .values()
        .filter(|d| d.wants(conv.source_id, &conv.kind, &conv.status))
        .map(|d| (d.id, AD_PLATFORMS.contains(&d.rec.kind.as_str())))
        .collect();
    for (dest, once) in targets {
        let id = ids::new_id(now_ms);
        if once {
            let key = format!("{dest}\x1f{conversion_id}");
            if ctx.delivery_keys()?.get(key.as_str())?.is_some() {
                continue;
            }
            ctx.delivery_keys()?.insert(key.as_str(), id.as_str())?;
        }
        let d = DeliveryRecord {
            destination_id: dest,
            conversion_id: conversion_id.to_string(),
            status: conv.status.clone(),
            ..new_pending(event_type, now_ms)
        };
        put_pending(ctx, &id, &d)?;
    }
    Ok(())
}

/// A delivery not yet attempted, due now: what a conversion's delivery
/// and an alert's notification share.
fn new_pending(event_type: &str, now_ms: u64) -> DeliveryRecord {
    DeliveryRecord {
        destination_id: 0,
        conversion_id: String::new(),
        status: String::new(),
        event_type: event_type.to_string(),
        state: PENDING.into(),
        attempts: 0,
        created_ms: now_ms,
        next_ms: now_ms,
        last_attempt_ms: None,
        last_status: None,
        last_error: None,
        delivered_ms: None,
        log: Vec::new(),
        retry_requested: false,
        superseded_ms: None,
        alert_id: None,
        notice: None,
    }
}

/// Queue an alert's notification (`alert.fired` or `alert.resolved`) in
/// the transaction that changes the alert's state; returns the delivery
/// ID. It is retried and shown like any delivery (destination 0).
pub fn enqueue_notice(
    ctx: &mut WriteCtx<'_>,
    alert_id: u64,
    event_type: &str,
    text: &str,
    now_ms: u64,
) -> Result<String, StoreError> {
    let id = ids::new_id(now_ms);
    let d = DeliveryRecord {
        alert_id: Some(alert_id),
        notice: Some(text.to_string()),
        ..new_pending(event_type, now_ms)
    };
    put_pending(ctx, &id, &d)?;
    Ok(id)
}

fn put_pending(ctx: &mut WriteCtx<'_>, id: &str, d: &DeliveryRecord) -> Result<(), StoreError> {
    ctx.deliveries()?
        .insert(id, records::encode(d).as_slice())?;
    ctx.outbox()?
        .insert(outbox_key(d.next_ms, id).as_slice(), ())?;
    ctx.pending()?.insert(id, ())?;
    ctx.wake_forwarder = true;
    Ok(())
}

/// What an attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    Delivered {
        status: u16,
        note: Option<String>,
    },
    /// Try again at `next_ms`.
    Retry {
        status: Option<u16>,
        reason: String,
        next_ms: u64,
    },
    Dead {
        status: Option<u16>,
        reason: String,
    },
}

/// Write an attempt's result. Returns the updated delivery, or `None` when
/// it no longer exists or is no longer pending, or the attempt was
/// scheduled under a due time that a later write replaced (finished by
/// someone else meanwhile: the result is dropped).
///
/// A retry request does not make the attempt in flight stale (see
/// [`retry`]): dropping that attempt's result would lose a send that
/// happened, and the worker would send again.
pub fn record_attempt(
    ctx: &mut WriteCtx<'_>,
    delivery_id: &str,
    scheduled_ms: u64,
    result: AttemptResult,
    now_ms: u64,
) -> Result<Option<DeliveryRecord>, StoreError> {
    let Some(mut d) = load(ctx, delivery_id)? else {
        return Ok(None);
    };
    let superseded = d.superseded_ms == Some(scheduled_ms);
    if d.state != PENDING || (d.next_ms != scheduled_ms && !superseded) {
        return Ok(None);
    }
    // This attempt was already under way when a retry was requested, so
    // it does not answer that request by itself: a retryable failure is
    // tried again now. Past the platform's Retry-After too: an operator
    // asked for it, once.
    let prompt = d.retry_requested || superseded;
    d.retry_requested = false;
    d.superseded_ms = None;
    let result = match result {
        AttemptResult::Retry { status, reason, .. } if prompt => AttemptResult::Retry {
            status,
            reason,
            // Never the attempt's own due time: a worker holding that
            // (stale) key must not pass for the new attempt.
            next_ms: now_ms.max(scheduled_ms + 1),
        },
        r => r,
    };
    ctx.outbox()?
        .remove(outbox_key(d.next_ms, delivery_id).as_slice())?;
    d.attempts += 1;
    d.last_attempt_ms = Some(now_ms);
    let (outcome, status, next, note) = match &result {
        AttemptResult::Delivered { status, note } => (DELIVERED, Some(*status), None, note.clone()),
        AttemptResult::Retry {
            status,
            reason,
            next_ms,
        } => ("retry", *status, Some(*next_ms), Some(reason.clone())),
        AttemptResult::Dead { status, reason } => (DEAD, *status, None, Some(reason.clone())),
    };
    let entry = AttemptLog {
        at_ms: now_ms,
        outcome: outcome.to_string(),
        status,
        next_ms: next,
        note,
    };
    // `at_ms` is when the attempt was decided, before the send; a retry
    // requested while it was in flight is logged first but happened
    // later, so the attempt goes before it and the log stays in time order.
    let mut pos = d.log.len();
    while pos > 0 && d.log[pos - 1].outcome == RETRY_REQUESTED && d.log[pos - 1].at_ms > now_ms {
        pos -= 1;
    }
    d.log.insert(pos, entry);
    trim_log(&mut d);
    match result {
        AttemptResult::Delivered { status, note } => {
            d.state = DELIVERED.into();
            d.last_status = Some(status);
            d.last_error = note;
            d.delivered_ms = Some(now_ms);
            ctx.pending()?.remove(delivery_id)?;
        }
        AttemptResult::Retry {
            status,
            reason,
            next_ms,
        } => {
            d.last_status = status;
            d.last_error = Some(reason);
            d.next_ms = next_ms;
            ctx.outbox()?
                .insert(outbox_key(next_ms, delivery_id).as_slice(), ())?;
            ctx.wake_forwarder = true;
        }
        AttemptResult::Dead { status, reason } => {
            d.state = DEAD.into();
            d.last_status = status;
            d.last_error = Some(reason);
            ctx.pending()?.remove(delivery_id)?;
            // Counted for the dead_deliveries alert; an alert's own
            // notification is not, or a dead notify target would alert
            // about itself.
            if d.alert_id.is_none() {
                health::count(ctx, health::GLOBAL, health::DEAD_DELIVERY, now_ms)?;
            }
        }
    }
    ctx.deliveries()?
        .insert(delivery_id, records::encode(&d).as_slice())?;
    Ok(Some(d))
}

/// The log outcome of a retry request (not an attempt).
pub const RETRY_REQUESTED: &str = "retry_requested";

fn trim_log(d: &mut DeliveryRecord) {
    if d.log.len() > DELIVERY_LOG_LEN {
        let excess = d.log.len() - DELIVERY_LOG_LEN;
        d.log.drain(..excess);
    }
}

/// What a retry request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAction {
    /// Pending and waiting out a backoff: the next attempt is due now.
    AttemptNow,
    /// Pending and already due, perhaps in flight: nothing more is sent.
    /// That attempt's result is recorded; a retryable failure is tried
    /// again at once.
    AlreadyDue,
    /// Delivered: queued to be sent again (an explicit re-send, with the
    /// same event ID).
    Resend,
    /// Dead: queued again.
    Revived,
}

impl RetryAction {
    /// The API's name (`action` in the answer).
    pub fn as_str(self) -> &'static str {
        match self {
            RetryAction::AttemptNow => "attempt_now",
            RetryAction::AlreadyDue => "already_due",
            RetryAction::Resend => "resend",
            RetryAction::Revived => "revived",
        }
    }

    fn note(self) -> &'static str {
        match self {
            RetryAction::AttemptNow => "retry requested: next attempt now, not after the backoff",
            RetryAction::AlreadyDue => {
                "retry requested while an attempt was due or in flight: not sent twice; a retryable failure is tried again at once"
            }
            RetryAction::Resend => "retry requested of a delivered delivery: sent again",
            RetryAction::Revived => "retry requested of a dead delivery: queued again",
        }
    }
}

/// A retry request's result.
#[derive(Clone, Debug)]
pub struct RetryOutcome {
    pub action: RetryAction,
    /// The delivery as written.
    pub delivery: DeliveryRecord,
}

/// `POST /api/v1/deliveries/{id}/retry`: attempt a pending delivery now,
/// once; re-send a delivered one; revive a dead one. `None` when there is
/// no such delivery. The request is logged in the delivery's log.
///
/// A pending delivery's attempt is identified by its due time (`next_ms`):
/// the worker records a result only under the due time it was started
/// with. So a due delivery, whose attempt may be in flight, keeps its due
/// time; only one still waiting out a backoff (nothing in flight) is
/// moved to now, remembering the old time in case the worker started it
/// in the moment before this write.
pub fn retry(
    ctx: &mut WriteCtx<'_>,
    delivery_id: &str,
    now_ms: u64,
) -> Result<Option<RetryOutcome>, StoreError> {
    let Some(mut d) = load(ctx, delivery_id)? else {
        return Ok(None);
    };
    let action = match d.state.as_str() {
        PENDING if d.next_ms <= now_ms => {
            d.retry_requested = true;
            RetryAction::AlreadyDue
        }
        PENDING => {
            ctx.outbox()?
                .remove(outbox_key(d.next_ms, delivery_id).as_slice())?;
            d.superseded_ms = Some(d.next_ms);
            d.next_ms = now_ms;
            RetryAction::AttemptNow
        }
        DELIVERED => RetryAction::Resend,
        // Dead, or a state this build does not know: queue it again.
        _ => RetryAction::Revived,
    };
    if matches!(action, RetryAction::Resend | RetryAction::Revived) {
        d.state = PENDING.into();
        d.next_ms = now_ms;
        d.delivered_ms = None;
        d.retry_requested = false;
        d.superseded_ms = None;
    }
    d.log.push(AttemptLog {
        at_ms: now_ms,
        outcome: RETRY_REQUESTED.to_string(),
        status: None,
        next_ms: Some(d.next_ms),
        note: Some(action.note().to_string()),
    });
    trim_log(&mut d);
    if action == RetryAction::AlreadyDue {
        // Its key in the due index stays as it is: that attempt is the
        // one asked for. The wake is only a nudge to a sleeping worker.
        ctx.deliveries()?
            .insert(delivery_id, records::encode(&d).as_slice())?;
        ctx.wake_forwarder = true;
    } else {
        put_pending(ctx, delivery_id, &d)?;
    }
    Ok(Some(RetryOutcome {
        action,
        delivery: d,
    }))
}

fn load(ctx: &mut WriteCtx<'_>, id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
    match ctx.deliveries()?.get(id)? {
        Some(v) => Ok(Some(records::decode(v.value())?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_keys_order_by_time_then_id() {
        let a = outbox_key(5, "b");
        let b = outbox_key(6, "a");
        assert!(a < b);
        assert_eq!(parse_outbox_key(&a), Some((5, "b")));
    }

    use crate::store::{DELIVERIES, OUTBOX, Store};

    const ID: &str = "d1";

    /// A store holding one pending delivery due at `next_ms`.
    async fn one_pending(next_ms: u64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        let d = DeliveryRecord {
            destination_id: 1,
            conversion_id: "c1".into(),
            status: "approved".into(),
            event_type: "conversion.created".into(),
            state: PENDING.into(),
            attempts: 0,
            created_ms: 1,
            next_ms,
            last_attempt_ms: None,
            last_status: None,
            last_error: None,
            delivered_ms: None,
            log: Vec::new(),
            retry_requested: false,
            superseded_ms: None,
            alert_id: None,
            notice: None,
        };
        store
            .write(move |ctx| put_pending(ctx, ID, &d))
            .await
            .unwrap();
        (dir, store)
    }

    async fn state(store: &Store) -> (DeliveryRecord, Vec<u64>) {
        store
            .read(|rtx| {
                let d = rtx.open_table(DELIVERIES)?;
                let d = records::decode(d.get(ID)?.unwrap().value())?;
                let mut due = Vec::new();
                for row in rtx.open_table(OUTBOX)?.iter()? {
                    due.push(parse_outbox_key(row?.0.value()).unwrap().0);
                }
                Ok((d, due))
            })
            .await
            .unwrap()
    }

    async fn retry_at(store: &Store, now: u64) -> RetryAction {
        store
            .write(move |ctx| retry(ctx, ID, now))
            .await
            .unwrap()
            .unwrap()
            .action
    }

    async fn record(store: &Store, scheduled: u64, r: AttemptResult, now: u64) -> bool {
        store
            .write(move |ctx| record_attempt(ctx, ID, scheduled, r, now))
            .await
            .unwrap()
            .is_some()
    }

    fn failed(next_ms: u64) -> AttemptResult {
        AttemptResult::Retry {
            status: Some(500),
            reason: "down".into(),
            next_ms,
        }
    }

    fn outcomes(d: &DeliveryRecord) -> Vec<&str> {
        d.log.iter().map(|a| a.outcome.as_str()).collect()
    }

    /// Due (perhaps in flight): the due time stays, so the attempt's 200
    /// is recorded; the request is logged after it.
    #[tokio::test]
    async fn retry_of_a_due_delivery_keeps_its_attempt() {
        let (_dir, store) = one_pending(100).await;
        assert_eq!(retry_at(&store, 150).await, RetryAction::AlreadyDue);
        assert_eq!(state(&store).await.1, [100], "due time unchanged");
        let ok = AttemptResult::Delivered {
            status: 200,
            note: None,
        };
        assert!(record(&store, 100, ok, 120).await, "the 200 is kept");
        let (d, due) = state(&store).await;
        assert_eq!(d.state, DELIVERED);
        assert_eq!(d.attempts, 1);
        assert!(due.is_empty());
        assert_eq!(outcomes(&d), ["delivered", RETRY_REQUESTED]);
    }

    /// Due, and the attempt fails retryably: the next one is due at once,
    /// not after the backoff; the one after that backs off as usual.
    #[tokio::test]
    async fn retryable_failure_after_a_retry_request_is_retried_at_once() {
        let (_dir, store) = one_pending(100).await;
        retry_at(&store, 150).await;
        assert!(record(&store, 100, failed(60_000), 200).await);
        let (d, due) = state(&store).await;
        assert_eq!((d.next_ms, due.as_slice()), (200, &[200][..]));
        assert!(!d.retry_requested);
        assert_eq!(outcomes(&d), [RETRY_REQUESTED, "retry"]);
        assert!(record(&store, 200, failed(90_000), 300).await);
        assert_eq!(state(&store).await.0.next_ms, 90_000);
    }

    /// Waiting out a backoff: moved to now. An attempt the worker started
    /// under the old due time in the moment before is still recorded (and
    /// removes the new key), an attempt under any other time is not.
    #[tokio::test]
    async fn retry_of_a_waiting_delivery_moves_it_and_keeps_a_racing_attempt() {
        let (_dir, store) = one_pending(10_000).await;
        assert_eq!(retry_at(&store, 5_000).await, RetryAction::AttemptNow);
        let (d, due) = state(&store).await;
        assert_eq!(
            (d.superseded_ms, due.as_slice()),
            (Some(10_000), &[5_000][..])
        );
        assert!(!record(&store, 7_000, failed(9_000), 5_001).await, "stale");
        let ok = AttemptResult::Delivered {
            status: 200,
            note: None,
        };
        assert!(record(&store, 10_000, ok, 4_999).await);
        let (d, due) = state(&store).await;
        assert_eq!(d.state, DELIVERED);
        assert!(due.is_empty(), "the moved key is gone: no second send");
        assert_eq!(outcomes(&d), ["delivered", RETRY_REQUESTED]);
        assert!(!record(&store, 5_000, failed(9_000), 5_002).await);
    }

    #[tokio::test]
    async fn retry_of_delivered_is_a_resend() {
        let (_dir, store) = one_pending(100).await;
        let ok = AttemptResult::Delivered {
            status: 200,
            note: None,
        };
        record(&store, 100, ok, 110).await;
        assert_eq!(retry_at(&store, 500).await, RetryAction::Resend);
        let (d, due) = state(&store).await;
        assert_eq!((d.state.as_str(), due.as_slice()), (PENDING, &[500][..]));
        assert_eq!(d.delivered_ms, None);
        assert_eq!(outcomes(&d), ["delivered", RETRY_REQUESTED]);
    }
}
