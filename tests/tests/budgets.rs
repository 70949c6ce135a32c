//! Allocation budgets in tests that run in parallel: every figure exact
//! while the other tests of this binary allocate beside it. CI runs this
//! binary with `--test-threads=8`, and under nextest (a process per test).

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::process::Command;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use pulse::budget::{self, Bound, Budget};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

/// One session at a time in a process: the tests that start one take turns.
static SESSIONS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `n` boxes of `size` bytes, made and dropped one at a time, yielding in
/// between so that the tests' threads interleave.
fn churn(n: u64, size: usize) {
    for _ in 0..n {
        black_box(vec![0u8; size]);
        std::thread::yield_now();
    }
}

/// Twelve tests of distinct sizes, each exact while the others run.
macro_rules! parallel {
    ($($name:ident: $n:expr, $size:expr;)*) => {$(
        #[test]
        fn $name() {
            for _ in 0..3 {
                let (_, u) = budget::measure(|| churn($n, $size));
                let (n, size) = ($n as u64, $size as u64);
                assert_eq!(
                    (u.allocations, u.reallocations, u.bytes, u.peak_bytes, u.live_blocks),
                    (n, 0, n * size, size, 0),
                    "{u:?}"
                );
            }
        }
    )*};
}

parallel! {
    parallel_01: 101, 8;
    parallel_02: 202, 24;
    parallel_03: 303, 40;
    parallel_04: 404, 56;
    parallel_05: 505, 72;
    parallel_06: 606, 88;
    parallel_07: 707, 104;
    parallel_08: 808, 120;
    parallel_09: 909, 136;
    parallel_10: 1010, 152;
    parallel_11: 1111, 168;
    parallel_12: 1212, 184;
}

#[test]
fn a_vector_that_grows() {
    let (len, u) = budget::measure(|| {
        let mut v = Vec::new();
        for i in 0..1000u32 {
            v.push(i);
        }
        v.len()
    });
    assert_eq!(len, 1000);
    // Growth by doubling from 4 elements (16 bytes) to 1024 (4096 bytes):
    // one allocation, then eight reallocations.
    assert_eq!((u.allocations, u.reallocations), (9, 8), "{u:?}");
    assert_eq!(u.bytes, (4..=12).map(|k| 1u64 << k).sum::<u64>());
    assert_eq!((u.peak_bytes, u.live_bytes, u.live_blocks), (4096, 0, 0));
}

#[test]
fn peak_and_what_is_left() {
    let (kept, u) = budget::measure(|| {
        let a = vec![1u8; 3000];
        let b = vec![2u8; 1000];
        drop(a);
        let c = vec![3u8; 500];
        drop(b);
        c
    });
    assert_eq!((u.allocations, u.bytes, u.peak_bytes), (3, 4500, 4000), "{u:?}");
    assert_eq!((u.live_blocks, u.live_bytes), (1, 500));
    // The returned vector is the one live block, and its site says so.
    let live: Vec<_> = u.sites().iter().filter(|s| s.live_blocks() > 0).collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].live_bytes(), 500);
    assert!(!live[0].frames().is_empty());
    // At the peak (a and b live), each site held its own block.
    let mut at_peak: Vec<u64> = u.sites().iter().map(|s| s.peak_bytes()).collect();
    at_peak.sort_unstable();
    assert_eq!(at_peak, [0, 1000, 3000], "{u:?}");
    drop(kept);
}

#[test]
fn scoped_threads_count_in_the_budget() {
    let (_, u) = budget::measure(|| {
        pulse::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| churn(250, 64));
            }
        })
    });
    // The threads' work, and nothing of the standard library's starting
    // and joining them.
    assert_eq!((u.allocations, u.bytes, u.live_blocks), (4 * 250, 4 * 250 * 64, 0), "{u:?}");
}

