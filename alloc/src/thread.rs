//! Per-thread state and the functions that record events.
//!
//! Every recording function follows the same steps: check that a session
//! is recording (one relaxed load), take the reentrancy guard, find the
//! thread's ring (claiming one on the thread's first event), read the
//! clock, append the event, bump the thread's counters.

use std::alloc::Layout;
use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

use crate::clock;
use crate::guard::Guard;
use crate::ring::{Event, EventKind, Ring, RECORDING};
use crate::site::{self, SiteCache, StackMode};
use crate::stats::{Totals, ORPHAN_COUNTERS, OWN_ALLOCS, OWN_BYTES};

/// pulse's id for a thread: 1, 2, 3 … in order of first event.
static NEXT_TID: AtomicU64 = AtomicU64::new(1);

/// Events of threads that have no ring: a thread allocating during its own
/// thread-local teardown, after its ring was retired. Rare, so a lock is fine;
/// the vector's own allocations happen under the guard and are not recorded.
static ORPHANS: Mutex<Vec<(u64, Event)>> = Mutex::new(Vec::new());

/// A thread's pulse state. `const`-initialized and without a destructor, so
/// touching it never allocates and it stays usable during thread teardown.
pub(crate) struct ThreadState {
    /// The reentrancy flag, see [`crate::guard`].
    pub(crate) busy: Cell<bool>,
    ring: Cell<*const Ring>,
    tid: Cell<u64>,
    /// Set when the thread's exit notifier ran: no ring may be claimed after.
    exited: Cell<bool>,
}

thread_local! {
    pub(crate) static STATE: ThreadState = const {
        ThreadState { busy: Cell::new(false), ring: Cell::new(ptr::null()), tid: Cell::new(0), exited: Cell::new(false) }
    };
    /// Registered on a thread's first event; its destructor retires the ring.
    static EXIT: ExitNotifier = const { ExitNotifier };
}

struct ExitNotifier;

impl Drop for ExitNotifier {
    fn drop(&mut self) {
        STATE.with(|s| {
            let Some(_g) = Guard::enter(&s.busy) else {
                return;
            };
            let ring = s.ring.replace(ptr::null());
            s.exited.set(true);
            if !ring.is_null() {
                // SAFETY: rings are never freed; this thread still owns it.
                let ring = unsafe { &*ring };
                ring.push(Event::new(EventKind::ThreadEnd, clock::now()));
                ring.retire();
            }
        });
    }
}

impl ThreadState {
    fn tid(&self) -> u64 {
        let t = self.tid.get();
        if t != 0 {
            return t;
        }
        let t = NEXT_TID.fetch_add(1, Ordering::Relaxed);
        self.tid.set(t);
        t
    }

    /// This thread's ring, claiming one on first use. Null when the thread is
    /// exiting (its events then go to the orphan list).
    #[inline]
    fn ring(&self) -> *const Ring {
        let r = self.ring.get();
        if !r.is_null() || self.exited.get() {
            return r;
        }
        self.claim_ring()
    }

    #[cold]
    fn claim_ring(&self) -> *const Ring {
        // Register the exit notifier first; if the thread is already tearing
        // down its thread-locals this fails, and the thread stays ringless.
        if EXIT.try_with(|_| ()).is_err() {
            self.exited.set(true);
            return ptr::null();
        }
        let tid = self.tid();
        let r = Ring::claim(tid);
        if !r.is_null() {
            self.ring.set(r);
            // SAFETY: this thread just claimed the ring and holds no other reference to its cache.
            unsafe { (*r).sites() }.init();
            // SAFETY: rings are never freed.
            unsafe { &*r }.counters.rebase();
            let mut ev = Event::new(EventKind::ThreadStart, clock::now());
            let name = thread_name();
            ev.a = u64::from_le_bytes(name[..8].try_into().unwrap_or([0; 8]));
            ev.b = u64::from_le_bytes(name[8..].try_into().unwrap_or([0; 8]));
            // SAFETY: just claimed; this thread owns it and rings are never freed.
            unsafe { &*r }.push(ev);
        }
        r
    }
}

