//! One process runs many sessions one after another over the same code:
//! each session's file stands alone and is exact.
//!
//! The same allocation sites and scopes run in every session, on a thread
//! that lives through all of them (its ring and its site cache outlive
//! each session), on threads that start right as a session starts and end
//! right before it finishes, and on threads told to end at the very moment
//! the session finishes. Every file must read whole, define every site its
//! events name (with symbols: the sites are named), define its scopes,
//! name its threads, count exactly the threads that ran in it (no stale
//! events of threads from before it), and show no anomaly at all.
//!
//! `PULSE_TEST_SESSIONS` sets the number of sessions (default 100).

use std::hint::black_box;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use pulse_tests::{check, temp_session};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

/// Threads started with each session and joined before it finishes.
const WORKERS: usize = 3;
/// Threads told to end as the session finishes.
const EDGES: usize = 2;

/// The same sites in every session: a few blocks of several sizes, some
/// grown, all freed before returning.
#[inline(never)]
fn work(seed: usize) -> usize {
    pulse::scope!("work");
    let mut kept: Vec<Vec<u8>> = Vec::new();
    for i in 0..64 {
        let mut v = vec![seed as u8; 16 + (i * 13 + seed) % 300];
        if i % 4 == 0 {
            v.reserve(512);
        }
        kept.push(black_box(v));
    }
    let s: usize = kept.iter().map(Vec::len).sum();
    drop(kept);
    let text = black_box(format!("{seed}-{s}"));
    s + text.len()
}

/// Orders for the long-lived thread: a mutex and a condition variable,
/// which allocate nothing (a channel's blocks would be allocated in one
/// session and freed in another).
#[derive(Default)]
struct Orders {
    /// (orders given, orders done, quit)
    state: Mutex<(u64, u64, bool)>,
    changed: Condvar,
}

/// The long-lived thread: works whenever asked, for every session.
fn steady(orders: &Orders) {
    let mut s = orders.state.lock().unwrap();
    loop {
        if s.2 {
            return;
        }
        if s.0 > s.1 {
            drop(s);
            black_box(work(7));
            s = orders.state.lock().unwrap();
            s.1 += 1;
            orders.changed.notify_all();
            continue;
        }
        s = orders.changed.wait(s).unwrap();
    }
}

/// Has the long-lived thread run `work` once, and waits for it.
fn order(orders: &Orders) {
    let mut s = orders.state.lock().unwrap();
    s.0 += 1;
    let want = s.0;
    orders.changed.notify_all();
    while s.1 < want {
        s = orders.changed.wait(s).unwrap();
    }
}

fn main() {
    let sessions: usize =
        std::env::var("PULSE_TEST_SESSIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let paths: Vec<_> = (0..sessions).map(|i| temp_session(&format!("in_a_row_{i}"))).collect();
    let orders = Arc::new(Orders::default());
    let long_lived = {
        let orders = Arc::clone(&orders);
        std::thread::Builder::new()
            .name(String::from("steady"))
            .spawn(move || steady(&orders))
            .expect("spawn")
    };
    let mut summary = Vec::with_capacity(sessions);
    for (i, path) in paths.iter().enumerate() {
        let session = pulse::Session::builder().output(path).start().expect("start session");
        // Threads that start as the session starts.
        let workers: Vec<JoinHandle<usize>> = (0..WORKERS)
            .map(|w| {
                std::thread::Builder::new()
                    .name(format!("worker-{w}"))
                    .spawn(move || work(w))
                    .expect("spawn")
            })
            .collect();
        // Threads that end as the session finishes: they work, say so, then
        // wait for the word, which comes right before `finish`.
        let (worked_tx, worked_rx) = channel::<()>();
        let edges: Vec<(Sender<()>, JoinHandle<()>)> = (0..EDGES)
            .map(|e| {
                let (tx, rx) = channel::<()>();
                let worked = worked_tx.clone();
                let h = std::thread::Builder::new()
                    .name(format!("edge-{e}"))
                    .spawn(move || {
                        black_box(work(100 + e));
                        let _ = worked.send(());
                        let _ = rx.recv();
                    })
                    .expect("spawn");
                (tx, h)
            })
            .collect();
        drop(worked_tx);
        black_box(work(1));
        order(&orders);
        for h in workers {
            black_box(h.join().expect("worker"));
        }
        for _ in 0..EDGES {
            check(worked_rx.recv().is_ok(), "an edge thread worked");
        }
        // The edge threads may end before, during or after the session's
        // last round; each must show as a complete thread or not at all.
        let mut edge_handles = Vec::with_capacity(EDGES);
        for (tx, h) in edges {
            drop(tx);
            edge_handles.push(h);
        }
        let path = session.finish().expect("finish session");
        for h in edge_handles {
            h.join().expect("edge");
        }
        summary.push(verify(i, &path));
    }
    orders.state.lock().unwrap().2 = true;
    orders.changed.notify_all();
    long_lived.join().expect("steady");
    let sites: Vec<usize> = summary.iter().map(|s| s.0).collect();
    let threads: Vec<usize> = summary.iter().map(|s| s.1).collect();
    println!(
        "sessions_in_a_row: {sessions} sessions ok (sites {}..={}, threads {}..={} each)",
        sites.iter().min().unwrap_or(&0),
        sites.iter().max().unwrap_or(&0),
        threads.iter().min().unwrap_or(&0),
        threads.iter().max().unwrap_or(&0),
    );
}

/// Checks one session's file alone; returns its site and thread counts.
fn verify(i: usize, path: &std::path::Path) -> (usize, usize) {
    let tag = format!("session {i}");
    let p = pulse_analysis::Profile::load(path).expect("load session");
    check(p.truncated.is_none(), format!("{tag}: cut short: {:?}", p.truncated));
    check(p.trailer.is_some(), format!("{tag}: no trailer"));
    let a = &p.anomalies;
    check(a.undefined_sites == 0, format!("{tag}: sites without a stack: {a:?}"));
    check(a.unknown_frees == 0, format!("{tag}: {a:?}"));
    check(a.reused_live_addresses == 0, format!("{tag}: {a:?}"));
    check(a.unmatched_exits == 0 && a.open_at_end == 0, format!("{tag}: {a:?}"));
    check(a.clock_steps_back == 0, format!("{tag}: {a:?}"));
    check(a.unsymbolized_addresses == 0, format!("{tag}: {a:?}"));
    // Every site the events name is defined in this file, and the sites of
    // `work` are named: some stack of a site passes through it.
    let named = p
        .sites
        .keys()
        .filter(|&&s| s != 0)
        .filter(|&&s| p.symbols.stack(s).iter().any(|f| f.function.contains("work")))
        .count();
    check(named >= 2, format!("{tag}: {named} sites name `work`"));
    // The threads are exactly those that ran in this session, each named.
    let mut names: Vec<&str> =
        p.threads.values().filter(|t| t.events > 0).map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    let mut want = vec![String::from("main"), String::from("steady")];
    want.extend((0..WORKERS).map(|w| format!("worker-{w}")));
    want.extend((0..EDGES).map(|e| format!("edge-{e}")));
    want.sort_unstable();
    check(names == want, format!("{tag}: threads {names:?}, want {want:?}"));
    let work = p.scopes.values().find(|s| s.name == "work").expect("scope work defined");
    let runs = p.scope_times.get(&work.id).map_or(0, |t| t.count);
    check(runs == (2 + WORKERS + EDGES) as u64, format!("{tag}: {runs} runs of `work`"));
    (p.sites.len(), names.len())
}
