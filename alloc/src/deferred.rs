//! A terminating signal that arrives while a program's thread holds one of
//! pulse's locks waits until the thread lets go of it.
//!
//! The session's signal handler runs on the thread the signal interrupted
//! and waits there for the collector to finish the file. But the collector
//! waits for program threads in two places: each round waits (up to a
//! second) for every reallocation under way to publish its event (see
//! `ring::drain`), and it takes the locks that program threads take
//! briefly inside pulse (the table of new allocation sites, the scope
//! registry, the orphan events of a thread that is ending). Interrupted
//! inside a reallocation or one of those locks, the thread's handler
//! waited for a collector that waited for the thread: after two seconds
//! without progress the handler gave up and the file had no trailer (one
//! `SIGTERM` in ten in a program's first 100 ms, caught under `gdb` with
//! the handler's frame on top of a `realloc` waiting for ring room).
//!
//! The same holds for the inner allocator's own lock: `gdb` caught a
//! program thread interrupted inside glibc's `free`, holding the main
//! arena's lock, with the collector blocked in `realloc` on that lock.
//!
//! So every call into the global allocator is such a section while a
//! session records or counts allocations (`PULSE_ALLOC=off` leaves the
//! calls as they are, for no cost where nothing is profiled), as are
//! pulse's own sections outside it that take a lock the collector takes
//! (a scope's registration, `stats()`): each is marked with a [`Holding`]
//! taken before it and dropped after it. The handler asks [`defer_signal`]
//! first: inside a marked section the signal is kept, the handler returns,
//! and the section's end raises it again, on the same thread, with no lock
//! held. Both sides touch only two `const`-initialized thread-locals with
//! no destructor: async-signal-safe, and valid while the thread's other
//! thread-locals are destroyed.

use std::marker::PhantomData;
use std::sync::atomic::{
    compiler_fence, AtomicU32, AtomicU64, Ordering::Relaxed, Ordering::SeqCst,
};

thread_local! {
    /// Marked sections this thread is in.
    static HELD: AtomicU32 = const { AtomicU32::new(0) };
    /// The signals kept for the end of the outermost one, bit `n` for
    /// signal `n` (0: none).
    static KEPT: AtomicU64 = const { AtomicU64::new(0) };
}

// Two words, not one: the handler may run between any two instructions of
// the thread it interrupts, for instance between the load and the store
// that take a section's count back. Had the kept signal shared the count's
// word, that store would write back the word as it was before the handler
// kept the signal, and the signal would be lost (seen: a `SIGTERM` ignored,
// the program running on to its end). The handler writes only `KEPT`, and
// keeps every signal that comes (a set: a `SIGHUP` that reloads must not
// cost a `SIGTERM` that came with it); the thread clears `KEPT` only where
// `HELD` is 0, when no handler keeps anything. Atomics, for a handler is another
// context in Rust's model; relaxed loads and stores, plain moves, for it
// runs on this thread; the fences keep the compiler from moving these
// accesses across each other or across the section.

/// While alive, this thread is inside a marked section. Not `Send`: it
/// belongs to the thread's count.
#[derive(Debug)]
#[must_use = "the section ends when this is dropped"]
pub struct Holding(PhantomData<*const ()>);

impl Holding {
    /// Marks the start of a section.
    #[inline(always)]
    pub fn new() -> Holding {
        HELD.with(|h| h.store(h.load(Relaxed) + 1, Relaxed));
        compiler_fence(SeqCst);
        Holding(PhantomData)
    }
}

impl Default for Holding {
    fn default() -> Self {
        Holding::new()
    }
}

impl Drop for Holding {
    /// The section's end: a signal kept meanwhile is raised again now.
    #[inline(always)]
    fn drop(&mut self) {
        compiler_fence(SeqCst);
        let left = HELD.with(|h| {
            let n = h.load(Relaxed) - 1;
            h.store(n, Relaxed);
            n
        });
        compiler_fence(SeqCst);
        if left == 0 && KEPT.with(|k| k.load(Relaxed)) != 0 {
            raise_kept();
        }
    }
}

#[cold]
#[inline(never)]
fn raise_kept() {
    // Out of every section: a handler that runs from here on keeps nothing.
    let kept = KEPT.with(|k| k.swap(0, Relaxed));
    for sig in (1..64).filter(|s| kept & (1 << s) != 0) {
        // SAFETY: `raise` has no preconditions; the signal goes to this
        // thread, whose handler runs before the call returns (it is not
        // blocked here: the handler that kept it has returned).
        unsafe { libc::raise(sig) };
    }
}

/// For a signal handler: whether the interrupted thread is inside a
/// marked section, in which case `sig` (1 to 63) is kept and raised again
/// at the section's end, after any kept before it with a lower number, and
/// the handler should return at once. Async-signal-safe.
pub fn defer_signal(sig: i32) -> bool {
    if HELD.with(|h| h.load(Relaxed)) == 0 || !(1..64).contains(&sig) {
        return false;
    }
    KEPT.with(|k| k.store(k.load(Relaxed) | 1 << sig, Relaxed));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_is_kept_only_inside_a_section() {
        assert!(!defer_signal(libc::SIGTERM), "outside every section");
        let outer = Holding::new();
        let inner = Holding::new();
        // SIGCHLD's default is to ignore it: raised again, it ends nothing.
        assert!(defer_signal(libc::SIGCHLD));
        drop(inner);
        // SIGURG's default is to ignore it too: both are kept, and raised.
        assert!(defer_signal(libc::SIGURG), "a second is kept beside the first");
        let both = 1 << libc::SIGCHLD | 1 << libc::SIGURG;
        assert_eq!(KEPT.with(|k| k.load(Relaxed)), both, "kept past the inner section");
        drop(outer);
        assert_eq!(KEPT.with(|k| k.load(Relaxed)), 0, "raised and forgotten at the outermost end");
        assert_eq!(HELD.with(|h| h.load(Relaxed)), 0);
        assert!(!defer_signal(libc::SIGTERM));
    }
}
