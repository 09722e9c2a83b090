//! WarriorPlus IPN: the security key, the form fields, redaction (`postbackd_fuzz::ipn`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use postbackd::inbound::ipn::Format;
use postbackd_fuzz::ipn::IpnInput;

fuzz_target!(|input: IpnInput| {
    postbackd_fuzz::ipn::check_ipn(Format::WarriorPlus, &input);
});
