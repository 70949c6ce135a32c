//! Per-thread state and the functions that record events.
//!
//! An allocator call first reads one byte, the allocation mode: nothing to
//! do (no session, or allocations not tracked), count, or record events
//! (with or without stacks). Counting bumps the thread's counters and
//! nothing else. Recording takes the reentrancy guard, finds the thread's
//! ring (claiming one on the thread's first event), captures the stack if
//! the mode says so, reads the clock, appends the event's words and bumps
//! the counters.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

use crate::budget::{self, BUDGETED};
use crate::clock;
use crate::guard::Guard;
use crate::ring::{header, Event, EventKind, Events, Ring, RECORDING};
use crate::site::{self, SiteCache, StackMode};
use crate::stats::{ThreadCounters, Totals, ORPHAN_COUNTERS, OWN_ALLOCS, OWN_BYTES};

/// pulse's id for a thread: 1, 2, 3 … in order of first event.
static NEXT_TID: AtomicU64 = AtomicU64::new(1);

/// The longest event, in words.
const MAX_WORDS: usize = 7;

/// Events of threads that have no ring: a thread allocating during its own
/// thread-local teardown, after its ring was retired. Rare, so a lock is fine;
/// the vector's own allocations happen under the guard and are not recorded.
static ORPHANS: Mutex<Vec<(u64, [u64; MAX_WORDS])>> = Mutex::new(Vec::new());

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

/// This thread's state, without a closure around the code that uses it
/// (which the compiler then inlines whole into the allocator's entry).
#[inline(always)]
fn state() -> &'static ThreadState {
    // SAFETY: `STATE` is `const`-initialized and has no destructor, so its
    // storage is valid for the thread's whole life, its teardown included.
    // `ThreadState` is not `Sync`, so the reference cannot leave the thread.
    STATE.with(|s| unsafe { &*(s as *const ThreadState) })
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
                // Between sessions the end is no session's: nothing would
                // consume it but the next session's start, as a stale event.
                if recording() {
                    ring.push([header(EventKind::ThreadEnd, 0, 0), clock::now()]);
                }
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

    /// This thread's ring, claiming one on first use. `None` when the thread
    /// is exiting (its events then go to the orphan list).
    #[inline(always)]
    fn ring(&self) -> Option<&'static Ring> {
        let r = self.ring.get();
        if r.is_null() {
            return self.claim_ring();
        }
        // SAFETY: rings are never freed, and this thread owns this one until
        // its exit notifier clears `self.ring`.
        Some(unsafe { &*r })
    }

    #[cold]
    #[inline(never)]
    fn claim_ring(&self) -> Option<&'static Ring> {
        if self.exited.get() {
            return None;
        }
        // Claiming allocates (the exit notifier's registration may): under
        // the guard, which the counting path has not taken.
        let _g = Guard::enter(&self.busy);
        // Register the exit notifier first; if the thread is already tearing
        // down its thread-locals this fails, and the thread stays ringless.
        if EXIT.try_with(|_| ()).is_err() {
            self.exited.set(true);
            return None;
        }
        let tid = self.tid();
        let r = Ring::claim(tid);
        if r.is_null() {
            return None;
        }
        self.ring.set(r);
        // SAFETY: rings are never freed; this thread just claimed this one.
        let ring = unsafe { &*r };
        // SAFETY: this thread owns the ring and holds no other reference to its cache.
        unsafe { ring.sites() }.init();
        ring.counters.rebase();
        let name = thread_name();
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        let name = [word(&name[..8]), word(&name[8..])];
        // Kept for a later session to announce the thread again.
        ring.set_name(name);
        ring.push([header(EventKind::ThreadStart, 0, 0), clock::now(), name[0], name[1]]);
        Some(ring)
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

/// Appends one event on this thread and then calls `count` with the
/// thread's counters. `event` makes the event's words, reading the clock
/// itself; it gets the thread's site cache, or `None` on a thread that has
/// no ring (during its teardown). Called from inside pulse (the guard is
/// taken), it records nothing and counts `own_size` bytes as pulse's own.
#[inline(always)]
fn record<const N: usize>(
    own_size: usize,
    event: impl FnOnce(Option<&mut SiteCache>) -> [u64; N],
    count: impl FnOnce(&ThreadCounters),
) {
    let s = state();
    let Some(_g) = Guard::enter(&s.busy) else {
        if own_size > 0 {
            own(own_size);
        }
        return;
    };
    match s.ring() {
        Some(ring) => {
            // SAFETY: this thread owns the ring; the reference ends with `event`.
            if ring.push(event(Some(unsafe { ring.sites() }))) {
                count(&ring.counters);
            }
        }
        None => record_orphan(s.tid(), event),
    }
}

