//! Report roll-ups: counters per 15-minute UTC bucket × the report's
//! dimensions, written by the writer in the same transaction as the click,
//! conversion or status change they count, so `kill -9` can never leave a
//! report disagreeing with the records.
//!
//! Why 15 minutes: every time zone in use has an offset that is a multiple
//! of 15 minutes, so a day or an hour in any zone (Kolkata's +05:30,
//! Kathmandu's +05:45, a DST change) starts on a bucket edge, and a report
//! in that zone sums whole buckets.
//!
//! A row's key is `part | bucket | currency | dimension values`:
//! - `part` keeps clicks apart from conversions, and conversions counted at
//!   their click's time (time basis `click`) apart from conversions counted
//!   at the time of the conversion or of its status change (`conversion`).
//!   A report reads the clicks part and one conversion part.
//! - `currency` is the money's currency (conversions; a link's cost): money
//!   is summed per currency and converted only when a report is read, with
//!   the rates of that moment.
//! - the values of every dimension in [`DIMS`] order, each cut to
//!   [`MAX_VALUE`] bytes. Clicks that share every value in a bucket share
//!   one row, so a row count is at most the click count and usually far
//!   below it.
//!
//! Beside the 15-minute rows, the same counts are kept per UTC hour and
//! per UTC day ([`Level`], `keys.rs`), so a report covers the whole hours
//! and days of its range with one row per combination ([`cover`]). The
//! writer merges a batch's increments per row and applies them once, just
//! before the batch commits (`levels.rs`), so the coarse rows that many
//! clicks of a batch share cost one read-modify-write per batch.

mod keys;
mod levels;
mod placement;

pub use keys::*;
pub use levels::*;
pub use placement::{Placement, Rows, prepare};

use redb::ReadableTable;
use rust_decimal::Decimal;

use super::records::{ClickRecord, ConversionRecord, LinkCost};
use super::{StoreError, WriteCtx};

/// Width of a bucket.
pub const BUCKET_MS: u64 = 15 * 60 * 1000;

/// The stored dimensions, in key order. Time dimensions (hour, day, week,
/// month) come from the bucket.
pub const DIMS: [&str; 19] = [
    "source",
    "link",
    "campaign",
    "country",
    "device",
    "os",
    "browser",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "sub1",
    "sub2",
    "sub3",
    "sub4",
    "sub5",
    "event",
];
pub const NDIMS: usize = DIMS.len();
/// Index of a stored dimension by name.
pub fn dim_index(name: &str) -> Option<usize> {
    DIMS.iter().position(|d| *d == name)
}
pub const LINK: usize = 1;
pub const EVENT: usize = 18;
/// Longest stored value of one dimension (bytes; longer values are cut on a
/// character boundary, so a report row never holds a 1 KB referrer).
pub const MAX_VALUE: usize = 100;

/// The sub-ID slots a link can fill from click parameters.
pub const SUBS: [&str; 5] = ["sub1", "sub2", "sub3", "sub4", "sub5"];

/// Counters of one row. Signed: with time basis `conversion`, a refund
/// subtracts revenue in the bucket where it happens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub clicks: i64,
    pub unique_clicks: i64,
    pub bot_clicks: i64,
    /// Approved conversions, and of those leads and purchases.
    pub conversions: i64,
    pub leads: i64,
    pub purchases: i64,
    pub pending_conversions: i64,
    /// Refunded and charged-back conversions.
    pub refunds: i64,
    /// Approved conversions without a click.
    pub unmatched_conversions: i64,
    pub revenue: Decimal,
    pub pending_revenue: Decimal,
    pub refunded_revenue: Decimal,
    pub unmatched_revenue: Decimal,
    pub cost: Decimal,
}

const INTS: usize = 9;
const MONEY: usize = 5;
/// Value layouts. 1 (read only): a version byte, then the integers (i64 LE)
/// and the money (rust_decimal's 16-byte form) in field order, 153 bytes.
/// 2 (written): a version byte, a bitmap of the fields that are not zero
/// (u16 LE, field order), then each of those: an integer as a zigzag
/// LEB128 varint, money as its scale (a byte) and its mantissa (a zigzag
/// varint). Most counters of a row are zero (a click row has two
/// integers), so a row is about 7 bytes instead of 153: a report's rows
/// fit in far fewer pages, and in redb's cache. A row written in layout 1
/// is read as is and rewritten in layout 2 when next updated.
const V1: u8 = 1;
const V1_LEN: usize = 1 + INTS * 8 + MONEY * 16;
const V2: u8 = 2;

