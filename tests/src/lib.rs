//! Helpers for pulse's end-to-end tests.
//!
//! The tests in `tests/` run real programs with pulse as their global
//! allocator — the test binaries themselves, or the programs in `src/bin/`
//! run as child processes — and read their sessions back with
//! `pulse-analysis`.
#![deny(missing_docs)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub mod refusing;
pub mod tally;
pub mod workloads;

/// A fresh path for a session file under the system temp directory: unique
/// per call, so tests running in parallel never share a file.
///
/// The files live in one directory per test process, removed as the process
/// exits: a long run's session is hundreds of megabytes, and a suite that
/// left them behind would fill the disk run by run. Set
/// `PULSE_KEEP_TEST_FILES=1` to keep them for a look after a failure.
pub fn temp_session(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = session_dir();
        std::fs::create_dir_all(&dir).expect("create temp dir");
        if std::env::var_os("PULSE_KEEP_TEST_FILES").is_none() {
            // SAFETY: `remove_session_dir` is an `extern "C" fn()` that
            // neither unwinds nor relies on anything torn down before the
            // process's exit handlers run.
            unsafe { libc::atexit(remove_session_dir) };
        }
        dir
    });
    dir.join(format!("{name}-{}.pulse", NEXT.fetch_add(1, Ordering::Relaxed)))
}

fn session_dir() -> PathBuf {
    std::env::temp_dir().join(format!("pulse-tests-{}", std::process::id()))
}

/// Run by the C runtime as the test process exits, however it exits
/// (`main` returning, `std::process::exit`, a failed test's exit code).
extern "C" fn remove_session_dir() {
    let _ = std::fs::remove_dir_all(session_dir());
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
