//! What a program keeps of its session when it ends badly, and that pulse
//! never holds it up: killed by a signal, aborted, its output full, closed
//! or stalled. Each program is `src/bin/durable.rs`, run as a process.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use pulse_analysis::format::{Frame, Reader};
use pulse_analysis::Profile;
use pulse_tests::temp_session;

fn durable(mode: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_durable"));
    c.arg(mode);
    c
}

/// Waits until the session file exists with its header, that is until the
/// session has started.
fn wait_for_header(path: &Path) {
    let t = Instant::now();
    while std::fs::metadata(path).map_or(0, |m| m.len()) == 0 {
        assert!(t.elapsed() < Duration::from_secs(60), "no session file at {}", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The child's exit, or a failure if it has not ended within `limit` (it hangs).
fn wait_within(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!("{what}: the program still runs after {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
}

/// The time from the first event to the last, in seconds, read chunk by
/// chunk up to the first damaged or missing frame.
fn span_s(path: &Path, ticks_per_ns: f64) -> f64 {
    let mut r = Reader::new(std::fs::File::open(path).unwrap()).unwrap();
    let (mut first, mut last) = (u64::MAX, 0u64);
    while let Ok(Some(frame)) = r.next_frame() {
        if let Frame::Chunk(c) = frame {
            for ts in c.records.iter().filter_map(|r| r.ts()) {
                first = first.min(ts);
                last = last.max(ts);
            }
        }
    }
    last.saturating_sub(first) as f64 / ticks_per_ns / 1e9
}

/// Whether a site of the session is named `durable::steady_work`.
fn names_its_sites(p: &Profile) -> bool {
    p.sites.keys().any(|&s| {
        p.symbols.location(s).is_some_and(|f| f.function.contains("durable::steady_work"))
    })
}

#[test]
fn a_program_killed_after_three_seconds_keeps_them() {
    let runs: Vec<_> = [libc::SIGKILL, libc::SIGTERM, libc::SIGINT]
        .into_iter()
        .map(|sig| {
            std::thread::spawn(move || {
                let path = temp_session(&format!("killed-{sig}"));
                let mut cmd = durable("steady");
                cmd.env("PULSE_OUT", &path);
                // A program started in the background by a shell without
                // job control inherits SIGINT ignored, and pulse rightly
                // leaves it so (the test below): the program gets the
                // default, as one run from a terminal does, whoever runs
                // the tests.
                // SAFETY: between fork and exec only `signal`, which is
                // async-signal-safe.
                unsafe {
                    cmd.pre_exec(move || {
                        libc::signal(sig, libc::SIG_DFL);
                        Ok(())
                    });
                }
                let mut child = cmd.spawn().unwrap();
                wait_for_header(&path);
                std::thread::sleep(Duration::from_secs(3));
                signal(&child, sig);
                let status = wait_within(&mut child, Duration::from_secs(60), "signalled");
                (sig, path, status)
            })
        })
        .collect();
    for run in runs {
        let (sig, path, status) = run.join().unwrap();
        assert_eq!(status.signal(), Some(sig), "signal {sig}: the exit is the signal's: {status}");
        let p = Profile::load(&path).expect("the session reads");
        let span = span_s(&path, p.ticks_per_ns);
        println!("signal {sig}: {span:.3} s of events kept of 3 s");
        assert!(span >= 2.9, "signal {sig}: {span:.3} s of events kept of 3 s");
        if sig == libc::SIGKILL {
            assert!(p.truncated.is_some(), "a SIGKILL leaves no trailer");
        } else {
            assert!(p.trailer.is_some(), "signal {sig}: the session finished: {:?}", p.truncated);
        }
        // Symbols are written round by round: a killed session names its
        // sites too.
        assert!(names_its_sites(&p), "signal {sig}: the sites are named");
    }
}

#[test]
fn a_program_that_ignores_sighup_goes_on_ignoring_it() {
    let path = temp_session("nohup");
    let mut cmd = durable("steady");
    cmd.env("PULSE_OUT", &path);
    // SAFETY: between fork and exec only `signal`, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    wait_for_header(&path);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "SIGHUP stayed ignored");
    signal(&child, libc::SIGTERM);
    let status = wait_within(&mut child, Duration::from_secs(60), "SIGTERM");
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert!(Profile::load(&path).unwrap().trailer.is_some());
}

#[test]
fn the_programs_own_handler_still_runs_and_decides_the_exit() {
    // Installed before the session: pulse finishes the file, then calls it.
    let path = temp_session("handler-first");
    let mut child = durable("handler-first").arg(&path).stderr(Stdio::piped()).spawn().unwrap();
    wait_for_header(&path);
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, libc::SIGTERM);
    let status = wait_within(&mut child, Duration::from_secs(60), "handler-first");
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(7), "the program's handler decided: {status}, {err}");
    assert_eq!(err, "handled\n");
    let p = Profile::load(&path).unwrap();
    assert!(p.trailer.is_some() && names_its_sites(&p));

    // Installed after pulse's: the program's wins; it returns from `main`,
    // and the session finishes at exit.
    let path = temp_session("handler-after");
    let mut child =
        durable("handler-after").env("PULSE_OUT", &path).stderr(Stdio::piped()).spawn().unwrap();
    wait_for_header(&path);
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, libc::SIGTERM);
    let status = wait_within(&mut child, Duration::from_secs(60), "handler-after");
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{status}, {err}");
    assert_eq!(err, "stopped\n");
    assert!(Profile::load(&path).unwrap().trailer.is_some());
}

#[test]
fn a_signal_while_another_thread_exits_is_not_turned_into_a_segfault() {
    // `std::process::exit` on one thread unmaps the main thread's
    // alternate signal stack; a terminating signal handled on that stack
    // was a SIGSEGV, with no trailer, three times in three.
    for run in 0..3 {
        let path = temp_session("exit-signalled");
        let mut child = durable("exit-signalled").env("PULSE_OUT", &path).spawn().unwrap();
        let status = wait_within(&mut child, Duration::from_secs(60), "exit-signalled");
        assert_ne!(status.signal(), Some(libc::SIGSEGV), "run {run}: {status}");
        assert!(
            status.signal() == Some(libc::SIGTERM) || status.success(),
            "run {run}: the signal's exit, or the exit's: {status}"
        );
        assert!(Profile::load(&path).unwrap().trailer.is_some(), "run {run}");
    }
}

#[test]
fn pulse_signals_off_installs_nothing() {
    let path = temp_session("signals-off");
    let mut child =
        durable("steady").env("PULSE_OUT", &path).env("PULSE_SIGNALS", "off").spawn().unwrap();
    wait_for_header(&path);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGTERM);
    let status = wait_within(&mut child, Duration::from_secs(60), "signals off");
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    let p = Profile::load(&path).unwrap();
    assert!(p.trailer.is_none(), "with PULSE_SIGNALS=off a SIGTERM ends the process at once");
    assert!(p.memory.allocs > 0, "the rounds written before it are kept");
}

