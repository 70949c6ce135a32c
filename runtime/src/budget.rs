//! Allocation budgets for tests: what a block of code may allocate, checked
//! exactly while other tests run beside it.
//!
//! ```
//! # #[global_allocator]
//! # static ALLOC: pulse::Alloc = pulse::Alloc::system();
//! use pulse::budget::Budget;
//!
//! let words = Budget::new().allocations(1).bytes(800).nothing_live().check(|| {
//!     let v: Vec<u64> = Vec::with_capacity(100);
//!     v.capacity()
//! });
//! assert_eq!(words, 100);
//! ```
//!
//! What counts is what the threads attributed to the block allocate: the
//! thread that runs it, the threads it starts with [`crate::thread::spawn`]
//! or [`crate::thread::scope`], and the futures it polls (or that carry its
//! [`Attribution`] with [`Attribution::bind`] to other threads). Tests that
//! run as threads of one process (`cargo test`) each count their own; under
//! nextest, where each runs in its own process, the same holds. Nothing but
//! pulse as the global allocator is needed: no session, no file.
//!
//! A block that a measured thread frees counts as freed whichever thread
//! allocated it, and a block the measured code allocated counts as freed
//! whichever thread frees it. What the test harness allocates to capture
//! `println!` output is not counted.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pulse_alloc::budget::{self as raw, SiteTally, Tally};
use pulse_alloc::untracked;

/// What a block of code may do. Every bound is optional; a budget with none
/// only measures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Budget {
    allocations: Option<u64>,
    bytes: Option<u64>,
    peak_bytes: Option<u64>,
    nothing_live: bool,
    time: Option<(Duration, u32)>,
    instructions: Option<(u64, u32)>,
}

impl Budget {
    /// A budget with no bound yet.
    pub fn new() -> Budget {
        Budget::default()
    }

    /// At most `n` calls that hand out a block: allocations and
    /// reallocations.
    pub fn allocations(mut self, n: u64) -> Budget {
        self.allocations = Some(n);
        self
    }

    /// At most `n` bytes handed out in all (a reallocation counts its new
    /// size).
    pub fn bytes(mut self, n: u64) -> Budget {
        self.bytes = Some(n);
        self
    }

    /// At most `n` bytes of the block's allocations live at once.
    pub fn peak_bytes(mut self, n: u64) -> Budget {
        self.peak_bytes = Some(n);
        self
    }

    /// Nothing the block allocated is still live when it returns, its
    /// return value included: return only what owns no heap memory.
    pub fn nothing_live(mut self) -> Budget {
        self.nothing_live = true;
        self
    }

    /// The block runs in at most `max`, taken as the fastest of `runs` more
    /// runs after the counted one (at least one). Those runs are not
    /// counted: the block must be repeatable.
    pub fn time(mut self, max: Duration, runs: u32) -> Budget {
        self.time = Some((max, runs.max(1)));
        self
    }

    /// The calling thread runs the block in at most `max` user-space
    /// instructions, the fewest of `runs` more runs after the counted one
    /// (at least one), counted by the processor (`perf_event_open`):
    /// steadier than time on a shared machine. The threads the block starts
    /// are not counted. Where the processor exposes no instruction counter
    /// (most virtual machines), the bound is not checked: [`Usage`] says
    /// why, and [`Budget::check`] prints it in one line on stderr.
    pub fn instructions(mut self, max: u64, runs: u32) -> Budget {
        self.instructions = Some((max, runs.max(1)));
        self
    }

    /// Runs `f`, counting what it allocates (and timing it, with a time
    /// bound, and counting its instructions, with an instruction bound);
    /// returns its value with what was measured, whether or not the budget
    /// held: see [`Usage::overruns`].
    pub fn measure<R>(&self, mut f: impl FnMut() -> R) -> (R, Usage) {
        let (value, mut usage) = counted(&mut f);
        if let Some((_, runs)) = self.time {
            let mut fastest = Duration::MAX;
            for _ in 0..runs {
                let start = Instant::now();
                let r = f();
                fastest = fastest.min(start.elapsed());
                drop(r);
            }
            usage.fastest = Some(fastest);
        }
        if let Some((_, runs)) = self.instructions {
            match fewest_instructions(&mut f, runs) {
                Ok(n) => usage.instructions = Some(n),
                Err(e) => usage.instructions_unavailable = Some(e),
            }
        }
        (value, usage)
    }

