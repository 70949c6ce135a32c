//! Scopes entered and left as fast as one thread can, for as long as it
//! takes: the case where the collector, not the program, sets the pace.
//! Prints the time per scope and the events per second the collector
//! drained; the session is left at the path given (a profile of the
//! collector, or a scope-heavy session for `pulse report`, to time).
//!
//!     cargo build --release -p pulse-bench --bin scope_storm
//!     target/release/scope_storm storm.pulse 20000000
//!     valgrind --tool=callgrind --separate-threads=yes target/release/scope_storm storm.pulse 1000000

static SITE: pulse::ScopeSite = pulse::ScopeSite::new("storm");

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), n) = (args.next(), args.next().map(|n| n.parse::<u64>())) else {
        eprintln!("usage: scope_storm SESSION [SCOPES]");
        std::process::exit(2);
    };
    let n = match n.unwrap_or(Ok(20_000_000)) {
        Ok(n) if n > 0 => n,
        _ => {
            eprintln!("scope_storm: SCOPES must be a positive whole number");
            std::process::exit(2);
        }
    };
    let session = pulse::Session::builder()
        .output(&path)
        .mode(pulse::AllocMode::Off)
        .counters(false)
        .start()
        .unwrap_or_else(|e| {
            eprintln!("scope_storm: {e}");
            std::process::exit(1)
        });
    let start = std::time::Instant::now();
    let mut acc = 0u64;
    for i in 0..n {
        let _scope = pulse::ScopeGuard::enter(&SITE);
        acc = acc.wrapping_add(std::hint::black_box(i));
    }
    let took = start.elapsed();
    std::hint::black_box(acc);
    if let Err(e) = session.finish() {
        eprintln!("scope_storm: {e}");
        std::process::exit(1);
    }
    println!(
        "{n} scopes: {:.1} ns a scope, {:.1} M events/s",
        took.as_nanos() as f64 / n as f64,
        2.0 * n as f64 / took.as_secs_f64() / 1e6
    );
}
