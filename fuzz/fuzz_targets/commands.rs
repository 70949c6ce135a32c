//! Arbitrary bytes as a session file through every command's computation
//! (`fuzz/src/commands.rs`): each may refuse them with a one-line error,
//! none may panic, hang, or allocate what a lying length claims.

#![no_main]

#[path = "../src/commands.rs"]
#[allow(dead_code)] // each target uses one of its entry points
mod commands;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    commands::every_command(data);
});
