//! Budgets: what one block of code allocates, attributed by thread.
//!
//! A [`Tally`] counts the allocations of the threads attributed to it: a
//! thread is attributed while it holds the tally in its thread state
//! ([`attribute`]), which the runtime sets for the thread that runs the
//! measured block and carries into the threads and futures it hands work to.
//! Any number of tallies count at once, one per thread at most: tests that
//! run as threads of one process each count their own.
//!
//! While at least one tally exists, every allocator call takes the budget
//! path (`BUDGETED` in the allocation mode): an attributed allocation walks
//! its stack, is counted by site, and enters a map of live blocks, sharded by
//! address, that records its tally; a free or reallocation of a block in that
//! map, on whatever thread, takes it out of its tally. So peak and live bytes
//! are exact even when a block moves between threads.
//!
//! An allocation whose stack passes through code marked as excluded
//! ([`exclude_code`]) is not counted: the test harness's capture of
//! `println!` output grows a buffer on the test's thread that is not the
//! test's doing.
//!
//! Locks, always in this order: the list of open tallies (`OPEN`), a
//! shard of the live map, then a tally. Every update of a tally happens
//! with the shard of the block's address held, so [`Tally::close`] (which
//! leaves the open list, then takes the tally's blocks out of every shard)
//! knows that once it is done no thread can reach the tally through the map
//! or the list.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::site::MAX_DEPTH;

/// The allocation-mode bit that sends every allocator call through this
/// module while a tally exists.
pub(crate) const BUDGETED: u8 = 0x80;

/// Tallies alive: while non-zero, the allocation mode has [`BUDGETED`].
static TALLIES: AtomicUsize = AtomicUsize::new(0);

const SHARDS: usize = 64;

/// A live counted block: its tally (and the tally's id, which tells it
/// from a later tally at the same address), size and site.
#[derive(Clone, Copy)]
struct Block {
    tally: *const Tally,
    id: u64,
    size: u64,
    site: u64,
}

// SAFETY: the pointer is only dereferenced with the block's shard held,
// and a tally takes its blocks out of every shard before it is freed
// (`Tally::close`, called by its owner before dropping it).
unsafe impl Send for Block {}

type AddrMap = HashMap<u64, Block, BuildHasherDefault<AddrHasher>>;

/// The live counted blocks, by address.
static LIVE: [Mutex<Option<AddrMap>>; SHARDS] = [const { Mutex::new(None) }; SHARDS];

/// The tallies not yet closed, by address and id: a thread that holds a
/// block's tally only through the block (the block left the live map for a
/// reallocation) reaches the tally through this list, which `close` leaves
/// first. Taken before any shard.
static OPEN: Mutex<Vec<(usize, u64)>> = Mutex::new(Vec::new());

/// Ids of tallies, never reused.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Set while the thread is in this module's bookkeeping: a free it
    /// makes there (a map growing) is not a program's block, and taking a
    /// shard again would deadlock.
    static IN_BUDGET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with [`IN_BUDGET`] set, unless it is already: `None` then.
fn bookkeeping<R>(f: impl FnOnce() -> R) -> Option<R> {
    IN_BUDGET.with(|b| {
        if b.replace(true) {
            return None;
        }
        let r = f();
        b.set(false);
        Some(r)
    })
}

fn shard(addr: u64) -> &'static Mutex<Option<AddrMap>> {
    // Blocks are at least 8-aligned; mix the bits above.
    let h = (addr >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    &LIVE[(h >> 58) as usize % SHARDS]
}

