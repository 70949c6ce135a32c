//! Operation metrics for Prometheus: `PULSE_METRICS=127.0.0.1:9464` (or
//! [`SessionBuilder::metrics`](crate::SessionBuilder::metrics)) serves
//! `GET /metrics` in Prometheus's text exposition format, version 0.0.4.
//!
//! ```text
//!  program threads ──► rings ──► collector ──► aggregates (stats.rs) ◄── pulse::stats()
//!   (nothing new)                 (+ live heap,     │ copied under the lock,
//!                                  event counts)    ▼ then released
//!                                        metrics thread: renders, then writes to sockets
//! ```
//!
//! Every figure is one the collector already keeps for [`crate::stats`]:
//! each operation's histogram of entry times, its allocations and bytes
//! (`Timing` in `pulse-format`), plus a few sums the collector takes while
//! it drains (the live heap along the events, for the peak; the events and
//! stacks, for pulse's own cost). The program's threads pay nothing new.
//!
//! The server (`server.rs`) is one thread of pulse's own (marked like the
//! collector, so nothing it allocates is the program's), polling a
//! non-blocking listener and at most [`server::MAX_CONNECTIONS`]
//! connections: a request must arrive whole, within 8 KiB, in 5 s; a
//! response must be taken within 10 s; past the cap the idlest connection
//! makes room for a new one. It copies the figures out of the aggregates
//! under their lock, releases it, and only then encodes and writes.

mod render;
mod server;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use pulse_alloc::Event;

pub(crate) use server::bind;

/// The environment variable that serves operation metrics for Prometheus:
/// `PULSE_METRICS=127.0.0.1:9464` (an address and port; a port alone, or
/// `:9464`, is on loopback; `off` serves none). Read whenever a session
/// starts, the one `PULSE_OUT` starts before `main` included; set alone, it
/// starts a session of its own before `main` that writes no file.
pub const ENV_METRICS: &str = "PULSE_METRICS";

/// The environment variable that sets the duration histogram's bucket
/// bounds, in seconds, comma-separated: `PULSE_METRICS_BUCKETS=0.001,0.01,0.1`
/// (default [`DEFAULT_METRICS_BUCKETS`]).
pub const ENV_METRICS_BUCKETS: &str = "PULSE_METRICS_BUCKETS";

/// The default upper bounds of `pulse_operation_duration_seconds`' buckets,
/// in seconds: 1, 2.5 and 5 per decade from 100 ns to 10 s (`+Inf` comes
/// on top). Each bucket's count is read from the collector's histogram of
/// the operation's entries, whose buckets are 1/64 of a power of two wide:
/// to within 1.6 % of the bound.
pub const DEFAULT_METRICS_BUCKETS: [f64; 25] = [
    100e-9, 250e-9, 500e-9, 1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3,
    2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The most bucket bounds a histogram takes.
pub(crate) const MAX_BUCKETS: usize = 64;

/// The address a `PULSE_METRICS` value or a builder's `metrics(…)` names:
/// `HOST:PORT` with an IP address or `localhost`, `[IPV6]:PORT`, or a port
/// alone (`9464`, `:9464`), which is on loopback.
pub(crate) fn parse_address(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    let loopback = |port: &str| port.parse::<u16>().ok().map(|p| (Ipv4Addr::LOCALHOST, p).into());
    if let Some(port) = s.strip_prefix(':') {
        return loopback(port);
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        return loopback(port);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return loopback(s);
    }
    s.parse::<SocketAddr>().ok()
}

/// What `parse_address` takes, for error messages.
pub(crate) const ADDRESS_WANT: &str =
    "an address and port such as 127.0.0.1:9464 (or a port alone, on loopback), or off";

/// `PULSE_METRICS_BUCKETS`' value: bounds in seconds, comma-separated.
pub(crate) fn parse_buckets(s: &str) -> Option<Vec<f64>> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let x: f64 = part.parse().ok()?;
        if !x.is_finite() || x <= 0.0 {
            return None;
        }
        v.push(x);
    }
    let tidy = tidy_buckets(&v);
    (!v.is_empty() && v.len() <= MAX_BUCKETS).then_some(tidy)
}

/// What `parse_buckets` takes, for error messages.
pub(crate) const BUCKETS_WANT: &str =
    "bucket bounds in seconds, comma-separated, such as 0.001,0.01,0.1 (at most 64)";

/// Bounds as a histogram takes them: finite and positive, rising, each once,
/// at most [`MAX_BUCKETS`].
pub(crate) fn tidy_buckets(bounds: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = bounds.iter().copied().filter(|x| x.is_finite() && *x > 0.0).collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v.truncate(MAX_BUCKETS);
    v
}

