//! The one clock: Unix milliseconds now, an injectable [`Clock`] for code
//! whose timing tests run under a scripted time, and the RFC 3339 format
//! every API and payload uses for instants.

use std::sync::Arc;

/// Unix milliseconds now, from whichever source the caller was given.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Current time in Unix milliseconds (0 if the system clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The wall clock as a [`Clock`].
pub fn system_clock() -> Clock {
    Arc::new(now_ms)
}

/// RFC 3339 UTC time of Unix milliseconds (`2026-12-01T10:00:00.123Z`).
pub fn rfc3339(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Parse a `since`/`until` filter: RFC 3339, or Unix seconds.
pub fn parse_instant(s: &str) -> Option<u64> {
    if let Ok(secs) = s.parse::<u64>() {
        return secs.checked_mul(1000);
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            parse_instant("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_instant("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_instant("yesterday"), None);
    }
}
