//! Throughput of the session format on a realistic allocation-churn stream.
//!
//! ```sh
//! cargo bench -p pulse-format --bench throughput            # 3 million records
//! cargo bench -p pulse-format --bench throughput -- --quick # 200 thousand, a few seconds
//! cargo bench -p pulse-format --bench throughput -- --session target/pulse/tour.pulse
//! ```
//!
//! `--session FILE` (relative to the workspace root, or absolute) also reads
//! a real session file and compares the codecs on its chunks.
//!
//! It generates a deterministic event stream for two threads — allocations
//! with size-class sizes from a simulated heap that reuses freed addresses,
//! frees mostly in LIFO order with some long-lived blocks, reallocations of
//! growing vectors (in place or moved), nested scope entries and exits,
//! timestamps advancing 20 to 200 ticks — then:
//!
//! - writes it as the collector does: one chunk of 16384 records per thread
//!   per round, through [`ChunkEncoder`] and [`Writer`] into a `Vec` (the
//!   `Vec` is reserved up front, so the figure is encoding, compression and
//!   checksums, not buffer growth);
//! - reads it back with [`Reader`] on one core;
//! - takes the raw (uncompressed) chunk bodies out of the written file —
//!   decompressing its frames with zstd here, in the bench, so the crate
//!   needs no accessor for them — and compresses each chunk alone with
//!   each codec, as the writer would.
//!
//! Every figure is the median of 5 runs. MB are 10^6 bytes.

use std::hint::black_box;
use std::time::{Duration, Instant};

use pulse_format::{
    AllocMode, ChunkEncoder, Event, Frame, Metadata, RawFrame, Reader, Record, RecordKind, Sink,
    Trailer, Writer,
};

const THREADS: u64 = 2;
const CHUNK_RECORDS: usize = 16_384;
const RUNS: usize = 5;
const SCOPES: u32 = 32;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // then this is a smoke test of a few thousand records.
    let smoke = !args.iter().any(|a| a == "--bench");
    let total: usize = match (smoke, quick) {
        (true, _) => 20_000,
        (false, true) => 200_000,
        (false, false) => 3_000_000,
    };

    let defs = scope_defs();
    let threads: Vec<Vec<Record>> =
        (0..THREADS).map(|t| generate(t + 1, total / THREADS as usize)).collect();
    let records: usize = defs.len() + threads.iter().map(Vec::len).sum::<usize>();

    println!(
        "pulse-format throughput: {records} records, {THREADS} threads, \
         {CHUNK_RECORDS}-record chunks, median of {RUNS} runs{}",
        match (smoke, quick) {
            (true, _) => " (smoke test; `cargo bench` for figures)",
            (false, true) => " (--quick)",
            (false, false) => "",
        }
    );
    print_mix(&threads);

    // Write.
    let mut file = write_session(&defs, &threads, 0);
    check_round_trip(&file, &defs, &threads);
    let write = median(|| {
        let t = Instant::now();
        file = write_session(&defs, &threads, file.len());
        t.elapsed()
    });

    // Read.
    let read = median(|| {
        let t = Instant::now();
        let n = read_session(black_box(&file));
        let d = t.elapsed();
        assert_eq!(n, records);
        d
    });
    let [frames, events] = read_stages(&file, records);

    let raw = raw_chunks(&file);
    let raw_bytes: usize = raw.iter().map(Vec::len).sum();
    println!();
    println!(
        "file          {:.2} MB, {:.2} bytes/record ({:.2} bytes/record before compression)",
        mb(file.len()),
        file.len() as f64 / records as f64,
        raw_bytes as f64 / records as f64,
    );
    println!(
        "write         {:>6.2} M records/s  ({:.1} ms: encode, zstd -1, CRC-32, into a Vec)",
        records as f64 / write.as_secs_f64() / 1e6,
        ms(write)
    );
    println!(
        "read          {:>6.2} M records/s  ({:.1} ms: CRC-32, zstd, decode into Records; one core)",
        records as f64 / read.as_secs_f64() / 1e6,
        ms(read)
    );
    print_stages(frames, events, records);
    print_collector(&threads);
    println!();
    print_codecs(&raw, records);

    // The same read and comparison on a real session, if one is named.
    if let Some(path) = args.iter().position(|a| a == "--session").and_then(|i| args.get(i + 1)) {
        // cargo runs benches in the crate's directory: also try the workspace root.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let file = std::fs::read(path)
            .or_else(|_| std::fs::read(root.join(path)))
            .unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        let records = read_session(&file);
        let read = median(|| {
            let t = Instant::now();
            black_box(read_session(black_box(&file)));
            t.elapsed()
        });
        let raw = raw_chunks(&file);
        let raw_bytes: usize = raw.iter().map(Vec::len).sum();
        println!();
        println!("session {path}: {records} records");
        println!(
            "file          {:.2} MB, {:.2} bytes/record ({:.2} bytes/record before compression)",
            mb(file.len()),
            file.len() as f64 / records as f64,
            raw_bytes as f64 / records as f64,
        );
        println!(
            "read          {:>6.2} M records/s  ({:.1} ms; one core)",
            records as f64 / read.as_secs_f64() / 1e6,
            ms(read)
        );
        let [frames, events] = read_stages(&file, records);
        print_stages(frames, events, records);
        print_collector(&session_threads(&file, SESSION_COLLECTOR_RECORDS));
        println!();
        print_codecs(&raw, records);
        println!();
        print_bytes_by_kind(&file);
    }
}