    /// Runs `f` as [`Budget::measure`] does and returns its value; panics,
    /// naming the bounds passed and the sites that allocated most with their
    /// stacks, if any bound did not hold.
    #[track_caller]
    pub fn check<R>(&self, f: impl FnMut() -> R) -> R {
        let (value, usage) = self.measure(f);
        if let (Some(_), Some(why)) = (self.instructions, &usage.instructions_unavailable) {
            let at = std::panic::Location::caller();
            eprintln!("pulse: budget at {at}: the instruction bound was not checked: {why}");
        }
        let overruns = usage.overruns(self);
        if !overruns.is_empty() {
            let at = std::panic::Location::caller();
            panic!(
                "{}",
                untracked(|| Exceeded { at, usage: &usage, overruns: &overruns }.to_string())
            );
        }
        value
    }
}

/// The fewest instructions of `runs` runs of `f` on the calling thread, or
/// why they cannot be counted.
fn fewest_instructions<R>(f: &mut impl FnMut() -> R, runs: u32) -> Result<u64, String> {
    let mut counter = crate::counters::Instructions::open()
        .map_err(|e| format!("perf_event_open: {e}: no instruction counter exposed here"))?;
    let mut fewest = u64::MAX;
    for _ in 0..runs {
        let (r, n) = counter.count(&mut *f).map_err(|e| format!("reading the counter: {e}"))?;
        drop(r);
        fewest = fewest.min(n);
    }
    Ok(fewest)
}

/// Runs `f` and counts what it allocates, with no bound: the same as
/// `Budget::new().measure(f)` for a block run once.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Usage) {
    let mut f = Some(f);
    counted(&mut || (f.take().expect("run once"))())
}

fn counted<R>(f: &mut impl FnMut() -> R) -> (R, Usage) {
    exclude_harness_capture();
    let tally = untracked(|| {
        let tally = Arc::new(Tally::new());
        tally.open();
        tally
    });
    let value = {
        let _in = Attribution(Arc::clone(&tally)).enter();
        f()
    };
    let usage = untracked(|| {
        tally.close();
        let c = tally.counts();
        let mut sites: Vec<SiteUsage> = tally.sites().into_iter().map(SiteUsage).collect();
        sites.sort_by(|a, b| b.0.bytes.cmp(&a.0.bytes).then(b.0.allocations.cmp(&a.0.allocations)));
        drop(tally);
        Usage {
            allocations: c.allocations,
            reallocations: c.reallocations,
            bytes: c.bytes,
            peak_bytes: c.peak_bytes,
            live_bytes: c.live_bytes,
            live_blocks: c.live_blocks,
            excluded: c.excluded,
            fastest: None,
            instructions: None,
            instructions_unavailable: None,
            sites,
        }
    });
    (value, usage)
}

/// Marks the test harness's capture of `println!` output as excluded, once
/// a process: std grows the captured text's buffer on the test's thread,
/// in `std::io::stdio::print_to_buffer_if_capture_used`.
fn exclude_harness_capture() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        untracked(|| {
            let name = "std::io::stdio::print_to_buffer_if_capture_used";
            if let Some((start, end)) = crate::symbols::function_range(name) {
                raw::exclude_code(start, end);
            }
        })
    });
}

/// What a measured block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// Calls that handed out a block: allocations and reallocations.
    pub allocations: u64,
    /// Of those, reallocations.
    pub reallocations: u64,
    /// Bytes handed out in all (a reallocation counts its new size).
    pub bytes: u64,
    /// The most bytes of the block's allocations live at once.
    pub peak_bytes: u64,
    /// Bytes of the block's allocations still live when it returned.
    pub live_bytes: u64,
    /// Blocks of the block's allocations still live when it returned.
    pub live_blocks: u64,
    /// Allocations not counted: made by the test harness's output capture.
    pub excluded: u64,
    /// The fastest of the timed runs, for a budget with a time bound.
    pub fastest: Option<Duration>,
    /// The fewest instructions of the counted runs, for a budget with an
    /// instruction bound, where they could be counted.
    pub instructions: Option<u64>,
    /// Why a budget's instruction bound could not be checked.
    pub instructions_unavailable: Option<String>,
    sites: Vec<SiteUsage>,
}

impl Usage {
    /// What each site (each distinct stack) allocated, most bytes first.
    pub fn sites(&self) -> &[SiteUsage] {
        &self.sites
    }

