//! The session file is safe to point anywhere: `PULSE_OUT` never follows a
//! symbolic link, never replaces a file that is not a session, never
//! stalls the program on a FIFO, and a child that inherits it never spoils
//! the parent's file. Each program here is `env_only`, which has pulse as
//! its global allocator and no session code: the cases a user meets by
//! setting the variable.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use pulse_tests::temp_session;

fn run(out: &Path, arg: &str, env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_env_only"))
        .arg(arg)
        .env("PULSE_OUT", out)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// The program ran as it would have, and pulse said one line on stderr
/// that holds `why`.
fn refused(o: &Output, why: &str) {
    assert!(o.status.success(), "the program's own exit status: {o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("pulse: cannot write "), "{err}");
    assert!(err.contains(why), "{why:?} in {err}");
}

fn whole(path: &Path) -> pulse_analysis::Profile {
    let p = pulse_analysis::Profile::load(path).expect("a session");
    assert!(p.trailer.is_some() && p.truncated.is_none(), "{} is whole", path.display());
    p
}

#[test]
fn a_symbolic_link_is_never_followed() {
    let target = temp_session("link-target");
    std::fs::write(&target, "root's secret\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = temp_session("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    refused(&run(&link, "return", &[]), "symbolic link");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "root's secret\n");
    // A link to a session is refused too: the link itself is never written through.
    let session = temp_session("session-target");
    assert!(run(&session, "return", &[]).status.success());
    let before = std::fs::read(&session).unwrap();
    let link = temp_session("link-to-session");
    std::os::unix::fs::symlink(&session, &link).unwrap();
    refused(&run(&link, "return", &[]), "symbolic link");
    assert_eq!(std::fs::read(&session).unwrap(), before);
}

#[test]
fn a_file_that_is_not_a_session_is_never_replaced() {
    let path = temp_session("cargo-toml");
    let text = "[package]\nname = \"mine\"\n";
    std::fs::write(&path, text).unwrap();
    refused(&run(&path, "return", &[]), "not a pulse session");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    // Neither is a file holding some other binary format.
    std::fs::write(&path, b"\x89PNG\r\n\x1a\n....").unwrap();
    refused(&run(&path, "return", &[]), "not a pulse session");
    assert_eq!(&std::fs::read(&path).unwrap()[..4], b"\x89PNG");
}

#[test]
fn an_earlier_session_or_an_empty_file_is_replaced_by_a_whole_session() {
    let path = temp_session("rerun");
    assert!(run(&path, "return", &[]).status.success());
    let first = whole(&path);
    // A longer earlier session leaves no tail behind: the file is truncated.
    let o = run(&path, "return", &[]);
    assert!(o.status.success() && o.stderr.is_empty(), "{o:?}");
    let second = whole(&path);
    assert_eq!(first.memory.allocs, second.memory.allocs);
    // A session cut short (a killed run) and an empty file are replaced too.
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len / 2).unwrap();
    assert!(run(&path, "return", &[]).stderr.is_empty());
    whole(&path);
    std::fs::write(&path, b"").unwrap();
    assert!(run(&path, "return", &[]).stderr.is_empty());
    whole(&path);
}

#[test]
fn a_new_session_file_is_readable_by_its_owner_only() {
    let path = temp_session("mode");
    assert!(run(&path, "return", &[]).status.success());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}

#[test]
fn a_fifo_without_a_reader_does_not_stall_the_program() {
    let fifo = temp_session("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut child = Command::new(env!("CARGO_BIN_EXE_env_only"))
        .arg("return")
        .env("PULSE_OUT", &fifo)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Not a timing check: a program blocked on the FIFO for ever would
    // never end, and this bound is far above the second pulse waits.
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("the program is stalled on a FIFO nobody reads");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    refused(&child.wait_with_output().unwrap(), "FIFO that nothing read");
}

#[test]
fn a_child_that_inherits_the_output_leaves_the_parents_file_whole() {
    let path = temp_session("inherited");
    let o = run(&path, "child", &[]);
    assert!(o.status.success(), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "the child says why it runs unprofiled: {err}");
    assert!(err.contains("another process is writing a session there"), "{err}");
    let p = whole(&path);
    assert_eq!(p.meta.args, ["child"], "the parent's session");
}

#[test]
fn percent_p_gives_each_process_a_file_of_its_own() {
    let dir = temp_session("per-process");
    std::fs::create_dir_all(&dir).unwrap();
    let o = run(&dir.join("run-%p.pulse"), "child", &[]);
    assert!(o.status.success() && o.stderr.is_empty(), "{o:?}");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let mut args: Vec<Vec<String>> = Vec::new();
    for f in &files {
        let p = whole(f);
        let name = f.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(name, format!("run-{}.pulse", p.meta.pid));
        args.push(p.meta.args.clone());
    }
    args.sort();
    assert_eq!(args, [vec!["child"], vec!["return"]]);
}

#[test]
fn the_arguments_can_be_left_out_of_the_session() {
    let path = temp_session("args");
    assert!(run(&path, "return", &[]).status.success());
    assert_eq!(whole(&path).meta.args, ["return"]);
    assert!(run(&path, "return", &[("PULSE_ARGS", "off")]).status.success());
    let p = whole(&path);
    assert!(p.meta.args.is_empty(), "{:?}", p.meta.args);
    assert!(p.meta.program.ends_with("env_only"), "the program is still named: {}", p.meta.program);
    let o = run(&path, "return", &[("PULSE_ARGS", "maybe")]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("pulse: PULSE_ARGS=maybe is not valid"), "{err}");
    assert_eq!(whole(&path).meta.args, ["return"], "ignored: the default, on, stands");
}