/// Where a session's bytes go: each record kind's encoded bytes, in the
/// records and in the timestamps kept after them (format version 2), as the
/// writer encodes the whole chunk (so frees and allocations name recent
/// blocks as they do in the file); then the whole file's compressed bytes.
fn print_bytes_by_kind(file: &[u8]) {
    use pulse_format::{Frame, Reader, RecordKind, Trailer, Writer};
    let kinds = RecordKind::ALL.len();
    let (mut count, mut records, mut times) =
        (vec![0u64; kinds], vec![0u64; kinds], vec![0u64; kinds]);
    let varint = |v: u64| ((64 - v.leading_zeros()).max(1) as u64).div_ceil(7);
    let zigzag = |v: i64| ((v << 1) ^ (v >> 63)) as u64;
    let mut reader = Reader::new(file).expect("header");
    // The session written again by this build's writer: what the same
    // program's file would weigh now.
    let mut rewritten = Writer::new(Vec::new(), reader.metadata()).expect("writer");
    let mut trailer = Trailer::default();
    let mut enc = ChunkEncoder::new();
    // The session without each kind of definition, chunk by chunk, through
    // the real writer: what the kind adds to the compressed file. Events
    // are not weighed so: they refer to each other (a free names a recent
    // allocation, an allocation a recent free), and a file without one
    // kind of them codes the others differently.
    let defines = |k: usize| {
        matches!(
            RecordKind::ALL[k],
            RecordKind::SiteDef | RecordKind::ScopeDef | RecordKind::Symbol
        )
    };
    let mut without: Vec<Writer<Vec<u8>>> =
        (0..kinds).map(|_| Writer::new(Vec::new(), reader.metadata()).expect("writer")).collect();
    let mut rest_enc = ChunkEncoder::new();
    let mut deltas = TimeDeltas::default();
    let mut events = 0u64;
    while let Some(frame) = reader.next_frame().expect("frame") {
        let c = match frame {
            Frame::Chunk(c) => c,
            Frame::Trailer(t) => {
                trailer = t;
                continue;
            }
        };
        enc.begin(c.thread, c.round);
        let mut prev_ts = 0u64;
        for r in &c.records {
            let before = enc.encoded_len();
            enc.push(r);
            let n = (enc.encoded_len() - before) as u64;
            let t = r.ts().map_or(0, |ts| {
                let b = varint(zigzag(ts.wrapping_sub(prev_ts) as i64));
                prev_ts = ts;
                b
            });
            if let Some(ts) = r.ts() {
                deltas.add(c.thread, ts);
                events += 1;
            }
            let k = r.kind().index();
            count[k] += 1;
            records[k] += n - t;
            times[k] += t;
        }
        rewritten.write_chunk(&enc).expect("rewrite");
        for (k, out) in without.iter_mut().enumerate() {
            rest_enc.begin(c.thread, c.round);
            for r in c.records.iter().filter(|r| r.kind().index() != k) {
                rest_enc.push(r);
            }
            if rest_enc.records() > 0 {
                out.write_chunk(&rest_enc).expect("rewrite");
            }
        }
    }
    let without: Vec<usize> =
        without.into_iter().map(|w| w.finish(Trailer::default()).expect("rewrite").len()).collect();
    let rewritten = rewritten.finish(trailer).expect("rewrite").len();
    let compressed = rewritten;
    let adds = |k: usize| compressed.saturating_sub(without[k]);
    let mut definitions = 0;
    let total: u64 = records.iter().chain(&times).sum();
    println!(
        "where the bytes go, by record kind (encoded as the writer encodes each chunk, before \
         compression; and what the kind adds to the file, compressed, all other kinds kept)"
    );
    println!(
        "{:<14} {:>11} {:>12} {:>7} {:>9} {:>11} {:>11} {:>11} {:>7}",
        "kind",
        "records",
        "encoded",
        "share",
        "B/record",
        "of which ts",
        "the rest",
        "compressed",
        "share"
    );
    for k in 0..kinds {
        if count[k] == 0 {
            continue;
        }
        let n = count[k] as f64;
        let bytes = records[k] + times[k];
        let weighed = if defines(k) {
            definitions += adds(k);
            format!("{:>9.3}MB {:>6.1}%", mb(adds(k)), 100.0 * adds(k) as f64 / compressed as f64)
        } else {
            format!("{:>11} {:>7}", "—", "—")
        };
        println!(
            "{:<14} {:>11} {:>10.2}MB {:>6.1}% {:>9.2} {:>11.2} {:>11.2} {weighed}",
            RecordKind::ALL[k].name(),
            count[k],
            mb(bytes as usize),
            100.0 * bytes as f64 / total as f64,
            bytes as f64 / n,
            times[k] as f64 / n,
            records[k] as f64 / n,
        );
    }
    let all: u64 = count.iter().sum();
    println!(
        "all            {all:>11} {:>10.2}MB  100.0% {:>9.2}; the file: {:.2} bytes/record",
        mb(total as usize),
        total as f64 / all as f64,
        file.len() as f64 / all as f64
    );
    println!(
        "rewritten by this build's writer: {:.2} MB, {:.3} bytes/record (the file: {:.3}); \
         without its definitions {:.3} bytes an event",
        mb(rewritten),
        rewritten as f64 / all as f64,
        file.len() as f64 / all as f64,
        rewritten.saturating_sub(definitions) as f64 / events.max(1) as f64,
    );
    let (head, rest, n) = deltas.entropy();
    println!(
        "timestamps, each thread's deltas coded one by one at best: {:.2} B/record \
         ({head:.2} bits of entropy in a delta's length and next {} bits, {rest:.2} below them; {n} deltas)",
        (head + rest) * n as f64 / 8.0 / all as f64,
        TimeDeltas::HEAD_BITS,
    );
}

