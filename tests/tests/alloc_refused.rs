//! The inner allocator runs out of memory on every 7th request of the
//! program. Under pulse the program sees exactly the refusals it sees
//! without pulse, pulse records each of them, and nothing crashes.

use std::process::Command;

use pulse_tests::temp_session;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(out.status.success(), "{:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
}

#[test]
fn every_refusal_reaches_the_program_unchanged_and_is_recorded() {
    let plain = run(&mut Command::new(env!("CARGO_BIN_EXE_oom_plain")));
    let path = temp_session("oom");
    let profiled =
        run(Command::new(env!("CARGO_BIN_EXE_oom_pulse")).arg(&path).env_remove("PULSE_OUT"));
    assert_eq!(profiled, plain, "the program sees the same refusals with pulse as without");

    // "refused R (B bytes) at [...]; allocs A; reallocs N"
    let number = |key: &str| -> u64 {
        let at = plain.find(key).unwrap_or_else(|| panic!("{key} in {plain}")) + key.len();
        plain[at..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (refused, allocs, reallocs) = (number("refused"), number("; allocs"), number("; reallocs"));
    // Every 7th of 3000 requests, a quarter of which are frees that are never refused.
    assert!(refused >= 300, "{plain}");

    let p = pulse_analysis::Profile::load(&path).expect("load");
    assert!(p.truncated.is_none() && p.trailer.is_some(), "the session finished");
    let t = p.trailer.as_ref().unwrap();
    assert_eq!(p.memory.failed, refused, "every refusal is recorded");
    assert_eq!(t.extra("alloc_failed"), Some(refused), "and counted");
    // Besides the workload's own allocations, the two vectors it fills
    // (allocated before its first request, freed after its last).
    assert_eq!(p.memory.allocs, allocs + 2);
    assert_eq!(p.memory.reallocs, reallocs);
    assert_eq!(t.extra("allocs"), Some(p.memory.allocs));
    // Live at the end: only the vector of refused indices, which the program
    // prints after the session; every block the workload kept was freed.
    let indices = (pulse_tests::refusing::REQUESTS * std::mem::size_of::<usize>()) as u64;
    assert_eq!((p.memory.live_blocks_at_end, p.memory.live_bytes_at_end), (1, indices));
    assert_eq!(p.anomalies.unknown_frees, 0);
}
