//! Per-thread event rings and the registry the collector drains.
//!
//! Each thread that produces an event owns one [`Ring`]: a fixed array of
//! 64-bit words with a producer index (`head`, written only by the owner)
//! and a consumer index (`tail`, written only by the collector), both
//! counting words. An event is a few words — a header word (kind, a small
//! field, a 32-bit id) and the clock, then what its kind needs (see
//! [`EventKind`]): two words for a scope boundary, four for an allocation
//! or a free. Appending is plain stores of the words and a release store of
//! `head`: no lock, no read-modify-write, no syscall. The collector decodes
//! `[tail, head)` into [`Event`]s and publishes the new `tail`.
//!
//! Rings are allocated straight from the system allocator (never through the
//! global allocator), linked into a push-only list, and never freed: when a
//! thread exits its ring is retired, drained, and handed to the next new
//! thread. Memory is therefore bounded by the largest number of threads that
//! were alive at once. Who may move a ring between owners, and why the
//! collector never reads a word twice or skips one, is the protocol in
//! `handoff.rs` (with its state diagram and its model checks):
//!
//! ```text
//!            claim (CAS)            owner exits            consumer drained it (CAS)
//!   FREE ─────────────────► ACTIVE ─────────────► RETIRED ──────────────────────────► FREE
//!     ▲ new rings start ACTIVE
//! ```
//!
//! There is one consumer: every function here that reads rings or moves
//! them out of RETIRED holds [`CONSUMER`].

#[cfg_attr(all(test, loom), allow(unused_imports))]
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::handoff::Core;
use crate::site::SiteCache;
use crate::stats::ThreadCounters;

/// Words a ring holds: 512 KiB, 16 Ki allocation or free events, 32 Ki
/// scope boundaries. A thread that fills its ring before the collector
/// drains it waits: see `Ring::push`.
pub const RING_WORDS: usize = 1 << 16;
const MASK: usize = RING_WORDS - 1;
/// The owner looks at the collector's `tail` only past this many words in use.
const HALF: usize = RING_WORDS / 2;

/// What an [`Event`] records. Each kind is written as a fixed number of
/// words: the header (`kind | small << 8 | id << 32`), the clock `ts`, then
/// the kind's own words, which are decoded into the named fields of its
/// [`Event`]:
///
/// | kind | words | header `small`, `id` | then |
/// |---|---|---|---|
/// | `ThreadStart` | 4 | | `name` bytes 0..8, 8..16 |
/// | `ThreadEnd` | 2 | | |
/// | `Alloc` | 4 | `align_log2`, `site` | `addr`, `size` |
/// | `AllocFailed` | 3 | `align_log2` | `size` |
/// | `Free` | 4 | | `addr`, `size` |
/// | `Realloc` | 7 | `align_log2`, `site` | `start`, `new_addr`, `new_size`, `old_addr`, `old_size` |
/// | `ScopeEnter`, `ScopeExit` | 2 | , `scope` | |
/// | `Pause`, `Resume` | 2 | | |
/// | `Span` | 3 | , `scope` | `start` |
/// | `Counters` | 7 | `len`, `scope` (0: periodic) | `values` (5 words, `len` in use) |
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

impl EventKind {
    const ALL: [EventKind; 12] = [
        EventKind::ThreadStart,
        EventKind::ThreadEnd,
        EventKind::Alloc,
        EventKind::AllocFailed,
        EventKind::Free,
        EventKind::Realloc,
        EventKind::ScopeEnter,
        EventKind::ScopeExit,
        EventKind::Pause,
        EventKind::Resume,
        EventKind::Span,
        EventKind::Counters,
    ];

    /// The words an event of this kind takes in a ring.
    pub const fn words(self) -> usize {
        match self {
            EventKind::ThreadEnd
            | EventKind::ScopeEnter
            | EventKind::ScopeExit
            | EventKind::Pause
            | EventKind::Resume => 2,
            EventKind::AllocFailed | EventKind::Span => 3,
            EventKind::ThreadStart | EventKind::Alloc | EventKind::Free => 4,
            EventKind::Realloc | EventKind::Counters => 7,
        }
    }
}

/// An event's header word.
#[inline(always)]
pub(crate) const fn header(kind: EventKind, small: u8, id: u32) -> u64 {
    kind as u64 | (small as u64) << 8 | (id as u64) << 32
}

