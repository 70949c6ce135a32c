//! The out-of-memory workload under pulse, recording a session into the
//! path given as the argument: `oom_pulse OUT`. Prints what the program saw.

use pulse_tests::refusing::{workload, EveryNth};

#[global_allocator]
static ALLOC: pulse::Alloc<EveryNth> = pulse::Alloc::new(EveryNth::new(7));

fn main() {
    let out = std::env::args().nth(1).expect("usage: oom_pulse OUT");
    let session = pulse::Session::builder().output(out).start().expect("start");
    let seen = workload(ALLOC.inner());
    session.finish().expect("finish");
    println!("{seen}");
}
