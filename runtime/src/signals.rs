//! Signals that end the process finish the session first.
//!
//! While a session runs, pulse handles `SIGINT`, `SIGTERM` and `SIGHUP`, and
//! the fatal `SIGABRT` (which is also how Rust ends a thread that overflowed
//! its stack), wherever their disposition is the default or a handler —
//! never where it is `SIG_IGN`: a program started under `nohup` keeps
//! ignoring `SIGHUP`. `SIGSEGV` and `SIGBUS` are handled only where a
//! handler is installed already (Rust's own stack-overflow handler, once
//! `main` runs), which pulse calls after it: a default disposition there is
//! left alone, since Rust installs its handler only over the default.
//! `PULSE_SIGNALS=off` (or [`SessionBuilder::signals`]) installs none.
//!
//! The handler (async-signal-safe: atomics, `clock_gettime`, `futex`,
//! `sigaction`, `raise`):
//!
//! ```text
//!   signal ─► set SIGNALLED ─► wait while the collector moves ─► restore the ─► raise again
//!             (the collector       (it sees the flag within a     previous       (the program's
//!              polls it every       round, does a last round,     disposition     handler, or the
//!              round)               the trailer, the symbols)                     default: the
//!                                                                                 exit status is
//!                                                                                 the signal's)
//! ```
//!
//! A thread interrupted inside one of pulse's own short sections that hold
//! a lock the collector takes (any call into the global allocator, where
//! the inner allocator holds its own lock; registering a
//! scope, `stats()`) keeps the signal and raises it again as the section
//! ends (`pulse_alloc::Holding`): waiting there for the collector, it would
//! hold the lock the collector waits for.
//!
//! The handler only stores a flag: the collector wakes every round (10 ms)
//! by itself, so no wake-up call is needed from the handler. The wait is
//! bounded: it ends when the collector has made no progress for
//! [`pulse_alloc::STALL_NS`] (it may be blocked on a lock the interrupted
//! thread holds), or after [`MAX_WAIT_NS`] in all. The collector thread
//! blocks the terminating signals, so the kernel delivers them to a thread
//! of the program; a fatal signal raised on the collector itself (or on
//! one of its symbolizer threads, which it waits for) is passed on at once.
//!
//! [`SessionBuilder::signals`]: crate::SessionBuilder::signals

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

/// The signals whose default ends the process and that pulse finishes the
/// session on, then passes on.
const TERMINATING: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
/// Fatal signals, handled where that is safe (see the module docs).
const FATAL: [libc::c_int; 3] = [libc::SIGABRT, libc::SIGSEGV, libc::SIGBUS];
/// The longest a handler waits for the collector, however it moves.
pub(crate) const MAX_WAIT_NS: u64 = 30_000_000_000;

const IDLE: u32 = 0;
const RUNNING: u32 = 1;
const DONE: u32 = 2;

/// The session's phase as the handler sees it; a futex word, so that a
/// thread waiting for the collector wakes as soon as it is done.
static PHASE: AtomicU32 = AtomicU32::new(IDLE);
/// Whether the running session finishes on a signal.
static ARMED: AtomicBool = AtomicBool::new(false);
/// Set by the handler; the collector finishes the session when it sees it.
pub(crate) static SIGNALLED: AtomicBool = AtomicBool::new(false);
/// `CLOCK_MONOTONIC` when finishing the session began (0: not yet).
pub(crate) static FINISH_START_NS: AtomicU64 = AtomicU64::new(0);
/// Set while the collector symbolizes: one resolution (the first loads the
/// binary's debug information) can take longer than the stall bound
/// without noting progress, so a waiter counts it as moving, up to its
/// overall bound.
pub(crate) static SYMBOLIZING: AtomicBool = AtomicBool::new(false);
/// The longest the end of a session waits for its collector, however it
/// moves (two minutes): a symbolization that never returns still lets the
/// program exit.
pub(crate) const MAX_FINISH_NS: u64 = 120_000_000_000;
/// The collector's kernel thread id.
static COLLECTOR_TID: AtomicI64 = AtomicI64::new(0);
/// The kernel thread ids of the symbolizer's threads, which the collector
/// waits for as for itself: a fatal signal raised on one of them is passed
/// on at once too.
static SYMBOLIZER_TIDS: [AtomicI64; 2] = [AtomicI64::new(0), AtomicI64::new(0)];

/// One signal's previous disposition.
struct Slot {
    installed: AtomicBool,
    previous: UnsafeCell<std::mem::MaybeUninit<libc::sigaction>>,
}

