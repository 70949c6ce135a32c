//! Programs with one planted problem each, or none, for the recommendation
//! tests, run with `PULSE_OUT`: `planted grow|spread|shared|regrow|headed|pushed|temp|refit|twomade|mixmade|twice|keptgrown|mixfreed|mixkept|…|clean`.

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

/// Planted: a report built one string per record, first allocated on one
/// line (`String::new()` allocates nothing) and grown on three others.
#[inline(never)]
fn spread() -> usize {
    use std::fmt::Write;
    let mut total = 0;
    for i in 0..300u64 {
        let mut doc = String::new();
        let _ = write!(doc, "record {i}:");
        for j in 0..200u64 {
            doc.push_str(" field=");
            let _ = write!(doc, "{}", i * j);
            doc.push(';');
        }
        total += std::hint::black_box(doc).len();
    }
    total
}

/// Pushes one value: the line that grows every vector of [`shared`].
#[inline(never)]
fn put(v: &mut Vec<u64>, x: u64) {
    v.push(x);
}

/// Planted: one helper grows vectors made with a capacity of one by its
/// caller, and vectors it allocates first itself: two findings, each
/// reallocation in one of them.
#[inline(never)]
fn shared() -> usize {
    let mut total = 0;
    for _ in 0..2_000 {
        let mut v = Vec::with_capacity(1);
        for j in 0..64 {
            put(&mut v, j);
        }
        total += std::hint::black_box(v).len();
    }
    for _ in 0..2_000 {
        let mut w = Vec::new();
        for j in 0..64 {
            put(&mut w, j);
        }
        total += std::hint::black_box(w).len();
    }
    total
}

/// Planted: vectors made large enough, shrunk to fit, then grown again.
#[inline(never)]
fn regrow() -> usize {
    let mut total = 0;
    for _ in 0..2_000 {
        let mut v: Vec<u64> = Vec::with_capacity(200);
        v.extend(0..100);
        v.truncate(5);
        v.shrink_to_fit();
        for j in 0..60 {
            v.push(j);
        }
        total += std::hint::black_box(v).len();
    }
    total
}

/// Writes a record's heading: the first bytes of every string of [`headed`].
#[inline(never)]
fn heading(out: &mut String, i: u64) {
    out.push_str("record ");
    out.push_str(if i % 2 == 0 { "even" } else { "odd" });
}

/// Planted: strings a helper allocates first, filled by their maker.
#[inline(never)]
fn headed() -> usize {
    let mut total = 0;
    for i in 0..2_000 {
        let mut s = String::new();
        heading(&mut s, i);
        s.push_str(" body body body body body body body body body body");
        s.push_str(" more more more more more more more more more more more");
        s.push_str(" trailer trailer trailer trailer trailer trailer trailer");
        total += std::hint::black_box(s).len();
    }
    total
}

/// Planted: strings built by `format!` (each grown inside it), pushed onto
/// a vector the line grows too.
#[inline(never)]
fn pushed() -> usize {
    let long = "x".repeat(40);
    let mut total = 0;
    for i in 0..2_000u64 {
        let mut lines = Vec::new();
        for j in 0..8u64 {
            lines.push(format!("{long}{i}:{j}:{long}{long}{long}"));
        }
        total += std::hint::black_box(lines).len();
    }
    total
}

/// Not a problem to report as growth: vectors built at their full
/// capacity, then shrunk to what they hold (each `shrink_to_fit` a
/// reallocation to a smaller block).
#[inline(never)]
fn shrink() -> usize {
    let mut total = 0;
    for i in 0..20_000u64 {
        let mut v: Vec<u64> = Vec::with_capacity(64);
        v.extend(0..i % 32 + 1);
        v.shrink_to_fit();
        total += std::hint::black_box(v).len();
    }
    total
}

/// Planted: a recursive walk 100 levels deep, each level a scope.
#[pulse::profile_fn]
fn descend(depth: u32) -> u64 {
    if depth == 0 {
        return std::hint::black_box(1);
    }
    descend(depth - 1) + u64::from(depth)
}

fn deep() -> u64 {
    (0..20).map(|_| descend(100)).sum()
}

