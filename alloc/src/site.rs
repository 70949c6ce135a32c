//! Allocation sites: the stack of an allocation, captured cheaply and
//! interned into a small id.
//!
//! Capture walks the frame-pointer chain: each frame's saved `rbp` points at
//! the caller's, and the return address sits just above it. That is a few
//! loads per frame, takes no lock and calls nothing — unlike unwinding with
//! DWARF tables, which goes through `dl_iterate_phdr` and its loader lock,
//! and deadlocks inside an allocator when another thread panics (unwinds)
//! at the same moment. Rust's prebuilt standard library keeps frame
//! pointers; the program's own code needs `-C force-frame-pointers=yes`
//! (see the README). A frame without one is skipped, not followed: `rbp` is
//! callee-saved, so it still holds the nearest frame-pointer frame.
//!
//! Every step is bounds-checked against the thread's stack, so a chain that
//! runs into a frame built without frame pointers ends the walk instead of
//! reading wild memory.
//!
//! The walk starts at the frame of the function that records the event:
//! the first frame is the address of the instruction there, the next ones
//! the return addresses of its callers.
//!
//! Interning: the frames are hashed during the walk, which stores none of
//! them; a per-thread cache (two entries a hash) maps the hash to the site
//! id, so a site seen before costs no shared state. A new site walks again
//! from the same frame record to keep its frames, takes the global table's
//! lock once and queues them for the collector to write as a site
//! definition.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The most frames a site keeps.
pub const MAX_DEPTH: usize = 64;
/// The default depth.
pub const DEFAULT_DEPTH: usize = 32;
/// Entries in each thread's site cache (16 KiB of them).
pub(crate) const CACHE_SIZE: usize = 2048;
/// A cache entry holds a site id in its low bits and the high bits of the
/// stack's hash above them (with the bits that chose the entry, 51 of the
/// hash's 64 bits are checked); 0 is an empty entry.
const ID_BITS: u32 = 24;
const ID_MASK: u64 = (1 << ID_BITS) - 1;

static DEPTH: AtomicUsize = AtomicUsize::new(DEFAULT_DEPTH);
static NEXT_SITE: AtomicU32 = AtomicU32::new(1);

/// What the allocator captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StackMode {
    /// No stacks: events carry no site.
    Off = 0,
    /// A stack on every allocation and reallocation.
    Full = 1,
    /// A stack on a sample chosen by bytes (see [`set_sample_interval`]).
    Sample = 2,
}

static MODE: AtomicU8 = AtomicU8::new(StackMode::Full as u8);
static SAMPLE_INTERVAL: AtomicUsize = AtomicUsize::new(DEFAULT_SAMPLE_INTERVAL);

/// The default mean number of bytes between two sampled allocations.
pub const DEFAULT_SAMPLE_INTERVAL: usize = 512 * 1024;

/// Chooses what the allocator captures and how deep.
pub fn set_stack_mode(mode: StackMode, depth: usize) {
    MODE.store(mode as u8, Ordering::Relaxed);
    DEPTH.store(depth.clamp(1, MAX_DEPTH), Ordering::Relaxed);
    crate::thread::refresh_mode();
}

/// Sets the mean bytes between sampled allocations in [`StackMode::Sample`].
pub fn set_sample_interval(bytes: usize) {
    SAMPLE_INTERVAL.store(bytes.max(1), Ordering::Relaxed);
}

/// How many frames a stack keeps now (see [`set_stack_mode`]).
pub fn stack_depth() -> usize {
    DEPTH.load(Ordering::Relaxed)
}

/// What the allocator captures now (see [`set_stack_mode`]).
pub fn stack_mode() -> StackMode {
    mode()
}

#[inline]
pub(crate) fn mode() -> StackMode {
    match MODE.load(Ordering::Relaxed) {
        1 => StackMode::Full,
        2 => StackMode::Sample,
        _ => StackMode::Off,
    }
}

pub(crate) fn sample_interval() -> u64 {
    SAMPLE_INTERVAL.load(Ordering::Relaxed) as u64
}

/// The sites defined since the collector last looked: id and frames.
static NEW_SITES: Mutex<Vec<(u32, Vec<u64>)>> = Mutex::new(Vec::new());
/// Every site so far: its id by hash of its frames, and every definition.
/// Ids and the threads' caches outlive a session, so a later session in
/// the same process defines again every site from the earlier ones
/// ([`define_all_again`]): each session's file stands alone.
static SITES: Mutex<Option<Sites>> = Mutex::new(None);

#[derive(Default)]
struct Sites {
    by_hash: HashMap<u64, u32>,
    all: Vec<(u32, Vec<u64>)>,
}

