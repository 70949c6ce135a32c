//! One scope enter+exit: pulse (recording, paused, no session), a bare pair
//! of TSC reads and of `Instant::now()`, quantum-pulse's `profile!`,
//! puffin's `profile_scope!` and a `tracing` span entered under a timing
//! layer (tracing-subscriber's registry; the layer adds each entry's
//! duration to a per-callsite total), each with an empty body and a ~50 ns
//! body, on one thread and on two, all in one run.
//!
//!     cargo bench -p pulse-bench --bench scopes            # the full run, ~3 minutes
//!     cargo bench -p pulse-bench --bench scopes -- --quick # seconds
//!
//! Figures are nanoseconds per iteration, the median of repeated runs, with
//! the body's own cost (measured alone in the same run) subtracted. With
//! pulse's `enabled` feature off, `scope!` expands to nothing: its cost is
//! the bare loop's, zero by construction.

use std::hint::black_box;
use std::time::Instant;

#[derive(Debug)]
enum QpOp {
    Work,
}
impl quantum_pulse::Operation for QpOp {}

static SITE: pulse::ScopeSite = pulse::ScopeSite::new("bench");

/// A timing subscriber for `tracing`, as a user would write one: the entry
/// instant in the span's extensions, the elapsed time added up at exit.
struct TimingLayer;

