//! A report's time range and time zone: `from`/`to` as dates (both
//! inclusive, in the zone) or RFC 3339 instants (`from` inclusive, `to`
//! exclusive), turned into UTC milliseconds on 15-minute bucket edges; and
//! the names of a bucket's hour, day, week and month in the zone. The time
//! zone database is compiled in (jiff's bundled tzdb), so a static binary
//! on a host without /usr/share/zoneinfo still knows `Asia/Kolkata`.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

use super::Error;
use crate::store::rollup::BUCKET_MS;

/// Longest range a report covers.
pub const MAX_DAYS: i64 = 400;

/// A resolved range: `[from_ms, to_ms)`, both on bucket edges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    pub from_ms: u64,
    pub to_ms: u64,
    /// As given or defaulted, for the answer.
    pub from: String,
    pub to: String,
}

pub fn zone(name: &str) -> Result<TimeZone, Error> {
    TimeZone::get(name).map_err(|_| {
        Error::new(
            "invalid_tz",
            format!(
                "`{}` is not a time zone; use an IANA name such as UTC, Asia/Kolkata or \
                 America/New_York",
                crate::util::text::truncate(name, 64)
            ),
        )
    })
}

fn ms_of(ts: Timestamp) -> Result<u64, Error> {
    u64::try_from(ts.as_millisecond())
        .map_err(|_| Error::new("invalid_range", "the range starts before 1970"))
}

/// Midnight (or the first instant, on a day that skips it) of `d` in `tz`.
fn start_of(d: Date, tz: &TimeZone) -> Result<u64, Error> {
    let z = d
        .to_zoned_datetime(tz.clone())
        .and_then(|z| z.start_of_day())
        .map_err(|_| Error::new("invalid_range", "the date is outside the supported range"))?;
    ms_of(z.timestamp())
}

enum Bound {
    Date(Date),
    Instant(Timestamp),
}

fn parse_bound(name: &str, v: &str) -> Result<Bound, Error> {
    if let Ok(d) = v.parse::<Date>() {
        return Ok(Bound::Date(d));
    }
    if let Ok(t) = v.parse::<Timestamp>() {
        return Ok(Bound::Instant(t));
    }
    Err(Error::new(
        "invalid_range",
        format!(
            "`{name}` must be a date (2026-12-01) or an RFC 3339 instant (2026-12-01T00:00:00Z); \
             got `{}`",
            crate::util::text::truncate(v, 40)
        ),
    ))
}

