//! Forwarding conversions to ad platforms and webhooks.
//!
//! - [`platforms`]: pure request builders and response classification, one
//!   per destination type.
//! - [`meta`]: Meta CAPI normalization and hashing of user data.
//! - [`outbox`]: deliveries created in the conversion's transaction, and
//!   attempt results, in redb.
//! - [`http`]: the outbound client and its SSRF guard.
//! - [`worker`]: drains the outbox: concurrency limits, backoff, expiry.

pub mod http;
pub mod meta;
pub mod notify;
pub mod outbox;
pub mod platforms;
pub mod worker;
