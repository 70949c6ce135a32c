//! A small service with typed operations, for the metrics endpoint's tests
//! (`tests/tests/metrics*.rs`): it is scraped while it runs and compared
//! with what it prints of its own `pulse::stats()`.
//!
//! `metrics_service ITERATIONS [--pace-us N] [--go] [--builder ADDR]`
//!
//! - `--go`: waits for a line on stdin before the work (the test sets up
//!   its clients, or Prometheus its first scrape, meanwhile);
//! - `--pace-us N`: sleeps N µs between iterations;
//! - `--builder ADDR`: starts its own session, metrics on ADDR and no file
//!   (`Session::builder().metrics(ADDR).write_file(false)`), and prints
//!   `METRICS <address>`; otherwise the session is `PULSE_METRICS`'s (and
//!   `PULSE_OUT`'s);
//! - `--file PATH`: starts its own session writing PATH
//!   (`Session::builder().output(PATH)`), printing `METRICS <address>` when
//!   `PULSE_METRICS` serves it metrics.
//!
//! Then it prints `ELAPSED <ns>` (the work's wall time), a `STAT` line per
//! operation (name and category as Rust debug strings, count, total, mean,
//! p50, p99 in ns, allocations, bytes), `HEAP <live bytes> <live blocks>
//! <peak bytes>` and `READY`, and waits for stdin to close: the program is
//! idle while the test scrapes it.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

#[derive(pulse::Operation)]
enum Op {
    #[category(name = "Requests", description = "Serving requests")]
    Parse,
    #[category(name = "Requests")]
    Render,
    /// A category whose name needs escaping in a label value.
    #[category(name = "Storage \"hot\" \\ tier\nB", description = "Looking records up")]
    Lookup,
    #[category(name = "Storage \"hot\" \\ tier\nB")]
    Flush,
}

/// One request: parse a query, look its records up, render the answer;
/// every 50th, a flush that waits on "the disk" (a 1 ms sleep).
fn request(i: u64, table: &HashMap<String, u64>) -> usize {
    let query = format!("user={};items={},{},{}", i % 97, i % 13, i % 7, i % 5);
    let fields: Vec<String> = pulse::profile!(Op::Parse, {
        query.split(';').flat_map(|kv| kv.split(['=', ','])).map(str::to_owned).collect()
    });
    let found: Vec<u64> = pulse::profile!(Op::Lookup, {
        fields.iter().filter_map(|f| table.get(f).copied()).collect()
    });
    let page = pulse::profile!(Op::Render, {
        let mut page = String::new();
        for (n, v) in found.iter().enumerate() {
            page.push_str(&format!("<li id=\"{n}\">{v:>12}</li>\n"));
        }
        // Some CPU work of a fixed size beside the formatting.
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in page.bytes().cycle().take(4000) {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        std::hint::black_box(h);
        page
    });
    if i % 50 == 0 {
        pulse::profile!(Op::Flush, { std::thread::sleep(Duration::from_millis(1)) });
    }
    page.len()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let iterations: u64 = args.first().and_then(|a| a.parse().ok()).expect("ITERATIONS");
    let flag = |name: &str| args.iter().position(|a| a == name);
    let value = |name: &str| flag(name).and_then(|i| args.get(i + 1)).cloned();
    let pace = value("--pace-us").map_or(0, |v| v.parse::<u64>().expect("--pace-us N"));
    let _session = if let Some(addr) = value("--builder") {
        let s = pulse::Session::builder().metrics(addr).write_file(false).start().expect("start");
        println!("METRICS {}", s.metrics_addr().expect("metrics served"));
        Some(s)
    } else if let Some(path) = value("--file") {
        // A session of the program's own, with a file: one `PULSE_METRICS`
        // started alone gives way to it.
        let s = pulse::Session::builder().output(path).start().expect("start");
        if let Some(addr) = s.metrics_addr() {
            println!("METRICS {addr}");
        }
        Some(s)
    } else {
        None
    };
    // stdin's buffer is allocated now, not between the figures and the scrape.
    let stdin = std::io::stdin();
    let mut stdin = stdin.lock();
    let mut out = std::io::stdout().lock();
    writeln!(out, "STARTED").unwrap();
    out.flush().unwrap();
    let mut line = String::new();
    if flag("--go").is_some() {
        stdin.read_line(&mut line).expect("stdin");
    }

    let table: HashMap<String, u64> = (0..100u64).map(|i| (i.to_string(), i * i)).collect();
    let t = Instant::now();
    let mut bytes = 0;
    for i in 0..iterations {
        bytes += request(i, &table);
        if pace > 0 {
            std::thread::sleep(Duration::from_micros(pace));
        }
    }
    let elapsed = t.elapsed();
    std::hint::black_box(bytes);

    writeln!(out, "ELAPSED {}", elapsed.as_nanos()).unwrap();
    for s in pulse::stats() {
        let t = &s.time;
        writeln!(
            out,
            "STAT\t{:?}\t{:?}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            s.name,
            s.category,
            t.count,
            t.total_ns,
            t.mean_ns,
            t.p50_ns,
            t.p99_ns,
            t.allocs,
            t.bytes
        )
        .unwrap();
    }
    out.flush().unwrap();
    let heap = pulse::heap_stats();
    let peak = heap.threads.iter().map(|t| t.peak_bytes).max().unwrap_or(0);
    writeln!(out, "HEAP {} {} {}", heap.totals.live_bytes(), heap.totals.live_blocks(), peak)
        .unwrap();
    writeln!(out, "READY").unwrap();
    out.flush().unwrap();
    // Idle until the test is done with it.
    while stdin.read_line(&mut line).is_ok_and(|n| n > 0) {
        line.clear();
    }
}
