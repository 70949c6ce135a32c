//! Merged sessions add up: totals, live-at-end and scope counts of the
//! merge are the sums of its parts, with no block or thread mixed up.

use std::process::Command;

use pulse_analysis::{merge, Profile};
use pulse_tests::temp_session;

fn run(mode: &str) -> std::path::PathBuf {
    let path = temp_session(&format!("merge-{mode}"));
    let out =
        Command::new(env!("CARGO_BIN_EXE_job")).arg(mode).env("PULSE_OUT", &path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

#[test]
fn a_merge_is_the_sum_of_its_sessions() {
    let (a, b) = (run("fast"), run("slow"));
    let merged = temp_session("merged");
    let summary = merge(&[&a, &b], std::fs::File::create(&merged).unwrap()).unwrap();
    assert_eq!(summary.sessions, 2);
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    let (pa, pb, m) =
        (Profile::load(&a).unwrap(), Profile::load(&b).unwrap(), Profile::load(&merged).unwrap());
    assert_eq!(m.memory.allocs, pa.memory.allocs + pb.memory.allocs);
    assert_eq!(m.memory.reallocs, pa.memory.reallocs + pb.memory.reallocs);
    assert_eq!(m.memory.bytes_allocated, pa.memory.bytes_allocated + pb.memory.bytes_allocated);
    assert_eq!(
        m.memory.live_bytes_at_end,
        pa.memory.live_bytes_at_end + pb.memory.live_bytes_at_end
    );
    assert_eq!(m.anomalies.reused_live_addresses, 0, "{:?}", m.anomalies);
    assert_eq!(m.anomalies.unknown_frees, pa.anomalies.unknown_frees + pb.anomalies.unknown_frees);
    assert_eq!(m.threads.len(), pa.threads.len() + pb.threads.len());
    for name in ["build", "sort", "sum"] {
        let count = |p: &Profile| {
            let (id, _) = p.scopes.iter().find(|(_, s)| s.name == name).expect(name);
            p.scope_times[id].count
        };
        assert_eq!(count(&m), count(&pa) + count(&pb), "{name}");
    }
    // The merged file is a session like any other: the report's cross-checks hold.
    let report = pulse_analysis::report(&m, &Default::default());
    assert!(report.warnings.iter().all(|w| !w.contains("were lost")), "{:?}", report.warnings);
    assert!(
        m.sites.keys().all(|s| *s == 0 || m.symbols.location(*s).is_some()),
        "every site resolves"
    );
}

/// Each leak row's verdict, by location and bytes, sorted.
fn verdicts(p: &Profile) -> Vec<(String, u64, pulse_analysis::Trend)> {
    let mut v: Vec<_> = pulse_analysis::leaks(p)
        .into_iter()
        .map(|l| (format!("{} {}", l.function, l.place), l.bytes, l.trend))
        .collect();
    v.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    v
}

#[test]
fn merging_runs_changes_no_runs_verdict() {
    // leaky_cache: a cache that never evicts (a leak) beside caches that
    // fill and hold. Merged, each run's sites keep the verdicts they had.
    let runs: Vec<std::path::PathBuf> = (0..2)
        .map(|i| {
            let path = temp_session(&format!("leaky-cache-{i}"));
            let out = Command::new(env!("CARGO_BIN_EXE_leaky_cache"))
                .arg("8000")
                .env("PULSE_OUT", &path)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            path
        })
        .collect();
    let merged = temp_session("merged-leaky");
    merge(&runs, std::fs::File::create(&merged).unwrap()).unwrap();
    let mut each: Vec<_> = runs.iter().flat_map(|r| verdicts(&Profile::load(r).unwrap())).collect();
    each.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let together = verdicts(&Profile::load(&merged).unwrap());
    let leaks = |v: &[(String, u64, pulse_analysis::Trend)]| {
        v.iter().filter(|l| l.2 == pulse_analysis::Trend::Growing).count()
    };
    assert!(leaks(&each) >= 2, "each run has its leak: {each:#?}");
    assert_eq!(leaks(&together), leaks(&each), "merged:\n{together:#?}\nruns:\n{each:#?}");
    // Row for row: the same lines, bytes and verdicts.
    assert_eq!(together, each);
}