/// The clock's deltas between each thread's events, for the least a coder
/// of each delta alone could spend on them: the entropy of a delta's bit
/// length and the few bits after its top one (a distribution smooth within
/// those is what real gaps have), and the bits below as they are, noise.
#[derive(Default)]
struct TimeDeltas {
    last: std::collections::HashMap<u64, u64>,
    /// By (bit length, the next `HEAD_BITS` bits).
    heads: std::collections::HashMap<(u32, u64), u64>,
    /// The bits below those, over every delta.
    rest: u64,
}

impl TimeDeltas {
    const HEAD_BITS: u32 = 3;

    fn add(&mut self, thread: u64, ts: u64) {
        let Some(prev) = self.last.insert(thread, ts) else { return };
        let d = ts.wrapping_sub(prev);
        let len = 64 - d.leading_zeros();
        let below = len.saturating_sub(1 + Self::HEAD_BITS);
        *self.heads.entry((len, d >> below)).or_default() += 1;
        self.rest += u64::from(below);
    }

    /// Bits per delta: the heads' entropy, and the bits below them; and how many.
    fn entropy(&self) -> (f64, f64, u64) {
        let n: u64 = self.heads.values().sum();
        if n == 0 {
            return (0.0, 0.0, 0);
        }
        let head = self
            .heads
            .values()
            .map(|&c| {
                let p = c as f64 / n as f64;
                -p * p.log2()
            })
            .sum();
        (head, self.rest as f64 / n as f64, n)
    }
}

