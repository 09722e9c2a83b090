//! Reports: the table a marketer decides from. A report reads the roll-ups
//! (`store::rollup`, kept by the writer beside the records they count),
//! never the clicks, so its numbers are the records' numbers and it costs
//! the rows of its range, not the clicks.
//!
//! - [`Params::parse`] validates a request (dimensions, range, zone, time
//!   basis, filters, sort, limit): every refusal is an [`Error`] with a
//!   stable code and a sentence naming the fix.
//! - [`run`] scans the range's rows in one read transaction and groups them.
//! - [`output`] computes the metrics (exact decimals, ratios to 4 places),
//!   converts money into the report currency and writes JSON or CSV.

pub mod costs;
pub mod output;
pub mod range;
pub mod rates;

use std::collections::{BTreeMap, HashMap};

use jiff::tz::TimeZone;

use crate::store::rollup::{self, Counters, Cube, DIMS, LINK, Level, Part};
use crate::store::{ROLLUPS, StoreError};

/// A refused report request (always a 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: &'static str,
    pub message: String,
}

impl Error {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }
}

/// Time dimensions, named in the report's zone.
pub const TIME_DIMS: [&str; 4] = ["hour", "day", "week", "month"];
/// Most dimensions grouped at once.
pub const MAX_GROUP_BY: usize = 3;
/// Row limit bounds.
pub const DEFAULT_LIMIT: usize = 1000;
pub const MAX_LIMIT: usize = 10_000;

/// A dimension: one of the time names or a stored dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    Time(usize),
    Stored(usize),
}

impl Dim {
    pub fn parse(name: &str) -> Option<Dim> {
        TIME_DIMS
            .iter()
            .position(|d| *d == name)
            .map(Dim::Time)
            .or_else(|| rollup::dim_index(name).map(Dim::Stored))
    }

    pub fn name(self) -> &'static str {
        match self {
            Dim::Time(i) => TIME_DIMS[i],
            Dim::Stored(i) => DIMS[i],
        }
    }

    /// Dimensions an unmatched conversion (no click) has a value for.
    fn known_without_click(self) -> bool {
        matches!(self, Dim::Time(_)) || matches!(self.name(), "source" | "event")
    }
}

fn dim_list() -> String {
    TIME_DIMS
        .iter()
        .chain(DIMS.iter())
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_dim(what: &str, name: &str) -> Error {
    Error::new(
        "unknown_dimension",
        format!(
            "`{}` in {what} is not a dimension; use one of: {}",
            crate::util::text::truncate(name, 40),
            dim_list()
        ),
    )
}

/// Where a conversion is counted in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeBasis {
    /// At its click's time (Voluum, Binom).
    Click,
    /// At the time of the conversion (and of each status change).
    Conversion,
}

/// A validated report request.
#[derive(Clone, Debug)]
pub struct Params {
    pub group_by: Vec<Dim>,
    pub range: range::Range,
    pub tz_name: String,
    pub tz: TimeZone,
    pub basis: TimeBasis,
    pub filters: Vec<(Dim, String)>,
    /// A metric or a group-by dimension.
    pub sort: Option<String>,
    pub descending: bool,
    pub limit: usize,
    pub csv: bool,
}

