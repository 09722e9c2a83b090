//! Memory held by the per-IP rate limiter with 1,000,000 distinct client
//! IPs, before and after `retain_recent` (the pruning the server runs every
//! minute). Resident set size from /proc/self/statm (Linux).
//!
//! `cargo bench --bench ratelimit_memory`

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use postbackd::ratelimit::{RateConfig, RateLimits};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let limits = RateLimits::new(RateConfig {
        click_ip: Some((50, 100)),
        postback_ip: None,
        source_default: None,
    });
    let base = rss_bytes();
    const N: u32 = 1_000_000;
    for i in 0..N {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        let _ = limits.check_click(ip);
    }
    let filled = rss_bytes();
    let (keys_before, _) = limits.ip_keys();
    // One request used one cell of a 100-cell burst refilled at 50/s: every
    // key is fully replenished after 20 ms.
    std::thread::sleep(Duration::from_millis(100));
    limits.retain_recent(&|_| true);
    let pruned = rss_bytes();
    let (keys_after, _) = limits.ip_keys();
    println!("per-IP limiter, {N} distinct IPv4 keys (RSS from /proc/self/statm):");
    println!("  baseline RSS           {:8.1} MiB", mib(base));
    println!(
        "  after 1M keys          {:8.1} MiB  (+{:.1} MiB, {:.0} bytes/key), keys held: {keys_before}",
        mib(filled),
        mib(filled.saturating_sub(base)),
        filled.saturating_sub(base) as f64 / f64::from(N)
    );
    println!(
        "  after retain_recent    {:8.1} MiB  (+{:.1} MiB over baseline), keys held: {keys_after}",
        mib(pruned),
        mib(pruned.saturating_sub(base))
    );
}
