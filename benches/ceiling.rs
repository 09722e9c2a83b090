//! The ceiling for the load harness: a bare hyper server answering the same
//! 302 as `/c/{slug}` (a fresh click ID, the same template expansion, the
//! same headers) without storing anything, on the same runtime and
//! allocator. Its HTTP/1 settings are hyper's defaults: postbackd raises
//! hyper's head limits (256 headers, 256 KiB) so that its own JSON 431
//! answers every oversized head, which costs it about 0.4 µs per request
//! (6% of this server's rate when this server does the same); that cost is
//! counted against postbackd, not hidden by a slower ceiling.
//!
//! With `--journal DIR` it is also the *durable* ceiling: before each 302
//! the request's record (the click ID, the query and the user agent, about
//! what postbackd's event record holds) is appended to one file by one
//! writer thread that takes every record waiting, writes them with one
//! `write` and calls `fdatasync` once for the lot (group commit), the best
//! any design can do that answers only after its write is on disk: no
//! index, no B-tree, no page bookkeeping. Its ratio to the plain ceiling is
//! what the disk and the hand-off leave for any durable design on the same
//! machine; postbackd's ratio to it is what redb's commit and the
//! indexes cost.
//!
//! `cargo bench --bench ceiling -- 127.0.0.1:18900 [--journal DIR]` (runs
//! until killed)

use std::convert::Infallible;
use std::io::Write;
use std::sync::mpsc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, HeaderValue, LOCATION};
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;

/// The same allocator as postbackd, so the ratio measures storage, not
/// malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One record and the answer waiting for its fsync.
type Job = (Vec<u8>, tokio::sync::oneshot::Sender<()>);

/// The group-commit writer: block for one job, take every other waiting
/// job, one append, one `fdatasync`, then wake them all.
fn journal_writer(dir: &str, jobs: mpsc::Receiver<Job>) {
    let path = std::path::Path::new(dir).join("ceiling-journal.bin");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("journal file");
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut waiting = Vec::with_capacity(256);
    while let Ok(first) = jobs.recv() {
        waiting.push(first);
        while let Ok(more) = jobs.try_recv() {
            waiting.push(more);
        }
        buf.clear();
        for (record, _) in &waiting {
            buf.extend_from_slice(&(record.len() as u32).to_le_bytes());
            buf.extend_from_slice(record);
        }
        file.write_all(&buf).expect("journal write");
        file.sync_data().expect("fdatasync");
        for (_, done) in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args
        .iter()
        .find(|a| a.contains(':'))
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:18900".into());
    let journal = args
        .iter()
        .position(|a| a == "--journal")
        .and_then(|i| args.get(i + 1))
        .map(|dir| {
            let (tx, rx) = mpsc::channel::<Job>();
            let dir = dir.clone();
            std::thread::spawn(move || journal_writer(&dir, rx));
            tx
        });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
        println!("ceiling listening on http://{addr}");
        let mut builder = Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).keep_alive(true);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let builder = builder.clone();
            let journal = journal.clone();
            tokio::spawn(async move {
                let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| {
                    let journal = journal.clone();
                    async move {
                        let params: Vec<(String, String)> =
                            form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                                .into_owned()
                                .collect();
                        let id = postbackd::util::ids::new_id(postbackd::util::clock::now_ms());
                        let loc = postbackd::tracking::click::expand(
                            "https://offer.example/?s={click_id}",
                            &id,
                            &params,
                            "click_id",
                        );
                        if let Some(journal) = journal {
                            let mut record = Vec::with_capacity(256);
                            record.extend_from_slice(id.as_bytes());
                            record.push(0);
                            record.extend_from_slice(req.uri().query().unwrap_or("").as_bytes());
                            record.push(0);
                            if let Some(ua) = req.headers().get(hyper::header::USER_AGENT) {
                                record.extend_from_slice(ua.as_bytes());
                            }
                            let (done, stored) = tokio::sync::oneshot::channel();
                            journal.send((record, done)).expect("journal writer");
                            stored.await.expect("journal writer");
                        }
                        let mut r = Response::new(Full::new(Bytes::new()));
                        *r.status_mut() = StatusCode::FOUND;
                        r.headers_mut()
                            .insert(LOCATION, HeaderValue::from_str(&loc).unwrap());
                        r.headers_mut()
                            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                        r.headers_mut()
                            .insert("x-postbackd-click-id", HeaderValue::from_str(&id).unwrap());
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
}
