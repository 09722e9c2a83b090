//! Reading what was recorded: clicks, conversions and the events log
//! (lists with filters and cursors), replaying a stored postback request,
//! the database's counts, and consistent snapshots for backups.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use redb::ReadableTableMetadata;

use super::Error;
use super::query::{Page, Query, get_record, scan};
use crate::app::App;
use crate::inbound::postback::Status;
use crate::ingest::{self, Outcome, ReplayError};
use crate::store::records::{ConversionRecord, EventRecord};
use crate::store::{CLICKS, CONVERSIONS, EVENTS, StoreError};
use crate::util::clock::now_ms;
use crate::util::ids;
use crate::util::text::truncate;

pub async fn conversion(app: &App, id: &str) -> Result<ConversionRecord, Error> {
    get_record(app, CONVERSIONS, id, "unknown_conversion").await
}

pub async fn event(app: &App, id: &str) -> Result<EventRecord, Error> {
    get_record(app, EVENTS, id, "unknown_event").await
}

/// Conversions newest first; filters `source`, `status`, `matched`, `test`,
/// `since`, `until`, `cursor`, `limit`.
pub async fn conversions(app: &App, q: &Query) -> Result<Page<ConversionRecord>, Error> {
    let limit = q.limit()?;
    let (lo, hi) = q.range_bounds()?;
    let source = q.u64("source")?;
    let status = match q.get("status") {
        None => None,
        Some(s) => Some(
            Status::parse(s)
                .ok_or_else(|| {
                    Error::invalid("invalid_status", format!("status must be {}", Status::LIST))
                })?
                .as_str(),
        ),
    };
    let matched = match q.get("matched") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(Error::invalid(
                "invalid_filter",
                "matched must be true or false",
            ));
        }
    };
    // Networks' test transactions (IPN) are flagged; `test=false` leaves
    // them out.
    let test = match q.get("test") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(Error::invalid(
                "invalid_filter",
                "test must be true or false",
            ));
        }
    };
    Ok(app
        .store
        .read(move |rtx| {
            scan::<ConversionRecord, _>(rtx, CONVERSIONS, &lo, hi.as_deref(), limit, |c| {
                source.is_none_or(|s| c.source_id == s)
                    && status.is_none_or(|s| c.status == s)
                    && matched.is_none_or(|m| c.matched == m)
                    && test.is_none_or(|t| c.test == t)
            })
        })
        .await?)
}

/// The events log newest first; filters `source`, `result`, `since`,
/// `until`, `cursor`, `limit`.
pub async fn events(app: &App, q: &Query) -> Result<Page<EventRecord>, Error> {
    let limit = q.limit()?;
    let (lo, hi) = q.range_bounds()?;
    let source = q.u64("source")?;
    let result = q.get("result").map(str::to_string);
    Ok(app
        .store
        .read(move |rtx| {
            scan::<EventRecord, _>(rtx, EVENTS, &lo, hi.as_deref(), limit, |e| {
                source.is_none_or(|s| e.source_id == s)
                    && result.as_deref().is_none_or(|r| e.result == r)
            })
        })
        .await?)
}

/// Run a stored postback request again with the source's current mapping;
/// the replay is a new event (`replay_of` the original).
pub async fn replay(app: &App, id: &str) -> Result<Outcome, Error> {
    let key = id.to_string();
    let limits = app.limits;
    let now = now_ms();
    let res = app
        .store
        .write(move |ctx| match ingest::replay(ctx, &key, &limits, now) {
            Ok(o) => Ok(Ok(o)),
            Err(ReplayError::Store(e)) => Err(e),
            Err(e) => Ok(Err(e)),
        })
        .await?;
    res.map_err(|e| match e {
        ReplayError::NotFound => Error::not_found(
            "unknown_event",
            format!("no event with id `{}`", truncate(id, 64)),
        ),
        ReplayError::SourceGone(s) => Error::conflict(
            "source_deleted",
            format!("the event's source {s} was deleted; it cannot be replayed"),
        ),
        ReplayError::Store(e) => e.into(),
    })
}

/// Record counts and the writer's commit figures.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub clicks: u64,
    pub conversions: u64,
    pub events: u64,
    pub commits: u64,
    pub committed_writes: u64,
    pub max_batch: u64,
    pub failed_commits: u64,
    pub commit_micros: u64,
}

pub async fn stats(app: &App) -> Result<Stats, Error> {
    let (clicks, conversions, events) = app
        .store
        .read(|rtx| {
            let n = |t| -> Result<u64, StoreError> { Ok(rtx.open_table(t)?.len()?) };
            Ok((n(CLICKS)?, n(CONVERSIONS)?, n(EVENTS)?))
        })
        .await?;
    let s = &app.store.stats;
    Ok(Stats {
        clicks,
        conversions,
        events,
        commits: s.commits.load(Ordering::Relaxed),
        committed_writes: s.committed_jobs.load(Ordering::Relaxed),
        max_batch: s.max_batch.load(Ordering::Relaxed),
        failed_commits: s.failed_commits.load(Ordering::Relaxed),
        commit_micros: s.commit_micros.load(Ordering::Relaxed),
    })
}

/// A consistent snapshot of the database in a new file in the data dir.
/// Returns the file and the number of records copied; the caller streams
/// it and removes it.
pub async fn snapshot(app: &App) -> Result<(PathBuf, u64), Error> {
    let tmp = app
        .config
        .data_dir
        .join(format!(".backup-{}.redb", ids::new_id(now_ms())));
    match app.store.snapshot(tmp.clone()).await {
        Ok(n) => Ok((tmp, n)),
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(e.into())
        }
    }
}
