//! pulse wraps another real allocator as well as the system one: mimalloc.

use pulse_tests::{check, temp_session};

#[global_allocator]
static ALLOC: pulse::Alloc<mimalloc::MiMalloc> = pulse::Alloc::new(mimalloc::MiMalloc);

fn main() {
    let path = temp_session("alloc_mimalloc");
    let session = pulse::Session::builder().output(&path).start().expect("start");
    let mut kept = Vec::new();
    for i in 0..10_000usize {
        let v = vec![i as u8; 8 + i % 512];
        if i % 100 == 0 {
            kept.push(v);
        }
    }
    let mut grown: Vec<u64> = Vec::new();
    grown.extend(0..100_000u64);
    drop(grown);
    let n = kept.len();
    let path = session.finish().expect("finish");
    drop(kept);
    let p = pulse_analysis::Profile::load(&path).expect("load");
    let m = &p.memory;
    check(n == 100, "kept");
    check(m.allocs >= 10_001, format!("allocs {}", m.allocs));
    check(
        m.live_blocks_at_end >= 100 && m.live_blocks_at_end < 110,
        format!("live {}", m.live_blocks_at_end),
    );
    check(
        p.anomalies.reused_live_addresses == 0 && p.anomalies.unknown_frees == 0,
        format!("{:?}", p.anomalies),
    );
    let t = p.trailer.as_ref().expect("trailer");
    check(
        t.extra("allocs") == Some(m.allocs),
        format!("allocs {:?} vs {}", t.extra("allocs"), m.allocs),
    );
    println!("alloc_mimalloc: ok ({} allocations through mimalloc)", m.allocs);
}
