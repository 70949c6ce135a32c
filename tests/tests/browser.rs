//! pulse's exports opened where users open them, in headless Chromium
//! (Debian's `/usr/bin/chromium`, driven by the scripts in `tests/browser/`
//! with playwright-core):
//!
//! - the examples' DHAT JSON in DHAT's own viewer (`dh_view.html`, from
//!   valgrind), loaded through its file input: it must draw the profile, not
//!   an error (it refuses, for one, two program points with the same
//!   frames), and the totals it displays must be the session's;
//! - the tour's flamegraphs (each kind) and timeline as SVG documents:
//!   Chromium's XML parser must take them and their scripts run cleanly;
//! - the tour's HTML report (`pulse report --html`), used by real clicks
//!   and typing: every column of every table sorts both ways, each filter
//!   box keeps the rows that hold its text, a click on a frame of each
//!   flamegraph zooms it to the full width and "Reset zoom" restores it,
//!   with no console error (a Content-Security-Policy violation is one);
//!   and the report of a session whose every name is markup and script
//!   shows the names as text and runs none of it (no dialog, no
//!   `window.__pwned`).
//!
//! `PULSE_SCREENSHOT=docs/html-report.png` (a path from the workspace's
//! root) makes the tour's HTML test save the top of the page there: how
//! the README's screenshot is made.
//!
//! Without node, Chromium, the viewer (for the DHAT checks) or
//! `tests/browser/node_modules`, each test says what is missing and passes,
//! unless `PULSE_BROWSER_TESTS=require` (as CI sets it), when it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use pulse_analysis::{FoldedKind, Profile};
use pulse_tests::temp_session;
use serde_json::Value;

#[path = "../../analysis/tests/support/names.rs"]
mod names;

const CHROMIUM: &str = "/usr/bin/chromium";
const DH_VIEW: &str = "/usr/libexec/valgrind/dh_view.html";
const INSTALL: &str = "apt-get install chromium && npm ci --prefix tests/browser";

/// `tests/browser/`, where the scripts and their `node_modules` are.
fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Whether everything the browser checks need is here (with DHAT's viewer
/// when `viewer`). If not, says once what is missing, on the terminal (past
/// the test harness's capture), and returns false; or panics under
/// `PULSE_BROWSER_TESTS=require`.
fn browser_available(viewer: bool) -> bool {
    static MISSING: [OnceLock<Option<String>>; 2] = [OnceLock::new(), OnceLock::new()];
    let missing = MISSING[usize::from(viewer)].get_or_init(|| {
        let dh_view = std::env::var("DH_VIEW").unwrap_or_else(|_| DH_VIEW.to_owned());
        let mut missing = Vec::new();
        let node = Command::new("node").arg("--version").stdout(Stdio::null()).status();
        if !node.is_ok_and(|s| s.success()) {
            missing.push("node, 20 or later, and npm".to_owned());
        }
        if !Path::new(CHROMIUM).exists() {
            missing.push(format!("{CHROMIUM} (apt-get install chromium)"));
        }
        if !scripts().join("node_modules/playwright-core").is_dir() {
            missing.push("tests/browser/node_modules (npm ci --prefix tests/browser)".to_owned());
        }
        if viewer && !Path::new(&dh_view).exists() {
            missing.push(format!("DHAT's viewer {dh_view} (apt-get install valgrind)"));
        }
        if missing.is_empty() {
            return None;
        }
        let msg =
            format!("browser tests: missing {}; install them with `{INSTALL}`", missing.join(", "));
        if std::env::var("PULSE_BROWSER_TESTS").as_deref() != Ok("require") {
            let _ = writeln!(
                std::io::stderr(),
                "{msg}; skipped (PULSE_BROWSER_TESTS=require makes this a failure)"
            );
        }
        Some(msg)
    });
    match missing {
        None => true,
        Some(msg) if std::env::var("PULSE_BROWSER_TESTS").as_deref() == Ok("require") => {
            panic!("{msg} (PULSE_BROWSER_TESTS=require)")
        }
        Some(_) => false,
    }
}

/// Starts `node tests/browser/SCRIPT FILE ARGS...`.
fn spawn(script: &str, file: &Path, args: &[&std::ffi::OsStr]) -> std::process::Child {
    Command::new("node")
        .arg(scripts().join(script))
        .arg(file)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("node {script}: {e}"))
}

/// What a script printed (one JSON object), and whether it exited 0.
fn report(script: &str, file: &Path, out: Output) -> (bool, Value) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "node {script} {}: no JSON report ({e}):\n{stdout}\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), value)
}

