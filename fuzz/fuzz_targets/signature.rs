//! (f) Signed-postback verification (GET `ts`/`sig`, Standard Webhooks
//! headers): never panics; verifies exactly the correctly signed, in-time
//! requests; tampering and wrong keys fail.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postbackd_fuzz::SignatureInput;

fuzz_target!(|input: SignatureInput| {
    postbackd_fuzz::checks::check_signature(&input);
});
