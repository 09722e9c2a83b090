//! Constant-rate (open-loop) load generator for the load harness's "p99 at
//! 80% of the maximum" row. wrk is closed-loop: a slow answer delays the
//! next request, so its latencies hide queueing (coordinated omission), and
//! its `delay()` hook only approximates a rate. Here each of C keep-alive
//! connections sends on a fixed schedule (rate / C per second, staggered),
//! and a request that had to wait for the previous answer is timed from
//! when it was *due*, as wrk2 does: a stall shows up in every request it
//! delayed.
//!
//! `cargo bench --bench paced -- URL RATE CONNECTIONS SECONDS`
//!
//! `{n}` in URL is replaced by a per-request counter (unique transaction
//! IDs for postbacks). Prints one line:
//! `achieved_rps p50_ms p99_ms p999_ms max_ms non_2xx_3xx errors sent`.
//! tokio's timer has 1 ms resolution, so a request on an idle connection
//! leaves up to 1 ms after its due time; that lateness is the generator's,
//! not the server's, and such a request is timed from when it was sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [url, rate, conns, secs] = &args[..] else {
        eprintln!("usage: paced URL RATE CONNECTIONS SECONDS");
        std::process::exit(2);
    };
    let url: hyper::Uri = url.replace("{n}", "0").parse().expect("URL");
    let template = args[0].clone();
    let rate: f64 = rate.parse().expect("RATE");
    let conns: usize = conns.parse().expect("CONNECTIONS");
    let secs: f64 = secs.parse().expect("SECONDS");
    let addr = format!(
        "{}:{}",
        url.host().expect("host"),
        url.port_u16().unwrap_or(80)
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let counter = Arc::new(AtomicU64::new(0));
    let (lat, bad, errors, elapsed) = rt.block_on(async move {
        let interval = Duration::from_secs_f64(conns as f64 / rate);
        let start = tokio::time::Instant::now() + Duration::from_millis(50);
        let end = start + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for c in 0..conns {
            let (addr, template, counter) = (addr.clone(), template.clone(), counter.clone());
            // Stagger the connections evenly over one interval.
            let first = start + interval.mul_f64(c as f64 / conns as f64);
            tasks.push(tokio::spawn(async move {
                connection(&addr, &template, &counter, first, interval, end).await
            }));
        }
        let t0 = Instant::now();
        let (mut lat, mut bad, mut errors) = (Vec::new(), 0u64, 0u64);
        for t in tasks {
            let (l, b, e) = t.await.expect("connection task");
            lat.extend(l);
            bad += b;
            errors += e;
        }
        (lat, bad, errors, t0.elapsed().as_secs_f64() - 0.05)
    });
    let mut lat = lat;
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i].as_secs_f64() * 1000.0
    };
    println!(
        "{:.0} {:.3} {:.3} {:.3} {:.3} {} {} {}",
        lat.len() as f64 / elapsed.max(secs),
        pct(0.50),
        pct(0.99),
        pct(0.999),
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        bad,
        errors,
        lat.len()
    );
}

/// One keep-alive connection sending on its schedule until `end`; returns
/// the latencies (from due time to complete response), the non-2xx/3xx
/// count and the transport errors.
async fn connection(
    addr: &str,
    template: &str,
    counter: &AtomicU64,
    first: tokio::time::Instant,
    interval: Duration,
    end: tokio::time::Instant,
) -> (Vec<Duration>, u64, u64) {
    let (mut lat, mut bad, mut errors) = (Vec::new(), 0, 0);
    let mut sender = None;
    let mut due = first;
    // When the previous answer arrived: if after `due`, the server made
    // this request late by the difference.
    let mut prev_done = first;
    while due < end {
        tokio::time::sleep_until(due).await;
        if sender.is_none() {
            match connect(addr).await {
                Ok(s) => sender = Some(s),
                Err(_) => {
                    errors += 1;
                    due += interval;
                    continue;
                }
            }
        }
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let target = template.replace("{n}", &n.to_string());
        let uri: hyper::Uri = target.parse().expect("URL");
        let req = hyper::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(hyper::header::HOST, addr)
            .body(Empty::<Bytes>::new())
            .expect("request");
        let s = sender.as_mut().expect("connected");
        // Charge the server for the time its previous answer held this
        // request back past its due time, not for the timer's lateness.
        let now = tokio::time::Instant::now();
        let started = now - prev_done.saturating_duration_since(due);
        match s.send_request(req).await {
            Ok(resp) => {
                let status = resp.status();
                let _ = resp.into_body().collect().await;
                prev_done = tokio::time::Instant::now();
                lat.push(prev_done - started);
                if !(status.is_success() || status.is_redirection()) {
                    bad += 1;
                }
            }
            Err(_) => {
                errors += 1;
                sender = None;
            }
        }
        due += interval;
    }
    (lat, bad, errors)
}

async fn connect(
    addr: &str,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, Box<dyn std::error::Error>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}