/// One event, decoded from a ring's words. `ts` is the session clock when
/// it happened; alignments are log2 of the block's alignment; a `site` of 0
/// means no stack was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Event {
    /// The thread's first event; `name` is its name's first 16 bytes,
    /// NUL-padded.
    ThreadStart { ts: u64, name: [u8; 16] },
    /// The thread is exiting.
    ThreadEnd { ts: u64 },
    /// `alloc` or `alloc_zeroed` returned `size` bytes at `addr`.
    Alloc { ts: u64, addr: u64, size: u64, align_log2: u8, site: u32 },
    /// The inner allocator returned null for `size` bytes.
    AllocFailed { ts: u64, size: u64, align_log2: u8 },
    /// `dealloc` of `size` bytes at `addr`.
    Free { ts: u64, addr: u64, size: u64 },
    /// `realloc`, called at `start`, moved or resized the old block into
    /// the new one and returned at `ts`.
    Realloc {
        ts: u64,
        start: u64,
        old_addr: u64,
        old_size: u64,
        new_addr: u64,
        new_size: u64,
        align_log2: u8,
        site: u32,
    },
    /// A scope was entered.
    ScopeEnter { ts: u64, scope: u32 },
    /// A scope was left.
    ScopeExit { ts: u64, scope: u32 },
    /// Recording was paused on the thread.
    Pause { ts: u64 },
    /// Recording resumed on the thread.
    Resume { ts: u64 },
    /// A run of an asynchronous operation, first polled at `start`,
    /// completed at `ts`.
    Span { ts: u64, start: u64, scope: u32 },
    /// A reading of the thread's counters: `values[..len]`, taken at the
    /// boundary of `scope` (0: a periodic reading).
    Counters { ts: u64, scope: u32, len: u8, values: [u64; 5] },
}

impl Event {
    /// Decodes the event whose header is `w(0)`; `w(i)` reads its `i`-th
    /// word. `None` for a header of no known kind.
    #[inline(always)]
    fn decode(w: impl Fn(usize) -> u64) -> Option<Event> {
        let h = w(0);
        let kind = *EventKind::ALL.get((h as u8 as usize).wrapping_sub(1))?;
        let ts = w(1);
        let (small, id) = ((h >> 8) as u8, (h >> 32) as u32);
        Some(match kind {
            EventKind::ThreadStart => {
                let mut name = [0u8; 16];
                name[..8].copy_from_slice(&w(2).to_le_bytes());
                name[8..].copy_from_slice(&w(3).to_le_bytes());
                Event::ThreadStart { ts, name }
            }
            EventKind::ThreadEnd => Event::ThreadEnd { ts },
            EventKind::Alloc => {
                Event::Alloc { ts, addr: w(2), size: w(3), align_log2: small, site: id }
            }
            EventKind::AllocFailed => Event::AllocFailed { ts, size: w(2), align_log2: small },
            EventKind::Free => Event::Free { ts, addr: w(2), size: w(3) },
            EventKind::Realloc => Event::Realloc {
                ts,
                start: w(2),
                new_addr: w(3),
                new_size: w(4),
                old_addr: w(5),
                old_size: w(6),
                align_log2: small,
                site: id,
            },
            EventKind::ScopeEnter => Event::ScopeEnter { ts, scope: id },
            EventKind::ScopeExit => Event::ScopeExit { ts, scope: id },
            EventKind::Pause => Event::Pause { ts },
            EventKind::Resume => Event::Resume { ts },
            EventKind::Span => Event::Span { ts, start: w(2), scope: id },
            EventKind::Counters => Event::Counters {
                ts,
                scope: id,
                len: small.min(5),
                values: [w(2), w(3), w(4), w(5), w(6)],
            },
        })
    }

    /// What the event records.
    #[inline(always)]
    pub fn kind(&self) -> EventKind {
        match self {
            Event::ThreadStart { .. } => EventKind::ThreadStart,
            Event::ThreadEnd { .. } => EventKind::ThreadEnd,
            Event::Alloc { .. } => EventKind::Alloc,
            Event::AllocFailed { .. } => EventKind::AllocFailed,
            Event::Free { .. } => EventKind::Free,
            Event::Realloc { .. } => EventKind::Realloc,
            Event::ScopeEnter { .. } => EventKind::ScopeEnter,
            Event::ScopeExit { .. } => EventKind::ScopeExit,
            Event::Pause { .. } => EventKind::Pause,
            Event::Resume { .. } => EventKind::Resume,
            Event::Span { .. } => EventKind::Span,
            Event::Counters { .. } => EventKind::Counters,
        }
    }

