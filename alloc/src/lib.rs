//! The pulse global allocator.
//!
//! [`Alloc`] wraps any [`GlobalAlloc`](std::alloc::GlobalAlloc) and, while a
//! session records, appends one compact event (a few 64-bit words) per
//! allocation, free and reallocation to the calling thread's ring buffer —
//! no lock, no syscall, no allocation on that path. The runtime crate (`pulse`) owns sessions: it
//! starts recording, drains the rings from its collector thread with
//! [`drain`], and writes the session file.
//!
//! ```
//! #[global_allocator]
//! static ALLOC: pulse_alloc::Alloc = pulse_alloc::Alloc::system();
//!
//! let v = vec![1u8; 100];
//! # drop(v);
//! ```
//!
//! Users depend on `pulse`, which re-exports [`Alloc`]; this crate is the
//! lowest layer and has no dependency beyond `libc`.
#![deny(missing_docs)]

pub mod budget;
mod calibrate;
pub mod clock;
mod deferred;
pub mod futex;
mod guard;
mod handoff;
mod ring;
mod site;
mod stats;
mod thread;
mod tracking;

pub use calibrate::{calibrate, Calibration};
pub use deferred::{defer_signal, Holding};
pub use ring::{
    drain, lost_events, note_progress, progress, ring_bytes, set_waker, waited_ns, Event,
    EventKind, Events, RING_WORDS, STALL_NS,
};
pub use site::{
    drain_sites, set_sample_interval, set_stack_mode, stack_depth, stack_mode, StackMode,
    DEFAULT_DEPTH, DEFAULT_SAMPLE_INTERVAL, MAX_DEPTH,
};
pub use stats::{heap_stats, overhead, totals, HeapStats, Overhead, ThreadStats, Totals};
pub use thread::{
    become_collector, current_thread_id, in_pulse, is_recording, mark_internal_thread,
    record_boundary, record_counters, record_marker, record_span, start_recording, stop_recording,
    thread_totals, untracked, Tracking,
};
pub use tracking::Alloc;

/// This crate's source directory as it was built: the analyzer tells the
/// allocator's frames from the program's by it, whatever the build's debug
/// information calls them.
pub const SOURCE_DIR: &str = env!("CARGO_MANIFEST_DIR");
