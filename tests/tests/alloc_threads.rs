//! Threads allocate, reallocate and free across threads; afterwards every
//! count is exact, no free is lost, and the session reads cleanly.

use std::sync::mpsc;

use pulse_tests::{check, temp_session};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

const THREADS: usize = 4;
const OPS: usize = 50_000;

fn main() {
    let path = temp_session("alloc_threads");
    let session = pulse::Session::builder().output(&path).start().expect("start session");

    // Producers send owned buffers to one consumer, which frees them: every
    // free of those happens on another thread than its allocation.
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let consumer = std::thread::spawn(move || {
        let mut n = 0usize;
        for buf in rx {
            n += buf.len();
        }
        n
    });
    let producers: Vec<_> = (0..THREADS)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                pulse::scope!("produce");
                let mut local: Vec<String> = Vec::new();
                for i in 0..OPS {
                    let mut v = Vec::with_capacity(8 + (i % 64));
                    v.extend(std::iter::repeat_n(t as u8, 8 + i % 200));
                    if i % 3 == 0 {
                        tx.send(v).expect("send");
                    } else {
                        local.push(format!("{t}-{i}"));
                        if local.len() > 100 {
                            local.clear();
                        }
                    }
                }
            })
        })
        .collect();
    drop(tx);
    for p in producers {
        p.join().expect("producer");
    }
    let received = consumer.join().expect("consumer");
    check(received > 0, "consumer received buffers");

    let path = session.finish().expect("finish session");
    let p = pulse_analysis::Profile::load(&path).expect("load session");
    let m = &p.memory;
    let t = p.trailer.as_ref().expect("trailer");
    for (key, replayed) in [
        ("allocs", m.allocs),
        ("frees", m.frees),
        ("reallocs", m.reallocs),
        ("bytes_allocated", m.bytes_allocated),
        ("bytes_freed", m.bytes_freed),
    ] {
        check(
            t.extra(key) == Some(replayed),
            format!("{key}: counted {:?}, replayed {replayed}", t.extra(key)),
        );
    }
    check(m.allocs >= (THREADS * OPS) as u64, format!("allocs {}", m.allocs));
    check(p.anomalies.reused_live_addresses == 0, format!("{:?}", p.anomalies));
    // Every block allocated in the session was freed in it; frees of blocks
    // allocated before the session (thread-spawn bookkeeping of the main
    // thread, say) are counted apart.
    check(
        m.bytes_allocated == m.bytes_freed + m.live_bytes_at_end || p.anomalies.unknown_frees > 0,
        "bytes balance",
    );
    check(m.live_bytes_at_end < 64 * 1024, format!("live at end {}", m.live_bytes_at_end));
    check(p.threads.len() > THREADS, format!("threads {}", p.threads.len()));
    let produce = p.scopes.values().find(|s| s.name == "produce").expect("scope produce");
    check(p.scope_times[&produce.id].count == THREADS as u64, "one produce scope per producer");
    println!("alloc_threads: ok ({} allocations on {} threads)", m.allocs, p.threads.len());
}
