//! What pulse's own hot path costs on this machine, measured at session
//! start so that a session can state its overhead.

use std::alloc::{GlobalAlloc, Layout, System};

use crate::clock;
use crate::ring::{header, EventKind, Ring, RING_WORDS};

/// Measured costs, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// One reading of the session clock.
    pub clock_ns: f64,
    /// One event: a clock reading and an append to a ring.
    pub event_ns: f64,
    /// One stack capture and hash, at the configured depth, from a stack
    /// at least that deep.
    pub stack_ns: f64,
    /// What each frame of a capture adds: a capture of `n` frames costs
    /// about `stack_ns - (depth - n) * frame_ns`.
    pub frame_ns: f64,
}

/// Measures the costs, in about a millisecond. Call with the clock selected
/// and the stack depth set; it records nothing.
pub fn calibrate() -> Calibration {
    const N: u32 = 4096;
    let t = clock::monotonic_ns();
    let mut acc = 0u64;
    for _ in 0..N {
        acc = acc.wrapping_add(clock::now());
    }
    std::hint::black_box(acc);
    let clock_ns = (clock::monotonic_ns() - t) as f64 / f64::from(N);
    crate::thread::untracked(|| {
        let (stack_ns, frame_ns) = crate::site::time_capture(N);
        Calibration { clock_ns, event_ns: time_events(N), stack_ns, frame_ns }
    })
}

/// Appends `n` allocation events to a scratch ring that no collector sees.
fn time_events(n: u32) -> f64 {
    let n = n.min(RING_WORDS as u32 / 2 / 4 - 1);
    let ring = Ring::zeroed();
    if ring.is_null() {
        return 0.0;
    }
    // SAFETY: `ring` is a live, zeroed, unshared `Ring`.
    let r = unsafe { &*ring };
    let t = clock::monotonic_ns();
    for i in 0..n {
        r.push([header(EventKind::Alloc, 3, 1), clock::now(), u64::from(i), 64]);
    }
    let ns = (clock::monotonic_ns() - t) as f64 / f64::from(n.max(1));
    // SAFETY: allocated by `Ring::zeroed` with this layout; no reference outlives this.
    unsafe { System.dealloc(ring as *mut u8, Layout::new::<Ring>()) };
    ns
}
