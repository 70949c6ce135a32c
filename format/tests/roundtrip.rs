//! Round trips through the public API: whatever `ChunkEncoder` + `Writer`
//! write, `Reader` must give back unchanged — every record kind, the
//! metadata, the trailer — including the extremes of every field.

use proptest::collection::vec;
use proptest::prelude::*;
use pulse_format::{
    AllocMode, ChunkEncoder, ClockInfo, ClockSource, CounterInfo, Error, Event, Frame, Metadata,
    RawFrame, Reader, Record, RecordKind, Sink, Trailer, Writer, MAGIC, MAX_LIST, VERSION,
};

// ---------------------------------------------------------------------------
// Helpers

/// One chunk to write: thread, round, records.
type ChunkSpec = (u64, u64, Vec<Record>);

/// Writes `chunks` (empty ones included: they must vanish) and `trailer`.
fn write_session(meta: &Metadata, chunks: &[ChunkSpec], trailer: Trailer) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), meta).expect("header");
    let mut enc = ChunkEncoder::new();
    for (thread, round, records) in chunks {
        enc.begin(*thread, *round);
        for r in records {
            enc.push(r);
        }
        assert_eq!(enc.records(), records.len() as u64);
        w.write_chunk(&enc).expect("chunk");
    }
    let written = w.bytes_written();
    let bytes = w.finish(trailer).expect("trailer");
    assert!(bytes.len() as u64 > written, "the trailer adds a frame");
    bytes
}

/// Everything a reader gives back for a well-formed file.
struct Session {
    meta: Metadata,
    chunks: Vec<ChunkSpec>,
    offsets: Vec<u64>,
    trailer: Trailer,
}

fn read_session(bytes: &[u8]) -> Session {
    let mut r = Reader::new(bytes).expect("header reads");
    assert_eq!(r.version(), VERSION);
    let meta = r.metadata().clone();
    let mut chunks = Vec::new();
    let mut offsets = Vec::new();
    let trailer = loop {
        match r.next_frame().expect("frame reads") {
            Some(Frame::Chunk(c)) => {
                offsets.push(c.offset);
                chunks.push((c.thread, c.round, c.records));
            }
            Some(Frame::Trailer(t)) => break t,
            None => panic!("None before the trailer"),
        }
    };
    assert!(r.next_frame().expect("after the trailer").is_none());
    assert!(r.next_frame().expect("still after the trailer").is_none());
    assert_eq!(r.offset(), bytes.len() as u64, "the reader consumed it all");
    assert_eq!(read_events(bytes), chunks, "the event decoder gives back the same records");
    Session { meta, chunks, offsets, trailer }
}

struct Collect(Vec<Record>);

impl Sink for Collect {
    fn event(&mut self, e: Event) {
        let r = Record::from(e);
        assert_eq!(Event::try_from(r.clone()), Ok(e));
        self.0.push(r);
    }
    fn record(&mut self, r: Record) {
        assert!(Event::try_from(r.clone()).is_err(), "{r:?} has an event form");
        self.0.push(r);
    }
}

/// The chunks as the analyzer reads them: `next_raw`, then the event decoder.
fn read_events(bytes: &[u8]) -> Vec<ChunkSpec> {
    let mut r = Reader::new(bytes).expect("header reads");
    let mut chunks = Vec::new();
    while let Some(f) = r.next_raw().expect("frame reads") {
        if let RawFrame::Chunk(c) = f {
            let mut sink = Collect(Vec::new());
            c.decode(&mut sink).expect("chunk decodes");
            chunks.push((c.thread, c.round, sink.0));
        }
    }
    chunks
}

/// What the writer fills into the trailer for `chunks`.
fn expected_trailer(mut t: Trailer, chunks: &[ChunkSpec]) -> Trailer {
    let mut counts = [0u64; RecordKind::ALL.len()];
    let mut n = 0;
    for (_, _, records) in chunks {
        if !records.is_empty() {
            n += 1;
        }
        for r in records {
            counts[r.kind().index()] += 1;
        }
    }
    t.chunks = n;
    t.record_counts =
        RecordKind::ALL.iter().zip(counts).filter(|(_, n)| *n > 0).map(|(k, n)| (*k, n)).collect();
    t
}

fn assert_round_trip(meta: &Metadata, chunks: &[ChunkSpec], trailer: &Trailer) {
    let bytes = write_session(meta, chunks, trailer.clone());
    let s = read_session(&bytes);
    assert_eq!(&s.meta, meta);
    let nonempty: Vec<ChunkSpec> =
        chunks.iter().filter(|(_, _, r)| !r.is_empty()).cloned().collect();
    assert_eq!(s.chunks, nonempty);
    assert!(s.offsets.windows(2).all(|w| w[0] < w[1]));
    if let Some(first) = s.offsets.first() {
        assert!(*first >= 20, "chunks follow the header");
    }
    let want = expected_trailer(trailer.clone(), chunks);
    assert_trailer_eq(&s.trailer, &want);
    for k in RecordKind::ALL {
        assert_eq!(s.trailer.count(k), want.count(k), "{}", k.name());
    }
}

/// `Trailer` equality that treats a NaN `ticks_per_ns` as equal to itself.
fn assert_trailer_eq(got: &Trailer, want: &Trailer) {
    assert_eq!(
        got.ticks_per_ns.to_bits(),
        want.ticks_per_ns.to_bits(),
        "ticks_per_ns {} vs {}",
        got.ticks_per_ns,
        want.ticks_per_ns
    );
    let mut g = got.clone();
    let mut w = want.clone();
    g.ticks_per_ns = 0.0;
    w.ticks_per_ns = 0.0;
    assert_eq!(g, w);
}

fn one_chunk(records: Vec<Record>) -> Vec<ChunkSpec> {
    vec![(1, 0, records)]
}

// ---------------------------------------------------------------------------
// Strategies

/// A u64 biased towards the edges of its range and towards small values,
/// where varint and zigzag boundaries lie.
fn u64_edge() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => Just(0u64),
        2 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
        1 => Just(1u64 << 63),
        1 => Just((1u64 << 63) - 1),
        1 => Just(127u64),
        1 => Just(128u64),
        1 => Just(u64::from(u32::MAX)),
        3 => 0u64..1_000,
        4 => any::<u64>(),
    ]
}

fn u32_edge() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(u32::MAX), Just(127u32), Just(128u32), 0u32..100, any::<u32>(),]
}

fn i64_edge() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), Just(i64::MIN), Just(i64::MAX), Just(-1i64), -100i64..100, any::<i64>(),]
}

