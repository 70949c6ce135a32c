//! pulse: a heap and time profiler that a Rust program links in.
//!
//! Swap in the allocator, wrap hot code in scopes, run with `PULSE_OUT` set
//! (or start a [`Session`] in code), then read the session file with the
//! `pulse` command line:
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOC: pulse::Alloc = pulse::Alloc::system();
//!
//! fn main() {
//!     let _session = pulse::Session::builder().output("run.pulse").start().unwrap();
//!     pulse::scope!("main work");
//!     let words: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
//!     println!("{}", words.len());
//! }
//! ```
//!
//! ```text
//! $ pulse report run.pulse
//! ```
#![deny(missing_docs)]

pub mod budget;
mod build_check;
mod collector;
mod counters;
mod future;
mod macros;
mod meter;
mod metrics;
mod op;
mod output;
mod report;
mod scope;
mod session;
mod signals;
mod sink;
mod stats;
mod symbols;
pub mod thread;
mod timer;

pub use future::Instrumented;
pub use meter::{heap_stats, AllocMeter};
pub use metrics::{DEFAULT_METRICS_BUCKETS, ENV_METRICS, ENV_METRICS_BUCKETS};
pub use op::Operation;
pub use pulse_alloc::{clock, current_thread_id, Alloc, HeapStats, ThreadStats, Totals};
pub use pulse_format::AllocMode;
pub use report::{Report, ReportBuilder, SortKey, TimeUnit};
pub use scope::{is_paused, pause, resume, ScopeGuard, ScopeSite};
pub use stats::{stats, OpStats};
pub use timer::PausableTimer;

/// `#[pulse::profile_fn]`: times a function (sync or async) as a scope
/// named after it. With the `enabled` feature off, it leaves the function as
/// it is. (It cannot be called `profile`: Rust keeps attribute and `!`
/// macros in one namespace, and `profile!` is the typed-operation macro.)
#[cfg(feature = "enabled")]
pub use pulse_macros::profile_fn;
#[cfg(not(feature = "enabled"))]
pub use pulse_macros::profile_fn_disabled as profile_fn;
/// `#[derive(pulse::Operation)]`: see [`Operation`].
pub use pulse_macros::Operation;
pub use session::{
    Counters, Error, Session, SessionBuilder, ENV_ALLOC, ENV_ARGS, ENV_COUNTERS, ENV_OUT,
    ENV_SAMPLE_BYTES, ENV_SIGNALS, ENV_STACK_DEPTH,
};

/// The program-load hook: starts a session when `PULSE_OUT` is set, so a
/// program that only swapped in the allocator is profiled with no other change.
#[used]
#[link_section = ".init_array"]
static START_FROM_ENV: extern "C" fn() = {
    extern "C" fn start() {
        // Nothing may unwind out of a loader constructor.
        let _ = std::panic::catch_unwind(session::start_from_env);
    }
    start
};

/// The README's examples compile (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
