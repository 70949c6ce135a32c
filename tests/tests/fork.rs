//! `fork()` with a session running: the child records nothing and cannot
//! start a session of its own; the parent's file is exact and holds none of
//! the child's work.

use std::process::Command;

use pulse_tests::temp_session;

#[test]
fn a_forked_child_leaves_the_parents_session_exact_and_records_nothing() {
    let path = temp_session("forker");
    let out = Command::new(env!("CARGO_BIN_EXE_forker"))
        .arg(&path)
        .env_remove("PULSE_OUT")
        .output()
        .expect("run forker");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), "child exited with 0", "{}", String::from_utf8_lossy(&out.stderr));

    let p = pulse_analysis::Profile::load(&path).expect("load");
    assert!(p.truncated.is_none(), "{:?}", p.truncated);
    let t = p.trailer.as_ref().expect("trailer");
    for (key, replayed) in [
        ("allocs", p.memory.allocs),
        ("frees", p.memory.frees),
        ("bytes_allocated", p.memory.bytes_allocated),
        ("bytes_freed", p.memory.bytes_freed),
    ] {
        assert_eq!(t.extra(key), Some(replayed), "{key}: counted, and replayed from the file");
    }
    assert_eq!(p.anomalies.reused_live_addresses, 0, "{:?}", p.anomalies);
    assert_eq!(p.anomalies.unknown_frees, 0, "{:?}", p.anomalies);
    // Nothing of the child: no block of its size, no scope only it entered,
    // and `shared` entered by the parent alone (twice).
    assert!(p.sites.values().all(|s| s.max_size != 4_242), "a child's block in the parent's file");
    assert!(p.scopes.values().all(|s| s.name != "child-only"));
    let shared = p.scopes.values().find(|s| s.name == "shared").expect("scope shared");
    assert_eq!(p.scope_times[&shared.id].count, 2);
    assert!(p.memory.allocs >= 2 * 1_000 + 200_000, "{}", p.memory.allocs);
}
