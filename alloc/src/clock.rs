//! The session clock: the invariant time-stamp counter where the processor
//! has one, `CLOCK_MONOTONIC` otherwise.
//!
//! One reading is a branch on a relaxed atomic plus `rdtsc` (about 10 ns on
//! the virtual machines this was measured on) or a vDSO `clock_gettime`
//! (about 20–25 ns). `docs/PERFORMANCE.md` has the figures.

use std::sync::atomic::{AtomicBool, Ordering};

static USE_TSC: AtomicBool = AtomicBool::new(false);

/// The clock a session reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `CLOCK_MONOTONIC`, in nanoseconds.
    Monotonic,
    /// The invariant TSC, in ticks.
    Tsc,
}

/// Reads the session clock.
#[inline]
pub fn now() -> u64 {
    if USE_TSC.load(Ordering::Relaxed) {
        tsc()
    } else {
        monotonic_ns()
    }
}

/// The clock [`now`] reads.
pub fn source() -> Source {
    if USE_TSC.load(Ordering::Relaxed) {
        Source::Tsc
    } else {
        Source::Monotonic
    }
}

/// Chooses the clock: the TSC if `want_tsc` and the processor says its TSC
/// is invariant (constant rate, running in every power state), else the
/// monotonic clock. Returns the choice.
pub fn select(want_tsc: bool) -> Source {
    let tsc = want_tsc && has_invariant_tsc();
    USE_TSC.store(tsc, Ordering::Relaxed);
    source()
}

/// `CLOCK_MONOTONIC` in nanoseconds. Never inlined: its `timespec` stays
/// out of the allocator's recording functions (see `thread.rs`).
#[inline(never)]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// The raw time-stamp counter (or the monotonic clock where there is none).
#[inline]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` exists on every x86-64 processor and has no memory effects.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        monotonic_ns()
    }
}

/// Whether CPUID reports an invariant TSC (leaf 0x8000_0007, EDX bit 8).
pub fn has_invariant_tsc() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::__cpuid;
        // `cpuid` exists on every x86-64 processor; leaf 0x8000_0000 reports
        // the highest extended leaf.
        let max = __cpuid(0x8000_0000).eax;
        if max < 0x8000_0007 {
            return false;
        }
        let edx = __cpuid(0x8000_0007).edx;
        edx & (1 << 8) != 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A paired reading of the session clock and the monotonic clock, for
/// calibrating ticks against nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Anchor {
    /// Session clock ticks.
    pub ticks: u64,
    /// Monotonic nanoseconds.
    pub ns: u64,
}

impl Anchor {
    /// Reads both clocks, keeping the tightest of a few tries so a
    /// preemption between the two reads does not skew the pair.
    pub fn take() -> Anchor {
        let mut best = Anchor { ticks: now(), ns: monotonic_ns() };
        let mut best_gap = u64::MAX;
        for _ in 0..16 {
            let a = monotonic_ns();
            let t = now();
            let b = monotonic_ns();
            if b - a < best_gap {
                best_gap = b - a;
                best = Anchor { ticks: t, ns: a + (b - a) / 2 };
            }
        }
        best
    }

    /// Ticks per nanosecond between two anchors (1.0 if they are too close).
    pub fn ticks_per_ns(self, later: Anchor) -> f64 {
        let dn = later.ns.saturating_sub(self.ns);
        let dt = later.ticks.saturating_sub(self.ticks);
        if dn < 1_000 || dt == 0 {
            1.0
        } else {
            dt as f64 / dn as f64
        }
    }
}
