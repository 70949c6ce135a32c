//! A steady leak is reported as a leak at its own function and line, with
//! the exact number of blocks and bytes; a bounded cache that lives to the
//! end is told apart; `pulse leaks` exits with status 5.

use std::process::Command;

use pulse_analysis::{leaks, Profile, Trend};
use pulse_tests::temp_session;

#[test]
fn a_leak_is_told_apart_from_a_cache() {
    let path = temp_session("leaky");
    let status =
        Command::new(env!("CARGO_BIN_EXE_leaky")).env("PULSE_OUT", &path).status().unwrap();
    assert!(status.success());
    let p = Profile::load(&path).unwrap();
    let found = leaks(&p);
    let leak = found.iter().find(|l| l.function == "leaky::remember").expect("the leak's site");
    assert_eq!((leak.blocks, leak.bytes), (50, 50 * 64));
    assert_eq!(leak.trend, Trend::Growing, "{:?}", leak.history);
    assert!(leak.place.ends_with("leaky.rs:14"), "{}", leak.place);
    let cache = found
        .iter()
        .find(|l| l.function == "leaky::main" && l.blocks == 50)
        .expect("the cache's entries");
    assert_eq!(cache.trend, Trend::Flat, "{:?}", cache.history);
    assert!(
        found.iter().filter(|l| l.trend == Trend::Growing).all(|l| l.function == "leaky::remember"),
        "{found:#?}"
    );
}

/// `leak_shapes MODE`'s leaks.
fn shape(mode: &str) -> Vec<pulse_analysis::Leak> {
    let path = temp_session(mode);
    let status = Command::new(env!("CARGO_BIN_EXE_leak_shapes"))
        .arg(mode)
        .env("PULSE_OUT", &path)
        .status()
        .unwrap();
    assert!(status.success());
    pulse_analysis::leaks(&pulse_analysis::Profile::load(&path).unwrap())
}

#[test]
fn a_loop_that_leaks_and_exits_is_a_leak() {
    let found = shape("loop-exit");
    let leak = found.iter().find(|l| l.function == "leak_shapes::leak").expect("the leak's site");
    // Reached through two callers: one line, one row, both stacks' blocks.
    assert_eq!((leak.blocks, leak.other_stacks), (1000, 1), "{found:#?}");
    assert_eq!(found.iter().filter(|l| l.function == "leak_shapes::leak").count(), 1);
    assert_eq!(leak.trend, Trend::Growing, "{:?}", leak.history);
}

#[test]
fn a_cache_filled_at_start_and_worked_with_is_not_a_leak() {
    let found = shape("cache-work");
    let cache = found.iter().find(|l| l.function == "leak_shapes::fill").expect("the cache's site");
    assert_eq!(cache.blocks, 1000);
    assert_eq!(cache.trend, Trend::Flat, "{:?}", cache.history);
    assert!(!found.iter().any(pulse_analysis::Leak::is_leak), "no leak: {found:#?}");
}