#[test]
fn spawned_threads_count_in_the_budget() {
    let (_, u) = budget::measure(|| {
        let handles: Vec<_> = (0..3).map(|_| pulse::thread::spawn(|| churn(300, 32))).collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
    });
    // The handles' vector, then the threads' work.
    assert_eq!(u.allocations, 1 + 3 * 300, "{u:?}");
    let handles = 3 * std::mem::size_of::<std::thread::JoinHandle<()>>() as u64;
    assert_eq!((u.bytes, u.live_blocks), (handles + 3 * 300 * 32, 0));
}

#[test]
fn std_threads_do_not_count_unless_attributed() {
    // A thread started by std alone is not the test's: its work is not
    // counted, but attributing it by hand is.
    let (_, u) = budget::measure(|| {
        let to = budget::current().expect("measured thread counts");
        std::thread::scope(|s| {
            s.spawn(|| churn(100, 16));
            s.spawn(move || {
                let _in = to.enter();
                churn(50, 16)
            });
        });
    });
    assert!(u.allocations >= 50 && u.allocations < 100, "{u:?}");
}

/// Polls `fut` to completion on this thread.
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// A future that allocates `n` blocks, one per poll.
async fn allocating(n: u64) -> u64 {
    let mut total = 0;
    for i in 0..n {
        total += black_box(vec![i as u8; 40]).len() as u64;
        std::future::ready(()).await;
        YieldOnce(false).await;
    }
    total
}

struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn futures_count_where_they_are_polled() {
    let (total, u) = budget::measure(|| block_on(allocating(200)));
    assert_eq!(total, 200 * 40);
    assert_eq!((u.allocations, u.bytes), (200, 200 * 40), "{u:?}");
    // Bound to the budget, a future counts on another thread too.
    let (_, u) = budget::measure(|| {
        let fut = budget::current().unwrap().bind(allocating(120));
        budget::outside(|| std::thread::spawn(|| block_on(fut)).join().unwrap())
    });
    assert_eq!((u.allocations, u.bytes), (120, 120 * 40), "{u:?}");
}

#[test]
fn blocks_freed_elsewhere_are_freed() {
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let (done, freed) = std::sync::mpsc::channel::<()>();
    // A thread that is not the test's frees what the test sends it.
    let sink = std::thread::spawn(move || {
        for v in rx {
            drop(v);
            done.send(()).unwrap();
        }
    });
    let (_, u) = budget::measure(|| {
        for _ in 0..100 {
            tx.send(vec![7u8; 256]).unwrap();
        }
        freed.iter().take(100).count()
    });
    drop(tx);
    sink.join().unwrap();
    let vectors = u.sites().iter().find(|s| s.bytes() == 100 * 256).expect("the vectors' site");
    assert_eq!((vectors.allocations(), vectors.live_blocks()), (100, 0), "{u:?}");
}

#[test]
fn a_budget_closes_while_other_threads_free_its_blocks() {
    // Four threads outside the budget free what it allocated, some before
    // and some after it closes: every free finds the block counted or gone,
    // never a closed budget.
    let (tx, rx) = std::sync::mpsc::channel::<Box<[u8; 48]>>();
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || {
                while let Ok(b) = rx.lock().unwrap().recv() {
                    black_box(b);
                }
            })
        })
        .collect();
    for _ in 0..50 {
        let (_, u) = budget::measure(|| {
            for _ in 0..200 {
                tx.send(Box::new([1; 48])).unwrap();
            }
        });
        let boxes = u.sites().iter().find(|s| s.bytes() == 200 * 48).expect("the boxes' site");
        assert_eq!(boxes.allocations(), 200);
        assert!(boxes.live_blocks() <= 200, "{u:?}");
    }
    drop(tx);
    workers.into_iter().for_each(|w| w.join().unwrap());
}

#[test]
fn budgets_hold_while_a_session_records() {
    // The allocator records every event for the session and counts for
    // the budget, both exact.
    let _one = SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    let path = pulse_tests::temp_session("budgets");
    let session = pulse::Session::builder().output(&path).start().unwrap();
    let (_, u) = budget::measure(|| churn(500, 24));
    session.finish().unwrap();
    assert_eq!((u.allocations, u.bytes, u.live_blocks), (500, 500 * 24, 0), "{u:?}");
    let profile = pulse_analysis::Profile::load(&path).unwrap();
    assert!(profile.memory.allocs >= 500, "{:?}", profile.memory);
}