/// The calling thread's name from the kernel (at most 15 bytes, NUL-padded),
/// read without allocating; the process's first thread is called `main`.
fn thread_name() -> [u8; 16] {
    let mut buf = [0u8; 16];
    // SAFETY: getpid and gettid have no preconditions.
    let main = unsafe { libc::getpid() as libc::c_long == libc::syscall(libc::SYS_gettid) };
    if main {
        buf[..4].copy_from_slice(b"main");
        return buf;
    }
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included, into `buf`.
    unsafe { libc::prctl(libc::PR_GET_NAME, buf.as_mut_ptr() as libc::c_ulong, 0, 0, 0) };
    buf
}

/// Records `ev` on this thread, stamping the clock, then calls `count` with
/// the thread's counters. Called from inside pulse (the guard is taken), it
/// records nothing and counts `own_size` bytes as pulse's own. `ev` gets the thread's site cache, or
/// `None` on a thread that has no ring (during its teardown).
#[inline]
fn record(
    own_size: usize,
    ev: impl FnOnce(u64, Option<&mut SiteCache>) -> Event,
    count: impl FnOnce(&crate::stats::ThreadCounters),
) {
    STATE.with(|s| {
        let Some(_g) = Guard::enter(&s.busy) else {
            if own_size > 0 {
                own(own_size);
            }
            return;
        };
        let ring = s.ring();
        if ring.is_null() {
            let ev = ev(clock::now(), None);
            record_orphan(s.tid(), ev);
            return;
        }
        // SAFETY: rings are never freed, and this thread owns this one until
        // its exit notifier clears `s.ring`.
        let ring = unsafe { &*ring };
        // SAFETY: this thread owns the ring; the reference ends with `ev`.
        let ev = ev(clock::now(), Some(unsafe { ring.sites() }));
        if ring.push(ev) {
            count(&ring.counters);
        }
    });
}

/// The site of an allocation of `size` bytes, per the stack mode: always in
/// `Full`, for a byte-weighted sample in `Sample`, never in `Off`.
#[inline]
fn site_for(cache: Option<&mut SiteCache>, size: u64) -> u32 {
    let Some(cache) = cache else { return 0 };
    match site::mode() {
        StackMode::Off => 0,
        StackMode::Full => cache.site(),
        StackMode::Sample => {
            if size < cache.sample_countdown {
                cache.sample_countdown -= size;
                return 0;
            }
            // Sampled: the next gap starts after this allocation's bytes.
            let mut over = size - cache.sample_countdown;
            loop {
                let gap = cache.next_sample_gap();
                if gap > over {
                    cache.sample_countdown = gap - over;
                    break;
                }
                over -= gap;
            }
            cache.site()
        }
    }
}

#[cold]
fn record_orphan(tid: u64, ev: Event) {
    let mut t = Totals::default();
    match ev.kind {
        EventKind::Alloc => (t.allocs, t.bytes_allocated) = (1, ev.b),
        EventKind::Free => (t.frees, t.bytes_freed) = (1, ev.b),
        EventKind::Realloc => (t.reallocs, t.bytes_allocated, t.bytes_freed) = (1, ev.b, ev.d),
        EventKind::AllocFailed => t.failed = 1,
        _ => {}
    }
    ORPHAN_COUNTERS.add(t);
    let mut o = ORPHANS.lock().unwrap_or_else(|e| e.into_inner());
    o.push((tid, ev));
}

/// Hands the orphan events to `f` and forgets them. Called by the collector
/// after it drained the rings.
pub fn drain_orphans(f: &mut dyn FnMut(u64, &[Event])) {
    let taken = std::mem::take(&mut *ORPHANS.lock().unwrap_or_else(|e| e.into_inner()));
    let mut i = 0;
    while i < taken.len() {
        let tid = taken[i].0;
        let mut j = i;
        while j < taken.len() && taken[j].0 == tid {
            j += 1;
        }
        let evs: Vec<Event> = taken[i..j].iter().map(|(_, e)| *e).collect();
        f(tid, &evs);
        i = j;
    }
}

#[inline]
fn recording() -> bool {
    RECORDING.load(Ordering::Relaxed)
}

