//! The ring's ownership protocol: who may write which word, and how a ring
//! passes from one thread to the next.
//!
//! [`Core`] is the part of a ring that two threads share: the owner's
//! producer index `head`, the consumer's index `tail`, the ownership
//! `state`, the owner's id and the event words. It is generic over the
//! number of words so that the model checks (`--cfg loom`, see the tests at
//! the end) run it on a ring of a few words; the allocator's rings are
//! `Core<RING_WORDS>` (see `ring.rs`).
//!
//! ```text
//!                 claim: CAS                   owner: store
//!   FREE ──────────────────────► CLAIMING ───────────────────► ACTIVE
//!    ▲     (any thread, the winner           (the winner, after      │
//!    │      is the next owner)                setting tid)           │ owner: store,
//!    │                                                                │ after its last
//!    │       consumer: CAS RETIRED → FREE, after it has read          │ push
//!    └─────────────── every word up to the final head ◄── RETIRED ◄──┘
//! ```
//!
//! Each edge has exactly one thread that may take it, and no edge leaves a
//! state that another thread may also leave:
//!
//! * FREE → CLAIMING: any thread, by compare-and-swap; one wins. No one
//!   else ever writes a FREE ring's state.
//! * CLAIMING → ACTIVE: the winner only, with a release store after it set
//!   `tid` (and cleared the announcement flag).
//! * ACTIVE → RETIRED: the owner only, with a release store after its last
//!   push: every word it wrote is then visible to whoever sees RETIRED.
//! * RETIRED → FREE: the consumer only, with a compare-and-swap that
//!   expects RETIRED, after it has read the ring up to the `head` it loaded
//!   after seeing RETIRED (the final one) and stored `tail` there. Only then
//!   can a claimer take the ring; its acquire CAS sees `tail == head`, so the
//!   new owner continues from the old owner's last word and the consumer
//!   never reads a word twice nor skips one.
//!
//! There is one consumer at a time: `ring::drain` and every other function
//! that reads rings hold the consumer lock (`ring::CONSUMER`). A ring is
//! never freed while the consumer reads it, because only the consumer
//! frees rings.
//!
//! The words in `[tail, head)` belong to the consumer, the others to the
//! owner: the owner writes a word only outside that range and publishes it
//! with a release store of `head`; the consumer reads a word only inside
//! it, after an acquire load of `head`, and gives it back with a release
//! store of `tail`, which the owner acquires before reusing the word.

#[cfg(all(test, loom))]
use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
#[cfg(not(all(test, loom)))]
use std::cell::UnsafeCell;
#[cfg(not(all(test, loom)))]
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// Ownership states; 0 (a zeroed ring) is never used once a ring is linked.
pub(crate) const ACTIVE: u8 = 1;
pub(crate) const RETIRED: u8 = 2;
pub(crate) const FREE: u8 = 3;
pub(crate) const CLAIMING: u8 = 4;

/// One event word. The allocator's rings hold them as plain memory
/// (`UnsafeCell<u64>`, the layout of a `u64`); the model checks use
/// loom's cell, which reports any access that the protocol does not order.
#[cfg(not(all(test, loom)))]
#[repr(transparent)]
pub(crate) struct Word(UnsafeCell<u64>);

#[cfg(not(all(test, loom)))]
impl Word {
    /// # Safety
    /// The caller may write this word now (see the protocol above).
    #[inline(always)]
    unsafe fn write(&self, v: u64) {
        // SAFETY: the caller owns the word for writing.
        unsafe { self.0.get().write(v) }
    }
}

#[cfg(all(test, loom))]
pub(crate) struct Word(loom::cell::UnsafeCell<u64>);

#[cfg(all(test, loom))]
impl Word {
    unsafe fn write(&self, v: u64) {
        // SAFETY: as in the plain build; loom checks the claim.
        self.0.with_mut(|p| unsafe { p.write(v) })
    }

    unsafe fn read(&self) -> u64 {
        // SAFETY: as in the plain build; loom checks the claim.
        self.0.with(|p| unsafe { p.read() })
    }
}

/// What the consumer found in a ring: the owner and the words to read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Taken {
    /// The owner's id.
    pub(crate) tid: u64,
    /// The first word to read.
    pub(crate) tail: usize,
    /// One past the last word to read.
    pub(crate) head: usize,
    /// The owner had retired the ring: these are its last words.
    pub(crate) retired: bool,
}

