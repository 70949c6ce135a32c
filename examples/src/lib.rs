//! Shared helpers for the pulse examples.
//!
//! Each example is a program a user would recognise, profiled exactly as the
//! README tells users to: the `#[global_allocator]` line, scopes around the
//! interesting code, a session, and the report at the end.
#![deny(missing_docs)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// The session file an example writes: `PULSE_OUT` if set, else
/// `target/pulse/<name>.pulse` under the current directory.
pub fn session_path(name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(pulse::ENV_OUT).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let dir = Path::new("target").join("pulse");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{name}.pulse"))
}

/// Reads the finished session at `path` and prints its report, then the
/// command that goes deeper.
pub fn print_report(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let profile = pulse_analysis::Profile::load(path)?;
    let report = pulse_analysis::report(&profile, &pulse_analysis::ReportOptions::default());
    let mut out = std::io::stdout().lock();
    // As `pulse report` prints it: fitted to 100 columns.
    report.render_width(&mut out, pulse_analysis::Width::default())?;
    println!();
    println!("Session written to {}", path.display());
    println!(
        "Go deeper:  cargo run --release -p pulse-cli -- report {} --sort total",
        path.display()
    );
    Ok(())
}

/// A small deterministic pseudo-random generator (xorshift64*), so every
/// run of an example does the same work.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A timer future: pending until a helper thread wakes it, as a future
/// waiting on I/O is. Stands in for a network or database call.
#[derive(Debug)]
pub struct Delay {
    until: Instant,
    armed: bool,
}

impl Delay {
    /// Ready after `d`.
    pub fn new(d: Duration) -> Self {
        Delay { until: Instant::now() + d, armed: false }
    }
}

impl Future for Delay {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.until {
            return Poll::Ready(());
        }
        if !self.armed {
            self.armed = true;
            let (waker, until) = (cx.waker().clone(), self.until);
            std::thread::spawn(move || {
                std::thread::sleep(until.saturating_duration_since(Instant::now()));
                waker.wake();
            });
        }
        Poll::Pending
    }
}

/// Runs one future to completion on the calling thread, parking it while
/// the future waits.
pub fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