    /// The session clock when it happened.
    #[inline(always)]
    pub fn ts(&self) -> u64 {
        match *self {
            Event::ThreadStart { ts, .. }
            | Event::ThreadEnd { ts }
            | Event::Alloc { ts, .. }
            | Event::AllocFailed { ts, .. }
            | Event::Free { ts, .. }
            | Event::Realloc { ts, .. }
            | Event::ScopeEnter { ts, .. }
            | Event::ScopeExit { ts, .. }
            | Event::Pause { ts }
            | Event::Resume { ts }
            | Event::Span { ts, .. }
            | Event::Counters { ts, .. } => ts,
        }
    }
}

/// How far ahead of the event being decoded the collector prefetches.
const PREFETCH_WORDS: usize = 64;

/// The events of one thread, in its order, decoded as they are iterated.
#[derive(Debug)]
pub struct Events<'a> {
    base: *const u64,
    /// `RING_WORDS - 1` over a ring; all ones over a plain buffer.
    mask: usize,
    pos: usize,
    end: usize,
    _words: PhantomData<&'a [u64]>,
}

impl<'a> Events<'a> {
    /// The events in `words`, a plain buffer of whole events.
    pub(crate) fn linear(words: &'a [u64]) -> Self {
        Events {
            base: words.as_ptr(),
            mask: usize::MAX,
            pos: 0,
            end: words.len(),
            _words: PhantomData,
        }
    }
}

impl Iterator for Events<'_> {
    type Item = Event;

    #[inline(always)]
    fn next(&mut self) -> Option<Event> {
        if self.pos == self.end {
            return None;
        }
        let (base, mask, pos) = (self.base, self.mask, self.pos);
        // The owner wrote these words on another core: ask for the lines a
        // few events ahead now, so they arrive while these are encoded.
        #[cfg(target_arch = "x86_64")]
        {
            use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let ahead = base.wrapping_add(pos.wrapping_add(PREFETCH_WORDS) & mask);
            // SAFETY: a prefetch is a hint with no effect on memory or on
            // the program's state, valid for any address; SSE, which it
            // needs, is part of the x86-64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8) };
        }
        // SAFETY: every word in `[pos, end)` (indices masked) lies in the
        // buffer and was written before `end` was published; see `drain`
        // and `Events::linear`. Word `i` of the event at `pos` is inside
        // that range since only whole events are published.
        let ev = Event::decode(|i| unsafe { *base.add(pos.wrapping_add(i) & mask) });
        match ev {
            Some(e) => self.pos = pos.wrapping_add(e.kind().words()),
            // Never written; stop rather than misread the rest.
            None => self.pos = self.end,
        }
        ev
    }
}

/// A single-producer single-consumer ring of event words: the shared
/// protocol ([`Core`], which it dereferences to) and the owner's own state.
#[repr(C, align(64))]
pub(crate) struct Ring {
    core: Core<RING_WORDS>,
    /// Set once when the ring is linked; immutable after.
    next: AtomicPtr<Ring>,
    /// Exact per-thread totals, written only by the owner.
    pub(crate) counters: ThreadCounters,
    /// The owner's stack bounds and site cache; only the owner touches it.
    sites: UnsafeCell<SiteCache>,
}

impl std::ops::Deref for Ring {
    type Target = Core<RING_WORDS>;

    #[inline(always)]
    fn deref(&self) -> &Core<RING_WORDS> {
        &self.core
    }
}

// SAFETY: the words are shared between exactly one producer (the owning
// thread) and one consumer (whoever holds `CONSUMER`); the protocol in
// `handoff.rs` ensures they never touch the same word at the same time.
// `sites` is touched by the owner only. Every other field is atomic.
unsafe impl Sync for Ring {}

/// Held by the one consumer of the rings (the collector's rounds, and the
/// start of a session): two consumers on one ring would read its words
/// twice and could free it under its next owner.
static CONSUMER: Mutex<()> = Mutex::new(());

