//! The SMTP sink's session (`examples/smtp_sink/session.rs`) driven by `Scripted` with arbitrary
//! client input split arbitrarily. The input format and the invariants are in
//! `tests/fuzz_checks/mod.rs` (`check_smtp_session`), shared with `tests/loop/fuzz_mirror.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/fuzz_checks/mod.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = checks::check_smtp_session(data) {
        panic!("smtp_session: {e}");
    }
});