/// The counting-only path: bumps this thread's counters, no clock, no
/// event. It only reads the reentrancy flag: it calls nothing that could
/// come back into the allocator (claiming the first ring takes the guard).
/// `orphan` is what to add to the global counters on a thread with no ring.
#[inline(always)]
fn count(own_size: usize, orphan: impl FnOnce() -> Totals, f: impl FnOnce(&ThreadCounters)) {
    let s = state();
    if s.busy.get() {
        if own_size > 0 {
            own(own_size);
        }
        return;
    }
    match s.ring() {
        Some(ring) => f(&ring.counters),
        None => ORPHAN_COUNTERS.add(orphan()),
    }
}

/// The site of an allocation of `size` bytes, per the allocation mode:
/// always in `FULL`, for a byte-weighted sample in `SAMPLE`, never else.
#[inline(always)]
fn site_for(mode: u8, cache: Option<&mut SiteCache>, size: u64) -> u32 {
    let Some(cache) = cache else { return 0 };
    match mode {
        FULL => cache.site(),
        SAMPLE => {
            if size < cache.sample_countdown {
                cache.sample_countdown -= size;
                return 0;
            }
            next_sample(cache, size);
            // Walked from this frame, as in `FULL`: a sampled stack is the
            // same stack, the same site, that full tracking would record.
            cache.site()
        }
        _ => 0,
    }
}

/// A sampled allocation: sets the next gap, which starts after this
/// allocation's bytes.
#[inline(never)]
fn next_sample(cache: &mut SiteCache, size: u64) {
    let mut over = size - cache.sample_countdown;
    loop {
        let gap = cache.next_sample_gap();
        if gap > over {
            cache.sample_countdown = gap - over;
            break;
        }
        over -= gap;
    }
}

/// An event of a thread that has no ring. `event` is taken whole, so that
/// the recording functions keep no buffer of their own whose address could
/// escape (which would keep the compiler from making their last call a jump).
#[cold]
#[inline(never)]
fn record_orphan<const N: usize>(tid: u64, event: impl FnOnce(Option<&mut SiteCache>) -> [u64; N]) {
    let words = event(None);
    let words = &words[..];
    let Some(ev) = Events::linear(words).next() else { return };
    let mut t = Totals::default();
    match ev {
        Event::Alloc { size, .. } => (t.allocs, t.bytes_allocated) = (1, size),
        Event::Free { size, .. } => (t.frees, t.bytes_freed) = (1, size),
        Event::Realloc { new_size, old_size, .. } => {
            (t.reallocs, t.bytes_allocated, t.bytes_freed) = (1, new_size, old_size)
        }
        Event::AllocFailed { .. } => t.failed = 1,
        _ => {}
    }
    ORPHAN_COUNTERS.add(t);
    let mut w = [0u64; MAX_WORDS];
    w[..words.len()].copy_from_slice(words);
    let mut o = ORPHANS.lock().unwrap_or_else(|e| e.into_inner());
    o.push((tid, w));
}

