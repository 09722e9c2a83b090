//! Storage: one redb file, one writer thread, group commit.
//!
//! Handlers never open write transactions. They hand a closure to
//! [`Store::write`], which queues it for the writer thread; the writer takes
//! every job waiting (up to [`MAX_BATCH`]), runs them in one write
//! transaction, commits once with `Durability::Immediate` (fsync,
//! two-phase), and only then wakes each handler with its result. While one
//! batch is being fsynced the next one accumulates, so the batch size grows
//! with load and the fsync cost is shared: that is how a 2xx can mean
//! "durable" and still be fast. Reads run in concurrent read transactions on
//! the blocking pool ([`Store::read`]).

pub mod backup;
pub mod catalog;
pub mod fault;
pub mod health;
pub mod records;
pub mod rollup;
pub mod users;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, Table, TableDefinition,
    WriteTransaction,
};
use tokio::sync::{Notify, mpsc, oneshot};

use catalog::{Catalog, CatalogCell};
use health::{ALERTS, HEALTH, REPLAY_JOBS};
use records::{LinkRecord, SourceRecord};

/// Global settings and counters (`schema_version`, `next_source_id`).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Source ID -> [`records::SourceRecord`].
pub const SOURCES: TableDefinition<u64, &[u8]> = TableDefinition::new("sources");
/// Slug -> [`records::LinkRecord`].
pub const LINKS: TableDefinition<&str, &[u8]> = TableDefinition::new("links");
/// Click ID -> [`records::ClickRecord`].
pub const CLICKS: TableDefinition<&str, &[u8]> = TableDefinition::new("clicks");
/// Conversion ID -> [`records::ConversionRecord`].
pub const CONVERSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("conversions");
/// Dedup key -> conversion ID (see `ingest::dedup_key`).
pub const DEDUP: TableDefinition<&str, &str> = TableDefinition::new("dedup");
/// Event ID -> [`records::EventRecord`]: every postback request, by time.
pub const EVENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("events");
/// Destination ID -> [`records::DestinationRecord`].
pub const DESTINATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("destinations");
/// Delivery ID -> [`records::DeliveryRecord`].
pub const DELIVERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("deliveries");
/// Due index of pending deliveries: next attempt time (ms, big-endian) then
/// delivery ID. The forwarder scans it from the start.
pub const OUTBOX: TableDefinition<&[u8], ()> = TableDefinition::new("outbox");
/// Pending deliveries by delivery ID (time-ordered): the first is the oldest.
pub const PENDING: TableDefinition<&str, ()> = TableDefinition::new("pending");
/// `destination \x1f conversion` -> delivery ID, for ad platforms, which get
/// one delivery per conversion (they dedupe on its ID anyway).
pub const DELIVERY_KEYS: TableDefinition<&str, &str> = TableDefinition::new("delivery_keys");
/// Signatures of accepted signed postbacks, keyed by signed timestamp then
/// signature (`ingest::signature_key`), so replays are caught and old ones
/// pruned by a range delete.
pub const SIGNATURES: TableDefinition<&[u8], ()> = TableDefinition::new("signatures");
/// Manual cost updates, by ID (time-ordered).
pub const COSTS: TableDefinition<&str, &[u8]> = TableDefinition::new("costs");
/// `meta` key set once the roll-ups count every stored record.
const ROLLUPS_MARK: &str = "rollups_built";
/// Report roll-ups: `store::rollup` key -> counters.
pub const ROLLUPS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("rollups");

/// Visitor hash (`tracking::quality::visitor_hash`: keyed, so no raw IP is
/// kept here) -> the ms of that visitor's last click on that link: the
/// click job decides `unique` from it. Pruned by `retention::prune_visits`.
pub const VISITS: TableDefinition<&[u8], u64> = TableDefinition::new("visits");
/// Dashboard user name (lowercase) -> [`records::UserRecord`].
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// SHA-256 of a session's cookie token -> [`records::SessionRecord`].
pub const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");

/// External ID (the caller's own ID given to `POST /api/v1/clicks`,
/// trimmed, case as given) -> click ID: postbacks carrying it match that
/// click. Written in the click's transaction; purged with the click.
pub const EXTERNAL_IDS: TableDefinition<&str, &str> = TableDefinition::new("external_ids");
/// `meta` key of the per-database random key of the visitor hash.
const VISITOR_KEY: &str = "visitor_key";