/// What a session records of allocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Tracking {
    /// Nothing: only scope and thread events are recorded.
    Off = 0,
    /// Exact counts per thread, no events.
    Count = 1,
    /// An event per allocation, free and reallocation.
    Events = 2,
}

static TRACKING: AtomicU8 = AtomicU8::new(Tracking::Events as u8);

/// Whether allocations are recorded as events (else only counted).
#[inline]
fn events() -> bool {
    TRACKING.load(Ordering::Relaxed) == Tracking::Events as u8
}

/// Whether allocations are tracked at all (recording, and not `Off`).
#[inline]
fn tracking_allocs() -> bool {
    recording() && TRACKING.load(Ordering::Relaxed) != Tracking::Off as u8
}

#[inline]
fn align_log2(layout: Layout) -> u8 {
    layout.align().trailing_zeros() as u8
}

/// Counts an allocation made by pulse's own code (the guard was taken).
#[cold]
fn own(size: usize) {
    OWN_ALLOCS.fetch_add(1, Ordering::Relaxed);
    OWN_BYTES.fetch_add(size as u64, Ordering::Relaxed);
}

/// The counting-only path: bumps this thread's counters, no clock, no event.
/// `orphan` is what to add to the global counters on a thread with no ring.
#[inline]
fn count(own_size: usize, orphan: Totals, f: impl FnOnce(&crate::stats::ThreadCounters)) {
    STATE.with(|s| {
        let Some(_g) = Guard::enter(&s.busy) else {
            if own_size > 0 {
                own(own_size);
            }
            return;
        };
        let ring = s.ring();
        if ring.is_null() {
            ORPHAN_COUNTERS.add(orphan);
        } else {
            // SAFETY: rings are never freed; this thread owns this one.
            f(&unsafe { &*ring }.counters);
        }
    });
}

#[inline]
pub(crate) fn on_alloc(p: *mut u8, layout: Layout) {
    if !tracking_allocs() {
        return;
    }
    let size = layout.size() as u64;
    if p.is_null() {
        if !events() {
            return count(layout.size(), Totals { failed: 1, ..Totals::default() }, |c| c.failed());
        }
        return record(
            layout.size(),
            |ts, _| {
                let mut e = Event::new(EventKind::AllocFailed, ts);
                e.b = size;
                e.align_log2 = align_log2(layout);
                e
            },
            |c| c.failed(),
        );
    }
    if !events() {
        let t = Totals { allocs: 1, bytes_allocated: size, ..Totals::default() };
        return count(layout.size(), t, |c| c.alloc(size));
    }
    record(
        layout.size(),
        |ts, sites| {
            let mut e = Event::new(EventKind::Alloc, ts);
            e.site = site_for(sites, size);
            e.a = p as u64;
            e.b = size;
            e.d = 1;
            e.align_log2 = align_log2(layout);
            e
        },
        |c| c.alloc(size),
    );
}

#[inline]
pub(crate) fn on_free(p: *mut u8, layout: Layout) {
    if !tracking_allocs() {
        return;
    }
    let size = layout.size() as u64;
    if !events() {
        return count(0, Totals { frees: 1, bytes_freed: size, ..Totals::default() }, |c| {
            c.free(size)
        });
    }
    record(
        0,
        |ts, _| {
            let mut e = Event::new(EventKind::Free, ts);
            e.a = p as u64;
            e.b = size;
            e
        },
        |c| c.free(size),
    );
}

