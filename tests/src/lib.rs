//! Helpers for pulse's end-to-end tests.
//!
//! The tests in `tests/` run real programs with pulse as their global
//! allocator — the test binaries themselves, or the programs in `src/bin/`
//! run as child processes — and read their sessions back with
//! `pulse-analysis`.
#![deny(missing_docs)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

pub mod refusing;
pub mod tally;
pub mod workloads;

/// A fresh path for a session file under the system temp directory: unique
/// per call, so tests running in parallel never share a file.
pub fn temp_session(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("pulse-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir.join(format!("{name}-{}.pulse", NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// Fails the calling test binary with `msg` unless `cond` holds; for
/// harness-less tests, whose `main` must exit non-zero on failure.
#[track_caller]
pub fn check(cond: bool, msg: impl std::fmt::Display) {
    if !cond {
        eprintln!("FAILED at {}: {msg}", std::panic::Location::caller());
        std::process::exit(1);
    }
}
