//! Listing: the options of list operations (from a query string or a
//! form), time-ordered key ranges with cursors, and the bounded newest-first
//! table scan every listing uses.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::Error;
use crate::app::App;
use crate::store::StoreError;
use crate::store::records;
use crate::util::clock::parse_instant;
use crate::util::ids;
use crate::util::text::truncate;

/// Page size limits for list operations.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;
/// Records examined per list request at most; past it the page ends early
/// with a cursor, so one request never scans a huge table.
const SCAN_BUDGET: usize = 100_000;

/// Options of a list operation, by name (`limit`, `cursor`, `since`,
/// `until` and the listing's own filters). Empty values count as absent.
#[derive(Default, Debug, Clone)]
pub struct Query(BTreeMap<String, String>);

impl Query {
    /// From a URL query string (`a=1&b=2`).
    pub fn parse(q: &str) -> Query {
        Query(form_urlencoded::parse(q.as_bytes()).into_owned().collect())
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn limit(&self) -> Result<usize, Error> {
        match self.get("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    Error::invalid("invalid_limit", format!("limit must be 1 to {MAX_LIMIT}"))
                }),
        }
    }

    pub fn time(&self, k: &str) -> Result<Option<u64>, Error> {
        self.get(k)
            .map(|v| {
                parse_instant(v).ok_or_else(|| {
                    Error::invalid(
                        "invalid_time",
                        format!("{k} must be RFC 3339 (2026-01-31T00:00:00Z) or Unix seconds"),
                    )
                })
            })
            .transpose()
    }

    pub fn u64(&self, k: &str) -> Result<Option<u64>, Error> {
        self.get(k)
            .map(|v| {
                v.parse()
                    .map_err(|_| Error::invalid("invalid_filter", format!("{k} must be a number")))
            })
            .transpose()
    }

    /// Key range of a newest-first listing: `since` <= time < `until`,
    /// strictly before `cursor` and strictly after `after`.
    pub fn range_bounds(&self) -> Result<(String, Option<String>), Error> {
        let mut lo = self
            .time("since")?
            .map(ids::lower_bound)
            .unwrap_or_default();
        // `after`: only keys newer than this one (a live log's next poll).
        // The smallest key greater than it is itself plus a NUL byte.
        if let Some(after) = self.get("after") {
            let next = format!("{after}\0");
            if next > lo {
                lo = next;
            }
        }
        let until = self.time("until")?.map(ids::lower_bound);
        let cursor = self.get("cursor").map(str::to_string);
        let hi = match (until, cursor) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok((lo, hi))
    }
}

/// One page of a listing: `(key, record)` rows and the cursor of the next
/// page, if there may be one.
pub type Page<R> = (Vec<(String, R)>, Option<String>);

/// Scan a time-keyed table newest first, keeping rows that pass `keep`.
pub fn scan<R: records::Record, F: Fn(&R) -> bool>(
    rtx: &redb::ReadTransaction,
    table: redb::TableDefinition<&'static str, &'static [u8]>,
    lo: &str,
    hi: Option<&str>,
    limit: usize,
    keep: F,
) -> Result<Page<R>, StoreError> {
    let t = rtx.open_table(table)?;
    let upper = match hi {
        Some(h) => Bound::Excluded(h),
        None => Bound::Unbounded,
    };
    let range = t.range::<&str>((Bound::Included(lo), upper))?;
    let mut out = Vec::new();
    let mut scanned = 0usize;
    for row in range.rev() {
        let (k, v) = row?;
        scanned += 1;
        let key = k.value().to_string();
        let rec: R = records::decode(v.value())?;
        if keep(&rec) {
            out.push((key.clone(), rec));
            if out.len() == limit {
                return Ok((out, Some(key)));
            }
        }
        if scanned >= SCAN_BUDGET {
            return Ok((out, Some(key)));
        }
    }
    Ok((out, None))
}

/// One record by key from a string-keyed table, or `NotFound` with `code`
/// (`unknown_click` says "no click with id ...").
pub async fn get_record<R: records::Record + Send + 'static>(
    app: &App,
    table: redb::TableDefinition<'static, &'static str, &'static [u8]>,
    id: &str,
    code: &'static str,
) -> Result<R, Error> {
    let key = id.to_string();
    app.store
        .read(move |rtx| {
            let t = rtx.open_table(table)?;
            let v = t.get(key.as_str())?;
            v.map(|v| records::decode::<R>(v.value())).transpose()
        })
        .await?
        .ok_or_else(|| {
            let what = code.trim_start_matches("unknown_");
            Error::not_found(code, format!("no {what} with id `{}`", truncate(id, 64)))
        })
}