/// A `realloc` carries two timestamps: `ts`, read before the inner call
/// (when the old block may be released), and the clock read here, after it
/// (when the new block exists). See `tracking.rs`.
#[inline]
pub(crate) fn on_realloc(ts: u64, old: *mut u8, layout: Layout, new: *mut u8, new_size: usize) {
    if !tracking_allocs() {
        return;
    }
    let (old_size, new_size64) = (layout.size() as u64, new_size as u64);
    if new.is_null() {
        if !events() {
            return count(new_size, Totals { failed: 1, ..Totals::default() }, |c| c.failed());
        }
        return record(
            new_size,
            |_, _| {
                let mut e = Event::new(EventKind::AllocFailed, ts);
                e.b = new_size64;
                e.align_log2 = align_log2(layout);
                e
            },
            |c| c.failed(),
        );
    }
    if !events() {
        let t = Totals {
            reallocs: 1,
            bytes_allocated: new_size64,
            bytes_freed: old_size,
            ..Totals::default()
        };
        return count(new_size, t, |c| c.realloc(old_size, new_size64));
    }
    record(
        new_size,
        |now, sites| {
            let mut e = Event::new(EventKind::Realloc, now);
            e.site = site_for(sites, new_size64.saturating_sub(old_size).max(1));
            e.start = ts;
            e.a = new as u64;
            e.b = new_size64;
            e.c = old as u64;
            e.d = old_size;
            e.align_log2 = align_log2(layout);
            e
        },
        |c| c.realloc(old_size, new_size64),
    );
}

/// Records a scope boundary or a pause on the calling thread.
/// `arg` is the scope id for scope events, 0 otherwise.
#[inline]
pub fn record_marker(kind: EventKind, arg: u32) {
    if !recording() {
        return;
    }
    record(
        0,
        |ts, _| {
            let mut e = Event::new(kind, ts);
            e.a = u64::from(arg);
            e
        },
        |_| {},
    );
}

/// Records that one run of an asynchronous operation `scope`, first polled
/// at `start` (a reading of [`crate::clock::now`]), completed now.
pub fn record_span(scope: u32, start: u64) {
    if !recording() {
        return;
    }
    record(
        0,
        |ts, _| {
            let mut e = Event::new(EventKind::Span, ts);
            e.a = u64::from(scope);
            e.start = start.min(ts);
            e
        },
        |_| {},
    );
}

/// Records a reading of the calling thread's counters, taken at a boundary
/// of `scope`: the first `n` (at most 5) of `values`.
pub fn record_counters(scope: u32, values: &[u64; 5], n: usize) {
    if !recording() {
        return;
    }
    record(
        0,
        |ts, _| {
            let mut e = Event::new(EventKind::Counters, ts);
            [e.a, e.b, e.c, e.d, e.start] = *values;
            e.align_log2 = n.min(5) as u8;
            e.site = scope;
            e
        },
        |_| {},
    );
}

/// Marks the calling thread as pulse's own (the collector): nothing it
/// allocates is ever recorded, and it records no events.
pub fn mark_internal_thread() {
    STATE.with(|s| s.busy.set(true));
}

/// Starts recording: scope and thread events always, allocations as
/// `tracking` says (with a site per the stack mode when they are events).
/// Events left in the rings from an earlier session are discarded.
pub fn start_recording(tracking: Tracking) {
    crate::ring::drain(&mut |_, _| {});
    drain_orphans(&mut |_, _| {});
    TRACKING.store(tracking as u8, Ordering::Relaxed);
    RECORDING.store(true, Ordering::SeqCst);
}

/// Stops recording events; threads blocked on a full ring give up.
pub fn stop_recording() {
    RECORDING.store(false, Ordering::SeqCst);
}

/// Whether a session is recording.
pub fn is_recording() -> bool {
    recording()
}

/// The calling thread's pulse id (assigning one if it has none yet).
pub fn current_thread_id() -> u64 {
    STATE.with(|s| s.tid())
}

/// Whether the calling thread is inside pulse's own code.
pub fn in_pulse() -> bool {
    STATE.with(|s| s.busy.get())
}

/// Runs `f` with tracking off on this thread: what it allocates counts as
/// pulse's own overhead, not as the program's. For pulse's own bookkeeping.
pub fn untracked<R>(f: impl FnOnce() -> R) -> R {
    STATE.with(|s| {
        let _g = Guard::enter(&s.busy);
        f()
    })
}

/// The calling thread's totals so far in this session (all zero before its
/// first counted allocation). Never allocates.
pub fn thread_totals() -> Totals {
    STATE.with(|s| {
        let r = s.ring.get();
        if r.is_null() {
            Totals::default()
        } else {
            // SAFETY: rings are never freed; this thread owns this one.
            unsafe { &*r }.counters.own()
        }
    })
}
