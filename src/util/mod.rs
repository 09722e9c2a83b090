//! The ground floor: small tools every layer may use. Nothing here imports
//! another postbackd module outside `util`.

pub mod client;
pub mod clock;
pub mod ids;
pub mod metrics;
pub mod net;
pub mod signing;
pub mod text;
