//! Every allocation, free and reallocation of a deterministic program is in
//! the session, to the byte: totals, peak and live at end.

use std::hint::black_box;

use pulse_tests::{check, temp_session};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

fn main() {
    let path = temp_session("alloc_exact");
    let session = pulse::Session::builder().output(&path).start().expect("start session");

    // 100 boxes of 1..=100 bytes: 5050 bytes in 100 blocks.
    let boxes: Vec<Box<[u8]>> = {
        pulse::scope!("boxes");
        (1..=100usize).map(|n| vec![7u8; n].into_boxed_slice()).collect()
    };
    // The outer Vec: one block of 100 * 16 bytes (exact capacity from the iterator).
    // Free the even-sized half: 2 + 4 + … + 100 = 2550 bytes, 50 blocks.
    let kept: Vec<Box<[u8]>> = boxes.into_iter().filter(|b| b.len() % 2 == 1).collect();
    // A vector grown by realloc from 8 to 4096 bytes (u64 elements: 1→512).
    let mut grown: Vec<u64> = Vec::with_capacity(1);
    for i in 0..512u64 {
        grown.push(black_box(i));
    }
    // One deliberate leak of 1 MiB.
    let leak_line = line!() + 1;
    let leaked: &'static mut [u8] = Box::leak(vec![1u8; 1 << 20].into_boxed_slice());
    black_box(&leaked);
    let kept_len = kept.len();
    drop(kept);
    drop(grown);

    let path = session.finish().expect("finish session");
    let p = pulse_analysis::Profile::load(&path).expect("load session");
    let m = &p.memory;

    // Allocations: 100 boxes, the boxes' Vec (collect), the kept Vec (reuses
    // the allocation in place: `into_iter().filter().collect()` specializes),
    // the grown Vec's first block, the leak.
    check(kept_len == 50, format!("kept {kept_len}"));
    check(m.failed == 0, format!("failed {}", m.failed));
    check(p.anomalies.unknown_frees == 0, format!("unknown frees {:?}", p.anomalies));
    check(p.anomalies.reused_live_addresses == 0, format!("{:?}", p.anomalies));
    // Every allocation was freed but the leak.
    check(m.live_blocks_at_end == 1, format!("live blocks at end {}", m.live_blocks_at_end));
    check(m.live_bytes_at_end == 1 << 20, format!("live bytes at end {}", m.live_bytes_at_end));
    // What the replay counted equals what the allocator counted in process.
    let t = p.trailer.as_ref().expect("trailer");
    check(
        t.extra("allocs") == Some(m.allocs),
        format!("allocs {:?} vs {}", t.extra("allocs"), m.allocs),
    );
    check(
        t.extra("frees") == Some(m.frees),
        format!("frees {:?} vs {}", t.extra("frees"), m.frees),
    );
    check(
        t.extra("reallocs") == Some(m.reallocs),
        format!("reallocs {:?} vs {}", t.extra("reallocs"), m.reallocs),
    );
    check(
        t.extra("bytes_allocated") == Some(m.bytes_allocated),
        format!("bytes {:?} vs {}", t.extra("bytes_allocated"), m.bytes_allocated),
    );
    // The growth from 1 to 512 elements doubles: 1→4 (the first push grows to
    // the minimum non-zero capacity of 4), then 8, 16, … 512: 8 reallocs.
    check(m.reallocs >= 7 && m.reallocs <= 9, format!("reallocs {}", m.reallocs));
    // The peak is reached with the 1 MiB leak live next to the 50 odd boxes,
    // the grown vector at 4 KiB and the kept Vec.
    check(
        m.peak_bytes >= (1 << 20) + 2500 + 4096
            && m.peak_bytes <= (1 << 20) + 5050 + 4096 + 1600 + 1600,
        format!("peak {}", m.peak_bytes),
    );
    // Bytes in = bytes out + live at end.
    check(
        m.bytes_allocated == m.bytes_freed + m.live_bytes_at_end,
        format!("{} != {} + {}", m.bytes_allocated, m.bytes_freed, m.live_bytes_at_end),
    );
    // The leak's site is the user's own line, not the allocator plumbing.
    let (leak_site, _) =
        p.sites.iter().find(|(_, s)| s.live_bytes_at_end == 1 << 20).expect("leak site");
    let at = p.symbols.location(*leak_site).expect("leak location");
    check(at.function == "alloc_exact::main", format!("leak in {at:?}"));
    check(
        at.file.ends_with("alloc_exact.rs") && at.line == leak_line,
        format!("leak at {at:?}, want line {leak_line}"),
    );
    let boxes = p.scopes.values().find(|s| s.name == "boxes").expect("scope boxes");
    check(p.scope_times[&boxes.id].count == 1, "scope boxes entered once");
    println!("alloc_exact: ok ({} allocations, peak {} bytes)", m.allocs, m.peak_bytes);
}