/// The head of the push-only list of every ring ever created.
static RINGS: AtomicPtr<Ring> = AtomicPtr::new(ptr::null_mut());
/// Rings allocated, for the profiler's own memory figures.
static RINGS_ALLOCATED: AtomicUsize = AtomicUsize::new(0);
/// Set while a collector may be waiting for rings to drain.
static WAKER: AtomicUsize = AtomicUsize::new(0);
/// Whether events are being recorded at all.
pub(crate) static RECORDING: AtomicBool = AtomicBool::new(false);
/// Bumped by the collector whenever it gets something done: a drain, a
/// piece of the file written ([`note_progress`]). A thread waiting for ring
/// room waits as long as this moves.
static PROGRESS: AtomicU64 = AtomicU64::new(0);
/// Moved whenever threads waiting for room in their ring may have it: the
/// collector has read the rings, or recording stopped. Those threads sleep
/// on this word ([`sleep_until_room`]) rather than spin: on a machine with
/// fewer cores than busy threads, spinning took the CPU the collector
/// needed to make the room.
static ROOM: AtomicU32 = AtomicU32::new(0);
/// How many threads are between counting themselves here and leaving
/// [`sleep_until_room`]: the collector wakes them only when there are any.
static ROOM_WAITERS: AtomicU32 = AtomicU32::new(0);
/// The longest a waiting thread sleeps before it looks again, should a
/// wake-up never come (and to judge a stall by the clock).
const ROOM_SLEEP_NS: u64 = 1_000_000;

/// Wakes the threads sleeping until there is room in their ring. Never
/// blocks or allocates.
pub(crate) fn wake_room_waiters() {
    ROOM.fetch_add(1, Ordering::SeqCst);
    // Against a waiter that counted itself before reading `ROOM` (both
    // sequentially consistent): either this sees its count and wakes it,
    // or it read `ROOM` after the increment above, and its `FUTEX_WAIT`
    // returns at once.
    if ROOM_WAITERS.load(Ordering::SeqCst) != 0 {
        crate::futex::wake(&ROOM);
    }
}

/// Sleeps until [`ROOM`] is no longer `seen`, for [`ROOM_SLEEP_NS`] at most
/// (or less: a signal ends it early, and the caller looks again).
fn sleep_until_room(seen: u32) {
    crate::futex::wait(&ROOM, seen, ROOM_SLEEP_NS);
}

/// The value of [`progress`] at which a waiting thread gave up on the
/// collector; `u64::MAX` while none has.
pub(crate) static STALLED_AT: AtomicU64 = AtomicU64::new(u64::MAX);
/// The CPU-time clock of the collector's thread ([`NO_CLOCK`]: none yet).
/// A collector that is working counts as moving even while it notes no
/// progress: a long round on a machine that gives it little time (memcheck
/// runs a process's threads one at a time) is not a stall. A collector
/// blocked in a write or on a lock uses no CPU time.
static COLLECTOR_CLOCK: AtomicI64 = AtomicI64::new(NO_CLOCK);
const NO_CLOCK: i64 = i64::MIN;
/// Events dropped because the collector stalled.
static LOST: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds the program's threads spent waiting for ring room.
static WAITED_NS: AtomicU64 = AtomicU64::new(0);

/// How long a thread with a full ring waits for a collector that makes no
/// progress at all before it drops its event (counted in [`lost_events`]):
/// two seconds. A collector that writes, however slowly, or that uses CPU
/// time (a long round on a starved machine), is waited for.
pub const STALL_NS: u64 = 2_000_000_000;

/// What `make_room` found.
enum Room {
    /// There is room: write the event.
    Yes,
    /// The collector stalled: the event is dropped and counted as lost.
    Lost,
    /// Recording stopped while waiting: the event is dropped.
    Stopped,
}