#[test]
fn guards_dropped_in_any_order_leave_no_dangling_budget() {
    let (to, _) = budget::measure(|| budget::current().unwrap());
    let a = to.enter();
    let b = to.enter();
    drop(a);
    assert!(budget::current().is_some(), "b still attributes the thread");
    drop(b);
    assert!(budget::current().is_none());
    drop(to);
    // With another budget alive, this thread's allocations take the budget
    // path: they must find no tally (valgrind in CI checks no freed one is read).
    let (_, u) = budget::measure(|| {
        std::thread::scope(|s| s.spawn(|| black_box(vec![0u8; 64]).len()).join().unwrap())
    });
    assert_eq!(u.live_blocks, 0, "{u:?}");
}

#[test]
fn a_block_grown_by_a_thread_outside_the_budget_stays_in_it() {
    // A pool thread, not the test's, grows the vector the test allocated.
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let (back_tx, back) = std::sync::mpsc::channel::<Vec<u8>>();
    let pool = std::thread::spawn(move || {
        for mut v in rx {
            v.extend_from_slice(&[1; 4096]);
            back_tx.send(v).unwrap();
        }
    });
    let (v, u) = budget::measure(|| {
        tx.send(Vec::with_capacity(16)).unwrap();
        back.recv().unwrap()
    });
    drop(tx);
    pool.join().unwrap();
    assert!(v.capacity() >= 4096);
    let grown = u.sites().iter().find(|s| s.live_blocks() == 1).expect("the vector's site");
    assert!(grown.live_bytes() >= 4096, "{u:?}");
    assert!(u.reallocations >= 1, "{u:?}");
}

