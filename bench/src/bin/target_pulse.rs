//! A benchmark target under pulse, in the mode `PULSE_ALLOC` names, writing
//! its session to `PULSE_OUT`. Prints the figures, then `events=` and
//! `file_bytes=` from the session.

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

fn main() {
    let session = pulse::Session::builder().start().expect("start session");
    let path = session.path().to_path_buf();
    let (workload, scale, reps) = pulse_bench::target_args();
    let Some(f) = pulse_bench::measure(&workload, scale, reps) else { std::process::exit(2) };
    session.finish().expect("finish session");
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!("{} file_bytes={bytes}", f.line());
}