    /// The bounds of `budget` this usage passed, in the budget's order.
    pub fn overruns(&self, budget: &Budget) -> Vec<Overrun> {
        let mut over = Vec::new();
        let mut bound = |what: Bound, limit: Option<u64>, got: u64| {
            if let Some(limit) = limit.filter(|&l| got > l) {
                over.push(Overrun { what, limit, got });
            }
        };
        bound(Bound::Allocations, budget.allocations, self.allocations);
        bound(Bound::Bytes, budget.bytes, self.bytes);
        bound(Bound::PeakBytes, budget.peak_bytes, self.peak_bytes);
        bound(Bound::LiveBlocks, budget.nothing_live.then_some(0), self.live_blocks);
        if let (Some((max, _)), Some(fastest)) = (budget.time, self.fastest) {
            let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
            bound(Bound::Nanoseconds, Some(ns(max)), ns(fastest));
        }
        if let (Some((max, _)), Some(n)) = (budget.instructions, self.instructions) {
            bound(Bound::Instructions, Some(max), n);
        }
        over
    }
}

/// A bound a [`Usage`] passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overrun {
    /// Which bound.
    pub what: Bound,
    /// The bound.
    pub limit: u64,
    /// What the block did.
    pub got: u64,
}

/// The bounds of a [`Budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// [`Budget::allocations`].
    Allocations,
    /// [`Budget::bytes`].
    Bytes,
    /// [`Budget::peak_bytes`].
    PeakBytes,
    /// [`Budget::nothing_live`]: live blocks at the end, bound 0.
    LiveBlocks,
    /// [`Budget::time`], in nanoseconds.
    Nanoseconds,
    /// [`Budget::instructions`].
    Instructions,
}

/// What one site of a measured block allocated: its stack and its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteUsage(SiteTally);

impl SiteUsage {
    /// Calls that handed out a block here.
    pub fn allocations(&self) -> u64 {
        self.0.allocations
    }
    /// Bytes handed out here.
    pub fn bytes(&self) -> u64 {
        self.0.bytes
    }
    /// Bytes of this site's blocks live when the block's allocations were
    /// highest ([`Usage::peak_bytes`]).
    pub fn peak_bytes(&self) -> u64 {
        self.0.peak_bytes
    }
    /// Bytes of this site's blocks still live at the end.
    pub fn live_bytes(&self) -> u64 {
        self.0.live_bytes
    }
    /// This site's blocks still live at the end.
    pub fn live_blocks(&self) -> u64 {
        self.0.live_blocks
    }
    /// The stack's return addresses, innermost first.
    pub fn frames(&self) -> &[u64] {
        &self.0.frames
    }
    fn by(&self, what: Bound) -> u64 {
        match what {
            Bound::Allocations => self.0.allocations,
            Bound::Bytes | Bound::Nanoseconds | Bound::Instructions => self.0.bytes,
            Bound::PeakBytes => self.0.peak_bytes,
            Bound::LiveBlocks => self.0.live_blocks,
        }
    }
}

/// The report of a budget that did not hold: the panic message of
/// [`Budget::check`].
struct Exceeded<'a> {
    at: &'static std::panic::Location<'static>,
    usage: &'a Usage,
    overruns: &'a [Overrun],
}

/// Sites shown in a failure message, and frames of each.
const SHOWN_SITES: usize = 5;
const SHOWN_FRAMES: usize = 8;

