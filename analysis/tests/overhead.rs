//! pulse's estimate of its own cost on the program's threads: each stack
//! walk at the depth the program's stacks had, where the session measured
//! what a frame costs.

use pulse_analysis::{report, Profile, ReportOptions};
use pulse_format::{AllocMode, ChunkEncoder, ClockInfo, Metadata, Record, Trailer, Writer};

/// A session whose site 1 has 12 frames and 100 allocations, site 2 22
/// frames and 300, with the costs `extra` says were measured at its start.
fn session(extra: &[(&str, &str)]) -> Profile {
    let meta = Metadata {
        writer: "overhead test".into(),
        program: "/app".into(),
        args: Vec::new(),
        pid: 1,
        host: "host".into(),
        start_unix_ns: 0,
        clock: ClockInfo::monotonic(),
        alloc_mode: AllocMode::Full,
        counters: Vec::new(),
        extra: extra.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
    };
    let mut w = Writer::new(Vec::new(), &meta).unwrap();
    let mut enc = ChunkEncoder::new();
    enc.begin(1, 0);
    enc.push(&Record::ThreadStart { ts: 1, name: "main".into() });
    for (site, frames) in [(1u32, 12u64), (2, 22)] {
        enc.push(&Record::SiteDef { site, frames: (1..=frames).map(|f| 0x1000 * f).collect() });
    }
    let mut ts = 10;
    for (site, n) in [(1u32, 100u64), (2, 300)] {
        for i in 0..n {
            ts += 1;
            let addr = 0x10_0000 * u64::from(site) + 64 * i;
            enc.push(&Record::Alloc { ts, addr, size: 32, align: 8, site, weight: 1 });
        }
    }
    w.write_chunk(&enc).unwrap();
    Profile::read(&w.finish(Trailer::default()).unwrap()[..]).unwrap()
}

#[test]
fn a_stack_costs_what_its_frames_cost() {
    let p = session(&[
        ("cost.event_ns", "10"),
        ("cost.stack_ns", "40"),
        ("cost.frame_ns", "1.00"),
        ("stack_depth", "32"),
    ]);
    let o = report(&p, &ReportOptions::default()).overhead.expect("the session has its costs");
    assert_eq!(o.stacked_events, 400);
    // (100 × 12 + 300 × 22) / 400 frames a stack, 12.5 fewer than the 32
    // the calibration walked, at a nanosecond each.
    assert_eq!(o.stack_frames, Some(19.5));
    assert_eq!(o.stack_ns, 27.5);
    assert_eq!(o.on_threads_ns, (o.events as f64 * 10.0 + 400.0 * 27.5) as u64);
}

#[test]
fn a_session_that_measured_no_frame_costs_its_stacks_as_measured() {
    let p = session(&[("cost.event_ns", "10"), ("cost.stack_ns", "40"), ("stack_depth", "32")]);
    let o = report(&p, &ReportOptions::default()).overhead.expect("the session has its costs");
    assert_eq!((o.stack_frames, o.stack_ns), (None, 40.0));
    assert_eq!(o.on_threads_ns, (o.events as f64 * 10.0 + 400.0 * 40.0) as u64);
}

#[test]
fn a_frame_cost_that_is_not_a_finite_number_is_not_used() {
    for bad in ["inf", "NaN", "-1"] {
        let p = session(&[
            ("cost.event_ns", "10"),
            ("cost.stack_ns", "40"),
            ("cost.frame_ns", bad),
            ("stack_depth", "32"),
        ]);
        let o = report(&p, &ReportOptions::default()).overhead.expect("the session has its costs");
        assert_eq!((o.stack_frames, o.stack_ns), (None, 40.0), "cost.frame_ns {bad}");
    }
}