static TRACED_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl<S> tracing_subscriber::Layer<S> for TimingLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_enter(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().replace(Instant::now());
        }
    }

    fn on_exit(&self, id: &tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(start) = span.extensions().get::<Instant>() {
                let ns = start.elapsed().as_nanos() as u64;
                TRACED_NS.fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

#[inline(always)]
fn rdtsc() -> u64 {
    pulse::clock::tsc()
}

/// About 50 ns of dependent arithmetic.
#[inline(always)]
fn body(x: u64) -> u64 {
    let mut h = x;
    for _ in 0..24 {
        h = black_box(h.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(7));
    }
    h
}

type Case = (&'static str, fn(u64, bool) -> u64);

fn run(iters: u64, work: bool, f: impl Fn(u64, bool) -> u64) -> f64 {
    let t = Instant::now();
    let mut acc = 0u64;
    for i in 0..iters {
        acc = acc.wrapping_add(f(i, work));
    }
    black_box(acc);
    t.elapsed().as_nanos() as f64 / iters as f64
}

fn cases() -> Vec<Case> {
    vec![
        ("bare loop (= pulse compiled out)", |i, w| if w { body(i) } else { i }),
        ("TSC pair", |i, w| {
            let a = rdtsc();
            let v = if w { body(i) } else { i };
            black_box(rdtsc().wrapping_sub(a)) ^ v
        }),
        ("Instant::now() pair", |i, w| {
            let a = Instant::now();
            let v = if w { body(i) } else { i };
            black_box(a.elapsed().as_nanos() as u64) ^ v
        }),
        ("pulse scope", |i, w| {
            let _g = pulse::ScopeGuard::enter(&SITE);
            if w {
                body(i)
            } else {
                i
            }
        }),
        ("quantum-pulse profile!", |i, w| {
            quantum_pulse::profile!(QpOp::Work, {
                if w {
                    body(i)
                } else {
                    i
                }
            })
        }),
        ("puffin profile_scope!", |i, w| {
            puffin::profile_scope!("bench");
            if w {
                body(i)
            } else {
                i
            }
        }),
        ("tracing span, timing layer", |i, w| {
            let _s = tracing::info_span!("bench").entered();
            if w {
                body(i)
            } else {
                i
            }
        }),
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Iterations timed together before the collector is given time to drain:
/// 2 events each, well inside a thread's ring.
const BURST: u64 = 3_000;

/// Median ns per iteration over `reps`. `burst`: time batches of [`BURST`]
/// iterations, pausing (untimed) between them so the collector keeps up:
/// the cost on the program's thread. Otherwise one long loop: the sustained
/// rate, bounded by how fast the collector drains.
fn measure(
    threads: usize,
    iters: u64,
    reps: usize,
    work: bool,
    burst: bool,
    f: fn(u64, bool) -> u64,
) -> f64 {
    let per_rep = (0..reps)
        .map(|_| {
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    std::thread::spawn(move || {
                        let r = if burst {
                            let batches = (iters / BURST).max(1);
                            let mut total = 0.0;
                            for _ in 0..batches {
                                total += run(BURST, work, f);
                                std::thread::sleep(std::time::Duration::from_millis(2));
                            }
                            total / batches as f64
                        } else {
                            run(iters, work, f)
                        };
                        // puffin buffers scopes per frame: close one now and then.
                        puffin::GlobalProfiler::lock().new_frame();
                        r
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap_or(f64::NAN)).sum::<f64>() / threads as f64
        })
        .collect();
    median(per_rep)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let smoke = !std::env::args().any(|a| a == "--bench") && !quick;
    let (iters, reps) = if smoke {
        (10_000, 1)
    } else if quick {
        (200_000, 3)
    } else {
        (600_000, 7)
    };
    puffin::set_scopes_on(true);
    {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(TimingLayer);
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    }
    let dir = std::env::temp_dir().join(format!("pulse-bench-scopes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let session = pulse::Session::builder()
        .output(dir.join("scopes.pulse"))
        .mode(pulse::AllocMode::Off)
        .counters(false)
        .start()
        .expect("start session");

    println!(
        "scope enter+exit: ns per iteration (median of {reps}), the bare loop's cost subtracted"
    );
    println!("ratio: against a bare pair of TSC reads, empty body, same thread count, same run");
    let columns = [(1, false), (1, true), (2, false), (2, true)];
    for burst in [true, false] {
        println!();
        if burst {
            println!("on the program's thread (batches of {BURST}, the collector keeping up):");
        } else {
            println!("sustained ({iters} in a row per thread: bounded by the collector draining the rings):");
        }
        println!(
            "{:<32} {:>19} {:>19} {:>19} {:>19}",
            "",
            "1 thread, empty",
            "1 thread, 50ns body",
            "2 threads, empty",
            "2 threads, 50ns body"
        );
        let m = |f: fn(u64, bool) -> u64| -> Vec<f64> {
            columns.iter().map(|&(t, w)| measure(t, iters, reps, w, burst, f)).collect()
        };
        let all = cases();
        let bare = m(all[0].1);
        let tsc = m(all[1].1);
        let mut rows: Vec<(&str, Vec<f64>)> = vec![("TSC pair", tsc.clone())];
        for (name, f) in &all[2..] {
            rows.push((name, m(*f)));
        }
        rows.push((
            "pulse scope, thread paused",
            m(|i, w| {
                pulse::pause();
                let _g = pulse::ScopeGuard::enter(&SITE);
                if w {
                    body(i)
                } else {
                    i
                }
            }),
        ));
        for (name, v) in rows {
            let mut line = format!("{name:<32}");
            for (i, x) in v.iter().enumerate() {
                let cost = (x - bare[i]).max(0.0);
                let base = (tsc[i / 2 * 2] - bare[i / 2 * 2]).max(0.1);
                line.push_str(&format!(" {:>8.1} ns {:>6.2}x", cost, cost / base));
            }
            println!("{line}");
        }
    }
    session.finish().expect("finish session");
    let off =
        cases()[2..].iter().find(|c| c.0 == "pulse scope").map(|c| c.1).unwrap_or(cases()[0].1);
    let none: Vec<String> = columns
        .iter()
        .map(|&(t, w)| {
            format!(
                "{:.1} ns",
                (measure(t, iters, reps, w, true, off)
                    - measure(t, iters, reps, w, true, cases()[0].1))
                .max(0.0)
            )
        })
        .collect();
    println!();
    println!(
        "pulse scope with no session recording: {} (one relaxed load at each end)",
        none.join(", ")
    );
    println!("pulse scope compiled out (enabled feature off): the bare loop, 0 ns by construction");
    black_box(TRACED_NS.load(std::sync::atomic::Ordering::Relaxed));
    let _ = std::fs::remove_dir_all(&dir);
}
