//! The pure click path: destination validation, the `{token}` template
//! expander shared by click redirects and outbound postbacks, Meta's `fbc`,
//! click quality (device, bot, country, visitor hash) and the country
//! lookup over a loaded database, the landing-page origins allowed to use
//! the page tag and the beacon it sends. No I/O. Imports only `util` and `inbound`.

pub mod beacon;
pub mod click;
pub mod geo;
pub mod origin;
pub mod quality;
pub mod template;
