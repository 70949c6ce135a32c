//! A benchmark target with the system allocator: the baseline.
fn main() {
    pulse_bench::target_main();
}
