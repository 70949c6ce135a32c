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

use std::thread::{JoinHandle, ScopedJoinHandle};

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
/// budget into the threads it starts. The scope is passed by value (it is
/// `Copy`), where std passes a reference.
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(Scope<'scope, 'env>) -> T,
{
    // The scope's own bookkeeping, as a thread's, is the library's.
    let to = budget::current();
    budget::outside(|| std::thread::scope(|s| run_in(to, || f(Scope { inner: s }))))
}

/// A scope to spawn threads in: see [`scope`].
#[derive(Debug, Clone, Copy)]
pub struct Scope<'scope, 'env> {
    inner: &'scope std::thread::Scope<'scope, 'env>,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// [`std::thread::Scope::spawn`], the new thread counting in the
    /// spawning thread's budget (if it counts in one) until `f` returns.
    pub fn spawn<F, T>(self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let to = budget::current();
        budget::outside(|| self.inner.spawn(move || run_in(to, f)))
    }

    /// The standard library's scope, for what this wrapper does not offer.
    pub fn std(self) -> &'scope std::thread::Scope<'scope, 'env> {
        self.inner
    }
}

fn run_in<T>(to: Option<Attribution>, f: impl FnOnce() -> T) -> T {
    let _in = to.as_ref().map(Attribution::enter);
    f()
}