// SAFETY: `previous` is written only by `arm`, under the session lock and
// before `installed` is set with release ordering; the handler reads it
// only after seeing `installed` with acquire ordering, and `arm` writes it
// again only for a signal whose handler is no longer pulse's.
unsafe impl Sync for Slot {}

static SLOTS: [Slot; 6] = [const {
    Slot {
        installed: AtomicBool::new(false),
        previous: UnsafeCell::new(std::mem::MaybeUninit::uninit()),
    }
}; 6];

fn slot(sig: libc::c_int) -> Option<&'static Slot> {
    let i = TERMINATING.iter().chain(&FATAL).position(|&s| s == sig)?;
    Some(&SLOTS[i])
}

/// Called before a session's collector starts: forgets the last session's
/// signal and finish time, which the new collector must not see.
pub(crate) fn reset() {
    SIGNALLED.store(false, Ordering::Release);
    FINISH_START_NS.store(0, Ordering::Relaxed);
}

/// Called once a session's collector runs: installs the handlers (where
/// `on`) for the signals not already pulse's.
pub(crate) fn arm(on: bool) {
    PHASE.store(RUNNING, Ordering::Release);
    ARMED.store(on, Ordering::Release);
    if !on {
        return;
    }
    for sig in TERMINATING.into_iter().chain(FATAL) {
        let Some(slot) = slot(sig) else { continue };
        if slot.installed.load(Ordering::Acquire) {
            continue;
        }
        // SAFETY: an all-zero `sigaction` is a valid value to be overwritten.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads the current one into `old`.
        if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0 {
            continue;
        }
        let ignored = old.sa_sigaction == libc::SIG_IGN;
        let default = old.sa_sigaction == libc::SIG_DFL;
        if ignored || (default && (sig == libc::SIGSEGV || sig == libc::SIGBUS)) {
            continue;
        }
        // SAFETY: the slot is not installed, so no handler reads `previous`.
        unsafe { (*slot.previous.get()).write(old) };
        // SAFETY: as above.
        let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
        act.sa_sigaction = on_signal
            as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
            as usize;
        // On the alternate stack only the signals a stack overflow brings
        // (the fault, and the abort that reports it): a thread's alternate
        // stack can be gone while the thread runs (`std::process::exit` on
        // another thread unmaps the main thread's), and a terminating
        // signal delivered onto it turned into a SIGSEGV, with no trailer.
        let on_stack = if FATAL.contains(&sig) { libc::SA_ONSTACK } else { 0 };
        act.sa_flags = libc::SA_SIGINFO | on_stack | libc::SA_RESTART;
        // SAFETY: `sa_mask` is a valid sigset to fill; the handler runs with
        // the other terminating signals blocked, so they do not nest.
        unsafe {
            libc::sigemptyset(&mut act.sa_mask);
            for s in TERMINATING {
                libc::sigaddset(&mut act.sa_mask, s);
            }
        }
        // Published before the handler can run.
        slot.installed.store(true, Ordering::Release);
        // SAFETY: `act` is a valid action whose handler is an
        // `extern "C" fn(c_int, *mut siginfo_t, *mut c_void)`, as
        // SA_SIGINFO requires.
        if unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) } != 0 {
            slot.installed.store(false, Ordering::Release);
        }
    }
}

