//! pulse's totals, peak and live-at-exit equal dhat-rs's, to the byte, for
//! the same deterministic programs run in separate processes.

use std::process::Command;

use pulse_tests::{temp_session, workloads};

#[derive(Debug, PartialEq, Eq)]
struct Stats {
    total_blocks: u64,
    total_bytes: u64,
    max_blocks: u64,
    max_bytes: u64,
    curr_blocks: u64,
    curr_bytes: u64,
}

fn dhat(workload: &str) -> Stats {
    let dir = temp_session("dhat").parent().unwrap().to_path_buf();
    let out = Command::new(env!("CARGO_BIN_EXE_exact_dhat"))
        .arg(workload)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let n: Vec<u64> = text.split_whitespace().map(|w| w.parse().unwrap()).collect();
    Stats {
        total_blocks: n[0],
        total_bytes: n[1],
        max_blocks: n[2],
        max_bytes: n[3],
        curr_blocks: n[4],
        curr_bytes: n[5],
    }
}

fn pulse(workload: &str) -> Stats {
    let path = temp_session(&format!("exact_{workload}"));
    let status =
        Command::new(env!("CARGO_BIN_EXE_exact_pulse")).arg(workload).arg(&path).status().unwrap();
    assert!(status.success());
    let p = pulse_analysis::Profile::load(&path).unwrap();
    let m = &p.memory;
    // The heap at its peak, broken down by site, adds up to the peak.
    let at_peak: u64 = p.sites.values().map(|s| s.bytes_at_peak).sum();
    let blocks_at_peak: u64 = p.sites.values().map(|s| s.blocks_at_peak).sum();
    assert_eq!(
        (at_peak, blocks_at_peak),
        (m.peak_bytes, m.peak_blocks),
        "{workload}: the heap at the peak"
    );
    // dhat counts a reallocation as one more block of its new size.
    Stats {
        total_blocks: m.allocs + m.reallocs,
        total_bytes: m.bytes_allocated,
        max_blocks: m.peak_blocks,
        max_bytes: m.peak_bytes,
        curr_blocks: m.live_blocks_at_end,
        curr_bytes: m.live_bytes_at_end,
    }
}

#[test]
fn pulse_and_dhat_agree_to_the_byte() {
    for &w in workloads::NAMES {
        let (d, p) = (dhat(w), pulse(w));
        if workloads::single_threaded(w) {
            assert_eq!(p, d, "{w}: pulse (left) and dhat (right) differ");
        } else {
            assert_eq!((p.total_blocks, p.total_bytes), (d.total_blocks, d.total_bytes), "{w}");
            assert_eq!((p.curr_blocks, p.curr_bytes), (d.curr_blocks, d.curr_bytes), "{w}");
        }
    }
}
