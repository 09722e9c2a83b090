//! Retention: clicks and postback events older than their configured age
//! are purged in small transactions (a bounded number of keys each), so
//! ingest batches interleave and are never stalled behind a big delete.
//! Conversions are never purged: they are the money.
//!
//! Keys are time-ordered IDs, so "older than" is a key range from the start.

use std::sync::atomic::Ordering;

use redb::ReadableTable;

use crate::store::{Store, StoreError, WriteCtx};
use crate::util::ids;

/// Keys deleted per transaction.
pub const PURGE_BATCH: usize = 1000;

/// Ages after which records go (None = keep forever).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    pub clicks_days: Option<u32>,
    pub events_days: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Clicks,
    Events,
}

fn cutoff(now_ms: u64, days: u32) -> String {
    ids::lower_bound(now_ms.saturating_sub(u64::from(days) * 86_400_000))
}

/// Delete up to [`PURGE_BATCH`] keys before `cutoff`; returns how many.
fn purge_batch(ctx: &mut WriteCtx<'_>, which: Which, cutoff: &str) -> Result<usize, StoreError> {
    let table = match which {
        Which::Clicks => ctx.clicks()?,
        Which::Events => ctx.events()?,
    };
    let mut keys = Vec::new();
    for row in table.range::<&str>(..cutoff)? {
        let (k, _) = row?;
        keys.push(k.value().to_string());
        if keys.len() >= PURGE_BATCH {
            break;
        }
    }
    for k in &keys {
        table.remove(k.as_str())?;
    }
    Ok(keys.len())
}

/// Purge everything past retention as of `now_ms` (injectable for tests),
/// one small transaction at a time. Returns (clicks, events) deleted.
pub async fn purge(store: &Store, r: Retention, now_ms: u64) -> Result<(u64, u64), StoreError> {
    let mut done = (0, 0);
    purge_into(store, r, now_ms, &mut done).await?;
    Ok(done)
}

/// One step of the server's upkeep loop: purge what is past retention now,
/// log the counts when anything went, and return them (clicks, events).
/// On an error the transactions committed before it stay purged, counted
/// and logged; the rest waits for the next step.
pub async fn upkeep(store: &Store, r: Retention) -> Result<(u64, u64), StoreError> {
    let mut done = (0, 0);
    let result = purge_into(store, r, crate::util::clock::now_ms(), &mut done).await;
    if done != (0, 0) {
        tracing::info!(
            clicks = done.0,
            events = done.1,
            "purged clicks and postback events past retention"
        );
    }
    result.map(|()| done)
}

/// [`purge`], adding to `done` (and to the store's counters behind
/// `/metrics`) as each transaction commits, so a failure part-way loses no
/// count of what was really deleted.
async fn purge_into(
    store: &Store,
    r: Retention,
    now_ms: u64,
    done: &mut (u64, u64),
) -> Result<(), StoreError> {
    for (which, days) in [
        (Which::Clicks, r.clicks_days),
        (Which::Events, r.events_days),
    ] {
        let Some(days) = days else { continue };
        let cut = cutoff(now_ms, days);
        loop {
            let c = cut.clone();
            let n = store.write(move |ctx| purge_batch(ctx, which, &c)).await?;
            let (total, counter) = match which {
                Which::Clicks => (&mut done.0, &store.stats.purged_clicks),
                Which::Events => (&mut done.1, &store.stats.purged_events),
            };
            *total += n as u64;
            counter.fetch_add(n as u64, Ordering::Relaxed);
            if n < PURGE_BATCH {
                break;
            }
            // Let queued ingest batches run between purge transactions.
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}