/// Runs `node tests/browser/SCRIPT FILE ARGS...` to its end.
fn node(script: &str, file: &Path, args: &[&std::ffi::OsStr]) -> (bool, Value) {
    report(script, file, spawn(script, file, args).wait_with_output().unwrap())
}

/// Runs an example with `PULSE_OUT` set; its profile.
fn run(bin: &str, args: &[&str]) -> Profile {
    let name = Path::new(bin).file_name().unwrap().to_string_lossy().into_owned();
    let path = temp_session(&name);
    let out = Command::new(bin).args(args).env("PULSE_OUT", &path).output().unwrap();
    assert!(out.status.success(), "{bin}: {}", String::from_utf8_lossy(&out.stderr));
    Profile::load(&path).unwrap()
}

/// The tour at a tenth of its size (20 000 orders, 120 requests a worker),
/// run once for the tests that read it.
fn tour() -> &'static Profile {
    static TOUR: OnceLock<Profile> = OnceLock::new();
    TOUR.get_or_init(|| run(env!("CARGO_BIN_EXE_tour"), &["20000", "120"]))
}

/// Writes `profile`'s DHAT export next to its session; its path and JSON.
fn dhat_file(name: &str, profile: &Profile) -> (PathBuf, Value) {
    let mut json = Vec::new();
    pulse_analysis::dhat(profile, &mut json).unwrap();
    let path = temp_session(name).with_extension("dhat.json");
    std::fs::write(&path, &json).unwrap();
    (path, serde_json::from_slice(&json).unwrap())
}

/// Opens `profile`'s DHAT export in DHAT's viewer: it must draw it with no
/// error, and display the session's totals. Returns the export's path.
fn viewer_shows_the_sessions_totals(name: &str, profile: &Profile) -> PathBuf {
    let (path, json) = dhat_file(name, profile);
    let points = json["pps"].as_array().map_or(0, Vec::len);
    assert!(points > 1, "{name}: {points} program points, a tree needs several");
    let (ok, seen) = node("dh_view.mjs", &path, &[]);
    assert!(
        ok && seen["error"].is_null(),
        "{name}: DHAT's viewer refused {}: {seen}",
        path.display()
    );
    assert_eq!(seen["console_errors"], serde_json::json!([]), "{name}: {seen}");
    assert_eq!(seen["page_errors"], serde_json::json!([]), "{name}: {seen}");

    let m = &profile.memory;
    let shown = |k: &str| {
        seen["totals"][k].as_u64().unwrap_or_else(|| panic!("{name}: no {k} shown: {seen}"))
    };
    let pairs = [
        // DHAT counts a reallocation as a block of its own, as pulse's export writes it.
        ("total_bytes", m.bytes_allocated),
        ("total_blocks", m.allocs + m.reallocs),
        ("at_t_gmax_bytes", m.peak_bytes),
        ("at_t_gmax_blocks", m.peak_blocks),
        ("at_t_end_bytes", m.live_bytes_at_end),
        ("at_t_end_blocks", m.live_blocks_at_end),
        // Times in microseconds.
        ("t_gmax", m.peak_at_ns / 1000),
        ("t_end", profile.duration_ns / 1000),
    ];
    println!("{name}: {points} program points, the viewer's figures and pulse's:");
    for (k, pulse) in pairs {
        println!("  {k:>16} {:>10} {pulse:>10}", shown(k));
    }
    for (k, pulse) in pairs {
        assert_eq!(shown(k), pulse, "{name}: the viewer shows {k} {}, pulse {pulse}", shown(k));
    }
    path
}

#[test]
fn tour_dhat_export_opens_in_dhats_viewer_with_the_sessions_totals() {
    if !browser_available(true) {
        return;
    }
    let p = tour();
    assert!(p.memory.reallocs > 0 && p.memory.live_bytes_at_end > 0, "{:?}", p.memory);
    let path = viewer_shows_the_sessions_totals("tour", p);

    // The check sees the viewer's refusal: the same export with its first
    // program point repeated is refused, and said to be.
    let mut json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let pps = json["pps"].as_array_mut().unwrap();
    pps.push(pps[0].clone());
    let repeated = path.with_extension("repeated.json");
    std::fs::write(&repeated, serde_json::to_vec(&json).unwrap()).unwrap();
    let (ok, seen) = node("dh_view.mjs", &repeated, &[]);
    assert!(!ok, "a repeated program point was not refused: {seen}");
    let error = seen["error"].as_str().unwrap_or_default();
    assert!(error.contains("repeated location"), "{seen}");
}

