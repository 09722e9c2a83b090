//! The application: [`App`] holds what every layer above needs (settings,
//! the store, the forwarder, the limiters, the certificate), [`App::open`]
//! builds it from a [`Config`], and [`upkeep`] is its periodic housekeeping.
//! The HTTP edge, the domain operations and the CLI all take an `&App`.

pub mod alerts;
pub mod replay;

use std::sync::Arc;

use crate::config::{self, Config, TokenOrigin};
use crate::forward::http::Outbound;
use crate::forward::worker::Forwarder;
use crate::inbound::query::Limits;
use crate::ratelimit::RateLimits;
use crate::store::{OpenError, Store};
use crate::tls::CertStore;
use crate::tracking::geo::Geo;
use crate::util::clock::system_clock;

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
    pub requests: crate::util::metrics::RequestMetrics,
    /// The country database (`geoip_db`), when configured.
    pub geo: Option<Geo>,
    /// Woken when a bulk replay job is created (`replay::run`).
    pub replay_wake: tokio::sync::Notify,
}

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    Io(std::io::Error),
    Open(OpenError),
    Tls(String),
    /// `geoip_db` cannot be used.
    Geo(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Io(e) => write!(f, "{e}"),
            StartError::Open(e) => write!(f, "{e}"),
            StartError::Tls(e) => write!(f, "{e}"),
            StartError::Geo(e) => write!(f, "{e}"),
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
        let geo = match &config.geoip_db {
            Some(p) => Some(load_geo(p)?),
            None => None,
        };
        // Compile the user-agent parsers now rather than on the first click,
        // on a thread of their own so start-up (exec to the first /healthz
        // answer) does not wait the ~60 ms it takes (longer in a debug
        // build); a click that comes first waits for it to finish.
        std::thread::Builder::new()
            .name("postbackd-ua-warm".into())
            .spawn(crate::tracking::quality::warm)
            .map_err(StartError::Io)?;
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
                geo,
                replay_wake: tokio::sync::Notify::new(),
            },
            origin,
        ))
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }
}

/// Read the country database once (a ~8 MB country file costs that much
/// RSS; lookups then never touch the disk). Refuses, with the fix, a file
/// that cannot be read or is not a MaxMind DB.
fn load_geo(path: &std::path::Path) -> Result<Geo, StartError> {
    let bytes = std::fs::read(path).map_err(|e| {
        StartError::Geo(format!(
            "geoip_db {}: cannot read it: {e}; point geoip_db at a readable .mmdb file \
             (README, \"A country database\") or unset it",
            path.display()
        ))
    })?;
    let geo = Geo::from_bytes(bytes).map_err(|e| {
        StartError::Geo(format!(
            "geoip_db {}: {e}; use a MaxMind-format country database (.mmdb), or unset geoip_db",
            path.display()
        ))
    })?;
    tracing::info!(path = %path.display(), database = %geo.describe(), "country database loaded");
    Ok(geo)
}

/// Periodic upkeep: prune rate-limiter keys, forget signatures too old to
/// be replayed (their timestamps are outside every tolerance), purge past
/// retention, forget visits past the unique window, and delete expired
/// dashboard sessions.
pub async fn upkeep(app: Arc<App>) {
    let mut tick = tokio::time::interval(app.config.upkeep_interval);
    // Upkeep that outlasts the interval delays the next tick instead of
    // triggering a burst of catch-up ticks.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    // The bulk-replay runner lives as long as upkeep: `server::run` aborts
    // upkeep at shutdown, which drops the guard, which stops the runner.
    let _jobs = AbortOnDrop(tokio::spawn(replay::run(app.clone())));
    let mut visits = crate::retention::SweepCursor::default();
    loop {
        tick.tick().await;
        let catalog = app.store.catalog();
        app.rate
            .retain_recent(&|id| catalog.sources.contains_key(&id));
        let cutoff =
            (crate::util::clock::now_ms() / 1000) as i64 - crate::ingest::SIGNATURE_MEMORY_S;
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
        // Expired sessions are refused when used anyway; this only keeps
        // the table from holding every browser that ever signed in.
        let (idle, max) = (
            app.config.session_idle.as_millis() as u64,
            app.config.session_max.as_millis() as u64,
        );
        let now = crate::util::clock::now_ms();
        match app
            .store
            .write(move |ctx| crate::store::users::purge_sessions(ctx, now, idle, max))
            .await
        {
            Ok(n) if n > 0 => tracing::debug!(sessions = n, "deleted expired dashboard sessions"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "session purge failed; will retry at the next upkeep")
            }
        }
        // Alerts, from the counters the writer keeps; then forget counter
        // buckets past their 8 days.
        match alerts::tick(&app, now).await {
            Ok(t) if !t.is_empty() => tracing::info!(transitions = ?t, "alerts changed state"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "alert evaluation failed; will retry"),
        }
        if let Err(e) = app
            .store
            .write(move |ctx| crate::store::health::prune(ctx, now))
            .await
        {
            tracing::warn!(error = %e, "health counter prune failed; will retry");
        }
        let window_ms = u64::from(app.config.unique_window_hours) * 3_600_000;
        let now = crate::util::clock::now_ms();
        match crate::retention::prune_visits(&app.store, window_ms, now, &mut visits).await {
            Ok(n) if n > 0 => tracing::debug!(visits = n, "forgot visits past the unique window"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "visits prune failed; will retry at the next upkeep")
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