impl Ring {
    /// Claims a free ring or creates one, for the calling thread.
    /// Returns null if the system allocator cannot provide one.
    pub(crate) fn claim(tid: u64) -> *const Ring {
        let mut r = RINGS.load(Ordering::Acquire);
        while !r.is_null() {
            // SAFETY: rings are never freed, so every pointer in the list stays valid.
            let ring = unsafe { &*r };
            if ring.try_claim(tid) {
                return r;
            }
            r = ring.next.load(Ordering::Relaxed);
        }
        let fresh = Ring::zeroed();
        if fresh.is_null() {
            return ptr::null();
        }
        // SAFETY: `fresh` is a live, zeroed allocation of a `Ring` that no other thread can see yet.
        let ring = unsafe { &*fresh };
        ring.init_fresh(tid);
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

    /// A new, unlinked ring from the system allocator, or null.
    #[cfg(not(all(test, loom)))]
    pub(crate) fn zeroed() -> *mut Ring {
        // SAFETY: `Ring` has a non-zero size. All-zero bytes are a valid
        // `Ring`: atomics, words and the site cache at zero.
        unsafe { System.alloc_zeroed(Layout::new::<Ring>()) as *mut Ring }
    }

    /// In the model-checking build the ring's atomics are loom's, which
    /// zeroed memory is not: there are no rings, and every thread records
    /// through the ringless path.
    #[cfg(all(test, loom))]
    pub(crate) fn zeroed() -> *mut Ring {
        ptr::null_mut()
    }

    /// Appends one event of `N` words. Only the owning thread calls this.
    ///
    /// When the ring is full the owner waits for the collector (the lossless
    /// policy): it wakes the collector and yields until there is room. If
    /// recording stops meanwhile, the event is dropped and `false` returned.
    /// If the collector makes no progress for [`STALL_NS`] (its writes block
    /// for good, it waits on a lock the program holds), the event is dropped
    /// and counted as lost, and `true` returned (the caller's counters still
    /// count it): the program runs on, and waits again only once the
    /// collector moves.
    #[inline(always)]
    pub(crate) fn push<const N: usize>(&self, words: [u64; N]) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        if head.wrapping_sub(self.tail_seen.load(Ordering::Relaxed)) + N > HALF {
            match self.make_room(head, N) {
                Room::Yes => {}
                Room::Lost => return true,
                Room::Stopped => return false,
            }
        }
        // SAFETY: this thread owns the ring, and there is room for `N`
        // words past `head` (`make_room` saw to it, or the last reading of
        // `tail` leaves more than half the ring free).
        unsafe { self.core.push_unchecked(head, words) };
        true
    }

    /// The slow half of `push`: the ring may be half full. Reads the
    /// collector's `tail`, wakes it as the ring passes half full, and waits
    /// while the ring has no room for `n` words.
    #[cold]
    #[inline(never)]
    fn make_room(&self, head: usize, n: usize) -> Room {
        let tail = self.tail.load(Ordering::Acquire);
        self.tail_seen.store(tail, Ordering::Relaxed);
        let used = head.wrapping_sub(tail);
        if used + n <= HALF {
            return Room::Yes;
        }
        // Half full: wake the collector once, as the ring crosses the mark.
        if used <= HALF {
            wake_collector();
        }
        if used + n <= RING_WORDS {
            return Room::Yes;
        }
        self.wait_for_room(head, n)
    }

    /// Waits, asleep, until the collector has drained room for `n` words,
    /// as long as it makes progress; the time waited is pulse's cost to the
    /// program, counted in [`waited_ns`].
    #[cold]
    fn wait_for_room(&self, head: usize, n: usize) -> Room {
        let mut seen = progress();
        if seen == STALLED_AT.load(Ordering::Relaxed) {
            // Another thread already found the collector stalled, and it has
            // not moved since: drop without waiting.
            LOST.fetch_add(1, Ordering::Relaxed);
            return Room::Lost;
        }
        let start = crate::clock::monotonic_ns();
        let mut since = start;
        let room = loop {
            wake_collector();
            // Counted before `ROOM` is read, and both before the ring: a
            // collector that reads the ring after this wakes the thread
            // (see `wake_room_waiters`).
            ROOM_WAITERS.fetch_add(1, Ordering::SeqCst);
            let epoch = ROOM.load(Ordering::SeqCst);
            let full = head.wrapping_sub(self.tail.load(Ordering::Acquire)) + n > RING_WORDS;
            if full && RECORDING.load(Ordering::SeqCst) {
                sleep_until_room(epoch);
            }
            ROOM_WAITERS.fetch_sub(1, Ordering::SeqCst);
            if !RECORDING.load(Ordering::Relaxed) {
                break Room::Stopped;
            }
            let tail = self.tail.load(Ordering::Acquire);
            self.tail_seen.store(tail, Ordering::Relaxed);
            if head.wrapping_sub(tail) + n <= RING_WORDS {
                break Room::Yes;
            }
            let now = crate::clock::monotonic_ns();
            let p = progress();
            if p != seen {
                (seen, since) = (p, now);
            } else if now.saturating_sub(since) >= STALL_NS {
                STALLED_AT.store(p, Ordering::Relaxed);
                LOST.fetch_add(1, Ordering::Relaxed);
                break Room::Lost;
            }
        };
        WAITED_NS.fetch_add(crate::clock::monotonic_ns().saturating_sub(start), Ordering::Relaxed);
        room
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

/// Tells threads waiting for ring room that the collector is making
/// progress (a piece of the session file was written), so they keep
/// waiting rather than drop events. Never blocks or allocates.
pub fn note_progress() {
    PROGRESS.fetch_add(1, Ordering::Release);
}

/// The collector's progress mark: it moves whenever the collector gets
/// something done, and while its thread uses CPU time. For bounded waits on
/// the collector: one that does not move is blocked.
pub fn progress() -> u64 {
    // Both parts only grow, so the sum moves whenever either does.
    PROGRESS
        .load(Ordering::Acquire)
        .wrapping_add(thread_cpu_ns(COLLECTOR_CLOCK.load(Ordering::Acquire)))
}

/// Called on the collector's thread as it starts: its CPU time is progress.
pub(crate) fn note_collector_thread() {
    COLLECTOR_CLOCK.store(this_thread_clock(), Ordering::Release);
}

/// The CPU-time clock of the calling thread, or [`NO_CLOCK`].
fn this_thread_clock() -> i64 {
    let mut id: libc::clockid_t = 0;
    // SAFETY: `pthread_self()` is the calling thread, alive for the call;
    // `id` is valid and writable.
    let ok = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) } == 0;
    if ok {
        i64::from(id)
    } else {
        NO_CLOCK
    }
}