#[test]
fn leaky_cache_dhat_export_opens_in_dhats_viewer_with_the_sessions_totals() {
    if !browser_available(true) {
        return;
    }
    let p = run(env!("CARGO_BIN_EXE_leaky_cache"), &["8000"]);
    assert!(p.memory.live_bytes_at_end > 0, "{:?}", p.memory);
    viewer_shows_the_sessions_totals("leaky_cache", &p);
}

#[test]
fn threads_dhat_export_opens_in_dhats_viewer_with_the_sessions_totals() {
    if !browser_available(true) {
        return;
    }
    // Blocks allocated on one thread and freed on another.
    let p = run(env!("CARGO_BIN_EXE_threads"), &["150"]);
    viewer_shows_the_sessions_totals("threads", &p);
}

#[test]
fn tour_flamegraphs_and_timeline_parse_as_svg_in_chromium() {
    if !browser_available(false) {
        return;
    }
    let p = tour();
    // Each SVG, and a name its text must hold.
    let mut svgs: Vec<(String, Vec<u8>, &str)> = Vec::new();
    for (kind, name, holds) in [
        (FoldedKind::Time, "time", "Serve::Vwap"),
        (FoldedKind::AllocBytes, "alloc-bytes", "tour::parse_feed"),
        (FoldedKind::AllocCount, "alloc-count", "tour::serve"),
        (FoldedKind::Leaks, "leaks", "tour::serve"),
    ] {
        let mut svg = Vec::new();
        pulse_analysis::flamegraph(p, kind, &mut svg).unwrap();
        svgs.push((format!("flamegraph-{name}"), svg, holds));
    }
    let mut timeline = Vec::new();
    pulse_analysis::timeline_svg(p, &mut timeline).unwrap();
    svgs.push(("timeline".to_owned(), timeline, "peak"));

    // The check sees a parse error: the time flamegraph cut in half is
    // Chromium's error page.
    let cut = svgs[0].1[..svgs[0].1.len() / 2].to_vec();
    svgs.push(("cut".to_owned(), cut, ""));

    let files: Vec<_> = svgs
        .iter()
        .map(|(name, svg, _)| {
            let path = temp_session(name).with_extension("svg");
            std::fs::write(&path, svg).unwrap();
            path
        })
        .collect();
    // The Chromiums run side by side.
    let children: Vec<_> = files.iter().map(|f| spawn("svg.mjs", f, &[])).collect();
    for ((child, path), (name, _, holds)) in children.into_iter().zip(&files).zip(&svgs) {
        let (ok, seen) = report("svg.mjs", path, child.wait_with_output().unwrap());
        let mut brief = seen.clone();
        brief["text"] = Value::from("…");
        if name == "cut" {
            assert!(!ok && seen["parsed"] == false, "a cut SVG parsed: {brief}");
            continue;
        }
        assert!(ok && seen["parsed"] == true, "{name} ({}): {brief}", path.display());
        assert_eq!(seen["root"], "svg", "{name}: {brief}");
        assert!(seen["rects"].as_u64() > Some(0), "{name}: nothing drawn: {brief}");
        let text = seen["text"].as_str().unwrap_or_default();
        assert!(text.contains(holds), "{name}: no {holds} in {text}");
        println!("{name}: parsed, {brief}");
    }
}

/// Writes `profile`'s HTML report, as `pulse report --html` writes it,
/// next to its session; its path.
fn html_file(name: &str, profile: &Profile) -> PathBuf {
    let mut opts = pulse_analysis::ReportOptions::default();
    opts.top = pulse_analysis::HTML_ROWS;
    let report = pulse_analysis::report(profile, &opts);
    let mut html = Vec::new();
    pulse_analysis::html(profile, &report, &mut html).unwrap();
    assert!(html.len() <= pulse_analysis::MAX_HTML_BYTES, "{name}: {} bytes", html.len());
    let path = temp_session(name).with_extension("html");
    std::fs::write(&path, &html).unwrap();
    println!("{name}: {} bytes of HTML at {}", html.len(), path.display());
    path
}

/// What `html.mjs` saw, without the page's text, for a failure message.
fn brief(seen: &Value) -> Value {
    let mut brief = seen.clone();
    brief["text"] = Value::from("…");
    brief
}

/// Asserts `html.mjs` found nothing wrong: every check passed, no console
/// error, no exception, no dialog, no `window.__pwned`.
#[track_caller]
fn clean(name: &str, ok: bool, seen: &Value) {
    let none = serde_json::json!([]);
    assert!(seen["error"].is_null(), "{name}: {}", brief(seen));
    assert_eq!(seen["failures"], none, "{name}: {}", brief(seen));
    assert_eq!(seen["console_errors"], none, "{name}: {}", brief(seen));
    assert_eq!(seen["page_errors"], none, "{name}: {}", brief(seen));
    assert_eq!(seen["dialogs"], none, "{name}: {}", brief(seen));
    assert_eq!(seen["pwned"], false, "{name}: {}", brief(seen));
    assert!(ok, "{name}: {}", brief(seen));
}

