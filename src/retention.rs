//! Retention: clicks and postback events older than their configured age
//! are purged in small transactions (a bounded number of keys each), so
//! ingest batches interleave and are never stalled behind a big delete.
//! Conversions are never purged: they are the money.
//!
//! Keys are time-ordered IDs, so "older than" is a key range from the start.
//!
//! The visits table behind `unique` (keyed by visitor hash, so not in time
//! order) is swept instead: a bounded number of keys per transaction and
//! per upkeep, from where the last sweep stopped, dropping visits older
//! than the unique window. Pruning only bounds its size: the click job
//! compares times itself, so a visit not yet swept never makes a click
//! wrongly not unique.

use std::sync::atomic::Ordering;

use std::ops::Bound;

use redb::ReadableTable;

use crate::store::records::{self, ClickRecord};
use crate::store::{Store, StoreError, WriteCtx};
use crate::util::ids;

/// Keys deleted per transaction.
pub const PURGE_BATCH: usize = 1000;
/// Transactions of [`PURGE_BATCH`] visits examined per upkeep: 50,000 keys
/// a minute at the default interval, so a table of a day's visitors at 10
/// million clicks a day is swept every few hours, in transactions short
/// enough that clicks queued behind one wait a few milliseconds.
pub const VISIT_SWEEP_STEPS: usize = 50;

/// Where the visits sweep goes on: after this key (`None`: from the start).
#[derive(Debug, Default)]
pub struct SweepCursor(Option<Vec<u8>>);

/// One sweep step: examine up to [`PURGE_BATCH`] visits after `after`,
/// delete those last seen `window_ms` or more before `now_ms`. Returns the
/// number deleted and the last key examined (`None` at the table's end).
fn sweep_batch(
    ctx: &mut WriteCtx<'_>,
    after: Option<&[u8]>,
    now_ms: u64,
    window_ms: u64,
) -> Result<(usize, Option<Vec<u8>>), StoreError> {
    let table = ctx.visits()?;
    let start = match after {
        Some(k) => Bound::Excluded(k),
        None => Bound::Unbounded,
    };
    let mut expired = Vec::new();
    let mut last = None;
    let mut seen = 0;
    for row in table.range::<&[u8]>((start, Bound::Unbounded))? {
        let (k, v) = row?;
        if now_ms.saturating_sub(v.value()) >= window_ms {
            expired.push(k.value().to_vec());
        }
        seen += 1;
        if seen >= PURGE_BATCH {
            last = Some(k.value().to_vec());
            break;
        }
    }
    for k in &expired {
        table.remove(k.as_slice())?;
    }
    Ok((expired.len(), last))
}

/// Sweep the visits table for up to [`VISIT_SWEEP_STEPS`] transactions,
/// or to its end, from `cursor` (which is left where the sweep stopped).
/// Returns the visits deleted.
pub async fn prune_visits(
    store: &Store,
    window_ms: u64,
    now_ms: u64,
    cursor: &mut SweepCursor,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for _ in 0..VISIT_SWEEP_STEPS {
        let after = cursor.0.take();
        let (n, last) = store
            .write(move |ctx| sweep_batch(ctx, after.as_deref(), now_ms, window_ms))
            .await?;
        deleted += n as u64;
        let at_end = last.is_none();
        cursor.0 = last;
        if at_end {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(deleted)
}

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
    // A purged click's external ID goes with it (few clicks have one).
    let mut external = Vec::new();
    for row in table.range::<&str>(..cutoff)? {
        let (k, v) = row?;
        keys.push(k.value().to_string());
        if which == Which::Clicks {
            let c: ClickRecord = records::decode(v.value())?;
            external.extend(c.external_id);
        }
        if keys.len() >= PURGE_BATCH {
            break;
        }
    }
    for k in &keys {
        table.remove(k.as_str())?;
    }
    for e in &external {
        ctx.external_ids()?.remove(e.as_str())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The sweep deletes only visits past the window, across several
    /// transactions, and resumes where it stopped.
    #[tokio::test(flavor = "multi_thread")]
    async fn sweep_forgets_only_expired_visits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let (now, window) = (100_000_000u64, 3_600_000u64);
        store
            .write(move |ctx| {
                for i in 0u32..2500 {
                    // Every third visit is fresh; the others are past the
                    // window (one exactly at its edge).
                    let ms = if i % 3 == 0 {
                        now - 10
                    } else {
                        now - window - u64::from(i % 2)
                    };
                    let key = i.to_be_bytes();
                    ctx.visits()?.insert(key.as_slice(), ms)?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let mut cursor = SweepCursor::default();
        let deleted = prune_visits(&store, window, now, &mut cursor)
            .await
            .unwrap();
        assert_eq!(deleted, 2500 - 834);
        assert!(cursor.0.is_none(), "the whole table was swept");
        let left = store
            .read(|rtx| {
                use redb::ReadableTableMetadata;
                Ok(rtx.open_table(crate::store::VISITS)?.len()?)
            })
            .await
            .unwrap();
        assert_eq!(left, 834);
        // Nothing more to forget; a later sweep starts over.
        assert_eq!(
            prune_visits(&store, window, now, &mut cursor)
                .await
                .unwrap(),
            0
        );
        store.close().await;
    }
}