/// Empty, ASCII, arbitrary unicode (astral planes and combining marks
/// included), and long strings.
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        2 => "[a-z_:<>]{1,40}",
        2 => Just(String::from("main::{{closure}}<Vec<u8>>::🦀 — ünïcødé ✓ 名前 \u{0}\u{FEFF}")),
        3 => vec(any::<char>(), 0..64).prop_map(String::from_iter),
        1 => (1usize..20_000, any::<char>()).prop_map(|(n, c)| std::iter::repeat_n(c, n).collect()),
    ]
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        (u64_edge(), string()).prop_map(|(ts, name)| Record::ThreadStart { ts, name }),
        u64_edge().prop_map(|ts| Record::ThreadEnd { ts }),
        (
            u64_edge(),
            u64_edge(),
            u64_edge(),
            u64_edge(),
            u32_edge(),
            prop_oneof![Just(1u64), u64_edge()]
        )
            .prop_map(|(ts, addr, size, align, site, weight)| Record::Alloc {
                ts,
                addr,
                size,
                align,
                site,
                weight
            }),
        (u64_edge(), u64_edge(), u64_edge()).prop_map(|(ts, size, align)| Record::AllocFailed {
            ts,
            size,
            align
        }),
        (u64_edge(), u64_edge(), u64_edge()).prop_map(|(ts, addr, size)| Record::Free {
            ts,
            addr,
            size
        }),
        (
            (u64_edge(), prop_oneof![Just(0u64), 0u64..1_000, u64_edge()]),
            (u64_edge(), u64_edge(), u64_edge(), u64_edge(), u64_edge(), u32_edge())
        )
            .prop_map(
                |((ts, took), (old_addr, old_size, new_addr, new_size, align, site))| {
                    // `start_ts` is usually a little before `ts`; anything must
                    // survive the trip.
                    let start_ts = ts.wrapping_sub(took);
                    Record::Realloc {
                        ts,
                        start_ts,
                        old_addr,
                        old_size,
                        new_addr,
                        new_size,
                        align,
                        site,
                    }
                }
            ),
        (u64_edge(), u32_edge()).prop_map(|(ts, scope)| Record::ScopeEnter { ts, scope }),
        (u64_edge(), u32_edge()).prop_map(|(ts, scope)| Record::ScopeExit { ts, scope }),
        u64_edge().prop_map(|ts| Record::Pause { ts }),
        u64_edge().prop_map(|ts| Record::Resume { ts }),
        (u64_edge(), u32_edge(), vec(u64_edge(), 0..40))
            .prop_map(|(ts, scope, values)| Record::Counters { ts, scope, values }),
        (
            u32_edge(),
            prop_oneof![
                3 => vec(u64_edge(), 0..64),
                1 => vec(any::<u64>(), 1000..4000),
            ]
        )
            .prop_map(|(site, frames)| Record::SiteDef { site, frames }),
        (u32_edge(), string(), string(), string(), i64_edge()).prop_map(
            |(scope, name, category, description, priority)| Record::ScopeDef {
                scope,
                name,
                category,
                description,
                priority
            }
        ),
        (u64_edge(), string(), string(), u32_edge()).prop_map(|(addr, function, file, line)| {
            Record::Symbol { addr, function, file, line }
        }),
        (u64_edge(), u64_edge(), u32_edge()).prop_map(|(ts, start_ts, scope)| Record::Span {
            ts,
            start_ts,
            scope
        }),
    ]
}

/// Records of a small heap: a few addresses and sizes used again and
/// again, so that frees, allocations and reallocations name recent blocks
/// (version 2), including the blocks' sizes that differ from the freed
/// one's, reallocations in place and moved, alignments no tag carries, and
/// chunks longer than the window of 256 blocks.
fn heap_record() -> impl Strategy<Value = Record> {
    let addr = (0u64..12).prop_map(|i| if i == 11 { 0 } else { 0x7f00_1000 + i * 48 });
    let size = prop_oneof![Just(0u64), Just(24), Just(48), Just(1 << 20), Just(u64::MAX)];
    let align = prop_oneof![8 => Just(8u64), 2 => Just(1), 1 => Just(16), 1 => Just(3), 1 => Just(1 << 16), 1 => Just(1 << 7)];
    let ts = 0u64..1 << 20;
    prop_oneof![
        4 => (ts.clone(), addr.clone(), size.clone(), align.clone(), 0u32..4, prop_oneof![4 => Just(1u64), 1 => Just(7)])
            .prop_map(|(ts, addr, size, align, site, weight)| Record::Alloc { ts, addr, size, align, site, weight }),
        4 => (ts.clone(), addr.clone(), size.clone()).prop_map(|(ts, addr, size)| Record::Free { ts, addr, size }),
        2 => (ts.clone(), 0u64..50, addr.clone(), size.clone(), addr, size, align, 0u32..4).prop_map(
            |(ts, back, old_addr, old_size, new_addr, new_size, align, site)| Record::Realloc {
                ts,
                start_ts: ts.saturating_sub(back),
                old_addr,
                old_size,
                new_addr,
                new_size,
                align,
                site,
            }
        ),
        1 => (ts, 0u32..3).prop_map(|(ts, scope)| Record::ScopeEnter { ts, scope }),
        1 => Just(Record::SiteDef { site: 1, frames: vec![0x4000, 0x3ff0] }),
    ]
}

fn chunk_spec() -> impl Strategy<Value = ChunkSpec> {
    (u64_edge(), u64_edge(), vec(record(), 0..24))
}

fn clock() -> impl Strategy<Value = ClockInfo> {
    (
        prop_oneof![Just(ClockSource::Monotonic), Just(ClockSource::Tsc)],
        prop_oneof![
            Just(1.0f64),
            Just(1e-3f64), // the slowest plausible clock
            Just(1e3f64),  // the fastest
            1e-3f64..1e3,
        ],
        string(),
    )
        .prop_map(|(source, ticks_per_ns, calibration)| ClockInfo {
            source,
            ticks_per_ns,
            calibration,
        })
}

fn alloc_mode() -> impl Strategy<Value = AllocMode> {
    prop_oneof![
        Just(AllocMode::Off),
        Just(AllocMode::Count),
        Just(AllocMode::Full),
        u64_edge().prop_map(|mean_bytes| AllocMode::Sample { mean_bytes }),
    ]
}

fn metadata() -> impl Strategy<Value = Metadata> {
    (
        (string(), string(), vec(string(), 0..8), u32_edge(), string()),
        (
            u64_edge(),
            clock(),
            alloc_mode(),
            vec(
                (string(), any::<bool>(), string())
                    .prop_map(|(name, available, reason)| CounterInfo { name, available, reason }),
                0..6,
            ),
            vec((string(), string()), 0..6),
        ),
    )
        .prop_map(
            |(
                (writer, program, args, pid, host),
                (start_unix_ns, clock, alloc_mode, counters, extra),
            )| Metadata {
                writer,
                program,
                args,
                pid,
                host,
                start_unix_ns,
                clock,
                alloc_mode,
                counters,
                extra,
            },
        )
}