fn print_codecs(raw: &[Vec<u8>], records: usize) {
    let raw_bytes: usize = raw.iter().map(Vec::len).sum();
    println!(
        "compression of the same {} raw chunks ({:.2} MB), each chunk alone:",
        raw.len(),
        mb(raw_bytes)
    );
    println!(
        "  {:<10} {:>6} {:>14} {:>16} {:>13}",
        "codec", "ratio", "compress MB/s", "decompress MB/s", "bytes/record"
    );
    for codec in [Codec::None, Codec::Zstd(1), Codec::Zstd(3), Codec::Lz4] {
        let r = measure(codec, raw);
        println!(
            "  {:<10} {:>6.2} {:>14.0} {:>16.0} {:>13.2}",
            codec.name(),
            raw_bytes as f64 / r.compressed as f64,
            mb(raw_bytes) / r.compress.as_secs_f64(),
            mb(raw_bytes) / r.decompress.as_secs_f64(),
            r.compressed as f64 / records as f64,
        );
    }
}

// ---------------------------------------------------------------------------
// The event stream
// ---------------------------------------------------------------------------

/// SplitMix64: small, fast, and the same stream on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Size classes of a typical malloc, small ones far more common.
const CLASSES: [u64; 18] =
    [8, 16, 24, 32, 48, 64, 80, 96, 128, 160, 192, 256, 384, 512, 1024, 2048, 4096, 16384];

/// A heap that hands out addresses by size class and reuses freed ones
/// last-in first-out, as thread caches do.
struct Heap {
    next: u64,
    free: Vec<Vec<u64>>,
}

impl Heap {
    fn new(thread: u64) -> Self {
        Heap { next: 0x7f3a_0000_0000 + (thread << 32), free: vec![Vec::new(); CLASSES.len() + 1] }
    }

    fn class(size: u64) -> usize {
        CLASSES.iter().position(|c| size <= *c).unwrap_or(CLASSES.len())
    }

    fn alloc(&mut self, size: u64) -> u64 {
        let c = Heap::class(size);
        if let Some(a) = self.free[c].pop() {
            return a;
        }
        let a = self.next;
        self.next += CLASSES.get(c).copied().unwrap_or(size).next_multiple_of(16);
        a
    }

    fn free(&mut self, addr: u64, size: u64) {
        self.free[Heap::class(size)].push(addr);
    }
}

fn scope_defs() -> Vec<Record> {
    (1..=SCOPES)
        .map(|i| Record::ScopeDef {
            scope: i,
            name: format!("stage_{i}"),
            category: if i % 4 == 0 { "io".into() } else { String::new() },
            description: String::new(),
            priority: 0,
        })
        .collect()
}

/// How many of a real session's records the collector line encodes (as
/// `Record`s in memory, 88 bytes each).
const SESSION_COLLECTOR_RECORDS: usize = 2_000_000;