impl Counters {
    fn ints(&self) -> [i64; INTS] {
        [
            self.clicks,
            self.unique_clicks,
            self.bot_clicks,
            self.conversions,
            self.leads,
            self.purchases,
            self.pending_conversions,
            self.refunds,
            self.unmatched_conversions,
        ]
    }

    fn money(&self) -> [Decimal; MONEY] {
        [
            self.revenue,
            self.pending_revenue,
            self.refunded_revenue,
            self.unmatched_revenue,
            self.cost,
        ]
    }

    fn from_parts(i: [i64; INTS], m: [Decimal; MONEY]) -> Counters {
        Counters {
            clicks: i[0],
            unique_clicks: i[1],
            bot_clicks: i[2],
            conversions: i[3],
            leads: i[4],
            purchases: i[5],
            pending_conversions: i[6],
            refunds: i[7],
            unmatched_conversions: i[8],
            revenue: m[0],
            pending_revenue: m[1],
            refunded_revenue: m[2],
            unmatched_revenue: m[3],
            cost: m[4],
        }
    }

    /// `self += other`. Field by field (the writer merges every increment
    /// of a batch through here).
    pub fn add(&mut self, o: &Counters) {
        self.clicks += o.clicks;
        self.unique_clicks += o.unique_clicks;
        self.bot_clicks += o.bot_clicks;
        self.conversions += o.conversions;
        self.leads += o.leads;
        self.purchases += o.purchases;
        self.pending_conversions += o.pending_conversions;
        self.refunds += o.refunds;
        self.unmatched_conversions += o.unmatched_conversions;
        // Most deltas carry one non-zero amount or none, and a Decimal
        // addition costs ~45 instructions even of zero (the writer merges
        // ~17 rows per conversion).
        for (acc, d) in [
            (&mut self.revenue, o.revenue),
            (&mut self.pending_revenue, o.pending_revenue),
            (&mut self.refunded_revenue, o.refunded_revenue),
            (&mut self.unmatched_revenue, o.unmatched_revenue),
            (&mut self.cost, o.cost),
        ] {
            if !d.is_zero() {
                *acc += d;
            }
        }
    }

    pub fn negated(&self) -> Counters {
        let (a, x) = (self.ints(), self.money());
        Counters::from_parts(a.map(|v| -v), x.map(|v| -v))
    }

    pub fn is_zero(&self) -> bool {
        self.ints().iter().all(|v| *v == 0) && self.money().iter().all(|v| v.is_zero())
    }

    pub fn encode(&self) -> Vec<u8> {
        let (ints, money) = (self.ints(), self.money());
        let mut out = Vec::with_capacity(24);
        out.extend_from_slice(&[V2, 0, 0]);
        let mut present = 0u16;
        for (i, v) in ints.iter().enumerate() {
            if *v != 0 {
                present |= 1 << i;
                put_varint(&mut out, zigzag(i128::from(*v)));
            }
        }
        for (i, m) in money.iter().enumerate() {
            if !m.is_zero() {
                present |= 1 << (INTS + i);
                out.push(m.scale() as u8);
                put_varint(&mut out, zigzag(m.mantissa()));
            }
        }
        out[1..3].copy_from_slice(&present.to_le_bytes());
        out
    }