fn trailer() -> impl Strategy<Value = Trailer> {
    (
        u64_edge(),
        u64_edge(),
        prop_oneof![
            Just(0.0f64),
            Just(-0.0f64),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::MAX),
            any::<f64>(),
        ],
        u64_edge(),
        vec((string(), u64_edge()), 0..8),
    )
        .prop_map(|(end_ts, end_unix_ns, ticks_per_ns, lost_events, extra)| Trailer {
            end_ts,
            end_unix_ns,
            ticks_per_ns,
            // The writer fills these in; garbage here must be overwritten.
            chunks: 12_345,
            record_counts: vec![(RecordKind::Symbol, 99)],
            lost_events,
            extra,
            notes: Vec::new(),
            counters: Vec::new(),
        })
}

// ---------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn records_round_trip_in_one_chunk(
        thread in u64_edge(),
        round in u64_edge(),
        records in vec(record(), 0..48),
    ) {
        assert_round_trip(&Metadata::default(), &[(thread, round, records)], &Trailer::default());
    }

    #[test]
    fn a_small_heaps_records_round_trip(
        chunks in vec(vec(heap_record(), 0..700), 1..4),
    ) {
        // One encoder for every chunk, as the collector has: nothing named
        // may come from an earlier chunk.
        let chunks: Vec<ChunkSpec> =
            chunks.into_iter().enumerate().map(|(i, r)| (1, i as u64, r)).collect();
        assert_round_trip(&Metadata::default(), &chunks, &Trailer::default());
        // The collector's path, each event without a `Record`, writes the same bytes.
        let by_record = write_session(&Metadata::default(), &chunks, Trailer::default());
        let mut w = Writer::new(Vec::new(), &Metadata::default()).expect("header");
        let mut enc = ChunkEncoder::new();
        for (thread, round, records) in &chunks {
            enc.begin(*thread, *round);
            for r in records {
                match Event::of(r) {
                    Some(e) => enc.event(&e),
                    None => enc.push(r),
                }
            }
            w.write_chunk(&enc).expect("chunk");
        }
        prop_assert_eq!(w.finish(Trailer::default()).expect("trailer"), by_record);
    }

    #[test]
    fn chunks_from_several_threads_round_trip(chunks in vec(chunk_spec(), 0..8)) {
        assert_round_trip(&Metadata::default(), &chunks, &Trailer::default());
    }

    #[test]
    fn metadata_round_trips(meta in metadata()) {
        let bytes = write_session(&meta, &[], Trailer::default());
        prop_assert_eq!(&read_session(&bytes).meta, &meta);
    }

    #[test]
    fn trailer_round_trips(t in trailer(), chunks in vec(chunk_spec(), 0..3)) {
        assert_round_trip(&Metadata::default(), &chunks, &t);
    }

    #[test]
    fn whole_sessions_round_trip(
        meta in metadata(),
        chunks in vec(chunk_spec(), 0..4),
        t in trailer(),
    ) {
        assert_round_trip(&meta, &chunks, &t);
    }
}

// ---------------------------------------------------------------------------
// Fixed cases: every variant at its extremes

fn every_variant_at(v: u64, s: &str) -> Vec<Record> {
    let v32 = v as u32;
    vec![
        Record::ThreadStart { ts: v, name: s.to_owned() },
        Record::ThreadEnd { ts: v },
        Record::Alloc { ts: v, addr: v, size: v, align: v, site: v32, weight: 1 },
        Record::Alloc { ts: v, addr: v, size: v, align: v, site: v32, weight: v },
        Record::AllocFailed { ts: v, size: v, align: v },
        Record::Free { ts: v, addr: v, size: v },
        Record::Realloc {
            ts: v,
            start_ts: v,
            old_addr: v,
            old_size: v,
            new_addr: v,
            new_size: v,
            align: v,
            site: v32,
        },
        Record::Realloc {
            ts: v,
            start_ts: v.wrapping_sub(1),
            old_addr: v,
            old_size: v,
            new_addr: v,
            new_size: v,
            align: v,
            site: v32,
        },
        Record::Realloc {
            ts: v,
            start_ts: !v,
            old_addr: v,
            old_size: v,
            new_addr: v,
            new_size: v,
            align: v,
            site: v32,
        },
        Record::ScopeEnter { ts: v, scope: v32 },
        Record::ScopeExit { ts: v, scope: v32 },
        Record::Pause { ts: v },
        Record::Resume { ts: v },
        Record::Counters { ts: v, scope: v32, values: vec![v; 8] },
        Record::Counters { ts: v, scope: v32, values: Vec::new() },
        Record::SiteDef { site: v32, frames: vec![v; 3] },
        Record::SiteDef { site: v32, frames: Vec::new() },
        Record::ScopeDef {
            scope: v32,
            name: s.to_owned(),
            category: s.to_owned(),
            description: s.to_owned(),
            priority: v as i64,
        },
        Record::Symbol { addr: v, function: s.to_owned(), file: s.to_owned(), line: v32 },
        Record::Span { ts: v, start_ts: v / 2, scope: v32 },
    ]
}

#[test]
fn every_kind_is_covered_by_the_fixed_cases() {
    let kinds: std::collections::BTreeSet<RecordKind> =
        every_variant_at(0, "").iter().map(Record::kind).collect();
    assert_eq!(kinds.len(), RecordKind::ALL.len());
}

#[test]
fn every_variant_round_trips_at_zero_and_max() {
    for v in [0, 1, 127, 128, u64::from(u32::MAX), 1 << 63, u64::MAX - 1, u64::MAX] {
        for s in ["", "x", "🦀 ünïcødé 名前", "\u{10FFFF}\u{0}"] {
            assert_round_trip(
                &Metadata::default(),
                &one_chunk(every_variant_at(v, s)),
                &Trailer::default(),
            );
        }
    }
}

#[test]
fn all_variants_at_all_extremes_in_one_chunk() {
    // Deltas jump between the extremes in both directions inside one chunk.
    let mut records = Vec::new();
    for v in [0, u64::MAX, 0, 1 << 63, 1, u64::MAX - 1, (1 << 63) - 1, 0] {
        records.extend(every_variant_at(v, "s"));
    }
    assert_round_trip(&Metadata::default(), &one_chunk(records), &Trailer::default());
}

#[test]
fn timestamps_and_addresses_that_go_backwards_round_trip() {
    let mut records = Vec::new();
    let mut ts = u64::MAX;
    let mut addr = 0x7fff_ffff_f000u64;
    for i in 0..2_000u64 {
        ts = ts.wrapping_sub(i * i * 1_000_003);
        addr = addr.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        records.push(Record::Alloc { ts, addr, size: i, align: 16, site: i as u32, weight: 1 });
        records.push(Record::Free { ts: ts / 3, addr: !addr, size: i });
    }
    assert_round_trip(&Metadata::default(), &one_chunk(records), &Trailer::default());
}