/// A thread's stack bounds and site cache. Lives in its ring; only the
/// owning thread touches it.
#[derive(Debug)]
pub(crate) struct SiteCache {
    stack_lo: usize,
    stack_hi: usize,
    entries: [u64; CACHE_SIZE],
    /// Bytes left before the next sampled allocation.
    pub(crate) sample_countdown: u64,
    /// State of the sampler's random generator.
    rng: u64,
}

impl SiteCache {
    /// Reads the calling thread's stack bounds. Called by the owner when it
    /// claims its ring.
    pub(crate) fn init(&mut self) {
        let (lo, hi) = stack_bounds();
        self.stack_lo = lo;
        self.stack_hi = hi;
        self.entries = [0; CACHE_SIZE];
        self.rng = (lo as u64 ^ 0x9e37_79b9_7f4a_7c15) | 1;
        self.sample_countdown = self.next_sample_gap();
    }

    /// The id of the calling stack's site, or 0 if no frame could be read.
    ///
    /// Inlined into the function that records the event, whose frame is
    /// where the walk starts: the stack is the current instruction's
    /// address (symbolized as pulse's frames) and the return addresses of
    /// the callers (the allocator's entry point, unless the recording
    /// function was tail-called from it, and the program's code). The walk
    /// only hashes them; the
    /// frames themselves are kept only for a site this thread has not
    /// seen, by walking again from the same record (the frames above it
    /// cannot have changed: they are its callers, still running).
    #[inline(always)]
    pub(crate) fn site(&mut self) -> u32 {
        let (ip, fp) = (instruction_pointer(), frame_pointer());
        let depth = DEPTH.load(Ordering::Relaxed);
        let (n, h) = walk(ip, fp, depth, self.stack_lo, self.stack_hi, |_, _| {});
        if n == 0 {
            return 0;
        }
        // Two entries a hash: what is left of one once the hash's high bits
        // are taken out is the site's id if they were the entry's (0 for an
        // empty entry, never a valid id).
        let pair = (h as usize) & (CACHE_SIZE - 2);
        let tag = h & !ID_MASK;
        let (a, b) = (self.entries[pair] ^ tag, self.entries[pair + 1] ^ tag);
        if a.wrapping_sub(1) < ID_MASK {
            return a as u32;
        }
        if b.wrapping_sub(1) < ID_MASK {
            return b as u32;
        }
        self.new_site(ip, fp, depth)
    }

    /// The calling stack's frames into `frames` (at most [`MAX_DEPTH`]),
    /// walked from the function this is inlined into: how many, and their
    /// hash (0 for none). No cache, no interning: for budgets, which keep
    /// their own sites.
    #[inline(always)]
    pub(crate) fn stack(&self, frames: &mut [u64; MAX_DEPTH]) -> (usize, u64) {
        let (ip, fp) = (instruction_pointer(), frame_pointer());
        let (lo, hi) = (self.stack_lo, self.stack_hi);
        walk(ip, fp, MAX_DEPTH, lo, hi, |i, f| frames[i] = f)
    }

    /// A site missing from this thread's cache: its frames, interned. It
    /// takes the first entry of its pair; the entry there moves to the second.
    #[cold]
    #[inline(never)]
    fn new_site(&mut self, ip: usize, fp: usize, depth: usize) -> u32 {
        let mut frames = [0u64; MAX_DEPTH];
        let (n, h) = walk(ip, fp, depth, self.stack_lo, self.stack_hi, |i, f| frames[i] = f);
        let id = intern(h, &frames[..n]);
        if u64::from(id) < ID_MASK {
            let pair = (h as usize) & (CACHE_SIZE - 2);
            self.entries[pair + 1] = self.entries[pair];
            self.entries[pair] = (h & !ID_MASK) | u64::from(id);
        }
        id
    }

