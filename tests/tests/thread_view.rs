//! A session read one thread at a time: each view holds that thread's
//! scopes and the blocks it allocated, wherever they were freed, and the
//! threads' scoped time is counted per thread.

use std::process::Command;

use pulse_analysis::{report, LoadOptions, Profile, Report, ReportOptions, SiteRow};
use pulse_tests::temp_session;

fn session() -> std::path::PathBuf {
    let path = temp_session("thread-view");
    let out = Command::new(env!("CARGO_BIN_EXE_thread_view"))
        .env("PULSE_OUT", &path)
        .output()
        .expect("run thread_view");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

fn view(path: &std::path::Path, wanted: &str) -> Profile {
    Profile::load_with(path, &LoadOptions::new().threads([wanted]), &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{e}"))
}

fn everything(p: &Profile) -> Report {
    let mut o = ReportOptions::default();
    o.top = usize::MAX;
    report(p, &o)
}

/// The rows of sites in `function`, summed: (allocs, bytes, live blocks at end, live bytes at end).
fn in_function(r: &Report, function: &str) -> (u64, u64, u64, u64) {
    r.sites.iter().filter(|s: &&SiteRow| s.function == function).fold((0, 0, 0, 0), |a, s| {
        (a.0 + s.allocs, a.1 + s.bytes, a.2 + s.live_blocks_at_end, a.3 + s.live_bytes_at_end)
    })
}

#[test]
fn each_thread_view_holds_its_own_scopes_and_blocks_wherever_freed() {
    let path = session();
    let whole = Profile::load(&path).unwrap();
    let maker_id = whole.threads.values().find(|t| t.name == "maker").expect("maker").id;
    let taker_id = whole.threads.values().find(|t| t.name == "taker").expect("taker").id;

    let maker = view(&path, "maker");
    let r = everything(&maker);
    assert_eq!(maker.threads.keys().copied().collect::<Vec<_>>(), [maker_id]);
    assert_eq!(r.selection.as_ref().unwrap().kept, [maker_id]);
    let names: Vec<&str> = r.scopes.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["make"]);
    // 1 outer vector + 100 buffers + 10 leaked blocks, the 10 still live.
    assert_eq!(in_function(&r, "thread_view::make"), (111, 100 * 8 * 3 + 100_000 + 640, 10, 640));
    // The 100 buffers and the outer vector were freed on taker: they leave
    // maker's live set, and the flow says where they went.
    let flow = r.flows.iter().find(|f| f.from == maker_id && f.to == taker_id).expect("flow");
    assert_eq!((flow.blocks, flow.bytes), (101, 100_000 + 2400));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let leaked = r.live_at_end.iter().find(|l| l.function == "thread_view::make").expect("leak");
    assert_eq!((leaked.blocks, leaked.bytes), (10, 640));

    let taker = view(&path, &format!("#{taker_id}"));
    let r = everything(&taker);
    let names: Vec<&str> = r.scopes.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["take"]);
    assert_eq!(in_function(&r, "thread_view::take"), (5, 5 * 256, 0, 0));
    assert_eq!(in_function(&r, "thread_view::make"), (0, 0, 0, 0));
    // Freeing maker's blocks is not taker's business: no anomaly, no count.
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(taker.anomalies.unknown_frees, 0);
    assert!(taker.memory.frees >= 5 && taker.memory.frees < 101, "{:?}", taker.memory);

    // Both views and the whole agree on each thread's figures.
    let w = &whole.threads[&maker_id];
    assert_eq!(maker.threads[&maker_id], *w);
    assert_eq!(taker.threads[&taker_id], whole.threads[&taker_id]);
    assert!(w.scoped_ns > 0 && whole.threads[&taker_id].scoped_ns > 0);
    assert_eq!(whole.memory.peak_bytes.max(maker.memory.peak_bytes), whole.memory.peak_bytes);

    // The heap by the scope each block was allocated in: `make` built up
    // every buffer before handing them over, and only the leak is left.
    let scope = |name: &str| {
        let id = whole.scopes.values().find(|s| s.name == name).expect(name).id;
        whole.scope_memory[&id]
    };
    let make = scope("make");
    assert_eq!(make.peak_live_bytes, 2400 + 100_000 + 640);
    assert_eq!((make.live_blocks_at_end, make.live_bytes_at_end), (10, 640));
    let take = scope("take");
    assert_eq!((take.peak_live_bytes, take.live_bytes_at_end), (256, 0));
}

#[test]
fn several_threads_make_one_view_and_an_unknown_one_is_an_error() {
    let path = session();
    let both =
        Profile::load_with(&path, &LoadOptions::new().threads(["maker", "taker"]), &mut |_, _| {})
            .unwrap();
    let r = everything(&both);
    let names: Vec<&str> = r.scopes.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["make", "take"]);
    assert_eq!(in_function(&r, "thread_view::make").2, 10);

    let err = Profile::load_with(&path, &LoadOptions::new().threads(["nope"]), &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("no thread matches nope"), "{err}");
    assert!(err.contains("maker") && err.contains("taker"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}