    pub fn decode(b: &[u8]) -> Result<Counters, StoreError> {
        let bad = || StoreError::Corrupt("roll-up row has an unknown layout".into());
        match b.first() {
            Some(&V1) if b.len() == V1_LEN => {
                let ints = std::array::from_fn(|k| {
                    let s = 1 + k * 8;
                    i64::from_le_bytes(b[s..s + 8].try_into().unwrap_or([0; 8]))
                });
                let money = std::array::from_fn(|k| {
                    let s = 1 + INTS * 8 + k * 16;
                    Decimal::deserialize(b[s..s + 16].try_into().unwrap_or([0; 16]))
                });
                Ok(Counters::from_parts(ints, money))
            }
            Some(&V2) if b.len() >= 3 => {
                let present = u16::from_le_bytes([b[1], b[2]]);
                let mut rest = &b[3..];
                let mut ints = [0i64; INTS];
                let mut money = [Decimal::ZERO; MONEY];
                for (i, v) in ints.iter_mut().enumerate() {
                    if present & (1 << i) != 0 {
                        *v = i64::try_from(unzigzag(take_varint(&mut rest).ok_or_else(bad)?))
                            .map_err(|_| bad())?;
                    }
                }
                for (i, m) in money.iter_mut().enumerate() {
                    if present & (1 << (INTS + i)) != 0 {
                        let (&scale, tail) = rest.split_first().ok_or_else(bad)?;
                        rest = tail;
                        let mantissa = unzigzag(take_varint(&mut rest).ok_or_else(bad)?);
                        *m = Decimal::try_from_i128_with_scale(mantissa, u32::from(scale))
                            .map_err(|_| bad())?;
                    }
                }
                if !rest.is_empty() || present >> (INTS + MONEY) != 0 {
                    return Err(bad());
                }
                Ok(Counters::from_parts(ints, money))
            }
            _ => Err(bad()),
        }
    }
}

fn zigzag(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

fn unzigzag(v: u128) -> i128 {
    ((v >> 1) as i128) ^ -((v & 1) as i128)
}

/// LEB128: seven bits a byte, low first, the high bit set on all but the
/// last.
fn put_varint(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(b: &mut &[u8]) -> Option<u128> {
    let mut v = 0u128;
    for (i, &byte) in b.iter().enumerate().take(19) {
        v |= u128::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *b = &b[i + 1..];
            return Some(v);
        }
    }
    None
}

/// `s` cut to at most [`MAX_VALUE`] bytes.
fn cut(s: &str) -> &str {
    crate::util::text::truncate(s, MAX_VALUE)
}

/// The dimension values of a click, in [`DIMS`] order (`event` empty).
pub fn click_dims(c: &ClickRecord) -> Vec<String> {
    let param = |name: &str| {
        c.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| cut(v).to_string())
            .unwrap_or_default()
    };
    let mut d = Vec::with_capacity(NDIMS);
    d.push(c.source_id.map(|s| s.to_string()).unwrap_or_default());
    d.push(cut(&c.slug).to_string());
    d.push(cut(c.campaign.as_deref().unwrap_or("")).to_string());
    d.push(c.country.clone().unwrap_or_default());
    d.push(c.device.clone());
    d.push(cut(c.os.as_deref().unwrap_or("")).to_string());
    d.push(cut(c.browser.as_deref().unwrap_or("")).to_string());
    d.push(
        c.referrer
            .as_deref()
            .map(referrer_host)
            .map(|h| cut(&h).to_string())
            .unwrap_or_default(),
    );
    for u in [
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_content",
        "utm_term",
    ] {
        d.push(param(u));
    }
    for k in 0..SUBS.len() {
        d.push(cut(c.subs.get(k).map(String::as_str).unwrap_or("")).to_string());
    }
    d.push(String::new());
    d
}