/// The orphan events recorded so far, taken off the list.
pub(crate) fn take_orphans() -> Vec<(u64, [u64; MAX_WORDS])> {
    std::mem::take(&mut *ORPHANS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Hands `taken` orphan events to `f`, one call per run of one thread's
/// events. Called by `ring::drain` after it read the rings (see there for
/// why this keeps each thread's order).
pub(crate) fn hand_orphans(taken: &[(u64, [u64; MAX_WORDS])], f: &mut dyn FnMut(u64, Events<'_>)) {
    let mut words = Vec::new();
    let mut i = 0;
    while i < taken.len() {
        let tid = taken[i].0;
        words.clear();
        while i < taken.len() && taken[i].0 == tid {
            let w = &taken[i].1;
            let n = Events::linear(w).next().map_or(0, |e| e.kind().words());
            words.extend_from_slice(&w[..n]);
            i += 1;
        }
        f(tid, Events::linear(&words));
    }
}

#[inline(always)]
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

/// What an allocator call does, in the one byte it reads first: derived
/// from whether a session records, its [`Tracking`] and the stack mode.
static ALLOC_MODE: AtomicU8 = AtomicU8::new(IDLE);
/// Nothing: no session records, or it does not track allocations.
pub(crate) const IDLE: u8 = 0;
/// Bump the thread's counters.
pub(crate) const COUNT: u8 = 1;
/// Record events without stacks.
pub(crate) const EVENTS: u8 = 2;
/// Record events, each with its stack.
const FULL: u8 = 3;
/// Record events, a byte-weighted sample with stacks.
const SAMPLE: u8 = 4;

/// Recomputes [`ALLOC_MODE`] after any of its inputs changed. Serialized:
/// the last to run read every input written before it.
pub(crate) fn refresh_mode() {
    static REFRESH: Mutex<()> = Mutex::new(());
    let _one = REFRESH.lock().unwrap_or_else(|e| e.into_inner());
    let mode = if !RECORDING.load(Ordering::SeqCst) {
        IDLE
    } else {
        match TRACKING.load(Ordering::SeqCst) {
            t if t == Tracking::Count as u8 => COUNT,
            t if t == Tracking::Events as u8 => match site::mode() {
                StackMode::Off => EVENTS,
                StackMode::Full => FULL,
                StackMode::Sample => SAMPLE,
            },
            _ => IDLE,
        }
    };
    let budgets = if budget::active() { BUDGETED } else { 0 };
    ALLOC_MODE.store(mode | budgets, Ordering::SeqCst);
}

/// The allocation mode an allocator call acts on, read once per call.
#[inline(always)]
pub(crate) fn alloc_mode() -> u8 {
    ALLOC_MODE.load(Ordering::Relaxed)
}

#[inline(always)]
fn align_log2(layout: Layout) -> u8 {
    layout.align().trailing_zeros() as u8
}

/// Counts an allocation made by pulse's own code (the guard was taken).
#[cold]
fn own(size: usize) {
    OWN_ALLOCS.fetch_add(1, Ordering::Relaxed);
    OWN_BYTES.fetch_add(size as u64, Ordering::Relaxed);
}

// The allocator's entry points (`tracking.rs`) read the mode once. Below
// `EVENTS` they call the inner allocator and then `counted_*`, inline;
// from `EVENTS` on they jump to `*_recorded`, which call the inner
// allocator themselves and record the event, the stack walked from their
// own frame.

/// After the inner allocator returned `p` for `layout`, in mode `IDLE` or
/// `COUNT`; returns `p`.
#[inline(always)]
pub(crate) fn counted_alloc(mode: u8, p: *mut u8, layout: Layout) -> *mut u8 {
    if mode == COUNT {
        if p.is_null() {
            failed(mode, 0, layout.size(), layout);
        } else {
            let size = layout.size() as u64;
            let t = || Totals { allocs: 1, bytes_allocated: size, ..Totals::default() };
            count(layout.size(), t, |c| c.alloc(size));
        }
    }
    p
}

/// Before the inner allocator releases a block of `layout`, in mode `IDLE`
/// or `COUNT`.
#[inline(always)]
pub(crate) fn counted_free(mode: u8, layout: Layout) {
    if mode == COUNT {
        let size = layout.size() as u64;
        let t = || Totals { frees: 1, bytes_freed: size, ..Totals::default() };
        count(0, t, |c| c.free(size));
    }
}

/// After the inner `realloc` of a block of `layout` returned `new`, in
/// mode `IDLE` or `COUNT`; returns `new`.
#[inline(always)]
pub(crate) fn counted_realloc(mode: u8, layout: Layout, new: *mut u8, new_size: usize) -> *mut u8 {
    if mode == COUNT {
        if new.is_null() {
            failed(mode, 0, new_size, layout);
        } else {
            let (old_size, new_size64) = (layout.size() as u64, new_size as u64);
            let t = || Totals {
                reallocs: 1,
                bytes_allocated: new_size64,
                bytes_freed: old_size,
                ..Totals::default()
            };
            count(new_size, t, |c| c.realloc(old_size, new_size64));
        }
    }
    new
}

/// The allocator's `alloc` (or `alloc_zeroed`) in a mode from `EVENTS` on:
/// calls `inner`, then records the block. The entry point calls it last,
/// so the compiler makes the call a jump and this frame replaces the entry
/// point's: the stack walk, which starts here, has one frame less to follow.
///
/// # Safety
/// `layout` satisfies `GlobalAlloc::alloc`'s contract.
#[inline(never)]
pub(crate) unsafe fn alloc_recorded<A: GlobalAlloc>(
    inner: &A,
    layout: Layout,
    zeroed: bool,
    mode: u8,
) -> *mut u8 {
    // A terminating signal waits for the call to return (see `deferred`).
    let _held = crate::Holding::new();
    // SAFETY: the caller passes its own caller's layout, under the same contract.
    let p = unsafe {
        if zeroed {
            inner.alloc_zeroed(layout)
        } else {
            inner.alloc(layout)
        }
    };
    if p.is_null() {
        failed(mode, 0, layout.size(), layout);
        return p;
    }
    let size = layout.size() as u64;
    record(
        layout.size(),
        #[inline(always)]
        move |sites| {
            let ts = clock::now();
            let site = site_for(mode, sites, size);
            [header(EventKind::Alloc, align_log2(layout), site), ts, p as u64, size]
        },
        |c| c.alloc(size),
    );
    p
}

/// The allocator's `dealloc` in a mode from `EVENTS` on: records the free,
/// then releases the block (in that order: see `tracking.rs`).
///
/// # Safety
/// `ptr` and `layout` satisfy `GlobalAlloc::dealloc`'s contract for `inner`.
#[inline(never)]
pub(crate) unsafe fn dealloc_recorded<A: GlobalAlloc>(inner: &A, ptr: *mut u8, layout: Layout) {
    // A terminating signal waits for the call to return (see `deferred`).
    let _held = crate::Holding::new();
    let size = layout.size() as u64;
    record(
        0,
        move |_| [header(EventKind::Free, 0, 0), clock::now(), ptr as u64, size],
        |c| c.free(size),
    );
    // SAFETY: the caller passes its own caller's block, under the same contract.
    unsafe { inner.dealloc(ptr, layout) };
}

/// The allocator's `realloc` in a mode from `EVENTS` on, a jump like
/// [`alloc_recorded`]. A reallocation carries two timestamps: one read
/// before the inner call (when the old block may be released), one after
/// it (when the new block exists). A block resized in place was never
/// released, so its one reading serves for both.
///
/// # Safety
/// `ptr`, `layout` and `new_size` satisfy `GlobalAlloc::realloc`'s contract for `inner`.
#[inline(never)]
pub(crate) unsafe fn realloc_recorded<A: GlobalAlloc>(
    inner: &A,
    ptr: *mut u8,
    layout: Layout,
    new_size: usize,
    mode: u8,
) -> *mut u8 {
    // A terminating signal waits for the call to return (see `deferred`).
    let _held = crate::Holding::new();
    let start = clock::now();
    // The inner call may release the old block before this thread can
    // publish the event: the ring says so meanwhile (see `ring::drain`).
    let pending = pending_realloc(start);
    // SAFETY: the caller passes its own caller's arguments, under the same contract.
    let new = unsafe { inner.realloc(ptr, layout, new_size) };
    if new.is_null() {
        failed(mode, start, new_size, layout);
        if let Some(r) = pending {
            r.set_pending(0);
        }
        return new;
    }
    let (old_size, new_size64) = (layout.size() as u64, new_size as u64);
    record(
        new_size,
        #[inline(always)]
        move |sites| {
            let ts = if new == ptr { start } else { clock::now() };
            // Sampled by the bytes the reallocation counts, its new size, so
            // that a site that only shrinks or resizes is estimated too.
            let site = site_for(mode, sites, new_size64.max(1));
            [
                header(EventKind::Realloc, align_log2(layout), site),
                ts,
                start,
                new as u64,
                new_size64,
                ptr as u64,
                old_size,
            ]
        },
        |c| c.realloc(old_size, new_size64),
    );
    if let Some(r) = pending {
        r.set_pending(0);
    }
    new
}

// The budget path: while a budget counts anywhere in the process
// (`BUDGETED` in the mode), every call comes here. It does what the mode
// without the bit says (through the functions above), and tells the budgets
// (`budget.rs`) about the block: a free before the block is released, an
// allocation after it exists.

/// The allocator's `alloc` (or `alloc_zeroed`) while a budget counts.
///
/// # Safety
/// As for [`alloc_recorded`].
#[inline(never)]
pub(crate) unsafe fn alloc_budgeted<A: GlobalAlloc>(
    inner: &A,
    layout: Layout,
    zeroed: bool,
    mode: u8,
) -> *mut u8 {
    // The budgets' locks and the inner call: a terminating signal waits
    // for the call to return (see `deferred`).
    let _held = crate::Holding::new();
    let mode = mode & !BUDGETED;
    let p = if mode >= EVENTS {
        // SAFETY: our caller's layout, under the same contract.
        unsafe { alloc_recorded(inner, layout, zeroed, mode) }
    } else {
        // SAFETY: as above.
        let p = unsafe {
            if zeroed {
                inner.alloc_zeroed(layout)
            } else {
                inner.alloc(layout)
            }
        };
        counted_alloc(mode, p, layout)
    };
    if !p.is_null() {
        budget_alloc(p as u64, layout.size() as u64, None);
    }
    p
}

/// The allocator's `dealloc` while a budget counts.
///
/// # Safety
/// As for [`dealloc_recorded`].
#[inline(never)]
pub(crate) unsafe fn dealloc_budgeted<A: GlobalAlloc>(
    inner: &A,
    ptr: *mut u8,
    layout: Layout,
    mode: u8,
) {
    // The budgets' locks and the inner call: a terminating signal waits
    // for the call to return (see `deferred`).
    let _held = crate::Holding::new();
    budget_free(ptr as u64);
    let mode = mode & !BUDGETED;
    if mode >= EVENTS {
        // SAFETY: our caller's block, under the same contract.
        return unsafe { dealloc_recorded(inner, ptr, layout) };
    }
    counted_free(mode, layout);
    // SAFETY: as above.
    unsafe { inner.dealloc(ptr, layout) };
}

/// The allocator's `realloc` while a budget counts: the old block leaves
/// its budget before the inner call may release it; the new one is counted
/// as a block handed out.
///
/// # Safety
/// As for [`realloc_recorded`].
#[inline(never)]
pub(crate) unsafe fn realloc_budgeted<A: GlobalAlloc>(
    inner: &A,
    ptr: *mut u8,
    layout: Layout,
    new_size: usize,
    mode: u8,
) -> *mut u8 {
    // The budgets' locks and the inner call: a terminating signal waits
    // for the call to return (see `deferred`).
    let _held = crate::Holding::new();
    let old = budget_free(ptr as u64);
    let mode = mode & !BUDGETED;
    let new = if mode >= EVENTS {
        // SAFETY: our caller's arguments, under the same contract.
        unsafe { realloc_recorded(inner, ptr, layout, new_size, mode) }
    } else {
        // SAFETY: as above.
        let p = unsafe { inner.realloc(ptr, layout, new_size) };
        counted_realloc(mode, layout, p, new_size)
    };
    if !new.is_null() {
        budget_alloc(new as u64, new_size as u64, old);
    } else if let Some(old) = old {
        // Refused: the old block is still the program's, and its budget's.
        budget::restore(ptr as u64, old);
    }
    new
}

/// Counts a block handed out on this thread, if the thread is attributed
/// to a budget or the block replaces one a budget counted (`moved`), with
/// its stack walked from here.
#[inline(always)]
fn budget_alloc(addr: u64, size: u64, moved: Option<budget::Counted>) {
    if budget::attributed().is_null() && moved.is_none() {
        return;
    }
    let s = state();
    let Some(_g) = Guard::enter(&s.busy) else { return };
    let mut frames = [0u64; budget::DEPTH];
    let (n, hash) = match s.ring() {
        // SAFETY: this thread owns the ring; the reference ends here.
        Some(ring) => unsafe { ring.sites() }.stack(&mut frames),
        None => (0, 0),
    };
    budget::on_alloc(addr, size, moved, &frames[..n], hash);
}

/// Takes a block about to be released out of its budget, if one counts it
/// (also inside pulse's own code: a program's block freed there is freed).
#[inline(always)]
fn budget_free(addr: u64) -> Option<budget::Counted> {
    budget::on_free(addr)
}

/// Flags this thread's ring as inside a reallocation that began at `start`
/// (claiming the ring if the thread has none yet); `None` where the thread
/// records nothing (inside pulse, or without a ring).
#[inline(always)]
fn pending_realloc(start: u64) -> Option<&'static Ring> {
    let s = state();
    if s.busy.get() {
        return None;
    }
    let ring = s.ring()?;
    ring.set_pending(start | 1);
    Some(ring)
}

/// An allocation or reallocation the inner allocator refused; `ts` is the
/// clock when the call began, 0 to read it now.
#[cold]
#[inline(never)]
fn failed(mode: u8, ts: u64, size: usize, layout: Layout) {
    if mode == COUNT {
        return count(size, || Totals { failed: 1, ..Totals::default() }, |c| c.failed());
    }
    record(
        size,
        move |_| {
            let ts = if ts == 0 { clock::now() } else { ts };
            [header(EventKind::AllocFailed, align_log2(layout), 0), ts, size as u64]
        },
        |c| c.failed(),
    );
}

/// Records a scope boundary or a pause on the calling thread.
/// `arg` is the scope id for scope events, 0 otherwise.
#[inline(always)]
pub fn record_marker(kind: EventKind, arg: u32) {
    if recording() {
        record_boundary(kind, arg);
    }
}

/// [`record_marker`] for a caller that has just seen [`is_recording`]
/// return true (a scope guard, which checks it before looking up its id).
#[inline(always)]
pub fn record_boundary(kind: EventKind, arg: u32) {
    record(0, move |_| [header(kind, 0, arg), clock::now()], |_| {});
}

/// Records that one run of an asynchronous operation `scope`, first polled
/// at `start` (a reading of [`crate::clock::now`]), completed now.
pub fn record_span(scope: u32, start: u64) {
    if !recording() {
        return;
    }
    record(
        0,
        move |_| {
            let ts = clock::now();
            [header(EventKind::Span, 0, scope), ts, start.min(ts)]
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
    let [a, b, c, d, e] = *values;
    record(
        0,
        move |_| [header(EventKind::Counters, n.min(5) as u8, scope), clock::now(), a, b, c, d, e],
        |_| {},
    );
}

/// Marks the calling thread as pulse's own (the collector): nothing it
/// allocates is ever recorded, and it records no events.
pub fn mark_internal_thread() {
    STATE.with(|s| s.busy.set(true));
}

/// Makes the calling thread the collector of a session about to start
/// recording: marks it as pulse's own ([`mark_internal_thread`]), discards
/// what the rings hold from before (the last moments of an earlier
/// session), and prepares the session to stand alone: every thread that
/// owns a ring is announced again (`ThreadStart`, before its first event)
/// and every site known from earlier sessions is defined again
/// ([`drain_sites`](crate::drain_sites) hands them out).
///
/// Call it on the collector thread before [`start_recording`]: the rings
/// have one consumer, and this makes the collector that consumer from the
/// first.
pub fn become_collector() {
    mark_internal_thread();
    crate::ring::note_collector_thread();
    crate::ring::begin_session();
    site::define_all_again();
}

/// Starts recording: scope and thread events always, allocations as
/// `tracking` says (with a site per the stack mode when they are events).
/// The session's collector has called [`become_collector`] first.
pub fn start_recording(tracking: Tracking) {
    TRACKING.store(tracking as u8, Ordering::Relaxed);
    // A new collector: whatever an earlier one stalled on is forgotten.
    crate::ring::STALLED_AT.store(u64::MAX, Ordering::Relaxed);
    RECORDING.store(true, Ordering::SeqCst);
    refresh_mode();
}

/// Stops recording events; threads blocked on a full ring give up.
pub fn stop_recording() {
    RECORDING.store(false, Ordering::SeqCst);
    refresh_mode();
    crate::ring::wake_room_waiters();
}

/// Whether a session is recording.
#[inline(always)]
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
