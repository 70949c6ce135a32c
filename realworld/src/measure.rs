//! Running a program and measuring it as the kernel saw it: wall time, and
//! peak resident memory from `wait4` (the child's own, not the largest of
//! all children so far as `getrusage` would give).

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::Instant;

/// What one run of a program took.
#[derive(Debug, Clone)]
pub struct Measured {
    /// From the spawn to `wait4`'s return, in seconds.
    pub wall: f64,
    /// Peak resident set, in KiB (`ru_maxrss`).
    pub max_rss_kib: u64,
    /// The wall clock when `wait4` returned, nanoseconds since the epoch.
    pub end_unix_ns: u128,
    /// What it wrote on stderr.
    pub stderr: String,
}

/// Runs `cmd` (its stdout discarded, its stderr kept) and waits for it;
/// `Err` if it cannot start or does not exit with status 0.
pub fn run(cmd: &mut Command) -> Result<Measured, String> {
    let what = format!("{cmd:?}");
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    // Drained while it runs: a full pipe would stop it.
    let mut pipe = child.stderr.take().ok_or("no stderr pipe")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped (std never waits for
    // it: `child` is not waited on), and the pointers are valid for the call.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed().as_secs_f64();
    let end_unix_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let stderr = reader.join().unwrap_or_default();
    if rc != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let tail: String = stderr.lines().rev().take(5).collect::<Vec<_>>().join(" / ");
        return Err(format!("{what} failed (status {status:#x}): {tail}"));
    }
    Ok(Measured { wall, max_rss_kib: usage.ru_maxrss as u64, end_unix_ns, stderr })
}

/// The median of `v` (the upper one of an even count); NaN for none.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