#[test]
fn huge_records_round_trip() {
    let deep: Vec<u64> =
        (0..10_000u64).map(|i| 0x5555_0000_0000 + i.wrapping_mul(0x1_2345_6789)).collect();
    let wild: Vec<u64> = (0..5_000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
    let long = "ab€🦀".repeat(50_000);
    let records = vec![
        Record::SiteDef { site: 1, frames: deep },
        Record::SiteDef { site: u32::MAX, frames: wild },
        Record::Symbol {
            addr: u64::MAX,
            function: long.clone(),
            file: long.clone(),
            line: u32::MAX,
        },
        Record::ScopeDef {
            scope: u32::MAX,
            name: long.clone(),
            category: String::new(),
            description: long.clone(),
            priority: i64::MIN,
        },
        Record::Counters {
            ts: u64::MAX,
            scope: 0,
            values: (0..4096).map(|i| u64::MAX - i).collect(),
        },
        Record::Alloc {
            ts: 0,
            addr: u64::MAX,
            size: u64::MAX,
            align: 1 << 63,
            site: u32::MAX,
            weight: u64::MAX,
        },
        Record::ThreadStart { ts: 1, name: long },
    ];
    assert_round_trip(&Metadata::default(), &one_chunk(records), &Trailer::default());
}

#[test]
fn many_chunks_from_many_threads_keep_their_order() {
    let mut chunks = Vec::new();
    for round in 0..5u64 {
        for thread in [0u64, 1, 2, 7, u64::MAX] {
            let base = (round * 1_000_000).wrapping_add(thread.wrapping_mul(17));
            let mut records =
                vec![Record::ThreadStart { ts: base, name: format!("worker-{thread}") }];
            for i in 0..(50 * (thread % 5) + 1) {
                records.push(Record::Alloc {
                    ts: base.wrapping_add(i),
                    addr: 0x1000 + i * 64,
                    size: 64,
                    align: 8,
                    site: 1,
                    weight: 1,
                });
            }
            chunks.push((thread, round, records));
            // An empty chunk in between must not show up.
            chunks.push((thread, round, Vec::new()));
        }
    }
    assert_round_trip(&Metadata::default(), &chunks, &Trailer::default());
}

#[test]
fn an_empty_chunk_writes_nothing() {
    let meta = Metadata::default();
    let mut w = Writer::new(Vec::new(), &meta).unwrap();
    let mut enc = ChunkEncoder::new();
    let before = w.bytes_written();
    // Never begun, and begun but empty.
    w.write_chunk(&enc).unwrap();
    enc.begin(42, 7);
    assert_eq!(enc.records(), 0);
    w.write_chunk(&enc).unwrap();
    assert_eq!(w.bytes_written(), before);
    assert_eq!(w.records_written(), 0);
    let bytes = w.finish(Trailer::default()).unwrap();

    let plain = Writer::new(Vec::new(), &meta).unwrap().finish(Trailer::default()).unwrap();
    assert_eq!(bytes, plain);
    let s = read_session(&bytes);
    assert!(s.chunks.is_empty());
    assert_eq!(s.trailer.chunks, 0);
    assert!(s.trailer.record_counts.is_empty());
}

#[test]
fn an_encoder_is_reusable_and_restarts_its_deltas() {
    let mut w = Writer::new(Vec::new(), &Metadata::default()).unwrap();
    let mut enc = ChunkEncoder::new();
    let a = Record::Alloc { ts: 1_000, addr: 0xdead_beef, size: 8, align: 8, site: 3, weight: 1 };
    enc.begin(1, 0);
    enc.push(&a);
    let first_len = enc.encoded_len();
    w.write_chunk(&enc).unwrap();
    enc.begin(1, 1);
    enc.push(&a);
    // Same bytes: the deltas started again from zero.
    assert_eq!(enc.encoded_len(), first_len);
    w.write_chunk(&enc).unwrap();
    assert_eq!(w.records_written(), 2);
    let bytes = w.finish(Trailer::default()).unwrap();
    let s = read_session(&bytes);
    assert_eq!(s.chunks, vec![(1, 0, vec![a.clone()]), (1, 1, vec![a.clone()])]);
    assert_eq!(s.trailer.count(RecordKind::Alloc), 2);
    assert_eq!(s.trailer.chunks, 2);
}

#[test]
fn writer_counts_match_the_file() {
    let chunks: Vec<ChunkSpec> = (0..4).map(|t| (t, 0, every_variant_at(t * 1000, "n"))).collect();
    let mut w = Writer::new(Vec::new(), &Metadata::default()).unwrap();
    let mut enc = ChunkEncoder::new();
    let mut n = 0;
    for (thread, round, records) in &chunks {
        enc.begin(*thread, *round);
        for r in records {
            enc.push(r);
            n += 1;
        }
        w.write_chunk(&enc).unwrap();
    }
    assert_eq!(w.records_written(), n);
    let written = w.bytes_written();
    let bytes = w.finish(Trailer::default()).unwrap();
    assert!(written < bytes.len() as u64);
    let s = read_session(&bytes);
    assert_eq!(s.trailer.record_counts.iter().map(|(_, n)| n).sum::<u64>(), n);
    assert_eq!(s.trailer.chunks, 4);
}

#[test]
fn compressible_chunks_are_compressed() {
    let records: Vec<Record> = (0..20_000u64)
        .map(|i| Record::Alloc {
            ts: i * 10,
            addr: 0x1000 + (i % 64) * 32,
            size: 32,
            align: 8,
            site: 1,
            weight: 1,
        })
        .collect();
    let mut enc = ChunkEncoder::new();
    enc.begin(1, 0);
    for r in &records {
        enc.push(r);
    }
    let raw = enc.encoded_len();
    let bytes =
        write_session(&Metadata::default(), &one_chunk(records.clone()), Trailer::default());
    assert!(bytes.len() < raw / 4, "{} bytes for {raw} raw", bytes.len());
    assert_eq!(read_session(&bytes).chunks, one_chunk(records));
}

#[test]
fn every_alloc_mode_and_clock_source_round_trips() {
    for alloc_mode in [
        AllocMode::Off,
        AllocMode::Count,
        AllocMode::Full,
        AllocMode::Sample { mean_bytes: 0 },
        AllocMode::Sample { mean_bytes: 1 },
        AllocMode::Sample { mean_bytes: 512 * 1024 },
        AllocMode::Sample { mean_bytes: u64::MAX },
    ] {
        for (source, ticks_per_ns) in [
            (ClockSource::Monotonic, 1.0),
            (ClockSource::Tsc, 2.994_771_234),
            (ClockSource::Tsc, 1e-3),
            (ClockSource::Tsc, 1e3),
        ] {
            let meta = Metadata {
                writer: String::from("pulse 0.1.0"),
                program: String::from("/usr/bin/prögram 🦀"),
                args: vec![String::new(), String::from("--flag=ü"), "x".repeat(10_000)],
                pid: u32::MAX,
                host: String::from("höst"),
                start_unix_ns: u64::MAX,
                clock: ClockInfo { source, ticks_per_ns, calibration: String::from("calibrated") },
                alloc_mode,
                counters: vec![
                    CounterInfo {
                        name: String::from("cycles"),
                        available: true,
                        reason: String::from("perf_event_open"),
                    },
                    CounterInfo {
                        name: String::from("instructions"),
                        available: false,
                        reason: String::from("perf_event_paranoid is 4"),
                    },
                    CounterInfo { name: String::new(), available: false, reason: String::new() },
                ],
                extra: vec![
                    (String::new(), String::new()),
                    (String::from("kernel"), String::from("6.1 ✓")),
                    (String::from("k"), "v".repeat(5_000)),
                ],
            };
            let bytes = write_session(&meta, &[], Trailer::default());
            let s = read_session(&bytes);
            assert_eq!(s.meta, meta);
            assert_eq!(s.meta.alloc_mode.name(), alloc_mode.name());
        }
    }
    assert_eq!(Metadata::default().clock, ClockInfo::monotonic());
}

#[test]
fn trailer_extremes_round_trip() {
    for ticks_per_ns in [0.0, -0.0, 1.0, f64::NAN, f64::INFINITY, f64::MIN, 3.1] {
        let t = Trailer {
            end_ts: u64::MAX,
            end_unix_ns: 0,
            ticks_per_ns,
            chunks: 0,
            record_counts: Vec::new(),
            lost_events: u64::MAX,
            extra: vec![
                (String::from("profiler-bytes"), 123_456),
                (String::new(), u64::MAX),
                (String::from("🦀"), 0),
            ],
            notes: vec![(String::from("counters"), String::from("read failed: 🦀"))],
            counters: Vec::new(),
        };
        let chunks = one_chunk(every_variant_at(5, "t"));
        assert_round_trip(&Metadata::default(), &chunks, &t);
        let s = read_session(&write_session(&Metadata::default(), &chunks, t.clone()));
        assert_eq!(s.trailer.extra("profiler-bytes"), Some(123_456));
        assert_eq!(s.trailer.extra("🦀"), Some(0));
        assert_eq!(s.trailer.note("counters"), Some("read failed: 🦀"));
        assert_eq!(s.trailer.extra("missing"), None);
        assert_eq!(s.trailer.count(RecordKind::Alloc), 2);
        assert_eq!(s.trailer.count(RecordKind::SiteDef), 2);
        assert_eq!(s.trailer.count(RecordKind::Symbol), 1);
    }
}

/// Counters opened at first use travel in the trailer, with notes or
/// without; a trailer with neither is the bytes it was before they existed.
#[test]
fn a_trailers_counters_round_trip() {
    let opened = |name: &str, available| CounterInfo {
        name: name.into(),
        available,
        reason: String::from("🦀 why"),
    };
    let counters = vec![opened("cycles", false), opened("task-clock", true)];
    let notes = vec![(String::from("counters"), String::from("read failed"))];
    for (notes, counters) in [
        (Vec::new(), counters.clone()),
        (notes.clone(), counters.clone()),
        (notes, Vec::new()),
        (Vec::new(), Vec::new()),
    ] {
        let t = Trailer { notes, counters, ..Trailer::default() };
        let chunks = one_chunk(every_variant_at(5, "t"));
        assert_round_trip(&Metadata::default(), &chunks, &t);
    }
    let plain = write_session(&Metadata::default(), &[], Trailer::default());
    let none = Trailer { counters: Vec::new(), notes: Vec::new(), ..Trailer::default() };
    assert_eq!(plain, write_session(&Metadata::default(), &[], none));
}

/// A trailer's lists hold `MAX_LIST` entries at most: a few kilobytes of
/// compressed trailer claiming millions of empty counters or notes is
/// refused in one error, not read into gigabytes.
#[test]
fn a_trailers_lists_past_their_limit_are_refused() {
    let empty = CounterInfo { name: String::new(), available: false, reason: String::new() };
    let at_most = Trailer { counters: vec![empty.clone(); MAX_LIST], ..Trailer::default() };
    let file = write_session(&Metadata::default(), &[], at_most);
    assert_eq!(read_chunks(&file).unwrap().1.unwrap().counters.len(), MAX_LIST);
    let over = [
        Trailer { counters: vec![empty; MAX_LIST + 1], ..Trailer::default() },
        Trailer { notes: vec![(String::new(), String::new()); MAX_LIST + 1], ..Trailer::default() },
    ];
    for t in over {
        let file = write_session(&Metadata::default(), &[], t);
        assert!(file.len() < 4096, "compressed: {} bytes", file.len());
        let err = read_chunks(&file).unwrap_err();
        assert!(err.to_string().contains("more than the 65536 a session may list"), "{err}");
    }
}

// ---------------------------------------------------------------------------
// Hand-built frames: what the public writer cannot produce, built from the
// specification in docs/FORMAT.md (this doubles as a check of that document).

mod spec {
    /// LEB128.
    pub(super) fn varint(buf: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            buf.push(v as u8 | 0x80);
            v >>= 7;
        }
        buf.push(v as u8);
    }

    pub(super) fn zigzag(buf: &mut Vec<u8>, v: i64) {
        varint(buf, ((v << 1) ^ (v >> 63)) as u64);
    }

    pub(super) fn string(buf: &mut Vec<u8>, s: &[u8]) {
        varint(buf, s.len() as u64);
        buf.extend_from_slice(s);
    }

    /// Header + metadata for `Metadata::default()`, in version 1: chunks
    /// with each record's timestamp in the record.
    pub(super) fn header() -> Vec<u8> {
        header_of(1)
    }

    /// Header + metadata for `Metadata::default()` in `version`.
    pub(super) fn header_of(version: u16) -> Vec<u8> {
        let mut meta = Vec::new();
        string(&mut meta, b""); // writer
        string(&mut meta, b""); // program
        varint(&mut meta, 0); // no arguments
        varint(&mut meta, 0); // pid
        string(&mut meta, b""); // host
        varint(&mut meta, 0); // start_unix_ns
        meta.push(0); // monotonic
        meta.extend_from_slice(&1.0f64.to_le_bytes());
        string(&mut meta, b"none needed");
        meta.push(0); // alloc mode off
        varint(&mut meta, 0); // no counters
        varint(&mut meta, 0); // no extra pairs
        let mut out = Vec::new();
        out.extend_from_slice(b"\x89PULSE\r\n");
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        out.extend_from_slice(&meta_crc(version, &meta).to_le_bytes());
        out.extend_from_slice(&meta);
        out
    }

    /// The metadata's CRC: from version 3, of the version's two bytes and
    /// then the metadata.
    pub(super) fn meta_crc(version: u16, meta: &[u8]) -> u32 {
        let mut h = crc32fast::Hasher::new();
        if version >= 3 {
            h.update(&version.to_le_bytes());
        }
        h.update(meta);
        h.finalize()
    }

    /// One frame with the raw codec.
    pub(super) fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut head = [0u8; 16];
        head[0] = kind;
        head[1] = 0;
        head[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        head[8..12].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&head[..12]);
        h.update(payload);
        head[12..16].copy_from_slice(&h.finalize().to_le_bytes());
        let mut out = head.to_vec();
        out.extend_from_slice(payload);
        out
    }

    /// One frame with the zstd codec.
    pub(super) fn zstd_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let stored = zstd::bulk::compress(payload, 1).unwrap();
        let mut head = [0u8; 16];
        head[0] = kind;
        head[1] = 1;
        head[4..8].copy_from_slice(&(stored.len() as u32).to_le_bytes());
        head[8..12].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&head[..12]);
        h.update(&stored);
        head[12..16].copy_from_slice(&h.finalize().to_le_bytes());
        let mut out = head.to_vec();
        out.extend_from_slice(&stored);
        out
    }

    /// A trailer with `chunks` and `counts`, every other field zero.
    pub(super) fn trailer(chunks: u64, counts: &[(u8, u64)]) -> Vec<u8> {
        let mut t = Vec::new();
        varint(&mut t, 0); // end_ts
        varint(&mut t, 0); // end_unix_ns
        t.extend_from_slice(&0f64.to_le_bytes());
        varint(&mut t, chunks);
        varint(&mut t, counts.len() as u64);
        for (tag, n) in counts {
            t.push(*tag);
            varint(&mut t, *n);
        }
        varint(&mut t, 0); // lost events
        varint(&mut t, 0); // extra pairs
        frame(2, &t)
    }
}