/// Database layout version written in `meta`. Bump with a migration.
pub const SCHEMA_VERSION: u32 = 1;
/// Most jobs committed in one transaction.
pub const MAX_BATCH: usize = 4096;
/// Jobs waiting for the writer before senders wait (backpressure).
const QUEUE_DEPTH: usize = 16 * 1024;

/// Storage failures. Cheap to clone: one failed commit fails every job of
/// its batch.
#[derive(Clone, Debug)]
pub enum StoreError {
    /// The database could not commit or read (I/O error, disk full): the
    /// request may be retried later.
    Unavailable(Arc<str>),
    /// A stored value could not be decoded.
    Corrupt(Arc<str>),
    /// The writer has shut down.
    Closed,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unavailable(m) => write!(f, "storage unavailable: {m}"),
            StoreError::Corrupt(m) => write!(f, "corrupt record: {m}"),
            StoreError::Closed => write!(f, "storage is shut down"),
        }
    }
}

impl std::error::Error for StoreError {}

macro_rules! unavailable_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Unavailable(e.to_string().into())
            }
        }
    )*};
}
unavailable_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// Why the store could not open.
#[derive(Debug)]
pub enum OpenError {
    Db(redb::DatabaseError),
    Store(StoreError),
    /// The file was written by a newer postbackd.
    NewerSchema {
        found: u32,
    },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Db(redb::DatabaseError::DatabaseAlreadyOpen) => write!(
                f,
                "the database is already open in another process; stop the other postbackd \
                 (management commands talk to the running server instead)"
            ),
            OpenError::Db(e) => write!(f, "cannot open database: {e}"),
            OpenError::Store(e) => write!(f, "cannot open database: {e}"),
            OpenError::NewerSchema { found } => write!(
                f,
                "the database has schema version {found}, newer than this build's {SCHEMA_VERSION}; \
                 run the newer postbackd or restore a backup taken before the upgrade"
            ),
        }
    }
}

impl std::error::Error for OpenError {}

/// Declares the lazily opened tables of [`WriteCtx`]: a field and an
/// accessor per table.
macro_rules! write_tables {
    ($($(#[$doc:meta])* $name:ident: $def:ident <$k:ty, $v:ty>;)*) => {
        /// The tables of one batch's transaction, each opened on first use
        /// and kept open until the commit. Opening is not free (a lookup in
        /// redb's table tree, and a table-root update staged at close), and
        /// a batch of clicks touches two tables of the eighteen.
        #[derive(Default)]
        struct OpenTables<'t> {
            $($name: Option<Table<'t, $k, $v>>,)*
        }

        impl<'t> WriteCtx<'t> {
            $(
                $(#[$doc])*
                pub fn $name(&mut self) -> Result<&mut Table<'t, $k, $v>, StoreError> {
                    let table = match self.tables.$name.take() {
                        Some(t) => t,
                        None => self.txn.open_table($def)?,
                    };
                    Ok(self.tables.$name.insert(table))
                }
            )*
        }
    };
}

write_tables! {
    /// [`META`]
    meta: META<&'static str, &'static [u8]>;
    /// [`SOURCES`]
    sources: SOURCES<u64, &'static [u8]>;
    /// [`LINKS`]
    links: LINKS<&'static str, &'static [u8]>;
    /// [`CLICKS`]
    clicks: CLICKS<&'static str, &'static [u8]>;
    /// [`CONVERSIONS`]
    conversions: CONVERSIONS<&'static str, &'static [u8]>;
    /// [`DEDUP`]
    dedup: DEDUP<&'static str, &'static str>;
    /// [`EVENTS`]
    events: EVENTS<&'static str, &'static [u8]>;
    /// [`SIGNATURES`]
    signatures: SIGNATURES<&'static [u8], ()>;
    /// [`DESTINATIONS`]
    destinations: DESTINATIONS<u64, &'static [u8]>;
    /// [`DELIVERIES`]
    deliveries: DELIVERIES<&'static str, &'static [u8]>;
    /// [`OUTBOX`]
    outbox: OUTBOX<&'static [u8], ()>;
    /// [`PENDING`]
    pending: PENDING<&'static str, ()>;
    /// [`DELIVERY_KEYS`]
    delivery_keys: DELIVERY_KEYS<&'static str, &'static str>;
    /// [`ROLLUPS`]
    rollups: ROLLUPS<&'static [u8], &'static [u8]>;
    /// [`COSTS`]
    costs: COSTS<&'static str, &'static [u8]>;
    /// [`VISITS`]
    visits: VISITS<&'static [u8], u64>;
    /// [`USERS`]
    users: USERS<&'static str, &'static [u8]>;
    /// [`SESSIONS`]
    sessions: SESSIONS<&'static [u8], &'static [u8]>;
    /// [`EXTERNAL_IDS`]
    external_ids: EXTERNAL_IDS<&'static str, &'static str>;
    /// [`health::HEALTH`]
    health: HEALTH<&'static [u8], u64>;
    /// [`health::REPLAY_JOBS`]
    replay_jobs: REPLAY_JOBS<u64, &'static [u8]>;
    /// [`health::ALERTS`]
    alerts: ALERTS<u64, &'static [u8]>;
}

/// What a write job sees: the batch's transaction (through one accessor
/// per table) and the catalog.
pub struct WriteCtx<'t> {
    txn: &'t WriteTransaction,
    tables: OpenTables<'t>,
    /// Set when this batch queued deliveries: the forwarder is woken after
    /// the commit.
    pub wake_forwarder: bool,
    base: Arc<Catalog>,
    /// Set on the first change; published only if the batch commits.
    changed: Option<Catalog>,
    /// Roll-up increments of the batch, applied just before its commit
    /// (`rollup::add`, `rollup::flush`).
    rollups_pending: rollup::Pending,
    /// Health counter increments of the batch, applied with the roll-ups
    /// (`health::count`, `health::flush`).
    health_pending: health::Pending,
}

impl WriteCtx<'_> {
    /// The catalog as this transaction sees it.
    pub fn catalog(&self) -> &Catalog {
        self.changed.as_ref().unwrap_or(&self.base)
    }

    /// Change the catalog; the change is published after the commit.
    pub fn catalog_mut(&mut self) -> &mut Catalog {
        let base = &self.base;
        self.changed.get_or_insert_with(|| (**base).clone())
    }
}

