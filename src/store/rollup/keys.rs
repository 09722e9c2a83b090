//! Row keys: `prefix | bucket (u32 BE) | currency (3 bytes) | dimension
//! values (a length byte each)`. The prefix byte names the time level, the
//! cube and the part ([`Cube::prefix_at`]), so every (level, cube, part) is
//! one contiguous, time-ordered key range that a report scans with one
//! range read per interval.
//!
//! `bucket` is always a 15-minute bucket number: the first bucket of the
//! row's period (an hour row of 10:00 UTC has the bucket of 10:00, a day row
//! the bucket of 00:00 UTC). So one range `[b0, b1)` of bucket numbers
//! selects the rows of every level whose period starts in it.

use super::{BUCKET_MS, NDIMS, cut};
use crate::store::StoreError;

/// Which part of the roll-up a row is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Part {
    Clicks = 1,
    /// Conversions at their click's bucket (unmatched ones at their own).
    ConversionsAtClick = 2,
    /// Conversions at their creation's bucket, status changes at theirs.
    ConversionsAtChange = 3,
}

/// A cube: the dimensions its rows keep (the others are left empty). Every
/// count goes to every cube; a report reads the smallest that has what it
/// needs: the fewer dimensions kept, the fewer rows a bucket has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cube {
    /// Every dimension.
    Full = 0,
    /// All but referrer, UTM and sub-IDs (the high-cardinality ones).
    Lean = 1,
    /// Source, link, campaign and event only.
    Links = 2,
    /// Source, sub1 and event: the zone report (`group_by=sub1`), which
    /// in the full cube reads about a row per click. Its link value is
    /// only a mark ([`MATCHED`]) telling a click's rows and matched
    /// conversions from unmatched ones (reports leave those out of rows
    /// grouped by a click's dimensions). It has no 15-minute rows of its
    /// own: its hour, day and week rows are summed from the full cube's
    /// 15-minute rows, which a report reads for the edges of its range.
    Subs = 3,
}

/// The link value of a [`Cube::Subs`] row counting clicks or matched
/// conversions (a control character: no real link slug has one).
pub const MATCHED: &str = "\u{1}";
/// Index of sub1 in [`super::DIMS`].
const SUB1: usize = 13;

impl Cube {
    pub const ALL: [Cube; 4] = [Cube::Full, Cube::Lean, Cube::Links, Cube::Subs];

    /// Does this cube keep the dimension at `index` (in [`super::DIMS`])?
    pub fn keeps(self, index: usize) -> bool {
        match self {
            Cube::Full => true,
            Cube::Lean => !(7..=17).contains(&index),
            Cube::Links => matches!(index, 0 | 1 | 2 | 18),
            Cube::Subs => matches!(index, 0 | SUB1 | 18),
        }
    }

    /// The smallest cube keeping every dimension in `needed`.
    pub fn for_dims(needed: impl Iterator<Item = usize> + Clone) -> Cube {
        [Cube::Links, Cube::Lean, Cube::Subs]
            .into_iter()
            .find(|c| needed.clone().all(|i| c.keeps(i)))
            .unwrap_or(Cube::Full)
    }

    /// The cube whose 15-minute rows a report reads for this cube at the
    /// 15-minute level (its own, but for [`Cube::Subs`]).
    pub fn quarter_source(self) -> Cube {
        match self {
            Cube::Subs => Cube::Full,
            c => c,
        }
    }

    /// Does this cube store 15-minute rows? (The sub-ID cube's 15-minute
    /// key is only where its coarser keys are made from.)
    pub fn has_quarters(self) -> bool {
        self.levels().contains(&Level::Quarter)
    }

    /// The first key byte of a part of this cube's 15-minute rows.
    pub fn prefix(self, part: Part) -> u8 {
        self.prefix_at(part, Level::Quarter)
    }

    /// The first key byte of a part of this cube at a time level. The
    /// 15-minute prefixes (1..=9) are those of the first roll-up layout, so
    /// its rows stay valid; coarser levels add 16 per level.
    pub fn prefix_at(self, part: Part, level: Level) -> u8 {
        level as u8 * 16 + part as u8 + 3 * self as u8
    }