/// A hasher for addresses and stack hashes: both are spread already, or
/// nearly; one multiply mixes them enough.
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// What one site (one distinct stack) of a tally allocated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteTally {
    /// The stack's return addresses, innermost first (empty when none could
    /// be read).
    pub frames: Vec<u64>,
    /// Calls that handed out a block: allocations and reallocations.
    pub allocations: u64,
    /// Of those, reallocations.
    pub reallocations: u64,
    /// Bytes handed out (a reallocation counts its new size).
    pub bytes: u64,
    /// Bytes of this site's blocks live now.
    pub live_bytes: u64,
    /// This site's blocks live now.
    pub live_blocks: u64,
    /// Bytes of this site's blocks live when the tally's heap was highest.
    pub peak_bytes: u64,
    /// The tally's peak count when `peak_bytes` was last brought up to
    /// date: if fewer than the tally's, the site has not changed since the
    /// last peak, and what it holds now is what it held then.
    seen: u64,
}

/// The counts of a tally.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TallyCounts {
    /// Calls that handed out a block: allocations and reallocations.
    pub allocations: u64,
    /// Of those, reallocations.
    pub reallocations: u64,
    /// Bytes handed out (a reallocation counts its new size).
    pub bytes: u64,
    /// Bytes of counted blocks live now.
    pub live_bytes: u64,
    /// Counted blocks live now.
    pub live_blocks: u64,
    /// The most bytes of counted blocks live at once.
    pub peak_bytes: u64,
    /// Allocations not counted because excluded code made them.
    pub excluded: u64,
}

#[derive(Default)]
struct Inner {
    counts: TallyCounts,
    /// New peaks reached so far.
    peaks: u64,
    sites: HashMap<u64, SiteTally, BuildHasherDefault<AddrHasher>>,
    closed: bool,
}

/// The allocations of the threads attributed to one measured block.
///
/// Create it with [`Tally::new`], attribute threads to it with [`attribute`],
/// read it with [`Tally::counts`] and [`Tally::sites`], and [`Tally::close`]
/// it before dropping it. Creating and reading allocate: do it outside any
/// attribution (the runtime does it untracked).
pub struct Tally {
    inner: Mutex<Inner>,
    id: u64,
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tally").field("counts", &self.counts()).finish_non_exhaustive()
    }
}

impl Tally {
    /// A tally counting from now; from its creation to its [`Tally::close`]
    /// every allocator call of the process takes the budget path.
    pub fn new() -> Tally {
        let tally = Tally {
            inner: Mutex::new(Inner::default()),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        };
        if TALLIES.fetch_add(1, Ordering::SeqCst) == 0 {
            crate::thread::refresh_mode();
        }
        tally
    }