/// A queued write: applied inside the batch transaction, completed after
/// its commit (or failure).
trait Job: Send {
    fn apply(&mut self, ctx: &mut WriteCtx<'_>) -> Result<(), StoreError>;
    fn complete(self: Box<Self>, commit: Result<(), StoreError>);
}

struct FnJob<F, T> {
    f: Option<F>,
    out: Option<T>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> Job for FnJob<F, T>
where
    F: FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send,
    T: Send,
{
    fn apply(&mut self, ctx: &mut WriteCtx<'_>) -> Result<(), StoreError> {
        let f = self.f.take().ok_or(StoreError::Closed)?;
        self.out = Some(f(ctx)?);
        Ok(())
    }

    fn complete(self: Box<Self>, commit: Result<(), StoreError>) {
        let FnJob { out, reply, .. } = *self;
        let result = commit.and_then(|()| out.ok_or(StoreError::Closed));
        // The handler may have gone away (client disconnected); the write
        // is committed regardless.
        let _ = reply.send(result);
    }
}

enum Msg {
    Job(Box<dyn Job>),
    Shutdown,
}

/// Writer counters, for `/metrics` and the load harness.
#[derive(Debug)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Jobs in committed transactions.
    pub committed_jobs: AtomicU64,
    /// Transactions that failed (every job in them answered 503).
    pub failed_commits: AtomicU64,
    /// Largest batch committed.
    pub max_batch: AtomicU64,
    /// Total time spent in commit (fsync), microseconds.
    pub commit_micros: AtomicU64,
    /// Times the database was reopened after an I/O error.
    pub reopens: AtomicU64,
    /// Clicks and postback events deleted by retention (`retention::purge`),
    /// counted as each purge transaction commits.
    pub purged_clicks: AtomicU64,
    pub purged_events: AtomicU64,
    /// Writes per committed batch.
    pub batch_sizes: crate::util::metrics::Histogram,
    /// Seconds per commit.
    pub commit_seconds: crate::util::metrics::Histogram,
}

impl Default for WriterStats {
    fn default() -> Self {
        WriterStats {
            commits: AtomicU64::new(0),
            committed_jobs: AtomicU64::new(0),
            failed_commits: AtomicU64::new(0),
            max_batch: AtomicU64::new(0),
            commit_micros: AtomicU64::new(0),
            reopens: AtomicU64::new(0),
            purged_clicks: AtomicU64::new(0),
            purged_events: AtomicU64::new(0),
            batch_sizes: crate::util::metrics::Histogram::new(crate::util::metrics::BATCH_BUCKETS),
            commit_seconds: crate::util::metrics::Histogram::new(
                crate::util::metrics::LATENCY_BUCKETS,
            ),
        }
    }
}

/// redb's page cache. Its default (1 GiB) would let the cache grow with the
/// file; the hot data (the recent end of time-ordered tables, the catalog
/// in memory) is small, and the RSS bar is 64 MiB. Measured at 10M clicks
/// (`benches/load.sh`, `benches/scale.rs`): 24 MiB peaked at 63.7 MiB RSS,
/// 16 MiB at 51.7 MiB, with the same throughput and click lookup p99.
pub const CACHE_BYTES: usize = 16 * 1024 * 1024;

fn builder() -> redb::Builder {
    let mut b = Database::builder();
    b.set_cache_size(CACHE_BYTES);
    b
}

/// Opens the database file; kept so the writer can reopen it after an I/O
/// error (redb refuses further work after one: "close and re-open").
type Opener = Box<dyn Fn() -> Result<Database, redb::DatabaseError> + Send + Sync>;

/// The open database, or none while it is being reopened.
struct DbSlot {
    db: RwLock<Option<Arc<Database>>>,
    open: Opener,
}

impl DbSlot {
    fn get(&self) -> Option<Arc<Database>> {
        self.db.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Close and reopen after an I/O error. Readers in flight hold their own
    /// `Arc`; we wait (briefly) for them, since redb allows one open handle
    /// per file.
    fn reopen(&self) -> Result<(), StoreError> {
        self.release();
        let db = (self.open)()?;
        *self.db.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(db));
        Ok(())
    }

