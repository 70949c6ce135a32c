//! Workloads and measurement helpers shared by the benchmark programs.
//!
//! A target program (`src/bin/target_*.rs`) runs one workload a number of
//! times under its own global allocator and prints one line of figures; the
//! benches in `benches/` run every target on every workload and print the
//! ratios, pair by pair, in the same run.
#![deny(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

pub mod workloads;

/// What a target prints: `key=value` pairs on one line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// The median wall time of one repetition, in nanoseconds.
    pub median_ns: u64,
    /// The fastest repetition.
    pub min_ns: u64,
    /// Peak resident memory of the whole process, in bytes.
    pub max_rss: u64,
}

impl Figures {
    /// One line: `median_ns=… min_ns=… max_rss=…`.
    pub fn line(&self) -> String {
        format!("median_ns={} min_ns={} max_rss={}", self.median_ns, self.min_ns, self.max_rss)
    }

    /// Parses what [`Figures::line`] printed.
    pub fn parse(line: &str) -> Option<Figures> {
        let mut f = Figures::default();
        for kv in line.split_whitespace() {
            let (k, v) = kv.split_once('=')?;
            let v: u64 = v.parse().ok()?;
            match k {
                "median_ns" => f.median_ns = v,
                "min_ns" => f.min_ns = v,
                "max_rss" => f.max_rss = v,
                _ => {}
            }
        }
        Some(f)
    }
}

/// Runs `workload` `reps` times (after one warm-up) and measures it.
pub fn measure(workload: &str, scale: usize, reps: usize) -> Option<Figures> {
    let run = workloads::get(workload)?;
    black_box(run(scale));
    let mut times: Vec<u64> = (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            black_box(run(scale));
            t.elapsed().as_nanos() as u64
        })
        .collect();
    times.sort_unstable();
    Some(Figures { median_ns: times[times.len() / 2], min_ns: times[0], max_rss: max_rss() })
}

/// The process's peak resident set, in bytes: `VmHWM`, which starts afresh
/// with the program (`getrusage`'s `ru_maxrss` would carry over the
/// parent's peak through fork and exec).
pub fn max_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// The arguments every target takes: `WORKLOAD SCALE REPS`.
pub fn target_args() -> (String, usize, usize) {
    let mut a = std::env::args().skip(1);
    let workload = a.next().unwrap_or_default();
    let scale = a.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let reps = a.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    (workload, scale, reps)
}

/// Runs a target: measures, prints its figures line, exits 2 on a bad workload.
pub fn target_main() {
    let (workload, scale, reps) = target_args();
    match measure(&workload, scale, reps) {
        Some(f) => println!("{}", f.line()),
        None => {
            eprintln!("unknown workload {workload:?}; known: {}", workloads::NAMES.join(", "));
            std::process::exit(2);
        }
    }
}
