//! A budget's count on a real program against dhat-rs's: jq filters run by
//! jaq's interpreter (single-threaded and deterministic) measured by
//! `pulse::budget` in this test's process, and the same run under dhat-rs
//! (`real_dhat`) in a process of its own. Blocks and bytes handed out must
//! be the same (dhat-rs counts a reallocation as a block, as budgets do),
//! but for the one buffer `real_dhat`'s printing adds, and so must the peak.

use std::process::Command;

use pulse::budget;

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

const RECORDS: usize = 300;

#[test]
fn a_budget_counts_jq_as_dhat_rs_does() {
    let (out, u) = budget::measure(|| pulse_realworld::jq(RECORDS).unwrap());
    let dhat = Command::new(env!("CARGO_BIN_EXE_real_dhat"))
        .args(["jq", &RECORDS.to_string()])
        .env("DHAT_OUT", std::env::temp_dir().join(format!("dhat-{}.json", std::process::id())))
        .output()
        .unwrap();
    assert!(dhat.status.success());
    let _ = std::fs::remove_file(
        std::env::temp_dir().join(format!("dhat-{}.json", std::process::id())),
    );
    let stderr = String::from_utf8_lossy(&dhat.stderr);
    let figures: Vec<u64> = stderr
        .lines()
        .find_map(|l| l.strip_prefix("dhat: "))
        .expect("dhat's totals")
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    let [total_blocks, total_bytes, _max_blocks, max_bytes, ..] = figures[..] else {
        panic!("{stderr}")
    };
    println!(
        "budget: {} blocks, {} bytes, peak {}; dhat-rs: {total_blocks} blocks, \
         {total_bytes} bytes, peak {max_bytes}",
        u.allocations, u.bytes, u.peak_bytes
    );
    // real_dhat also prints jq's result, through stdout's buffer: one block
    // of 1 KiB that the measured call does not allocate.
    let apart = (total_blocks - u.allocations, total_bytes - u.bytes);
    assert!(apart == (0, 0) || apart == (1, 1024), "blocks and bytes apart: {apart:?}");
    assert_eq!(u.peak_bytes, max_bytes, "peak");
    drop(out);
}
