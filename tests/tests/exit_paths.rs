//! However a profiled program ends, its session file is complete.

use std::path::Path;
use std::process::Command;

use pulse_tests::temp_session;

fn finished(path: &Path) -> pulse_analysis::Profile {
    let p = pulse_analysis::Profile::load(path).unwrap_or_else(|e| panic!("{e}"));
    assert!(p.truncated.is_none(), "{:?}", p.truncated);
    assert!(p.trailer.is_some(), "no trailer");
    assert!(p.memory.allocs > 0, "no allocations recorded");
    p
}

#[test]
fn pulse_out_alone_profiles_a_program_that_only_swapped_the_allocator() {
    for (mode, code) in [("return", Some(0)), ("exit", Some(0)), ("panic", Some(101))] {
        let path = temp_session(&format!("env_only_{mode}"));
        let out = Command::new(env!("CARGO_BIN_EXE_env_only"))
            .arg(mode)
            .env("PULSE_OUT", &path)
            .output()
            .expect("run env_only");
        assert_eq!(out.status.code(), code, "{mode}: {}", String::from_utf8_lossy(&out.stderr));
        let p = finished(&path);
        // 1000 strings plus the vector that holds them.
        assert!(p.memory.allocs >= 1001, "{mode}: {} allocations", p.memory.allocs);
    }
}

#[test]
fn without_pulse_out_nothing_is_written() {
    let dir = temp_session("none").parent().unwrap().join("no-env");
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_env_only"))
        .current_dir(&dir)
        .env_remove("PULSE_OUT")
        .status()
        .expect("run env_only");
    assert!(status.success());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn a_session_started_in_code_finishes_however_main_ends() {
    for (mode, code) in
        [("return", Some(0)), ("exit", Some(3)), ("panic", Some(101)), ("thread-panic", Some(0))]
    {
        let path = temp_session(&format!("session_exit_{mode}"));
        let out = Command::new(env!("CARGO_BIN_EXE_session_exit"))
            .arg(&path)
            .arg(mode)
            .env_remove("PULSE_OUT")
            .output()
            .expect("run session_exit");
        assert_eq!(out.status.code(), code, "{mode}: {}", String::from_utf8_lossy(&out.stderr));
        let p = finished(&path);
        let work = p.scopes.values().find(|s| s.name == "work").expect("scope work");
        assert_eq!(p.scope_times[&work.id].count, 1, "{mode}");
        let ending = p.scopes.values().find(|s| s.name == "ending").expect("scope ending");
        // `ending` is closed by its guard on return and panic; on
        // process::exit no destructor runs, so the report closes it at the
        // session's end and says so.
        assert_eq!(p.scope_times[&ending.id].count, 1, "{mode}");
        assert_eq!(p.anomalies.open_at_end, u64::from(mode == "exit"), "{mode}");
    }
}
