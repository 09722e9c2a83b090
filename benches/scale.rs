//! Scale: build a database of N clicks (default 10,000,000) through the
//! real write path (the group-commit writer, the same records and tables),
//! then measure what a restart and a lookup cost at that size.
//!
//! `cargo bench --bench scale -- [N] [DATA_DIR]`
//! (DATA_DIR is kept for the load harness: `DATA_DIR=... benches/load.sh`.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use postbackd::app::App;
use postbackd::config::Config;
use postbackd::store::records::{self, ClickRecord};
use postbackd::store::{CLICKS, LINKS, StoreError, records::LinkRecord};

mod support;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let n: u64 = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let dir = args
        .iter()
        .find(|a| a.parse::<u64>().is_err())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("postbackd-scale"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(n, dir));
}

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

async fn run(n: u64, dir: std::path::PathBuf) {
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = || {
        let mut c = Config::with_data_dir(&dir);
        c.admin_token = Some("scale-bench-token-0123456789".into());
        c
    };
    let (app, _) = App::open(cfg()).unwrap();
    let app = Arc::new(app);
    // The link the harness clicks.
    let now = postbackd::util::clock::now_ms();
    app.store
        .write(move |ctx| {
            let l = LinkRecord {
                destination: "https://offer.example/?s={click_id}".into(),
                source_id: None,
                campaign: None,
                param: "click_id".into(),
                created_ms: now,
                ..Default::default()
            };
            ctx.links()?.insert("b", records::encode(&l).as_slice())?;
            ctx.catalog_mut().put_link("b".into(), l);
            Ok(())
        })
        .await
        .unwrap();
    let _ = LINKS;
    // Clicks as the click path writes them, spread over the last 30 days,
    // in jobs of 10,000 (several jobs per group commit).
    const JOB: u64 = 10_000;
    let start = Instant::now();
    let span_ms: u64 = 30 * 86_400_000;
    let mut sample_ids = Vec::new();
    let mut pending = Vec::new();
    for j in 0..n.div_ceil(JOB) {
        let from = j * JOB;
        let to = (from + JOB).min(n);
        let store = app.store.clone();
        let ids: Vec<String> = (from..to)
            .map(|i| postbackd::util::ids::new_id(now - span_ms + i * span_ms / n.max(1)))
            .collect();
        if j % 97 == 0 {
            sample_ids.push(ids[0].clone());
        }
        pending.push(tokio::spawn(async move {
            store
                .write(move |ctx| {
                    for id in &ids {
                        let c = ClickRecord {
                            ms: postbackd::util::ids::time_of(id).unwrap_or(0),
                            slug: "b".into(),
                            source_id: Some(1),
                            campaign: None,
                            head: false,
                            ip: "203.0.113.45".into(),
                            user_agent: Some("Mozilla/5.0 (Linux; Android 14) Mobile".into()),
                            referrer: None,
                            params: vec![("utm_source".into(), "fb".into())],
                            fbc: None,
                            fbp: None,
                            device: "mobile".into(),
                            os: Some("Android".into()),
                            browser: Some("Chrome Mobile".into()),
                            country: Some("US".into()),
                            bot: false,
                            unique: true,
                            ..Default::default()
                        };
                        ctx.clicks()?
                            .insert(id.as_str(), records::encode(&c).as_slice())?;
                    }
                    Ok(())
                })
                .await
        }));
        if pending.len() >= 8 {
            for p in pending.drain(..) {
                p.await.unwrap().unwrap();
            }
        }
    }
    for p in pending.drain(..) {
        p.await.unwrap().unwrap();
    }
    let build = start.elapsed();
    app.store.close().await;
    drop(app);
    let size = std::fs::metadata(dir.join("postbackd.redb")).unwrap().len();
    println!(
        "built {n} clicks in {:.1} s ({:.0} clicks/s through the writer); file {:.1} MiB = {:.0} bytes/click",
        build.as_secs_f64(),
        n as f64 / build.as_secs_f64(),
        size as f64 / 1048576.0,
        size as f64 / n as f64
    );

    // Start-up on that file (clean shutdown).
    let t = Instant::now();
    let (app, _) = App::open(cfg()).unwrap();
    let startup = t.elapsed();
    println!(
        "start-up (open + catalog) with {n} clicks: {:.1} ms",
        startup.as_secs_f64() * 1000.0
    );

    // Click lookups: the admin path's read, by random IDs.
    let ids = Arc::new(sample_ids);
    let mut lat: Vec<Duration> = Vec::new();
    for round in 0..2000 {
        let ids = ids.clone();
        let t = Instant::now();
        let found = app
            .store
            .read(move |rtx| {
                let tbl = rtx.open_table(CLICKS)?;
                let id = &ids[round % ids.len()];
                let v = tbl.get(id.as_str())?;
                Ok::<_, StoreError>(v.is_some())
            })
            .await
            .unwrap();
        assert!(found);
        lat.push(t.elapsed());
    }
    lat.sort();
    let pct = |p: f64| support::percentile(&lat, p).as_secs_f64() * 1000.0;
    println!(
        "click lookup (read transaction + get, {} lookups): p50 {:.3} ms, p99 {:.3} ms",
        lat.len(),
        pct(0.5),
        pct(0.99)
    );
    println!("RSS after lookups: {:.1} MiB", rss_mib());
    app.store.close().await;
    println!(
        "data dir kept at {} (DATA_DIR=... benches/load.sh measures throughput on it)",
        dir.display()
    );
}
