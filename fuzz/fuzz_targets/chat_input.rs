//! The chat input path (`Scanner` through `AsyncChat`'s glue, driven by `Scripted`) with
//! terminator switches, record limits and arbitrary chunking. The input format and the
//! invariants are in `tests/fuzz_checks/mod.rs` (`check_chat_input`), shared with
//! `tests/loop/fuzz_mirror.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/fuzz_checks/mod.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = checks::check_chat_input(data) {
        panic!("chat_input: {e}");
    }
});
