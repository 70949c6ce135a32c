//! Producers and consumers passing owned buffers across threads: a log
//! shipper.
//!
//! Three producer threads, each standing for one service, write their log
//! lines into batches: a `Vec<u8>` of about 16 KiB each, handed by value
//! through a bounded channel. Two consumer threads take the batches, index
//! them (lines per level, the slowest request) and drop them. Every batch
//! is allocated on a producer and freed on a consumer: the report charges
//! each block to the thread that allocated it, lists the bytes that crossed
//! from one thread to another, and finds nothing leaked.
//!
//!     cargo run --release --example threads [BATCHES_PER_PRODUCER]

use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;

use pulse_examples::{print_report, session_path, Rng};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

/// The operations the shipper times.
#[derive(pulse::Operation)]
enum Op {
    #[category(name = "Produce", description = "Writing log lines into batches")]
    FillBatch,
    #[category(name = "Consume", description = "Indexing batches")]
    IndexBatch,
}

/// The bytes a producer writes into one batch before sending it.
const BATCH_BYTES: usize = 16 * 1024;
/// The longest log line.
const MAX_LINE: usize = 96;
const PRODUCERS: usize = 3;
const CONSUMERS: usize = 2;
const LEVELS: [&str; 4] = ["DEBUG", "INFO", "WARN", "ERROR"];

/// A batch of log lines, owned by whichever thread holds it.
struct Batch {
    service: usize,
    lines: u32,
    bytes: Vec<u8>,
}

/// What one consumer found.
#[derive(Debug, Default)]
struct Index {
    batches: u64,
    lines: u64,
    per_level: [u64; 4],
    slowest_ms: u64,
}

fn produce(service: usize, batches: usize, tx: std::sync::mpsc::SyncSender<Batch>) {
    let mut rng = Rng::new(service as u64 + 1);
    let mut seq = 0u64;
    for _ in 0..batches {
        let batch = pulse::profile!(Op::FillBatch, {
            // planted: batch (allocated here, freed by a consumer)
            let mut bytes = Vec::with_capacity(BATCH_BYTES);
            let mut lines = 0;
            // Lines are under MAX_LINE bytes: the batch never outgrows its capacity.
            while bytes.len() + MAX_LINE <= BATCH_BYTES {
                let level = LEVELS[rng.below(LEVELS.len() as u64) as usize];
                let (order, ms) = (rng.below(100_000), rng.below(250));
                writeln!(bytes, "{seq} svc-{service} {level} GET /api/orders/{order} took {ms}ms")
                    .expect("writing to a Vec cannot fail");
                seq += 1;
                lines += 1;
            }
            Batch { service, lines, bytes }
        });
        if tx.send(batch).is_err() {
            return;
        }
    }
}

fn consume(rx: Arc<Mutex<Receiver<Batch>>>) -> Index {
    let mut index = Index::default();
    loop {
        // Hold the lock only to take the next batch.
        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(batch) = next else { return index };
        pulse::profile!(Op::IndexBatch, {
            let mut lines = 0;
            for line in batch.bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                lines += 1;
                let mut fields = line.split(|&b| b == b' ');
                if let Some(level) = fields.nth(2) {
                    if let Some(i) = LEVELS.iter().position(|l| l.as_bytes() == level) {
                        index.per_level[i] += 1;
                    }
                }
                if let Some(ms) = fields.next_back().and_then(|f| f.strip_suffix(b"ms")) {
                    let ms = ms.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
                    index.slowest_ms = index.slowest_ms.max(ms);
                }
            }
            assert_eq!(lines, batch.lines, "a batch of service {} lost lines", batch.service);
            index.lines += u64::from(lines);
            index.batches += 1;
        });
        // `batch` is dropped here: its buffer is freed on this thread.
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let batches: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(2000);

    let path = session_path("threads");
    let session = pulse::Session::builder().output(&path).start()?;

    let (tx, rx) = sync_channel::<Batch>(16);
    let rx = Arc::new(Mutex::new(rx));
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|c| {
            let rx = Arc::clone(&rx);
            thread::Builder::new().name(format!("consumer-{c}")).spawn(move || consume(rx))
        })
        .collect::<Result<_, _>>()?;
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let tx = tx.clone();
            thread::Builder::new()
                .name(format!("producer-{p}"))
                .spawn(move || produce(p, batches, tx))
        })
        .collect::<Result<_, _>>()?;
    drop(tx);
    for p in producers {
        p.join().map_err(|_| "a producer panicked")?;
    }
    let mut total = Index::default();
    for c in consumers {
        let i = c.join().map_err(|_| "a consumer panicked")?;
        println!("consumer indexed {} batches, {} lines", i.batches, i.lines);
        total.batches += i.batches;
        total.lines += i.lines;
        total.slowest_ms = total.slowest_ms.max(i.slowest_ms);
        for (t, n) in total.per_level.iter_mut().zip(i.per_level) {
            *t += n;
        }
    }
    println!(
        "shipped {} batches of {} producers, {} lines ({:?} per level), slowest request {} ms",
        total.batches, PRODUCERS, total.lines, total.per_level, total.slowest_ms
    );
    drop(rx);

    let path = session.finish()?;
    println!();
    print_report(&path)
}
