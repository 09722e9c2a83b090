//! Bulk replay: `POST /api/v1/events/replay` starts a durable job that
//! replays every stored postback of a source with a given result in a time
//! range with the source's current mapping (the fix for a day of
//! `missing_click_id` after a wrong mapping); `GET` on the job shows its
//! progress. The job is a record in redb, processed page by page by the
//! runner in `app::replay` through the writer (`ingest::bulk`), so it
//! survives a restart and resumes from its cursor.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Error;
use crate::app::App;
use crate::ingest::bulk;
use crate::store::health::{REPLAY_JOBS, ReplayJobRecord};
use crate::store::records;
use crate::util::clock::{now_ms, parse_instant, rfc3339};
use crate::util::text::truncate;

/// What to replay.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub source: Option<u64>,
    /// An event result (`missing_click_id`, `unsubstituted_macro`,
    /// `unmatched`...); every result when absent.
    pub result: Option<String>,
    /// RFC 3339 or Unix seconds; default: the beginning.
    pub since: Option<Value>,
    /// RFC 3339 or Unix seconds, exclusive; default: now.
    pub until: Option<Value>,
}

/// A job's progress, as the API and the dashboard show it.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayJob {
    pub id: u64,
    pub source: u64,
    pub result: Option<String>,
    pub since: String,
    pub until: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// Events examined in the range.
    pub scanned: u64,
    /// Events of the source with the result, replayed.
    pub replayed: u64,
    /// Replays that matched a click (new conversions).
    pub matched: u64,
    /// New conversions on an unknown click ID.
    pub unmatched: u64,
    /// New conversions: matched + unmatched.
    pub created: u64,
    /// Replays whose conversion already existed (`duplicate`, from an
    /// earlier replay or a later retry of the network): nothing new.
    pub unchanged: u64,
    /// Replays that changed a stored conversion's status.
    pub updated: u64,
    /// Replays still refused, by code (the mapping still does not fit).
    pub still_refused: std::collections::BTreeMap<String, u64>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

impl ReplayJob {
    fn from_record(id: u64, r: &ReplayJobRecord) -> ReplayJob {
        let matched = r.result_count("matched");
        let unmatched = r.result_count("unmatched");
        let known = ["matched", "unmatched", "duplicate", "updated", "ignored"];
        ReplayJob {
            id,
            source: r.source_id,
            result: r.result.clone(),
            since: rfc3339(r.since_ms),
            until: rfc3339(r.until_ms),
            state: r.state.clone(),
            scanned: r.scanned,
            replayed: r.replayed,
            matched,
            unmatched,
            created: matched + unmatched,
            unchanged: r.result_count("duplicate") + r.result_count("ignored"),
            updated: r.result_count("updated"),
            still_refused: r
                .results
                .iter()
                .filter(|(k, _)| !known.contains(&k.as_str()))
                .map(|(k, n)| (k.clone(), *n))
                .collect(),
            created_at: rfc3339(r.created_ms),
            finished_at: r.finished_ms.map(rfc3339),
            error: r.error.clone(),
        }
    }
}

fn instant(v: &Option<Value>, field: &str) -> Result<Option<u64>, Error> {
    let bad = || {
        Error::invalid(
            "invalid_time",
            format!(
                "{field} must be an RFC 3339 time such as 2026-11-30T00:00:00Z or Unix seconds"
            ),
        )
    };
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_instant(s.trim()).map(Some).ok_or_else(bad),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|s| s.checked_mul(1000))
            .map(Some)
            .ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

/// Start a bulk replay. The job runs in the background; poll
/// [`get_replay`] for its progress.
pub async fn start_replay(app: &App, req: ReplayRequest) -> Result<ReplayJob, Error> {
    let Some(source) = req.source else {
        return Err(Error::invalid(
            "missing_source",
            "source is required: the ID of the source whose events to replay, e.g. \
             {\"source\": 3, \"result\": \"missing_click_id\", \"since\": \"2026-11-30T00:00:00Z\"}",
        ));
    };
    if !app.store.catalog().sources.contains_key(&source) {
        return Err(Error::invalid(
            "unknown_source",
            format!("no source with id {source}; list them with GET /api/v1/sources"),
        ));
    }
    let result = match req.result.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) if r.len() <= 64 && r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') => {
            Some(r.to_string())
        }
        Some(r) => {
            return Err(Error::invalid(
                "invalid_result",
                format!(
                    "result `{}` is not an event result; use a code such as missing_click_id, \
                     unsubstituted_macro or unmatched (GET /api/v1/events shows them)",
                    truncate(r, 40)
                ),
            ));
        }
    };
    let now = now_ms();
    let since = instant(&req.since, "since")?.unwrap_or(0);
    let until = instant(&req.until, "until")?.unwrap_or(now).min(now);
    if since >= until {
        return Err(Error::invalid(
            "invalid_range",
            "since must be before until (and until not in the future): the range is empty",
        ));
    }
    let job = ReplayJobRecord {
        source_id: source,
        result,
        since_ms: since,
        until_ms: until,
        created_ms: now,
        state: bulk::RUNNING.into(),
        ..Default::default()
    };
    let rec = job.clone();
    let id = app
        .store
        .write(move |ctx| bulk::create_job(ctx, &rec))
        .await?;
    app.replay_wake.notify_one();
    Ok(ReplayJob::from_record(id, &job))
}

/// A job's progress.
pub async fn get_replay(app: &App, id: u64) -> Result<ReplayJob, Error> {
    let rec = app
        .store
        .read(move |rtx| {
            let t = rtx.open_table(REPLAY_JOBS)?;
            match t.get(id)? {
                Some(v) => Ok(Some(records::decode::<ReplayJobRecord>(v.value())?)),
                None => Ok(None),
            }
        })
        .await?;
    rec.map(|r| ReplayJob::from_record(id, &r)).ok_or_else(|| {
        Error::not_found(
            "unknown_replay",
            format!("no replay job {id}; start one with POST /api/v1/events/replay"),
        )
    })
}