/// The first `limit` records of a session, by thread, in each thread's order.
fn session_threads(file: &[u8], limit: usize) -> Vec<Vec<Record>> {
    use pulse_format::{Frame, Reader};
    let mut by_thread: std::collections::BTreeMap<u64, Vec<Record>> = Default::default();
    let mut reader = Reader::new(file).expect("header");
    let mut n = 0;
    while let Some(Frame::Chunk(c)) = reader.next_frame().expect("frame") {
        n += c.records.len();
        by_thread.entry(c.thread).or_default().extend(c.records);
        if n >= limit {
            break;
        }
    }
    by_thread.into_values().collect()
}

/// The collector's side: its events encoded as `Event`s (`ChunkEncoder::event`,
/// as it encodes what it drains from the rings), alone and then compressed
/// into frames, against the pipeline's budget of 50 M events/s on one core.
fn print_collector(threads: &[Vec<Record>]) {
    enum Item<'a> {
        Event(Event),
        Record(&'a Record),
    }
    let items: Vec<Vec<Item<'_>>> = threads
        .iter()
        .map(|t| t.iter().map(|r| Event::of(r).map_or(Item::Record(r), Item::Event)).collect())
        .collect();
    let n: usize = items.iter().map(Vec::len).sum();
    let run = |compress: bool| {
        let meta = Metadata::default();
        let mut w = Writer::new(Vec::with_capacity(64 << 20), &meta).expect("header");
        let mut enc = ChunkEncoder::new();
        let t = Instant::now();
        for (thread, list) in items.iter().enumerate() {
            for (round, part) in list.chunks(CHUNK_RECORDS).enumerate() {
                enc.begin(thread as u64 + 1, round as u64);
                for item in part {
                    match item {
                        Item::Event(e) => enc.event(e),
                        Item::Record(r) => enc.push(r),
                    }
                }
                if compress {
                    w.write_chunk(&enc).expect("chunk");
                }
            }
        }
        black_box(enc.encoded_len());
        t.elapsed()
    };
    let encode = median(|| run(false));
    let write = median(|| run(true));
    let rate = |d: Duration| n as f64 / d.as_secs_f64() / 1e6;
    println!(
        "collector     {:>6.2} M events/s encoding alone, {:.2} M events/s encoded and \
         compressed (zstd -1, CRC-32); budget 50 M events/s on one core",
        rate(encode),
        rate(write)
    );
}

