//! The same job written twice: `job slow` (allocation-heavy, quadratic
//! sort) and `job fast` (allocation-lean, library sort). Run each with
//! `PULSE_OUT` and compare the sessions with `pulse diff`.

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

fn keys(n: u64) -> impl Iterator<Item = u64> {
    (0..n).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 100_000)
}

fn slow(n: u64) -> u64 {
    let names: Vec<String> = {
        pulse::scope!("build");
        let mut v = Vec::new();
        for k in keys(n) {
            v.push(format!("item-{k:06}"));
        }
        v
    };
    let mut sorted = names.clone();
    {
        pulse::scope!("sort");
        for i in 0..sorted.len() {
            for j in 0..sorted.len() - 1 - i {
                if sorted[j] > sorted[j + 1] {
                    sorted.swap(j, j + 1);
                }
            }
        }
    }
    pulse::scope!("sum");
    sorted.iter().map(|s| s.len() as u64).sum()
}

fn fast(n: u64) -> u64 {
    let mut names: Vec<String> = {
        pulse::scope!("build");
        let mut v = Vec::with_capacity(n as usize);
        use std::fmt::Write;
        for k in keys(n) {
            let mut s = String::with_capacity(11);
            let _ = write!(s, "item-{k:06}");
            v.push(s);
        }
        v
    };
    {
        pulse::scope!("sort");
        names.sort_unstable();
    }
    pulse::scope!("sum");
    names.iter().map(|s| s.len() as u64).sum()
}

fn main() {
    // Nine rounds: each scope has a distribution for `pulse diff` to judge,
    // so that one round slowed by the machine is not taken for a change.
    let (n, rounds) = (1000, 9);
    let fast_mode = std::env::args().nth(1).as_deref() == Some("fast");
    let total: u64 = (0..rounds).map(|_| if fast_mode { fast(n) } else { slow(n) }).sum();
    println!("{total}");
}
