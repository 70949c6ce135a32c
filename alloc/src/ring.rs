//! Per-thread event rings and the registry the collector drains.
//!
//! Each thread that produces an event owns one [`Ring`]: a fixed array of
//! [`Event`]s with a producer index (`head`, written only by the owner) and a
//! consumer index (`tail`, written only by the collector). Appending is a
//! plain store of the event and a release store of `head`: no lock, no
//! read-modify-write, no syscall. The collector reads `[tail, head)` and
//! publishes the new `tail`.
//!
//! Rings are allocated straight from the system allocator (never through the
//! global allocator), linked into a push-only list, and never freed: when a
//! thread exits its ring is retired, drained, and handed to the next new
//! thread. Memory is therefore bounded by the largest number of threads that
//! were alive at once.
//!
//! ```text
//!            claim (CAS)            thread exits             collector drained it
//!   FREE ─────────────────► ACTIVE ─────────────► RETIRED ──────────────────────► FREE
//!     ▲ new rings start ACTIVE
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use crate::site::SiteCache;
use crate::stats::ThreadCounters;

/// Events a ring holds (896 KiB of 56-byte events). A thread that fills its
/// ring before the collector drains it waits: see [`Ring::push`].
pub const RING_CAPACITY: usize = 1 << 14;

const ACTIVE: u8 = 1;
const RETIRED: u8 = 2;
const FREE: u8 = 3;
const CLAIMING: u8 = 4;

/// What an [`Event`] records. The meaning of its fields per kind:
///
/// | kind | `a` | `b` | `c` | `d` |
/// |---|---|---|---|---|
/// | `ThreadStart` | name bytes 0..8 | name bytes 8..16 | | |
/// | `Alloc` | address | size | | weight |
/// | `AllocFailed` | | size | | |
/// | `Free` | address | size | | |
/// | `Realloc` | new address | new size | old address | old size |
/// | `ScopeEnter`, `ScopeExit` | scope id | | | |
/// | `Span` | scope id | | | |
/// | `Counters` | value 0 | value 1 | value 2 | value 3 |
///
/// A `Counters` event keeps its fifth value in `start`, the number of values
/// in `align_log2`, and its scope (0: a periodic sample) in `site`.
///
/// `start` is the clock when a `Realloc` call began or a `Span`'s first poll happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EventKind {
    /// The thread's first event.
    ThreadStart = 1,
    /// The thread is exiting.
    ThreadEnd,
    /// `alloc` or `alloc_zeroed` returned a block.
    Alloc,
    /// The inner allocator returned null.
    AllocFailed,
    /// `dealloc`.
    Free,
    /// `realloc` returned a block.
    Realloc,
    /// A scope was entered.
    ScopeEnter,
    /// A scope was left.
    ScopeExit,
    /// Recording was paused on the thread.
    Pause,
    /// Recording resumed on the thread.
    Resume,
    /// A run of an asynchronous operation completed.
    Span,
    /// A reading of the thread's counters.
    Counters,
}

/// One fixed-size event as the hot path writes it. The collector turns it
/// into a [`pulse_format`-style record](crate) when it drains the ring.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// log2 of the block's alignment.
    pub align_log2: u8,
    /// The allocation site, 0 when none was captured.
    pub site: u32,
    /// The session clock when it happened.
    pub ts: u64,
    /// For `Realloc`, the clock when the call began (the old block's release).
    pub start: u64,
    /// Kind-specific, see [`EventKind`].
    pub a: u64,
    /// Kind-specific.
    pub b: u64,
    /// Kind-specific.
    pub c: u64,
    /// Kind-specific.
    pub d: u64,
}

impl Event {
    /// An event of `kind` at `ts` with every other field zero.
    #[inline]
    pub const fn new(kind: EventKind, ts: u64) -> Self {
        Event { kind, align_log2: 0, site: 0, ts, start: ts, a: 0, b: 0, c: 0, d: 0 }
    }
}