/// Whether an address is on this machine only.
pub(crate) fn is_loopback(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback(),
    }
}

/// The metrics thread's CPU time so far, for pulse's own cost.
pub(crate) static SERVER_CPU_NS: AtomicU64 = AtomicU64::new(0);

/// The calling thread's CPU time, in nanoseconds.
pub(crate) fn thread_cpu_ns() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } != 0 {
        return 0;
    }
    (t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
}

/// What the collector keeps for the metrics beside the scope times, in the
/// session's aggregates: the live heap replayed from the drained events
/// (for the peak) and the counts behind pulse's own cost.
#[derive(Debug, Default)]
pub(crate) struct Extra {
    /// Live bytes after the last round's events (the counters' figure at
    /// the session's start, plus every drained event since).
    live: i64,
    /// The most live bytes seen.
    peak: i64,
    /// This round so far, over its feeds: the sum of their lowest points,
    /// the largest rise of one above its own lowest, and their net change.
    round_low_sum: i64,
    round_rise: i64,
    round_net: i64,
    /// Events drained, and those with a stack.
    events: u64,
    stacked: u64,
    /// The session's measured costs of one event and one stack, in ns.
    event_ns: f64,
    stack_ns: f64,
    /// `pulse_alloc::waited_ns()` and the metrics thread's CPU at the start.
    waited_base: u64,
    server_cpu_base: u64,
    /// The collector thread's CPU time at its last round.
    collector_cpu_ns: u64,
}

impl Extra {
    /// Fresh figures for a session starting now.
    pub(crate) fn at_session_start() -> Self {
        let live = pulse_alloc::totals().live_bytes();
        Extra {
            live,
            peak: live,
            waited_base: pulse_alloc::waited_ns(),
            server_cpu_base: SERVER_CPU_NS.load(Ordering::Relaxed),
            ..Extra::default()
        }
    }

    /// The session's calibration: one event's and one stack's cost.
    pub(crate) fn set_costs(&mut self, event_ns: f64, stack_ns: f64) {
        (self.event_ns, self.stack_ns) = (event_ns, stack_ns);
    }

    /// Adds one feed (one thread's drained events, in order) to the round.
    pub(crate) fn add_feed(&mut self, f: &FeedHeap) {
        self.round_low_sum = self.round_low_sum.saturating_add(f.low);
        self.round_rise = self.round_rise.max(f.high.saturating_sub(f.low));
        self.round_net = self.round_net.saturating_add(f.now);
        self.events += f.events;
        self.stacked += f.stacked;
    }

    /// Ends a round, on the collector's thread.
    ///
    /// The round's feeds ran side by side in time, in an order the
    /// collector does not know. While one feed was at its highest, every
    /// other one was at its lowest or above (its own events in order, from
    /// zero): so the heap was at least the live bytes before the round plus
    /// that highest plus the others' lowest points — a lower bound of the
    /// round's peak, exact when one thread allocated in the round. The live
    /// bytes after it are the bound too.
    pub(crate) fn end_round(&mut self) {
        let bound = self.live.saturating_add(self.round_low_sum).saturating_add(self.round_rise);
        self.live = self.live.saturating_add(self.round_net);
        self.peak = self.peak.max(bound).max(self.live);
        (self.round_low_sum, self.round_rise, self.round_net) = (0, 0, 0);
        self.collector_cpu_ns = thread_cpu_ns();
    }

    /// The most live bytes seen this session, at least `live_now`.
    pub(crate) fn peak(&self, live_now: i64) -> i64 {
        self.peak.max(live_now)
    }

    /// pulse's own cost so far this session, in seconds: its events and
    /// stacks on the program's threads (counted, times their measured unit
    /// cost, as `pulse report` estimates them), the time those threads
    /// waited for ring room (measured), and the CPU time of the collector
    /// and of the metrics thread (measured).
    pub(crate) fn overhead_seconds(&self) -> f64 {
        let on_threads = self.events as f64 * self.event_ns + self.stacked as f64 * self.stack_ns;
        let waited = pulse_alloc::waited_ns().saturating_sub(self.waited_base);
        let server = SERVER_CPU_NS.load(Ordering::Relaxed).saturating_sub(self.server_cpu_base);
        (on_threads + waited as f64 + self.collector_cpu_ns as f64 + server as f64) / 1e9
    }
}

/// The live heap along one feed's events, relative to its start, with its
/// highest and lowest points, and the events counted on the way.
#[derive(Debug, Default)]
pub(crate) struct FeedHeap {
    now: i64,
    high: i64,
    low: i64,
    events: u64,
    stacked: u64,
}

