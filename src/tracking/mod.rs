//! The pure click path: destination validation, the `{token}` template
//! expander shared by click redirects and outbound postbacks, Meta's `fbc`,
//! click quality (device, bot, country, visitor hash) and the country
//! lookup over a loaded database. No I/O. Imports only `util` and `inbound`.

pub mod click;
pub mod geo;
pub mod quality;
pub mod template;