/// `n` records of one thread's allocation churn.
fn generate(thread: u64, n: usize) -> Vec<Record> {
    let mut rng = Rng(0x5eed ^ thread.wrapping_mul(0x1234_5678_9abc_def1));
    let mut heap = Heap::new(thread);
    let mut out = Vec::with_capacity(n + 16);
    let mut ts = 1_000_000 * thread;
    let mut tick = |rng: &mut Rng| {
        ts += 20 + rng.below(181);
        ts
    };
    // Short-lived blocks, freed mostly last-in first-out.
    let mut recent: Vec<(u64, u64)> = Vec::new();
    // Long-lived blocks, freed rarely and in any order.
    let mut long_lived: Vec<(u64, u64)> = Vec::new();
    // Growing vectors: (address, capacity in bytes).
    let mut vectors: Vec<(u64, u64)> = Vec::new();
    let mut scopes: Vec<u32> = Vec::new();

    out.push(Record::ThreadStart { ts: tick(&mut rng), name: format!("worker-{thread}") });
    while out.len() < n {
        let roll = rng.below(100);
        if roll < 38 || (roll < 74 && recent.is_empty()) {
            let c = (rng.below(8) * rng.below(8) * (CLASSES.len() as u64 - 1)) / 49;
            let class = CLASSES[c as usize];
            let size = if rng.chance(50) { class } else { class - rng.below(class / 4 + 1) };
            let addr = heap.alloc(size);
            let r = rng.below(1000);
            let site = 1 + (r * r / 4000) as u32;
            let align = if rng.chance(5) { 16 } else { 8 };
            out.push(Record::Alloc { ts: tick(&mut rng), addr, size, align, site, weight: 1 });
            if rng.chance(8) {
                long_lived.push((addr, size));
            } else {
                recent.push((addr, size));
            }
        } else if roll < 74 {
            // Mostly the newest block; sometimes one a few places down.
            let back = if rng.chance(80) { 0 } else { rng.below(8) as usize };
            let i = recent.len() - 1 - back.min(recent.len() - 1);
            let (addr, size) = recent.remove(i);
            heap.free(addr, size);
            out.push(Record::Free { ts: tick(&mut rng), addr, size });
        } else if roll < 84 {
            if (vectors.len() < 4 && rng.chance(30)) || vectors.is_empty() {
                let cap = 32;
                let addr = heap.alloc(cap);
                out.push(Record::Alloc {
                    ts: tick(&mut rng),
                    addr,
                    size: cap,
                    align: 8,
                    site: 300 + rng.below(20) as u32,
                    weight: 1,
                });
                vectors.push((addr, cap));
            } else {
                let i = rng.below(vectors.len() as u64) as usize;
                let (old_addr, old_size) = vectors[i];
                if old_size >= 1 << 20 {
                    heap.free(old_addr, old_size);
                    out.push(Record::Free { ts: tick(&mut rng), addr: old_addr, size: old_size });
                    vectors.swap_remove(i);
                } else {
                    let new_size = old_size * 2;
                    let start_ts = tick(&mut rng);
                    let end_ts = tick(&mut rng);
                    let new_addr = if old_size >= 4096 && rng.chance(30) {
                        old_addr // grown in place
                    } else {
                        heap.free(old_addr, old_size);
                        heap.alloc(new_size)
                    };
                    out.push(Record::Realloc {
                        ts: end_ts,
                        start_ts,
                        old_addr,
                        old_size,
                        new_addr,
                        new_size,
                        align: 8,
                        site: 320 + rng.below(10) as u32,
                    });
                    vectors[i] = (new_addr, new_size);
                }
            }
        } else if (roll < 92 && scopes.len() < 6) || (roll < 99 && scopes.is_empty()) {
            let scope =
                1 + (rng.below(SCOPES as u64) * rng.below(SCOPES as u64) / SCOPES as u64) as u32;
            scopes.push(scope);
            out.push(Record::ScopeEnter { ts: tick(&mut rng), scope });
        } else if roll < 99 {
            let scope = scopes.pop().unwrap_or(1);
            out.push(Record::ScopeExit { ts: tick(&mut rng), scope });
        } else if !long_lived.is_empty() {
            let i = rng.below(long_lived.len() as u64) as usize;
            let (addr, size) = long_lived.swap_remove(i);
            heap.free(addr, size);
            out.push(Record::Free { ts: tick(&mut rng), addr, size });
        }
    }
    while let Some(scope) = scopes.pop() {
        out.push(Record::ScopeExit { ts: tick(&mut rng), scope });
    }
    out.push(Record::ThreadEnd { ts: tick(&mut rng) });
    out
}

fn print_mix(threads: &[Vec<Record>]) {
    let mut counts = [0usize; RecordKind::ALL.len()];
    let mut n = 0;
    for r in threads.iter().flatten() {
        counts[r.kind().index()] += 1;
        n += 1;
    }
    let pct = |k: RecordKind| 100.0 * counts[k.index()] as f64 / n as f64;
    println!(
        "mix: alloc {:.1}%, free {:.1}%, realloc {:.1}%, scope enter/exit {:.1}%",
        pct(RecordKind::Alloc),
        pct(RecordKind::Free),
        pct(RecordKind::Realloc),
        pct(RecordKind::ScopeEnter) + pct(RecordKind::ScopeExit),
    );
}

// ---------------------------------------------------------------------------
// Writing and reading
// ---------------------------------------------------------------------------