impl Params {
    /// From request parameters (query string pairs); `default_tz` is the
    /// `report_timezone` setting.
    pub fn parse(
        pairs: &[(String, String)],
        default_tz: &str,
        now_ms: u64,
    ) -> Result<Params, Error> {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let mut group_by = Vec::new();
        for name in get("group_by").unwrap_or("day").split(',') {
            let name = name.trim();
            let d = Dim::parse(name).ok_or_else(|| unknown_dim("group_by", name))?;
            if group_by.contains(&d) {
                return Err(Error::new(
                    "invalid_group_by",
                    format!("`{name}` is named twice in group_by"),
                ));
            }
            group_by.push(d);
        }
        if group_by.len() > MAX_GROUP_BY {
            return Err(Error::new(
                "invalid_group_by",
                format!("group_by takes at most {MAX_GROUP_BY} dimensions; drill down instead"),
            ));
        }
        let tz_name = get("tz").unwrap_or(default_tz).to_string();
        let tz = range::zone(&tz_name)?;
        let range = range::resolve(get("from"), get("to"), &tz, now_ms)?;
        let basis = match get("time_basis") {
            None | Some("click") => TimeBasis::Click,
            Some("conversion") => TimeBasis::Conversion,
            Some(_) => {
                return Err(Error::new(
                    "invalid_time_basis",
                    "time_basis must be click (at the click's time) or conversion",
                ));
            }
        };
        let mut filters = Vec::new();
        for (k, v) in pairs {
            if let Some(name) = k.strip_prefix("filter.") {
                let d = Dim::parse(name).ok_or_else(|| unknown_dim("a filter", name))?;
                filters.push((d, v.clone()));
            }
        }
        if let Some((k, _)) = pairs.iter().find(|(k, _)| {
            !k.starts_with("filter.")
                && !matches!(
                    k.as_str(),
                    "group_by"
                        | "from"
                        | "to"
                        | "tz"
                        | "time_basis"
                        | "sort"
                        | "order"
                        | "limit"
                        | "format"
                )
        }) {
            return Err(Error::new(
                "invalid_parameter",
                format!(
                    "`{}` is not a report parameter; filters are written filter.DIMENSION=VALUE",
                    crate::util::text::truncate(k, 40)
                ),
            ));
        }
        let sort = get("sort").map(str::to_string);
        if let Some(s) = &sort
            && !output::METRICS.contains(&s.as_str())
            && !group_by.iter().any(|d| d.name() == s)
        {
            return Err(Error::new(
                "invalid_sort",
                format!(
                    "sort by a metric ({}) or one of the group_by dimensions",
                    output::METRICS.join(", ")
                ),
            ));
        }
        let descending = match get("order") {
            None => sort.is_some(),
            Some("desc") => true,
            Some("asc") => false,
            Some(_) => {
                return Err(Error::new("invalid_order", "order must be asc or desc"));
            }
        };
        let limit = match get("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    Error::new("invalid_limit", format!("limit must be 1 to {MAX_LIMIT}"))
                })?,
        };
        let csv = match get("format") {
            None | Some("json") => false,
            Some("csv") => true,
            Some(_) => return Err(Error::new("invalid_format", "format must be json or csv")),
        };
        Ok(Params {
            group_by,
            range,
            tz_name,
            tz,
            basis,
            filters,
            sort,
            descending,
            limit,
            csv,
        })
    }
}

/// Counters of one group, per currency (`""`: the report currency).
pub type Money = BTreeMap<String, Counters>;

/// The grouped counters of a report, before metrics.
#[derive(Debug, Default)]
pub struct Grouped {
    /// Group values (`""`: none) in `group_by` order, with their counters.
    pub rows: HashMap<Vec<String>, Money>,
    pub totals: Money,
    /// Roll-up rows read (benchmarks report it).
    pub rows_read: u64,
}

fn add_money(m: &mut Money, currency: &str, c: &Counters) {
    match m.get_mut(currency) {
        Some(acc) => acc.add(c),
        None => {
            m.insert(currency.to_string(), c.clone());
        }
    }
}

/// Read the rows of the range (the clicks part and the basis's
/// conversions part, in the smallest cube that has every dimension the
/// report needs) and group them.
///
/// The range is first split into the report's time periods in its zone
/// (one run per hour, day, week or month when it groups or filters by
/// time; the whole range otherwise), and each run is read with the fewest
/// rows: 15-minute rows up to the first whole UTC hour, hour rows up to
/// the first whole UTC day, day rows, then hours and quarters to its end
/// (`rollup::cover`). Every level holds the same counts, so the sums are
/// those of the 15-minute rows.
pub fn run(rtx: &redb::ReadTransaction, p: &Params) -> Result<Grouped, StoreError> {
    run_at(rtx, p, None)
}