/// The shared part of a ring of `W` words (a power of two).
#[repr(C, align(64))]
pub(crate) struct Core<const W: usize> {
    /// Next word the owner writes; only the owner stores it.
    pub(crate) head: AtomicUsize,
    /// The owner's last reading of `tail`, its own: the hot path does not
    /// touch the cache line the consumer writes. Only the owner stores it.
    pub(crate) tail_seen: AtomicUsize,
    /// Non-zero while the owner is inside a moving-capable `realloc` whose
    /// event it has not published yet: the inner allocator may already have
    /// released the old block. Only the owner stores it.
    pending: AtomicU64,
    #[cfg(not(all(test, loom)))]
    _pad_head: [u8; 40],
    /// Next word the consumer reads; only the consumer stores it.
    pub(crate) tail: AtomicUsize,
    #[cfg(not(all(test, loom)))]
    _pad_tail: [u8; 56],
    state: AtomicU8,
    /// Set by the consumer when a session starts while the ring is owned:
    /// the owner's `ThreadStart` was in an earlier session, so the consumer
    /// announces the thread again before its first event in this one.
    announce: AtomicBool,
    /// The owner's id, set before the ring becomes ACTIVE.
    tid: AtomicU64,
    /// The owner's name (16 bytes, NUL-padded), set when it claimed the
    /// ring, for the announcement.
    name: [AtomicU64; 2],
    words: [Word; W],
}

impl<const W: usize> Core<W> {
    const MASK: usize = W - 1;

    /// A ring made ACTIVE for `tid` by its creator, before anyone else can
    /// see it (it is not linked yet).
    pub(crate) fn init_fresh(&self, tid: u64) {
        self.tid.store(tid, Ordering::Relaxed);
        self.state.store(ACTIVE, Ordering::Relaxed);
    }

