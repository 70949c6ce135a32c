//! Sites from any build: a throwaway program that depends on pulse by path
//! is built with each of cargo's debug settings (`0`, `"line-tables-only"`,
//! `"limited"`, `true`), with and without frame pointers. Each gives
//! file:line sites naming the program's own functions, or the one-line
//! warning that says which configuration line fixes it, in the report and
//! on the program's stderr when its session starts.
//!
//! Eight release builds of pulse and its dependencies (one shared
//! `CARGO_TARGET_DIR` under target/, but each setting is its own build of
//! every crate): minutes on two cores, so this test is `#[ignore]`d by
//! default; run it with `cargo test -p pulse-tests --test debug_settings
//! -- --ignored`.

use std::path::{Path, PathBuf};
use std::process::Command;

use pulse_analysis::{Profile, ReportOptions};

const MAIN: &str = r#"
#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

#[inline(never)]
fn make_rows(n: usize) -> Vec<String> {
    let mut rows = Vec::new();
    for i in 0..n {
        rows.push(format!("row {i} of {n}"));
    }
    rows
}

#[inline(never)]
fn make_boxes(n: usize) -> usize {
    let mut total = 0;
    for i in 0..n {
        let b = std::hint::black_box(Box::new([i as u8; 48]));
        total += b.len();
    }
    total
}

fn main() {
    let mut sum = 0;
    for _ in 0..50 {
        sum += make_rows(200).len();
        sum += make_boxes(300);
    }
    println!("{sum}");
}
"#;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// What one build gave: its session's top sites (function, place), the
/// report's warnings, and what the program printed on stderr.
struct Outcome {
    sites: Vec<(String, String)>,
    warnings: Vec<String>,
    stderr: String,
}

/// Builds and runs the program with `debug` and frame pointers on or off.
fn profile(debug: &str, frame_pointers: bool) -> Outcome {
    let root = workspace();
    let name = format!("debug_{}_{}", debug.trim_matches('"').replace('-', "_"), frame_pointers);
    let dir = std::env::temp_dir().join(format!("pulse-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\npulse = {{ path = \"{}\" }}\n\n\
             [profile.release]\ndebug = {debug}\n\n[workspace]\n",
            root.join("runtime").display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/main.rs"), MAIN).unwrap();
    // The same versions as pulse's own build, from the local registry cache.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let flags = if frame_pointers { "-C force-frame-pointers=yes" } else { "" };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| String::from("cargo"));
    let out = Command::new(cargo)
        .args(["build", "--release", "--offline", "-q"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", root.join("target").join("debug-settings"))
        .env("RUSTFLAGS", flags)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    assert!(out.status.success(), "build {name}: {}", String::from_utf8_lossy(&out.stderr));
    let exe = root.join("target/debug-settings/release").join(&name);
    let session = dir.join("run.pulse");
    let run = Command::new(&exe).env("PULSE_OUT", &session).output().unwrap();
    assert!(run.status.success(), "{name}: {}", String::from_utf8_lossy(&run.stderr));
    let p = Profile::load(&session).unwrap();
    let r = pulse_analysis::report(&p, &ReportOptions::default());
    let _ = std::fs::remove_dir_all(&dir);
    let mut sites = r.sites.clone();
    sites.sort_by_key(|s| std::cmp::Reverse(s.allocs + s.reallocs));
    Outcome {
        sites: sites.into_iter().take(2).map(|s| (s.function, s.place)).collect(),
        warnings: r.warnings,
        stderr: String::from_utf8_lossy(&run.stderr).into_owned(),
    }
}

/// Whether the top two sites are the program's two functions, at lines of
/// its `src/main.rs` (shortened: the project is not under the program's
/// target directory here).
fn names_the_program(sites: &[(String, String)]) -> bool {
    let mut functions: Vec<&str> =
        sites.iter().map(|(f, _)| f.rsplit("::").next().unwrap_or(f)).collect();
    functions.sort_unstable();
    functions == ["make_boxes", "make_rows"]
        && sites.iter().all(|(_, place)| place.contains("src/main.rs:"))
}

#[test]
#[ignore = "eight release builds of pulse: minutes on two cores"]
fn every_debug_setting_gives_sites_or_says_how_to_get_them() {
    let fp_fix = "force-frame-pointers=yes";
    let lines_fix = "debug = \"line-tables-only\"";
    for debug in ["\"line-tables-only\"", "\"limited\"", "true", "0"] {
        for frame_pointers in [true, false] {
            let Outcome { sites, warnings, stderr } = profile(debug, frame_pointers);
            let what = format!(
                "debug = {debug}, frame pointers {frame_pointers}: {sites:?} {warnings:?} {stderr:?}"
            );
            eprintln!("{what}");
            let advice: Vec<&String> =
                warnings.iter().filter(|w| w.contains(fp_fix) || w.contains(lines_fix)).collect();
            // The program says the same, once, when its session starts.
            let said: Vec<&str> = stderr.lines().filter(|l| l.starts_with("pulse: ")).collect();
            assert!(said.len() <= 1, "one line on stderr: {what}");
            for w in &advice {
                let fix = if w.contains(fp_fix) { fp_fix } else { lines_fix };
                assert!(said.iter().any(|l| l.contains(fix)), "not said at the start: {what}");
            }
            assert!(advice.len() <= 2, "one warning a problem: {what}");
            if debug != "0" && frame_pointers {
                assert!(names_the_program(&sites), "{what}");
                assert!(advice.is_empty(), "a good build is not warned about: {what}");
                assert!(said.is_empty(), "a good build starts without a warning: {what}");
            } else if debug == "0" && frame_pointers {
                assert!(warnings.iter().any(|w| w.contains(lines_fix)), "{what}");
            } else if debug == "0" {
                // No stack to judge the line tables by: the frame pointers
                // are what to fix first.
                assert!(warnings.iter().any(|w| w.contains(fp_fix)), "{what}");
            } else {
                assert!(
                    warnings.iter().any(|w| w.contains(fp_fix)) || names_the_program(&sites),
                    "{what}"
                );
            }
        }
    }
}
