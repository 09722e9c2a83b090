//! The disk's own commit latency, without postbackd: a loop that writes
//! what one of postbackd's click commits writes (about 9 pages of 4 KiB:
//! seven rewritten, two appended) and calls `fdatasync`, timed in 100 ms
//! windows. The load harness runs it alone and then beside the ceiling
//! server under wrk, to tell a tail that postbackd causes from one the
//! platform causes: on a shared 2-core VM, `fdatasync` latency has
//! episodes of a few hundred ms when the CPUs are saturated, with no
//! database involved.
//!
//! `cargo bench --bench fsync_probe -- DIR SECONDS`
//!
//! Prints one line: `commits_per_s p50_us p99_us max_us slow_windows
//! windows`, where a slow window is a 100 ms window whose mean `fdatasync`
//! time is over 1.5 × the median window's.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

mod support;

const PAGE: usize = 4096;
const REWRITTEN: u64 = 7;
const APPENDED: u64 = 2;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [dir, secs] = &args[..] else {
        eprintln!("usage: fsync_probe DIR SECONDS");
        std::process::exit(2);
    };
    let secs: f64 = secs.parse().expect("SECONDS");
    let path = std::path::Path::new(dir).join("fsync_probe.bin");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("probe file");
    let page = [b'x'; PAGE];
    let start = Instant::now();
    let run = Duration::from_secs_f64(secs);
    let mut all: Vec<Duration> = Vec::new();
    // (sum, count) of fdatasync times per 100 ms window.
    let mut windows: Vec<(Duration, u32)> = Vec::new();
    let mut next_page = REWRITTEN;
    while start.elapsed() < run {
        for p in 0..REWRITTEN {
            file.write_all_at(&page, p * PAGE as u64).expect("pwrite");
        }
        for _ in 0..APPENDED {
            file.write_all_at(&page, next_page * PAGE as u64)
                .expect("pwrite");
            next_page += 1;
        }
        let t = Instant::now();
        file.sync_data().expect("fdatasync");
        let took = t.elapsed();
        all.push(took);
        let w = (t.duration_since(start).as_millis() / 100) as usize;
        if windows.len() <= w {
            windows.resize(w + 1, (Duration::ZERO, 0));
        }
        windows[w].0 += took;
        windows[w].1 += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    drop(file);
    let _ = std::fs::remove_file(&path);
    let mut means: Vec<f64> = windows
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(d, n)| d.as_secs_f64() / f64::from(*n))
        .collect();
    let n_windows = means.len();
    let slow = {
        let mut sorted = means.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
        means.retain(|m| *m > 1.5 * median);
        means.len()
    };
    all.sort_unstable();
    let pct = |p: f64| support::percentile(&all, p).as_secs_f64() * 1e6;
    println!(
        "{:.0} {:.0} {:.0} {:.0} {} {}",
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        all.last().map_or(0.0, |d| d.as_secs_f64() * 1e6),
        slow,
        n_windows
    );
}
