//! postbackd: a self-hosted conversion tracker in one binary.
//!
//! Module map, by layer. A module imports only from layers below its own
//! (`tests/layers.rs` checks it; the README's Architecture section says why):
//!
//! 1. [`cli`]: the command line; `serve` is the start-up sequence, the
//!    other commands talk to a running server's admin API.
//! 2. [`http`]: the HTTP edge: the hyper server, routing, the JSON error
//!    type, the public `/c` and `/p` handlers, the admin API (one file per
//!    resource), the metrics page.
//! 3. [`manage`]: domain operations with typed inputs and results (create,
//!    change, delete, list, replay, retry), shared by the admin API, the
//!    dashboard and the CLI; no HTTP in them.
//! 4. [`app`]: [`app::App`] (settings, store, forwarder, limiters) and its
//!    opening; the upkeep loop.
//! 5. [`config`]: settings from defaults, TOML, `POSTBACKD_*` env and flags.
//! 6. [`ingest`], [`retention`], [`reports`]: the writer side: matching,
//!    dedup, events log, replay; purging old records; reading the report
//!    roll-ups. Typed outcomes, no JSON or status.
//! 7. [`forward`], [`ratelimit`]: forwarding to ad platforms (builders per
//!    platform, outbox, worker, SSRF-guarded client); rate limiters.
//! 8. [`views`]: the JSON shapes of stored records (API, webhook, export).
//! 9. [`store`]: redb tables, records, the group-commit writer thread, the
//!    in-memory catalog, snapshots.
//! 10. [`inbound`], [`tracking`]: pure parsers of untrusted input (query
//!     strings, postbacks, presets, currencies) and the pure click path
//!     (destinations, the one `{token}` template expander).
//! 11. [`util`], [`tls`]: ids, client IP, clock, text, counters and
//!     histograms, signing, a small HTTP client; certificates.

pub mod app;
pub mod cli;
pub mod config;
pub mod forward;
pub mod http;
pub mod inbound;
pub mod ingest;
pub mod manage;
pub mod ratelimit;
pub mod reports;
pub mod retention;
pub mod store;
pub mod tls;
pub mod tracking;
pub mod util;
pub mod views;