    /// Take the handle out of the slot and close it once the readers in
    /// flight (each holds its own `Arc`) are done, waiting at most 5 s.
    fn release(&self) {
        let old = self.db.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(old) = old {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while Arc::strong_count(&old) > 1 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            drop(old);
        }
    }

    /// Can the database still start a write transaction?
    fn healthy(&self) -> bool {
        match self.get() {
            None => false,
            Some(db) => match db.begin_write() {
                Ok(txn) => txn.abort().is_ok(),
                Err(_) => false,
            },
        }
    }
}

fn not_open() -> StoreError {
    StoreError::Unavailable("the database is being reopened after an I/O error".into())
}

/// The database handle shared by the server.
pub struct Store {
    db: Arc<DbSlot>,
    jobs: mpsc::Sender<Msg>,
    catalog: Arc<CatalogCell>,
    pub stats: Arc<WriterStats>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Notified after a commit that queued deliveries.
    pub forwarder_wake: Arc<Notify>,
    /// Commit with two-phase commit + quick repair (see `run_batch`).
    fast_recovery: Arc<AtomicBool>,
    /// The key of the visitor hash, random per database (kept in `meta`).
    visitor_key: [u8; 32],
}

impl Store {
    /// Open (or create) `path` and start the writer thread.
    pub fn open(path: &Path) -> Result<Store, OpenError> {
        let path = path.to_path_buf();
        Store::open_with(Box::new(move || builder().create(&path)))
    }

    /// Open `path` through a [`fault::FaultyBackend`] controlled by `fault`
    /// (disk-full tests).
    pub fn open_with_fault(path: &Path, fault: Arc<fault::DiskFault>) -> Result<Store, OpenError> {
        let path = path.to_path_buf();
        Store::open_with(Box::new(move || {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            builder().create_with_backend(fault::FaultyBackend::new(file, fault.clone())?)
        }))
    }

    fn open_with(open: Opener) -> Result<Store, OpenError> {
        let db = open().map_err(OpenError::Db)?;
        let (catalog, visitor_key) = init(&db)?;
        let db = Arc::new(DbSlot {
            db: RwLock::new(Some(Arc::new(db))),
            open,
        });
        let cell = Arc::new(CatalogCell::default());
        cell.store(catalog);
        let stats = Arc::new(WriterStats::default());
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let forwarder_wake = Arc::new(Notify::new());
        let fast_recovery = Arc::new(AtomicBool::new(false));
        let writer = {
            let (db, cell, stats, wake, fr) = (
                db.clone(),
                cell.clone(),
                stats.clone(),
                forwarder_wake.clone(),
                fast_recovery.clone(),
            );
            std::thread::Builder::new()
                .name("postbackd-writer".into())
                .spawn(move || writer_loop(&db, rx, &cell, &stats, &wake, &fr))
                .map_err(|e| OpenError::Store(StoreError::Unavailable(e.to_string().into())))?
        };
        Ok(Store {
            db,
            jobs: tx,
            catalog: cell,
            stats,
            writer: Mutex::new(Some(writer)),
            forwarder_wake,
            fast_recovery,
            visitor_key,
        })
    }

