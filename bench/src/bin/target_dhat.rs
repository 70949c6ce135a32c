//! A benchmark target under dhat-rs's heap profiler.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    pulse_bench::target_main();
}
