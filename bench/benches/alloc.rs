//! Allocation tracking: the same workloads under the system allocator, a
//! plain counting allocator, each pulse mode and dhat-rs, in one run.
//!
//!     cargo bench -p pulse-bench --bench alloc            # the full run
//!     cargo bench -p pulse-bench --bench alloc -- --quick # under a minute
//!
//! Each target is its own program (a program has one global allocator), run
//! as a child process that times its repetitions itself; the table gives
//! each one's median against the system allocator's median measured in the
//! same run, and the nanoseconds added per allocation. A second table gives
//! each target's peak resident memory, and a third, for exactness, pulse's
//! totals, peak and live bytes next to dhat-rs's for the same work.

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
    /// `key=value` pairs of the figures line, for what only some targets print.
    extra: Vec<(String, u64)>,
}

impl Run {
    fn get(&self, key: &str) -> Option<u64> {
        self.extra.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// One workload's heap figures: total blocks (a reallocation counts as one
/// more block, as dhat counts it), total bytes, peak bytes, peak blocks,
/// blocks and bytes live at the end.
type Heap = [u64; 6];

fn pulse_heap(path: &std::path::Path) -> Option<Heap> {
    let p = pulse_analysis::Profile::load(path).ok()?;
    let m = &p.memory;
    Some([
        m.allocs + m.reallocs,
        m.bytes_allocated,
        m.peak_bytes,
        m.peak_blocks,
        m.live_blocks_at_end,
        m.live_bytes_at_end,
    ])
}

fn dhat_heap(r: &Run) -> Option<Heap> {
    Some([
        r.get("dhat_total_blocks")?,
        r.get("dhat_total_bytes")?,
        r.get("dhat_max_bytes")?,
        r.get("dhat_max_blocks")?,
        r.get("dhat_curr_blocks")?,
        r.get("dhat_curr_bytes")?,
    ])
}

fn run(t: &Target, workload: &str, scale: usize, reps: usize, out: &PathBuf) -> Option<Run> {
    let mut c = Command::new(t.exe);
    c.args([workload, &scale.to_string(), &reps.to_string()]).env("BENCH_SESSION", out);
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
    let extra = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
        .collect();
    Some(Run { figures: Figures::parse(line)?, file_bytes, extra })
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
    let mut rss: Vec<(&str, Vec<Option<u64>>)> = Vec::new();
    let mut exact: Vec<(&str, Option<Heap>, Option<Heap>)> = Vec::new();
    for &w in names {
        let (allocs, all_calls) = calls(w, scale);
        let out = dir.join(format!("{w}.pulse"));
        let base = run(&TARGETS[0], w, scale, reps, &out);
        let Some(base) = base else { continue };
        let mut rss_row = vec![Some(base.figures.max_rss)];
        let mut dhat = None;
        let mut line =
            format!("{:<8} {:>10} {:>7.1}ms", w, allocs, base.figures.median_ns as f64 / 1e6);
        let mut bytes_per_event = None;
        for t in &TARGETS[1..] {
            // dhat-rs takes microseconds per allocation: one repetition is plenty.
            let r = if t.label == "dhat-rs" { 1 } else { reps };
            let m = run(t, w, scale, r, &out);
            rss_row.push(m.as_ref().map(|m| m.figures.max_rss));
            if t.label == "dhat-rs" {
                dhat = m.as_ref().and_then(dhat_heap);
            }
            match m {
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
        rss.push((w, rss_row));
        // The same single repetition as dhat's run, recorded in full.
        let one = dir.join(format!("{w}-exact.pulse"));
        let pulse = run(&TARGETS[4], w, scale, 1, &one).and_then(|_| pulse_heap(&one));
        exact.push((w, pulse, dhat));
    }
    println!();
    println!("peak resident memory of the whole process, MiB (ratio to System's)");
    let mut header = format!("{:<8} {:>9}", "workload", "System");
    for t in &TARGETS[1..] {
        header.push_str(&format!(" {:>20}", t.label));
    }
    println!("{header}");
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    for (w, row) in &rss {
        let base = row[0].unwrap_or(0);
        let mut line = format!("{:<8} {:>9.1}", w, mib(base));
        for r in &row[1..] {
            line.push_str(&match r {
                Some(b) => format!(" {:>11.1} {:>7.2}x", mib(*b), *b as f64 / base.max(1) as f64),
                None => format!(" {:>20}", "failed"),
            });
        }
        println!("{line}");
    }
    println!();
    println!("exactness: pulse full against dhat-rs, one repetition each (after one warm-up), separate processes");
    println!(
        "blocks count a reallocation as one more block, as dhat does; `=` where the two agree"
    );
    println!(
        "{:<8} {:>24} {:>24} {:>24} {:>16} {:>24}",
        "workload", "blocks", "bytes", "peak bytes", "live blocks", "live bytes"
    );
    for (w, p, d) in &exact {
        let (Some(p), Some(d)) = (p, d) else {
            println!("{w:<8} (a run failed)");
            continue;
        };
        let cell = |i: usize, width: usize| {
            if p[i] == d[i] {
                format!("{:>width$}", format!("= {}", p[i]))
            } else {
                format!("{:>width$}", format!("{} vs {}", p[i], d[i]))
            }
        };
        println!(
            "{w:<8} {} {} {} {} {}",
            cell(0, 24),
            cell(1, 24),
            cell(2, 24),
            cell(4, 16),
            cell(5, 24)
        );
    }
    println!(
        "(pulse vs dhat where they differ. Bytes: one more for pulse on every workload, the path"
    );
    println!(
        " of its program, which the standard library copies when it reads the arguments, being one"
    );
    println!(
        " character longer: target_pulse against target_dhat. Peak on `threads`: it depends on how"
    );
    println!(" the threads interleave, which differs between two processes.)");
    let _ = std::fs::remove_dir_all(&dir);
}
