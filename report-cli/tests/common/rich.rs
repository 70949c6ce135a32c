//! A session with what the checked-in real ones lack: counters read by a
//! scope, recommendations, a leak, an asynchronous operation, a call-tree
//! cut, pulse's measured costs and a trailer's notes.

use pulse_format::{
    AllocMode, ChunkEncoder, ClockInfo, CounterInfo, Metadata, Record, Trailer, Writer,
};

const LOOP: u32 = 1;
const OUTER: u32 = 2;
const TINY: u32 = 3;
const FETCH: u32 = 4;
const SHORT: u64 = 0x1000_0000;
const KEPT: u64 = 0x2000_0000;
const HANDED: u64 = 0x3000_0000;

fn scope_def(scope: u32, name: &str, category: &str) -> Record {
    Record::ScopeDef {
        scope,
        name: name.into(),
        category: category.into(),
        description: String::new(),
        priority: 0,
    }
}

fn alloc(ts: u64, addr: u64, size: u64) -> Record {
    Record::Alloc { ts, addr, size, align: 8, site: 0, weight: 1 }
}

/// Two threads on the monotonic clock. `main` runs `work::Loop` 2000 times
/// inside `work::Outer`, reading cycles, instructions and the cache
/// counters at each end (0.2 instructions per cycle, 60 % of references
/// missed), allocating six short-lived blocks each time and, from the
/// thousandth on, keeping one (a leak); a 50 ns `tiny` under the call
/// tree's cut; then `io::Fetch`, an asynchronous operation polled twice.
/// `worker` frees five blocks `main` handed it.
pub fn rich_session(mode: AllocMode) -> Vec<u8> {
    let meta = Metadata {
        writer: "pulse-cli schema tests".into(),
        program: "/work/app/target/release/app".into(),
        args: vec!["--rich".into()],
        pid: 7,
        host: "testhost".into(),
        start_unix_ns: 1_700_000_000_000_000_000,
        clock: ClockInfo::monotonic(),
        alloc_mode: mode,
        counters: ["cycles", "instructions", "cache-references", "cache-misses"]
            .iter()
            .map(|n| CounterInfo { name: (*n).into(), available: true, reason: "hardware".into() })
            .chain([CounterInfo {
                name: "branch-misses".into(),
                available: false,
                reason: "permission denied".into(),
            }])
            .collect(),
        extra: vec![("cost.event_ns".into(), "10".into()), ("cost.stack_ns".into(), "20".into())],
    };
    let mut main = vec![
        Record::ThreadStart { ts: 900_000, name: "main".into() },
        scope_def(LOOP, "Loop", "work"),
        scope_def(OUTER, "Outer", "work"),
        scope_def(TINY, "tiny", ""),
        scope_def(FETCH, "Fetch", "io"),
    ];
    for k in 0..5 {
        main.push(alloc(950_000 + k, HANDED + k * 64, 48));
    }
    main.push(Record::ScopeEnter { ts: 999_000, scope: OUTER });
    let reading = |i: u64, end: u64| {
        vec![
            i * 10_000 + end * 10_000,
            i * 2000 + end * 2000,
            i * 100 + end * 100,
            i * 60 + end * 60,
        ]
    };
    for i in 0..2000u64 {
        let t = 1_000_000 + i * 10_000;
        main.push(Record::ScopeEnter { ts: t, scope: LOOP });
        main.push(Record::Counters { ts: t + 1, scope: LOOP, values: reading(i, 0) });
        for k in 0..6 {
            let addr = SHORT + (i * 6 + k) * 64;
            main.push(alloc(t + 100 + k * 10, addr, 32));
            main.push(Record::Free { ts: t + 105 + k * 10, addr, size: 32 });
        }
        if i >= 1000 {
            main.push(alloc(t + 500, KEPT + i * 16, 16));
        }
        main.push(Record::Counters { ts: t + 8_999, scope: LOOP, values: reading(i, 1) });
        main.push(Record::ScopeExit { ts: t + 9_000, scope: LOOP });
    }
    let end = 1_000_000 + 2000 * 10_000;
    main.push(Record::ScopeEnter { ts: end, scope: TINY });
    main.push(Record::ScopeExit { ts: end + 50, scope: TINY });
    main.push(Record::ScopeExit { ts: end + 1_000, scope: OUTER });
    let fetch = end + 2_000;
    main.push(Record::ScopeEnter { ts: fetch, scope: FETCH });
    main.push(Record::ScopeExit { ts: fetch + 1_000, scope: FETCH });
    main.push(Record::ScopeEnter { ts: fetch + 5_000, scope: FETCH });
    main.push(Record::ScopeExit { ts: fetch + 6_000, scope: FETCH });
    main.push(Record::Span { ts: fetch + 6_000, start_ts: fetch, scope: FETCH });
    main.push(Record::ThreadEnd { ts: fetch + 10_000 });
    let mut worker = vec![Record::ThreadStart { ts: 950_000, name: "worker".into() }];
    for k in 0..5 {
        worker.push(Record::Free { ts: fetch + 20_000 + k, addr: HANDED + k * 64, size: 48 });
    }
    worker.push(Record::ThreadEnd { ts: fetch + 30_000 });

    let mut w = Writer::new(Vec::new(), &meta).expect("header");
    let mut enc = ChunkEncoder::new();
    for (thread, records) in [(1, &main), (2, &worker)] {
        enc.begin(thread, 0);
        for r in records {
            enc.push(r);
        }
        w.write_chunk(&enc).expect("chunk");
    }
    let extra = [
        ("collector_cpu_ns", 5_000_000),
        ("wait_ns", 1_000),
        ("finish_ns", 2_000_000),
        ("pulse_allocs", 12),
        ("pulse_bytes", 4096),
        ("pulse_ring_bytes", 1 << 20),
    ];
    w.finish(Trailer {
        end_ts: fetch + 40_000,
        end_unix_ns: 1_700_000_000_030_000_000,
        ticks_per_ns: 1.0,
        extra: extra.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        notes: vec![("counters".into(), "cycles could no longer be read on thread 1".into())],
        ..Trailer::default()
    })
    .expect("trailer")
}
