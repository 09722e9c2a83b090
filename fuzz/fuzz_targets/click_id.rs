//! (e) Click IDs: normalization, the time prefix, new-ID shape and order,
//! unsubstituted-macro detection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postbackd_fuzz::ClickIdInput;

fuzz_target!(|input: ClickIdInput| {
    postbackd_fuzz::checks::check_click_id(&input);
});