/// The host of a referrer URL, lowercase (`https://www.Google.com/x` →
/// `www.google.com`); empty when it has none.
pub fn referrer_host(r: &str) -> String {
    let rest = match r.find("://") {
        Some(i) => &r[i + 3..],
        None => return String::new(),
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    host.to_ascii_lowercase()
}

/// Add `delta` to rows given by their 15-minute keys (as [`keys`] makes
/// them), and to the same rows at every coarser level their cube keeps.
///
/// Nothing is written yet: the increments are merged into the batch's
/// [`Pending`] and applied by [`flush`], which the writer calls in the
/// same transaction just before its commit. So nothing in a write job may
/// read the roll-up table (none does: reports read it in read
/// transactions, after the commit).
pub fn add(ctx: &mut WriteCtx<'_>, keys: &[Vec<u8>], delta: &Counters) -> Result<(), StoreError> {
    if delta.is_zero() {
        return Ok(());
    }
    for k in keys {
        ctx.rollups_pending.add_levels(k, delta);
    }
    Ok(())
}

/// [`add`] for rows given by their final keys ([`stored_keys`]).
pub fn add_stored(
    ctx: &mut WriteCtx<'_>,
    keys: Vec<Vec<u8>>,
    delta: &Counters,
) -> Result<(), StoreError> {
    if !delta.is_zero() {
        ctx.rollups_pending.add_stored(keys, delta);
    }
    Ok(())
}

/// Apply the batch's merged increments (see [`add`]): one read-modify-write
/// per distinct row. Called by the writer after the batch's last job and
/// before its commit; when a job fails the batch's transaction is dropped
/// and its `WriteCtx` with it, so nothing of the failed batch is applied.
pub(crate) fn flush(ctx: &mut WriteCtx<'_>) -> Result<(), StoreError> {
    if ctx.rollups_pending.is_empty() {
        return Ok(());
    }
    let mut pending = std::mem::take(&mut ctx.rollups_pending);
    pending.flush(ctx.rollups()?)
}

/// The sub1..sub5 values of a click: the click parameters the link names.
pub fn click_subs(link_subs: &[(String, String)], params: &[(String, String)]) -> Vec<String> {
    let mut out = vec![String::new(); SUBS.len()];
    for (slot, param) in link_subs {
        if let Some(i) = SUBS.iter().position(|s| s == slot)
            && let Some((_, v)) = params.iter().find(|(k, _)| k == param)
        {
            out[i] = cut(v).to_string();
        }
    }
    while out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    out
}

/// What one click costs under its link's model: CPC's amount, or (auto-cost)
/// the click's own parameter when it is a non-negative decimal. `None`
/// for the other models and for a missing or malformed price (the click is
/// still recorded; a malformed price costs nothing rather than a guess).
pub fn click_cost(
    cost: Option<&LinkCost>,
    params: &[(String, String)],
) -> Option<(String, String)> {
    let cost = cost?;
    let currency = cost.currency.clone().unwrap_or_default();
    let amount = match cost.model.as_str() {
        "cpc" => cost.amount.clone()?,
        "param" => {
            let name = cost.param.as_deref()?;
            let raw = params.iter().find(|(k, _)| k == name)?.1.trim();
            let d: Decimal = raw.parse().ok()?;
            if d.is_sign_negative() || raw.contains(['e', 'E']) {
                return None;
            }
            d.normalize().to_string()
        }
        _ => return None,
    };
    Some((amount, currency))
}

/// A click's row and counters, computed on the handler's thread (the
/// writer only adds them).
pub fn click_row(c: &ClickRecord) -> (RowKeys, Counters) {
    let (currency, cost) = match &c.cost {
        Some((amount, cur)) if !c.bot => (cur.as_str(), amount.parse().unwrap_or_default()),
        _ => ("", Decimal::ZERO),
    };
    let counters = if c.bot {
        Counters {
            bot_clicks: 1,
            ..Counters::default()
        }
    } else {
        Counters {
            clicks: 1,
            unique_clicks: i64::from(c.unique),
            cost,
            ..Counters::default()
        }
    };
    (
        keys(Part::Clicks, bucket_of(c.ms), currency, &click_dims(c)),
        counters,
    )
}

/// How a conversion's cost is computed: fixed when the conversion was
/// created (from its link's cost model then), so a later change of the
/// model never rewrites what was counted.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ConversionCost {
    /// A fixed amount per approved conversion, in a currency.
    Cpa(String, String),
    /// A percentage of the approved revenue.
    Revshare(String),
}

