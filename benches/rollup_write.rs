//! The writer's cost of a click with its roll-ups, without HTTP: 32 tasks
//! each writing one click per job (as 32 connections do), durable commits,
//! for a few seconds. Prints clicks/s, jobs per commit and the writer's
//! time per click (batch work + commit + fsync, from `WriterStats`).
//! Clicks are spread like `benches/reports.rs` (20 links, 3 devices, 6
//! countries, 10,000 Zipf-like zones).
//!
//! `cargo bench --bench rollup_write -- [SECONDS]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use postbackd::ingest::{self, ClickWrite};
use postbackd::store::Store;
use postbackd::store::records::ClickRecord;

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// CPU seconds (user, system) of this process's thread named `name`, from
/// /proc: what the writer computes, apart from the time it waits for the
/// disk.
fn thread_cpu(name: &str) -> (f64, f64) {
    let mut total = (0.0, 0.0);
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
        total.0 += tick(11);
        total.1 += tick(12);
    }
    total
}

fn main() {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join("postbackd-rollup-write-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(Store::open(&dir.join("postbackd.redb")).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let n = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..32u64 {
            let (store, stop, n) = (store.clone(), stop.clone(), n.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = t << 40;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let r = mix(i);
                    let ms = postbackd::util::clock::now_ms();
                    let link = r % 20;
                    let zone = {
                        let u = ((r >> 20) % 1_000_000) as f64 / 1_000_000.0;
                        (10_000f64.powf(u) as u64).min(9_999)
                    };
                    let rec = ClickRecord {
                        ms,
                        slug: format!("l{link}"),
                        source_id: Some(1),
                        campaign: Some(format!("campaign{}", link % 5)),
                        ip: "203.0.113.45".into(),
                        device: ["desktop", "mobile", "tablet"][(r >> 8) as usize % 3].into(),
                        country: Some(
                            ["US", "IN", "DE", "BR", "GB", "FR"][(r >> 12) as usize % 6].into(),
                        ),
                        unique: !(r >> 16).is_multiple_of(3),
                        subs: vec![format!("z{zone}")],
                        params: vec![("utm_source".into(), "fb".into())],
                        ..Default::default()
                    };
                    let w = ClickWrite::new(postbackd::util::ids::new_id(ms), &rec);
                    store
                        .write(move |ctx| ingest::record_click(ctx, w))
                        .await
                        .unwrap()
                        .expect("no external ID in this bench");
                    n.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
    });
    let el = start.elapsed().as_secs_f64();
    // The thread name is cut to 15 bytes by the kernel.
    let cpu = thread_cpu("postbackd-write");
    let clicks = n.load(Ordering::Relaxed);
    let s = &store.stats;
    let commits = s.commits.load(Ordering::Relaxed).max(1);
    let jobs = s.committed_jobs.load(Ordering::Relaxed).max(1);
    let micros = s.commit_micros.load(Ordering::Relaxed);
    println!(
        "{clicks} clicks in {el:.1} s: {:.0} clicks/s, {:.1} jobs per commit, writer {:.1} µs per click ({:.0} µs per batch), writer CPU {:.1} µs user + {:.1} µs system per click",
        clicks as f64 / el,
        jobs as f64 / commits as f64,
        micros as f64 / jobs as f64,
        micros as f64 / commits as f64,
        cpu.0 * 1e6 / clicks.max(1) as f64,
        cpu.1 * 1e6 / clicks.max(1) as f64,
    );
    rt.block_on(store.close());
    let _ = std::fs::remove_dir_all(&dir);
}
