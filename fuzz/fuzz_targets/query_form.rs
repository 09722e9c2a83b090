//! (a) Query-string / form-body parsing, differential against
//! `form_urlencoded` on the inputs both accept. Raw bytes: the fuzzer's
//! input is the query string.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    postbackd_fuzz::checks::check_query_form(data);
});
