//! postbackd: a self-hosted conversion tracker in one binary.
//!
//! Module map (request flow top to bottom):
//!
//! - [`config`]: settings from defaults, TOML, `POSTBACKD_*` env and flags.
//! - [`server`]: the hyper server: accept loop, routing, graceful shutdown.
//! - [`api`]: the HTTP surfaces: tracking (`/c`), postback (`/p`), admin
//!   (`/api/v1`), health and metrics; and the JSON error type.
//! - [`click`]: pure click-path logic: destination validation, AutoTag
//!   template expansion, Meta `fbc`.
//! - [`query`]: pure parsing of untrusted query strings, form and JSON bodies.
//! - [`postback`]: pure postback normalization: aliases, mapping, amount,
//!   currency, status, macro detection. The fuzz target.
//! - [`presets`]: affiliate network presets (mapping + macro syntax).
//! - [`currency`]: ISO 4217 codes.
//! - [`ingest`]: matching, dedup and the events log, run inside the writer's
//!   transaction.
//! - [`store`]: redb tables, storage records, the group-commit writer
//!   thread, the in-memory catalog of sources and links.
//! - [`forward`]: forwarding to ad platforms: builders, outbox, worker.
//! - [`signing`], [`ratelimit`], [`tls`]: signed postbacks, limits, TLS.
//! - [`metrics`]: the Prometheus page.
//! - [`retention`], [`backup`]: purging old clicks/events; snapshots and
//!   compaction.
//! - [`ids`]: time-ordered random IDs.
//! - [`net`]: client IP behind trusted proxies.
//! - [`client`]: a small HTTP client for the CLI (and tests).
//! - [`cli`]: command-line commands that talk to a running server.

pub mod api;
pub mod backup;
pub mod cli;
pub mod click;
pub mod client;
pub mod config;
pub mod currency;
pub mod forward;
pub mod ids;
pub mod ingest;
pub mod metrics;
pub mod net;
pub mod postback;
pub mod presets;
pub mod query;
pub mod ratelimit;
pub mod retention;
pub mod server;
pub mod signing;
pub mod store;
pub mod tls;