/// Planted: a pointer chase through 64 MiB in random order (every step a
/// cache miss, the processor waiting on memory), beside a dependent
/// arithmetic chain of about the same length that is not memory-bound.
fn memory() -> u64 {
    const N: usize = 16 << 20;
    // One cycle through every slot, in a scattered order: `a·i + c` modulo
    // a power of two, with `a ≡ 1 (mod 4)` and `c` odd, has full period.
    let next: Vec<u32> = (0..N as u32)
        .map(|i| i.wrapping_mul(2_654_435_769 & !3 | 1).wrapping_add(40_503) % N as u32)
        .collect();
    let mut at = 0u32;
    {
        pulse::scope!("chase", counters);
        for _ in 0..2_000_000 {
            at = next[at as usize];
        }
    }
    let mut acc = 1u64;
    {
        pulse::scope!("compute", counters);
        for i in 0..20_000_000u64 {
            acc = std::hint::black_box(acc.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
    u64::from(at) ^ acc
}

/// Planted: a temporary string per record, made on one line with a small
/// capacity, grown once on the next and dropped at once. The growing line
/// only reallocates: its short-lived finding names the line that makes
/// the string.
#[inline(never)]
fn temp() -> usize {
    let mut total = 0;
    for _ in 0..20_000u64 {
        let mut s = String::with_capacity(8);
        s.push_str("a record longer than its first capacity: ");
        total += std::hint::black_box(&s).len();
    }
    total
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
        Some("spread") => println!("{}", spread()),
        Some("shared") => println!("{}", shared()),
        Some("regrow") => println!("{}", regrow()),
        Some("headed") => println!("{}", headed()),
        Some("pushed") => println!("{}", pushed()),
        Some("deep") => println!("{}", deep()),
        Some("shrink") => println!("{}", shrink()),
        Some("memory") => println!("{}", memory()),
        Some("temp") => println!("{}", temp()),
        Some("refit") => println!("{}", refit()),
        Some("twomade") => println!("{}", twomade()),
        Some("mixmade") => println!("{}", mixmade()),
        Some("twice") => println!("{}", twice()),
        Some("keptgrown") => println!("{}", kept_and_grown()),
        Some("mixfreed") => println!("{}", mixed(true, 64, 16 << 10)),
        Some("mixkept") => println!("{}", mixed(false, 64, 16 << 10)),
        Some("mixfreed4") => println!("{}", mixed(true, 4, 1 << 10)),
        Some("mixkept4") => println!("{}", mixed(false, 4, 1 << 10)),
        _ => println!("{}", clean()),
    }
}

/// One line making blocks of two sizes, one in `every` of them `big`
/// bytes and the rest 32: with `small_freed`, the small ones dropped at
/// once and the large ones kept to the end (a short-lived finding), else
/// the small ones kept and the large ones dropped (none). A byte-weighted
/// sample holds mostly the large ones: what it says of the line's blocks,
/// freed or live, must weigh each by what it stands for.
fn mixed(small_freed: bool, every: usize, big: usize) -> usize {
    let mut kept = Vec::new();
    for i in 0..100_000usize {
        let big = if i % every == 0 { big } else { 0 };
        let v = std::hint::black_box(vec![i as u8; big.max(32)]);
        let big = big > 0;
        if big != small_freed {
            drop(v);
        } else {
            kept.push(v);
        }
    }
    kept.iter().map(Vec::len).sum()
}

/// Resizes `v` to a capacity of `n`, up or down, on one line.
#[inline(never)]
fn fit(v: &mut Vec<u8>, n: usize) {
    if v.capacity() < n {
        v.reserve_exact(n - v.len())
    } else {
        v.shrink_to(n)
    }
}

#[inline(never)]
fn made_small() -> Vec<u8> {
    Vec::with_capacity(1)
}

#[inline(never)]
fn made_large() -> Vec<u8> {
    Vec::with_capacity(64)
}

/// Planted: temporaries resized on one line and dropped at once, ten in
/// eleven made large and shrunk, one in eleven made small and grown: the
/// short-lived finding on the resizing line names the line that made the
/// large ones, and says the line shrinks them.
fn refit() -> usize {
    let mut total = 0;
    for i in 0..22_000u32 {
        let mut v = if i % 11 == 0 { made_small() } else { made_large() };
        fit(&mut v, if i % 11 == 0 { 32 } else { 8 });
        total += std::hint::black_box(&v).capacity();
    }
    total
}

/// Planted: vectors one of two helpers makes, both called on one line,
/// then grown on the next ones: the finding at that line names both.
fn twomade() -> usize {
    let mut total = 0;
    for i in 0..2_000u32 {
        let mut v = if i % 4 == 0 { made_small() } else { made_large() };
        v.extend_from_slice(&[1u8; 100]);
        v.extend_from_slice(&[2u8; 200]);
        total += std::hint::black_box(&v).len();
    }
    total
}

/// Planted: vectors a helper makes one time in three and the line itself
/// the other two, then grown on the next lines: the finding says both.
fn mixmade() -> usize {
    let mut total = 0;
    for i in 0..3_000u32 {
        let mut v = if i % 3 == 0 { made_small() } else { Vec::with_capacity(2) };
        v.extend_from_slice(&[1u8; 100]);
        v.extend_from_slice(&[2u8; 200]);
        total += std::hint::black_box(&v).len();
    }
    total
}

/// Planted: temporaries made on one line, grown twice on one line of a
/// loop and dropped at once: a short-lived finding on the growing line,
/// whose blocks are half its reallocations.
fn twice() -> usize {
    let mut total = 0;
    for _ in 0..20_000u32 {
        let mut v: Vec<u8> = Vec::with_capacity(1);
        for n in [2048, 4096] {
            v.reserve_exact(n);
        }
        total += std::hint::black_box(&v).capacity();
    }
    total
}

/// Planted: one line (`push_one`'s) allocates vectors kept to the end and
/// grows temporaries made elsewhere, dropped at once: its short-lived
/// finding is of the blocks it allocated or resized last, not of its own
/// allocations, none of which is freed.
fn kept_and_grown() -> usize {
    let mut kept = Vec::with_capacity(10_000);
    for _ in 0..10_000u32 {
        let mut v: Vec<u8> = Vec::new();
        push_one(&mut v);
        kept.push(v);
    }
    let mut total = 0;
    for _ in 0..20_000u32 {
        let mut t: Vec<u8> = Vec::with_capacity(8);
        t.extend_from_slice(&[0u8; 8]);
        push_one(&mut t);
        total += std::hint::black_box(&t).len();
    }
    total + std::hint::black_box(&kept).len()
}

#[inline(never)]
fn push_one(v: &mut Vec<u8>) {
    v.push(1);
}
