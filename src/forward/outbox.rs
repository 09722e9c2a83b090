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
use crate::store::{StoreError, WriteCtx};
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
        };
        put_pending(ctx, &id, &d)?;
    }
    Ok(())
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
/// it no longer exists or is no longer pending (retried or finished by
/// someone else meanwhile: the result is dropped).
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
    if d.state != PENDING || d.next_ms != scheduled_ms {
        return Ok(None);
    }
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
    d.log.push(AttemptLog {
        at_ms: now_ms,
        outcome: outcome.to_string(),
        status,
        next_ms: next,
        note,
    });
    if d.log.len() > DELIVERY_LOG_LEN {
        let excess = d.log.len() - DELIVERY_LOG_LEN;
        d.log.drain(..excess);
    }
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
        }
    }
    ctx.deliveries()?
        .insert(delivery_id, records::encode(&d).as_slice())?;
    Ok(Some(d))
}

/// Queue a dead (or delivered) delivery again, due now.
pub fn retry(
    ctx: &mut WriteCtx<'_>,
    delivery_id: &str,
    now_ms: u64,
) -> Result<Option<DeliveryRecord>, StoreError> {
    let Some(mut d) = load(ctx, delivery_id)? else {
        return Ok(None);
    };
    if d.state == PENDING {
        ctx.outbox()?
            .remove(outbox_key(d.next_ms, delivery_id).as_slice())?;
    }
    d.state = PENDING.into();
    d.next_ms = now_ms;
    d.delivered_ms = None;
    put_pending(ctx, delivery_id, &d)?;
    Ok(Some(d))
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
}