    /// The time levels this cube keeps, finest first (always 15 minutes).
    ///
    /// The full cube keeps only 15-minute rows: they carry every dimension
    /// (sub-IDs, referrer, UTM), so nearly every click has its own row even
    /// over a day (`benches/reports.rs` at 1M clicks a month: about 29,000
    /// day rows for 33,000 clicks a day). Hour and day rows there would cost
    /// the writer two more read-modify-writes per click, which a batch does
    /// not share, and about 200 bytes of disk per click, for a `sub1`
    /// report about 14% faster (measured), still far from its bar. The
    /// sub-ID reports need a narrower cube instead (README, Performance).
    pub fn levels(self) -> &'static [Level] {
        match self {
            Cube::Full => &[Level::Quarter],
            Cube::Lean | Cube::Links => &[Level::Quarter, Level::Hour, Level::Day],
            // Week rows too: a zone report's rows are one per zone and
            // period, and a month has 4 weeks against 30 days.
            Cube::Subs => &[Level::Hour, Level::Day, Level::Week],
        }
    }

    /// The cube, part and level of a prefix byte.
    pub fn of_prefix(p: u8) -> Option<(Cube, Part, Level)> {
        let level = match p / 16 {
            0 => Level::Quarter,
            1 => Level::Hour,
            2 => Level::Day,
            3 => Level::Week,
            _ => return None,
        };
        let r = p % 16;
        if !(1..=12).contains(&r) {
            return None;
        }
        let cube = Cube::ALL[usize::from((r - 1) / 3)];
        let part = match (r - 1) % 3 {
            0 => Part::Clicks,
            1 => Part::ConversionsAtClick,
            _ => Part::ConversionsAtChange,
        };
        Some((cube, part, level))
    }
}

/// A time level of the roll-ups: rows per 15 minutes, per UTC hour, per
/// UTC day. Every count is in the 15-minute rows (any zone's hour and day
/// start on a 15-minute edge); the coarser rows hold the same counts summed
/// over their period, so a report covers the whole UTC hours and days of
/// its range with one row per combination instead of 4 or 96.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Quarter = 0,
    Hour = 1,
    Day = 2,
    /// Seven UTC days from the epoch (Thursday 00:00 UTC to Thursday): not
    /// calendar weeks, only a coarser step that [`cover`] fits into a range.
    Week = 3,
}

impl Level {
    /// 15-minute buckets per period.
    pub fn buckets(self) -> u32 {
        match self {
            Level::Quarter => 1,
            Level::Hour => 4,
            Level::Day => 96,
            Level::Week => 7 * 96,
        }
    }
}

/// The sub-ID cube's 15-minute key for a full-cube 15-minute key (the
/// roll-up migration builds that cube from the full cube's rows); `None`
/// for a key this build cannot read (none it writes).
pub fn subs_key(full_quarter_key: &[u8]) -> Option<Vec<u8>> {
    let v = view_key(full_quarter_key).ok()?;
    let (_, part, _) = Cube::of_prefix(*full_quarter_key.first()?)?;
    let dims: Vec<&str> = (0..NDIMS).map(|i| subs_value(i, v.dims[i])).collect();
    Some(key_in(Cube::Subs.prefix(part), v.bucket, v.currency, &dims))
}

/// The value the sub-ID cube keeps of dimension `i`.
fn subs_value(i: usize, v: &str) -> &str {
    if i == super::LINK {
        if v.is_empty() { "" } else { MATCHED }
    } else if Cube::Subs.keeps(i) {
        v
    } else {
        ""
    }
}

/// The key of the same row at a coarser `level`: the prefix of that level,
/// the bucket of the period's start.
pub fn at_level(quarter_key: &[u8], level: Level) -> Vec<u8> {
    let mut k = quarter_key.to_vec();
    if k.len() >= 5 {
        let b = u32::from_be_bytes([k[1], k[2], k[3], k[4]]);
        let b = b - b % level.buckets();
        k[0] = k[0] % 16 + level as u8 * 16;
        k[1..5].copy_from_slice(&b.to_be_bytes());
    }
    k
}

/// The rows covering buckets `[b0, b1)` with the fewest rows, given the
/// levels a cube keeps: `(level, from, to)` runs, each one range read of
/// that level's rows whose period starts in `[from, to)`. 15-minute rows up
/// to the first whole UTC hour, hour rows up to the first whole day, day
/// rows for the whole days, then hours, then 15-minute rows to the end
/// (a level the cube lacks is replaced by the next finer one).
pub fn cover(b0: u32, b1: u32, levels: &[Level]) -> Vec<(Level, u32, u32)> {
    let mut out: Vec<(Level, u32, u32)> = Vec::new();
    let mut x = b0;
    while x < b1 {
        // The coarsest kept level whose period starts at x and fits.
        let level = levels
            .iter()
            .rev()
            .copied()
            .find(|l| x.is_multiple_of(l.buckets()) && x + l.buckets() <= b1)
            .unwrap_or(Level::Quarter);
        let next = x + level.buckets();
        match out.last_mut() {
            Some((l, _, to)) if *l == level && *to == x => *to = next,
            _ => out.push((level, x, next)),
        }
        x = next;
    }
    out
}