impl FeedHeap {
    #[inline]
    pub(crate) fn event(&mut self, ev: &Event) {
        self.events += 1;
        let (delta, site) = match *ev {
            Event::Alloc { size, site, .. } => (size as i64, site),
            Event::Free { size, .. } => ((size as i64).wrapping_neg(), 0),
            Event::Realloc { new_size, old_size, site, .. } => {
                ((new_size as i64).wrapping_sub(old_size as i64), site)
            }
            _ => return,
        };
        self.stacked += u64::from(site != 0);
        // Wrapping: sizes are below 2^63, and the heap's sum of them too.
        self.now = self.now.wrapping_add(delta);
        self.high = self.high.max(self.now);
        self.low = self.low.min(self.now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_alloc::EventKind;

    #[test]
    fn addresses_default_to_loopback() {
        let lo = |p| Some(SocketAddr::from((Ipv4Addr::LOCALHOST, p)));
        assert_eq!(parse_address("9464"), lo(9464));
        assert_eq!(parse_address(":9464"), lo(9464));
        assert_eq!(parse_address(" localhost:0 "), lo(0));
        assert_eq!(parse_address("127.0.0.1:9464"), lo(9464));
        assert_eq!(parse_address("[::1]:80").map(|a| a.port()), Some(80));
        assert_eq!(parse_address("0.0.0.0:9464").map(|a| is_loopback(&a)), Some(false));
        for bad in ["", "off", "example.com:9464", "127.0.0.1", "127.0.0.1:99999", ":x"] {
            assert_eq!(parse_address(bad), None, "{bad}");
        }
    }

    #[test]
    fn buckets_are_sorted_positive_and_bounded() {
        assert_eq!(parse_buckets("0.1, 0.001,0.01,0.1"), Some(vec![0.001, 0.01, 0.1]));
        for bad in ["", "0", "-1", "1,x", "inf", "NaN"] {
            assert_eq!(parse_buckets(bad), None, "{bad}");
        }
        let many: Vec<String> = (1..=65).map(|i| i.to_string()).collect();
        assert_eq!(parse_buckets(&many.join(",")), None);
        assert_eq!(tidy_buckets(&[f64::NAN, 2.0, 1.0, 2.0, 0.0]), vec![1.0, 2.0]);
        assert!(DEFAULT_METRICS_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!((DEFAULT_METRICS_BUCKETS[0], DEFAULT_METRICS_BUCKETS[24]), (100e-9, 10.0));
    }

    fn ev(kind: EventKind, size: u64, old_size: u64) -> Event {
        let (ts, addr, align_log2, site) = (0, 0x1000, 3, 1);
        match kind {
            EventKind::Alloc => Event::Alloc { ts, addr, size, align_log2, site },
            EventKind::Free => Event::Free { ts, addr, size },
            EventKind::Realloc => Event::Realloc {
                ts,
                start: ts,
                old_addr: addr,
                old_size,
                new_addr: addr,
                new_size: size,
                align_log2,
                site,
            },
            _ => unreachable!("{kind:?} changes no heap"),
        }
    }

    #[test]
    fn one_thread_a_round_gives_the_exact_peak() {
        let mut x = Extra::default();
        let mut f = FeedHeap::default();
        for e in [
            ev(EventKind::Alloc, 100, 0),
            ev(EventKind::Realloc, 300, 100),
            ev(EventKind::Free, 300, 0),
            ev(EventKind::Alloc, 50, 0),
        ] {
            f.event(&e);
        }
        x.add_feed(&f);
        x.end_round();
        assert_eq!((x.live, x.peak(0)), (50, 300));
        assert_eq!((x.events, x.stacked), (4, 3));
    }

    #[test]
    fn threads_side_by_side_give_a_lower_bound() {
        // Live 1000 before the round. Thread A: +500 then -500; thread B:
        // -200 then +100. Whatever the interleaving, the heap reached at
        // least 1000 + 500 - 200.
        let mut x = Extra { live: 1000, peak: 1000, ..Extra::default() };
        let (mut a, mut b) = (FeedHeap::default(), FeedHeap::default());
        a.event(&ev(EventKind::Alloc, 500, 0));
        a.event(&ev(EventKind::Free, 500, 0));
        b.event(&ev(EventKind::Free, 200, 0));
        b.event(&ev(EventKind::Alloc, 100, 0));
        x.add_feed(&a);
        x.add_feed(&b);
        x.end_round();
        assert_eq!((x.live, x.peak(0)), (900, 1300));
        // A quiet round keeps the peak; a higher live figure raises it.
        x.end_round();
        assert_eq!(x.peak(0), 1300);
        assert_eq!(x.peak(2000), 2000);
    }
}
