//! What the command-line tests share: running the real `pulse` binary,
//! scratch directories, and expected-output files.
#![allow(dead_code, unreachable_pub)]

pub mod rich;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory of this test's own under cargo's scratch space.
pub fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pulse-cli-tests").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write test file");
    p
}

#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout, each line's runs of spaces squeezed to one, so table rows
    /// compare without depending on column widths.
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
    }

    #[track_caller]
    pub fn has_line(&self, want: &str) {
        assert!(
            self.lines().iter().any(|l| l == want),
            "no line {want:?} in stdout:\n{}",
            self.stdout
        );
    }

    #[track_caller]
    pub fn no_panic(&self) {
        for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
            assert!(!self.stderr.contains(bad), "panic: {}", self.stderr);
        }
    }

    /// Exit status `status` and exactly one line on stderr, starting with
    /// `pulse: `, that contains every one of `needles`.
    #[track_caller]
    pub fn fails(&self, status: i32, needles: &[&str]) {
        self.no_panic();
        assert_eq!(self.status, status, "exit status of {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "stderr must be one line: {:?}", self.stderr);
        assert!(
            lines[0].starts_with("pulse: "),
            "stderr must start with `pulse: `: {:?}",
            lines[0]
        );
        for n in needles {
            assert!(lines[0].contains(n), "stderr {:?} should mention {n:?}", lines[0]);
        }
    }

    #[track_caller]
    pub fn succeeds(&self) {
        self.no_panic();
        assert_eq!(self.status, 0, "exit status of {self:#?}");
        assert_eq!(self.stderr, "", "stderr of a clean run");
    }
}

/// The replay cache of every test's `pulse` commands: under cargo's
/// scratch space, never the user's.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("pulse-cli-cache")
}

pub fn pulse<S: AsRef<OsStr>>(args: &[S]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args(args)
        .env("PULSE_CACHE_DIR", cache_dir())
        .env_remove("PULSE_CACHE")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .expect("run pulse");
    Run {
        status: out.status.code().expect("pulse was killed by a signal"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Compares `actual` with `tests/data/<name>`, line by line. `BLESS=1`
/// (or a missing file) writes `actual` there instead; review it in the diff.
pub fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("data").join(name);
    if std::env::var_os("BLESS").is_some() || !path.exists() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        assert_eq!(
            a,
            e,
            "{}:{}: output differs; run with `BLESS=1` to accept",
            path.display(),
            i + 1
        );
    }
    assert_eq!(
        actual.lines().count(),
        expected.lines().count(),
        "{}: line counts differ; run with `BLESS=1` to accept",
        path.display()
    );
}
