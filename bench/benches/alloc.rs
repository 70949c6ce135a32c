//! Allocation tracking: the same workloads under the system allocator, a
//! plain counting allocator, each pulse mode and dhat-rs, in one run.
//!
//!     cargo bench -p pulse-bench --bench alloc            # the full run
//!     cargo bench -p pulse-bench --bench alloc -- --quick # under a minute
//!
//! Each target is its own program (a program has one global allocator), run
//! as a child process that times its repetitions itself; the table gives
//! each one's median against the system allocator's median measured in the
//! same run, and the nanoseconds added per allocation.

use std::path::PathBuf;
use std::process::Command;

use pulse_bench::{workloads, Figures};

struct Target {
    label: &'static str,
    exe: &'static str,
    env: &'static [(&'static str, &'static str)],
}

const TARGETS: &[Target] = &[
    Target { label: "System", exe: env!("CARGO_BIN_EXE_target_system"), env: &[] },
    Target { label: "counting", exe: env!("CARGO_BIN_EXE_target_counting"), env: &[] },
    Target {
        label: "pulse count",
        exe: env!("CARGO_BIN_EXE_target_pulse"),
        env: &[("PULSE_ALLOC", "count")],
    },
    Target {
        label: "pulse sample",
        exe: env!("CARGO_BIN_EXE_target_pulse"),
        env: &[("PULSE_ALLOC", "sample")],
    },
    Target {
        label: "pulse full",
        exe: env!("CARGO_BIN_EXE_target_pulse"),
        env: &[("PULSE_ALLOC", "full")],
    },
    Target { label: "dhat-rs", exe: env!("CARGO_BIN_EXE_target_dhat"), env: &[] },
];

struct Run {
    figures: Figures,
    file_bytes: Option<u64>,
}

fn run(t: &Target, workload: &str, scale: usize, reps: usize, out: &PathBuf) -> Option<Run> {
    let mut c = Command::new(t.exe);
    c.args([workload, &scale.to_string(), &reps.to_string()]).env("PULSE_OUT", out);
    for (k, v) in t.env {
        c.env(k, v);
    }
    let o = c.output().ok()?;
    if !o.status.success() {
        eprintln!(
            "{} on {workload} failed: {}",
            t.label,
            String::from_utf8_lossy(&o.stderr).trim()
        );
        return None;
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text.lines().last()?;
    let file_bytes = line
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("file_bytes="))
        .and_then(|v| v.parse().ok());
    Some(Run { figures: Figures::parse(line)?, file_bytes })
}

/// Allocation calls one repetition makes: (alloc + realloc, all calls).
fn calls(workload: &str, scale: usize) -> (u64, u64) {
    let o = Command::new(env!("CARGO_BIN_EXE_target_counting"))
        .args([workload, &scale.to_string(), "1"])
        .env("BENCH_COUNT_ONLY", "1")
        .output()
        .expect("run the counting target");
    let text = String::from_utf8_lossy(&o.stdout);
    let get = |k: &str| {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("allocs="), get("calls="))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `cargo test --benches` runs this too, without `--bench`: keep that tiny.
    let smoke = !std::env::args().any(|a| a == "--bench") && !quick;
    let (scale, reps) = if smoke {
        (1, 1)
    } else if quick {
        (1, 3)
    } else {
        (8, 7)
    };
    let dir = std::env::temp_dir().join(format!("pulse-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    println!("allocation tracking: scale {scale}, median of {reps} repetitions per target, one process per target");
    println!("ratio: target median / System median in this run; +ns/alloc: added time per alloc or realloc call");
    println!();
    let mut header = format!("{:<8} {:>10} {:>9}", "workload", "allocs", "System");
    for t in &TARGETS[1..] {
        header.push_str(&format!(" {:>22}", t.label));
    }
    header.push_str(&format!(" {:>10}", "B/event"));
    println!("{header}");
    let names: &[&str] = if smoke { &["churn"] } else { workloads::NAMES };
    for &w in names {
        let (allocs, all_calls) = calls(w, scale);
        let out = dir.join(format!("{w}.pulse"));
        let base = run(&TARGETS[0], w, scale, reps, &out);
        let Some(base) = base else { continue };
        let mut line =
            format!("{:<8} {:>10} {:>7.1}ms", w, allocs, base.figures.median_ns as f64 / 1e6);
        let mut bytes_per_event = None;
        for t in &TARGETS[1..] {
            // dhat-rs takes microseconds per allocation: one repetition is plenty.
            let r = if t.label == "dhat-rs" { 1 } else { reps };
            match run(t, w, scale, r, &out) {
                Some(m) => {
                    let ratio = m.figures.median_ns as f64 / base.figures.median_ns.max(1) as f64;
                    let added = (m.figures.median_ns as f64 - base.figures.median_ns as f64)
                        / allocs.max(1) as f64;
                    line.push_str(&format!(" {:>9.2}x {:>+8.1}ns/a", ratio, added));
                    if t.label == "pulse full" {
                        // Every repetition and the warm-up are in the file.
                        let events = all_calls * (reps as u64 + 1);
                        bytes_per_event = m.file_bytes.map(|b| b as f64 / events.max(1) as f64);
                    }
                }
                None => line.push_str(&format!(" {:>22}", "failed")),
            }
        }
        line.push_str(&format!(
            " {:>10}",
            bytes_per_event.map_or(String::from("-"), |b| format!("{b:.2}"))
        ));
        println!("{line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
