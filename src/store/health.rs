//! Postback health in storage: the counters the writer keeps beside every
//! postback event (per source, per 5-minute bucket, per result), the
//! durable bulk-replay jobs and the alerts with their state.
//!
//! Counters are written in the transaction of the event they count, so
//! the match rate, the refusals and the alerts can never disagree with the
//! events log after a `kill -9`, and reading them never scans events. A
//! row's key is `bucket (u32 BE) | source (u64 BE) | result`, so pruning
//! the buckets past [`KEEP_MS`] is one range delete, and a window of the
//! last hour reads 12 buckets × (sources × results seen) rows. Space is
//! bounded: results are the contract's codes (a fixed set), buckets are
//! kept 8 days. Why 5 minutes and not an hour: alert windows go down to
//! 5 minutes, and a 15-minute window read from hourly buckets would be
//! up to an hour wrong.

use redb::{ReadTransaction, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::records::Record;
use super::{StoreError, WriteCtx};

/// Counter rows (see the module documentation) -> count.
pub const HEALTH: TableDefinition<&[u8], u64> = TableDefinition::new("health");
/// Replay job ID -> [`ReplayJobRecord`].
pub const REPLAY_JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("replay_jobs");
/// Alert ID -> [`AlertRecord`].
pub const ALERTS: TableDefinition<u64, &[u8]> = TableDefinition::new("alerts");

/// Results that are not refusals (every other result is an error code).
pub const ACCEPTED: &[&str] = &["matched", "unmatched", "duplicate", "updated", "ignored"];

/// Width of a counter bucket.
pub const BUCKET_MS: u64 = 5 * 60 * 1000;
/// How long buckets are kept: the 7-day match rate, and a day of margin.
pub const KEEP_MS: u64 = 8 * 86_400_000;
/// The pseudo-bucket of all-time totals (the `/metrics` counters).
const TOTAL: u32 = u32::MAX - 1;
/// The pseudo-bucket of each source's last postback time (the value is
/// the time in ms, not a count).
const LAST: u32 = u32::MAX;
/// Not a source: server-wide counters (dead deliveries).
pub const GLOBAL: u64 = u64::MAX;
/// The result counted under [`GLOBAL`] when a delivery goes dead.
pub const DEAD_DELIVERY: &str = "delivery_dead";

fn key(bucket: u32, source: u64, result: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(12 + result.len());
    k.extend_from_slice(&bucket.to_be_bytes());
    k.extend_from_slice(&source.to_be_bytes());
    k.extend_from_slice(result.as_bytes());
    k
}

fn parse(k: &[u8]) -> Option<(u32, u64, &str)> {
    let (b, rest) = k.split_at_checked(4)?;
    let (s, r) = rest.split_at_checked(8)?;
    Some((
        u32::from_be_bytes(b.try_into().ok()?),
        u64::from_be_bytes(s.try_into().ok()?),
        std::str::from_utf8(r).ok()?,
    ))
}

pub fn bucket_of(ms: u64) -> u32 {
    u32::try_from(ms / BUCKET_MS).unwrap_or(TOTAL - 1)
}

/// Counter increments of a write batch, merged per row and applied once
/// just before the batch commits ([`flush`]): a batch of postbacks from one
/// source shares its bucket and total rows, so each is read and written
/// once per batch instead of three times per postback. Nothing in a write
/// job reads the counters (reports of health read them after the commit).
#[derive(Debug, Default)]
pub struct Pending {
    counts: std::collections::BTreeMap<Vec<u8>, u64>,
    /// Each source's newest postback time in the batch.
    last: std::collections::BTreeMap<u64, u64>,
}

impl Pending {
    fn bump(&mut self, k: Vec<u8>, by: u64) {
        let n = self.counts.entry(k).or_insert(0);
        *n = n.saturating_add(by);
    }
}

/// Count one postback result (`matched`, `duplicate`, a refusal code...)
/// of `source` at `ms`, and remember it as the source's last postback.
pub fn count(ctx: &mut WriteCtx<'_>, source: u64, result: &str, ms: u64) -> Result<(), StoreError> {
    let p = &mut ctx.health_pending;
    p.bump(key(bucket_of(ms), source, result), 1);
    p.bump(key(TOTAL, source, result), 1);
    if source != GLOBAL {
        let last = p.last.entry(source).or_insert(0);
        *last = (*last).max(ms);
    }
    Ok(())
}

/// Apply the batch's merged counts ([`count`]): one read-modify-write per
/// distinct row. Called by the writer after the batch's last job and before
/// its commit (a failed batch drops them with its transaction).
pub(crate) fn flush(ctx: &mut WriteCtx<'_>) -> Result<(), StoreError> {
    let p = std::mem::take(&mut ctx.health_pending);
    if p.counts.is_empty() && p.last.is_empty() {
        return Ok(());
    }
    let t = ctx.health()?;
    for (k, by) in p.counts {
        let n = t.get(k.as_slice())?.map_or(0, |v| v.value());
        t.insert(k.as_slice(), n.saturating_add(by))?;
    }
    for (source, ms) in p.last {
        let k = key(LAST, source, "");
        let prev = t.get(k.as_slice())?.map_or(0, |v| v.value());
        t.insert(k.as_slice(), prev.max(ms))?;
    }
    Ok(())
}

/// Forget buckets older than [`KEEP_MS`] before `now_ms`.
pub fn prune(ctx: &mut WriteCtx<'_>, now_ms: u64) -> Result<(), StoreError> {
    // Counts merged earlier in this batch first, so none lands in a
    // bucket after it was pruned.
    flush(ctx)?;
    let cutoff = bucket_of(now_ms.saturating_sub(KEEP_MS)).to_be_bytes();
    ctx.health()?.retain_in(..cutoff.as_slice(), |_, _| false)?;
    Ok(())
}

/// Counts per source and result over a window.
pub type Tallies = std::collections::BTreeMap<u64, std::collections::BTreeMap<String, u64>>;

/// The counts of the buckets that overlap `[from_ms, to_ms]`.
pub fn window(rtx: &ReadTransaction, from_ms: u64, to_ms: u64) -> Result<Tallies, StoreError> {
    let lo = bucket_of(from_ms).to_be_bytes();
    let hi = bucket_of(to_ms).saturating_add(1).min(TOTAL).to_be_bytes();
    read_range(rtx, &lo, &hi)
}

/// All-time counts per source and result.
pub fn totals(rtx: &ReadTransaction) -> Result<Tallies, StoreError> {
    read_range(rtx, &TOTAL.to_be_bytes(), &LAST.to_be_bytes())
}

/// Each source's last postback time (ms).
pub fn last_postbacks(
    rtx: &ReadTransaction,
) -> Result<std::collections::BTreeMap<u64, u64>, StoreError> {
    let t = rtx.open_table(HEALTH)?;
    let mut out = std::collections::BTreeMap::new();
    for row in t.range(LAST.to_be_bytes().as_slice()..)? {
        let (k, v) = row?;
        if let Some((_, source, _)) = parse(k.value()) {
            out.insert(source, v.value());
        }
    }
    Ok(out)
}

fn read_range(rtx: &ReadTransaction, lo: &[u8], hi: &[u8]) -> Result<Tallies, StoreError> {
    let t = rtx.open_table(HEALTH)?;
    let mut out = Tallies::new();
    for row in t.range(lo..hi)? {
        let (k, v) = row?;
        if let Some((_, source, result)) = parse(k.value()) {
            *out.entry(source)
                .or_default()
                .entry(result.to_string())
                .or_default() += v.value();
        }
    }
    Ok(out)
}

/// A bulk replay: replay every stored postback of `source` with result
/// `result` in `[since_ms, until_ms)` with the source's current mapping.
/// The cursor and the tallies are written in the transaction that
/// replays each page, so a restart resumes exactly where the last
/// committed page ended, with the same totals.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReplayJobRecord {
    pub source_id: u64,
    pub result: Option<String>,
    pub since_ms: u64,
    pub until_ms: u64,
    pub created_ms: u64,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// The last event ID examined; the next page starts after it.
    pub cursor: Option<String>,
    /// Events examined in the range (any source, any result).
    pub scanned: u64,
    /// Events of the source with the result that were replayed.
    pub replayed: u64,
    /// Replays by their new result: `matched`, `unmatched`, `duplicate`,
    /// `updated`, or a refusal code (still refused).
    pub results: Vec<(String, u64)>,
    pub finished_ms: Option<u64>,
    pub error: Option<String>,
}