/// A single-producer single-consumer ring of events.
#[repr(C, align(64))]
pub(crate) struct Ring {
    /// Next slot the owner writes; only the owner stores it.
    head: AtomicUsize,
    /// The owner's last reading of `tail`: it reloads the real one only when
    /// this says the ring may be half full, so the hot path does not touch
    /// the cache line the collector writes.
    tail_seen: AtomicUsize,
    _pad_head: [u8; 48],
    /// Next slot the collector reads; only the collector stores it.
    tail: AtomicUsize,
    _pad_tail: [u8; 56],
    state: AtomicU8,
    /// The owning thread's pulse id.
    tid: AtomicU64,
    /// Set once when the ring is linked; immutable after.
    next: AtomicPtr<Ring>,
    /// Exact per-thread totals, written only by the owner.
    pub(crate) counters: ThreadCounters,
    /// The owner's stack bounds and site cache; only the owner touches it.
    sites: UnsafeCell<SiteCache>,
    slots: [UnsafeCell<MaybeUninit<Event>>; RING_CAPACITY],
}

// SAFETY: the slots are shared between exactly one producer (the owning
// thread) and one consumer (the collector, serialized by the caller of
// `drain`); the head/tail protocol below ensures they never touch the same
// slot at the same time. Every other field is atomic.
unsafe impl Sync for Ring {}

/// The head of the push-only list of every ring ever created.
static RINGS: AtomicPtr<Ring> = AtomicPtr::new(ptr::null_mut());
/// Rings allocated, for the profiler's own memory figures.
static RINGS_ALLOCATED: AtomicUsize = AtomicUsize::new(0);
/// Set while a collector may be waiting for rings to drain.
static WAKER: AtomicUsize = AtomicUsize::new(0);
/// Whether events are being recorded at all.
pub(crate) static RECORDING: AtomicBool = AtomicBool::new(false);

impl Ring {
    /// Claims a free ring or creates one, for the calling thread.
    /// Returns null if the system allocator cannot provide one.
    pub(crate) fn claim(tid: u64) -> *const Ring {
        let mut r = RINGS.load(Ordering::Acquire);
        while !r.is_null() {
            // SAFETY: rings are never freed, so every pointer in the list stays valid.
            let ring = unsafe { &*r };
            if ring
                .state
                .compare_exchange(FREE, CLAIMING, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                ring.tid.store(tid, Ordering::Relaxed);
                ring.state.store(ACTIVE, Ordering::Release);
                return r;
            }
            r = ring.next.load(Ordering::Relaxed);
        }
        let layout = Layout::new::<Ring>();
        // SAFETY: `Ring` has a non-zero size. All-zero bytes are a valid `Ring`:
        // atomics at zero and uninitialized slots.
        let fresh = unsafe { System.alloc_zeroed(layout) } as *mut Ring;
        if fresh.is_null() {
            return ptr::null();
        }
        // SAFETY: `fresh` is a live, zeroed allocation of a `Ring` that no other thread can see yet.
        let ring = unsafe { &*fresh };
        ring.tid.store(tid, Ordering::Relaxed);
        ring.state.store(ACTIVE, Ordering::Relaxed);
        RINGS_ALLOCATED.fetch_add(1, Ordering::Relaxed);
        let mut head = RINGS.load(Ordering::Relaxed);
        loop {
            ring.next.store(head, Ordering::Relaxed);
            match RINGS.compare_exchange_weak(head, fresh, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return fresh,
                Err(h) => head = h,
            }
        }
    }

