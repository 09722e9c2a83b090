//! Pure parsing of untrusted inbound requests: query strings and bodies,
//! postback normalization, IPN notifications (`ipn/`), network presets,
//! currency codes. No I/O, no clock: the fuzz targets drive these. Imports
//! only `util`.

pub mod currency;
pub mod doctor;
pub mod ipn;
pub mod postback;
pub mod presets;
pub mod query;
