//! What every `pulse` command computes, run on arbitrary bytes read as a
//! session file, through the `pulse-analysis` calls `report-cli/src/main.rs`
//! makes: every output of [`Output::every`] through the one dispatch the
//! CLI calls ([`pulse_analysis::write`]: `report`, `hotspots`, `leaks`,
//! `info`, `flamegraph` and `export` of each kind and format, `timeline`),
//! `hotspots` with `--tree` and `--by peak`, `diff` (against itself and
//! against a real session, both ways), the `--thread` views, and `merge`.
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
use pulse_analysis::{Form, LoadOptions, Output, Profile, ReportOptions, Source};

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
    // Every output of the command line, through the dispatch it calls;
    // chrome reads the session's bytes again.
    views(&profile, Source::Bytes(data), true);

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
        views(&view, Source::Bytes(data), false);
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

/// What the commands print from one profile: every output (the Chrome
/// trace only if `chrome`: `--thread` does not apply to it), and the
/// report's other orders.
fn views(profile: &Profile, source: Source<'_>, chrome: bool) {
    outputs(profile, source, chrome);
    let mut tree = ReportOptions::hotspots();
    tree.sections.tree = true;
    tree.tree_min_share = 0.0;
    tree.sites_by_allocs = true;
    let mut peak = ReportOptions::hotspots();
    peak.sites_by_peak = true;
    for opts in [tree, peak] {
        let report = pulse_analysis::report(profile, &opts);
        for w in &report.warnings {
            one_line(w);
        }
        report.render(&mut io::sink()).unwrap();
        fits(|w| report.render_width(w, FITTED));
    }
}

/// Every output in [`Output::every`], fitted and whole, written through
/// [`pulse_analysis::write`] as the CLI writes them: the fitted text keeps
/// to its width, the JSON ones parse, none is refused. `chrome`: whether
/// to write the Chrome trace too (from `source`).
fn outputs(profile: &Profile, source: Source<'_>, chrome: bool) {
    let report = pulse_analysis::report(profile, &Default::default());
    for w in report.warnings.iter().chain(&pulse_analysis::info(profile).warnings) {
        one_line(w);
    }
    for width in [FITTED, pulse_analysis::Width::Wide] {
        for output in Output::every(width) {
            let text = matches!(
                output,
                Output::Report(_, Form::Text(_))
                    | Output::Leaks { form: Form::Text(_), .. }
                    | Output::Info(Form::Text(_))
            );
            let json = matches!(
                output,
                Output::Report(_, Form::Json)
                    | Output::Leaks { form: Form::Json, .. }
                    | Output::Info(Form::Json)
                    | Output::Dhat
                    | Output::Chrome
            );
            if matches!(output, Output::Chrome) && !chrome || width != FITTED && !text {
                continue;
            }
            let mut out = Vec::new();
            if let Err(e) = pulse_analysis::write(&output, profile, source, &mut out) {
                panic!("{output:?} refused what the profile read: {e}");
            }
            if text && width == FITTED {
                fits(|w| w.write_all(&out));
            }
            if matches!(output, Output::Html(_)) {
                let n = out.len();
                assert!(n <= pulse_analysis::MAX_HTML_BYTES, "an HTML report of {n} bytes");
            }
            if json {
                serde_json::from_slice::<serde_json::Value>(&out)
                    .unwrap_or_else(|e| panic!("{output:?} is not JSON: {e}"));
            }
        }
    }
}

/// `data` with the metadata's and every whole frame's CRC made to match.
fn with_checksums(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    if v.len() < 20 || v[..8] != MAGIC {
        return v;
    }
    let meta_len = u32::from_le_bytes([v[12], v[13], v[14], v[15]]) as usize;
    let Some(meta) = v.get(20..20 + meta_len) else { return v };
    let crc = pulse_analysis::format::metadata_crc(u16::from_le_bytes([v[8], v[9]]), meta);
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
