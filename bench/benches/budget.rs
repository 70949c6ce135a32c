//! What an allocation budget costs: one allocation and its free (64 bytes,
//! a stack a few frames deep), without any budget, inside a budget's
//! measured block, and on a thread outside it while a budget counts on
//! another, all in one run. The figures are nanoseconds per pair, the median
//! of repeated runs, and the ratios against the first.
//!
//!     cargo bench -p pulse-bench --bench budget            # ~20 s
//!     cargo bench -p pulse-bench --bench budget -- --quick # a few seconds

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::Instant;

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

#[inline(never)]
fn pairs(n: u64) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        black_box(Box::new([i; 8]));
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n, runs) = if quick { (100_000, 5) } else { (1_000_000, 11) };
    let plain = median((0..runs).map(|_| pairs(n)).collect());
    let inside = median((0..runs).map(|_| pulse::budget::measure(|| pairs(n)).0).collect());
    // A budget counts on another thread for the whole measurement.
    let (stop, ready) = (AtomicBool::new(false), Barrier::new(2));
    let outside = std::thread::scope(|s| {
        s.spawn(|| {
            pulse::budget::measure(|| {
                ready.wait();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            })
        });
        ready.wait();
        let t = median((0..runs).map(|_| pairs(n)).collect());
        stop.store(true, Ordering::Relaxed);
        t
    });
    println!("one 64-byte allocation and its free, ns (ratio to no budget), {n} pairs, median of {runs}:");
    println!("  no budget anywhere            {plain:7.1}  (1.00x)");
    println!("  inside a measured block       {inside:7.1}  ({:.2}x)", inside / plain);
    println!("  outside, a budget elsewhere   {outside:7.1}  ({:.2}x)", outside / plain);
}