/// What a conversion adds to its rows in one status: `(currency,
/// counters)` pairs (a CPA cost may be in another currency than the
/// revenue).
pub fn contribution(c: &ConversionRecord, status: &str) -> Vec<(String, Counters)> {
    let amount: Decimal = c
        .amount
        .as_deref()
        .and_then(|a| a.parse().ok())
        .unwrap_or_default();
    let mut main = Counters::default();
    let mut extra = None;
    if !c.matched {
        if status == "approved" {
            main.unmatched_conversions = 1;
            main.unmatched_revenue = amount;
        }
        return vec![(c.currency.clone(), main)];
    }
    match status {
        "approved" => {
            main.conversions = 1;
            if c.kind == "lead" {
                main.leads = 1;
            } else {
                main.purchases = 1;
            }
            main.revenue = amount;
            match &c.rollup_cost {
                Some(ConversionCost::Revshare(pct)) => {
                    let pct: Decimal = pct.parse().unwrap_or_default();
                    main.cost = amount * pct / Decimal::ONE_HUNDRED;
                }
                Some(ConversionCost::Cpa(a, cur)) => {
                    let cost = Counters {
                        cost: a.parse().unwrap_or_default(),
                        ..Counters::default()
                    };
                    if *cur == c.currency {
                        main.cost = cost.cost;
                    } else {
                        extra = Some((cur.clone(), cost));
                    }
                }
                None => {}
            }
        }
        "pending" => {
            main.pending_conversions = 1;
            main.pending_revenue = amount;
        }
        "refunded" | "chargeback" => {
            main.refunds = 1;
            main.refunded_revenue = amount;
        }
        _ => {}
    }
    let mut out = vec![(c.currency.clone(), main)];
    out.extend(extra);
    out
}

/// The dimension values a conversion is counted under: its click's, with
/// its own source and event name (unmatched: only those two).
pub fn conversion_dims(c: &ConversionRecord, click: Option<&ClickRecord>) -> Vec<String> {
    dims_of(c.source_id, &c.kind, c.event.as_deref(), click)
}

/// [`conversion_dims`] from the fields it reads.
fn dims_of(
    source_id: u64,
    kind: &str,
    event: Option<&str>,
    click: Option<&ClickRecord>,
) -> Vec<String> {
    let event = event.filter(|e| !e.trim().is_empty()).unwrap_or(kind);
    let mut d = match click {
        Some(cl) => click_dims(cl),
        None => vec![String::new(); NDIMS],
    };
    // The network that reported it, even when its link names no source
    // (or another one): revenue belongs to who pays it.
    d[0] = source_id.to_string();
    d[EVENT] = cut(event).to_string();
    d
}

/// `c` with its roll-up placement filled in: its click's bucket (its own
/// when unmatched), its dimension values, and the CPA / revshare cost of
/// its link's current cost model.
/// A `prepared` placement ([`prepare`]) made from the same request is
/// taken as it is, and returned for [`on_conversion`].
pub fn placed(
    ctx: &WriteCtx<'_>,
    c: ConversionRecord,
    click: Option<&ClickRecord>,
    prepared: Option<Placement>,
) -> (ConversionRecord, Option<Rows>) {
    let cost = click
        .and_then(|cl| ctx.catalog().links.get(&cl.slug))
        .and_then(|l| l.rec.cost.as_ref())
        .and_then(|cost| match cost.model.as_str() {
            "cpa" => Some(ConversionCost::Cpa(
                cost.amount.clone()?,
                cost.currency.clone().unwrap_or_default(),
            )),
            "revshare" => Some(ConversionCost::Revshare(cost.percent.clone()?)),
            _ => None,
        });
    match prepared {
        Some(p)
            if click.is_some() && p.created_ms == c.created_ms && p.rows.currency == c.currency =>
        {
            debug_assert_eq!(p.dims, conversion_dims(&c, click));
            (set_placement(c, p.bucket, p.dims, cost), Some(p.rows))
        }
        _ => (place(c, click, cost), None),
    }
}

fn place(
    c: ConversionRecord,
    click: Option<&ClickRecord>,
    cost: Option<ConversionCost>,
) -> ConversionRecord {
    let bucket = bucket_of(click.map_or(c.created_ms, |cl| cl.ms));
    let dims = conversion_dims(&c, click);
    set_placement(c, bucket, dims, cost)
}

fn set_placement(
    mut c: ConversionRecord,
    bucket: u32,
    dims: Vec<String>,
    cost: Option<ConversionCost>,
) -> ConversionRecord {
    c.rollup_bucket = bucket;
    c.rollup_dims = dims;
    c.rollup_cost = cost;
    c
}

