//! Threads that outlive the session, and panics inside scopes.
//!
//! Four threads allocate and free without pause while a session starts,
//! stops, and a second one starts and stops under them. Each holds a block
//! allocated in the first session and frees it between the two. Neither file
//! loses or doubles an event: each reads to its trailer, its replay equals
//! the allocator's own counts, the held blocks are live at the first one's
//! end and absent from the second. Meanwhile scopes are left by panics, on
//! the main thread (caught) and on threads (which die of them): every entry
//! is closed once, and later scopes do not nest under the dead ones.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use pulse_analysis::Profile;
use pulse_tests::{check, temp_session};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

const THREADS: usize = 4;
/// The size of the block each thread holds across the end of the first session.
const HELD: usize = 5_555;
const PANICS: u64 = 6;

/// What the main thread tells the threads: 0 run, 1 free the held block, 2 stop.
static PHASE: AtomicUsize = AtomicUsize::new(0);
static HELD_FREED: AtomicUsize = AtomicUsize::new(0);

fn churn(ops: Arc<AtomicU64>) {
    let mut held = Some(vec![7u8; HELD]);
    let mut keep: Vec<Vec<u8>> = Vec::new();
    let mut i = 0usize;
    loop {
        let phase = PHASE.load(Ordering::Acquire);
        if phase >= 1 && held.take().is_some() {
            HELD_FREED.fetch_add(1, Ordering::AcqRel);
        }
        if phase == 2 {
            break;
        }
        let v = vec![i as u8; 16 + i % 300];
        if i % 5 == 0 {
            keep.push(v);
            if keep.len() > 50 {
                keep.swap_remove(i % 50);
            }
        }
        i += 1;
        ops.fetch_add(1, Ordering::Relaxed);
    }
}

/// Waits until the threads have done `more` operations beyond `from`.
fn wait_for(ops: &AtomicU64, more: u64) {
    let from = ops.load(Ordering::Relaxed);
    while ops.load(Ordering::Relaxed) < from + more {
        std::thread::yield_now();
    }
}

/// A panic inside a scope on the main thread, caught; then one on a thread
/// that dies of it. Each allocates inside the scope first.
fn panics_in_scopes() {
    for i in 0..PANICS / 2 {
        let r = std::panic::catch_unwind(|| {
            pulse::scope!("doomed");
            let v = vec![1u8; 4_321];
            pulse::scope!("doomed-inner");
            if i < PANICS {
                panic!("deliberate panic in a scope");
            }
            v.len()
        });
        check(r.is_err(), "the panic reached catch_unwind");
        let t = std::thread::spawn(|| {
            pulse::scope!("doomed");
            std::hint::black_box(vec![2u8; 4_321]);
            panic!("deliberate panic in a scope on a thread");
        });
        check(t.join().is_err(), "the thread died of its panic");
        pulse::scope!("after");
        std::hint::black_box(vec![3u8; 64]);
    }
}

/// The session reads to its trailer and its replay equals the counts.
fn exact(p: &Profile, tag: &str) {
    check(p.truncated.is_none(), format!("{tag}: {:?}", p.truncated));
    let t = p.trailer.as_ref().expect("trailer");
    check(t.lost_events == 0, format!("{tag}: lost events"));
    let m = &p.memory;
    for (key, replayed) in [
        ("allocs", m.allocs),
        ("frees", m.frees),
        ("reallocs", m.reallocs),
        ("bytes_allocated", m.bytes_allocated),
        ("bytes_freed", m.bytes_freed),
    ] {
        check(
            t.extra(key) == Some(replayed),
            format!("{tag}: {key}: counted {:?}, replayed {replayed}", t.extra(key)),
        );
    }
    check(p.anomalies.reused_live_addresses == 0, format!("{tag}: {:?}", p.anomalies));
}

fn held_live(p: &Profile) -> (u64, u64) {
    p.sites
        .values()
        .filter(|s| s.max_size == HELD as u64)
        .fold((0, 0), |(a, l), s| (a + s.allocs, l + s.live_blocks_at_end))
}

fn main() {
    std::panic::set_hook(Box::new(|info| {
        std::hint::black_box(format!("hook: {info}"));
    }));
    let first = temp_session("lifecycle_first");
    let second = temp_session("lifecycle_second");
    let ops = Arc::new(AtomicU64::new(0));

    let session = pulse::Session::builder().output(&first).start().expect("start");
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let ops = Arc::clone(&ops);
            std::thread::spawn(move || churn(ops))
        })
        .collect();
    wait_for(&ops, 20_000);
    panics_in_scopes();
    wait_for(&ops, 20_000);
    session.finish().expect("finish the first session under running threads");

    // Between the sessions: the held blocks are freed, the threads run on.
    PHASE.store(1, Ordering::Release);
    while HELD_FREED.load(Ordering::Acquire) < THREADS {
        std::thread::yield_now();
    }
    wait_for(&ops, 20_000);

    let session = pulse::Session::builder().output(&second).start().expect("start again");
    wait_for(&ops, 20_000);
    PHASE.store(2, Ordering::Release);
    for t in threads {
        t.join().expect("thread");
    }
    session.finish().expect("finish the second session");
    let _ = std::panic::take_hook();

    let p1 = Profile::load(&first).expect("load the first session");
    exact(&p1, "first");
    check(
        held_live(&p1) == (THREADS as u64, THREADS as u64),
        format!("held blocks {:?}", held_live(&p1)),
    );
    let scope = |p: &Profile, name: &str| {
        p.scopes.values().find(|s| s.name == name).map(|s| (s.id, p.scope_times[&s.id].count))
    };
    let (doomed, n) = scope(&p1, "doomed").expect("scope doomed");
    check(n == PANICS, format!("doomed closed {n} times, want {PANICS}"));
    check(
        scope(&p1, "doomed-inner").map(|s| s.1) == Some(PANICS / 2),
        "doomed-inner closed once each",
    );
    check(scope(&p1, "after").map(|s| s.1) == Some(PANICS / 2), "after closed once each");
    check(
        p1.anomalies.unmatched_exits == 0 && p1.anomalies.open_at_end == 0,
        format!("{:?}", p1.anomalies),
    );
    // `after` runs outside `doomed`: it is an outermost scope, never its child.
    let (after, _) = scope(&p1, "after").unwrap();
    let tree = &p1.call_tree;
    check(
        tree.roots().iter().any(|&r| tree.nodes[r].scope == after),
        "after is an outermost scope",
    );
    check(
        tree.nodes
            .iter()
            .all(|n| n.scope != after || n.parent.is_none_or(|p| tree.nodes[p].scope != doomed)),
        "after never nests under doomed",
    );
    let doomed_allocs =
        p1.sites.values().filter(|s| s.max_size == 4_321).map(|s| s.allocs).sum::<u64>();
    check(doomed_allocs == PANICS, format!("allocations in doomed scopes: {doomed_allocs}"));

    let p2 = Profile::load(&second).expect("load the second session");
    exact(&p2, "second");
    check(held_live(&p2) == (0, 0), "the held blocks belong to the first session only");
    check(p2.memory.allocs > 0, "the running threads were recorded again");
    println!(
        "alloc_lifecycle: ok ({} + {} allocations; {} threads ran through both sessions)",
        p1.memory.allocs, p2.memory.allocs, THREADS
    );
}
