//! A session that holds each thing a well-formed one should not — a free
//! of a block allocated before the session began, a scope exit without its
//! entry, a scope open at the end, a clock that steps back, stack addresses
//! no symbol names, an allocation at a site never defined — written through
//! pulse-format's writer. Each is counted exactly, the figures around it
//! stay sound, and the report says each once.

#[path = "support/written.rs"]
mod written;

use pulse_analysis::format::Record;
use pulse_analysis::{Profile, ReportOptions};

fn session(defs: &[Record], events: &[Record]) -> Vec<u8> {
    written::session("/work/anomalies/target/debug/anomalies", defs, events)
}

fn alloc(ts: u64, addr: u64, size: u64, site: u32) -> Record {
    Record::Alloc { ts, addr, size, align: 8, site, weight: 1 }
}

fn defs() -> Vec<Record> {
    vec![
        Record::ScopeDef {
            scope: 1,
            name: String::from("work"),
            category: String::new(),
            description: String::new(),
            priority: 0,
        },
        // Site 1: two addresses, one of them symbolized.
        Record::SiteDef { site: 1, frames: vec![0x1000, 0x2000] },
        Record::Symbol {
            addr: 0x1000,
            function: String::from("anomalies::work"),
            file: String::from("src/main.rs"),
            line: 7,
        },
        // Site 2: an address no symbol names, shared with site 1's.
        Record::SiteDef { site: 2, frames: vec![0x2000, 0x3000] },
    ]
}

#[test]
fn each_anomaly_is_counted_once_and_reported_once() {
    let events = vec![
        Record::ThreadStart { ts: 1, name: String::from("main") },
        Record::Free { ts: 2, addr: 0xdead, size: 64 },
        Record::ScopeExit { ts: 3, scope: 1 },
        Record::ScopeEnter { ts: 100, scope: 1 },
        alloc(110, 0xa0, 32, 1),
        // The clock steps back: the scope's exit comes before its entry.
        Record::ScopeExit { ts: 50, scope: 1 },
        alloc(120, 0xb0, 16, 2),
        // Site 9 is never defined.
        alloc(130, 0xc0, 8, 9),
        Record::Free { ts: 140, addr: 0xa0, size: 32 },
        // Back again, twice in a row: two steps.
        Record::Free { ts: 135, addr: 0xb0, size: 16 },
        Record::Free { ts: 134, addr: 0xc0, size: 8 },
        Record::ScopeEnter { ts: 200, scope: 1 },
    ];
    let bytes = session(&defs(), &events);
    let p = Profile::read(&bytes[..]).unwrap();
    let a = &p.anomalies;
    assert_eq!(a.unknown_frees, 1);
    assert_eq!(a.unmatched_exits, 1);
    assert_eq!(a.open_at_end, 1);
    assert_eq!(a.clock_steps_back, 3);
    assert_eq!(a.unsymbolized_addresses, 2, "0x2000 and 0x3000");
    assert_eq!(a.undefined_sites, 1);
    assert_eq!(a.reused_live_addresses, 0);

    // Around them, the figures stay what the events say.
    assert_eq!(p.memory.allocs, 3);
    assert_eq!(p.memory.frees, 4);
    assert_eq!(p.memory.bytes_allocated, 56);
    assert_eq!(p.memory.bytes_freed, 56 + 64);
    let work = &p.scope_times[&1];
    // Entered twice: once closed across the step back (zero), once at the end.
    assert_eq!(work.count, 2);
    assert_eq!(work.min_ns, 0);

    let report = pulse_analysis::report(&p, &ReportOptions::default());
    let once = |needle: &str| {
        let n = report.warnings.iter().filter(|w| w.contains(needle)).count();
        assert_eq!(n, 1, "{needle:?} in {:#?}", report.warnings);
    };
    once("1 free of blocks allocated before the session began");
    once("1 scope exits without a matching entry");
    once("1 scope was still open when the session ended");
    once("the clock stepped back 3 times within a thread");
    once("2 stack addresses have no symbol");
    once("1 allocation sites have no stack in the session");
    for w in &report.warnings {
        assert!(!w.contains('\n'), "one line each: {w:?}");
    }
}

#[test]
fn a_clean_session_has_no_anomaly() {
    let mut defs = defs();
    defs.push(Record::Symbol {
        addr: 0x2000,
        function: String::from("anomalies::main"),
        file: String::from("src/main.rs"),
        line: 20,
    });
    // An address the symbolizer could not name still has its record.
    defs.push(Record::Symbol {
        addr: 0x3000,
        function: String::new(),
        file: String::new(),
        line: 0,
    });
    let events = vec![
        Record::ThreadStart { ts: 1, name: String::from("main") },
        Record::ScopeEnter { ts: 100, scope: 1 },
        alloc(110, 0xa0, 32, 1),
        alloc(120, 0xb0, 16, 2),
        Record::Free { ts: 130, addr: 0xa0, size: 32 },
        Record::Free { ts: 140, addr: 0xb0, size: 16 },
        // A periodic counter sample carries the collector's clock: earlier
        // than the thread's last event is not a step back.
        Record::Counters { ts: 125, scope: 0, values: vec![] },
        Record::ScopeExit { ts: 150, scope: 1 },
    ];
    let p = Profile::read(&session(&defs, &events)[..]).unwrap();
    assert_eq!(p.anomalies, Default::default());
    assert!(pulse_analysis::report(&p, &ReportOptions::default()).warnings.is_empty());
}
