//! Runs one workload under dhat-rs and prints its heap statistics:
//! `exact_dhat WORKLOAD` prints
//! `total_blocks total_bytes max_blocks max_bytes curr_blocks curr_bytes`.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let profiler = dhat::Profiler::builder().testing().build();
    if !pulse_tests::workloads::run(&name) {
        eprintln!("unknown workload {name}");
        std::process::exit(2);
    }
    let s = dhat::HeapStats::get();
    drop(profiler);
    println!(
        "{} {} {} {} {} {}",
        s.total_blocks, s.total_bytes, s.max_blocks, s.max_bytes, s.curr_blocks, s.curr_bytes
    );
}