/// The 15-minute keys of a count, one per cube
/// ([`super::Pending::add_levels`] stores them and adds the coarser rows).
pub type RowKeys = [Vec<u8>; 4];

/// The 15-minute keys every count goes to (see [`RowKeys`]).
pub fn keys(part: Part, bucket: u32, currency: &str, dims: &[String]) -> RowKeys {
    Cube::ALL.map(|cube| {
        let kept: Vec<&str> = dims
            .iter()
            .enumerate()
            .map(|(i, d)| match cube {
                Cube::Subs => subs_value(i, d),
                _ if cube.keeps(i) => d.as_str(),
                _ => "",
            })
            .collect();
        key_in(cube.prefix(part), bucket, currency, &kept)
    })
}

/// The bucket of a time.
pub fn bucket_of(ms: u64) -> u32 {
    u32::try_from(ms / BUCKET_MS).unwrap_or(u32::MAX)
}

/// A row's key in the full cube.
pub fn key(part: Part, bucket: u32, currency: &str, dims: &[String]) -> Vec<u8> {
    let d: Vec<&str> = dims.iter().map(String::as_str).collect();
    key_in(Cube::Full.prefix(part), bucket, currency, &d)
}

fn key_in(prefix: u8, bucket: u32, currency: &str, dims: &[&str]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + dims.iter().map(|d| d.len() + 1).sum::<usize>());
    k.push(prefix);
    k.extend_from_slice(&bucket.to_be_bytes());
    let mut cur = [b' '; 3];
    for (i, b) in currency.bytes().take(3).enumerate() {
        cur[i] = b;
    }
    k.extend_from_slice(&cur);
    for d in dims {
        let v = cut(d);
        k.push(v.len() as u8);
        k.extend_from_slice(v.as_bytes());
    }
    k
}

/// A row key read without allocating: the bucket, the currency and each
/// dimension's value as a slice of the key.
pub struct KeyView<'a> {
    pub bucket: u32,
    pub currency: &'a str,
    pub dims: [&'a str; NDIMS],
}

pub fn view_key(k: &[u8]) -> Result<KeyView<'_>, StoreError> {
    let bad = || StoreError::Corrupt("roll-up key has an unknown layout".into());
    if k.len() < 8 {
        return Err(bad());
    }
    let bucket = u32::from_be_bytes([k[1], k[2], k[3], k[4]]);
    let currency = std::str::from_utf8(&k[5..8]).map_err(|_| bad())?.trim_end();
    let mut dims = [""; NDIMS];
    let mut rest = &k[8..];
    for d in dims.iter_mut() {
        let (&n, tail) = rest.split_first().ok_or_else(bad)?;
        let n = n as usize;
        if tail.len() < n {
            return Err(bad());
        }
        *d = std::str::from_utf8(&tail[..n]).map_err(|_| bad())?;
        rest = &tail[n..];
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    Ok(KeyView {
        bucket,
        currency,
        dims,
    })
}

/// A decoded row key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowKey {
    pub part: u8,
    pub bucket: u32,
    /// Empty for rows without money.
    pub currency: String,
    pub dims: Vec<String>,
}