    /// Makes the tally reachable by the blocks it counted (see `OPEN`),
    /// once it is where it stays until it is closed: call it before
    /// attributing a thread to it.
    pub fn open(&self) {
        OPEN.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((self as *const Tally as usize, self.id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counts so far.
    pub fn counts(&self) -> TallyCounts {
        self.lock().counts.clone()
    }

    /// What each site allocated so far, in no particular order.
    pub fn sites(&self) -> Vec<SiteTally> {
        let inner = self.lock();
        let mut sites: Vec<SiteTally> = inner.sites.values().cloned().collect();
        for s in &mut sites {
            catch_up(s, inner.peaks);
        }
        sites
    }

    /// Stops counting: no allocation counts from here on, and the tally's
    /// live blocks leave the live map (they stay counted as live in its
    /// counts and sites). Call it before dropping the tally; idempotent.
    pub fn close(&self) {
        let me = self as *const Tally;
        // First out of the open list: from here no thread reaches it but
        // through the live map, which it leaves below, and its attribution.
        OPEN.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&(p, id)| (p, id) != (me as usize, self.id));
        {
            let mut inner = self.lock();
            if inner.closed {
                return;
            }
            inner.closed = true;
        }
        for s in &LIVE {
            let mut map = s.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(map) = map.as_mut() {
                map.retain(|_, b| b.tally != me);
            }
        }
        if TALLIES.fetch_sub(1, Ordering::SeqCst) == 1 {
            crate::thread::refresh_mode();
        }
    }
}

impl Default for Tally {
    fn default() -> Tally {
        Tally::new()
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.close();
    }
}

impl Inner {
    // Each site's bytes at the peak are kept lazily, in constant time: a
    // new peak only counts itself (`peaks`), and a site brings its
    // `peak_bytes` up to date (`catch_up`) before its live bytes change
    // and when it is read.

    fn allocated(&mut self, b: &Block, realloc: bool, frames: &[u64]) {
        let peaks = self.peaks;
        let site = self.sites.entry(b.site).or_insert_with(|| SiteTally {
            frames: frames.to_vec(),
            // It held nothing at the last peak.
            seen: peaks,
            ..SiteTally::default()
        });
        site.allocations += 1;
        site.reallocations += u64::from(realloc);
        site.bytes = site.bytes.saturating_add(b.size);
        let c = &mut self.counts;
        c.allocations += 1;
        c.reallocations += u64::from(realloc);
        c.bytes = c.bytes.saturating_add(b.size);
        self.went_live(b);
    }

    /// `b` is live: allocated, or put back after a refused reallocation.
    fn went_live(&mut self, b: &Block) {
        if let Some(site) = self.sites.get_mut(&b.site) {
            catch_up(site, self.peaks);
            site.live_bytes = site.live_bytes.saturating_add(b.size);
            site.live_blocks += 1;
        }
        let c = &mut self.counts;
        c.live_bytes = c.live_bytes.saturating_add(b.size);
        c.live_blocks += 1;
        if c.live_bytes > c.peak_bytes {
            c.peak_bytes = c.live_bytes;
            self.peaks += 1;
        }
    }

    fn freed(&mut self, b: &Block) {
        if let Some(site) = self.sites.get_mut(&b.site) {
            catch_up(site, self.peaks);
            site.live_bytes = site.live_bytes.saturating_sub(b.size);
            site.live_blocks = site.live_blocks.saturating_sub(1);
        }
        let c = &mut self.counts;
        c.live_bytes = c.live_bytes.saturating_sub(b.size);
        c.live_blocks = c.live_blocks.saturating_sub(1);
    }
}

/// Brings `site.peak_bytes` up to date with the tally's `peaks`: a site not
/// changed since the last peak holds now what it held then.
fn catch_up(site: &mut SiteTally, peaks: u64) {
    if site.seen < peaks {
        site.peak_bytes = site.live_bytes;
        site.seen = peaks;
    }
}

thread_local! {
    /// The tally the calling thread's allocations count in (null: none).
    static CURRENT: Cell<*const Tally> = const { Cell::new(std::ptr::null()) };
}

/// Code whose allocations no tally counts: up to four address ranges.
static EXCLUDED: [(AtomicU64, AtomicU64); 4] =
    [const { (AtomicU64::new(0), AtomicU64::new(0)) }; 4];

/// Marks the code at `[start, end)` (a function's instructions) as
/// excluded: an allocation with a frame in it counts in no tally. At most
/// four ranges; returns whether there was room.
pub fn exclude_code(start: u64, end: u64) -> bool {
    for (s, e) in &EXCLUDED {
        if s.compare_exchange(0, start, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            e.store(end, Ordering::SeqCst);
            return true;
        }
    }
    false
}

fn excluded(frames: &[u64]) -> bool {
    EXCLUDED.iter().any(|(s, e)| {
        let (s, e) = (s.load(Ordering::Relaxed), e.load(Ordering::Relaxed));
        // A return address points past its call: one byte back is the call.
        s != 0 && frames.iter().any(|&f| (s..e).contains(&f.wrapping_sub(1)))
    })
}

/// Attributes the calling thread's allocations to `tally` (null: to none)
/// and returns the attribution it had, to be given back to `attribute`
/// when this one ends.
///
/// # Safety
/// `tally`, if not null, stays valid until the thread's attribution changes
/// again.
pub unsafe fn attribute(tally: *const Tally) -> *const Tally {
    CURRENT.with(|c| c.replace(tally))
}

/// The tally the calling thread's allocations count in, or null.
pub fn attributed() -> *const Tally {
    CURRENT.with(|c| c.get())
}

/// Whether any tally exists (the allocation mode then has [`BUDGETED`]).
pub(crate) fn active() -> bool {
    TALLIES.load(Ordering::SeqCst) > 0
}

/// A block handed out on this thread, counted in `tally` (the thread's,
/// which its attribution keeps alive) if not null, else in the tally of
/// `moved`, the block it replaces (a reallocation by a thread outside the
/// budget keeps the block in its budget), if that tally is still open.
/// `frames` is its stack and `hash` the stack's hash. The caller holds the
/// thread's guard.
pub(crate) fn on_alloc(addr: u64, size: u64, moved: Option<Counted>, frames: &[u64], hash: u64) {
    bookkeeping(|| {
        let tally = attributed();
        if !tally.is_null() {
            // SAFETY: an attributed thread's tally is valid while it is
            // attributed (`attribute`'s contract).
            let id = unsafe { &*tally }.id;
            count(addr, size, moved.is_some(), frames, hash, tally, id);
        } else if let Some(Counted(old)) = moved {
            let open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
            // Open: its owner's `close` waits for this list, so it lives
            // until the block is counted.
            if open.contains(&(old.tally as usize, old.id)) {
                count(addr, size, true, frames, hash, old.tally, old.id);
            }
        }
    });
}

/// Counts the block at `addr` in `tally`, which is alive for the call.
fn count(
    addr: u64,
    size: u64,
    realloc: bool,
    frames: &[u64],
    hash: u64,
    tally: *const Tally,
    id: u64,
) {
    let mut map = shard(addr).lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the caller's contract.
    let t = unsafe { &*tally };
    let mut inner = t.lock();
    if inner.closed {
        return;
    }
    if excluded(frames) {
        inner.counts.excluded += 1;
        return;
    }
    let b = Block { tally, id, size, site: hash };
    inner.allocated(&b, realloc, frames);
    map.get_or_insert_with(AddrMap::default).insert(addr, b);
}

/// A counted block taken out of the live map: what [`restore`] puts back,
/// or [`on_alloc`] counts again where it was reallocated.
#[derive(Clone, Copy)]
pub(crate) struct Counted(Block);

/// A block about to be released (or resized), on any thread: leaves its
/// tally if one counted it. Called before the block is released, so that
/// its address cannot be handed out again meanwhile; with or without the
/// thread's guard (a program's block freed inside pulse's own code leaves
/// its tally too), but not from this module's own bookkeeping.
pub(crate) fn on_free(addr: u64) -> Option<Counted> {
    bookkeeping(|| {
        let mut map = shard(addr).lock().unwrap_or_else(|e| e.into_inner());
        let b = map.as_mut()?.remove(&addr)?;
        // SAFETY: the block was in the map, so its tally has not finished
        // `close` (which takes its blocks out first), and cannot while this
        // shard is held.
        let t = unsafe { &*b.tally };
        t.lock().freed(&b);
        Some(Counted(b))
    })
    .flatten()
}

/// Puts back a block [`on_free`] took out, which was not released after all
/// (a refused reallocation), if its tally is still open.
pub(crate) fn restore(addr: u64, Counted(b): Counted) {
    bookkeeping(|| {
        let open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        if !open.contains(&(b.tally as usize, b.id)) {
            return;
        }
        let mut map = shard(addr).lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: open, so alive while the list is held (see `on_alloc`).
        let t = unsafe { &*b.tally };
        let mut inner = t.lock();
        if inner.closed {
            return;
        }
        inner.went_live(&b);
        map.get_or_insert_with(AddrMap::default).insert(addr, b);
    });
}

/// How many frames a budgeted allocation's stack keeps.
pub(crate) const DEPTH: usize = MAX_DEPTH;