thread_local! {
    static CACHE: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[test]
fn a_scoped_threads_thread_locals_are_gone_when_the_scope_returns() {
    // A per-thread cache filled inside the budget is freed as its thread
    // exits: pulse::thread::scope returns after that, every time.
    for _ in 0..50 {
        let (_, u) = budget::measure(|| {
            pulse::thread::scope(|s| {
                s.spawn(|| CACHE.with(|c| c.borrow_mut().extend(0..100)));
            })
        });
        assert_eq!(u.live_blocks, 0, "{u:?}");
    }
}

#[test]
fn a_block_freed_inside_pulse_is_freed() {
    // The builder's path is the program's block; the session's start frees
    // it inside pulse's own code.
    let _one = SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    let path = pulse_tests::temp_session("budgets-inside");
    let (_, u) = budget::measure(|| {
        let builder = pulse::Session::builder().output(&path);
        budget::outside(|| builder.start().unwrap().finish().unwrap());
    });
    assert_eq!(u.live_blocks, 0, "{u:?}");
}

#[test]
fn captured_output_does_not_count() {
    let (_, u) = budget::measure(|| {
        for i in 0..200 {
            println!("line {i} of the test's own output, captured by the harness");
        }
    });
    assert_eq!((u.allocations, u.live_blocks), (0, 0), "{u:?}");
    // Where the harness captures the output (its default), the growth of
    // its buffer was seen and left out; with `--nocapture` (and under
    // nextest) the lines go straight to the standard output's buffer.
    let nocapture = std::env::args().any(|a| a == "--nocapture")
        || std::env::var_os("RUST_TEST_NOCAPTURE").is_some()
        || std::env::var_os("NEXTEST_RUN_ID").is_some();
    assert!(nocapture || u.excluded > 0, "{u:?}");
}

#[test]
fn bounds_are_checked() {
    let b = Budget::new().allocations(2).bytes(100).peak_bytes(60).nothing_live();
    let (v, u) = b.measure(|| {
        let a = vec![0u8; 50];
        let b = vec![0u8; 40];
        let c = vec![0u8; 30];
        drop((a, b));
        c
    });
    let over: Vec<(Bound, u64, u64)> =
        u.overruns(&b).iter().map(|o| (o.what, o.limit, o.got)).collect();
    assert_eq!(
        over,
        [
            (Bound::Allocations, 2, 3),
            (Bound::Bytes, 100, 120),
            (Bound::PeakBytes, 60, 120),
            (Bound::LiveBlocks, 0, 1)
        ]
    );
    drop(v);
    let fine = Budget::new().allocations(1).bytes(8).nothing_live();
    assert_eq!(fine.check(|| black_box(Box::new(7u64)).as_ref() + 1), 8);
}

#[test]
fn time_is_the_fastest_run() {
    let b = Budget::new().time(Duration::from_secs(5), 3);
    let (_, u) = b.measure(|| std::thread::sleep(Duration::from_millis(2)));
    let fastest = u.fastest.expect("timed");
    assert!(fastest >= Duration::from_millis(2) && u.overruns(&b).is_empty(), "{u:?}");
    let tight = Budget::new().time(Duration::from_micros(1), 2);
    let (_, u) = tight.measure(|| std::thread::sleep(Duration::from_millis(1)));
    assert_eq!(u.overruns(&tight)[0].what, Bound::Nanoseconds);
}

/// `n` rounds of arithmetic the optimiser cannot remove.
#[inline(never)]
fn work(n: u64) -> u64 {
    (0..black_box(n)).fold(0u64, |a, i| black_box(a.wrapping_mul(31).wrapping_add(i)))
}

#[test]
fn instructions_are_counted_where_the_processor_counts_them() {
    let b = Budget::new().instructions(1_000_000_000, 3);
    let (small, u) = b.measure(|| work(10_000));
    let (_, big) = b.measure(|| work(1_000_000));
    black_box(small);
    match (u.instructions, &u.instructions_unavailable) {
        // A processor that counts: ten thousand rounds take tens of
        // thousands of instructions, a million a hundred times that.
        (Some(n), None) => {
            let m = big.instructions.expect("counted once, counted again");
            assert!((10_000..10_000_000).contains(&n), "{u:?}");
            assert!(m > 50 * n && m < 200 * n, "{n} then {m}");
            assert!(u.overruns(&b).is_empty());
            let tight = Budget::new().instructions(n / 2, 2);
            let (_, t) = tight.measure(|| work(10_000));
            assert_eq!(t.overruns(&tight)[0].what, Bound::Instructions, "{t:?}");
        }
        // No counter (a virtual machine): the bound is not checked, and
        // the usage says why.
        (None, Some(why)) => {
            assert!(why.contains("perf_event_open"), "{why}");
            assert!(u.overruns(&b).is_empty());
            eprintln!("instruction counting is not available here: {why}");
        }
        other => panic!("counted and not: {other:?}"),
    }
}

#[test]
#[should_panic(expected = "budgets do not nest")]
fn budgets_do_not_nest() {
    budget::measure(|| budget::measure(|| ()));
}

#[inline(never)]
fn make_words() -> Vec<String> {
    ["one", "two", "three"].iter().map(|w| w.to_string()).collect()
}

/// Fails on purpose: run by `a_failing_budget_names_its_sites` as a child
/// process.
#[test]
#[ignore = "fails on purpose; run as a child process"]
fn child_over_budget() {
    Budget::new().allocations(1).check(|| black_box(make_words()).len());
}

#[test]
fn a_failing_budget_names_its_sites() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_over_budget", "--test-threads=1"])
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    let source = include_str!("budgets.rs");
    let call = "Budget::new().allocations(1).check(";
    let line = source.lines().position(|l| l.trim_start().starts_with(call)).unwrap() + 1;
    for want in [
        format!("allocation budget exceeded at tests/tests/budgets.rs:{line}:"),
        "  allocations: 4, budget 1".to_string(),
        "the sites by allocations".to_string(),
        "budgets::make_words".to_string(),
        "tests/tests/budgets.rs:".to_string(),
    ] {
        assert!(text.contains(&want), "no {want:?} in:\n{text}");
    }
}