fn read_chunks(bytes: &[u8]) -> Result<(Vec<ChunkSpec>, Option<Trailer>), Error> {
    let mut r = Reader::new(bytes)?;
    let mut chunks = Vec::new();
    while let Some(f) = r.next_frame()? {
        match f {
            Frame::Chunk(c) => chunks.push((c.thread, c.round, c.records)),
            Frame::Trailer(t) => return Ok((chunks, Some(t))),
        }
    }
    Ok((chunks, None))
}

/// The records both hand-built files (version 2 and version 1) begin with.
fn hand_built_start() -> Vec<Record> {
    vec![
        Record::Alloc { ts: 100, addr: 0x1000, size: 64, align: 8, site: 5, weight: 1 },
        Record::Free { ts: 90, addr: 0xf00, size: 64 },
        Record::Alloc { ts: 100, addr: 0x1000, size: 1, align: 1, site: 0, weight: 4096 },
        Record::Realloc {
            ts: 120,
            start_ts: 115,
            old_addr: 0x1000,
            old_size: 1,
            new_addr: 0x2000,
            new_size: 300,
            align: 1,
            site: 5,
        },
    ]
}

#[test]
fn the_hand_built_encoding_matches_the_writer_byte_for_byte() {
    // A chunk this small is not worth compressing, so the writer stores it raw.
    let mut rec = Vec::new();
    // Each timestamp's zigzag delta: its low byte, then the rest as a varint.
    let (mut low, mut rest) = (Vec::new(), Vec::new());
    let mut times = |delta: i64| {
        let v = ((delta << 1) ^ (delta >> 63)) as u64;
        low.push(v as u8);
        spec::varint(&mut rest, v >> 8);
    };
    rec.push(0x23); // Alloc, weight 1, align 1 << 3, at an address of its own
    times(100); // ts delta from 0
    spec::zigzag(&mut rec, 0x1000); // address delta from 0
    spec::varint(&mut rec, 64);
    spec::varint(&mut rec, 5);
    rec.push(6); // Free of a block the chunk did not allocate
    times(-10); // ts 90
    spec::zigzag(&mut rec, -0x100); // address 0xf00
    spec::varint(&mut rec, 64);
    rec.push(4); // Alloc with weight
    times(10); // ts 100
    spec::zigzag(&mut rec, 0x100); // address 0x1000
    spec::varint(&mut rec, 1);
    spec::varint(&mut rec, 1);
    spec::varint(&mut rec, 0);
    spec::varint(&mut rec, 4096);
    rec.push(0x68); // Realloc, align 1 << 0, of a recent allocation, moved
    times(20); // ts 120
    spec::zigzag(&mut rec, 5); // called at 115: ts - start_ts, not a running delta
    spec::varint(&mut rec, 0); // the last allocation: 0x1000, 1 byte
    spec::zigzag(&mut rec, 0x1000); // new address 0x2000
    spec::varint(&mut rec, 300);
    spec::varint(&mut rec, 5);
    rec.push(17); // Free of a recent allocation
    times(10); // ts 130
    spec::varint(&mut rec, 0); // the last one: 0x2000, 300 bytes
    rec.push(0x30); // Alloc, align 1, at a recent free's address and size
    times(10); // ts 140
    spec::varint(&mut rec, 0); // the last free: 0x2000, 300 bytes
    spec::varint(&mut rec, 5);
    rec.push(0x43); // Alloc, align 8, at a recent free's address, another size
    times(10); // ts 150
    spec::varint(&mut rec, 1); // the free before: the realloc's old block, 0x1000
    spec::varint(&mut rec, 32);
    spec::varint(&mut rec, 5);
    rec.push(0x7b); // Realloc, align 1 << 3, of a recent allocation, in place
    times(10); // ts 160
    spec::zigzag(&mut rec, 0); // called at 160
    spec::varint(&mut rec, 0); // the last allocation: 0x1000, 32 bytes
    spec::varint(&mut rec, 48);
    spec::varint(&mut rec, 5);
    rec.push(7); // Realloc of an alignment no tag carries
    times(10); // ts 170
    spec::zigzag(&mut rec, 0);
    spec::zigzag(&mut rec, 0x1000 - 0x1000); // old address 0x1000 (the running address)
    spec::varint(&mut rec, 48);
    spec::zigzag(&mut rec, 0x1000); // new address 0x2000
    spec::varint(&mut rec, 64);
    spec::varint(&mut rec, 1 << 9);
    spec::varint(&mut rec, 5);
    rec.push(0x58); // Realloc, align 1, of a recent allocation, to a recent free's address
    times(10); // ts 180
    spec::zigzag(&mut rec, 0); // called at 180
    spec::varint(&mut rec, 0); // the last allocation: 0x2000, 64 bytes
    spec::varint(&mut rec, 3); // the fourth free back: 0xf00
    spec::varint(&mut rec, 128);
    spec::varint(&mut rec, 5);
    rec.push(13); // SiteDef: no timestamp
    spec::varint(&mut rec, 5);
    spec::varint(&mut rec, 2);
    spec::zigzag(&mut rec, 0x4000);
    spec::zigzag(&mut rec, -0x10);
    let mut body = Vec::new();
    spec::varint(&mut body, 9); // thread
    spec::varint(&mut body, 2); // round
    spec::varint(&mut body, rec.len() as u64);
    spec::varint(&mut body, low.len() as u64); // timed records
    body.extend(rec);
    body.extend(low);
    body.extend(rest);
    let mut want = spec::header_of(3);
    want.extend(spec::frame(1, &body));
    want.extend(spec::trailer(1, &[(3, 4), (6, 2), (7, 4), (13, 1)]));

    let mut records = hand_built_start();
    records.extend([
        Record::Free { ts: 130, addr: 0x2000, size: 300 },
        Record::Alloc { ts: 140, addr: 0x2000, size: 300, align: 1, site: 5, weight: 1 },
        Record::Alloc { ts: 150, addr: 0x1000, size: 32, align: 8, site: 5, weight: 1 },
        Record::Realloc {
            ts: 160,
            start_ts: 160,
            old_addr: 0x1000,
            old_size: 32,
            new_addr: 0x1000,
            new_size: 48,
            align: 8,
            site: 5,
        },
        Record::Realloc {
            ts: 170,
            start_ts: 170,
            old_addr: 0x1000,
            old_size: 48,
            new_addr: 0x2000,
            new_size: 64,
            align: 1 << 9,
            site: 5,
        },
        Record::Realloc {
            ts: 180,
            start_ts: 180,
            old_addr: 0x2000,
            old_size: 64,
            new_addr: 0xf00,
            new_size: 128,
            align: 1,
            site: 5,
        },
        Record::SiteDef { site: 5, frames: vec![0x4000, 0x3ff0] },
    ]);
    let got = write_session(&Metadata::default(), &[(9, 2, records.clone())], Trailer::default());
    assert_eq!(got, want);
    assert_eq!(read_session(&want).chunks, vec![(9, 2, records.clone())]);
    // The same chunk in a version 2 file, whose metadata CRC leaves the
    // version out, reads the same.
    let mut v2 = spec::header_of(2);
    v2.extend_from_slice(&want[spec::header_of(3).len()..]);
    let mut r = Reader::new(&v2[..]).expect("a version 2 header reads");
    assert_eq!(r.version(), 2);
    match r.next_frame().expect("the chunk reads") {
        Some(Frame::Chunk(c)) => assert_eq!(c.records, records),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_version_1_file_built_by_hand_still_reads() {
    // Version 1: each record's timestamp in the record, no recent blocks.
    let mut body = Vec::new();
    spec::varint(&mut body, 9); // thread
    spec::varint(&mut body, 2); // round
    body.push(3); // Alloc, weight 1
    spec::zigzag(&mut body, 100); // ts delta from 0
    spec::zigzag(&mut body, 0x1000); // address delta from 0
    spec::varint(&mut body, 64);
    spec::varint(&mut body, 8);
    spec::varint(&mut body, 5);
    body.push(6); // Free
    spec::zigzag(&mut body, -10); // ts 90
    spec::zigzag(&mut body, -0x100); // address 0xf00
    spec::varint(&mut body, 64);
    body.push(4); // Alloc with weight
    spec::zigzag(&mut body, 10); // ts 100
    spec::zigzag(&mut body, 0x100); // address 0x1000
    spec::varint(&mut body, 1);
    spec::varint(&mut body, 1);
    spec::varint(&mut body, 0);
    spec::varint(&mut body, 4096);
    body.push(7); // Realloc
    spec::zigzag(&mut body, 20); // ts 120
    spec::zigzag(&mut body, 5); // called at 115: ts - start_ts, not a running delta
    spec::zigzag(&mut body, 0); // old address 0x1000
    spec::varint(&mut body, 1);
    spec::zigzag(&mut body, 0x1000); // new address 0x2000
    spec::varint(&mut body, 300);
    spec::varint(&mut body, 1);
    spec::varint(&mut body, 5);
    body.push(13); // SiteDef
    spec::varint(&mut body, 5);
    spec::varint(&mut body, 2);
    spec::zigzag(&mut body, 0x4000);
    spec::zigzag(&mut body, -0x10);
    let mut want = spec::header();
    want.extend(spec::frame(1, &body));
    want.extend(spec::trailer(1, &[(3, 2), (6, 1), (7, 1), (13, 1)]));

    let mut records = hand_built_start();
    records.extend([Record::SiteDef { site: 5, frames: vec![0x4000, 0x3ff0] }]);
    assert_eq!(read_chunks(&want).unwrap().0, vec![(9, 2, records)]);
}

#[test]
fn extension_records_are_skipped() {
    let mut body = Vec::new();
    spec::varint(&mut body, 1);
    spec::varint(&mut body, 0);
    body.push(0x80);
    spec::varint(&mut body, 0); // empty extension
    body.push(10); // Pause at 5
    spec::zigzag(&mut body, 5);
    body.push(0xff);
    spec::string(&mut body, &[0xde, 0xad, 0xbe, 0xef, 3, 200, 0xff]);
    body.push(0x9a);
    spec::string(&mut body, &[0u8; 300]); // a two-byte length
    body.push(11); // Resume at 7: the extension did not disturb the deltas
    spec::zigzag(&mut body, 2);
    body.push(0xc0); // an extension as the very last record
    spec::varint(&mut body, 1);
    body.push(1);
    let mut file = spec::header();
    file.extend(spec::frame(1, &body));
    // Extension kinds in the trailer's counts are skipped too.
    file.extend(spec::trailer(1, &[(10, 1), (0x80, 5), (11, 1), (0xff, 9)]));
    let (chunks, trailer) = read_chunks(&file).unwrap();
    assert_eq!(chunks, vec![(1, 0, vec![Record::Pause { ts: 5 }, Record::Resume { ts: 7 }])]);
    let trailer = trailer.unwrap();
    assert_eq!(trailer.record_counts, vec![(RecordKind::Pause, 1), (RecordKind::Resume, 1)]);
}

#[test]
fn a_chunk_of_only_extensions_reads_as_no_records() {
    let mut body = Vec::new();
    spec::varint(&mut body, 3);
    spec::varint(&mut body, 4);
    body.push(0x80);
    spec::string(&mut body, b"future");
    let mut file = spec::header();
    file.extend(spec::frame(1, &body));
    file.extend(spec::trailer(0, &[]));
    let (chunks, _) = read_chunks(&file).unwrap();
    assert_eq!(chunks, vec![(3, 4, Vec::new())]);
}

#[test]
fn an_extension_longer_than_its_frame_is_corrupt() {
    let mut body = Vec::new();
    spec::varint(&mut body, 1);
    spec::varint(&mut body, 0);
    body.push(0x80);
    spec::varint(&mut body, 1_000);
    body.extend_from_slice(&[0; 10]);
    let mut file = spec::header();
    file.extend(spec::frame(1, &body));
    file.extend(spec::trailer(0, &[]));
    assert!(matches!(read_chunks(&file), Err(Error::Corrupt { .. })));
}

#[test]
fn unknown_record_tags_below_the_extension_range_are_corrupt() {
    for tag in [0u8, 18, 0x1f] {
        let mut body = Vec::new();
        spec::varint(&mut body, 1);
        spec::varint(&mut body, 0);
        body.push(tag);
        spec::varint(&mut body, 0);
        let mut file = spec::header();
        file.extend(spec::frame(1, &body));
        file.extend(spec::trailer(0, &[]));
        let err = read_chunks(&file).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { what, .. } if what.contains("tag")),
            "tag {tag}: {err}"
        );
    }
}

