//! Asynchronous operations: a future whose every poll is timed as its scope.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::scope::{ScopeGuard, ScopeSite};

/// Wraps a future so that each of its polls runs inside its operation's
/// scope: the time spent in `poll` is the operation's busy time, and what
/// it allocates is charged to it on whatever thread the executor polls it.
/// When it completes, one span from its first poll to completion is
/// recorded: its wall time, waiting included. Made by
/// [`profile_async!`](crate::profile_async!) and async `#[pulse::profile_fn]`.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Instrumented<F> {
    site: &'static ScopeSite,
    first_poll: Option<u64>,
    inner: F,
}

impl<F> Instrumented<F> {
    /// Wraps `inner` as the operation `site`.
    pub fn new(site: &'static ScopeSite, inner: F) -> Self {
        Instrumented { site, first_poll: None, inner }
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is pinned structurally: it is never moved out of
        // `self` nor reached through an `&mut` other than this pinned one,
        // and `Instrumented` has no `Drop` impl; the other fields are plain
        // data. `Instrumented<F>` is `Unpin` only when `F` is.
        let this = unsafe { self.get_unchecked_mut() };
        let first = *this.first_poll.get_or_insert_with(pulse_alloc::clock::now);
        let out = {
            let _scope = ScopeGuard::enter(this.site);
            // SAFETY: see above; `inner` stays where it is for as long as `self` is pinned.
            unsafe { Pin::new_unchecked(&mut this.inner) }.poll(cx)
        };
        if out.is_ready() && pulse_alloc::is_recording() && !crate::scope::is_paused() {
            pulse_alloc::record_span(this.site.id(), first);
        }
        out
    }
}
