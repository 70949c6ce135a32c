//! In-process statistics: the collector feeds every scope event it drains
//! into the same [`Timing`] the analyzer uses, so [`stats`] returns, while
//! the program runs, the numbers `pulse report` will print.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use pulse_alloc::Event;
use pulse_format::{ScopeTime, Timing};

/// One operation's or scope's figures so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpStats {
    /// Its name.
    pub name: &'static str,
    /// Its category, or empty.
    pub category: &'static str,
    /// The category's description, or empty.
    pub description: &'static str,
    /// Its priority (higher first).
    pub priority: i64,
    /// Count, total, self, mean, min, max and percentiles in nanoseconds,
    /// allocations inside it, and the wall time of asynchronous runs.
    pub time: ScopeTime,
}

impl OpStats {
    /// The mean as a `Duration`.
    pub fn mean(&self) -> Duration {
        Duration::from_nanos(self.time.mean_ns)
    }

    /// The total as a `Duration`.
    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.time.total_ns)
    }
}

pub(crate) struct Aggregates {
    timing: Timing,
    ticks_per_ns: f64,
    /// What the metrics endpoint adds to the timings (`metrics.rs`).
    pub(crate) extra: crate::metrics::Extra,
}

impl Aggregates {
    /// The session's final calibration, once it is measured.
    pub(crate) fn set_ticks_per_ns(&mut self, t: f64) {
        self.ticks_per_ns = t;
    }

    /// The scope times, and ticks per nanosecond to read them with.
    pub(crate) fn timing(&self) -> (&Timing, f64) {
        (&self.timing, self.ticks_per_ns)
    }
}

/// The aggregates of the running (or last) session, and the collector's
/// count of finished rounds for [`stats`] to wait on.
pub(crate) static AGGREGATES: Mutex<Option<Aggregates>> = Mutex::new(None);
static ROUNDS: Mutex<u64> = Mutex::new(0);
static ROUND_DONE: Condvar = Condvar::new();

/// Starts fresh aggregates for a new session.
pub(crate) fn reset(ticks_per_ns: f64) {
    let extra = crate::metrics::Extra::at_session_start();
    *lock() = Some(Aggregates { timing: Timing::default(), ticks_per_ns, extra });
}

fn lock() -> std::sync::MutexGuard<'static, Option<Aggregates>> {
    AGGREGATES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Feeds one thread's drained events, in order, into the aggregates.
/// Allocations between two scope boundaries are charged together.
pub(crate) struct Feed<'a> {
    agg: &'a mut Aggregates,
    tid: u64,
    /// Allocations (count, bytes) not charged yet.
    allocs: (u64, u64),
    /// The live heap along these events, and the events' count (`metrics.rs`).
    heap: crate::metrics::FeedHeap,
}

impl<'a> Feed<'a> {
    pub(crate) fn new(agg: &'a mut Aggregates, tid: u64) -> Self {
        Feed { agg, tid, allocs: (0, 0), heap: crate::metrics::FeedHeap::default() }
    }

    #[inline]
    pub(crate) fn event(&mut self, ev: &Event) {
        let tid = self.tid;
        self.heap.event(ev);
        match *ev {
            Event::Alloc { size, .. } => {
                self.allocs.0 += 1;
                self.allocs.1 = self.allocs.1.saturating_add(size);
                return;
            }
            Event::Free { .. } | Event::Realloc { .. } | Event::AllocFailed { .. } => return,
            _ => self.flush(),
        }
        let t = &mut self.agg.timing;
        match *ev {
            Event::ScopeEnter { ts, scope } => t.enter(tid, scope, ts),
            Event::ScopeExit { ts, scope } => t.exit(tid, scope, ts),
            Event::Pause { ts } => t.pause(tid, ts),
            Event::Resume { ts } => t.resume(tid, ts),
            Event::Span { ts, start, scope } => t.span(scope, start, ts),
            Event::Counters { scope, len, values, .. } => {
                t.counters(tid, scope, &values[..usize::from(len)]);
            }
            _ => {}
        }
    }

    fn flush(&mut self) {
        if self.allocs.0 > 0 {
            self.agg.timing.allocs(self.tid, self.allocs.0, self.allocs.1);
            self.allocs = (0, 0);
        }
    }
}

impl Drop for Feed<'_> {
    fn drop(&mut self) {
        self.flush();
        self.agg.extra.add_feed(&self.heap);
    }
}

/// Runs `f` on the aggregates, if a session has started.
pub(crate) fn with_aggregates(f: impl FnOnce(&mut Aggregates)) {
    if let Some(a) = lock().as_mut() {
        f(a);
    }
}

/// Called by the collector at the end of every round.
pub(crate) fn round_done() {
    // The metrics' end of round, on the collector's thread (`metrics.rs`).
    with_aggregates(|a| a.extra.end_round());
    *ROUNDS.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    ROUND_DONE.notify_all();
}

/// Every operation and scope recorded so far in the running session (or the
/// last one, after it finished), most total time first. Events are counted
/// up to the call: it waits (at most a second) for the collector to drain
/// every thread once more.
///
/// ```no_run
/// for op in pulse::stats() {
///     println!("{}: {:?} mean over {} calls", op.name, op.mean(), op.time.count);
/// }
/// ```
pub fn stats() -> Vec<OpStats> {
    pulse_alloc::untracked(|| {
        // The collector takes both locks below each round: a signal waits
        // for their release.
        let _held = pulse_alloc::Holding::new();
        if crate::session::wake_for_stats() {
            let mut rounds = ROUNDS.lock().unwrap_or_else(|e| e.into_inner());
            // Two rounds: the one under way may have drained before the call.
            let target = *rounds + 2;
            let deadline = std::time::Instant::now() + Duration::from_secs(1);
            while *rounds < target {
                crate::session::wake_for_stats();
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                rounds = ROUND_DONE
                    .wait_timeout(rounds, left.min(Duration::from_millis(5)))
                    .map_or_else(|e| e.into_inner().0, |(g, _)| g);
            }
        }
        let guard = lock();
        let Some(agg) = guard.as_ref() else { return Vec::new() };
        let tpn = agg.ticks_per_ns;
        let (times, _) = agg.timing.snapshot(|t| (t as f64 / tpn).round() as u64);
        let defs = crate::scope::definitions_since(0);
        let mut out: Vec<OpStats> = times
            .into_iter()
            .filter_map(|(id, time)| {
                let d = defs.get((id as usize).checked_sub(1)?)?;
                Some(OpStats {
                    name: d.name,
                    category: d.category,
                    description: d.description,
                    priority: d.priority,
                    time,
                })
            })
            .collect();
        out.sort_by(|a, b| b.time.total_ns.cmp(&a.time.total_ns).then_with(|| a.name.cmp(b.name)));
        out
    })
}
