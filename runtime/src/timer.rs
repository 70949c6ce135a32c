//! A timer that counts only the time it runs.

use std::marker::PhantomData;
use std::time::Duration;

use pulse_alloc::{clock, EventKind};

use crate::op::Operation;
use crate::scope::ScopeSite;

/// Accumulates an operation's active time over several segments: it runs
/// from [`PausableTimer::start`] or [`PausableTimer::resume`] to
/// [`PausableTimer::pause`], and [`PausableTimer::finish`] returns the sum.
/// Each active segment is recorded as one entry of the operation's scope
/// (so allocations inside count for it); the waits between are not.
///
/// ```
/// # #[derive(pulse::Operation)] enum Op { Download }
/// let mut t = pulse::PausableTimer::start(&Op::Download);
/// // … receive a chunk …
/// t.pause();
/// // … wait for the network: not counted …
/// t.resume();
/// // … receive another …
/// let active = t.finish();
/// # let _ = active;
/// ```
#[derive(Debug)]
pub struct PausableTimer {
    site: &'static ScopeSite,
    /// The clock at the start of the running segment, if one runs.
    running: Option<u64>,
    /// Nanoseconds of finished segments.
    active_ns: u64,
    /// Segments are entries on one thread's scope stack.
    _not_send: PhantomData<*const ()>,
}

impl PausableTimer {
    /// A running timer for `op`.
    pub fn start(op: &impl Operation) -> Self {
        let mut t =
            PausableTimer { site: op.site(), running: None, active_ns: 0, _not_send: PhantomData };
        t.resume();
        t
    }

    /// Starts a segment; does nothing if one runs.
    pub fn resume(&mut self) {
        if self.running.is_none() {
            pulse_alloc::record_marker(EventKind::ScopeEnter, self.site.id());
            self.running = Some(clock::monotonic_ns());
        }
    }

    /// Ends the running segment; does nothing if none runs.
    pub fn pause(&mut self) {
        if let Some(start) = self.running.take() {
            self.active_ns += clock::monotonic_ns().saturating_sub(start);
            pulse_alloc::record_marker(EventKind::ScopeExit, self.site.id());
        }
    }

    /// The active time so far.
    pub fn elapsed(&self) -> Duration {
        let running = self.running.map_or(0, |s| clock::monotonic_ns().saturating_sub(s));
        Duration::from_nanos(self.active_ns + running)
    }

    /// Ends the timer and returns its active time.
    pub fn finish(mut self) -> Duration {
        self.pause();
        Duration::from_nanos(self.active_ns)
    }
}

impl Drop for PausableTimer {
    fn drop(&mut self) {
        self.pause();
    }
}
