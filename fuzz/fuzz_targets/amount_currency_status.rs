//! (d) Amount, currency and status parsing, alone and inside a postback,
//! against an independent oracle of the documented grammar.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postbackd_fuzz::FieldsInput;

fuzz_target!(|input: FieldsInput| {
    postbackd_fuzz::checks::check_fields(&input);
});