    /// The number of bytes until the next sampled allocation: exponentially
    /// distributed with the configured mean, so every byte has the same
    /// chance of being sampled.
    pub(crate) fn next_sample_gap(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let u = ((x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        (-u.ln() * sample_interval() as f64).max(1.0) as u64
    }
}

/// The stack of the code at `ip`, whose function's frame record is at
/// `fp`: `ip` itself, then the return addresses of the frame-pointer chain,
/// at most `depth` frames in all, calling `each(i, address)` innermost
/// first. Returns the number of frames and their [`hash`]-style hash,
/// computed on the way: the multiplications overlap the walk's dependent
/// loads, so hashing costs next to nothing. Nothing (0 frames) when `fp`
/// is not in the thread's stack.
#[inline(always)]
fn walk(
    ip: usize,
    mut fp: usize,
    depth: usize,
    lo: usize,
    hi: usize,
    mut each: impl FnMut(usize, u64),
) -> (usize, u64) {
    let top = hi.saturating_sub(16);
    let depth = depth.min(MAX_DEPTH);
    if fp < lo || fp > top || fp % 8 != 0 || depth == 0 {
        return (0, 0);
    }
    each(0, ip as u64);
    let mut h = (ip as u64).wrapping_mul(MULTIPLIERS[0]);
    let mut n = 1;
    for &m in &MULTIPLIERS[1..depth] {
        // SAFETY: `fp` is 8-aligned and `[fp, fp + 16)` lies inside this
        // thread's stack, which is mapped for the thread's whole life.
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if ret == 0 {
            break;
        }
        each(n, ret as u64);
        h = h.wrapping_add((ret as u64).wrapping_mul(m));
        n += 1;
        // The chain must go up the stack, or it has left the frame-pointer frames.
        if next <= fp || next > top || next % 8 != 0 {
            break;
        }
        fp = next;
    }
    (n, avalanche(h.wrapping_add(n as u64)))
}

/// The address of the instruction after this one, in the function this is
/// inlined into.
#[inline(always)]
fn instruction_pointer() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let ip: usize;
        // SAFETY: reading the instruction pointer has no side effects.
        unsafe {
            std::arch::asm!("lea {}, [rip]", out(reg) ip, options(nomem, nostack, preserves_flags))
        };
        ip
    }
    #[cfg(target_arch = "aarch64")]
    {
        let ip: usize;
        // SAFETY: reading the program counter has no side effects.
        unsafe {
            std::arch::asm!("adr {}, .", out(reg) ip, options(nomem, nostack, preserves_flags))
        };
        ip
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        0
    }
}

#[inline(always)]
fn frame_pointer() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let fp: usize;
        // SAFETY: reading `rbp` has no side effects.
        unsafe {
            std::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags))
        };
        fp
    }
    #[cfg(target_arch = "aarch64")]
    {
        let fp: usize;
        // SAFETY: reading `x29` has no side effects.
        unsafe {
            std::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags))
        };
        fp
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        0
    }
}

/// A hash of the frames in which every frame is multiplied by its own odd
/// constant and the products summed (with the number of frames): the
/// multiplications are independent, so the hash costs about a cycle a
/// frame instead of the four or five of a chained mix. A final avalanche
/// spreads the bits; 64 bits make a collision between two distinct stacks
/// of one program vanishingly unlikely. [`walk`] computes the same.
#[cfg(test)]
fn hash(frames: &[u64]) -> u64 {
    let mut h = frames.len() as u64;
    for (f, m) in frames.iter().zip(MULTIPLIERS.iter()) {
        h = h.wrapping_add(f.wrapping_mul(*m));
    }
    avalanche(h)
}

/// The hash's final mix; the result is odd, so never 0.
#[inline(always)]
fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 31;
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 29;
    h | 1
}

/// One odd 64-bit multiplier per frame position (splitmix64 outputs).
static MULTIPLIERS: [u64; MAX_DEPTH] = {
    let mut m = [0u64; MAX_DEPTH];
    let mut state = 0x243f_6a88_85a3_08d3u64;
    let mut i = 0;
    while i < MAX_DEPTH {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        m[i] = (z ^ (z >> 31)) | 1;
        i += 1;
    }
    m
};

#[cold]
fn intern(h: u64, frames: &[u64]) -> u32 {
    let mut sites = SITES.lock().unwrap_or_else(|e| e.into_inner());
    let sites = sites.get_or_insert_with(Sites::default);
    if let Some(&id) = sites.by_hash.get(&h) {
        return id;
    }
    let id = NEXT_SITE.fetch_add(1, Ordering::Relaxed);
    sites.by_hash.insert(h, id);
    sites.all.push((id, frames.to_vec()));
    NEW_SITES.lock().unwrap_or_else(|e| e.into_inner()).push((id, frames.to_vec()));
    id
}

/// Queues every site defined so far for [`drain_sites`] again, replacing
/// what is queued: for a new session, whose file must define every site
/// its events name, also those first seen in an earlier session (the
/// threads' caches still hand out their ids). Called before the session
/// records, so no site is being defined meanwhile.
pub(crate) fn define_all_again() {
    let sites = SITES.lock().unwrap_or_else(|e| e.into_inner());
    let all = sites.as_ref().map(|s| s.all.clone()).unwrap_or_default();
    *NEW_SITES.lock().unwrap_or_else(|e| e.into_inner()) = all;
}

/// Hands the sites defined since the last call to `f`. Called by the collector.
pub fn drain_sites(f: &mut dyn FnMut(u32, &[u64])) {
    let new = std::mem::take(&mut *NEW_SITES.lock().unwrap_or_else(|e| e.into_inner()));
    for (id, frames) in &new {
        f(*id, frames);
    }
}