/// The named ranges the dashboard offers: `(name, label)`.
pub const PRESETS: [(&str, &str); 5] = [
    ("today", "Today"),
    ("yesterday", "Yesterday"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("month", "This month"),
];

/// A named range as its first and last day in `tz` (both inclusive), as
/// `from`/`to` take them.
pub fn preset(name: &str, tz: &TimeZone, now_ms: u64) -> Option<(Date, Date)> {
    let today = Timestamp::from_millisecond(now_ms as i64)
        .ok()?
        .to_zoned_datetime(tz.clone())
        .date();
    let back = |days: i64| today.checked_sub(jiff::Span::new().days(days)).ok();
    match name {
        "today" => Some((today, today)),
        "yesterday" => back(1).map(|d| (d, d)),
        "7d" => back(6).map(|d| (d, today)),
        "30d" => back(29).map(|d| (d, today)),
        "month" => Some((today.first_of_month(), today)),
        _ => None,
    }
}

/// Resolve `from`/`to` in `tz`; defaults: the last 7 days including today.
pub fn resolve(
    from: Option<&str>,
    to: Option<&str>,
    tz: &TimeZone,
    now_ms: u64,
) -> Result<Range, Error> {
    let today = Timestamp::from_millisecond(now_ms as i64)
        .map(|t| t.to_zoned_datetime(tz.clone()).date())
        .map_err(|_| Error::new("invalid_range", "the clock is out of range"))?;
    let from_b = match from {
        Some(v) => parse_bound("from", v)?,
        None => Bound::Date(
            today
                .checked_sub(jiff::Span::new().days(6))
                .unwrap_or(today),
        ),
    };
    let to_b = match to {
        Some(v) => parse_bound("to", v)?,
        None => Bound::Date(today),
    };
    let (from_ms, from_s) = match from_b {
        Bound::Date(d) => (start_of(d, tz)?, d.to_string()),
        Bound::Instant(t) => (ms_of(t)?, t.to_string()),
    };
    let (to_ms, to_s) = match to_b {
        // Inclusive: up to the start of the next day.
        Bound::Date(d) => {
            let next = d
                .tomorrow()
                .map_err(|_| Error::new("invalid_range", "`to` is outside the supported range"))?;
            (start_of(next, tz)?, d.to_string())
        }
        Bound::Instant(t) => (ms_of(t)?, t.to_string()),
    };
    for (name, ms) in [("from", from_ms), ("to", to_ms)] {
        if ms % BUCKET_MS != 0 {
            return Err(Error::new(
                "invalid_range",
                format!(
                    "`{name}` must fall on a quarter hour (reports count in 15-minute steps); \
                     use :00, :15, :30 or :45"
                ),
            ));
        }
    }
    if from_ms >= to_ms {
        return Err(Error::new(
            "invalid_range",
            "`from` must be before `to` (dates are both inclusive)",
        ));
    }
    if to_ms - from_ms > (MAX_DAYS as u64 + 1) * 86_400_000 {
        return Err(Error::new(
            "invalid_range",
            format!("a report covers at most {MAX_DAYS} days; narrow `from`/`to`"),
        ));
    }
    Ok(Range {
        from_ms,
        to_ms,
        from: from_s,
        to: to_s,
    })
}

/// The names of one bucket's hour, day, week and month in a zone.
#[derive(Clone, Debug)]
pub struct TimeNames {
    pub hour: String,
    pub day: String,
    pub week: String,
    pub month: String,
}

pub fn names(bucket_start_ms: u64, tz: &TimeZone) -> TimeNames {
    let z: ZonedDateTime = Timestamp::from_millisecond(bucket_start_ms as i64)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(tz.clone());
    let d = z.date();
    let w = d.iso_week_date();
    TimeNames {
        // With the offset: a DST fall-back day has two 01:00 hours.
        hour: z.strftime("%Y-%m-%dT%H:00%:z").to_string(),
        day: d.to_string(),
        week: format!("{:04}-W{:02}", w.year(), w.week()),
        month: format!("{:04}-{:02}", d.year(), d.month()),
    }
}

/// Split buckets `[b0, b1)` into the runs over which every time dimension
/// in `dims` (indexes into `TIME_DIMS`: hour, day, week, month) keeps its
/// name in `tz`, each with those names. A report then reads each run with
/// the coarsest roll-up rows that fit it (`rollup::cover`) and gives all
/// of its rows the run's names.
///
/// A bucket's period is told from its local time (UTC + the zone's offset
/// then), which is cheap; only a new local day needs the calendar (for the
/// month). The hour carries the offset, as its name does: a DST fall-back
/// day has two 01:00 hours.
pub fn periods(b0: u32, b1: u32, tz: &TimeZone, dims: &[usize]) -> Vec<(u32, u32, TimeNames)> {
    let used = |i: usize| dims.contains(&i);
    let mut month_of: Option<(i64, i64)> = None;
    let mut key = |b: u32| -> [i64; 5] {
        let ms = i64::from(b) * BUCKET_MS as i64;
        let off = Timestamp::from_millisecond(ms)
            .map(|t| i64::from(tz.to_offset(t).seconds()))
            .unwrap_or(0);
        let local_min = ms / 60_000 + off / 60;
        let day = local_min.div_euclid(1440);
        let mut k = [0i64; 5];
        if used(0) {
            k[0] = local_min.div_euclid(60);
            k[1] = off;
        }
        if used(1) {
            k[2] = day;
        }
        if used(2) {
            // Day 0 (1970-01-01) was a Thursday; ISO weeks start on Monday.
            k[3] = (day + 3).div_euclid(7);
        }
        if used(3) {
            k[4] = match month_of {
                Some((d, m)) if d == day => m,
                _ => {
                    let m = Timestamp::from_second(day * 86_400)
                        .map(|t| {
                            let d = t.to_zoned_datetime(TimeZone::UTC).date();
                            i64::from(d.year()) * 12 + i64::from(d.month())
                        })
                        .unwrap_or(0);
                    month_of = Some((day, m));
                    m
                }
            };
        }
        k
    };
    let mut out = Vec::new();
    let mut start = b0;
    let mut current = key(b0);
    for b in b0 + 1..b1 {
        let k = key(b);
        if k != current {
            out.push((start, b, names(u64::from(start) * BUCKET_MS, tz)));
            start = b;
            current = k;
        }
    }
    if start < b1 {
        out.push((start, b1, names(u64::from(start) * BUCKET_MS, tz)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_match_the_names_of_every_bucket() {
        // Kathmandu (+05:45), Kolkata, New York across both DST changes,
        // Lord Howe (a 30-minute DST shift), a month and a year boundary.
        for tz_name in [
            "UTC",
            "Asia/Kathmandu",
            "Asia/Kolkata",
            "America/New_York",
            "Australia/Lord_Howe",
        ] {
            let tz = zone(tz_name).unwrap();
            for (from, to) in [
                ("2026-10-30T00:00:00Z", "2026-11-03T00:00:00Z"),
                ("2026-03-07T03:15:00Z", "2026-03-09T11:45:00Z"),
                ("2026-04-03T10:00:00Z", "2026-04-06T00:00:00Z"),
                ("2026-12-28T00:00:00Z", "2027-01-06T00:00:00Z"),
            ] {
                let (b0, b1) = ((ms(from) / BUCKET_MS) as u32, (ms(to) / BUCKET_MS) as u32);
                for dims in [
                    vec![0],
                    vec![1],
                    vec![2],
                    vec![3],
                    vec![1, 3],
                    vec![2, 3],
                    vec![0, 2],
                ] {
                    let runs = periods(b0, b1, &tz, &dims);
                    let pick = |n: &TimeNames| -> Vec<String> {
                        dims.iter()
                            .map(|d| match d {
                                0 => n.hour.clone(),
                                1 => n.day.clone(),
                                2 => n.week.clone(),
                                _ => n.month.clone(),
                            })
                            .collect()
                    };
                    let mut x = b0;
                    let mut previous: Option<Vec<String>> = None;
                    for (s, e, n) in &runs {
                        assert_eq!(*s, x, "{tz_name} {dims:?}");
                        let want = pick(n);
                        assert_ne!(
                            previous.as_ref(),
                            Some(&want),
                            "{tz_name} {dims:?}: runs not merged"
                        );
                        for b in *s..*e {
                            let got = pick(&names(u64::from(b) * BUCKET_MS, &tz));
                            assert_eq!(got, want, "{tz_name} {dims:?} bucket {b}");
                        }
                        previous = Some(want);
                        x = *e;
                    }
                    assert_eq!(x, b1);
                }
            }
        }
    }

    fn ms(s: &str) -> u64 {
        s.parse::<Timestamp>().unwrap().as_millisecond() as u64
    }

    #[test]
    fn presets_are_days_in_the_zone() {
        let tz = zone("Asia/Kolkata").unwrap();
        // 19:00 UTC on 30 November is already 1 December in Kolkata.
        let now = ms("2026-11-30T19:00:00Z");
        let d = |s: &str| s.parse::<Date>().unwrap();
        assert_eq!(
            preset("today", &tz, now),
            Some((d("2026-12-01"), d("2026-12-01")))
        );
        assert_eq!(
            preset("yesterday", &tz, now),
            Some((d("2026-11-30"), d("2026-11-30")))
        );
        assert_eq!(
            preset("7d", &tz, now),
            Some((d("2026-11-25"), d("2026-12-01")))
        );
        assert_eq!(
            preset("30d", &tz, now),
            Some((d("2026-11-02"), d("2026-12-01")))
        );
        assert_eq!(
            preset("month", &tz, now),
            Some((d("2026-12-01"), d("2026-12-01")))
        );
        let utc = zone("UTC").unwrap();
        assert_eq!(
            preset("month", &utc, now),
            Some((d("2026-11-01"), d("2026-11-30")))
        );
        assert_eq!(preset("custom", &utc, now), None);
    }

    #[test]
    fn kolkata_days_start_at_1830_utc() {
        let tz = zone("Asia/Kolkata").unwrap();
        let r = resolve(Some("2026-12-01"), Some("2026-12-01"), &tz, 0).unwrap();
        assert_eq!(r.from_ms, ms("2026-11-30T18:30:00Z"));
        assert_eq!(r.to_ms, ms("2026-12-01T18:30:00Z"));
        // 23:50 and 00:10 Kolkata time are on different days.
        assert_eq!(names(ms("2026-12-01T18:15:00Z"), &tz).day, "2026-12-01");
        assert_eq!(names(ms("2026-12-01T18:30:00Z"), &tz).day, "2026-12-02");
    }

    #[test]
    fn new_york_dst_days_are_23_and_25_hours() {
        let tz = zone("America/New_York").unwrap();
        let spring = resolve(Some("2026-03-08"), Some("2026-03-08"), &tz, 0).unwrap();
        assert_eq!(spring.to_ms - spring.from_ms, 23 * 3_600_000);
        let fall = resolve(Some("2026-11-01"), Some("2026-11-01"), &tz, 0).unwrap();
        assert_eq!(fall.to_ms - fall.from_ms, 25 * 3_600_000);
        // The repeated 01:00 hour is two hours, told apart by the offset.
        assert_eq!(
            names(ms("2026-11-01T05:00:00Z"), &tz).hour,
            "2026-11-01T01:00-04:00"
        );
        assert_eq!(
            names(ms("2026-11-01T06:00:00Z"), &tz).hour,
            "2026-11-01T01:00-05:00"
        );
    }

    #[test]
    fn bad_ranges_say_why() {
        let tz = zone("UTC").unwrap();
        let code = |f: &str, t: &str| resolve(Some(f), Some(t), &tz, 0).unwrap_err().code;
        assert_eq!(code("2026-12-02", "2026-12-01"), "invalid_range");
        assert_eq!(code("2025-01-01", "2026-12-01"), "invalid_range");
        assert_eq!(code("yesterday", "2026-12-01"), "invalid_range");
        assert_eq!(code("2026-12-01T00:07:00Z", "2026-12-02"), "invalid_range");
        assert!(
            resolve(
                Some("2026-12-01T00:15:00Z"),
                Some("2026-12-01T01:00:00Z"),
                &tz,
                0
            )
            .is_ok()
        );
        assert_eq!(zone("Mars/Olympus").unwrap_err().code, "invalid_tz");
    }

    #[test]
    fn weeks_and_months() {
        let tz = zone("UTC").unwrap();
        let n = names(ms("2026-12-31T23:45:00Z"), &tz);
        assert_eq!((n.week.as_str(), n.month.as_str()), ("2026-W53", "2026-12"));
    }
}
