//! When the disk falls behind, nothing is lost: the session file goes
//! through a pipe that stalls, then drains at about 2 MB/s, so the collector's writes block;
//! the program's threads wait for room in their rings (the lossless policy)
//! and every event reaches the file.

use std::ffi::CString;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use pulse_tests::{check, temp_session};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

fn main() {
    let fifo = temp_session("slow_disk_fifo");
    let out = temp_session("slow_disk");
    let c = CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    check(unsafe { libc::mkfifo(c.as_ptr(), 0o600) } == 0, "mkfifo");

    // The slow disk: stalls for half a second first, then reads 8 KiB,
    // sleeps 4 ms, and so on. The stall makes the wait certain however fast
    // this machine runs the loop and however well the events compress: the
    // pipe's 64 KiB and a ring fill in the first tens of thousands of
    // events, well inside the stall and well short of the collector's
    // two-second give-up.
    let (fifo_r, out_w) = (fifo.clone(), out.clone());
    let disk = std::thread::spawn(move || {
        let mut r = std::fs::File::open(&fifo_r).expect("open fifo");
        let mut w = std::fs::File::create(&out_w).expect("create file");
        std::thread::sleep(Duration::from_millis(500));
        let mut buf = vec![0u8; 8192];
        loop {
            let n = r.read(&mut buf).expect("read fifo");
            if n == 0 {
                break;
            }
            w.write_all(&buf[..n]).expect("write file");
            std::thread::sleep(Duration::from_millis(4));
        }
    });

    let session = pulse::Session::builder().output(&fifo).start().expect("start");
    let (t, cpu) = (Instant::now(), thread_cpu());
    let mut kept = Vec::new();
    for i in 0..300_000usize {
        let v = vec![i as u8; 16 + i % 200];
        if i % 1000 == 0 {
            kept.push(v);
        }
    }
    let (ran, cpu) = (t.elapsed(), thread_cpu() - cpu);
    session.finish().expect("finish");
    disk.join().expect("disk thread");
    drop(kept);

    let p = pulse_analysis::Profile::load(&out).expect("load");
    let tr = p.trailer.as_ref().expect("trailer: the session finished");
    check(tr.lost_events == 0, "no event lost");
    for (key, replayed) in [("allocs", p.memory.allocs), ("frees", p.memory.frees)] {
        check(
            tr.extra(key) == Some(replayed),
            format!("{key}: counted {:?}, in the file {replayed}", tr.extra(key)),
        );
    }
    check(p.memory.allocs >= 300_000, format!("allocs {}", p.memory.allocs));
    // The wait is pulse's cost to the program, measured and reported.
    let waited = tr.extra("wait_ns").unwrap_or(0);
    check(waited > 0, "the time the program waited for ring room is counted");
    check(tr.extra("finish_ns").is_some(), "the time finishing the session took is counted");
    // A thread waiting for room sleeps: of the time it waited, it spent
    // less than half on the CPU (the loop's own work is at most the rest of
    // its wall time). A thread that spun through the wait spent all of it.
    let wait = Duration::from_nanos(waited);
    let spent_waiting = cpu.saturating_sub(ran.saturating_sub(wait));
    check(
        spent_waiting < wait / 2,
        format!("waiting for ring room took {spent_waiting:?} of CPU in {wait:?}"),
    );
    let mut text = Vec::new();
    pulse_analysis::report(&p, &Default::default()).render(&mut text).expect("render");
    let text = String::from_utf8(text).expect("utf-8");
    check(
        text.lines().any(|l| l.contains("waiting for ring room") && !l.contains("? waiting")),
        format!("the report shows the wait: {text}"),
    );
    let size = std::fs::metadata(&out).map_or(0, |m| m.len());
    println!(
        "slow_disk: ok ({} allocations, {size} bytes through a ~2 MB/s pipe; the loop took {ran:?}, \
         of which {:.2} s waiting for ring room)",
        p.memory.allocs,
        waited as f64 / 1e9
    );
}

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    check(unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0, "clock");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