/// Called by the collector as it starts: the terminating signals go to the
/// program's threads, never to the thread that must finish the file.
pub(crate) fn collector_started() {
    // SAFETY: gettid has no preconditions.
    COLLECTOR_TID.store(unsafe { libc::syscall(libc::SYS_gettid) }, Ordering::Relaxed);
    // SAFETY: `set` is a valid sigset, filled before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in TERMINATING {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Blocks the terminating signals on the calling thread, one of pulse's own
/// beside the collector (the metrics server): they go to the program's
/// threads. A handler running on a pulse thread that holds a lock the
/// collector needs (the aggregates') would wait for the collector in vain.
pub(crate) fn block_terminating() {
    // SAFETY: `set` is a valid sigset, filled before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in TERMINATING {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Called by symbolizer thread `k` (0 or 1) as it starts.
pub(crate) fn symbolizer_started(k: usize) {
    if let Some(slot) = SYMBOLIZER_TIDS.get(k) {
        // SAFETY: gettid has no preconditions.
        slot.store(unsafe { libc::syscall(libc::SYS_gettid) }, Ordering::Relaxed);
    }
}

/// Called by symbolizer thread `k` as it ends: its id may be a program
/// thread's next.
pub(crate) fn symbolizer_ended(k: usize) {
    if let Some(slot) = SYMBOLIZER_TIDS.get(k) {
        slot.store(0, Ordering::Relaxed);
    }
}

/// Whether the thread `tid` is pulse's collector or one of its symbolizer
/// threads.
fn is_pulse_thread(tid: i64) -> bool {
    tid == COLLECTOR_TID.load(Ordering::Relaxed)
        || SYMBOLIZER_TIDS.iter().any(|t| t.load(Ordering::Relaxed) == tid)
}

/// Called by the collector when the file is complete (or cannot be).
pub(crate) fn collector_done() {
    PHASE.store(DONE, Ordering::Release);
    pulse_alloc::futex::wake(&PHASE);
}

/// In a forked child: there is no collector, so the handler waits for none.
pub(crate) fn forked() {
    PHASE.store(IDLE, Ordering::Release);
}

/// Notes when finishing the session began, if it had not yet.
pub(crate) fn finishing() {
    let _ = FINISH_START_NS.compare_exchange(
        0,
        pulse_alloc::clock::monotonic_ns().max(1),
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
}

/// Waits until the collector is done, as long as it makes progress, and
/// at most `max_ns`. True if it is done. Async-signal-safe.
pub(crate) fn wait_for_collector(max_ns: u64) -> bool {
    let start = pulse_alloc::clock::monotonic_ns();
    let (mut seen, mut since) = (pulse_alloc::progress(), start);
    loop {
        if PHASE.load(Ordering::Acquire) != RUNNING {
            return true;
        }
        let now = pulse_alloc::clock::monotonic_ns();
        let p = pulse_alloc::progress();
        if p != seen || SYMBOLIZING.load(Ordering::Acquire) {
            (seen, since) = (p, now);
        }
        if now.saturating_sub(since) >= pulse_alloc::STALL_NS || now.saturating_sub(start) >= max_ns
        {
            return false;
        }
        // Asleep until the collector is done, looking again every
        // millisecond for its progress (a signal ends the wait early too).
        pulse_alloc::futex::wait(&PHASE, RUNNING, 1_000_000);
    }
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is thread-local; the handler restores what it found.
    let errno = unsafe { *libc::__errno_location() };
    // Interrupted while holding a lock the collector takes, the thread
    // would hold it while waiting for the collector: the signal is raised
    // again when the thread lets go (`pulse_alloc::Holding`).
    if TERMINATING.contains(&sig) && pulse_alloc::defer_signal(sig) {
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = errno };
        return;
    }
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::syscall(libc::SYS_gettid) };
    if ARMED.load(Ordering::Acquire)
        && PHASE.load(Ordering::Acquire) == RUNNING
        && !is_pulse_thread(me)
    {
        finishing();
        SIGNALLED.store(true, Ordering::Release);
        wait_for_collector(MAX_WAIT_NS);
    }
    pass_on(sig, info, ctx);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Does what the signal would have done without pulse.
fn pass_on(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let Some(slot) = slot(sig) else { return };
    if !slot.installed.load(Ordering::Acquire) {
        // Another thread's handler put the previous disposition back while
        // this one waited: this delivery is raised again under it too.
        // SAFETY: raise is async-signal-safe and has no preconditions.
        unsafe { libc::raise(sig) };
        return;
    }
    // SAFETY: `installed` was seen set, so `previous` holds the disposition
    // read before pulse's handler was installed.
    let prev = unsafe { (*slot.previous.get()).assume_init_ref() };
    if (sig == libc::SIGSEGV || sig == libc::SIGBUS) && prev.sa_sigaction > libc::SIG_IGN {
        // A fault: the handler needs the fault's own siginfo (Rust's tells
        // a stack overflow by its address), so it is called directly; if it
        // returns, the faulting instruction runs again under whatever it
        // installed.
        if prev.sa_flags & libc::SA_SIGINFO != 0 {
            // SAFETY: with SA_SIGINFO, `sa_sigaction` is such a function.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(prev.sa_sigaction) };
            f(sig, info, ctx);
        } else {
            // SAFETY: without SA_SIGINFO, `sa_sigaction` is an `sa_handler`.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev.sa_sigaction) };
            f(sig);
        }
        return;
    }
    // Anything else: the previous disposition comes back, and the signal is
    // raised again; it is blocked while this handler runs, so it is
    // delivered as the handler returns, to the program's handler or with
    // the default action.
    slot.installed.store(false, Ordering::Release);
    // SAFETY: `prev` is the disposition `sigaction` gave us.
    unsafe {
        libc::sigaction(sig, prev, std::ptr::null_mut());
        libc::raise(sig);
    }
}
