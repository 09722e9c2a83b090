//! The hyper server: accept loop, per-connection tasks, graceful shutdown.
//!
//! `run` takes the listener and the shutdown future as parameters (the
//! mini-redis shape), so tests bind `127.0.0.1:0` and stop the server at
//! will.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as AutoBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::api::{self, Surface};
use crate::config::{self, Config, TokenOrigin};
use crate::forward::http::Outbound;
use crate::forward::worker::{Forwarder, system_clock};
use crate::query::Limits;
use crate::ratelimit::RateLimits;
use crate::store::{OpenError, Store};
use crate::tls::CertStore;

/// How long in-flight requests get to finish after shutdown starts.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// hyper's read buffer cap (bytes of request head) and header count.
pub const HYPER_MAX_HEAD: usize = 256 * 1024;
pub const HYPER_MAX_HEADERS: usize = 256;

/// Everything a request handler needs.
pub struct App {
    pub config: Config,
    pub store: Arc<Store>,
    /// Drains the outbox (started by [`run`]).
    pub forwarder: Arc<Forwarder>,
    /// Never logged; compared in constant time.
    admin_token: String,
    /// Bounds for parsing postback parameters.
    pub limits: Limits,
    /// Per-IP and per-source rate limiters.
    pub rate: RateLimits,
    /// The TLS certificate, when TLS is configured (reloaded on SIGHUP).
    pub tls: Option<Arc<CertStore>>,
    /// Request counters for `/metrics`.
    pub requests: crate::metrics::RequestMetrics,
}

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    Io(std::io::Error),
    Open(OpenError),
    Tls(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Io(e) => write!(f, "{e}"),
            StartError::Open(e) => write!(f, "{e}"),
            StartError::Tls(e) => write!(f, "{e}"),
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
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(c), Some(k)) => Some(Arc::new(CertStore::load(c, k).map_err(StartError::Tls)?)),
            (None, None) => None,
            _ => {
                return Err(StartError::Tls(
                    "set both tls_cert and tls_key (PEM files) to serve HTTPS, or neither".into(),
                ));
            }
        };
        let store = Arc::new(
            match fault {
                None => Store::open(&config.db_path()),
                Some(f) => Store::open_with_fault(&config.db_path(), f),
            }
            .map_err(StartError::Open)?,
        );
        store.set_fast_recovery(config.fast_recovery);
        let forwarder = Forwarder::new(
            store.clone(),
            Arc::new(Outbound::new(config.allow_private_destinations)),
            system_clock(),
            config.forward,
        );
        Ok((
            App {
                requests: Default::default(),
                tls,
                rate: RateLimits::new(config.rate),
                config,
                store,
                forwarder,
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

/// The sockets a server answers on.
pub struct Listeners {
    /// Tracking, postbacks, health, metrics; and the admin API unless
    /// `admin` is set.
    pub main: TcpListener,
    /// The admin API (and health, metrics) only, e.g. bound to loopback.
    pub admin: Option<TcpListener>,
    /// Plain HTTP that redirects to the TLS `public_url`.
    pub redirect: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    fn from(main: TcpListener) -> Self {
        Listeners {
            main,
            admin: None,
            redirect: None,
        }
    }
}

/// Serve until `shutdown` resolves, then drain connections (up to the
/// deadline) and stop the writer after its queued jobs.
pub async fn run(
    listeners: impl Into<Listeners>,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) {
    let listeners = listeners.into();
    let graceful = Arc::new(GracefulShutdown::new());
    let mut builder = AutoBuilder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Also the keep-alive idle timeout: hyper starts it whenever it
        // waits for the next request's head.
        .header_read_timeout(app.config.header_read_timeout)
        // Our JSON 414/431 answers need the head to reach the handler, so
        // hyper's own limits sit well above ours (8 KiB URL, 64 headers /
        // 16 KiB). Past these (256 KiB of head, 256 headers) hyper answers a
        // bare 431 and closes. The buffer only grows as a request needs it;
        // the worst case is bounded by max_connections.
        .max_buf_size(HYPER_MAX_HEAD)
        .max_headers(HYPER_MAX_HEADERS)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(100)
        .max_header_list_size(HYPER_MAX_HEAD as u32)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    let tls = match &app.tls {
        Some(store) => match store.server_config() {
            Ok(cfg) => Some(TlsAcceptor::from(cfg)),
            Err(e) => {
                tracing::error!(error = %e, "TLS is configured but cannot be set up");
                return;
            }
        },
        None => None,
    };
    // A permit per open connection: at the cap, accept loops wait and new
    // connections queue in the kernel instead of exhausting memory.
    let permits = Arc::new(Semaphore::new(app.config.max_connections));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let serving = Serving {
        app: app.clone(),
        builder,
        permits,
        graceful: graceful.clone(),
    };
    let mut loops = vec![tokio::spawn(serving.clone().accept_loop(
        listeners.main,
        if listeners.admin.is_some() {
            Surface::Public
        } else {
            Surface::PublicAndAdmin
        },
        tls.clone(),
        stop_rx.clone(),
    ))];
    if let Some(l) = listeners.admin {
        loops.push(tokio::spawn(serving.clone().accept_loop(
            l,
            Surface::Admin,
            tls.clone(),
            stop_rx.clone(),
        )));
    }
    if let Some(l) = listeners.redirect {
        loops.push(tokio::spawn(serving.clone().accept_loop(
            l,
            Surface::Redirect,
            None,
            stop_rx.clone(),
        )));
    }
    drop(serving);
    let maintenance = tokio::spawn(maintenance(app.clone()));
    let forwarding = {
        let mut stop = stop_rx.clone();
        tokio::spawn(app.forwarder.clone().run(async move {
            let _ = stop.changed().await;
        }))
    };
    shutdown.await;
    let _ = stop_tx.send(true);
    let _ = forwarding.await;
    for l in loops {
        let _ = l.await;
    }
    maintenance.abort();
    let _ = maintenance.await;
    // The accept loops have returned and dropped their handles; connection
    // tasks hold only watchers.
    let graceful = Arc::try_unwrap(graceful).unwrap_or_else(|_| GracefulShutdown::new());
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_DEADLINE) => {
            tracing::warn!("drain deadline passed; closing remaining connections");
        }
    }
    app.store.close().await;
}

/// What one accept loop shares with its connections.
#[derive(Clone)]
struct Serving {
    app: Arc<App>,
    builder: AutoBuilder<TokioExecutor>,
    permits: Arc<Semaphore>,
    /// Each connection takes a watcher; `run` drains them at shutdown.
    graceful: Arc<GracefulShutdown>,
}

impl Serving {
    async fn accept_loop(
        self,
        listener: TcpListener,
        surface: Surface,
        tls: Option<TlsAcceptor>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let permit = tokio::select! {
                p = self.permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
                _ = stop.changed() => return,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.changed() => return,
            };
            let _ = stream.set_nodelay(true);
            // The task holds a watcher, not the shared GracefulShutdown, so
            // `run` can take it back and drain once the accept loops end.
            let watcher = self.graceful.watcher();
            let builder = self.builder.clone();
            let app = self.app.clone();
            let timeout = app.config.header_read_timeout;
            let tls = tls.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(api::handle(app, surface, peer, req).await) }
                });
                let result = match tls {
                    Some(acceptor) => {
                        // A client that never finishes its handshake is
                        // dropped like one that never sends its headers.
                        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                            Ok(Ok(tls_stream)) => {
                                let conn = builder.serve_connection(TokioIo::new(tls_stream), svc);
                                watcher.watch(conn.into_owned()).await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, "TLS handshake failed");
                                Ok(())
                            }
                            Err(_) => Ok(()),
                        }
                    }
                    None => {
                        let conn = builder.serve_connection(TokioIo::new(stream), svc);
                        watcher.watch(conn.into_owned()).await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                drop(permit);
            });
        }
    }
}

/// Periodic upkeep, every `upkeep_interval_secs`: prune rate-limiter keys,
/// forget signatures too old to be replayed (their timestamps are outside
/// every tolerance), purge clicks and events past retention.
async fn maintenance(app: Arc<App>) {
    let mut tick = tokio::time::interval(app.config.upkeep_interval);
    // Upkeep that outlasts the interval delays the next tick instead of
    // triggering a burst of catch-up ticks.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
        // Small transactions (retention::PURGE_BATCH keys), so ingest
        // batches interleave with a long purge.
        if let Err(e) = crate::retention::upkeep(&app.store, app.config.retention).await {
            tracing::warn!(error = %e, "retention purge failed; will retry at the next upkeep");
        }
    }
}
