//! A benchmark target under dhat-rs's heap profiler. Prints the figures,
//! then dhat's own totals, peak and live bytes when the workload ended (the
//! moment the pulse target finishes its session), for the exactness table.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let (workload, scale, reps) = pulse_bench::target_args();
    let Some(f) = pulse_bench::measure(&workload, scale, reps) else {
        eprintln!("unknown workload {workload:?}");
        std::process::exit(2);
    };
    let s = dhat::HeapStats::get();
    println!(
        "{} dhat_total_blocks={} dhat_total_bytes={} dhat_max_blocks={} dhat_max_bytes={} dhat_curr_blocks={} dhat_curr_bytes={}",
        f.line(),
        s.total_blocks,
        s.total_bytes,
        s.max_blocks,
        s.max_bytes,
        s.curr_blocks,
        s.curr_bytes
    );
}