#[test]
fn invalid_utf8_names_are_read_lossily() {
    let mut body = Vec::new();
    spec::varint(&mut body, 1);
    spec::varint(&mut body, 0);
    body.push(1); // ThreadStart
    spec::zigzag(&mut body, 0);
    spec::string(&mut body, b"ok\xff\xfename");
    let mut file = spec::header();
    file.extend(spec::frame(1, &body));
    file.extend(spec::trailer(0, &[]));
    let (chunks, _) = read_chunks(&file).unwrap();
    assert_eq!(
        chunks[0].2,
        vec![Record::ThreadStart { ts: 0, name: String::from("ok\u{FFFD}\u{FFFD}name") }]
    );
}

#[test]
fn a_zstd_frame_built_by_hand_reads() {
    let mut body = Vec::new();
    spec::varint(&mut body, 1);
    spec::varint(&mut body, 0);
    for i in 0..100 {
        body.push(10);
        spec::zigzag(&mut body, i);
    }
    let mut file = spec::header();
    file.extend(spec::zstd_frame(1, &body));
    file.extend(spec::trailer(0, &[]));
    let (chunks, _) = read_chunks(&file).unwrap();
    assert_eq!(chunks[0].2.len(), 100);
    assert_eq!(chunks[0].2[99], Record::Pause { ts: 99 * 100 / 2 });
}