pub fn decode_key(k: &[u8]) -> Result<RowKey, StoreError> {
    let bad = || StoreError::Corrupt("roll-up key has an unknown layout".into());
    if k.len() < 8 {
        return Err(bad());
    }
    let bucket = u32::from_be_bytes(k[1..5].try_into().map_err(|_| bad())?);
    let currency = std::str::from_utf8(&k[5..8])
        .map_err(|_| bad())?
        .trim()
        .to_string();
    let mut dims = Vec::with_capacity(NDIMS);
    let mut rest = &k[8..];
    while let Some((&n, tail)) = rest.split_first() {
        let n = n as usize;
        if tail.len() < n {
            return Err(bad());
        }
        dims.push(
            std::str::from_utf8(&tail[..n])
                .map_err(|_| bad())?
                .to_string(),
        );
        rest = &tail[n..];
    }
    if dims.len() != NDIMS {
        return Err(bad());
    }
    Ok(RowKey {
        part: k[0],
        bucket,
        currency,
        dims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_uses_the_coarsest_rows_and_covers_exactly() {
        let all = [Level::Quarter, Level::Hour, Level::Day];
        // 10:15 UTC on day 1 to 02:30 UTC on day 4.
        let (b0, b1) = (96 + 41, 4 * 96 + 10);
        let c = cover(b0, b1, &all);
        assert_eq!(
            c,
            vec![
                (Level::Quarter, 137, 140),
                (Level::Hour, 140, 192),
                (Level::Day, 192, 384),
                (Level::Hour, 384, 392),
                (Level::Quarter, 392, 394),
            ]
        );
        // Without hour rows: quarters up to the day, then days, then quarters.
        let c = cover(b0, b1, &[Level::Quarter, Level::Day]);
        assert_eq!(
            c,
            vec![
                (Level::Quarter, 137, 192),
                (Level::Day, 192, 384),
                (Level::Quarter, 384, 394),
            ]
        );
        // Every bucket is covered once, for any range, with or without
        // week rows.
        let weeks = [Level::Quarter, Level::Hour, Level::Day, Level::Week];
        for levels in [&all[..], &weeks[..]] {
            for b0 in (0..300).step_by(7) {
                for b1 in (b0 + 1..b0 + 2000).step_by(13) {
                    let mut x = b0;
                    for (l, from, to) in cover(b0, b1, levels) {
                        assert_eq!(from, x);
                        assert!(from.is_multiple_of(l.buckets()) && to.is_multiple_of(l.buckets()));
                        x = to;
                    }
                    assert_eq!(x, b1);
                }
            }
        }
        // 30 days from a Monday: whole weeks where they fit.
        let c = cover(4 * 96, 34 * 96, &weeks);
        assert!(c.contains(&(Level::Week, 7 * 96, 4 * 7 * 96)), "{c:?}");
    }

    #[test]
    fn prefixes_name_level_cube_and_part() {
        for cube in Cube::ALL {
            for part in [
                Part::Clicks,
                Part::ConversionsAtClick,
                Part::ConversionsAtChange,
            ] {
                for level in [Level::Quarter, Level::Hour, Level::Day, Level::Week] {
                    let p = cube.prefix_at(part, level);
                    assert_eq!(Cube::of_prefix(p), Some((cube, part, level)));
                }
            }
        }
        let dims: Vec<String> = (0..NDIMS).map(|i| format!("v{i}")).collect();
        let k = key(Part::Clicks, 96 * 3 + 45, "USD", &dims);
        let d = decode_key(&at_level(&k, Level::Day)).unwrap();
        assert_eq!(
            (d.part, d.bucket),
            (Cube::Full.prefix_at(Part::Clicks, Level::Day), 288)
        );
        let h = decode_key(&at_level(&k, Level::Hour)).unwrap();
        assert_eq!(h.bucket, 96 * 3 + 44);
        assert_eq!(h.dims, dims);
    }

    #[test]
    fn zone_rows_keep_source_sub1_event_and_whether_matched() {
        let dims: Vec<String> = (0..NDIMS).map(|i| format!("v{i}")).collect();
        let q = key(Part::ConversionsAtClick, 96 * 9 + 5, "EUR", &dims);
        let sq = subs_key(&q).unwrap();
        assert_eq!(
            keys(Part::ConversionsAtClick, 96 * 9 + 5, "EUR", &dims)[3],
            sq
        );
        let w = decode_key(&at_level(&sq, Level::Week)).unwrap();
        assert_eq!(
            (w.part, w.bucket, w.currency.as_str()),
            (
                Cube::Subs.prefix_at(Part::ConversionsAtClick, Level::Week),
                672,
                "EUR"
            )
        );
        for (i, d) in w.dims.iter().enumerate() {
            let want = match i {
                0 | SUB1 | 18 => dims[i].as_str(),
                super::super::LINK => MATCHED,
                _ => "",
            };
            assert_eq!(d, want, "dimension {i}");
        }
        // An unmatched conversion (no link) stays unmatched there.
        let mut none = dims.clone();
        none[super::super::LINK].clear();
        let q = key(Part::ConversionsAtClick, 5, "", &none);
        let d = decode_key(&at_level(&subs_key(&q).unwrap(), Level::Hour)).unwrap();
        assert_eq!((d.bucket, d.dims[super::super::LINK].as_str()), (4, ""));
        assert_eq!(subs_key(b"\x01garbage"), None);
    }

    #[test]
    fn keys_round_trip_and_order_by_part_then_time() {
        let dims: Vec<String> = (0..NDIMS).map(|i| format!("v{i}")).collect();
        let k = key(Part::ConversionsAtClick, 7, "EUR", &dims);
        let r = decode_key(&k).unwrap();
        assert_eq!((r.part, r.bucket, r.currency.as_str()), (2, 7, "EUR"));
        assert_eq!(r.dims, dims);
        assert!(key(Part::Clicks, 9, "", &dims) < key(Part::ConversionsAtClick, 0, "", &dims));
        assert!(key(Part::Clicks, 8, "", &dims) < key(Part::Clicks, 9, "", &dims));
        assert_eq!(
            decode_key(&key(Part::Clicks, 1, "", &dims))
                .unwrap()
                .currency,
            ""
        );
    }
}
