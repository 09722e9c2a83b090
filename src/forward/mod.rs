//! Forwarding conversions to ad platforms and webhooks.
//!
//! - [`outbox`]: deliveries created in the conversion's transaction, and
//!   attempt results, in redb.

pub mod outbox;
