//! Bulk replay in the writer: one page of a durable replay job per call,
//! inside one transaction with the replays it makes.
//!
//! The job's cursor, its tallies and the conversions its replays create
//! commit together, so after a `kill -9` the job resumes after the last
//! committed page and ends with the totals an uninterrupted run has. A
//! page examines at most [`PAGE`] events, so a range of millions of events
//! never holds the writer for long: other writes interleave between pages.
//! Each replay goes through [`super::replay`], that is through the same
//! dedup as a live postback, so a second job over the same range, or a
//! replay of an event already replayed, creates nothing new.

use std::ops::Bound;

use redb::ReadableTable;

use super::{ReplayError, replay};
use crate::inbound::query::Limits;
use crate::store::health::ReplayJobRecord;
use crate::store::records::{self, EventRecord};
use crate::store::{StoreError, WriteCtx};
use crate::util::ids;

/// Events examined per page (per write transaction).
pub const PAGE: usize = 200;

/// Job states.
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";

/// Store a new job; returns its ID.
pub fn create_job(ctx: &mut WriteCtx<'_>, job: &ReplayJobRecord) -> Result<u64, StoreError> {
    let id = crate::store::next_counter(ctx, "next_replay_job")?;
    ctx.replay_jobs()?
        .insert(id, records::encode(job).as_slice())?;
    Ok(id)
}

/// Replay the next page of job `id`; returns the job as written, `None`
/// when there is no such job. A job that is not running is returned as
/// it is.
pub fn replay_page(
    ctx: &mut WriteCtx<'_>,
    id: u64,
    limits: &Limits,
    now_ms: u64,
) -> Result<Option<ReplayJobRecord>, StoreError> {
    let Some(bytes) = ctx.replay_jobs()?.get(id)?.map(|v| v.value().to_vec()) else {
        return Ok(None);
    };
    let mut job: ReplayJobRecord = records::decode(&bytes)?;
    if job.state != RUNNING {
        return Ok(Some(job));
    }
    let hi = ids::lower_bound(job.until_ms);
    let lo = ids::lower_bound(job.since_ms);
    let lower = match &job.cursor {
        Some(c) => Bound::Excluded(c.clone()),
        None => Bound::Included(lo),
    };
    let mut due = Vec::new();
    let mut scanned = 0usize;
    let mut last = None;
    {
        let t = ctx.events()?;
        let range = (
            lower.as_ref().map(String::as_str),
            Bound::Excluded(hi.as_str()),
        );
        for row in t.range::<&str>(range)? {
            let (k, v) = row?;
            scanned += 1;
            let key = k.value().to_string();
            let ev: EventRecord = records::decode(v.value())?;
            // Replays themselves are never replayed: their original is in
            // the range, and it is the network's request.
            if ev.source_id == job.source_id
                && ev.replay_of.is_none()
                && job.result.as_deref().is_none_or(|r| ev.result == r)
            {
                due.push(key.clone());
            }
            last = Some(key);
            if scanned >= PAGE {
                break;
            }
        }
    }
    for event_id in due {
        match replay(ctx, &event_id, limits, now_ms) {
            Ok(o) => {
                job.replayed += 1;
                job.add_result(o.answer.result());
            }
            Err(ReplayError::Store(e)) => return Err(e),
            Err(ReplayError::NotFound) => {}
            Err(ReplayError::SourceGone(s)) => {
                job.state = FAILED.into();
                job.error = Some(format!(
                    "source {s} was deleted while the job ran; the events left cannot be replayed"
                ));
                job.finished_ms = Some(now_ms);
                break;
            }
        }
    }
    job.scanned += scanned as u64;
    if last.is_some() {
        job.cursor = last;
    }
    if scanned < PAGE && job.state == RUNNING {
        job.state = DONE.into();
        job.finished_ms = Some(now_ms);
    }
    ctx.replay_jobs()?
        .insert(id, records::encode(&job).as_slice())?;
    Ok(Some(job))
}

/// The first job still running, for the runner after a restart.
pub fn first_running(rtx: &redb::ReadTransaction) -> Result<Option<u64>, StoreError> {
    let t = rtx.open_table(crate::store::health::REPLAY_JOBS)?;
    for row in t.iter()? {
        let (k, v) = row?;
        let job: ReplayJobRecord = records::decode(v.value())?;
        if job.state == RUNNING {
            return Ok(Some(k.value()));
        }
    }
    Ok(None)
}