    /// The key of the visitor hash behind `unique`: random, made when the
    /// database was created (or first opened by a build that has it), so a
    /// copy of the visits table alone cannot be matched against IPs.
    pub fn visitor_key(&self) -> &[u8; 32] {
        &self.visitor_key
    }

    /// Choose the commit mode (see `run_batch`); takes effect with the next
    /// batch.
    pub fn set_fast_recovery(&self, on: bool) {
        self.fast_recovery.store(on, Ordering::Relaxed);
    }

    /// Can writes be accepted now? (The database is open and the writer
    /// is running.)
    pub fn ready(&self) -> bool {
        let writer_alive = self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|h| !h.is_finished());
        writer_alive && self.db.get().is_some() && !self.jobs.is_closed()
    }

    /// The current catalog snapshot.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load()
    }

    /// Run `f` in the next group-committed write transaction and return its
    /// result once that transaction is durable.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Box::new(FnJob {
            f: Some(f),
            out: None,
            reply,
        });
        self.jobs
            .send(Msg::Job(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// A read transaction on the caller's thread, for a point lookup too
    /// small to be worth a hop to the blocking pool (a handler finding the
    /// click a postback names: a few pages, nearly always cached).
    pub fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        let db = self.db.get().ok_or_else(not_open)?;
        Ok(db.begin_read()?)
    }

    /// Run `f` in a read transaction on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let slot = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let db = slot.get().ok_or_else(not_open)?;
            let rtx = db.begin_read()?;
            f(&rtx)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string().into()))?
    }

    /// Write a consistent snapshot to `dest` (on the blocking pool).
    pub async fn snapshot(&self, dest: std::path::PathBuf) -> Result<u64, StoreError> {
        let slot = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let db = slot.get().ok_or_else(not_open)?;
            crate::store::backup::snapshot(&db, &dest)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string().into()))?
    }

    /// Stop the writer after the jobs already queued, wait for it, and close
    /// the database file.
    pub async fn close(&self) {
        let _ = self.jobs.send(Msg::Shutdown).await;
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        // Close the file now, not when the last `Arc<Store>` goes: a task
        // that outlives `server::run` (an aborted timer, a delivery in
        // flight) must not keep it open, or a restart in the same process
        // (the CLI's in-place commands, the restart tests) finds it locked.
        let slot = self.db.clone();
        let _ = tokio::task::spawn_blocking(move || slot.release()).await;
    }
}

