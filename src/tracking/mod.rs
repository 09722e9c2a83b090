//! The pure click path: destination validation, the `{token}` template
//! expander shared by click redirects and outbound postbacks, Meta's `fbc`.
//! No I/O. Imports only `util` and `inbound`.

pub mod click;
pub mod template;
