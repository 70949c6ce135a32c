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

use std::cell::Cell;
use std::marker::PhantomData;

/// One step of the count of marked sections, above the kept signal's byte.
const ONE: u32 = 1 << 8;

thread_local! {
    /// The marked sections this thread is in, times [`ONE`], plus the
    /// signal kept for the end of the outermost one (0: none). One word:
    /// an allocator call adds and subtracts, and tests it once.
    static STATE: Cell<u32> = const { Cell::new(0) };
}

/// While alive, this thread is inside a marked section. Not `Send`: it
/// belongs to the thread's count.
#[derive(Debug)]
#[must_use = "the section ends when this is dropped"]
pub struct Holding(PhantomData<*const ()>);

impl Holding {
    /// Marks the start of a section.
    #[inline(always)]
    pub fn new() -> Holding {
        STATE.with(|s| s.set(s.get().wrapping_add(ONE)));
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
        STATE.with(|s| {
            let left = s.get().wrapping_sub(ONE);
            s.set(left);
            // Out of every section, with a signal kept.
            if left != 0 && left < ONE {
                raise_kept(s);
            }
        });
    }
}

#[cold]
#[inline(never)]
fn raise_kept(state: &Cell<u32>) {
    let sig = state.replace(0) as i32;
    // SAFETY: `raise` has no preconditions; the signal goes to this thread,
    // whose handler runs before the call returns (it is not blocked here:
    // the handler that kept it has returned).
    unsafe { libc::raise(sig) };
}

/// For a signal handler: whether the interrupted thread is inside a
/// marked section, in which case `sig` (1 to 255) is kept and raised again
/// at the section's end and the handler should return at once.
/// Async-signal-safe.
pub fn defer_signal(sig: i32) -> bool {
    STATE.with(|s| {
        let v = s.get();
        if v < ONE || !(1..ONE as i32).contains(&sig) {
            return false;
        }
        s.set(v & !(ONE - 1) | sig as u32);
        true
    })
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
        assert_eq!(STATE.with(Cell::get) & (ONE - 1), libc::SIGCHLD as u32, "kept");
        drop(outer);
        assert_eq!(STATE.with(Cell::get), 0, "raised and forgotten at the outermost end");
        assert!(!defer_signal(libc::SIGTERM));
    }
}
