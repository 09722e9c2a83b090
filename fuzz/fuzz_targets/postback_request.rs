//! (b) A whole postback request (content type, query, body, the source's
//! mapping and limits) through `postback::parse`: never panics; on success
//! the conversion fields keep their invariants and re-parse identically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postbackd_fuzz::PostbackInput;

fuzz_target!(|input: PostbackInput| {
    postbackd_fuzz::checks::check_postback(&input);
});
