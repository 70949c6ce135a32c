//! Threads in overlapping waves — 2, 8 and 32 at a time — allocate,
//! reallocate and free (a third of their blocks freed by another thread),
//! enter scopes, and exit while the next wave starts. Afterwards every
//! count, byte total and the live set equal, exactly, an independent tally
//! kept by the inner allocator, and the session reads cleanly.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use pulse_tests::tally::Tally;
use pulse_tests::{check, temp_session};

#[global_allocator]
static ALLOC: pulse::Alloc<Tally> = pulse::Alloc::new(Tally::new());

const WAVES: usize = 4;
const OPS: usize = 1200;
/// Blocks each thread leaves live when the session ends.
const KEPT: usize = 3;

type Kept = Arc<Mutex<Vec<Vec<u8>>>>;

fn worker(t: usize, inbox: Receiver<Vec<u8>>, next: Sender<Vec<u8>>, kept: Kept) {
    pulse::scope!("worker");
    let mut mine: Vec<Vec<u8>> = Vec::new();
    for i in 0..OPS {
        pulse::scope!("op");
        let mut v: Vec<u8> = Vec::with_capacity(16 + (i * 7 + t) % 200);
        v.resize(v.capacity(), t as u8);
        // Grown past its capacity: a reallocation.
        v.reserve(v.len() + 64);
        match i % 3 {
            0 => next.send(v).expect("the neighbour outlives our sends"),
            1 => drop(v),
            _ => {
                mine.push(v);
                if mine.len() > 16 {
                    mine.swap_remove(i % 16);
                }
            }
        }
        while let Ok(b) = inbox.try_recv() {
            drop(b);
        }
    }
    kept.lock().unwrap().extend(mine.drain(..KEPT));
    drop(next);
    // The neighbour's last blocks, until it hangs up.
    for b in inbox {
        drop(b);
    }
}

/// Starts `n` threads, each sending a third of its blocks to the next.
fn wave(n: usize, kept: &Kept) -> Vec<JoinHandle<()>> {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| channel::<Vec<u8>>()).unzip();
    rxs.into_iter()
        .enumerate()
        .map(|(t, rx)| {
            let tx = txs[(t + 1) % n].clone();
            let kept = Arc::clone(kept);
            std::thread::spawn(move || worker(t, rx, tx, kept))
        })
        .collect()
}

fn run(threads: usize) {
    let path = temp_session(&format!("alloc_waves_{threads}"));
    let session = pulse::Session::builder().output(&path).start().expect("start");
    ALLOC.inner().open();
    let kept: Kept = Arc::default();
    let mut running = wave(threads, &kept);
    for _ in 1..WAVES {
        let next = wave(threads, &kept);
        for h in std::mem::replace(&mut running, next) {
            h.join().expect("worker");
        }
    }
    for h in running {
        h.join().expect("worker");
    }
    let want = ALLOC.inner().close();
    session.finish().expect("finish");
    let kept_blocks = kept.lock().unwrap().len();
    drop(kept);

    let p = pulse_analysis::Profile::load(&path).expect("load");
    let tag = format!("{threads} threads");
    check(p.truncated.is_none(), format!("{tag}: {:?}", p.truncated));
    let tr = p.trailer.as_ref().expect("trailer");
    check(tr.lost_events == 0, format!("{tag}: lost events"));
    let m = &p.memory;
    for (key, tallied, replayed) in [
        ("allocs", want.allocs, m.allocs),
        ("frees", want.frees, m.frees),
        ("reallocs", want.reallocs, m.reallocs),
        ("bytes_allocated", want.bytes_allocated, m.bytes_allocated),
        ("bytes_freed", want.bytes_freed, m.bytes_freed),
    ] {
        check(
            tr.extra(key) == Some(tallied) && replayed == tallied,
            format!(
                "{tag}: {key}: tallied {tallied}, counted {:?}, replayed {replayed}",
                tr.extra(key)
            ),
        );
    }
    check(m.failed == 0, format!("{tag}: failed {}", m.failed));
    // Every free in the session was of a block allocated in it, so the live
    // set at the end is exactly what the tally says was never freed.
    check(p.anomalies.unknown_frees == 0, format!("{tag}: {:?}", p.anomalies));
    check(p.anomalies.reused_live_addresses == 0, format!("{tag}: {:?}", p.anomalies));
    check(p.anomalies.unmatched_exits == 0, format!("{tag}: {:?}", p.anomalies));
    check(p.anomalies.open_at_end == 0, format!("{tag}: {:?}", p.anomalies));
    check(
        m.live_bytes_at_end == want.bytes_allocated - want.bytes_freed,
        format!(
            "{tag}: live bytes {} vs tallied {}",
            m.live_bytes_at_end,
            want.bytes_allocated - want.bytes_freed
        ),
    );
    check(
        m.live_blocks_at_end == want.allocs - want.frees,
        format!(
            "{tag}: live blocks {} vs tallied {}",
            m.live_blocks_at_end,
            want.allocs - want.frees
        ),
    );
    check(kept_blocks == threads * WAVES * KEPT, format!("{tag}: kept {kept_blocks}"));
    check(
        m.live_blocks_at_end >= kept_blocks as u64,
        format!("{tag}: the kept blocks are live at the end: {}", m.live_blocks_at_end),
    );
    let count = |name: &str| {
        let s =
            p.scopes.values().find(|s| s.name == name).unwrap_or_else(|| panic!("scope {name}"));
        p.scope_times[&s.id].count
    };
    check(count("worker") == (threads * WAVES) as u64, format!("{tag}: worker scopes"));
    check(count("op") == (threads * WAVES * OPS) as u64, format!("{tag}: op scopes"));
    let workers = p.threads.values().filter(|t| t.name != "main" && t.events > 0).count();
    check(workers >= threads * WAVES, format!("{tag}: {workers} threads in the file"));
    let ring_mib = tr.extra("pulse_ring_bytes").unwrap_or(0) as f64 / f64::from(1 << 20);
    println!(
        "alloc_waves: {tag} × {WAVES} waves ok ({} allocations, {} reallocations, {} frees; rings {ring_mib:.0} MiB)",
        m.allocs, m.reallocs, m.frees
    );
}

fn main() {
    for threads in [2, 8, 32] {
        run(threads);
    }
}
