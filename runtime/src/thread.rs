//! `std::thread`'s `spawn` and `scope`, carrying the calling thread's
//! allocation budget ([`crate::budget`]) into the threads they start.
//!
//! What a thread's closure allocates counts in the budget; what the
//! standard library allocates to start the thread does not: it keeps some
//! of it until the thread has exited, which is after the thread's work was
//! joined, and a budget that counted it would find it live at its end, or
//! not, by chance.
//!
//! ```
//! # #[global_allocator]
//! # static ALLOC: pulse::Alloc = pulse::Alloc::system();
//! let (_, usage) = pulse::budget::measure(|| {
//!     pulse::thread::scope(|s| {
//!         s.spawn(|| vec![0u8; 1000]);
//!     });
//! });
//! assert!(usage.bytes >= 1000);
//! ```

use std::cell::RefCell;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{JoinHandle, ScopedJoinHandle};
use std::time::Duration;

use crate::budget::{self, Attribution};

/// [`std::thread::spawn`], the new thread counting in the caller's budget
/// (if it counts in one) until `f` returns. Its result, handed back through
/// the join handle, is allocated by `f` and so counted.
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let to = budget::current();
    budget::outside(|| std::thread::spawn(move || run_in(to, f)))
}

/// [`std::thread::scope`], whose [`Scope::spawn`] carries the caller's
/// budget into the threads it starts. The scope is passed by value (clone
/// it to move it into a thread), where std passes a reference.
///
/// It returns once its threads have exited, their thread-locals destroyed,
/// as joining a thread does; std's scope returns as soon as their closures
/// have, so a thread-local a closure filled (a per-thread cache) would be
/// freed a moment later, and a budget's `nothing_live` would hold or not by
/// chance. (It waits at most five seconds for that.)
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(Scope<'scope, 'env>) -> T,
{
    // The scope's own bookkeeping, as a thread's, is the library's.
    let to = budget::current();
    let exits = budget::outside(Exits::default);
    let out = budget::outside(|| {
        std::thread::scope(|s| run_in(to, || f(Scope { inner: s, exits: exits.clone() })))
    });
    exits.wait(Duration::from_secs(5));
    out
}

/// A scope to spawn threads in: see [`scope`].
#[derive(Debug, Clone)]
pub struct Scope<'scope, 'env> {
    inner: &'scope std::thread::Scope<'scope, 'env>,
    exits: Exits,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// [`std::thread::Scope::spawn`], the new thread counting in the
    /// spawning thread's budget (if it counts in one) until `f` returns.
    pub fn spawn<F, T>(&self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let to = budget::current();
        let exit = self.exits.started();
        budget::outside(|| {
            self.inner.spawn(move || {
                // Registered first, so destroyed last: after the thread's
                // other thread-locals.
                let _ = EXIT.try_with(|e| *e.borrow_mut() = Some(exit));
                run_in(to, f)
            })
        })
    }

    /// The standard library's scope, for what this wrapper does not offer.
    pub fn std(&self) -> &'scope std::thread::Scope<'scope, 'env> {
        self.inner
    }
}

/// The threads of a scope that have not exited yet.
#[derive(Debug, Default, Clone)]
struct Exits {
    running: Arc<(Mutex<usize>, Condvar)>,
}

impl Exits {
    /// One more thread; the guard says when it has exited.
    fn started(&self) -> Exit {
        *self.running.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Exit(Arc::clone(&self.running))
    }

    /// Waits until every thread started has exited, or `most` has passed.
    fn wait(&self, most: Duration) {
        let (count, exited) = &*self.running;
        let count = count.lock().unwrap_or_else(|e| e.into_inner());
        let _ = exited.wait_timeout_while(count, most, |n| *n > 0);
    }
}

/// A scoped thread, until it has exited: dropped as its last thread-local.
#[derive(Debug)]
struct Exit(Arc<(Mutex<usize>, Condvar)>);

impl Drop for Exit {
    fn drop(&mut self) {
        let (count, exited) = &*self.0;
        let mut n = count.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        exited.notify_all();
    }
}

thread_local! {
    static EXIT: RefCell<Option<Exit>> = const { RefCell::new(None) };
}

fn run_in<T>(to: Option<Attribution>, f: impl FnOnce() -> T) -> T {
    let _in = to.as_ref().map(Attribution::enter);
    f()
}