    /// Appends an event. Only the owning thread calls this.
    ///
    /// When the ring is full the owner waits for the collector (the lossless
    /// policy): it wakes the collector and yields until a slot frees up. If
    /// recording stops meanwhile, the event is dropped and `false` returned.
    #[inline]
    pub(crate) fn push(&self, ev: Event) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        let mut used = head.wrapping_sub(self.tail_seen.load(Ordering::Relaxed));
        if used >= RING_CAPACITY / 2 {
            let tail = self.tail.load(Ordering::Acquire);
            self.tail_seen.store(tail, Ordering::Relaxed);
            used = head.wrapping_sub(tail);
        }
        if used >= RING_CAPACITY / 2 {
            // Half full: wake the collector once, as the ring crosses the mark.
            if used == RING_CAPACITY / 2 {
                wake_collector();
            }
            if used >= RING_CAPACITY && !self.wait_for_room(head, used) {
                return false;
            }
        }
        let slot = &self.slots[head % RING_CAPACITY];
        // SAFETY: the slot at `head` is outside `[tail, head)`, the range the
        // collector may read, and only this thread writes slots; the collector
        // reads it only after the release store of `head` below.
        unsafe { (*slot.get()).write(ev) };
        self.head.store(head.wrapping_add(1), Ordering::Release);
        true
    }

    #[cold]
    fn wait_for_room(&self, head: usize, mut used: usize) -> bool {
        wake_collector();
        while used >= RING_CAPACITY {
            if !RECORDING.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::yield_now();
            wake_collector();
            used = head.wrapping_sub(self.tail.load(Ordering::Acquire));
        }
        true
    }

    /// The owner's site cache.
    ///
    /// # Safety
    /// Only the thread that owns the ring may call this, and it may not hold
    /// two of the returned references at once.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub(crate) unsafe fn sites(&self) -> &mut SiteCache {
        // SAFETY: the caller is the owner and holds no other reference; no
        // other thread ever touches `sites`.
        unsafe { &mut *self.sites.get() }
    }

    /// Marks the ring retired: its owner will push nothing more.
    pub(crate) fn retire(&self) {
        self.state.store(RETIRED, Ordering::Release);
    }
}

/// Registers the function that wakes the collector when a ring fills up.
/// It must not allocate or block (`std::thread::Thread::unpark` qualifies).
pub fn set_waker(wake: fn()) {
    WAKER.store(wake as usize, Ordering::Release);
}

#[inline]
fn wake_collector() {
    let w = WAKER.load(Ordering::Acquire);
    if w != 0 {
        // SAFETY: WAKER only ever holds 0 or a `fn()` stored by `set_waker`.
        let f: fn() = unsafe { std::mem::transmute::<usize, fn()>(w) };
        f();
    }
}

/// Hands every event recorded since the last drain to `f`, as
/// `(thread id, events)` slices in each thread's order, and frees the rings
/// of threads that have exited.
///
/// Only one thread may drain at a time; the runtime's collector serializes
/// its calls with a lock.
pub fn drain(f: &mut dyn FnMut(u64, &[Event])) {
    let mut r = RINGS.load(Ordering::Acquire);
    while !r.is_null() {
        // SAFETY: rings are never freed.
        let ring = unsafe { &*r };
        let state = ring.state.load(Ordering::Acquire);
        if state == ACTIVE || state == RETIRED {
            let tid = ring.tid.load(Ordering::Relaxed);
            let head = ring.head.load(Ordering::Acquire);
            let tail = ring.tail.load(Ordering::Relaxed);
            let n = head.wrapping_sub(tail);
            if n > 0 {
                let start = tail % RING_CAPACITY;
                let first = n.min(RING_CAPACITY - start);
                let base = ring.slots.as_ptr() as *const Event;
                // SAFETY: slots in `[tail, head)` were fully written before the
                // owner's release store of `head`, which our acquire load saw;
                // the owner does not write them again until `tail` moves past
                // them. `UnsafeCell<MaybeUninit<Event>>` has the layout of `Event`.
                let (one, two) = unsafe {
                    (
                        std::slice::from_raw_parts(base.add(start), first),
                        std::slice::from_raw_parts(base, n - first),
                    )
                };
                f(tid, one);
                if !two.is_empty() {
                    f(tid, two);
                }
                ring.tail.store(head, Ordering::Release);
            }
            if state == RETIRED {
                ring.state.store(FREE, Ordering::Release);
            }
        }
        r = ring.next.load(Ordering::Relaxed);
    }
}

/// Calls `f` with every ring's owner, counters, and whether a thread owns it now.
pub(crate) fn for_each_ring(mut f: impl FnMut(u64, &ThreadCounters, bool)) {
    let mut r = RINGS.load(Ordering::Acquire);
    while !r.is_null() {
        // SAFETY: rings are never freed.
        let ring = unsafe { &*r };
        let active = ring.state.load(Ordering::Acquire) == ACTIVE;
        f(ring.tid.load(Ordering::Relaxed), &ring.counters, active);
        r = ring.next.load(Ordering::Relaxed);
    }
}

/// Bytes of ring memory pulse holds.
pub fn ring_bytes() -> usize {
    RINGS_ALLOCATED.load(Ordering::Relaxed) * std::mem::size_of::<Ring>()
}
