//! A session's names are untrusted text: every renderer and export of
//! pulse-analysis on a session whose function, file, scope, category,
//! thread, counter and metadata names and whose program and arguments
//! carry control characters, terminal escapes, markup and `;`
//! (`support/names.rs`). Text output must show them escaped and keep the
//! lines the same session with plain names has; SVG must be well-formed
//! XML with each frame whole; folded stacks must have the frames their
//! stacks have; the JSON and protobuf exports must read back the names
//! exactly.

#[path = "support/names.rs"]
mod names;

use std::collections::BTreeSet;
use std::io::Read;

use names::{assert_terminal_safe, hostile, plain, session, shown, stacks, PAYLOAD};
use pulse_analysis::{FoldedKind, Profile, ReportOptions, Sections};

const KINDS: [FoldedKind; 4] =
    [FoldedKind::Time, FoldedKind::AllocBytes, FoldedKind::AllocCount, FoldedKind::Leaks];

fn profile(name: fn(&str) -> String, variant: u64) -> Profile {
    Profile::read(&session(name, variant)[..]).expect("the session reads")
}

fn text(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    f(&mut out).unwrap();
    String::from_utf8(out).expect("UTF-8")
}

/// Every text rendering of the session with names made by `name`: the
/// report (whole, and for the thread `#1` alone, whose header names the
/// threads kept), hotspots with the whole call tree, info, and diff against
/// itself and against a slower run of another program.
fn renderings(name: fn(&str) -> String) -> Vec<(&'static str, String)> {
    let p = profile(name, 0);
    let later = profile(name, 1);
    let one = pulse_analysis::LoadOptions::new().threads(["1".to_owned()]);
    let main = Profile::read_with(&session(name, 0)[..], &one).expect("the session reads");
    let mut tree = ReportOptions::default();
    tree.tree_min_share = 0.0;
    tree.sections = Sections {
        recommendations: false,
        memory: false,
        counters: false,
        threads: false,
        live_at_end: false,
        ..Sections::default()
    };
    let mut by_peak = ReportOptions::default();
    by_peak.sites_by_peak = true;
    vec![
        ("report", text(|w| pulse_analysis::report(&p, &Default::default()).render(w))),
        ("report sites by peak", text(|w| pulse_analysis::report(&p, &by_peak).render(w))),
        (
            "report --thread 1",
            text(|w| pulse_analysis::report(&main, &Default::default()).render(w)),
        ),
        ("hotspots --tree", text(|w| pulse_analysis::report(&p, &tree).render(w))),
        ("info", text(|w| pulse_analysis::info(&p).render(w))),
        ("diff itself", text(|w| pulse_analysis::diff(&p, &p, &Default::default()).render(w, 20))),
        (
            "diff later",
            text(|w| pulse_analysis::diff(&p, &later, &Default::default()).render(w, 20)),
        ),
    ]
}

/// No raw control character reaches the text; each name is there, escaped;
/// and every rendering has the lines it has with plain names, so that a
/// newline in a name forged no row and a table's columns line up.
#[test]
fn text_shows_names_escaped_in_the_lines_of_plain_names() {
    let plain_text = renderings(plain);
    let hostile_text = renderings(hostile);
    for ((what, plain), (_, text)) in plain_text.iter().zip(&hostile_text) {
        assert_terminal_safe(what, text);
        assert!(text.contains(&shown(PAYLOAD)), "{what}: no escaped name in\n{text}");
        assert_eq!(
            text.lines().count(),
            plain.lines().count(),
            "{what}: the lines differ from the plain session's:\n{text}\n---\n{plain}"
        );
        // Each line starts as the plain one does: no row begins inside a name.
        for (h, p) in text.lines().zip(plain.lines()) {
            let head = |l: &str| {
                l.split_whitespace().next().map(|w| w.chars().take(3).collect::<String>())
            };
            assert_eq!(head(h), head(p), "{what}: {h:?} is not {p:?}");
        }
    }
    // The names that are not in a table: the header, the selection, the
    // counters that could not be opened, the recommendations.
    let report = &hostile_text[0].1;
    for tag in ["prog", "--arg", "instructions", "denied", "app::big"] {
        assert!(report.contains(&shown(&hostile(tag))), "{tag} in\n{report}");
    }
    let selection = hostile_text[2].1.lines().nth(2).unwrap();
    assert!(selection.starts_with(&format!("  only #1 {} (1 of 2", shown(&hostile("main")))));
    let info = &hostile_text[4].1;
    for tag in
        ["writer", "host", "calibration", "cycles", "perf", "key", "value", "stopped", "own_bytes"]
    {
        assert!(info.contains(&shown(&hostile(tag))), "{tag} in\n{info}");
    }
}

