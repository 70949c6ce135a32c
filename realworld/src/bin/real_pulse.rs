//! The real programs with pulse as the global allocator: a session is
//! written when `PULSE_OUT` is set.

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = pulse_realworld::run(&args) {
        eprintln!("real_pulse: {e}");
        std::process::exit(2);
    }
}
