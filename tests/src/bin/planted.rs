//! Programs with one planted problem each, or none, for the recommendation
//! tests: `planted grow|clean`. Run with `PULSE_OUT`.

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

/// Planted: a vector grown one push at a time to 8 MiB, never reserved.
#[inline(never)]
fn grow() -> usize {
    let mut v = Vec::new();
    for i in 0..1_000_000u64 {
        v.push(std::hint::black_box(i));
    }
    v.len()
}

/// Nothing to advise: capacity reserved, one buffer reused, three scopes
/// sharing the time.
fn clean() -> u64 {
    let mut buf = String::with_capacity(64);
    let mut data: Vec<u64> = Vec::with_capacity(10_000);
    let mut sum = 0;
    for i in 0..10_000u64 {
        pulse::scope!("fill");
        data.push(i * 3);
    }
    for x in &data {
        pulse::scope!("format");
        buf.clear();
        use std::fmt::Write;
        let _ = write!(buf, "{x}");
        sum += buf.len() as u64;
    }
    for x in &data {
        pulse::scope!("sum");
        sum += x % 7;
    }
    sum
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("grow") => println!("{}", grow()),
        _ => println!("{}", clean()),
    }
}
