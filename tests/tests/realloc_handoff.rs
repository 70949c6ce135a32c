//! 32 and 64 threads hand blocks around a ring of channels, and each block
//! is reallocated (moved) by a thread other than the one that allocated it,
//! then freed or handed on again. A moving `realloc` releases the old block
//! inside the inner allocator, before its thread can publish the event, so
//! another thread may be handed that address first; a thread waiting for
//! room in its full ring widens that gap to many collector rounds. The
//! replay must still be exact: every count, byte total and the live set
//! equal an independent tally kept by the inner allocator, and no address
//! is ever live twice.
//!
//! `PULSE_TEST_ROUNDS` repeats the whole (each round two sessions) that
//! many times in the one process (default 1); `PULSE_TEST_OPS` sets each
//! thread's iterations (default 1500).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use pulse_tests::tally::Tally;
use pulse_tests::{check, temp_session};

#[global_allocator]
static ALLOC: pulse::Alloc<Tally> = pulse::Alloc::new(Tally::new());

/// Iterations per thread; `PULSE_TEST_OPS` overrides it.
const OPS: usize = 1500;
/// Blocks each thread leaves live when the session ends.
const KEPT: usize = 2;

type Kept = Arc<Mutex<Vec<Vec<u8>>>>;

fn worker(t: usize, ops: usize, inbox: Receiver<Vec<u8>>, next: Sender<Vec<u8>>, kept: Kept) {
    let mut mine: Vec<Vec<u8>> = Vec::new();
    let take = |mut b: Vec<u8>, next: &Sender<Vec<u8>>, mine: &mut Vec<Vec<u8>>| {
        // Moved by this thread, which did not allocate it.
        let hops = b[0];
        b.reserve(b.capacity() + 64 + t);
        b.push(hops);
        if hops < 2 {
            b[0] = hops + 1;
            next.send(b).expect("the neighbour outlives our sends");
        } else if b.len() % 5 == 0 && mine.len() < 8 {
            b.shrink_to_fit();
            mine.push(b);
        }
    };
    for i in 0..ops {
        let mut v: Vec<u8> = vec![0; 8 + (i * 7 + t) % 120];
        v.reserve(v.len() + 32);
        match i % 3 {
            0 | 1 => next.send(v).expect("the neighbour outlives our sends"),
            _ => drop(v),
        }
        while let Ok(b) = inbox.try_recv() {
            take(b, &next, &mut mine);
        }
        if mine.len() > 6 {
            mine.swap_remove(i % 6);
        }
    }
    while mine.len() < KEPT {
        mine.push(vec![1; 40]);
    }
    kept.lock().unwrap().extend(mine.drain(..KEPT));
    drop(mine);
    drop(next);
    // The neighbour's last blocks, until it hangs up: moved, then freed.
    for mut b in inbox {
        b.reserve(b.capacity() + 1);
    }
}

fn run(threads: usize, ops: usize, round: usize) {
    let path = temp_session(&format!("realloc_handoff_{threads}"));
    let session = pulse::Session::builder().output(&path).start().expect("start");
    ALLOC.inner().open();
    let kept: Kept = Arc::default();
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..threads).map(|_| channel::<Vec<u8>>()).unzip();
    let handles: Vec<_> = rxs
        .into_iter()
        .enumerate()
        .map(|(t, rx)| {
            let tx = txs[(t + 1) % threads].clone();
            let kept = Arc::clone(&kept);
            std::thread::spawn(move || worker(t, ops, rx, tx, kept))
        })
        .collect();
    drop(txs);
    for h in handles {
        h.join().expect("worker");
    }
    let want = ALLOC.inner().close();
    session.finish().expect("finish");
    let kept_blocks = kept.lock().unwrap().len();

    let p = pulse_analysis::Profile::load(&path).expect("load");
    let tag = format!("round {round}, {threads} threads");
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
    let a = &p.anomalies;
    check(
        a.reused_live_addresses == 0 && a.unknown_frees == 0,
        format!("{tag}: an address live twice: {a:?}"),
    );
    check(a.undefined_sites == 0 && a.clock_steps_back == 0, format!("{tag}: {a:?}"));
    check(
        m.live_bytes_at_end == want.bytes_allocated - want.bytes_freed
            && m.live_blocks_at_end == want.allocs - want.frees,
        format!(
            "{tag}: live {} bytes in {} blocks, tallied {} in {}",
            m.live_bytes_at_end,
            m.live_blocks_at_end,
            want.bytes_allocated - want.bytes_freed,
            want.allocs - want.frees
        ),
    );
    check(kept_blocks == threads * KEPT, format!("{tag}: kept {kept_blocks}"));
    println!(
        "realloc_handoff: {tag} ok ({} allocations, {} reallocations, {} frees)",
        m.allocs, m.reallocs, m.frees
    );
    drop(kept);
}

fn main() {
    let rounds: usize =
        std::env::var("PULSE_TEST_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let ops: usize =
        std::env::var("PULSE_TEST_OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(OPS);
    for round in 0..rounds {
        for threads in [32, 64] {
            run(threads, ops, round);
        }
    }
}
