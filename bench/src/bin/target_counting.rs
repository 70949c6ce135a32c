//! A benchmark target with a plain counting allocator: two relaxed atomic
//! adds per call, the floor of what any tracking costs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static CALLS: AtomicU64 = AtomicU64::new(0);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to `System` unchanged; the counters only read the layout.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, which we forward.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `dealloc`'s contract, which we forward.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: the caller upholds `realloc`'s contract, which we forward.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    let (workload, scale, _) = pulse_bench::target_args();
    // `count` mode: one un-timed run that only counts allocation calls.
    if std::env::var_os("BENCH_COUNT_ONLY").is_some() {
        let Some(run) = pulse_bench::workloads::get(&workload) else { std::process::exit(2) };
        let (c0, a0) = (CALLS.load(Ordering::Relaxed), ALLOCS.load(Ordering::Relaxed));
        std::hint::black_box(run(scale));
        let (c1, a1) = (CALLS.load(Ordering::Relaxed), ALLOCS.load(Ordering::Relaxed));
        println!("allocs={} calls={} bytes={}", a1 - a0, c1 - c0, BYTES.load(Ordering::Relaxed));
        return;
    }
    pulse_bench::target_main();
}
