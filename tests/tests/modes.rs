//! PULSE_ALLOC chooses what is recorded: every allocation with its stack
//! (`full`), exact counts only (`count`), stacks on a byte-weighted sample
//! (`sample`), or nothing (`off`).

use std::process::Command;

use pulse_analysis::Profile;
use pulse_format::RecordKind;
use pulse_tests::temp_session;

fn run(bin: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(bin);
    c.args(args)
        .env_remove("PULSE_ALLOC")
        .env_remove("PULSE_SAMPLE_BYTES")
        .env_remove("PULSE_STACK_DEPTH");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run")
}

fn session(mode: &str) -> Profile {
    let path = temp_session(&format!("mode_{mode}"));
    let path_s = path.to_str().unwrap();
    let out =
        run(env!("CARGO_BIN_EXE_env_only"), &[], &[("PULSE_OUT", path_s), ("PULSE_ALLOC", mode)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Profile::load(&path).unwrap()
}

#[test]
fn full_records_every_allocation_with_a_site() {
    let p = session("full");
    assert!(p.count(RecordKind::Alloc) >= 1001);
    assert!(p.count(RecordKind::SiteDef) > 0 && p.count(RecordKind::Symbol) > 0);
    assert!(!p.sites.contains_key(&0), "every allocation has a stack");
}

#[test]
fn count_writes_no_events_but_exact_totals() {
    let full = session("full");
    let p = session("count");
    assert_eq!(p.count(RecordKind::Alloc), 0);
    assert!(p.memory.counted_only);
    assert_eq!(p.memory.allocs, full.memory.allocs);
    assert_eq!(p.memory.bytes_allocated, full.memory.bytes_allocated);
}

#[test]
fn off_records_no_allocation() {
    let p = session("off");
    assert_eq!(p.count(RecordKind::Alloc), 0);
    assert_eq!(p.memory.allocs, 0);
    assert!(p.trailer.is_some());
}

#[test]
fn sample_counts_everything_and_estimates_sites_without_bias() {
    let path = temp_session("mode_sample_maps");
    let out = run(
        env!("CARGO_BIN_EXE_exact_pulse"),
        &["maps", path.to_str().unwrap()],
        &[("PULSE_ALLOC", "sample"), ("PULSE_SAMPLE_BYTES", "8192")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let p = Profile::load(&path).unwrap();
    // Totals are exact: every allocation is an event.
    let full_path = temp_session("mode_full_maps");
    assert!(run(env!("CARGO_BIN_EXE_exact_pulse"), &["maps", full_path.to_str().unwrap()], &[])
        .status
        .success());
    let full = Profile::load(&full_path).unwrap();
    assert_eq!(p.memory.allocs, full.memory.allocs);
    assert_eq!(p.memory.bytes_allocated, full.memory.bytes_allocated);
    // Only a sample carries a stack…
    assert!(p.stacked_events < full.stacked_events / 2, "{} stacks", p.stacked_events);
    // …and the per-site estimates, scaled to the exact totals, add up to
    // them (each rounded on its own); the unsampled remainder counts for
    // nothing (tests/sampling.rs checks each site against full tracking).
    assert_eq!(p.sites.get(&0).map_or(0, |s| s.allocs), 0);
    let sampled: u64 = p.sites.values().map(|s| s.bytes).sum();
    let truth = full.memory.bytes_allocated;
    assert!(
        sampled.abs_diff(truth) <= p.sites.len() as u64,
        "estimated {sampled} bytes of {truth}"
    );
}

#[test]
fn a_bad_setting_is_one_line_and_the_program_runs_on() {
    let path = temp_session("mode_bad");
    let out = run(
        env!("CARGO_BIN_EXE_env_only"),
        &[],
        &[("PULSE_OUT", path.to_str().unwrap()), ("PULSE_ALLOC", "everything")],
    );
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("PULSE_ALLOC=everything is not valid"), "{err}");
    assert!(err.trim_end().ends_with("; ignored"), "{err}");
    // The session is recorded as if the variable were not set.
    let p = pulse_analysis::Profile::load(&path).unwrap();
    assert!(p.trailer.is_some() && !p.sites.is_empty(), "a whole session in full mode");
}

#[test]
fn a_shallow_stack_depth_is_not_taken_for_missing_frame_pointers() {
    for depth in ["1", "2", "3"] {
        let path = temp_session(&format!("depth_{depth}"));
        let out = run(
            env!("CARGO_BIN_EXE_env_only"),
            &[],
            &[("PULSE_OUT", path.to_str().unwrap()), ("PULSE_STACK_DEPTH", depth)],
        );
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("frame pointers"), "depth {depth}: {err}");
    }
}

#[test]
fn a_blank_setting_is_an_unset_one() {
    let path = temp_session("blank_settings");
    let blank = [
        ("PULSE_STACK_DEPTH", ""),
        ("PULSE_SAMPLE_BYTES", " "),
        ("PULSE_METRICS_BUCKETS", ""),
        ("PULSE_ALLOC", ""),
    ];
    let mut env = vec![("PULSE_OUT", path.to_str().unwrap())];
    env.extend(blank);
    let out = run(env!("CARGO_BIN_EXE_env_only"), &[], &env);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "nothing to say of a blank value");
    let p = Profile::load(&path).unwrap();
    assert!(p.trailer.is_some() && !p.sites.is_empty(), "a whole session in full mode");
    // A blank PULSE_OUT starts nothing, and names no file.
    let out = run(env!("CARGO_BIN_EXE_env_only"), &[], &[("PULSE_OUT", "  ")]);
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    assert!(!std::path::Path::new("  ").exists(), "a file named by the blanks");
}
