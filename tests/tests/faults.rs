//! Faults the profiled program must survive with its data: killed with
//! SIGKILL mid-run, an output that cannot be written or fills up.

use std::process::Command;
use std::time::Duration;

use pulse_tests::temp_session;

#[test]
fn a_program_killed_mid_run_leaves_a_file_readable_to_its_last_whole_chunk() {
    let path = temp_session("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_env_only"))
        .arg("spin")
        .env("PULSE_OUT", &path)
        .spawn()
        .unwrap();
    // Kill it once some chunks are on disk (a loaded machine may take a
    // while to start it), and well before it would end by itself.
    let t = std::time::Instant::now();
    while std::fs::metadata(&path).map_or(0, |m| m.len()) < 16 << 10
        && t.elapsed() < Duration::from_secs(4)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(50));
    child.kill().unwrap();
    child.wait().unwrap();
    let p = pulse_analysis::Profile::load(&path).expect("a truncated session still loads");
    assert!(p.truncated.is_some(), "no trailer: the session was cut");
    assert!(p.trailer.is_none());
    assert!(
        p.memory.allocs > 1000,
        "the chunks written before the kill are there: {}",
        p.memory.allocs
    );
}

#[test]
fn an_output_that_cannot_be_written_costs_one_line_and_the_program_runs_on() {
    for out in ["/dev/full", "/nonexistent/dir/run.pulse"] {
        let o =
            Command::new(env!("CARGO_BIN_EXE_env_only")).env("PULSE_OUT", out).output().unwrap();
        assert!(o.status.success(), "{out}: the program's own exit status");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{out}: {err}");
        assert!(err.starts_with(&format!("pulse: cannot write {out}")), "{out}: {err}");
    }
}

#[test]
fn a_file_size_limit_ends_the_file_not_the_program() {
    let path = temp_session("size-limit");
    // 64 blocks of the shell's: the header and a few rounds fit, the
    // million allocations' events do not.
    let bin = env!("CARGO_BIN_EXE_env_only");
    let o = Command::new("sh")
        .args(["-c", "ulimit -f 64 && exec \"$0\" burst", bin])
        .env("PULSE_OUT", &path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "the program's own exit status: {:?} {err}", o.status);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "done\n", "its own output");
    assert_eq!(err.lines().count(), 1, "{err}");
    // The shell's unit: 512 bytes for dash, 1024 for bash.
    let limit: u64 = err
        .split("the file size limit (ulimit -f) of ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(limit == 32 << 10 || limit == 64 << 10, "{err}");
    assert!(std::fs::metadata(&path).unwrap().len() <= limit);
    let p = pulse_analysis::Profile::load(&path).expect("the file up to the limit loads");
    assert!(p.truncated.is_some() && p.memory.allocs > 0, "{:?}", p.truncated);
}

#[test]
fn a_program_killed_mid_run_names_its_sites_by_function_and_line() {
    let path = temp_session("killed-symbols");
    let mut child =
        Command::new(env!("CARGO_BIN_EXE_steady")).env("PULSE_OUT", &path).spawn().unwrap();
    // About a second of the loop, and enough chunks on disk that the first
    // rounds' (where its sites and their symbols are) went past the file's
    // buffer; no wait on a loaded machine is longer than 20 s.
    let t = std::time::Instant::now();
    while (t.elapsed() < Duration::from_secs(1)
        || std::fs::metadata(&path).map_or(0, |m| m.len()) < 256 << 10)
        && t.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let p = pulse_analysis::Profile::load(&path).expect("a truncated session still loads");
    assert!(p.trailer.is_none(), "killed: there is no trailer");
    // Every site was defined in the program's first rounds, long before
    // the kill: every address of theirs is named.
    assert_eq!(p.anomalies.unsymbolized_addresses, 0, "{:?}", p.anomalies);
    for (function, line) in [("steady::make_records", 11), ("steady::join_names", 16)] {
        let site = p
            .sites
            .keys()
            .copied()
            .find(|&s| p.symbols.stack(s).iter().any(|f| f.function == function));
        let site = site.unwrap_or_else(|| panic!("no site in {function}"));
        let frame = p.symbols.stack(site).into_iter().find(|f| f.function == function).unwrap();
        assert!(frame.file.ends_with("tests/src/bin/steady.rs"), "{frame:?}");
        assert_eq!(frame.line, line, "{frame:?}");
    }
}
