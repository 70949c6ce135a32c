//! What every `pulse` command computes, run on arbitrary bytes read as a
//! session file, through the `pulse-analysis` calls `report-cli/src/main.rs`
//! makes: `report`, `hotspots` (with and without `--tree`), `leaks`,
//! `flamegraph` of each kind, `timeline`, `diff` (against itself and
//! against a real session, both ways), `export` in every format (folded of
//! each kind, chrome, dhat, pprof, json), `info`, the `--thread` views, and
//! `merge`.
//!
//! The fuzz targets (`fuzz/fuzz_targets/commands.rs`, `merge.rs`) and the
//! stable replay of their corpora (`analysis/tests/fuzz_corpus.rs`)
//! include this file as a module, so CI runs every seed through the same
//! code libFuzzer runs.
//!
//! Frame checksums stand between random bytes and the decoder, and a
//! fuzzer rarely guesses a CRC: each input runs once as it is, and once
//! more with every checksum made to match, so mutated payloads reach the
//! record decoder, the replay and the commands.

use std::io::{self, Write};
use std::sync::OnceLock;

use pulse_analysis::format::MAGIC;
use pulse_analysis::{FoldedKind, LoadOptions, Profile, ReportOptions, Sections};

/// A real session (`job fast` from `pulse-tests`) to diff against.
const REFERENCE: &[u8] = include_bytes!("../corpus/commands/real-job-fast");

/// Runs every command on `data`. Returns whether it read as a whole
/// session (a trailer, no error) as given.
pub(crate) fn every_command(data: &[u8]) -> bool {
    let whole = commands(data);
    let fixed = with_checksums(data);
    if fixed != data {
        commands(&fixed);
    }
    whole
}

/// Merges the sessions in `data` (split where the magic occurs again, else
/// the session with itself), checks that the result reads back whole, and
/// runs every command on it. Returns whether the merge succeeded on `data`
/// as given.
pub(crate) fn merge(data: &[u8]) -> bool {
    let ok = merge_once(data);
    let parts = split(data);
    let fixed: Vec<u8> = parts.iter().flat_map(|p| with_checksums(p)).collect();
    if fixed != data {
        merge_once(&fixed);
    }
    ok
}

fn merge_once(data: &[u8]) -> bool {
    let parts = split(data);
    let inputs: Vec<&[u8]> = if parts.len() == 1 { vec![parts[0], parts[0]] } else { parts };
    let mut out = Vec::new();
    match pulse_analysis::merge_bytes(&inputs, &mut out) {
        Ok(summary) => {
            for w in &summary.warnings {
                one_line(w);
            }
            // Whatever the inputs held, the merged file is whole.
            let p = Profile::read(&out[..]).unwrap_or_else(|e| panic!("merged file: {e}"));
            assert!(p.trailer.is_some() && p.truncated.is_none(), "merged file not whole");
            assert!(commands(&out), "merged file did not read");
            true
        }
        Err(e) => {
            one_line(&e.to_string());
            false
        }
    }
}

/// `data` cut before each later occurrence of the magic.
fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut at = 1;
    while at + MAGIC.len() <= data.len() {
        if data[at..at + MAGIC.len()] == MAGIC {
            parts.push(&data[start..at]);
            start = at;
            at += MAGIC.len();
        } else {
            at += 1;
        }
    }
    parts.push(&data[start..]);
    parts
}

/// Errors and warnings are one line each.
fn one_line(s: &str) {
    assert!(!s.is_empty(), "an empty message");
    assert!(!s.contains(['\n', '\r']), "a message of several lines: {s:?}");
}

fn reference() -> &'static Profile {
    static P: OnceLock<Profile> = OnceLock::new();
    P.get_or_init(|| Profile::read(REFERENCE).expect("the reference session reads"))
}

