//! Reports at scale: build a database of N clicks (default 10,000,000)
//! over the last 30 days through the click path's writer function (roll-ups
//! included), with 20 links in 5 campaigns, 3 devices, 6 countries and
//! 10,000 distinct sub1 values (a traffic source's zones, Zipf-like: a few
//! zones get most clicks), and one conversion per 50 clicks; then time the
//! report queries of the quality bars, once untimed (reported apart: the first read fills redb's cache) and then 30 times through the same
//! operation the API calls (`manage::reports::run`).
//!
//! `cargo bench --bench reports -- [N]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use postbackd::app::App;
use postbackd::config::Config;
use postbackd::inbound::postback::{Fields, Kind, Status};
use postbackd::ingest::{self, ClickWrite, RawRequest};
use postbackd::store::records::{self, ClickRecord, LinkRecord, SourceRecord};

mod support;

const LINKS: u64 = 20;
const ZONES: u64 = 10_000;

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(n));
}

/// A Zipf-like zone index: small indexes are much more frequent.
fn zone(r: u64) -> u64 {
    let u = (r % 1_000_000) as f64 / 1_000_000.0;
    ((ZONES as f64).powf(u) as u64).min(ZONES - 1)
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

async fn run(n: u64) {
    let dir = std::env::temp_dir().join("postbackd-reports-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = Config::with_data_dir(&dir);
    cfg.admin_token = Some("reports-bench-token-0123456789".into());
    let (app, _) = App::open(cfg).unwrap();
    let app = Arc::new(app);
    let now = postbackd::util::clock::now_ms();
    app.store
        .write(move |ctx| {
            let src = SourceRecord {
                name: "bench".into(),
                key: "k".repeat(32),
                preset: None,
                params: vec![],
                status_map: vec![],
                default_currency: "USD".into(),
                macro_syntax: None,
                created_ms: now,
                signing_secrets: vec![],
                signing_tolerance_s: 300,
                allow_ips: vec![],
                rate_limit: None,
                ipn: None,
            };
            ctx.sources()?.insert(1, records::encode(&src).as_slice())?;
            ctx.catalog_mut().put_source(1, src);
            for l in 0..LINKS {
                let rec = LinkRecord {
                    destination: "https://offer.example/?s={click_id}".into(),
                    source_id: Some(1),
                    campaign: Some(format!("campaign{}", l % 5)),
                    param: "click_id".into(),
                    created_ms: now,
                    subs: vec![("sub1".into(), "zone".into())],
                    ..Default::default()
                };
                let slug = format!("l{l}");
                ctx.links()?
                    .insert(slug.as_str(), records::encode(&rec).as_slice())?;
                ctx.catalog_mut().put_link(slug, rec);
            }
            Ok(())
        })
        .await
        .unwrap();

    const JOB: u64 = 5_000;
    let span_ms: u64 = 30 * 86_400_000;
    let start = Instant::now();
    let mut pending = Vec::new();
    for j in 0..n.div_ceil(JOB) {
        let (from, to) = (j * JOB, ((j + 1) * JOB).min(n));
        let store = app.store.clone();
        pending.push(tokio::spawn(async move {
            let mut writes = Vec::new();
            let mut convs = Vec::new();
            for i in from..to {
                let r = mix(i);
                let ms = now - span_ms + i * span_ms / n.max(1);
                let id = postbackd::util::ids::new_id(ms);
                let link = r % LINKS;
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
                    subs: vec![format!("z{}", zone(r >> 20))],
                    params: vec![("utm_source".into(), "fb".into())],
                    ..Default::default()
                };
                if i.is_multiple_of(50) {
                    convs.push((id.clone(), ms + 600_000));
                }
                writes.push(ClickWrite::new(id, &rec));
            }
            store
                .write(move |ctx| {
                    for w in writes {
                        ingest::record_click(ctx, w)?.expect("no external ID");
                    }
                    for (k, (click, at)) in convs.iter().enumerate() {
                        let f = Fields {
                            click_id: click.clone(),
                            click_id_as_sent: click.clone(),
                            amount: Some("12.50".parse().unwrap()),
                            kind: Kind::Purchase,
                            currency: "USD".into(),
                            transaction_id: Some(format!("t{from}-{k}")),
                            event: None,
                            status: Status::Approved,
                            country: None,
                            state: None,
                            city: None,
                            zip: None,
                            extra: vec![],
                        };
                        let raw = RawRequest {
                            method: "GET".into(),
                            path: "/p/k".into(),
                            query: String::new(),
                            content_type: None,
                            body: vec![],
                            body_truncated: false,
                            remote_ip: "127.0.0.1".into(),
                            user_agent: None,
                        };
                        ingest::record_postback(ctx, ingest::Postback::new(1, raw, Ok(f)), *at)?;
                    }
                    Ok(())
                })
                .await
        }));
        if pending.len() >= 4 {
            for p in pending.drain(..) {
                p.await.unwrap().unwrap();
            }
        }
    }
    for p in pending.drain(..) {
        p.await.unwrap().unwrap();
    }
    let rows = app
        .store
        .read(|rtx| {
            use redb::ReadableTableMetadata;
            Ok(rtx.open_table(postbackd::store::ROLLUPS)?.len()?)
        })
        .await
        .unwrap();
    println!(
        "built {n} clicks (+{} conversions) in {:.1} s; {rows} roll-up rows",
        n / 50,
        start.elapsed().as_secs_f64()
    );

    let today = jiff::Timestamp::from_millisecond(now as i64)
        .unwrap()
        .in_tz("UTC")
        .unwrap()
        .date();
    let from = today.checked_sub(jiff::Span::new().days(29)).unwrap();
    for (label, group_by, bar_ms) in [
        ("group_by=day", "day", 50.0),
        ("group_by=campaign,day", "campaign,day", 50.0),
        ("group_by=sub1 (10,000 zones)", "sub1", 300.0),
    ] {
        let mut lat: Vec<Duration> = Vec::new();
        let mut rows_out = 0;
        // The first run reads its rows from the disk (or the OS's cache)
        // into redb's cache: reported apart, then 30 runs timed.
        let mut first = Duration::ZERO;
        for i in 0..31 {
            let pairs = vec![
                ("group_by".to_string(), group_by.to_string()),
                ("from".into(), from.to_string()),
                ("to".into(), today.to_string()),
                ("limit".into(), "10000".into()),
            ];
            let t = Instant::now();
            let (_, r) = postbackd::manage::reports::run(&app, pairs).await.unwrap();
            if i == 0 {
                first = t.elapsed();
            } else {
                lat.push(t.elapsed());
            }
            rows_out = r.total_rows;
        }
        lat.sort();
        let pct = |p: f64| support::percentile(&lat, p).as_secs_f64() * 1000.0;
        // Where the time goes: reading and grouping the roll-up rows alone
        // (`reports::run`), and how many rows that read.
        let pairs = vec![
            ("group_by".to_string(), group_by.to_string()),
            ("from".into(), from.to_string()),
            ("to".into(), today.to_string()),
        ];
        let p = postbackd::reports::Params::parse(&pairs, "UTC", now).unwrap();
        let (scan, read) = app
            .store
            .read(move |rtx| {
                let t = Instant::now();
                let g = postbackd::reports::run(rtx, &p)?;
                Ok((t.elapsed(), g.rows_read))
            })
            .await
            .unwrap();
        println!(
            "{label}, 30 days: {rows_out} rows; p50 {:.1} ms, p99 {:.1} ms (bar {bar_ms} ms p99), \
             first run {:.1} ms; reading and grouping {read} roll-up rows {:.1} ms of it",
            pct(0.5),
            pct(0.99),
            first.as_secs_f64() * 1000.0,
            scan.as_secs_f64() * 1000.0
        );
    }
    // The dashboard's pages, rendered to their last byte (the same
    // functions `/ui/overview` and `/ui/reports` call, signed in).
    let viewer = postbackd::http::ui::session::Viewer {
        name: "bench".into(),
        role: postbackd::manage::users::Role::Admin,
        csrf: "bench-csrf".into(),
    };
    for (label, page, query) in [
        (
            "dashboard overview page, last 30 days",
            "overview",
            "range=30d",
        ),
        (
            "dashboard reports page, campaign by day, 30 days",
            "reports",
            "range=30d&g1=campaign&g2=day",
        ),
    ] {
        use http_body_util::BodyExt;
        use postbackd::http::ui;
        let form = ui::form::Form::from_query(query);
        let mut lat: Vec<Duration> = Vec::new();
        let mut bytes = 0;
        for _ in 0..30 {
            let t = Instant::now();
            let resp = match page {
                "overview" => ui::overview::get(&app, &viewer, &form).await,
                _ => ui::reports::get(&app, &viewer, &form).await,
            };
            assert_eq!(resp.status(), 200);
            bytes = resp.into_body().collect().await.unwrap().to_bytes().len();
            lat.push(t.elapsed());
        }
        lat.sort();
        let pct = |p: f64| support::percentile(&lat, p).as_secs_f64() * 1000.0;
        println!(
            "{label}: {bytes} bytes; p50 {:.1} ms, p99 {:.1} ms (bar 100 ms p99)",
            pct(0.5),
            pct(0.99)
        );
    }
    app.store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
