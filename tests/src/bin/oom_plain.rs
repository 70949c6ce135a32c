//! The out-of-memory workload with no pulse at all: its global allocator is
//! the refusing allocator itself. Prints what the program saw.

use pulse_tests::refusing::{workload, EveryNth};

#[global_allocator]
static ALLOC: EveryNth = EveryNth::new(7);

fn main() {
    let seen = workload(&ALLOC);
    println!("{seen}");
}