/// [`run`], reading only the levels in `levels` when given (tests compare
/// the coarse levels with the 15-minute rows alone).
pub fn run_at(
    rtx: &redb::ReadTransaction,
    p: &Params,
    levels: Option<&[Level]>,
) -> Result<Grouped, StoreError> {
    let t = rtx.open_table(ROLLUPS)?;
    let b0 = rollup::bucket_of(p.range.from_ms);
    let b1 = rollup::bucket_of(p.range.to_ms);
    let conv = match p.basis {
        TimeBasis::Click => Part::ConversionsAtClick,
        TimeBasis::Conversion => Part::ConversionsAtChange,
    };
    let used = || p.group_by.iter().chain(p.filters.iter().map(|(d, _)| d));
    let time_dims: Vec<usize> = used()
        .filter_map(|d| match d {
            Dim::Time(i) => Some(*i),
            Dim::Stored(_) => None,
        })
        .collect();
    let click_only = used().any(|d| !d.known_without_click());
    let stored = used().filter_map(|d| match d {
        Dim::Stored(i) => Some(*i),
        Dim::Time(_) => None,
    });
    let cube = Cube::for_dims(stored);
    // The sub-ID cube has no 15-minute rows: the full cube's stand in.
    let kept: Vec<Level> = [Level::Quarter, Level::Hour, Level::Day, Level::Week]
        .into_iter()
        .filter(|l| *l == Level::Quarter || cube.levels().contains(l))
        .filter(|l| levels.is_none_or(|ls| ls.contains(l)))
        .collect();
    let runs: Vec<(u32, u32, Option<range::TimeNames>)> = if time_dims.is_empty() {
        vec![(b0, b1, None)]
    } else {
        range::periods(b0, b1, &p.tz, &time_dims)
            .into_iter()
            .map(|(s, e, n)| (s, e, Some(n)))
            .collect()
    };
    // Groups by their values joined with \x1f (cannot occur in a value: a
    // control character), so a row is looked up without allocating.
    let mut groups: HashMap<String, (Vec<String>, Money)> = HashMap::new();
    let mut joined = String::new();
    let mut out = Grouped::default();
    for part in [Part::Clicks, conv] {
        for (s, e, time) in &runs {
            let time = time.as_ref();
            for (level, from, to) in rollup::cover(*s, *e, &kept) {
                let read = if level == Level::Quarter {
                    cube.quarter_source()
                } else {
                    cube
                };
                let prefix = read.prefix_at(part, level);
                let lo = [&[prefix][..], &from.to_be_bytes()].concat();
                let hi = [&[prefix][..], &to.to_be_bytes()].concat();
                for row in t.range::<&[u8]>(lo.as_slice()..hi.as_slice())? {
                    let (k, v) = row?;
                    out.rows_read += 1;
                    let key = rollup::view_key(k.value())?;
                    let value = |d: Dim| -> &str {
                        match (d, time) {
                            (Dim::Stored(i), _) => key.dims[i],
                            (Dim::Time(0), Some(n)) => &n.hour,
                            (Dim::Time(1), Some(n)) => &n.day,
                            (Dim::Time(2), Some(n)) => &n.week,
                            (Dim::Time(_), Some(n)) => &n.month,
                            (Dim::Time(_), None) => "",
                        }
                    };
                    if !p.filters.iter().all(|(d, want)| value(*d) == want) {
                        continue;
                    }
                    let counters = Counters::decode(v.value())?;
                    // An unmatched conversion has no click, so no link,
                    // campaign, country...: it counts in the totals and in
                    // rows grouped by what it has (source, event, time) only.
                    // (The totals are the groups' sum plus these, added up
                    // once at the end rather than per row.)
                    let unmatched = key.dims[LINK].is_empty();
                    if unmatched && click_only {
                        add_money(&mut out.totals, key.currency, &counters);
                        continue;
                    }
                    joined.clear();
                    for d in &p.group_by {
                        joined.push_str(value(*d));
                        joined.push('\x1f');
                    }
                    match groups.get_mut(joined.as_str()) {
                        Some((_, m)) => add_money(m, key.currency, &counters),
                        None => {
                            let values = p.group_by.iter().map(|d| value(*d).to_string()).collect();
                            let mut m = Money::new();
                            add_money(&mut m, key.currency, &counters);
                            groups.insert(joined.clone(), (values, m));
                        }
                    }
                }
            }
        }
    }
    for (_, m) in groups.values() {
        for (currency, c) in m {
            add_money(&mut out.totals, currency, c);
        }
    }
    out.rows = groups.into_values().collect();
    Ok(out)
}