#[test]
fn an_abort_and_a_stack_overflow_finish_the_session() {
    for mode in ["abort", "overflow", "overflow-in-code"] {
        let path = temp_session(mode);
        let mut cmd = durable(mode);
        if mode == "overflow-in-code" {
            cmd.arg(&path);
        } else {
            cmd.env("PULSE_OUT", &path);
        }
        let o = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.signal(), Some(libc::SIGABRT), "{mode}: {}, {err}", o.status);
        if mode != "abort" {
            assert!(err.contains("has overflowed its stack"), "Rust's own report: {err}");
        }
        let p = Profile::load(&path).unwrap();
        assert!(p.trailer.is_some(), "{mode}: the session finished: {:?}", p.truncated);
        assert!(names_its_sites(&p), "{mode}: the sites are named");
        assert!(span_s(&path, p.ticks_per_ns) >= 0.9, "{mode}: the second of events is kept");
    }
}

#[test]
fn a_full_output_and_a_program_holding_the_stderr_lock_do_not_hang() {
    let mut child = durable("stderr-locked")
        .env("PULSE_OUT", "/dev/full")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_within(&mut child, Duration::from_secs(120), "/dev/full");
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(err.ends_with("done\n"), "the program's own output: {err}");
    assert!(err.starts_with("pulse: cannot write /dev/full"), "{err}");
}

#[test]
fn an_output_closed_under_a_program_holding_the_stderr_lock_does_not_hang_it() {
    // The session goes to the child's stdout, a pipe read for its header
    // and then closed: the collector's next write fails (EPIPE) while the
    // program's thread holds `stderr().lock()` and allocates.
    let mut child = durable("stderr-locked")
        .env("PULSE_OUT", "/dev/stdout")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut head = [0u8; 8];
    out.read_exact(&mut head).unwrap();
    drop(out);
    let status = wait_within(&mut child, Duration::from_secs(120), "closed pipe");
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(err.contains("pulse: cannot write the session file"), "{err}");
    assert!(err.contains("done\n"), "the program's own output: {err}");
}