fn write_session(defs: &[Record], threads: &[Vec<Record>], reserve: usize) -> Vec<u8> {
    let meta = Metadata {
        writer: "pulse-format throughput bench".into(),
        program: "churn".into(),
        alloc_mode: AllocMode::Full,
        ..Metadata::default()
    };
    let mut w = Writer::new(Vec::with_capacity(reserve), &meta).expect("header");
    let mut enc = ChunkEncoder::new();
    enc.begin(0, 0);
    for r in defs {
        enc.push(r);
    }
    w.write_chunk(&enc).expect("chunk");
    let rounds = threads.iter().map(|t| t.len().div_ceil(CHUNK_RECORDS)).max().unwrap_or(0);
    for round in 0..rounds {
        for (t, records) in threads.iter().enumerate() {
            let Some(part) = records.chunks(CHUNK_RECORDS).nth(round) else { continue };
            enc.begin(t as u64 + 1, round as u64);
            for r in part {
                enc.push(r);
            }
            w.write_chunk(&enc).expect("chunk");
        }
    }
    w.finish(Trailer::default()).expect("trailer")
}

/// Reads every frame; returns the number of records.
fn read_session(file: &[u8]) -> usize {
    let mut r = Reader::new(file).expect("header");
    let mut n = 0;
    while let Some(frame) = r.next_frame().expect("frame") {
        if let Frame::Chunk(c) = frame {
            n += black_box(c.records).len();
        }
    }
    n
}

/// Counts what the event decoder hands over.
struct CountSink(usize, u64);

impl Sink for CountSink {
    fn event(&mut self, e: Event) {
        self.0 += 1;
        self.1 = self.1.wrapping_add(e.ts());
    }
    fn record(&mut self, r: Record) {
        self.0 += 1;
        black_box(r);
    }
}

/// The read in two stages, each timed alone: the frames checked and
/// decompressed (`next_raw`), then also decoded into `Event`s (the
/// analyzer's path, no `Record` per event).
fn read_stages(file: &[u8], records: usize) -> [Duration; 2] {
    let frames = median(|| {
        let t = Instant::now();
        let mut r = Reader::new(black_box(file)).expect("header");
        let mut bytes = 0;
        while let Some(f) = r.next_raw().expect("frame") {
            if let RawFrame::Chunk(c) = f {
                bytes += c.body().len();
            }
        }
        black_box(bytes);
        t.elapsed()
    });
    let events = median(|| {
        let t = Instant::now();
        let mut r = Reader::new(black_box(file)).expect("header");
        let mut sink = CountSink(0, 0);
        while let Some(f) = r.next_raw().expect("frame") {
            if let RawFrame::Chunk(c) = f {
                c.decode(&mut sink).expect("decode");
            }
        }
        let d = t.elapsed();
        assert_eq!(sink.0, records);
        black_box(sink.1);
        d
    });
    [frames, events]
}

fn print_stages(frames: Duration, events: Duration, records: usize) {
    let ns = |d: Duration| d.as_secs_f64() * 1e9 / records as f64;
    println!(
        "read events   {:>6.2} M records/s  ({:.1} ms: CRC-32, zstd, decode into Events; one core)",
        records as f64 / events.as_secs_f64() / 1e6,
        ms(events)
    );
    println!(
        "  of which    {:.1} ns/record frames (read, CRC-32, zstd), {:.1} ns/record decoding",
        ns(frames),
        ns(events) - ns(frames)
    );
}

/// Once, outside the timings: the file reads back to exactly what was written.
fn check_round_trip(file: &[u8], defs: &[Record], threads: &[Vec<Record>]) {
    let mut r = Reader::new(file).expect("header");
    let mut got: Vec<Vec<Record>> = vec![Vec::new(); threads.len() + 1];
    while let Some(frame) = r.next_frame().expect("frame") {
        if let Frame::Chunk(c) = frame {
            got[c.thread as usize].extend(c.records);
        }
    }
    assert_eq!(got[0], defs);
    for (t, want) in threads.iter().enumerate() {
        assert!(got[t + 1] == *want, "thread {} does not round-trip", t + 1);
    }
}