#[test]
fn tour_html_report_sorts_filters_and_zooms_in_chromium() {
    if !browser_available(false) {
        return;
    }
    let path = html_file("tour", tour());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shot = std::env::var_os("PULSE_SCREENSHOT").map(|p| root.join(p));
    let mut args: Vec<&std::ffi::OsStr> = Vec::new();
    if let Some(shot) = &shot {
        args.extend([std::ffi::OsStr::new("--screenshot"), shot.as_os_str()]);
    }
    let (ok, seen) = node("html.mjs", &path, &args);
    clean("tour", ok, &seen);
    assert_eq!(seen["title"], "pulse report: tour", "{}", brief(&seen));

    // Every table the tour's report has, each column clicked twice and
    // the filter tried, where it has two rows to order.
    let tables = seen["tables"].as_array().unwrap();
    let ids: Vec<&str> = tables.iter().map(|t| t["id"].as_str().unwrap()).collect();
    for id in [
        "t-recommendations",
        "t-memory",
        "t-at-peak",
        "t-scopes",
        "t-tree",
        "t-counters",
        "t-threads",
        "t-flows",
        "t-live-at-end",
        "t-sites",
    ] {
        assert!(ids.contains(&id), "no table {id} among {ids:?}");
    }
    for t in tables {
        println!(
            "  {}: {} rows, {} columns sorted, filter {}",
            t["id"], t["rows"], t["sorted"], t["filtered"]
        );
        if t["rows"].as_u64() > Some(1) {
            assert_eq!(t["sorted"], t["columns"], "{t}");
            assert!(t["filtered"]["kept"].as_u64() > Some(0), "{t}");
        }
    }
    for id in ["t-scopes", "t-sites", "t-at-peak"] {
        let t = tables.iter().find(|t| t["id"] == id).unwrap();
        assert!(t["rows"].as_u64() > Some(5), "{t}");
    }

    // Each flamegraph zoomed into a frame and back.
    let flames = seen["flamegraphs"].as_array().unwrap();
    let figures: Vec<&str> = flames.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(figures, ["flame-time", "flame-alloc", "flame-leaks"]);
    for f in flames {
        println!("  {}: zoomed into {} of {} frames", f["id"], f["zoomed"], f["frames"]);
        assert!(f["zoomed"].is_string(), "{f}");
    }
    let text = seen["text"].as_str().unwrap();
    for holds in ["Data::Parse", "tour::parse_feed", "Heap timeline", "Recommendations"] {
        assert!(text.contains(holds), "no {holds} in the page");
    }
    if let Some(shot) = shot {
        let size = std::fs::metadata(&shot).unwrap().len();
        println!("screenshot: {} ({size} bytes)", shot.display());
    }
}

/// A name of the hostile session: markup that would set `window.__pwned`
/// if it ran, at both ends of [`names::PAYLOAD`] (control characters,
/// terminal escapes, `<script>alert(1)</script>`, an SVG `onload`, an
/// entity, both quotes).
fn pwn(tag: &str) -> String {
    format!(
        "{tag}<script>window.__pwned=1</script>{}<img src=x onerror=\"window.__pwned=2\">",
        names::PAYLOAD
    )
}

#[test]
fn hostile_names_in_the_html_report_show_as_text_and_run_nothing() {
    if !browser_available(false) {
        return;
    }
    let p = Profile::read(&names::session(pwn, 0)[..]).unwrap();
    let path = html_file("hostile", &p);
    let (ok, seen) = node("html.mjs", &path, &[]);
    clean("hostile", ok, &seen);
    // The command line is text, its control characters escaped.
    let command = seen["command"].as_str().unwrap();
    assert!(command.starts_with(&names::shown(&names::program(pwn))), "{command}");
    // The names are in the tables as text, markup and all.
    assert!(seen["flamegraphs"][0]["zoomed"].is_string(), "{}", brief(&seen));
    let text = seen["text"].as_str().unwrap();
    for marker in ["<script>window.__pwned=1</script>", "<img src=x onerror=\"window.__pwned=2\">"]
    {
        assert!(text.matches(marker).count() > 3, "{marker} not shown as text");
    }
    assert!(text.contains("\\u{1b}[2J"), "no escaped ESC in the page");
}