#[test]
fn the_magic_is_as_documented() {
    assert_eq!(&MAGIC, b"\x89PULSE\r\n");
    assert_eq!(VERSION, 3);
    let bytes = write_session(&Metadata::default(), &[], Trailer::default());
    assert_eq!(bytes, {
        let mut v = spec::header_of(3);
        v.extend(spec::trailer(0, &[]));
        v
    });
}

#[test]
fn the_writer_refuses_metadata_the_reader_would_refuse() {
    // Regression: these used to be written, and then the whole file was
    // unreadable (`Reader::new` rejects them).
    // A rate so slow or fast that times come out as infinity or zero, too.
    for tpn in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e-300, 9.9e-4, 1e4] {
        let mut meta = Metadata::default();
        meta.clock.ticks_per_ns = tpn;
        let err = Writer::new(Vec::new(), &meta).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{tpn}");
    }
    // And the reader refuses such a rate in a file written some other way.
    let mut meta = Metadata::default();
    meta.clock.ticks_per_ns = 2.5;
    let mut bytes = write_session(&meta, &[], Trailer::default());
    let meta_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let at = bytes[20..20 + meta_len]
        .windows(8)
        .position(|w| w == 2.5f64.to_le_bytes())
        .expect("the rate is in the metadata")
        + 20;
    bytes[at..at + 8].copy_from_slice(&1e-300f64.to_le_bytes());
    let crc = spec::meta_crc(VERSION, &bytes[20..20 + meta_len]);
    bytes[16..20].copy_from_slice(&crc.to_le_bytes());
    let err = Reader::new(&bytes[..]).expect_err("an implausible clock is refused").to_string();
    assert!(err.contains("1e-300 ticks/ns is not a rate a clock can have"), "{err}");
    let mut meta = Metadata::default();
    meta.extra.push((String::from("huge"), "x".repeat(pulse_format::MAX_META_LEN as usize)));
    let err = Writer::new(Vec::new(), &meta).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    // Just under the limit is fine.
    let mut meta = Metadata::default();
    let used = {
        let bytes = write_session(&meta, &[], Trailer::default());
        u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize
    };
    // The pair count stays one byte; the pair adds the empty key's 1-byte
    // length and the value's 4-byte length before the value.
    let room = pulse_format::MAX_META_LEN as usize - used - 1 - 4;
    meta.extra.push((String::new(), "y".repeat(room)));
    let bytes = write_session(&meta, &[], Trailer::default());
    assert_eq!(u32::from_le_bytes(bytes[12..16].try_into().unwrap()), pulse_format::MAX_META_LEN);
    assert_eq!(read_session(&bytes).meta, meta);
}