#[test]
fn a_file_cut_before_its_session_ended_calls_growth_at_the_cut_no_sure_leak() {
    let path = temp_session("leaky-cut");
    let status =
        Command::new(env!("CARGO_BIN_EXE_leaky")).env("PULSE_OUT", &path).status().unwrap();
    assert!(status.success());
    // A program killed after its last round was written: every event is
    // there, the trailer is not.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let p = Profile::load(&path).unwrap();
    assert!(p.truncated.is_some());
    let report = pulse_analysis::leak_report(&p, 10, false);
    let leak = report.leaks.iter().find(|l| l.function == "leaky::remember").expect("its site");
    assert_eq!(leak.trend, Trend::Growing, "{:?}", leak.history);
    assert!(report.cut);
    let mut text = Vec::new();
    report.render_width(&mut text, pulse_analysis::Width::Wide).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.starts_with("The file, or a run merged into it, was cut"), "{text}");
    assert!(text.contains("50 blocks, 3.12 KiB live at the cut — still growing when the file was cut: a leak, or work under way"), "{text}");
    assert!(!text.contains("LEAK"), "{text}");
    let recs = pulse_analysis::recommend(&p, &Default::default());
    let r = recs
        .iter()
        .find(|r| r.category == pulse_analysis::Category::Leak)
        .unwrap_or_else(|| panic!("{recs:#?}"));
    assert!(r.evidence.contains("live when the file was cut"), "{r:#?}");
    assert!(r.severity <= pulse_analysis::Severity::High, "{r:#?}");
    // Merged with a whole run of the same program: the cut run's rows say
    // so, the whole run's do not.
    let whole = temp_session("leaky-whole");
    let status =
        Command::new(env!("CARGO_BIN_EXE_leaky")).env("PULSE_OUT", &whole).status().unwrap();
    assert!(status.success());
    let merged = temp_session("leaky-merged");
    let out = std::fs::File::create(&merged).unwrap();
    let summary = pulse_analysis::merge(&[path.clone(), whole], out).unwrap();
    assert!(summary.warnings.iter().any(|w| w.contains("merged up to the cut")), "{summary:?}");
    let p = Profile::load(&merged).unwrap();
    assert!(p.truncated.is_none(), "a merge is a whole file");
    let rows: Vec<(bool, Trend)> = pulse_analysis::leaks(&p)
        .iter()
        .filter(|l| l.function == "leaky::remember")
        .map(|l| (l.at_cut, l.trend))
        .collect();
    assert_eq!(rows, [(true, Trend::Growing), (false, Trend::Growing)], "one row a run");
    let report = pulse_analysis::leak_report(&p, 10, false);
    assert!(report.cut);
    let recs = pulse_analysis::recommend(&p, &Default::default());
    let leaks: Vec<&str> = recs
        .iter()
        .filter(|r| r.category == pulse_analysis::Category::Leak)
        .map(|r| r.evidence.as_str())
        .collect();
    assert_eq!(leaks.len(), 2, "{recs:#?}");
    assert_eq!(leaks.iter().filter(|e| e.contains("when the file was cut")).count(), 1);
    // A merge given to a merge keeps its runs, and which of them was cut.
    let again = temp_session("leaky-merged-again");
    let out = std::fs::File::create(&again).unwrap();
    pulse_analysis::merge(&[whole_again(), merged], out).unwrap();
    let rows: Vec<bool> = pulse_analysis::leaks(&Profile::load(&again).unwrap())
        .iter()
        .filter(|l| l.function == "leaky::remember")
        .map(|l| l.at_cut)
        .collect();
    assert_eq!(rows, [false, true, false], "the whole run, the cut one, the whole one");
}

/// Another whole run of `leaky`.
fn whole_again() -> std::path::PathBuf {
    let path = temp_session("leaky-whole-again");
    let status =
        Command::new(env!("CARGO_BIN_EXE_leaky")).env("PULSE_OUT", &path).status().unwrap();
    assert!(status.success());
    path
}

/// `inputs` merged into a new session file.
fn merge_of(name: &str, inputs: &[std::path::PathBuf]) -> std::path::PathBuf {
    let path = temp_session(name);
    let out = std::fs::File::create(&path).unwrap();
    pulse_analysis::merge(inputs, out).unwrap();
    path
}