impl fmt::Display for Exceeded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = self.usage;
        writeln!(f, "allocation budget exceeded at {}:", self.at)?;
        for o in self.overruns {
            let (name, got, limit) = match o.what {
                Bound::Allocations => ("allocations", o.got.to_string(), o.limit.to_string()),
                Bound::Bytes => ("bytes allocated", bytes(o.got), bytes(o.limit)),
                Bound::PeakBytes => ("peak live bytes", bytes(o.got), bytes(o.limit)),
                Bound::LiveBlocks => {
                    let got = format!("{} blocks, {}", o.got, bytes(u.live_bytes));
                    ("live at the end", got, "nothing".into())
                }
                Bound::Nanoseconds => (
                    "fastest run",
                    format!("{:?}", Duration::from_nanos(o.got)),
                    format!("{:?}", Duration::from_nanos(o.limit)),
                ),
                Bound::Instructions => {
                    ("fewest instructions", o.got.to_string(), o.limit.to_string())
                }
            };
            writeln!(f, "  {name}: {got}, budget {limit}")?;
        }
        writeln!(
            f,
            "  in all: {} allocations ({} reallocations), {} allocated, peak {}, {} blocks ({}) live at the end",
            u.allocations,
            u.reallocations,
            bytes(u.bytes),
            bytes(u.peak_bytes),
            u.live_blocks,
            bytes(u.live_bytes),
        )?;
        // The sites by the first bound passed that sites can explain.
        let timing = |w: &Bound| matches!(w, Bound::Nanoseconds | Bound::Instructions);
        let Some(what) = self.overruns.iter().map(|o| o.what).find(|w| !timing(w)) else {
            return Ok(());
        };
        let mut sites: Vec<&SiteUsage> = u.sites.iter().filter(|s| s.by(what) > 0).collect();
        sites.sort_by_key(|s| std::cmp::Reverse(s.by(what)));
        let shown = &sites[..sites.len().min(SHOWN_SITES)];
        let addrs: Vec<u64> = shown.iter().flat_map(|s| s.frames().iter().copied()).collect();
        let names = crate::symbols::symbolize_now(&addrs);
        let order = match what {
            Bound::Allocations => "allocations",
            Bound::Bytes | Bound::Nanoseconds | Bound::Instructions => "bytes allocated",
            Bound::PeakBytes => "live bytes at the peak",
            Bound::LiveBlocks => "blocks live at the end",
        };
        writeln!(f, "the sites by {order} ({} of {}):", shown.len(), sites.len())?;
        for s in shown {
            let mut line = format!(
                "  {}, {} allocated",
                count(s.allocations(), "allocation"),
                bytes(s.bytes())
            );
            if what == Bound::PeakBytes {
                line += &format!(", {} live at the peak", bytes(s.peak_bytes()));
            }
            if s.live_blocks() > 0 {
                let blocks = count(s.live_blocks(), "block");
                line += &format!(", {blocks} ({}) live at the end", bytes(s.live_bytes()));
            }
            writeln!(f, "{line}")?;
            let frames: Vec<_> =
                s.frames().iter().flat_map(|a| names.get(a).into_iter().flatten()).collect();
            // From the first frame of the program's own code, or (a stack
            // all in the standard library) from the first past pulse's.
            let first = frames.iter().position(|n| !is_plumbing(n)).unwrap_or_else(|| {
                let pulse = |n: &&crate::symbols::Named| n.function.contains("pulse");
                frames.iter().position(|n| !pulse(n)).unwrap_or(0)
            });
            // The program's frames only: the library's between them say
            // little and would crowd them out.
            let mut shown = 0;
            for n in frames[first..].iter().filter(|n| !is_plumbing(n)) {
                if shown == SHOWN_FRAMES {
                    writeln!(f, "      …")?;
                    break;
                }
                let at = match (n.file.is_empty(), n.line) {
                    (true, _) => String::new(),
                    (false, 0) => format!("  {}", n.file),
                    (false, line) => format!("  {}:{line}", n.file),
                };
                writeln!(f, "      {}{at}", n.function.escape_debug())?;
                shown += 1;
            }
            if shown == 0 {
                writeln!(f, "      (no stack: build with frame pointers and debug information)")?;
            }
        }
        Ok(())
    }
}

/// The frames above the code that asked for memory: pulse's, and the
/// standard library's (its allocation and collection code, inlined or not);
/// and below it, the C library's start of a thread or of the program.
fn is_plumbing(n: &crate::symbols::Named) -> bool {
    const LIBC: [&str; 6] = [
        "start_thread",
        "clone",
        "clone3",
        "__libc_start_main",
        "__libc_start_call_main",
        "_start",
    ];
    if n.file.is_empty() && LIBC.contains(&n.function.as_str()) {
        return true;
    }
    let f = n.function.trim_start_matches('<');
    let pulse = f.starts_with("pulse_alloc::")
        || f.starts_with("pulse::")
        || n.file.starts_with(pulse_alloc::SOURCE_DIR)
        || n.file.starts_with(env!("CARGO_MANIFEST_DIR"));
    let std = ["std::", "core::", "alloc::", "__rust", "__rg_", "__rdl_"]
        .iter()
        .any(|p| f.starts_with(p))
        || n.file.starts_with("/rustc/")
        || n.file.contains("/lib/rustlib/src/rust/library/");
    pulse || std
}

fn count(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {} ({n} B)", UNITS[unit])
}

/// The budget a thread's allocations count in, to carry into other threads
/// and futures: [`current`] gives it, [`Attribution::enter`] attributes
/// another thread to it, [`Attribution::bind`] a future wherever it is
/// polled.
#[derive(Clone)]
pub struct Attribution(Arc<Tally>);