/// The CPU time of the thread whose clock is `id`, in nanoseconds; 0 for
/// [`NO_CLOCK`] or a thread that has ended. Async-signal-safe.
fn thread_cpu_ns(id: i64) -> u64 {
    let Ok(id) = libc::clockid_t::try_from(id) else { return 0 };
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; a clock id that names no
    // live thread is an error return, not undefined behaviour.
    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
        return 0;
    }
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// Events dropped since the process started because the collector made no
/// progress for [`STALL_NS`] while a thread's ring was full.
pub fn lost_events() -> u64 {
    LOST.load(Ordering::Relaxed)
}

/// Nanoseconds the program's threads have spent, since the process
/// started, waiting for room in their rings.
pub fn waited_ns() -> u64 {
    WAITED_NS.load(Ordering::Relaxed)
}

/// How long, at most, a round waits for threads inside a reallocation to
/// publish it (see [`drain`]); past it the round goes on without them.
const PENDING_WAIT: Duration = Duration::from_secs(1);

/// Hands every event recorded since the last drain to `f`, one call (or
/// two) per thread with its events in order, and frees the rings of threads
/// that have exited. The events of threads without a ring (recorded during
/// their thread-local teardown, after their ring was retired) come last.
///
/// Three orders are kept:
///
/// * A thread's own: its ringless events are taken from the orphan list
///   *before* the rings are read. Every one of them was recorded after its
///   thread retired its ring, so this round reads that ring to its end
///   before handing them out, and they follow its ring's events.
/// * A moving reallocation's: the inner allocator releases the old block
///   before the thread can publish the event, so another thread may be
///   handed the address and publish its allocation first. The thread flags
///   its ring for the length of the call (`Core::set_pending`). The round
///   notes the flagged calls as it begins, before it reads any ring, and
///   after reading every ring waits for them, all together (up to
///   `PENDING_WAIT`), reading their rings meanwhile, and reads each once
///   its call is over. The analyzer's merge, when round `r` begins, emits
///   everything up to the latest timestamp of round `r - 2`, all of it
///   read before round `r - 1` began. A call flagged then is read in round
///   `r - 1`; one flagged later released its block after all of round
///   `r - 2`'s events were stamped, so the reuse of that block is stamped
///   later still and waits in the merge for the release, which round `r`
///   reads at the latest (the call flagged as it begins, or published
///   before). Noting the flags after the first reading instead let events
///   read while the round waited depend on calls it never noted, which the
///   next round could miss: addresses live twice under load.
/// * A thread that was running when the session started is announced with
///   its `ThreadStart` (its name, at the time of its first event in this
///   session) before its first event.
///
/// Takes the consumer lock: one consumer at a time.
pub fn drain(f: &mut dyn FnMut(u64, Events<'_>)) {
    let _consumer = CONSUMER.lock().unwrap_or_else(|e| e.into_inner());
    let orphans = crate::thread::take_orphans();
    // The reallocations under way as the round begins, before it reads
    // anything: every event this round reads, in any pass, was published
    // after this, so one that reuses an address a later reallocation
    // released has that release at least as late, and the round after
    // reads it (flagged then, or published before it began).
    // A ring is waited for until the call seen here is over: its flag
    // cleared or set again by a later call, stored after this one's event.
    let mut waiting: Vec<(&Ring, u64)> = Vec::new();
    for_each_linked(|ring| {
        let p = ring.pending();
        if p != 0 {
            waiting.push((ring, p));
        }
    });
    for_each_linked(|ring| {
        collect(ring, f);
    });
    wake_room_waiters();
    // The flagged rings are waited for together, not one after another: a
    // thread inside a reallocation may be off its core for a whole
    // scheduler slice, and many may be at once.
    let deadline = Instant::now() + PENDING_WAIT;
    while !waiting.is_empty() {
        let late = Instant::now() >= deadline;
        let mut moved = false;
        waiting.retain(|&(ring, p)| {
            // Read what it published meanwhile: the call may be waiting for
            // room in its ring, which only this round can make.
            moved |= collect(ring, f);
            if ring.pending() == p && !late {
                return true;
            }
            moved |= collect(ring, f);
            false
        });
        // Only a ring read makes room: a sleeper woken otherwise would
        // find its ring as full as before.
        if moved {
            wake_room_waiters();
        }
        if !waiting.is_empty() {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    crate::thread::hand_orphans(&orphans, f);
}

/// At the start of a session, before it records: discards what the rings
/// and the orphan list hold from before (events of the previous session's
/// last moments), and marks every owned ring so that its thread is
/// announced again in this session.
pub(crate) fn begin_session() {
    let _consumer = CONSUMER.lock().unwrap_or_else(|e| e.into_inner());
    drop(crate::thread::take_orphans());
    for_each_linked(|ring| {
        ring.collect(|_| {});
        ring.mark_for_announce();
    });
}

/// Calls `f` with every ring ever linked.
fn for_each_linked(mut f: impl FnMut(&'static Ring)) {
    let mut r = RINGS.load(Ordering::Acquire);
    while !r.is_null() {
        // SAFETY: rings are never freed, so every pointer in the list stays valid.
        let ring = unsafe { &*r };
        f(ring);
        r = ring.next.load(Ordering::Relaxed);
    }
    note_progress();
}

/// Reads one ring's new events into `f` (announcing its thread first when
/// the ring is so marked). The caller holds [`CONSUMER`].
/// Reads what `ring` holds into `f`; whether there was anything.
fn collect(ring: &Ring, f: &mut dyn FnMut(u64, Events<'_>)) -> bool {
    ring.core
        .collect(|t| {
            let events = || Events {
                base: ring.words_ptr(),
                mask: MASK,
                pos: t.tail,
                end: t.head,
                _words: PhantomData,
            };
            if let Some(name) = ring.take_announce() {
                // A thread that claimed the ring just now announces itself.
                if let Some(first) = events().next().filter(|e| e.kind() != EventKind::ThreadStart)
                {
                    let start =
                        [header(EventKind::ThreadStart, 0, 0), first.ts(), name[0], name[1]];
                    f(t.tid, Events::linear(&start));
                }
            }
            // Words in `[tail, head)` were fully written before the owner's
            // release store of `head`, which `collect` acquired; the owner does
            // not write them again until `tail` moves past them, after `f` is
            // done with them.
            f(t.tid, events());
        })
        .is_some()
}

/// Calls `f` with every ring's owner, counters, and whether a thread owns it now.
pub(crate) fn for_each_ring(mut f: impl FnMut(u64, &ThreadCounters, bool)) {
    for_each_linked(|ring| f(ring.tid(), &ring.counters, ring.is_active()));
}

/// Bytes of ring memory pulse holds.
pub fn ring_bytes() -> usize {
    RINGS_ALLOCATED.load(Ordering::Relaxed) * std::mem::size_of::<Ring>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread at work moves its CPU clock, a blocked one does not: what
    /// lets a slow collector be told from a stalled one.
    #[test]
    fn a_thread_at_work_moves_its_cpu_clock_and_a_blocked_one_does_not() {
        use std::sync::mpsc;
        let (clock_tx, clock_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (rest_tx, rest_rx) = mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            clock_tx.send(this_thread_clock()).unwrap();
            let mut x = 0u64;
            while stop_rx.try_recv().is_err() {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            // Blocked until told to end.
            let _ = rest_rx.recv();
        });
        let id = clock_rx.recv().unwrap();
        assert_ne!(id, NO_CLOCK);
        let first = thread_cpu_ns(id);
        let deadline = Instant::now() + Duration::from_secs(10);
        while thread_cpu_ns(id) == first {
            assert!(Instant::now() < deadline, "a busy thread's CPU time never moved");
            std::thread::sleep(Duration::from_millis(1));
        }
        stop_tx.send(()).unwrap();
        // Once it blocks, its clock stands still.
        let mut last = thread_cpu_ns(id);
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let now = thread_cpu_ns(id);
            if now == last {
                break;
            }
            assert!(Instant::now() < deadline, "a blocked thread's CPU time kept moving");
            last = now;
        }
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(thread_cpu_ns(id), last, "the blocked thread used CPU time");
        rest_tx.send(()).unwrap();
        worker.join().unwrap();
        assert_eq!(thread_cpu_ns(NO_CLOCK), 0);
    }

    #[test]
    fn every_kind_decodes_from_its_words() {
        let words: Vec<u64> = [
            vec![header(EventKind::ThreadStart, 0, 0), 10, 0x6e69_616d, 0],
            vec![header(EventKind::Alloc, 3, 7), 11, 0x1000, 24],
            vec![header(EventKind::Free, 0, 0), 12, 0x1000, 24],
            vec![header(EventKind::Realloc, 4, 9), 14, 13, 0x2000, 64, 0x1000, 32],
            vec![header(EventKind::ScopeEnter, 0, 5), 15],
            vec![header(EventKind::Span, 0, 5), 16, 2],
            vec![header(EventKind::Counters, 2, 5), 17, 1, 2, 0, 0, 0],
            vec![header(EventKind::AllocFailed, 6, 0), 18, 1 << 40],
            vec![header(EventKind::ThreadEnd, 0, 0), 19],
        ]
        .concat();
        let evs: Vec<Event> = Events::linear(&words).collect();
        let mut main = [0u8; 16];
        main[..4].copy_from_slice(b"main");
        assert_eq!(
            evs,
            [
                Event::ThreadStart { ts: 10, name: main },
                Event::Alloc { ts: 11, addr: 0x1000, size: 24, align_log2: 3, site: 7 },
                Event::Free { ts: 12, addr: 0x1000, size: 24 },
                Event::Realloc {
                    ts: 14,
                    start: 13,
                    old_addr: 0x1000,
                    old_size: 32,
                    new_addr: 0x2000,
                    new_size: 64,
                    align_log2: 4,
                    site: 9,
                },
                Event::ScopeEnter { ts: 15, scope: 5 },
                Event::Span { ts: 16, start: 2, scope: 5 },
                Event::Counters { ts: 17, scope: 5, len: 2, values: [1, 2, 0, 0, 0] },
                Event::AllocFailed { ts: 18, size: 1 << 40, align_log2: 6 },
                Event::ThreadEnd { ts: 19 },
            ]
        );
        for (e, w) in evs.iter().zip([4, 4, 4, 7, 2, 3, 7, 3, 2]) {
            assert_eq!(e.kind().words(), w);
        }
    }

    #[test]
    #[cfg(not(all(test, loom)))]
    fn events_wrap_around_the_end_of_a_ring() {
        let ring = Ring::zeroed();
        assert!(!ring.is_null());
        // SAFETY: a fresh, unshared ring; freed at the end.
        let r = unsafe { &*ring };
        let mut seen = 0u64;
        let mut n = 0u64;
        // Fill and drain by hand (the ring is not linked): seven-word
        // events do not divide the ring, so some straddle its end.
        for round in 0..4u64 {
            for i in 0..(RING_WORDS as u64 / 2 / 7) {
                let ts = round * 1_000_000 + i;
                assert!(r.push([header(EventKind::Realloc, 0, 1), ts, ts, 1, 2, 3, 4]));
                n += 1;
            }
            let (head, tail) = (r.head.load(Ordering::Acquire), r.tail.load(Ordering::Relaxed));
            let evs = Events {
                base: r.words_ptr(),
                mask: MASK,
                pos: tail,
                end: head,
                _words: PhantomData,
            };
            for e in evs {
                let Event::Realloc { ts, start, new_addr, old_size, .. } = e else {
                    panic!("{e:?} is not the reallocation pushed");
                };
                assert_eq!((start, new_addr, old_size), (ts, 1, 4));
                seen += 1;
            }
            r.tail.store(head, Ordering::Release);
        }
        assert_eq!(seen, n);
        // SAFETY: allocated by `Ring::zeroed` with this layout; no reference outlives this.
        unsafe { System.dealloc(ring as *mut u8, Layout::new::<Ring>()) };
    }
}