#[test]
fn a_merge_of_merges_keeps_every_run_apart_and_where_one_was_cut() {
    let runs: Vec<std::path::PathBuf> = (0..4).map(|_| whole_again()).collect();
    let pairs = [merge_of("pair-a", &runs[..2]), merge_of("pair-b", &runs[2..])];
    let nested = Profile::load(merge_of("nested", &pairs)).unwrap();
    let flat = Profile::load(merge_of("flat", &runs)).unwrap();
    // Threads and addresses of the four runs stay apart, as in one merge.
    assert_eq!(nested.threads.len(), 4);
    assert_eq!(nested.memory.live_blocks_at_end, flat.memory.live_blocks_at_end);
    let growing = |p: &Profile| {
        pulse_analysis::leaks(p)
            .iter()
            .filter(|l| l.function == "leaky::remember")
            .map(|l| (l.blocks, l.trend))
            .collect::<Vec<_>>()
    };
    assert_eq!(growing(&nested), [(50, Trend::Growing); 4]);
    // A merged file cut in its second run: its first is whole, read as it
    // is or merged again.
    let cut = temp_session("pair-cut");
    let bytes = std::fs::read(&pairs[0]).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 2000]).unwrap();
    let cut_rows = |p: &Profile| {
        pulse_analysis::leaks(p).iter().map(|l| (l.site, l.at_cut)).collect::<Vec<_>>()
    };
    let direct = Profile::load(&cut).unwrap();
    assert!(direct.truncated.is_some());
    let again = Profile::load(merge_of("pair-cut-again", &[cut])).unwrap();
    assert_eq!(cut_rows(&direct), cut_rows(&again));
    assert!(cut_rows(&direct).iter().any(|&(_, at_cut)| !at_cut), "the first run is whole");
}

#[test]
fn a_sampled_session_says_what_its_rows_count() {
    // At the default interval `leaky`'s 13 KiB live at the end get no
    // sampled stack: one row of every line's blocks, which must say so.
    let path = temp_session("leaky-sampled");
    let status = Command::new(env!("CARGO_BIN_EXE_leaky"))
        .env("PULSE_OUT", &path)
        .env("PULSE_ALLOC", "sample")
        .status()
        .unwrap();
    assert!(status.success());
    let p = Profile::load(&path).unwrap();
    let report = pulse_analysis::leak_report(&p, 10, false);
    assert_eq!(report.sampled, Some(512 * 1024));
    let rest = report.leaks.iter().find(|l| l.stack.is_empty()).expect("the unsampled blocks");
    assert_eq!(rest.site, pulse_format::NO_SITE);
    let mut text = Vec::new();
    report.render_width(&mut text, pulse_analysis::Width::Wide).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.starts_with("A sampled session (a stack for every 512 KiB allocated"), "{text}");
    assert!(text.contains("(no stack captured: blocks of any line that the sample took no stack of; PULSE_ALLOC=full"), "{text}");
    // Sampled more densely, the leak's line is found, its row counting the
    // blocks the sample took and estimating all of them: 50 of 64 bytes.
    let dense = temp_session("leaky-sampled-dense");
    let status = Command::new(env!("CARGO_BIN_EXE_leaky"))
        .env("PULSE_OUT", &dense)
        .env("PULSE_ALLOC", "sample")
        .env("PULSE_SAMPLE_BYTES", "32")
        .status()
        .unwrap();
    assert!(status.success());
    let report = pulse_analysis::leak_report(&Profile::load(&dense).unwrap(), 10, false);
    let leak = report.leaks.iter().find(|l| l.function == "leaky::remember").expect("its row");
    assert!(leak.blocks <= 50 && leak.bytes == leak.blocks * 64, "{leak:?}");
    let off = leak.estimated_bytes as f64 / (50.0 * 64.0) - 1.0;
    assert!(off.abs() < 0.25, "{} B estimated of 3200: {leak:?}", leak.estimated_bytes);
    let mut text = Vec::new();
    report.render_width(&mut text, pulse_analysis::Width::Wide).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains(" live at end (sampled: about "), "{text}");
    // A full session's report says nothing of sampling.
    let full = temp_session("leaky-full");
    let status =
        Command::new(env!("CARGO_BIN_EXE_leaky")).env("PULSE_OUT", &full).status().unwrap();
    assert!(status.success());
    let report = pulse_analysis::leak_report(&Profile::load(&full).unwrap(), 10, false);
    assert_eq!(report.sampled, None);
    assert!(report.leaks.iter().all(|l| l.estimated_bytes == l.bytes), "{:?}", report.leaks);
}
