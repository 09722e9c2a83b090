//! Retention: clicks and postback events older than their configured age
//! are purged in small transactions (a bounded number of keys each), so
//! ingest batches interleave and are never stalled behind a big delete.
//! Conversions are never purged: they are the money.
//!
//! Keys are time-ordered IDs, so "older than" is a key range from the start.

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
    let mut done = (0u64, 0u64);
    for (which, days) in [
        (Which::Clicks, r.clicks_days),
        (Which::Events, r.events_days),
    ] {
        let Some(days) = days else { continue };
        let cut = cutoff(now_ms, days);
        loop {
            let c = cut.clone();
            let n = store.write(move |ctx| purge_batch(ctx, which, &c)).await?;
            match which {
                Which::Clicks => done.0 += n as u64,
                Which::Events => done.1 += n as u64,
            }
            if n < PURGE_BATCH {
                break;
            }
            // Let queued ingest batches run between purge transactions.
            tokio::task::yield_now().await;
        }
    }
    Ok(done)
}
