//! Runs one workload under pulse: `exact_pulse WORKLOAD SESSION`.

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(name), Some(out)) = (args.next(), args.next()) else {
        eprintln!("usage: exact_pulse WORKLOAD SESSION");
        std::process::exit(2);
    };
    let session = pulse::Session::builder().output(out).start().expect("start session");
    if !pulse_tests::workloads::run(&name) {
        eprintln!("unknown workload {name}");
        std::process::exit(2);
    }
    session.finish().expect("finish session");
}
