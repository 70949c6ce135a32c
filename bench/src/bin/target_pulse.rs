//! A benchmark target under pulse, in the mode `PULSE_ALLOC` names, writing
//! its session to the path in `BENCH_SESSION`. The session starts in `main`,
//! where dhat-rs's profiler starts in its target, so that the two see the
//! same allocations (with `PULSE_OUT`, pulse would start with the process
//! and also see the standard library's start-up). Prints the figures, then
//! `file_bytes=` of the session.

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

fn main() {
    let path = std::path::PathBuf::from(std::env::var_os("BENCH_SESSION").unwrap_or_default());
    let session = pulse::Session::builder().output(&path).start().expect("start session");
    let (workload, scale, reps) = pulse_bench::target_args();
    let Some(f) = pulse_bench::measure(&workload, scale, reps) else { std::process::exit(2) };
    session.finish().expect("finish session");
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!("{} file_bytes={bytes}", f.line());
}
