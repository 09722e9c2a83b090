//! One integration-test binary (ripgrep's layout): every module talks HTTP
//! to a real server on 127.0.0.1:0 with a temporary data dir.

/// Shared helpers: in-process server, HTTP client, fixtures.
mod util;

/// Admin API: auth, CRUD, filters, pagination.
mod admin;
/// 200+ malformed requests over HTTP: each its documented JSON 4xx, never a 5xx.
mod bad_input;
/// The binary's command line: serve banner, source/link add, test-postback.
mod cli;
/// `GET|HEAD /c/{slug}`: redirects, recorded fields, click quality, no open redirect.
mod click;
/// Stop and start on the same data dir; kill -9 mid-stream.
mod durability;
/// Forwarding: every destination type, retries, dead + replay, outage, kill -9.
mod forward;
/// Forwarding backoff and expiry under paused time (scripted transport).
mod forward_timing;
/// Postback health: doctor, source health, bulk replay (kill -9 mid-job), alerts to Slack/Telegram mocks.
mod health;
/// `POST /ipn/{key}` per network (ClickBank, JVZoo, WarriorPlus, Digistore24): sale, retry, rebill, refund, chargeback, tests, 401s, replay.
mod ipn;
/// The layering of src/: imports point down, no cycles between top-level modules.
mod layers;
/// A minimal .mmdb writer: the country database of the click-quality tests.
mod mmdb_writer;
/// A loopback HTTP server standing in for an ad platform.
mod mock;
/// Operations: backup/restore, retention, metrics, SIGTERM, schema, export.
mod ops;
/// packaging/: the example config, the systemd unit and the .deb metadata agree with the code.
mod packaging;
/// `/p/{key}`: every contract row, dedup, events log, replay.
mod postback;
/// Each network preset with a realistic postback of that network.
mod presets;
/// proptest properties of the pure parsers (the fuzz targets' invariants).
mod properties;
/// Reports: time zones and DST, bad requests, every cell against a recount of the records.
mod reports;
/// A run that used every secret leaks none to logs, events, metrics or errors.
mod secrets;
/// Signed postbacks, replays, IP allowlists, rate limits, slow clients.
mod security;
/// Tracking without a redirect: /t.js, /e/click (CORS, preflight, refusals), the click API with external IDs.
mod tag;
/// TLS: handshakes (rustls, curl), ALPN, SIGHUP reload, admin listener, redirect.
mod tls;
/// Dashboard users and sessions: the users API, sign-in, cookies, expiry, CSRF, setup link, `postbackd user`.
mod users;
