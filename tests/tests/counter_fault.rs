//! Reading counters fails half-way: after fifty scopes with counters, the
//! counters' file descriptors are replaced under pulse by a directory's
//! (`dup2`), so every later read fails with `EISDIR`, as a real read would
//! fail if the kernel withdrew the event. The session finishes; the trailer
//! says the counters became unavailable, and why; `pulse info` shows it; the
//! readings taken before the fault are kept and the scopes' timing is whole.

use std::ffi::CString;
use std::hint::black_box;

use pulse_format::RecordKind;
use pulse_tests::{check, temp_session};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

const SCOPES: u64 = 50;

/// This process's open perf_event file descriptors.
fn perf_fds() -> Vec<i32> {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| {
            let e = e.ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            let fd = e.file_name().to_str()?.parse().ok()?;
            target.to_string_lossy().contains("perf_event").then_some(fd)
        })
        .collect()
}

fn scopes() {
    for i in 0..SCOPES {
        pulse::scope!("measured", counters);
        black_box((0..1_000 + i).map(|x| x * x).sum::<u64>());
        black_box(vec![0u8; 256]);
    }
}

fn main() {
    let path = temp_session("counter_fault");
    let session = pulse::Session::builder().output(&path).counters(true).start().expect("start");
    scopes();
    let fds = perf_fds();
    if !fds.is_empty() {
        let root = CString::new("/").unwrap();
        // SAFETY: `root` is a valid NUL-terminated path.
        let dir = unsafe { libc::open(root.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
        check(dir >= 0, "open /");
        for &fd in &fds {
            // SAFETY: both are open descriptors of this process; `fd` stays
            // open (now on the directory), so pulse never reads a reused number.
            check(unsafe { libc::dup2(dir, fd) } == fd, "dup2");
        }
        // SAFETY: `dir` is open and ours; its duplicates stay open.
        unsafe { libc::close(dir) };
    }
    scopes();
    // Let the collector try its periodic samples on the broken group too.
    std::thread::sleep(std::time::Duration::from_millis(30));
    session.finish().expect("the session finishes");

    let p = pulse_analysis::Profile::load(&path).expect("load");
    check(p.truncated.is_none(), "the file is whole");
    let t = p.trailer.as_ref().expect("trailer");
    let measured = p.scopes.values().find(|s| s.name == "measured").expect("scope measured");
    let time = &p.scope_times[&measured.id];
    check(time.count == 2 * SCOPES, format!("every scope timed: {}", time.count));
    check(time.total_ns > 0 && time.min_ns > 0, "with its time");
    check(p.memory.allocs >= 2 * SCOPES, "and its allocations");
    let readings = p.count(RecordKind::Counters);
    if fds.is_empty() {
        // No counter could be opened here: the metadata says why, and the
        // fault cannot be injected.
        check(p.meta.counters.iter().all(|c| !c.available && !c.reason.is_empty()), "reasons");
        check(readings == 0, "no readings");
        println!(
            "counter_fault: no counters open here ({}); nothing to break",
            p.meta.counters.len()
        );
        return;
    }
    check(p.meta.counters.iter().any(|c| c.available), "counters were opened");
    // Two readings per scope before the fault, none from the same scopes after.
    check((2 * SCOPES..4 * SCOPES).contains(&readings), format!("{readings} readings"));
    let note = t.note("counters").unwrap_or_else(|| {
        eprintln!("FAILED: no counters note in {:?}", t.notes);
        std::process::exit(1)
    });
    check(note.contains("Is a directory"), format!("the reason: {note}"));
    check(t.extra("counter_read_failures") == Some(1), format!("{:?}", t.extra));
    let mut info = Vec::new();
    pulse_analysis::info(&p).render(&mut info).expect("render");
    let info = String::from_utf8(info).expect("utf-8");
    check(info.contains(&format!("counters     {note}")), format!("pulse info shows it:\n{info}"));
    println!("counter_fault: ok ({readings} readings before the fault; {note})");
}
