//! Deterministic allocation workloads, run identically under pulse and
//! under other profilers so their figures can be compared.
//!
//! Each workload allocates the same sequence of sizes on every run: no
//! randomly seeded hashers, no output, no clock.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;
use std::hint::black_box;

/// A `HashMap` with a fixed hasher, so growth is the same on every run.
pub type FixedMap<K, V> =
    HashMap<K, V, BuildHasherDefault<std::collections::hash_map::DefaultHasher>>;

/// The workloads, by name.
pub const NAMES: &[&str] = &["churn", "growth", "maps", "leak", "threads"];

/// Runs the workload `name`; returns false if there is none by that name.
pub fn run(name: &str) -> bool {
    match name {
        "churn" => churn(),
        "growth" => growth(),
        "maps" => maps(),
        "leak" => leak(),
        "threads" => threads(),
        _ => return false,
    }
    true
}

/// Whether the workload runs on one thread only (exact peaks compare).
pub fn single_threaded(name: &str) -> bool {
    name != "threads"
}

/// Many small short-lived allocations.
fn churn() {
    let mut keep: Vec<Box<[u8]>> = Vec::with_capacity(64);
    for i in 0..20_000usize {
        let b = vec![i as u8; 8 + (i * 7) % 120].into_boxed_slice();
        if i % 50 == 0 {
            keep.push(b);
            if keep.len() == 64 {
                keep.clear();
            }
        } else {
            black_box(b);
        }
    }
}

/// Vectors and strings grown one element at a time.
fn growth() {
    let mut v: Vec<u64> = Vec::new();
    for i in 0..100_000u64 {
        v.push(black_box(i));
    }
    let mut s = String::new();
    for i in 0..20_000 {
        s.push_str(if i % 2 == 0 { "ab" } else { "cde" });
    }
    let mut nested: Vec<Vec<u32>> = Vec::new();
    for i in 0..1000u32 {
        nested.push((0..i % 37).collect());
    }
    black_box((v, s, nested));
}

/// Hash and B-tree maps built and dropped.
fn maps() {
    let mut h: FixedMap<u64, String> = FixedMap::default();
    for i in 0..20_000u64 {
        h.insert(i, format!("value-{i}"));
    }
    for i in (0..20_000u64).step_by(3) {
        h.remove(&i);
    }
    let mut b: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..10_000u32 {
        b.insert(format!("key-{:05}", (i * 7919) % 10_000), vec![0; (i % 50) as usize]);
    }
    black_box((h, b));
}

/// Leaks on purpose: 100 blocks of 1 KiB and one of 1 MiB stay live.
fn leak() {
    for i in 0..100 {
        std::mem::forget(vec![i as u8; 1024]);
    }
    Box::leak(vec![0u8; 1 << 20].into_boxed_slice());
    let kept: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    black_box(kept);
}

/// Producers allocate owned buffers; a consumer thread frees them all.
/// (Handed over through `join`, not a blocking channel: a channel that
/// blocks allocates its waiter state only when threads happen to wait, which
/// would make the allocation count depend on scheduling.)
fn threads() {
    let producers: Vec<_> = (0..3)
        .map(|t| {
            std::thread::spawn(move || {
                (0..5_000usize).map(|i| vec![t as u8; 16 + i % 300]).collect::<Vec<_>>()
            })
        })
        .collect();
    let buffers: Vec<Vec<Vec<u8>>> = producers.into_iter().map(|p| p.join().unwrap()).collect();
    let consumer =
        std::thread::spawn(move || buffers.into_iter().flatten().map(|b| b.len()).sum::<usize>());
    black_box(consumer.join().unwrap());
}
