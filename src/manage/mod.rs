//! Domain operations: what an admin can do to postbackd, with typed inputs
//! and typed results. The JSON admin API (`http::admin`), the coming
//! dashboard and the CLI call these; none of them carries its own copy of
//! the validation or the table writes. Nothing here knows HTTP: an
//! operation fails with an [`Error`] whose [`ErrorKind`] the edge maps to a
//! status code, and whose `code` and `message` are the contract's stable
//! error code and fix sentence.

pub mod alerts;
pub mod clicks;
pub mod costs;
pub mod destinations;
pub mod health;
pub mod links;
pub mod query;
pub mod records;
pub mod replay;
pub mod reports;
pub mod sources;
pub mod testfire;
pub mod users;

use serde::Deserialize;

use crate::store::StoreError;

/// What kind of failure, for the edge to choose a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is invalid (400).
    Invalid,
    /// The thing named does not exist (404).
    NotFound,
    /// The request conflicts with what is stored (409).
    Conflict,
    /// Storage cannot answer right now (503): nothing was changed.
    Unavailable,
}

/// A refused operation: a stable machine `code` and a sentence naming the
/// fix. Internal detail (the storage error) goes to the log, not here.
#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
}

impl Error {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Invalid,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::NotFound,
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Conflict,
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage error answered 503");
        let message = match e {
            StoreError::Corrupt(_) => "a stored record could not be read; check the server log",
            _ => {
                "storage cannot commit right now (disk full or I/O error); nothing was recorded, \
                 retry later"
            }
        };
        Error {
            kind: ErrorKind::Unavailable,
            code: "unavailable",
            message: message.into(),
        }
    }
}

/// A source's or destination's display name: trimmed, 1 to 100 bytes.
pub fn valid_name(name: &str) -> Result<String, Error> {
    let n = name.trim();
    if n.is_empty() || n.len() > 100 {
        return Err(Error::invalid(
            "invalid_name",
            "name must be 1 to 100 characters",
        ));
    }
    Ok(n.to_string())
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn double_option<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}