/// The hex dump under "## Example" in docs/FORMAT.md.
fn documented_example() -> Vec<u8> {
    let doc = include_str!("../../docs/FORMAT.md");
    let example = &doc[doc.find("## Example").expect("an example section")..];
    let block = example.split("```text\n").nth(1).expect("a hex block");
    let block = &block[..block.find("```").expect("the block ends")];
    let mut bytes = Vec::new();
    for line in block.lines() {
        // "0000  89 50 …": an offset, two spaces, 16 hex bytes, then prose.
        let (offset, rest) = line.split_at(4);
        assert_eq!(usize::from_str_radix(offset, 16).unwrap(), bytes.len(), "{line}");
        let hex = &rest[2..rest.len().min(2 + 16 * 3 - 1)];
        for b in hex.split_whitespace() {
            bytes.push(u8::from_str_radix(b, 16).unwrap());
        }
    }
    bytes
}

#[test]
fn the_example_in_the_specification_is_what_the_writer_writes() {
    let records = vec![
        Record::Alloc { ts: 100, addr: 0x1000, size: 64, align: 8, site: 0, weight: 1 },
        Record::Free { ts: 90, addr: 0x1000, size: 64 },
    ];
    let bytes = write_session(&Metadata::default(), &[(1, 0, records.clone())], Trailer::default());
    assert_eq!(bytes.len(), 115);
    assert_eq!(documented_example(), bytes);
    assert_eq!(read_session(&bytes).chunks, vec![(1, 0, records)]);
}