impl fmt::Debug for Attribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Attribution").finish_non_exhaustive()
    }
}

/// Runs `f` with the calling thread counting in no budget: for what the
/// measured code does that is not its own work. [`crate::thread`] starts
/// its threads this way: the standard library's bookkeeping of a thread is
/// freed only as the thread exits, after its work was joined.
pub fn outside<R>(f: impl FnOnce() -> R) -> R {
    /// Gives the thread back its attribution, however `f` ends.
    struct Back(Held);
    impl Drop for Back {
        fn drop(&mut self) {
            let held = std::mem::take(&mut self.0);
            let tally = held.tally.as_ref().map_or(std::ptr::null(), Arc::as_ptr);
            // SAFETY: `held` keeps the tally alive while the thread holds it.
            unsafe { raw::attribute(tally) };
            untracked(|| {
                let _ = HELD.try_with(|h| *h.borrow_mut() = held);
            });
        }
    }
    let held =
        untracked(|| HELD.try_with(|h| std::mem::take(&mut *h.borrow_mut()))).unwrap_or_default();
    // SAFETY: null attributes to no tally.
    unsafe { raw::attribute(std::ptr::null()) };
    let _back = Back(held);
    f()
}

/// The budget a thread counts in, held while any [`Entered`] of it lives
/// on the thread: the thread's attribution points at this tally, and this
/// `Arc` keeps it alive, whatever order the guards are dropped in.
#[derive(Default)]
struct Held {
    tally: Option<Arc<Tally>>,
    /// Guards of it alive on this thread.
    depth: usize,
}

thread_local! {
    static HELD: RefCell<Held> = const { RefCell::new(Held { tally: None, depth: 0 }) };
}

/// The budget the calling thread's allocations count in, if one does.
pub fn current() -> Option<Attribution> {
    untracked(|| HELD.try_with(|h| h.borrow().tally.clone().map(Attribution)).ok().flatten())
}

impl Attribution {
    /// Attributes the calling thread's allocations to this budget until
    /// the guard drops (or, with several guards of it, the last of them).
    ///
    /// # Panics
    /// If the thread already counts in another budget: budgets do not
    /// nest, since a block counts in one budget only.
    pub fn enter(&self) -> Entered {
        let entered = untracked(|| {
            HELD.with(|h| {
                let mut h = h.borrow_mut();
                match &h.tally {
                    Some(t) if Arc::ptr_eq(t, &self.0) => {}
                    Some(_) => return false,
                    None => {
                        h.tally = Some(Arc::clone(&self.0));
                        // SAFETY: `HELD` keeps the tally alive until the
                        // thread's last guard of it drops, which ends the
                        // attribution first.
                        unsafe { raw::attribute(Arc::as_ptr(&self.0)) };
                    }
                }
                h.depth += 1;
                true
            })
        });
        assert!(
            entered,
            "pulse::budget: this thread already counts in another budget; budgets do not nest"
        );
        Entered { _thread: PhantomData }
    }

    /// `fut`, counting in this budget whenever it is polled, on any thread.
    pub fn bind<F: Future>(self, fut: F) -> Counting<F> {
        Counting { fut, to: self }
    }
}

/// A thread attributed to a budget; dropping it ends the attribution (the
/// last of the thread's guards of that budget does).
#[must_use = "the thread counts in the budget until this drops"]
pub struct Entered {
    // Attribution is per thread: the guard stays on its thread.
    _thread: PhantomData<*const ()>,
}

impl fmt::Debug for Entered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entered").finish_non_exhaustive()
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let last = untracked(|| {
            HELD.try_with(|h| {
                let mut h = h.borrow_mut();
                h.depth = h.depth.saturating_sub(1);
                if h.depth > 0 {
                    return None;
                }
                // SAFETY: null attributes to no tally.
                unsafe { raw::attribute(std::ptr::null()) };
                h.tally.take()
            })
        });
        // The tally's last `Arc` may go here, outside the borrow.
        untracked(|| drop(last));
    }
}

/// A future that counts in a budget wherever it is polled: see
/// [`Attribution::bind`].
#[derive(Debug)]
pub struct Counting<F> {
    fut: F,
    to: Attribution,
}

impl<F: Future> Future for Counting<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is never moved out of the pinned `Counting`.
        let this = unsafe { self.get_unchecked_mut() };
        let _in = this.to.enter();
        // SAFETY: as above; `fut` is pinned where `self` is.
        unsafe { Pin::new_unchecked(&mut this.fut) }.poll(cx)
    }
}
