//! The real programs under dhat-rs. Writes `dhat-heap.json` (or
//! `DHAT_OUT`) with dhat's stacks, and prints its totals on stderr:
//! `dhat: total_blocks total_bytes max_blocks max_bytes curr_blocks curr_bytes`.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = std::env::var("DHAT_OUT").unwrap_or_else(|_| String::from("dhat-heap.json"));
    let profiler = dhat::Profiler::builder().file_name(out).trim_backtraces(None).build();
    if let Err(e) = pulse_realworld::run(&args) {
        eprintln!("real_dhat: {e}");
        std::process::exit(2);
    }
    let s = dhat::HeapStats::get();
    eprintln!(
        "dhat: {} {} {} {} {} {}",
        s.total_blocks, s.total_bytes, s.max_blocks, s.max_bytes, s.curr_blocks, s.curr_bytes
    );
    drop(profiler);
}