/// Is `c` counted in the roll-ups? Test transactions are not; conversions
/// stored before roll-ups existed are counted once the roll-ups are rebuilt.
fn counted(c: &ConversionRecord) -> bool {
    !c.test && c.rollup_dims.len() == NDIMS
}

/// Count a new conversion (status as created) in both conversion parts.
/// `prepared`: its rows, from [`placed`], for its own currency.
pub fn on_conversion(
    ctx: &mut WriteCtx<'_>,
    c: &ConversionRecord,
    prepared: Option<Rows>,
) -> Result<(), StoreError> {
    if !counted(c) {
        return Ok(());
    }
    let mut prepared = prepared;
    for (cur, counters) in contribution(c, &c.status) {
        if let Some(rows) = prepared.take_if(|r| r.currency == cur) {
            let [at_click, at_change] = rows.at;
            add_stored(ctx, at_click, &counters)?;
            add_stored(ctx, at_change, &counters)?;
            continue;
        }
        add(
            ctx,
            &keys(
                Part::ConversionsAtClick,
                c.rollup_bucket,
                &cur,
                &c.rollup_dims,
            ),
            &counters,
        )?;
        add(
            ctx,
            &keys(
                Part::ConversionsAtChange,
                bucket_of(c.created_ms),
                &cur,
                &c.rollup_dims,
            ),
            &counters,
        )?;
    }
    Ok(())
}

/// Move a conversion from `previous` to its current status: in its click's
/// bucket (time basis `click`) and in the bucket of the change, `now_ms`
/// (time basis `conversion`).
pub fn on_status_change(
    ctx: &mut WriteCtx<'_>,
    c: &ConversionRecord,
    previous: &str,
    now_ms: u64,
) -> Result<(), StoreError> {
    if !counted(c) {
        return Ok(());
    }
    let mut deltas: Vec<(String, Counters)> = Vec::new();
    let mut push = |cur: String, d: Counters| match deltas.iter_mut().find(|(c, _)| *c == cur) {
        Some((_, acc)) => acc.add(&d),
        None => deltas.push((cur, d)),
    };
    for (cur, d) in contribution(c, previous) {
        push(cur, d.negated());
    }
    for (cur, d) in contribution(c, &c.status) {
        push(cur, d);
    }
    for (cur, d) in deltas {
        add(
            ctx,
            &keys(
                Part::ConversionsAtClick,
                c.rollup_bucket,
                &cur,
                &c.rollup_dims,
            ),
            &d,
        )?;
        add(
            ctx,
            &keys(
                Part::ConversionsAtChange,
                bucket_of(now_ms),
                &cur,
                &c.rollup_dims,
            ),
            &d,
        )?;
    }
    Ok(())
}