/// Create tables, check the schema version, make the visitor key if there
/// is none yet, load the catalog.
fn init(db: &Database) -> Result<(Catalog, [u8; 32]), OpenError> {
    let e = |e: StoreError| OpenError::Store(e);
    let txn = db.begin_write().map_err(|x| e(x.into()))?;
    let visitor_key;
    {
        let mut meta = txn.open_table(META).map_err(|x| e(x.into()))?;
        let found = meta
            .get("schema_version")
            .map_err(|x| e(x.into()))?
            .map(|v| {
                let b = v.value();
                u32::from_le_bytes([
                    b.first().copied().unwrap_or(0),
                    b.get(1).copied().unwrap_or(0),
                    b.get(2).copied().unwrap_or(0),
                    b.get(3).copied().unwrap_or(0),
                ])
            });
        match found {
            Some(v) if v > SCHEMA_VERSION => return Err(OpenError::NewerSchema { found: v }),
            Some(_) => {}
            None => {
                meta.insert("schema_version", SCHEMA_VERSION.to_le_bytes().as_slice())
                    .map_err(|x| e(x.into()))?;
            }
        }
        let stored: Option<[u8; 32]> = meta
            .get(VISITOR_KEY)
            .map_err(|x| e(x.into()))?
            .and_then(|v| v.value().try_into().ok());
        visitor_key = match stored {
            Some(k) => k,
            None => {
                let mut k = [0u8; 32];
                getrandom::fill(&mut k).map_err(|x| {
                    e(StoreError::Unavailable(
                        format!("no OS random numbers for the visitor key: {x}").into(),
                    ))
                })?;
                meta.insert(VISITOR_KEY, k.as_slice())
                    .map_err(|x| e(x.into()))?;
                k
            }
        };
        // Report roll-ups arrived after the first databases were written,
        // and their hour and day rows later: build what is missing once
        // (the mark holds the roll-up layout, `rollup::LAYOUT`).
        let layout = meta
            .get(ROLLUPS_MARK)
            .map_err(|x| e(x.into()))?
            .map(|v| v.value().first().copied().unwrap_or(1));
        if layout.is_none_or(|v| v < rollup::LAYOUT) {
            meta.insert(ROLLUPS_MARK, [rollup::LAYOUT].as_slice())
                .map_err(|x| e(x.into()))?;
        }
        drop(meta);
        if found.is_some() {
            rollup::upgrade(&txn, layout).map_err(e)?;
        }
        for t in [LINKS, CLICKS, CONVERSIONS, EVENTS] {
            txn.open_table(t).map_err(|x| e(x.into()))?;
        }
        txn.open_table(SOURCES).map_err(|x| e(x.into()))?;
        txn.open_table(DEDUP).map_err(|x| e(x.into()))?;
        txn.open_table(SIGNATURES).map_err(|x| e(x.into()))?;
        txn.open_table(DESTINATIONS).map_err(|x| e(x.into()))?;
        txn.open_table(OUTBOX).map_err(|x| e(x.into()))?;
        txn.open_table(PENDING).map_err(|x| e(x.into()))?;
        txn.open_table(DELIVERY_KEYS).map_err(|x| e(x.into()))?;
        txn.open_table(DELIVERIES).map_err(|x| e(x.into()))?;
        txn.open_table(ROLLUPS).map_err(|x| e(x.into()))?;
        txn.open_table(COSTS).map_err(|x| e(x.into()))?;
        txn.open_table(VISITS).map_err(|x| e(x.into()))?;
        // Added with the dashboard: created here on the first open by a
        // build that has them, so older databases need no migration.
        txn.open_table(USERS).map_err(|x| e(x.into()))?;
        txn.open_table(SESSIONS).map_err(|x| e(x.into()))?;
        // Databases written before external IDs get the empty table here.
        txn.open_table(EXTERNAL_IDS).map_err(|x| e(x.into()))?;
        txn.open_table(HEALTH).map_err(|x| e(x.into()))?;
        txn.open_table(REPLAY_JOBS).map_err(|x| e(x.into()))?;
        txn.open_table(ALERTS).map_err(|x| e(x.into()))?;
    }
    txn.commit().map_err(|x| e(x.into()))?;

    let rtx = db.begin_read().map_err(|x| e(x.into()))?;
    let mut catalog = Catalog::default();
    let sources = rtx.open_table(SOURCES).map_err(|x| e(x.into()))?;
    for row in sources.iter().map_err(|x| e(x.into()))? {
        let (k, v) = row.map_err(|x| e(x.into()))?;
        let rec: SourceRecord = records::decode(v.value()).map_err(e)?;
        catalog.put_source(k.value(), rec);
    }
    let destinations = rtx.open_table(DESTINATIONS).map_err(|x| e(x.into()))?;
    for row in destinations.iter().map_err(|x| e(x.into()))? {
        let (k, v) = row.map_err(|x| e(x.into()))?;
        let rec: records::DestinationRecord = records::decode(v.value()).map_err(e)?;
        catalog.put_destination(k.value(), rec);
    }
    let links = rtx.open_table(LINKS).map_err(|x| e(x.into()))?;
    for row in links.iter().map_err(|x| e(x.into()))? {
        let (k, v) = row.map_err(|x| e(x.into()))?;
        let rec: LinkRecord = records::decode(v.value()).map_err(e)?;
        catalog.put_link(k.value().to_string(), rec);
    }
    Ok((catalog, visitor_key))
}