#[test]
fn an_output_nobody_reads_does_not_hang_the_program() {
    let mut child = durable("burst")
        .env("PULSE_OUT", "/dev/stdout")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Held open and never read: the collector's writes block for good.
    let out = child.stdout.take().unwrap();
    let status = wait_within(&mut child, Duration::from_secs(120), "stalled pipe");
    drop(out);
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(err.starts_with("done\n"), "the program's own output first: {err}");
    assert!(err.contains("made no progress"), "one line from pulse: {err}");
    assert_eq!(err.lines().count(), 2, "{err}");
}

#[test]
fn events_dropped_while_the_output_stalled_are_counted_and_reported() {
    // The pipe is read only once the program has printed `done`: its ring
    // filled, its thread waited two seconds for a collector that did not
    // move, then dropped its events and ran on; once the pipe drains (the
    // program is then waiting for its session to finish), the session
    // finishes.
    let path = temp_session("stalled-then-drained");
    let mut child = durable("burst")
        .env("PULSE_OUT", "/dev/stdout")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = std::thread::spawn(move || {
        let mut first = String::new();
        std::io::BufRead::read_line(&mut stderr, &mut first).unwrap();
        tx.send(first).unwrap();
        let mut rest = String::new();
        stderr.read_to_string(&mut rest).unwrap();
        rest
    });
    let Ok(first) = rx.recv_timeout(Duration::from_secs(120)) else {
        let _ = child.kill();
        panic!("the program never got past its loop: it hangs");
    };
    assert_eq!(first, "done\n");
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        out.read_to_end(&mut all).unwrap();
        all
    });
    let status = wait_within(&mut child, Duration::from_secs(120), "stalled, then drained");
    std::fs::write(&path, reader.join().unwrap()).unwrap();
    let err = first + &lines.join().unwrap();
    assert!(status.success(), "{status}: {err}");
    assert_eq!(err, "done\n", "nothing from pulse: the collector recovered");
    let p = Profile::load(&path).unwrap();
    let t = p.trailer.as_ref().expect("the session finished");
    assert!(t.lost_events > 0, "the dropped events are counted");
    assert!(p.memory.allocs + t.lost_events >= 400_000, "{} + {}", p.memory.allocs, t.lost_events);
    let r = pulse_analysis::report(&p, &Default::default());
    let mut text = Vec::new();
    r.render(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains(&format!(
            "warning: {} events were lost: the session's writer stalled",
            t.lost_events
        )),
        "the report says so: {text}"
    );
}

#[test]
fn a_signal_at_any_moment_of_a_dense_run_finishes_the_file() {
    // A program allocating without pause: a signal often lands inside the
    // allocator, where the thread may hold the inner allocator's lock or
    // be inside a reallocation that every collector round waits for. Its
    // handler waited there for the collector, which waited for it, until
    // the two-second stall bound gave up on the file: no trailer, in about
    // one run in eight before the signal was kept for the call's return.
    for i in 0..24u64 {
        let sig = if i % 2 == 0 { libc::SIGTERM } else { libc::SIGINT };
        let path = temp_session(&format!("dense-{i}"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_env_only"));
        cmd.arg("spin").env("PULSE_OUT", &path);
        // SAFETY: between fork and exec only `signal`, which is
        // async-signal-safe (SIGINT as from a terminal: see above).
        unsafe {
            cmd.pre_exec(move || {
                libc::signal(sig, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        // Past the header and the first rounds: the session records, and
        // its handlers are installed.
        let t = Instant::now();
        while std::fs::metadata(&path).map_or(0, |m| m.len()) < 16 << 10 {
            assert!(t.elapsed() < Duration::from_secs(60), "run {i}: no session");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(i % 8 * 7));
        let sent = Instant::now();
        signal(&child, sig);
        let status = wait_within(&mut child, Duration::from_secs(60), "signalled");
        let took = sent.elapsed();
        assert_eq!(status.signal(), Some(sig), "run {i}: {status}");
        let p = Profile::load(&path).expect("the session reads");
        assert!(p.trailer.is_some(), "run {i}: no trailer, {took:?} after the signal");
        let _ = std::fs::remove_file(&path);
    }
}