/// The roll-ups of a database written before they existed: every stored
/// click counted, every conversion placed (its record updated with where
/// it is counted) and counted with its status history, in `txn` (the
/// opening transaction, so a crash mid-way leaves no half-built roll-up).
/// Returns (clicks, conversions) counted. Every level is built (the
/// increments merged per row, applied in chunks so memory stays bounded).
pub fn rebuild(txn: &redb::WriteTransaction) -> Result<(u64, u64), StoreError> {
    use super::{CLICKS, CONVERSIONS, ROLLUPS, records};
    let mut rollups = txn.open_table(ROLLUPS)?;
    let mut pending = Pending::default();
    let clicks = txn.open_table(CLICKS)?;
    let mut n_clicks = 0u64;
    for row in clicks.iter()? {
        let (_, v) = row?;
        let c: ClickRecord = records::decode(v.value())?;
        let (ks, counters) = click_row(&c);
        for k in &ks {
            pending.add_levels(k, &counters);
        }
        if pending.len() >= FLUSH_ROWS {
            pending.flush(&mut rollups)?;
        }
        n_clicks += 1;
        if n_clicks.is_multiple_of(100_000) {
            tracing::info!(
                clicks = n_clicks,
                "building report roll-ups from stored clicks"
            );
        }
    }
    let mut conversions = txn.open_table(CONVERSIONS)?;
    let mut placed: Vec<(String, ConversionRecord)> = Vec::new();
    for row in conversions.iter()? {
        let (k, v) = row?;
        let c: ConversionRecord = records::decode(v.value())?;
        let click = match clicks.get(c.click_id.as_str())? {
            Some(v) if c.matched => Some(records::decode::<ClickRecord>(v.value())?),
            _ => None,
        };
        placed.push((k.value().to_string(), place(c, click.as_ref(), None)));
    }
    for (id, c) in &placed {
        if c.test {
            continue;
        }
        for (cur, d) in contribution(c, &c.status) {
            let ks = keys(
                Part::ConversionsAtClick,
                c.rollup_bucket,
                &cur,
                &c.rollup_dims,
            );
            for k in &ks {
                pending.add_levels(k, &d);
            }
        }
        let mut previous: Option<&str> = None;
        for (at, status) in &c.history {
            let mut deltas = contribution(c, status);
            if let Some(p) = previous {
                deltas.extend(
                    contribution(c, p)
                        .into_iter()
                        .map(|(cur, d)| (cur, d.negated())),
                );
            }
            for (cur, d) in deltas {
                let ks = keys(
                    Part::ConversionsAtChange,
                    bucket_of(*at),
                    &cur,
                    &c.rollup_dims,
                );
                for k in &ks {
                    pending.add_levels(k, &d);
                }
            }
            previous = Some(status);
        }
        if pending.len() >= FLUSH_ROWS {
            pending.flush(&mut rollups)?;
        }
        conversions.insert(id.as_str(), records::encode(c).as_slice())?;
    }
    pending.flush(&mut rollups)?;
    Ok((n_clicks, placed.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_value_layouts_read_and_extremes_round_trip() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let samples = [
            Counters::default(),
            Counters {
                clicks: 1,
                unique_clicks: 1,
                ..Counters::default()
            },
            Counters {
                clicks: i64::MAX,
                bot_clicks: i64::MIN,
                refunds: -1,
                revenue: Decimal::MAX,
                pending_revenue: Decimal::MIN,
                refunded_revenue: d("-0.0000000000000000000000000001"),
                unmatched_revenue: d("12.50"),
                cost: d("0.05"),
                ..Counters::default()
            },
        ];
        for c in samples {
            let v2 = c.encode();
            assert_eq!(v2[0], V2);
            assert_eq!(Counters::decode(&v2).unwrap(), c);
            // The first layout, as an older build wrote it.
            let mut v1 = vec![V1];
            for v in c.ints() {
                v1.extend_from_slice(&v.to_le_bytes());
            }
            for m in c.money() {
                v1.extend_from_slice(&m.serialize());
            }
            assert_eq!(Counters::decode(&v1).unwrap(), c);
        }
        let click = Counters {
            clicks: 1,
            unique_clicks: 1,
            ..Counters::default()
        };
        assert_eq!(click.encode().len(), 5);
        // Cut short, a stray byte, a field past the last: refused.
        let e = Counters {
            clicks: 7,
            revenue: "3.30".parse().unwrap(),
            ..Counters::default()
        }
        .encode();
        for bad in [
            &e[..e.len() - 1],
            &[e.as_slice(), &[0]].concat()[..],
            &[V2, 0, 0x80][..],
        ] {
            assert!(Counters::decode(bad).is_err());
        }
    }

    #[test]
    fn counters_round_trip_and_cancel() {
        let c = Counters {
            clicks: 3,
            revenue: "12.50".parse().unwrap(),
            cost: "-0.0001".parse().unwrap(),
            ..Counters::default()
        };
        assert_eq!(Counters::decode(&c.encode()).unwrap(), c);
        let mut z = c.clone();
        z.add(&c.negated());
        assert!(z.is_zero());
    }

    #[test]
    fn referrer_hosts() {
        for (r, h) in [
            ("https://www.Google.com/search?q=x", "www.google.com"),
            ("http://user@t.co:8080/x", "t.co"),
            ("https://[2001:db8::1]/", "2001:db8::1"),
            ("android-app://com.x", "com.x"),
            ("not a url", ""),
        ] {
            assert_eq!(referrer_host(r), h, "{r}");
        }
    }
}