    /// FREE → CLAIMING → ACTIVE for `tid`; false if the ring is not FREE
    /// (another thread owns it, or won the race for it).
    pub(crate) fn try_claim(&self, tid: u64) -> bool {
        if self
            .state
            .compare_exchange(FREE, CLAIMING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.tid.store(tid, Ordering::Relaxed);
        self.announce.store(false, Ordering::Relaxed);
        self.state.store(ACTIVE, Ordering::Release);
        true
    }

    /// ACTIVE → RETIRED: the owner will push nothing more.
    pub(crate) fn retire(&self) {
        debug_assert_eq!(self.state.load(Ordering::Relaxed), ACTIVE);
        self.state.store(RETIRED, Ordering::Release);
    }

    /// Whether a thread owns the ring now.
    pub(crate) fn is_active(&self) -> bool {
        self.state.load(Ordering::Acquire) == ACTIVE
    }

    /// The owner's id (the last owner's, for a free ring).
    pub(crate) fn tid(&self) -> u64 {
        self.tid.load(Ordering::Relaxed)
    }

    /// Owner: records its name for later announcements.
    pub(crate) fn set_name(&self, name: [u64; 2]) {
        self.name[0].store(name[0], Ordering::Relaxed);
        self.name[1].store(name[1], Ordering::Relaxed);
    }

    /// Owner: its next word.
    #[cfg(all(test, loom))]
    pub(crate) fn head(&self) -> usize {
        self.head.load(Ordering::Relaxed)
    }

    /// Owner: reads the consumer's `tail` (acquire: the consumer is done
    /// with the words before it) and remembers it. (The allocator's rings
    /// do this in `Ring::make_room`.)
    #[cfg(all(test, loom))]
    pub(crate) fn refresh_tail(&self) -> usize {
        let tail = self.tail.load(Ordering::Acquire);
        self.tail_seen.store(tail, Ordering::Relaxed);
        tail
    }

    /// Owner: writes `words` at `head` and publishes them.
    ///
    /// # Safety
    /// Only the owner calls this, and the ring has room for `N` words:
    /// `head + N - tail <= W` for a `tail` it read with [`Core::refresh_tail`].
    #[inline(always)]
    pub(crate) unsafe fn push_unchecked<const N: usize>(&self, head: usize, words: [u64; N]) {
        for (i, w) in words.into_iter().enumerate() {
            // SAFETY: the word at `head + i` is outside `[tail, head)`, the
            // range the consumer may read (the caller checked the room), and
            // only the owner writes words; the consumer reads it only after
            // the release store of `head` below. The index is masked.
            unsafe { self.words.get_unchecked(head.wrapping_add(i) & Self::MASK).write(w) };
        }
        self.head.store(head.wrapping_add(N), Ordering::Release);
    }

    /// Owner: a moving `realloc` begins (`start`, its first clock reading,
    /// made non-zero by the caller) or its event was published (0). Release
    /// (a plain store on x86-64): a consumer that sees the flag cleared also
    /// sees the event published before it.
    #[inline(always)]
    pub(crate) fn set_pending(&self, start: u64) {
        self.pending.store(start, Ordering::Release);
    }

    /// Consumer: non-zero (the call's first clock reading) while the owner
    /// is inside a `realloc` not yet published. Acquire: a value stored
    /// after the event (0, or the next call's) makes it visible.
    pub(crate) fn pending(&self) -> u64 {
        self.pending.load(Ordering::Acquire)
    }

    /// Consumer: at a session's start, marks an owned ring so that its
    /// thread is announced again before its first event.
    pub(crate) fn mark_for_announce(&self) {
        if self.state.load(Ordering::Acquire) == ACTIVE {
            self.announce.store(true, Ordering::Relaxed);
        }
    }

    /// Consumer: takes and clears the announcement flag; the owner's name.
    pub(crate) fn take_announce(&self) -> Option<[u64; 2]> {
        if !self.announce.load(Ordering::Relaxed) {
            return None;
        }
        self.announce.store(false, Ordering::Relaxed);
        Some([self.name[0].load(Ordering::Relaxed), self.name[1].load(Ordering::Relaxed)])
    }

    /// Consumer: the words published since the last call, handed to `read`
    /// (which reads them with [`Core::word`]), then given back; a retired
    /// ring is freed after its last words. Returns what was read (`None`:
    /// nothing to read). Only the consumer calls this.
    pub(crate) fn collect(&self, read: impl FnOnce(&Taken)) -> Option<Taken> {
        let state = self.state.load(Ordering::Acquire);
        if state != ACTIVE && state != RETIRED {
            return None;
        }
        let taken = Taken {
            tid: self.tid.load(Ordering::Relaxed),
            tail: self.tail.load(Ordering::Relaxed),
            // After the state: for a retired ring, this is the final head.
            head: self.head.load(Ordering::Acquire),
            retired: state == RETIRED,
        };
        if taken.head != taken.tail {
            read(&taken);
            self.tail.store(taken.head, Ordering::Release);
        }
        if taken.retired {
            // Only the consumer leaves RETIRED, so this cannot fail; the CAS
            // states the edge it takes rather than overwrite whatever is there.
            let freed =
                self.state.compare_exchange(RETIRED, FREE, Ordering::Release, Ordering::Relaxed);
            debug_assert!(freed.is_ok(), "a retired ring changed state under its consumer");
            self.announce.store(false, Ordering::Relaxed);
        }
        Some(taken).filter(|t| t.head != t.tail)
    }

    /// Consumer, inside [`Core::collect`]'s `read`: the word at index `i`
    /// (masked).
    ///
    /// # Safety
    /// `i` lies in the `[tail, head)` of the `Taken` being read.
    #[cfg(all(test, loom))]
    pub(crate) unsafe fn word(&self, i: usize) -> u64 {
        // SAFETY: the caller reads inside the published range, which the
        // owner does not write until `tail` moves past it.
        unsafe { self.words.get_unchecked(i & Self::MASK).read() }
    }

    /// The words as a plain pointer, for the consumer's decoder. (The
    /// model-checking build creates no `Ring`, so never reads through it.)
    pub(crate) fn words_ptr(&self) -> *const u64 {
        self.words.as_ptr() as *const u64
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! Model checks of the hand-off, on a ring of 4 words: loom runs every
    //! interleaving (and every outcome the memory orderings allow) of the
    //! threads below and checks each for data races on the words.
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    const W: usize = 4;

    /// Runs `f` under loom, every interleaving with up to three preemptions
    /// (the bound loom's own documentation suggests: bugs that need more
    /// are rare, and the full space of these threads' spin loops is not
    /// finite in practice).
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(3);
        b.check(f);
    }

    fn ring() -> Arc<Core<W>> {
        Arc::new(Core {
            head: AtomicUsize::new(0),
            tail_seen: AtomicUsize::new(0),
            pending: AtomicU64::new(0),
            tail: AtomicUsize::new(0),
            state: AtomicU8::new(FREE),
            announce: AtomicBool::new(false),
            tid: AtomicU64::new(0),
            name: [AtomicU64::new(0), AtomicU64::new(0)],
            words: std::array::from_fn(|_| Word(loom::cell::UnsafeCell::new(0))),
        })
    }

    /// The owner's push: waits (yielding to the model) for room, as the
    /// allocator's does.
    fn push(r: &Core<W>, words: [u64; 2]) {
        let head = r.head();
        while head.wrapping_sub(r.refresh_tail()) + 2 > W {
            thread::yield_now();
        }
        // SAFETY: this thread owns the ring and just saw room for 2 words.
        unsafe { r.push_unchecked(head, words) };
    }

    /// One consumer round: every published event as (tid, value).
    fn round(r: &Core<W>, seen: &mut Vec<(u64, u64)>) {
        r.collect(|t| {
            let mut i = t.tail;
            while i != t.head {
                // SAFETY: `i` is inside the range `collect` hands out.
                let (a, b) = unsafe { (r.word(i), r.word(i + 1)) };
                assert_eq!(a, t.tid, "an event read under another owner's id");
                seen.push((a, b));
                i = i.wrapping_add(2);
            }
        });
    }

    /// Two threads in turn own one ring while the consumer drains it: at
    /// most one owner at a time, each event read exactly once under its own
    /// thread's id, and in each thread's order.
    #[test]
    fn a_ring_passes_between_owners_without_loss_or_overlap() {
        model(|| {
            let r = ring();
            let owners: Vec<_> = [1u64, 2]
                .into_iter()
                .map(|tid| {
                    let r = Arc::clone(&r);
                    thread::spawn(move || {
                        // Claim, or give up after a few tries (the real
                        // allocator creates a new ring instead).
                        for _ in 0..2 {
                            if r.try_claim(tid) {
                                push(&r, [tid, 10 * tid]);
                                push(&r, [tid, 10 * tid + 1]);
                                r.retire();
                                return true;
                            }
                            thread::yield_now();
                        }
                        false
                    })
                })
                .collect();
            let mut seen = Vec::new();
            for _ in 0..2 {
                round(&r, &mut seen);
            }
            let claimed: Vec<bool> = owners.into_iter().map(|h| h.join().unwrap()).collect();
            round(&r, &mut seen);
            round(&r, &mut seen);
            let mut want = Vec::new();
            for (tid, ok) in [1u64, 2].into_iter().zip(&claimed) {
                if *ok {
                    want.push((tid, 10 * tid));
                    want.push((tid, 10 * tid + 1));
                }
            }
            let mut got = seen.clone();
            got.sort_unstable();
            assert_eq!(got, want, "every event exactly once: {seen:?}");
            for tid in [1u64, 2] {
                let own: Vec<u64> = seen.iter().filter(|e| e.0 == tid).map(|e| e.1).collect();
                assert!(own.windows(2).all(|w| w[0] < w[1]), "thread {tid} out of order");
            }
            // Both rings' owners are done and the last round freed the ring.
            assert_eq!(r.state.load(Ordering::Relaxed), FREE);
        });
    }

    /// A moving reallocation's flag: an owner sets it before releasing a
    /// block (modelled by a flag another owner waits for), clears it after
    /// publishing. If the consumer reads the second owner's event (the
    /// block's reuse) in a round, it has read the first's (the release) by
    /// the end of the next round: the merge's window. Without the flag the
    /// release could come any number of rounds later.
    #[test]
    fn a_pending_release_is_collected_in_the_round_that_sees_its_reuse() {
        model(|| {
            let a = ring();
            let b = ring();
            a.init_fresh(1);
            b.init_fresh(2);
            let released = Arc::new(AtomicBool::new(false));
            let ta = {
                let (a, released) = (Arc::clone(&a), Arc::clone(&released));
                thread::spawn(move || {
                    a.set_pending(5);
                    released.store(true, Ordering::Release);
                    push(&a, [1, 100]);
                    a.set_pending(0);
                })
            };
            let tb = {
                let (b, released) = (Arc::clone(&b), Arc::clone(&released));
                thread::spawn(move || {
                    if released.load(Ordering::Acquire) {
                        push(&b, [2, 200]);
                    }
                })
            };
            // One consumer round as `ring::drain` runs it: every ring, then
            // each ring still pending is waited for and read again.
            let mut seen = Vec::new();
            round(&a, &mut seen);
            round(&b, &mut seen);
            if a.pending() != 0 {
                while a.pending() != 0 {
                    thread::yield_now();
                }
                round(&a, &mut seen);
            }
            let reuse_seen = seen.contains(&(2, 200));
            // The next round.
            round(&a, &mut seen);
            if reuse_seen {
                assert!(seen.contains(&(1, 100)), "the release came late: {seen:?}");
            }
            ta.join().unwrap();
            tb.join().unwrap();
        });
    }
}
