//! A program for the durability tests (`tests/tests/durability.rs`):
//! `durable MODE [OUT]`, with the session from `PULSE_OUT` unless a mode
//! starts its own.
//!
//! - `steady`: about 1 000 allocations a second, in `steady_work`, until
//!   killed (or for a minute).
//! - `handler-first OUT`: installs a `SIGTERM` handler, then starts a
//!   session writing OUT, then runs `steady`; the handler writes `handled`
//!   on stderr and leaves with status 7.
//! - `handler-after`: runs `steady` with a `SIGTERM` handler installed in
//!   `main`, after pulse's, which sets a flag; the loop then returns from
//!   `main`, which prints `stopped` and exits 0.
//! - `stderr-locked`: holds `std::io::stderr`'s lock while it makes 400 000
//!   allocations, then prints `done` on stderr.
//! - `burst`: 400 000 allocations, then prints `done` on stderr.
//! - `abort`: `steady` for a second, then `std::process::abort()`.
//! - `overflow`: `steady` for a second, then recursion without end (Rust
//!   reports the overflow and aborts).
//! - `overflow-in-code OUT`: `overflow`, with a session started in `main`,
//!   after Rust installed its stack-overflow handler (pulse's `SIGSEGV`
//!   handler then runs first and calls it).
//! - `exit-signalled`: `steady` on `main` while another thread, with
//!   `SIGTERM` blocked, calls `std::process::exit` after 200 ms; an `atexit`
//!   handler of the program's sends the process `SIGTERM`, which `main`
//!   takes while the exit runs (and has unmapped `main`'s alternate signal
//!   stack).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

static STOP: AtomicBool = AtomicBool::new(false);

#[inline(never)]
fn steady_work(i: usize, kept: &mut Vec<Vec<u8>>) {
    let v = vec![i as u8; 32 + i % 64];
    if kept.len() < 64 {
        kept.push(v);
    } else {
        kept[i % 64] = v;
    }
}

/// About a thousand allocations a second for `limit`, or until `STOP`.
fn steady(limit: Duration) {
    let t = Instant::now();
    let mut kept = Vec::new();
    let mut i = 0;
    while t.elapsed() < limit && !STOP.load(Ordering::Relaxed) {
        steady_work(i, &mut kept);
        i += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
}

extern "C" fn send_term() {
    // SAFETY: `kill` on this process, with a valid signal.
    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
}

extern "C" fn exit_seven(_: libc::c_int) {
    let msg = b"handled\n";
    // SAFETY: write and _exit are async-signal-safe; `msg` is valid.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(7);
    }
}

extern "C" fn set_stop(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn install(sig: libc::c_int, handler: usize) {
    // SAFETY: an all-zero sigaction is valid; `handler` is an
    // `extern "C" fn(c_int)`, as a handler without SA_SIGINFO must be.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = handler;
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaction(sig, &act, std::ptr::null_mut());
    }
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let pad = std::hint::black_box([depth; 64]);
    // Never true: the recursion only ends by overflowing.
    if std::hint::black_box(depth) == u64::MAX {
        return pad[0];
    }
    recurse(depth + 1) + pad[1]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let minute = Duration::from_secs(60);
    match mode.as_str() {
        "steady" => steady(minute),
        "handler-first" => {
            install(libc::SIGTERM, exit_seven as extern "C" fn(libc::c_int) as usize);
            let out = args.next().expect("usage: durable handler-first OUT");
            let _s = pulse::Session::builder().output(out).start().expect("start");
            steady(minute);
        }
        "handler-after" => {
            install(libc::SIGTERM, set_stop as extern "C" fn(libc::c_int) as usize);
            steady(minute);
            eprintln!("stopped");
        }
        "stderr-locked" | "burst" => {
            let lock = (mode == "stderr-locked").then(|| std::io::stderr().lock());
            let mut kept = Vec::new();
            for i in 0..400_000 {
                steady_work(i, &mut kept);
            }
            drop(lock);
            let _ = writeln!(std::io::stderr(), "done");
        }
        "abort" => {
            steady(Duration::from_secs(1));
            std::process::abort();
        }
        "overflow" | "overflow-in-code" => {
            let out = args.next();
            let _s = out.map(|o| pulse::Session::builder().output(o).start().expect("start"));
            steady(Duration::from_secs(1));
            std::hint::black_box(recurse(0));
        }
        "exit-signalled" => {
            // SAFETY: `send_term` is an `extern "C" fn()` that does not unwind.
            unsafe { libc::atexit(send_term) };
            std::thread::spawn(|| {
                // SAFETY: a zeroed sigset is a valid one to fill; the mask
                // is this thread's alone.
                unsafe {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, libc::SIGTERM);
                    libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                }
                steady(Duration::from_millis(200));
                std::process::exit(0);
            });
            steady(minute);
        }
        other => panic!("unknown mode {other:?}"),
    }
}
