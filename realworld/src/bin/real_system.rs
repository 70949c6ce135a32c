//! The real programs with the system allocator: the baseline pulse's cost
//! is measured against, and the program heaptrack is run on.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = pulse_realworld::run(&args) {
        eprintln!("real_system: {e}");
        std::process::exit(2);
    }
}
