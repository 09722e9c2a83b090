//! Constant-rate (open-loop) load generator for the load harness's "p99 at
//! 80% of the maximum" row. wrk is closed-loop: a slow answer delays the
//! next request, so its latencies hide queueing (coordinated omission), and
//! its `delay()` hook only approximates a rate. Here a pacer thread issues
//! requests on a fixed schedule (one every 1/RATE s), dealt round-robin to
//! C keep-alive connections, and every request is timed from when it was
//! *due*, as wrk2 does: a stall shows up in every request it delayed.
//!
//! `cargo bench --bench paced -- URL RATE|max CONNECTIONS SECONDS`
//!
//! `max` runs closed-loop instead (each connection sends as soon as its
//! answer is in): the maximum *with this client*, whose own CPU, on a
//! shared 2-core machine, is not wrk's; the harness paces at 80% of it.
//!
//! `{n}` in URL is replaced by a per-request counter (unique transaction
//! IDs for postbacks). Prints one line:
//! `achieved_rps p50_ms p99_ms p999_ms max_ms non_2xx_3xx errors sent`.
//! The pacer wakes every 100 µs (tokio's timer, at 1 ms, is too coarse for
//! per-connection intervals of about 0.5 ms) and hands out every request
//! due by then, so the figures include up to ~0.2 ms of the generator's
//! own lateness: they err high, never low.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod support;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [template, rate, conns, secs] = &args[..] else {
        eprintln!("usage: paced URL RATE|max CONNECTIONS SECONDS");
        std::process::exit(2);
    };
    let template = template.clone();
    let url: hyper::Uri = template.replace("{n}", "0").parse().expect("URL");
    // "max": closed loop (each connection sends its next request as soon as
    // the answer is in), to measure the maximum with this same client.
    let rate: Option<f64> = (rate != "max").then(|| rate.parse().expect("RATE or max"));
    let conns: usize = conns.parse().expect("CONNECTIONS");
    let secs: f64 = secs.parse().expect("SECONDS");
    let addr = format!(
        "{}:{}",
        url.host().expect("host"),
        url.port_u16().unwrap_or(80)
    );
    let counter = Arc::new(AtomicU64::new(0));
    let (queues, receivers): (Vec<_>, Vec<_>) = (0..conns)
        .map(|_| tokio::sync::mpsc::unbounded_channel::<Instant>())
        .unzip();
    // Connect before the clock starts.
    let start = Instant::now() + Duration::from_millis(200);
    let deadline = start + Duration::from_secs_f64(secs);
    // The connections run on one thread (a current-thread runtime): cheaper
    // per request than a work-stealing pool, so more of the machine is left
    // to the server under test.
    let runner = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let tasks: Vec<_> = receivers
                .into_iter()
                .map(|rx| {
                    let (addr, template, counter) =
                        (addr.clone(), template.clone(), counter.clone());
                    let schedule = match rate {
                        Some(_) => Schedule::Paced(rx),
                        None => Schedule::ClosedLoop { start, deadline },
                    };
                    tokio::spawn(
                        async move { connection(&addr, &template, &counter, schedule).await },
                    )
                })
                .collect();
            let (mut lat, mut bad, mut errors) = (Vec::new(), 0u64, 0u64);
            for t in tasks {
                let (l, b, e) = t.await.expect("connection task");
                lat.extend(l);
                bad += b;
                errors += e;
            }
            (lat, bad, errors)
        })
    });
    std::thread::sleep(start.saturating_duration_since(Instant::now()));
    if let Some(rate) = rate {
        let total = (rate * secs) as u64;
        let interval = Duration::from_secs_f64(1.0 / rate);
        let mut next = 0u64;
        while next < total {
            let now = Instant::now();
            while next < total {
                let due = start + interval.mul_f64(next as f64);
                if due > now {
                    break;
                }
                let _ = queues[(next % conns as u64) as usize].send(due);
                next += 1;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    drop(queues);
    let (lat, bad, errors) = runner.join().expect("connections");
    let elapsed = start.elapsed().as_secs_f64();
    if std::env::var_os("PACED_TIMELINE").is_some() {
        timeline(&lat, start);
    }
    let mut lat: Vec<Duration> = lat.into_iter().map(|(_, l)| l).collect();
    lat.sort_unstable();
    let pct = |p: f64| support::percentile(&lat, p).as_secs_f64() * 1000.0;
    println!(
        "{:.0} {:.3} {:.3} {:.3} {:.3} {} {} {}",
        lat.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        bad,
        errors,
        lat.len()
    );
}

/// PACED_TIMELINE=1: the worst latency of each 100 ms of the schedule, on
/// stderr, to see whether a tail comes from one stall or from everywhere.
fn timeline(lat: &[(Instant, Duration)], start: Instant) {
    let mut worst: Vec<Duration> = Vec::new();
    for (due, l) in lat {
        let slot = (due.saturating_duration_since(start).as_millis() / 100) as usize;
        if worst.len() <= slot {
            worst.resize(slot + 1, Duration::ZERO);
        }
        worst[slot] = worst[slot].max(*l);
    }
    for (i, w) in worst.iter().enumerate() {
        eprintln!("{:>6} ms {:>8.3}", i * 100, w.as_secs_f64() * 1000.0);
    }
}

/// When a connection's requests are due.
enum Schedule {
    /// Due times handed out by the pacer.
    Paced(tokio::sync::mpsc::UnboundedReceiver<Instant>),
    /// Back to back from `start` until `deadline`.
    ClosedLoop { start: Instant, deadline: Instant },
}

impl Schedule {
    async fn next(&mut self) -> Option<Instant> {
        match self {
            Schedule::Paced(rx) => rx.recv().await,
            Schedule::ClosedLoop { start, deadline } => {
                if Instant::now() < *start {
                    tokio::time::sleep_until((*start).into()).await;
                }
                let now = Instant::now();
                (now < *deadline).then_some(now)
            }
        }
    }
}

/// One keep-alive connection sending each request handed to it (its due
/// time) as soon as the previous answer is in; returns the latencies (due
/// time to complete response), the non-2xx/3xx count and the transport
/// errors. Raw HTTP/1.1 on a TcpStream, like wrk: a full HTTP client costs
/// the generator about twice the CPU per request, taken from the server on
/// a shared machine.
async fn connection(
    addr: &str,
    template: &str,
    counter: &AtomicU64,
    mut schedule: Schedule,
) -> (Vec<(Instant, Duration)>, u64, u64) {
    let (mut lat, mut bad, mut errors) = (Vec::new(), 0, 0);
    let mut stream = connect(addr).await.ok();
    let mut buf = Vec::with_capacity(4096);
    let mut req = Vec::with_capacity(512);
    let path = match template.find("://") {
        Some(i) => template[i + 3..]
            .find('/')
            .map_or("/", |j| &template[i + 3 + j..]),
        None => template,
    };
    while let Some(due) = schedule.next().await {
        if stream.is_none() {
            match connect(addr).await {
                Ok(s) => stream = Some(s),
                Err(_) => {
                    errors += 1;
                    continue;
                }
            }
        }
        let n = counter.fetch_add(1, Ordering::Relaxed);
        req.clear();
        req.extend_from_slice(b"GET ");
        req.extend_from_slice(path.replace("{n}", &n.to_string()).as_bytes());
        req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        req.extend_from_slice(addr.as_bytes());
        req.extend_from_slice(b"\r\n\r\n");
        let s = stream.as_mut().expect("connected");
        match exchange(s, &req, &mut buf).await {
            Ok(status) => {
                lat.push((due, due.elapsed()));
                if !(200..400).contains(&status) {
                    bad += 1;
                }
            }
            Err(_) => {
                errors += 1;
                stream = None;
            }
        }
    }
    (lat, bad, errors)
}

/// Send one request and read its whole response (which must carry a
/// Content-Length, as every postbackd and ceiling answer does); returns
/// the status code.
async fn exchange(
    s: &mut tokio::net::TcpStream,
    req: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    s.write_all(req).await?;
    buf.clear();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad("head"))?;
            let status = head
                .get(9..12)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| bad("status"))?;
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .ok_or_else(|| bad("no content-length"))?;
            while buf.len() < end + 4 + len {
                if s.read_buf(buf).await? == 0 {
                    return Err(bad("closed"));
                }
            }
            return Ok(status);
        }
        if s.read_buf(buf).await? == 0 {
            return Err(bad("closed"));
        }
    }
}

async fn connect(addr: &str) -> std::io::Result<tokio::net::TcpStream> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}