impl Record for ReplayJobRecord {
    const VERSION: u8 = 1;
    const KIND: &'static str = "replay job";
}

impl ReplayJobRecord {
    pub fn add_result(&mut self, result: &str) {
        match self.results.iter_mut().find(|(r, _)| r == result) {
            Some((_, n)) => *n += 1,
            None => self.results.push((result.to_string(), 1)),
        }
    }

    pub fn result_count(&self, result: &str) -> u64 {
        self.results
            .iter()
            .find(|(r, _)| r == result)
            .map_or(0, |(_, n)| *n)
    }
}

/// Where an alert's messages go (secrets stored, shown masked).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NotifyRecord {
    /// `slack`, `telegram` or `webhook`.
    pub kind: String,
    /// Slack incoming webhook URL, or the webhook's URL.
    pub url: Option<String>,
    pub bot_token: Option<String>,
    pub chat_id: Option<String>,
    /// Telegram only: replaces the origin of api.telegram.org.
    pub base_url: Option<String>,
    /// Webhook only: `whsec_...`.
    pub secret: Option<String>,
}

/// One fired or resolved notification, for the alert's history.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AlertEvent {
    pub at_ms: u64,
    /// `fired` or `resolved`.
    pub kind: String,
    pub message: String,
    /// The delivery that carries it.
    pub delivery_id: String,
}

/// An alert rule and its state.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AlertRecord {
    pub rule: String,
    pub source_id: Option<u64>,
    /// As given (a decimal), per rule: a percentage, a count, megabytes.
    pub threshold: String,
    pub window_minutes: u32,
    /// Least time between two notifications of this alert.
    pub min_interval_minutes: u32,
    /// Least postbacks in the window for a rate rule to judge.
    pub min_events: u64,
    pub notify: NotifyRecord,
    pub created_ms: u64,
    /// `ok` or `firing`.
    pub state: String,
    pub since_ms: u64,
    pub last_notified_ms: Option<u64>,
    /// The last observed value, in the rule's unit.
    pub last_value: Option<String>,
    pub last_checked_ms: Option<u64>,
    /// The most recent fired/resolved notifications, oldest first.
    pub history: Vec<AlertEvent>,
}

/// Notifications kept in an alert's history.
pub const ALERT_HISTORY_LEN: usize = 50;

impl Record for AlertRecord {
    const VERSION: u8 = 1;
    const KIND: &'static str = "alert";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_by_bucket_then_source_and_parse_back() {
        let a = key(5, 9, "matched");
        let b = key(6, 1, "duplicate");
        assert!(a < b);
        assert_eq!(parse(&a), Some((5, 9, "matched")));
        assert!(key(bucket_of(u64::MAX), 1, "x") < key(TOTAL, 0, ""));
    }
}
