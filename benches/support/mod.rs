//! Helpers shared by the bench binaries (each bench is its own crate, so
//! they include this file with `mod support;`).

use std::time::Duration;

/// The nearest-rank percentile `p` (0..=1) of `sorted` (ascending), or
/// zero when there are no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
