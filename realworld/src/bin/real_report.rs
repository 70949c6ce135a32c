//! Reads a session and writes its report, as `pulse report` does (to
//! nowhere): the analyzer's side of the `peers` bench, timed and measured
//! as a process of its own against `heaptrack_print`.
//!
//! ```text
//! real_report FILE [CACHE_DIR]    with CACHE_DIR, through the replay cache
//! ```
//!
//! Prints `events N` on stderr: the session's records but definitions.

use pulse_analysis::format::RecordKind;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: real_report FILE [CACHE_DIR]");
        std::process::exit(2);
    };
    let opts = pulse_analysis::LoadOptions::new();
    let loaded = match args.get(1) {
        Some(dir) => {
            let cache = pulse_analysis::Cache::new(dir);
            pulse_analysis::Profile::load_cached(path, &opts, &cache, &mut |_, _| {}).map(|p| p.0)
        }
        None => pulse_analysis::Profile::load(path),
    };
    let profile = match loaded {
        Ok(p) => p,
        Err(e) => {
            eprintln!("real_report: {e}");
            std::process::exit(1);
        }
    };
    let definitions = [RecordKind::SiteDef, RecordKind::ScopeDef, RecordKind::Symbol];
    let events: u64 = RecordKind::ALL
        .iter()
        .filter(|k| !definitions.contains(k))
        .map(|&k| profile.count(k))
        .sum();
    eprintln!("events {events}");
    let output = pulse_analysis::Output::Report(
        pulse_analysis::ReportOptions::default(),
        pulse_analysis::Form::Text(pulse_analysis::Width::Fit(100)),
    );
    let source = pulse_analysis::Source::File(std::path::Path::new(path));
    if let Err(e) = pulse_analysis::write(&output, &profile, source, &mut std::io::sink()) {
        eprintln!("real_report: {e}");
        std::process::exit(1);
    }
}