/// The raw bodies of the file's chunks, taken from its frames: a 20-byte
/// header and the metadata, then frames of a 16-byte head (kind, codec,
/// reserved, stored length, raw length, CRC) and the payload.
fn raw_chunks(file: &[u8]) -> Vec<Vec<u8>> {
    let u32_at = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().unwrap()) as usize;
    let mut at = 20 + u32_at(12);
    let mut out = Vec::new();
    while at < file.len() {
        let (kind, codec) = (file[at], file[at + 1]);
        let (stored, raw) = (u32_at(at + 4), u32_at(at + 8));
        let payload = &file[at + 16..at + 16 + stored];
        if kind == 1 {
            out.push(match codec {
                0 => payload.to_vec(),
                1 => zstd::bulk::decompress(payload, raw).expect("zstd frame"),
                c => panic!("unknown codec {c}"),
            });
        }
        at += 16 + stored;
    }
    out
}

// ---------------------------------------------------------------------------
// Compression alternatives
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Codec {
    None,
    Zstd(i32),
    Lz4,
}

impl Codec {
    fn name(self) -> String {
        match self {
            Codec::None => "none".into(),
            Codec::Zstd(l) => format!("zstd -{l}"),
            Codec::Lz4 => "lz4_flex".into(),
        }
    }
}

struct Measured {
    compressed: usize,
    compress: Duration,
    decompress: Duration,
}

fn measure(codec: Codec, raw: &[Vec<u8>]) -> Measured {
    let max_raw = raw.iter().map(Vec::len).max().unwrap_or(0);
    let mut packed: Vec<Vec<u8>> = raw
        .iter()
        .map(|r| {
            Vec::with_capacity(
                zstd::zstd_safe::compress_bound(r.len())
                    .max(lz4_flex::block::get_maximum_output_size(r.len())),
            )
        })
        .collect();
    let mut zc = match codec {
        Codec::Zstd(level) => Some(zstd::bulk::Compressor::new(level).expect("zstd")),
        _ => None,
    };
    let compress = median(|| {
        let t = Instant::now();
        for (src, dst) in raw.iter().zip(&mut packed) {
            dst.clear();
            match codec {
                Codec::None => dst.extend_from_slice(src),
                Codec::Zstd(_) => {
                    let c = zc.as_mut().expect("compressor");
                    c.compress_to_buffer(src.as_slice(), dst).expect("zstd");
                }
                Codec::Lz4 => {
                    dst.resize(lz4_flex::block::get_maximum_output_size(src.len()), 0);
                    let n = lz4_flex::block::compress_into(src, dst).expect("lz4");
                    dst.truncate(n);
                }
            }
            black_box(&dst);
        }
        t.elapsed()
    });
    let compressed = packed.iter().map(Vec::len).sum();

    let mut zd = zstd::bulk::Decompressor::new().expect("zstd");
    let mut out: Vec<u8> = Vec::with_capacity(max_raw);
    let mut unpack = |src: &[u8], len: usize, out: &mut Vec<u8>| {
        out.clear();
        match codec {
            Codec::None => out.extend_from_slice(src),
            Codec::Zstd(_) => {
                zd.decompress_to_buffer(src, out).expect("zstd");
            }
            Codec::Lz4 => {
                out.resize(len, 0);
                let n = lz4_flex::block::decompress_into(src, out).expect("lz4");
                assert_eq!(n, len);
            }
        }
    };
    for (src, want) in packed.iter().zip(raw) {
        unpack(src, want.len(), &mut out);
        assert!(out == *want, "{} does not round-trip", codec.name());
    }
    let decompress = median(|| {
        let t = Instant::now();
        for (src, want) in packed.iter().zip(raw) {
            unpack(src, want.len(), &mut out);
            black_box(&out);
        }
        t.elapsed()
    });
    Measured { compressed, compress, decompress }
}

// ---------------------------------------------------------------------------

fn median(mut run: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS).map(|_| run()).collect();
    times.sort();
    times[RUNS / 2]
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
