//! A program with a steady leak next to a bounded cache, for the leak
//! detector to tell apart. Run with `PULSE_OUT`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

/// Leaks one 64-byte record each call.
#[inline(never)]
fn remember(i: u32) {
    // Kept from the optimiser, which may drop an allocation nothing reads.
    std::hint::black_box(Box::leak(Box::new([i as u8; 64])));
}

fn main() {
    // A cache of 50 entries: full after the first quarter, then only replaced.
    let mut cache: HashMap<u32, Vec<u8>> = HashMap::with_capacity(64);
    for i in 0..200u32 {
        let t = Instant::now();
        while t.elapsed() < Duration::from_micros(300) {
            std::hint::spin_loop();
        }
        cache.insert(i % 50, vec![i as u8; 100]);
        if i % 4 == 0 {
            remember(i);
        }
    }
    std::hint::black_box(&cache);
    // `cache` is still alive when the session ends at exit.
    std::process::exit(0);
}