/// Every command on `data` as it is. Returns whether it read whole.
fn commands(data: &[u8]) -> bool {
    let profile = match Profile::read(data) {
        Ok(p) => p,
        Err(e) => {
            one_line(&e.to_string());
            // `export --format chrome` reads the file itself: it must refuse it too.
            assert!(pulse_analysis::chrome(data, &mut io::sink()).is_err());
            return false;
        }
    };
    if let Some(t) = &profile.truncated {
        one_line(t);
    }
    views(&profile);

    // diff, with the CLI's default options, against itself and a real session.
    let o = pulse_analysis::DiffOptions::default();
    for (before, after) in [(&profile, &profile), (&profile, reference()), (reference(), &profile)]
    {
        let d = pulse_analysis::diff(before, after, &o);
        for w in &d.warnings {
            one_line(w);
        }
        d.render(&mut io::sink(), pulse_analysis::DEFAULT_TOP).unwrap();
        fits(|w| d.render_width(w, pulse_analysis::DEFAULT_TOP, FITTED));
        serde_json::to_writer(io::sink(), &d).unwrap();
    }

    // export: folded of each kind, dhat, pprof, json (the report), chrome.
    for kind in KINDS {
        pulse_analysis::folded(&profile, kind, &mut io::sink()).unwrap();
    }
    let mut dhat = Vec::new();
    pulse_analysis::dhat(&profile, &mut dhat).unwrap();
    serde_json::from_slice::<serde_json::Value>(&dhat).expect("dhat export is JSON");
    pulse_analysis::pprof(&profile, &mut io::sink()).unwrap();
    serde_json::to_writer(io::sink(), &pulse_analysis::report(&profile, &Default::default()))
        .unwrap();
    let mut chrome = Vec::new();
    match pulse_analysis::chrome(data, &mut chrome) {
        Ok(()) => {
            serde_json::from_slice::<serde_json::Value>(&chrome).expect("chrome export is JSON");
        }
        Err(e) => panic!("chrome refused what the profile read: {e}"),
    }

    // info, text and JSON.
    let info = pulse_analysis::info(&profile);
    info.render(&mut io::sink()).unwrap();
    fits(|w| info.render_width(w, FITTED));
    serde_json::to_writer(io::sink(), &info).unwrap();

    // --thread: the first thread by id, the last one by name.
    let mut wanted = Vec::new();
    if let Some(id) = profile.threads.keys().next() {
        wanted.push(format!("#{id}"));
    }
    if let Some(t) = profile.threads.values().rev().find(|t| !t.name.is_empty()) {
        wanted.push(t.name.clone());
    }
    for (k, w) in wanted.into_iter().enumerate() {
        let view = Profile::read_with(data, &LoadOptions::new().threads([w]))
            .expect("a view of a session that reads");
        let kept = view.selection.as_ref().map_or(0, |s| s.kept.len());
        assert!(k > 0 || kept == 1, "a thread's id picks it out");
        views(&view);
    }
    profile.trailer.is_some() && profile.truncated.is_none()
}

/// The width the CLI fits its text to by default.
const FITTED: pulse_analysis::Width = pulse_analysis::Width::Fit(pulse_analysis::DEFAULT_WIDTH);

/// Text fitted to [`FITTED`] keeps within it, whatever the session holds.
fn fits(render: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) {
    let mut text = Vec::new();
    render(&mut text).unwrap();
    let text = String::from_utf8(text).expect("text output is UTF-8");
    for line in text.lines() {
        let n = line.chars().count();
        assert!(n <= pulse_analysis::DEFAULT_WIDTH, "a line of {n} columns: {line:?}");
    }
}

const KINDS: [FoldedKind; 4] =
    [FoldedKind::Time, FoldedKind::AllocBytes, FoldedKind::AllocCount, FoldedKind::Leaks];

/// What the commands that take `--thread` print from one profile: report,
/// hotspots, leaks, flamegraphs, timeline.
fn views(profile: &Profile) {
    let mut hotspots = ReportOptions::default();
    hotspots.sections = Sections {
        recommendations: false,
        memory: false,
        scopes: true,
        tree: false,
        counters: false,
        threads: false,
        live_at_end: false,
        sites: true,
    };
    let mut tree = hotspots.clone();
    tree.sections.tree = true;
    tree.tree_min_share = 0.0;
    tree.sites_by_allocs = true;
    let mut peak = hotspots.clone();
    peak.sites_by_peak = true;
    for opts in [ReportOptions::default(), hotspots, tree, peak] {
        let report = pulse_analysis::report(profile, &opts);
        for w in &report.warnings {
            one_line(w);
        }
        report.render(&mut io::sink()).unwrap();
        fits(|w| report.render_width(w, FITTED));
        serde_json::to_writer(io::sink(), &report).unwrap();
    }

    // leaks, as the CLI prints them.
    let leaks = pulse_analysis::leaks(profile);
    let mut out = io::sink();
    for l in &leaks {
        writeln!(out, "{} {} {:?} {}", l.blocks, pulse_analysis::Bytes(l.bytes), l.trend, l.place)
            .unwrap();
        for frame in &l.stack {
            writeln!(out, "    {frame}").unwrap();
        }
    }
    serde_json::to_writer(io::sink(), &leaks).unwrap();

    for kind in KINDS {
        pulse_analysis::flamegraph(profile, kind, &mut io::sink()).unwrap();
    }
    pulse_analysis::timeline_svg(profile, &mut io::sink()).unwrap();
}

/// `data` with the metadata's and every whole frame's CRC made to match.
fn with_checksums(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    if v.len() < 20 || v[..8] != MAGIC {
        return v;
    }
    let meta_len = u32::from_le_bytes([v[12], v[13], v[14], v[15]]) as usize;
    let Some(meta) = v.get(20..20 + meta_len) else { return v };
    let crc = crc32fast::hash(meta);
    v[16..20].copy_from_slice(&crc.to_le_bytes());
    let mut at = 20 + meta_len;
    while at + 16 <= v.len() {
        let stored = u32::from_le_bytes([v[at + 4], v[at + 5], v[at + 6], v[at + 7]]) as usize;
        let end = at + 16 + stored;
        if end > v.len() {
            break;
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&v[at..at + 12]);
        h.update(&v[at + 16..end]);
        let crc = h.finalize();
        v[at + 12..at + 16].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
    v
}
