//! Blocks live at the end, in the shapes a leak detector must tell apart:
//! `leak_shapes loop-exit` leaks a thousand strings in a loop, through two
//! callers, and exits (a leak, one line of code); `leak_shapes cache-work` fills a cache of a thousand strings
//! at start and then works with it, allocating and freeing, for the rest
//! of the run (not a leak). Run with `PULSE_OUT`.

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

/// Keeps a string for good.
#[inline(never)]
fn leak(i: usize) {
    std::mem::forget(format!("request {i} handled"));
}

/// Leaks through another caller: the same line, a second stack.
#[inline(never)]
fn leak_elsewhere(i: usize) {
    leak(i);
}

/// Fills the cache.
#[inline(never)]
fn fill(cache: &mut Vec<String>) {
    for i in 0..1000 {
        cache.push(format!("entry {i}"));
    }
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("loop-exit") => {
            for i in 0..1000 {
                if i % 2 == 0 {
                    leak(i);
                } else {
                    leak_elsewhere(i);
                }
            }
        }
        Some("cache-work") => {
            let mut cache = Vec::with_capacity(1000);
            fill(&mut cache);
            // Work with the cache: lookups that build and drop temporaries.
            let t = std::time::Instant::now();
            let mut hits = 0usize;
            while t.elapsed() < std::time::Duration::from_millis(200) {
                for (i, e) in cache.iter().enumerate().step_by(7) {
                    let key = format!("entry {i}");
                    hits += usize::from(*e == key);
                }
            }
            std::hint::black_box(hits);
            // The cache is live when the session ends at exit.
            std::process::exit(0);
        }
        _ => {
            eprintln!("usage: leak_shapes loop-exit|cache-work");
            std::process::exit(2);
        }
    }
}
