//! (c) Tracking-link template expansion: whenever the admin's destination
//! validates, the redirect for any click parameters is a URL with the same
//! scheme, host and port (no open redirect) and a valid `Location`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postbackd_fuzz::ExpandInput;

fuzz_target!(|input: ExpandInput| {
    postbackd_fuzz::checks::check_expand(&input);
});
