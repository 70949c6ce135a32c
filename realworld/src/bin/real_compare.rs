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

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One run's peak RSS in KiB and its exit in milliseconds.
fn run_once(bin: &Path, args: &[&str], session: Option<&Path>) -> Result<(u64, f64), String> {
    let mut cmd = Command::new(bin);
    cmd.args(args).env("REALWORLD_WORK_END", "1").env_remove("PULSE_OUT");
    if let Some(s) = session {
        cmd.env("PULSE_OUT", s);
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; `status` and it
    // are valid for the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped (std never waits for
    // it: `child` is only read from below), and the pointers are valid.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let end = unix_ns();
    if rc != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("{} {} failed (status {status:#x})", bin.display(), args.join(" ")));
    }
    let mut err = String::new();
    let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    let work_end: u128 = err
        .lines()
        .find_map(|l| l.strip_prefix("work-end ")?.parse().ok())
        .ok_or_else(|| format!("{} printed no work-end: {err}", bin.display()))?;
    Ok((usage.ru_maxrss as u64, end.saturating_sub(work_end) as f64 / 1e6))
}

fn unix_ns() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