/// A table's columns line up on what is shown: in the scopes table, the
/// `count` column's figures end at the same place on every row.
#[test]
fn columns_are_as_wide_as_the_escaped_names() {
    let p = profile(hostile, 0);
    let report = text(|w| pulse_analysis::report(&p, &Default::default()).render(w));
    let table: Vec<&str> = report
        .lines()
        .skip_while(|l| !l.starts_with("Scopes by"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(table.len(), 3, "{report}");
    let header_end = table[0].find("count").unwrap() + "count".len();
    for row in &table[1..] {
        let chars: Vec<char> = row.chars().collect();
        let at = table[0][..header_end].chars().count();
        assert!(chars[at - 1].is_ascii_digit() && chars[at] == ' ', "{row:?} under {:?}", table[0]);
    }
}

/// Each SVG parses as XML (roxmltree refuses characters XML does not allow,
/// a stray `<` or `&`, and a quote that ends an attribute early), the
/// flamegraph's frames are the stacks' frames, whole (`app::Grid<[u8;
/// 4]>::fill` too, with plain names), as text shows them, and no element
/// or attribute came from a name.
#[test]
fn svgs_are_well_formed_whatever_the_names_hold() {
    for name in [plain as fn(&str) -> String, hostile] {
        let p = profile(name, 0);
        for kind in KINDS {
            let svg = text(|w| pulse_analysis::flamegraph(&p, kind, w));
            let doc = roxmltree::Document::parse(&svg)
                .unwrap_or_else(|e| panic!("{kind:?}: not XML: {e}\n{svg}"));
            let drawn: BTreeSet<String> = doc
                .descendants()
                .filter(|n| n.attribute("class") == Some("f"))
                .map(|n| n.attribute("data-n").unwrap().to_owned())
                .collect();
            let mut frames: BTreeSet<String> =
                stacks(name, kind).concat().iter().map(|f| shown(f)).collect();
            frames.insert(String::from("all"));
            // The allocated bytes are one 64 MiB block's, beside which the
            // other stacks are too narrow to draw.
            if kind == FoldedKind::AllocBytes {
                assert!(drawn.is_subset(&frames), "{kind:?}: {drawn:#?}\nnot among {frames:#?}");
            } else {
                assert_eq!(drawn, frames, "{kind:?}");
            }
            let tags: BTreeSet<&str> = doc.descendants().map(|n| n.tag_name().name()).collect();
            let expected = BTreeSet::from(["", "g", "rect", "script", "svg", "text", "title"]);
            assert_eq!(tags, expected, "{kind:?}: elements");
            assert!(!doc.descendants().any(|n| n.attribute("onload").is_some()), "{kind:?}");
            let scripts = doc.descendants().filter(|n| n.has_tag_name("script")).count();
            assert_eq!(scripts, 1, "{kind:?}");
        }
        let svg = text(|w| pulse_analysis::timeline_svg(&p, w));
        let doc = roxmltree::Document::parse(&svg)
            .unwrap_or_else(|e| panic!("timeline: not XML: {e}\n{svg}"));
        assert!(!doc.descendants().any(|n| n.has_tag_name("script")), "timeline");
    }
}

/// A folded line's frames, split at `;`, are its stack's frames: a `;` in a
/// name is U+FF1B, a control character escaped as in text.
#[test]
fn folded_lines_have_the_frames_of_their_stacks() {
    for name in [plain as fn(&str) -> String, hostile] {
        let p = profile(name, 0);
        for kind in KINDS {
            let out = text(|w| pulse_analysis::folded(&p, kind, w));
            assert_terminal_safe(&format!("folded {kind:?}"), &out);
            let mut lines: Vec<Vec<String>> = out
                .lines()
                .map(|l| {
                    let (stack, weight) = l.rsplit_once(' ').unwrap();
                    weight.parse::<u64>().unwrap_or_else(|_| panic!("{l:?}"));
                    stack.split(';').map(str::to_owned).collect()
                })
                .collect();
            let mut expected: Vec<Vec<String>> = stacks(name, kind)
                .iter()
                .map(|s| s.iter().map(|f| shown(f).replace(';', "\u{ff1b}")).collect())
                .collect();
            lines.sort();
            expected.sort();
            assert_eq!(lines, expected, "{kind:?}:\n{out}");
        }
    }
}

/// The JSON exports and the report as JSON parse, and hold the names
/// exactly; so does the pprof profile.
#[test]
fn exports_read_back_the_names_exactly() {
    let bytes = session(hostile, 0);
    let p = profile(hostile, 0);

    let chrome = text(|w| pulse_analysis::chrome(&bytes[..], w).map_err(std::io::Error::other));
    assert_terminal_safe("chrome", &chrome);
    let trace: serde_json::Value = serde_json::from_str(&chrome).expect("chrome trace is JSON");
    let events = trace["traceEvents"].as_array().unwrap();
    let named = |n: &str| events.iter().any(|e| e["name"] == n || e["args"]["name"] == n);
    for n in [hostile("main"), hostile("worker"), hostile("query")] {
        assert!(named(&n), "{n:?} not in the trace");
    }
    assert!(named(&format!("{}::{}", hostile("Input"), hostile("parse"))));

    let dhat = text(|w| pulse_analysis::dhat(&p, w));
    let dhat: serde_json::Value = serde_json::from_str(&dhat).expect("DHAT's JSON");
    assert!(dhat["cmd"].as_str().unwrap().starts_with(&names::program(hostile)));
    let ftbl: Vec<&str> =
        dhat["ftbl"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(ftbl.iter().any(|f| f.starts_with(&hostile(names::GRID))), "{ftbl:#?}");

    // `pulse report --json` (report-cli/tests/names.rs checks its text).
    let report = serde_json::to_string(&pulse_analysis::report(&p, &Default::default())).unwrap();
    let back: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(back["program"], names::program(hostile));
    assert_eq!(back["scopes"][0]["category"], hostile("Input"));

    let mut gz = Vec::new();
    pulse_analysis::pprof(&p, &mut gz).unwrap();
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut raw).expect("gzip");
    let proto: pulse_analysis::pprof_proto::Profile =
        prost::Message::decode(&raw[..]).expect("profile.proto decodes");
    for n in [hostile(names::GRID), hostile("query")] {
        assert!(proto.string_table.contains(&n), "{n:?} not in {:#?}", proto.string_table);
    }
}
