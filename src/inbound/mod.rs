//! Pure parsing of untrusted inbound requests: query strings and bodies,
//! postback normalization, network presets, currency codes. No I/O, no
//! clock: the fuzz targets drive these. Imports only `util`.

pub mod currency;
pub mod postback;
pub mod presets;
pub mod query;
