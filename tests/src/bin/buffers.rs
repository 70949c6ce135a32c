//! `buffers N SIZE`: 2 000 small boxes, then N buffers of SIZE bytes, all
//! freed at the end. Sampled with an interval far below SIZE, each buffer
//! is sure to be sampled: its line's estimate is exact. Run with
//! `PULSE_OUT`.

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

use std::hint::black_box;

/// `n` buffers of `size` bytes.
#[inline(never)]
fn buffers(n: usize, size: usize) -> Vec<Vec<u8>> {
    (0..n).map(|_| black_box(vec![1u8; size])).collect()
}

/// 2 000 boxes of 16 bytes: an allocation each, on purpose.
#[allow(clippy::vec_box)]
#[inline(never)]
fn boxes() -> Vec<Box<[u8; 16]>> {
    (0..2000).map(|i| black_box(Box::new([i as u8; 16]))).collect()
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("a number")).collect();
    let (n, size) = (args[0], args[1]);
    let small = boxes();
    let big = buffers(n, size);
    black_box(&big);
    drop(big);
    drop(small);
}