fn writer_loop(
    slot: &DbSlot,
    mut rx: mpsc::Receiver<Msg>,
    cell: &CatalogCell,
    stats: &WriterStats,
    wake: &Notify,
    fast_recovery: &AtomicBool,
) {
    let mut stop = false;
    while !stop {
        let mut batch: Vec<Box<dyn Job>> = match rx.blocking_recv() {
            Some(Msg::Job(j)) => vec![j],
            Some(Msg::Shutdown) | None => break,
        };
        // Everything that queued up while the previous commit was fsyncing
        // joins this batch.
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => batch.push(j),
                Ok(Msg::Shutdown) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        let started = std::time::Instant::now();
        // A reopen that failed earlier (disk still full) is retried first.
        let db = slot
            .get()
            .or_else(|| reopen(slot, stats).then(|| slot.get()).flatten());
        let result = match db {
            Some(db) => run_batch(
                &db,
                &mut batch,
                cell,
                wake,
                fast_recovery.load(Ordering::Relaxed),
            ),
            None => Err(not_open()),
        };
        match &result {
            Ok(()) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                stats.committed_jobs.fetch_add(n, Ordering::Relaxed);
                stats.max_batch.fetch_max(n, Ordering::Relaxed);
                stats.batch_sizes.observe(n as f64);
                stats
                    .commit_seconds
                    .observe(started.elapsed().as_secs_f64());
                stats
                    .commit_micros
                    .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                stats.failed_commits.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, jobs = n, "write batch failed; answering 503");
            }
        }
        let failed = result.is_err();
        for job in batch {
            job.complete(result.clone());
        }
        // After an I/O error (disk full...) redb refuses all further work
        // until the file is closed and reopened. Reopen now, so the server
        // recovers as soon as the disk does, without a restart; while it
        // cannot, requests keep getting 503 and nothing half-written.
        if failed && !slot.healthy() {
            reopen(slot, stats);
        }
    }
    // Refuse whatever is still queued: its senders get Closed.
    rx.close();
    while let Ok(Msg::Job(j)) = rx.try_recv() {
        j.complete(Err(StoreError::Closed));
    }
}

/// Reopen the database; true when it is open again.
fn reopen(slot: &DbSlot, stats: &WriterStats) -> bool {
    match slot.reopen() {
        Ok(()) => {
            stats.reopens.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("database reopened after an I/O error");
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "database reopen failed; will retry with the next write");
            false
        }
    }
}

fn run_batch(
    db: &Database,
    batch: &mut [Box<dyn Job>],
    cell: &CatalogCell,
    forwarder_wake: &Notify,
    fast_recovery: bool,
) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    // With fast recovery: two-phase commit (the commit slot
    // is fsynced before it is activated) and quick repair (the allocator
    // state saved with each commit), so a restart after kill -9 is fast on a
    // large file. Without (the default): one fsync per commit, and redb's
    // checksummed one-phase commit (still crash-safe and durable), at the
    // price of a full check of the file when reopening after a crash.
    if fast_recovery {
        txn.set_two_phase_commit(true);
        txn.set_quick_repair(true);
    }
    let changed = {
        let mut ctx = WriteCtx {
            txn: &txn,
            tables: OpenTables::default(),
            wake_forwarder: false,
            base: cell.load(),
            changed: None,
            rollups_pending: rollup::Pending::default(),
            health_pending: health::Pending::default(),
        };
        for job in batch.iter_mut() {
            // One failed job aborts the transaction (dropping `txn` rolls
            // back), and every job of the batch is told so: the roll-up
            // increments merged so far go with `ctx`, never applied.
            job.apply(&mut ctx)?;
        }
        // In the same transaction as what they count, after every job.
        rollup::flush(&mut ctx)?;
        health::flush(&mut ctx)?;
        (ctx.changed, ctx.wake_forwarder)
    };
    let (changed, wake) = changed;
    txn.commit()?;
    if let Some(c) = changed {
        cell.store(c);
    }
    if wake {
        forwarder_wake.notify_one();
    }
    Ok(())
}

/// Next value of a `u64` counter kept in `meta`.
pub fn next_counter(ctx: &mut WriteCtx<'_>, name: &'static str) -> Result<u64, StoreError> {
    let current = ctx
        .meta()?
        .get(name)?
        .map(|v| {
            let b = v.value();
            let mut a = [0u8; 8];
            let n = b.len().min(8);
            a[..n].copy_from_slice(&b[..n]);
            u64::from_le_bytes(a)
        })
        .unwrap_or(0);
    let next = current + 1;
    ctx.meta()?.insert(name, next.to_le_bytes().as_slice())?;
    Ok(next)
}