/// The calling thread's stack as `[lo, hi)`, or an empty range if unknown.
fn stack_bounds() -> (usize, usize) {
    // SAFETY: `attr` is initialized by pthread_getattr_np before use and
    // destroyed after; the out-pointers are valid locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return (0, 0);
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        if rc != 0 {
            return (0, 0);
        }
        (addr as usize, addr as usize + size)
    }
}

/// What a stack walk and hash cost, in nanoseconds averaged over `n`
/// runs: (a walk of the configured depth, each frame of it). Measured from
/// a stack deeper than the deepest walk, since a program's allocations
/// mostly come from deep stacks: a walk of one frame, then a walk as deep
/// as the configured depth. For the session's record of pulse's own cost;
/// interns nothing.
pub(crate) fn time_capture(n: u32) -> (f64, f64) {
    let depth = DEPTH.load(Ordering::Relaxed);
    let mut timed = || {
        let (lo, hi) = stack_bounds();
        let (one, _) = time_walks(n, 1, lo, hi);
        let (full, frames) = time_walks(n, depth, lo, hi);
        // Without frame pointers in pulse's own frames the walk ends early:
        // each frame's cost, then a walk as deep as asked.
        let per_frame =
            if frames > 1 { ((full - one) / (frames - 1) as f64).max(0.0) } else { 0.0 };
        (one + per_frame * depth.saturating_sub(1) as f64, per_frame)
    };
    nested(MAX_DEPTH + 4, &mut timed)
}

/// Runs `f` `levels` calls deeper than the caller.
#[inline(never)]
fn nested<R>(levels: usize, f: &mut dyn FnMut() -> R) -> R {
    let r = if levels == 0 { f() } else { nested(levels - 1, f) };
    std::hint::black_box(r)
}

/// Average nanoseconds of `n` walks of at most `depth` frames from here,
/// and the frames each walked.
#[inline(never)]
fn time_walks(n: u32, depth: usize, lo: usize, hi: usize) -> (f64, usize) {
    let start = crate::clock::monotonic_ns();
    let mut acc = 0u64;
    let mut frames = 0;
    for _ in 0..n {
        let (ip, fp) = (instruction_pointer(), frame_pointer());
        let (k, h) = walk(ip, fp, std::hint::black_box(depth), lo, hi, |_, _| {});
        acc = acc.wrapping_add(h);
        frames = k;
    }
    std::hint::black_box(acc);
    ((crate::clock::monotonic_ns() - start) as f64 / f64::from(n.max(1)), frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn nested(depth: usize, out: &mut [u64; MAX_DEPTH], lo: usize, hi: usize) -> (usize, u64) {
        if depth == 0 {
            walk(instruction_pointer(), frame_pointer(), MAX_DEPTH, lo, hi, |i, f| out[i] = f)
        } else {
            let r = nested(depth - 1, out, lo, hi);
            std::hint::black_box(r)
        }
    }

    #[test]
    fn the_walk_stays_inside_the_stack_and_sees_the_callers() {
        let (lo, hi) = stack_bounds();
        assert!(lo < hi, "stack bounds");
        let mut out = [0u64; MAX_DEPTH];
        let (n, h) = nested(5, &mut out, lo, hi);
        // Test builds keep frame pointers (see .cargo/config.toml): at least
        // the innermost call's own address, the five nested frames and the
        // test function.
        assert!(n >= 7, "captured {n} frames");
        assert!(out[..n].iter().all(|&a| a != 0));
        assert_eq!(h, hash(&out[..n]), "the walk's hash is the frames' hash");
    }

    #[test]
    fn a_walk_is_timed_at_the_configured_depth() {
        let (full, per_frame) = time_capture(256);
        assert!(full > 0.0 && per_frame > 0.0, "full {full} ns, per frame {per_frame} ns");
        // The walk of the configured depth is its frames' worth: test builds
        // keep frame pointers, so it walks all of them.
        assert!(
            full >= per_frame * (DEFAULT_DEPTH - 1) as f64,
            "full {full} ns, per frame {per_frame} ns"
        );
    }

    #[test]
    fn bad_bounds_capture_nothing() {
        assert_eq!(
            walk(instruction_pointer(), frame_pointer(), MAX_DEPTH, 0, 0, |_, _| {}),
            (0, 0)
        );
    }

    #[test]
    fn sample_gaps_average_the_interval() {
        let mut c = SiteCache {
            stack_lo: 0,
            stack_hi: 0,
            entries: [0; CACHE_SIZE],
            sample_countdown: 0,
            rng: 7,
        };
        let n = 20_000;
        let mean = (0..n).map(|_| c.next_sample_gap()).sum::<u64>() / n;
        let want = sample_interval();
        assert!(mean > want * 9 / 10 && mean < want * 11 / 10, "mean gap {mean}, want {want}");
    }
}
