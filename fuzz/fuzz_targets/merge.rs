//! Arbitrary bytes as one or more session files (split where the magic
//! recurs) through `pulse merge` (`fuzz/src/commands.rs`): it may refuse
//! them with a one-line error; what it writes must read back whole.

#![no_main]

#[path = "../src/commands.rs"]
#[allow(dead_code)] // each target uses one of its entry points
mod commands;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    commands::merge(data);
});
