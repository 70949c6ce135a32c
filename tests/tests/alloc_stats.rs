//! In-process queries: the meter measures a block exactly, and the heap
//! statistics agree with the session file, in count mode as in full mode.

use pulse::AllocMode;
use pulse_tests::{check, temp_session};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

fn main() {
    for mode in [AllocMode::Count, AllocMode::Full] {
        let path = temp_session(&format!("alloc_stats_{}", mode.name()));
        let session = pulse::Session::builder().output(&path).mode(mode).start().expect("start");
        let before = pulse::heap_stats();

        // Nothing below allocates between the meter's reads but the code measured.
        let meter = pulse::AllocMeter::start();
        let mut v: Vec<u64> = Vec::with_capacity(100);
        v.extend(0..200u64);
        let s = String::from("measured");
        let d = meter.read();
        drop((v, s));
        let e = meter.read();
        check(d.allocs == 2, format!("{mode:?}: allocs {d:?}"));
        check(d.reallocs == 1, format!("{mode:?}: reallocs {d:?}"));
        check(d.bytes_allocated == 800 + 1600 + 8, format!("{mode:?}: bytes {d:?}"));
        check(d.live_bytes() == 1600 + 8, format!("{mode:?}: live {d:?}"));
        check(e.frees == 2 && e.live_bytes() == 0, format!("{mode:?}: after drop {e:?}"));

        let after = pulse::heap_stats();
        let delta = after.totals.since(before.totals);
        check(delta.allocs >= 2 && delta.frees >= 2, format!("{mode:?}: {delta:?}"));
        let me = after
            .threads
            .iter()
            .find(|t| t.thread == pulse::current_thread_id())
            .expect("this thread");
        check(me.peak_bytes >= 1608, format!("{mode:?}: peak {}", me.peak_bytes));

        let path = session.finish().expect("finish");
        let p = pulse_analysis::Profile::load(&path).expect("load");
        check(
            p.memory.counted_only == (mode == AllocMode::Count),
            format!("{mode:?}: counted_only"),
        );
        check(p.memory.allocs >= 2, format!("{mode:?}: file allocs {}", p.memory.allocs));
    }
    println!("alloc_stats: ok");
}
