//! (k) The page tag's beacon body (`POST /e/click`), raw bytes: see
//! `checks::check_beacon`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    postbackd_fuzz::checks::check_beacon(data);
});
