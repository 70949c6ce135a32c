//! The README's Quickstart, followed as a new user would, in a project of
//! its own outside this workspace: its `Cargo.toml` lines, its
//! `.cargo/config.toml`, its `main.rs` (with a leak planted after the
//! program's work), built in release and run. Every allocation site of the
//! report is a line of the program's `src/main.rs`, no build warning is
//! printed, and `pulse leaks` finds the planted leak with exit status 5.
//!
//! One release build of pulse and its dependencies (about a minute on two
//! cores the first time), in a target directory kept under target/ so that
//! later runs only rebuild the program.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{pulse, scratch};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The code blocks of the README's Quickstart section, in order, each with
/// its info string (`toml`, `rust,no_run`, `sh`).
fn quickstart_blocks() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let start = readme.find("\n## Quickstart").expect("the README has a Quickstart");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if let Some(info) = line.strip_prefix("```") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with("```")).collect();
            blocks.push((info.to_owned(), body.join("\n") + "\n"));
        }
    }
    blocks
}

/// The line of `source` holding `needle`, counted from 1.
fn line_of(source: &str, needle: &str) -> usize {
    source.lines().position(|l| l.contains(needle)).expect("the planted line") + 1
}

#[test]
fn the_quickstart_gives_file_and_line_sites_and_finds_a_planted_leak() {
    let blocks = quickstart_blocks();
    let toml: Vec<&String> = blocks.iter().filter(|(i, _)| i == "toml").map(|(_, b)| b).collect();
    let rust = blocks.iter().find(|(i, _)| i.starts_with("rust")).map(|(_, b)| b);
    let (manifest, config, main) = match (toml.as_slice(), rust) {
        ([m, c], Some(r)) => (*m, *c, r),
        _ => panic!("the Quickstart has two toml blocks and a rust block: {blocks:?}"),
    };
    assert!(manifest.contains("[dependencies]") && config.contains("[build]"));

    let dir = scratch("quickstart");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join(".cargo")).unwrap();
    let pulse_path = workspace().join("runtime");
    let manifest = format!(
        "[package]\nname = \"quickstart\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n{}\n[workspace]\n",
        manifest.replace("path/to/pulse/runtime", pulse_path.to_str().unwrap())
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.join(".cargo/config.toml"), config).unwrap();
    // The leak: the program's last work keeps one string in ten for good,
    // growing until it exits; long enough that the time the process takes
    // to exit on a loaded machine is a small plateau after it.
    let last = "    println!(\"{}\", words.len());\n";
    assert!(main.contains(last), "the Quickstart's main prints the count: {main}");
    let planted = "    drop(words);\n    for i in 0..200_000 {\n        let s = i.to_string();\n        \
                   if i % 10 == 0 {\n            std::mem::forget(s); // planted leak\n        }\n    }\n";
    let main = main.replace(last, &format!("{last}{planted}"));
    std::fs::write(dir.join("src/main.rs"), &main).unwrap();
    // The same versions as pulse's own build, from the local registry cache.
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| String::from("cargo"));
    let target = workspace().join("target").join("quickstart");
    let out = Command::new(cargo)
        .args(["build", "--release", "--offline", "-q"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        // The project's own .cargo/config.toml decides, as for a user.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .output()
        .unwrap();
    assert!(out.status.success(), "build: {}", String::from_utf8_lossy(&out.stderr));
    let run = Command::new(target.join("release/quickstart")).current_dir(&dir).output().unwrap();
    assert!(run.status.success(), "run: {}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(String::from_utf8_lossy(&run.stdout), "100000\n");
    assert_eq!(String::from_utf8_lossy(&run.stderr), "", "a good build starts without a warning");
    let session = dir.join("run.pulse");

    let report = pulse(&[Path::new("report"), &session, Path::new("--json")]);
    report.succeeds();
    let report: serde_json::Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(report["warnings"].as_array().map(Vec::len), Some(0), "{}", report["warnings"]);
    let sites = report["sites"].as_array().unwrap();
    assert!(sites.len() >= 3, "{sites:#?}");
    for s in sites {
        let place = s["place"].as_str().unwrap();
        assert!(
            place.contains("src/main.rs:") && !place.ends_with(":0"),
            "a site outside the program's lines: {s}"
        );
    }

    let leaks = pulse(&[Path::new("leaks"), &session]);
    leaks.no_panic();
    assert_eq!(leaks.status, 5, "{}", leaks.stdout);
    let at = format!("src/main.rs:{})", line_of(&main, "let s = i.to_string();"));
    let first = leaks.stdout.lines().next().unwrap_or_default();
    assert!(first.contains("LEAK") && first.starts_with("20000 blocks"), "{}", leaks.stdout);
    assert!(leaks.stdout.lines().nth(1).unwrap_or_default().ends_with(&at), "{}", leaks.stdout);
}
