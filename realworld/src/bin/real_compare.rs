//! Peak resident memory and exit time of `real_pulse` (writing a session)
//! against `real_system`, side by side, on the same workloads in one run:
//!
//! ```text
//! real_compare [REPS]    each program REPS times (default 3), medians
//! ```
//!
//! The peak is the kernel's (`ru_maxrss` from `wait4`); the exit is the
//! time from the end of the work (the program prints the wall clock then,
//! asked by `REALWORLD_WORK_END`) to the moment `wait4` returns: for
//! `real_pulse`, the end of the session (its last round, symbolizing what
//! is left, the trailer) and the process's teardown.

use std::path::{Path, PathBuf};
use std::process::Command;

use pulse_realworld::measure::{self, median};

/// One run's peak RSS in KiB and its exit in milliseconds.
fn run_once(bin: &Path, args: &[&str], session: Option<&Path>) -> Result<(u64, f64), String> {
    let mut cmd = Command::new(bin);
    cmd.args(args).env("REALWORLD_WORK_END", "1").env_remove("PULSE_OUT");
    if let Some(s) = session {
        cmd.env("PULSE_OUT", s);
    }
    let m = measure::run(&mut cmd)?;
    let work_end: u128 =
        m.stderr
            .lines()
            .find_map(|l| l.strip_prefix("work-end ")?.parse().ok())
            .ok_or_else(|| format!("{} printed no work-end: {}", bin.display(), m.stderr))?;
    Ok((m.max_rss_kib, m.end_unix_ns.saturating_sub(work_end) as f64 / 1e6))
}

fn main() -> Result<(), String> {
    let reps: usize = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|_| format!("not a number of repetitions: {a}"))?,
        None => 3,
    };
    let reps = reps.max(1);
    let here = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = here.parent().ok_or("no directory for the binaries")?;
    let (pulse, system) = (dir.join("real_pulse"), dir.join("real_system"));
    let tmp = std::env::temp_dir().join(format!("real_compare.{}", std::process::id()));
    let tree = tmp.join("tree");
    let session: PathBuf = tmp.join("run.pulse");
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    let tree_arg = tree.to_string_lossy().into_owned();
    run_once(&system, &["gen-tree", &tree_arg, "2000"], None)?;
    let workloads: [&[&str]; 3] =
        [&["jq", "20000"], &["grep", &tree_arg, "4"], &["markdown", "20000"]];
    println!(
        "| workload | peak RSS system | peak RSS pulse | difference | ratio | exit system | exit pulse | difference |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for args in workloads {
        let (mut rss, mut exit) = ([vec![], vec![]], [vec![], vec![]]);
        // Alternated, so that a change in the machine's load hits both.
        for _ in 0..reps {
            for (k, (bin, s)) in
                [(&system, None), (&pulse, Some(session.as_path()))].into_iter().enumerate()
            {
                let (r, e) = run_once(bin, args, s)?;
                rss[k].push(r as f64 / 1024.0);
                exit[k].push(e);
            }
        }
        let [rs, rp] = rss.map(median);
        let [es, ep] = exit.map(median);
        println!(
            "| {} | {rs:.1} MiB | {rp:.1} MiB | +{:.1} MiB | {:.2}× | {es:.1} ms | {ep:.1} ms | +{:.1} ms |",
            args[0],
            rp - rs,
            rp / rs,
            ep - es
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
