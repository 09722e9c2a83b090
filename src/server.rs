//! The hyper server: accept loop, per-connection tasks, graceful shutdown.
//!
//! `run` takes the listener and the shutdown future as parameters (the
//! mini-redis shape), so tests bind `127.0.0.1:0` and stop the server at
//! will.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::api;
use crate::config::{self, Config, TokenOrigin};
use crate::query::Limits;
use crate::ratelimit::RateLimits;
use crate::store::{OpenError, Store};

/// How long in-flight requests get to finish after shutdown starts.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// How often rate-limiter state is pruned and old signatures forgotten.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);

/// Everything a request handler needs.
pub struct App {
    pub config: Config,
    pub store: Store,
    /// Never logged; compared in constant time.
    admin_token: String,
    /// Bounds for parsing postback parameters.
    pub limits: Limits,
    /// Per-IP and per-source rate limiters.
    pub rate: RateLimits,
}

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    Io(std::io::Error),
    Open(OpenError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Io(e) => write!(f, "{e}"),
            StartError::Open(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl App {
    /// Create the data dir, resolve the admin token, open the database.
    pub fn open(config: Config) -> Result<(App, TokenOrigin), StartError> {
        App::open_inner(config, None)
    }

    /// [`App::open`] with a fault-injecting storage backend (disk-full tests).
    pub fn open_with_fault(
        config: Config,
        fault: Arc<crate::store::fault::DiskFault>,
    ) -> Result<(App, TokenOrigin), StartError> {
        App::open_inner(config, Some(fault))
    }

    fn open_inner(
        config: Config,
        fault: Option<Arc<crate::store::fault::DiskFault>>,
    ) -> Result<(App, TokenOrigin), StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            StartError::Io(std::io::Error::new(
                e.kind(),
                format!("cannot create data dir {}: {e}", config.data_dir.display()),
            ))
        })?;
        let (admin_token, origin) = config::admin_token(&config).map_err(StartError::Io)?;
        let store = match fault {
            None => Store::open(&config.db_path()),
            Some(f) => Store::open_with_fault(&config.db_path(), f),
        }
        .map_err(StartError::Open)?;
        Ok((
            App {
                rate: RateLimits::new(config.rate),
                config,
                store,
                admin_token,
                limits: Limits::default(),
            },
            origin,
        ))
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }
}

/// Serve until `shutdown` resolves, then drain connections (up to the
/// deadline) and stop the writer after its queued jobs.
pub async fn run(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // Also the keep-alive idle timeout: hyper starts it whenever it
        // waits for the next request's head.
        .header_read_timeout(app.config.header_read_timeout)
        // Bounds per-connection memory; requests whose head does not fit
        // get hyper's own 431. Smaller excesses get our JSON 414/431.
        .max_buf_size(64 * 1024)
        .max_headers(api::MAX_HEADERS * 2)
        .keep_alive(true);
    // A permit per open connection: at the cap, the accept loop waits and
    // new connections queue in the kernel instead of exhausting memory.
    let permits = Arc::new(Semaphore::new(app.config.max_connections));
    let maintenance = tokio::spawn(maintenance(app.clone()));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let svc = service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(api::handle(app, peer, req).await) }
                });
                let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), svc));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    drop(permit);
                });
            }
            () = &mut shutdown => break,
        }
    }
    maintenance.abort();
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_DEADLINE) => {
            tracing::warn!("drain deadline passed; closing remaining connections");
        }
    }
    app.store.close().await;
}

/// Periodic upkeep: prune rate-limiter keys, forget signatures too old to
/// be replayed (their timestamps are outside every tolerance).
async fn maintenance(app: Arc<App>) {
    let mut tick = tokio::time::interval(MAINTENANCE_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        let catalog = app.store.catalog();
        app.rate
            .retain_recent(&|id| catalog.sources.contains_key(&id));
        let cutoff = (crate::store::now_ms() / 1000) as i64 - crate::ingest::SIGNATURE_MEMORY_S;
        if let Err(e) = app
            .store
            .write(move |ctx| crate::ingest::forget_signatures(ctx, cutoff))
            .await
        {
            tracing::warn!(error = %e, "could not prune seen signatures; will retry");
        }
    }
}
