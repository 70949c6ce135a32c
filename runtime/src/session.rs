//! Sessions: one recording of a program run into one `.pulse` file.
//!
//! ```text
//!   Session::builder().start()  ─┐
//!   PULSE_OUT=path (at load)    ─┴─► running ──► finished: trailer written
//!                                     │  ▲           by whichever comes first:
//!                                     │  └ collector rounds    drop of the handle,
//!                                     ▼                        `finish()`, or process exit
//! ```
//!
//! One session runs at a time in a process. Its state lives in a global so
//! that an `atexit` handler can finish it when the program returns from
//! `main`, calls `std::process::exit`, or panics out of `main`.

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;

use pulse_alloc::clock::{self, Anchor};
use pulse_alloc::{StackMode, Tracking};
use pulse_format::{AllocMode, ClockInfo, ClockSource, Metadata, Trailer, Writer};

use crate::collector::{say, Collector, Control};
use crate::metrics::{ENV_METRICS, ENV_METRICS_BUCKETS};
use crate::signals;
use crate::sink::Output;

/// The environment variable that starts a session with no code change:
/// `PULSE_OUT=run.pulse ./my-program`. A `%p` in the path is the process
/// id, so that programs it runs which are linked with pulse too (and
/// inherit the variable) write files of their own; without it, the second
/// process to start finds the file taken and runs unprofiled.
pub const ENV_OUT: &str = "PULSE_OUT";
/// The environment variable that chooses the allocation mode:
/// `full` (the default), `count`, `sample` or `off`.
pub const ENV_ALLOC: &str = "PULSE_ALLOC";
/// The mean bytes between sampled stacks in `sample` mode (default 512 KiB).
pub const ENV_SAMPLE_BYTES: &str = "PULSE_SAMPLE_BYTES";
/// How many frames a stack keeps (default 32, at most 64).
pub const ENV_STACK_DEPTH: &str = "PULSE_STACK_DEPTH";
/// Which counters a session opens: `auto` (the default: the hardware group
/// where there is one, else software counters), `software` or `off`.
pub const ENV_COUNTERS: &str = "PULSE_COUNTERS";
/// Whether the session file records the program's arguments: `on` (the
/// default) or `off`, which leaves them out (the program's path stays).
pub const ENV_ARGS: &str = "PULSE_ARGS";
/// Whether a session finishes its file on `SIGINT`, `SIGTERM`, `SIGHUP`
/// and `SIGABRT` before the signal takes its course: `on` (the default) or
/// `off` (see [`SessionBuilder::signals`]).
pub const ENV_SIGNALS: &str = "PULSE_SIGNALS";

/// Which performance counters a session opens (see
/// [`SessionBuilder::counters`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counters {
    /// The hardware group (cycles, instructions, cache references and
    /// misses, branch misses) where the processor exposes one, software
    /// counters (task clock, page faults, context switches, migrations)
    /// otherwise.
    Auto,
    /// The software counters, even where hardware ones exist.
    Software,
    /// None.
    Off,
}

impl From<bool> for Counters {
    /// `true` is [`Counters::Auto`], `false` [`Counters::Off`].
    fn from(on: bool) -> Self {
        if on {
            Counters::Auto
        } else {
            Counters::Off
        }
    }
}

/// The session running in this process, if any.
static RUNNING: Mutex<Option<Running>> = Mutex::new(None);
static AT_EXIT: Once = Once::new();

struct Running {
    path: PathBuf,
    control: Arc<Control>,
    collector: JoinHandle<io::Result<()>>,
    /// Started from `PULSE_OUT` rather than by the program's own code.
    from_env: bool,
    /// The process that started it: a forked child has no collector and
    /// leaves the parent's file alone.
    pid: u32,
    /// Whether it writes a session file (not when it serves metrics alone).
    file: bool,
    /// Where its metrics are served, if they are.
    metrics: Option<SocketAddr>,
}

/// Why a session could not start or finish.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Another session is already running in this process.
    AlreadyRunning(PathBuf),
    /// The output file could not be created or written, or was refused:
    /// a symbolic link (never followed), an existing file that is not a
    /// pulse session (never replaced), a FIFO that nothing reads, or a file
    /// another process is writing a session into.
    Io {
        /// The session file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// This process is a forked child of one whose session was running: the
    /// session and its file are the parent's, and a child records nothing.
    InForkedChild(PathBuf),
    /// The metrics endpoint could not be served: an address that is not
    /// one, or one that cannot be bound (in use, not this machine's).
    /// Returned only by a session that serves metrics alone; one that
    /// writes a file says it on stderr and goes on without them.
    Metrics {
        /// The address asked for.
        address: String,
        /// What failed.
        source: io::Error,
    },
    /// An environment variable holds a value pulse does not understand.
    /// Never returned: said on stderr, with "; ignored", as the variable
    /// is (see [`SessionBuilder`]).
    BadSetting {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What it should hold.
        want: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyRunning(p) => {
                write!(f, "pulse: a session is already running (writing {})", p.display())
            }
            Error::Io { path, source } => {
                write!(f, "pulse: cannot write {}: {source}", path.display())
            }
            Error::InForkedChild(p) => write!(
                f,
                "pulse: this process was forked while a session was running (writing {}); \
                 a forked child records nothing and cannot start a session of its own",
                p.display()
            ),
            Error::Metrics { address, source } => {
                write!(f, "pulse: cannot serve metrics on {address}: {source}")
            }
            Error::BadSetting { var, value, want } => {
                write!(f, "pulse: {var}={value} is not valid; use {want}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Metrics { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Configures a session. Made by [`Session::builder`]; every setting can
/// also be given by an environment variable, which takes precedence; a
/// variable whose value pulse does not understand is ignored, with a line
/// on stderr.
#[derive(Debug, Clone)]
pub struct SessionBuilder {
    output: PathBuf,
    mode: AllocMode,
    depth: usize,
    tsc: bool,
    counters: Counters,
    args: bool,
    signals: bool,
    /// Operation metrics (`metrics/`): where to serve them, with which
    /// buckets; and whether a session file is written at all.
    metrics: Option<String>,
    /// None: the default bounds (nothing allocated by the program's builder).
    buckets: Option<Vec<f64>>,
    file: bool,
}

impl SessionBuilder {
    /// Where the session file goes (default `pulse.pulse` in the working
    /// directory); `%p` in it is the process id. `PULSE_OUT` takes
    /// precedence. The file is never a symbolic link's target, never an
    /// existing file that is not a pulse session, and is created with mode
    /// 0600: see [`Error::Io`] for what is refused.
    pub fn output(mut self, path: impl AsRef<Path>) -> Self {
        self.output = path.as_ref().to_path_buf();
        self
    }

    /// What is recorded of allocations (default [`AllocMode::Full`]).
    /// `PULSE_ALLOC=full|count|sample|off` takes precedence, with
    /// `PULSE_SAMPLE_BYTES` for the sampling interval.
    pub fn mode(mut self, mode: AllocMode) -> Self {
        self.mode = mode;
        self
    }

    /// How many frames an allocation's stack keeps (default 32, at most 64).
    /// `PULSE_STACK_DEPTH` takes precedence.
    pub fn stack_depth(mut self, depth: usize) -> Self {
        self.depth = depth.clamp(1, pulse_alloc::MAX_DEPTH);
        self
    }

    /// Uses the invariant TSC where the processor has one (the default), or
    /// always the monotonic clock.
    pub fn tsc(mut self, on: bool) -> Self {
        self.tsc = on;
        self
    }

    /// Which performance counters `scope!(…, counters)` and the periodic
    /// samples read (default [`Counters::Auto`]: the hardware group where
    /// the processor exposes one, software counters otherwise); `true` and
    /// `false` mean `Auto` and `Off`. `PULSE_COUNTERS=auto|software|off`
    /// takes precedence. They are opened at the first scope that reads
    /// them, not at the session's start: a program whose scopes read none
    /// never waits for the kernel's first counter (12-20 ms).
    pub fn counters(mut self, which: impl Into<Counters>) -> Self {
        self.counters = which.into();
        self
    }

    /// Whether the session file records the program's arguments (default
    /// `true`; they can hold secrets). `PULSE_ARGS=on|off` takes precedence.
    pub fn record_args(mut self, on: bool) -> Self {
        self.args = on;
        self
    }

    /// Whether the session finishes its file when the process gets
    /// `SIGINT`, `SIGTERM` or `SIGHUP`, or aborts (`SIGABRT`, which is also
    /// how a thread's stack overflow ends), before the signal does what it
    /// would have done: the program's own handler if it has one, else the
    /// default, so the exit status is still the signal's. Default `true`.
    /// Signals the program ignores stay ignored; a handler the program
    /// installs after the session started replaces pulse's (its exit
    /// through `exit()` still finishes the session). `PULSE_SIGNALS=on|off`
    /// takes precedence.
    pub fn signals(mut self, on: bool) -> Self {
        self.signals = on;
        self
    }

    /// Serves operation metrics for Prometheus on `address` while the
    /// session runs (and after, with its last figures, until the process
    /// exits): `GET /metrics` in the text exposition format 0.0.4. The
    /// address is an IP address and port (`"127.0.0.1:9464"`, `"[::1]:9464"`),
    /// `localhost:PORT`, or a port alone (`"9464"`), which is on loopback;
    /// port 0 takes a free port, which [`Session::metrics_addr`] and a line
    /// on stderr give. `PULSE_METRICS` takes precedence (`off` serves none).
    /// The metrics are listed in the README ("Metrics for Prometheus").
    ///
    /// ```no_run
    /// let _session = pulse::Session::builder()
    ///     .metrics("127.0.0.1:9464")
    ///     .write_file(false)
    ///     .start()
    ///     .unwrap();
    /// ```
    pub fn metrics(mut self, address: impl AsRef<str>) -> Self {
        self.metrics = Some(address.as_ref().to_owned());
        self
    }

    /// The upper bounds, in seconds, of `pulse_operation_duration_seconds`'
    /// buckets (default [`DEFAULT_METRICS_BUCKETS`](crate::DEFAULT_METRICS_BUCKETS):
    /// 1, 2.5 and 5 per decade from 100 ns to 10 s). Bounds that are not
    /// finite and positive are dropped, the rest sorted, at most 64 kept;
    /// none left means the default. `PULSE_METRICS_BUCKETS` takes precedence.
    pub fn metrics_buckets(mut self, bounds: &[f64]) -> Self {
        let tidy = crate::metrics::tidy_buckets(bounds);
        self.buckets = (!tidy.is_empty()).then_some(tidy);
        self
    }

    /// Whether the session writes a session file (default `true`). With
    /// `false` it records only for [`stats`](crate::stats()) and the
    /// metrics: no file, no allocation stacks (nothing would read them),
    /// and [`Session::path`] is empty. `PULSE_OUT` takes precedence: set,
    /// the file is written.
    pub fn write_file(mut self, on: bool) -> Self {
        self.file = on;
        self
    }

    /// Applies the environment variables over the builder's settings. A
    /// value pulse does not understand costs a line on stderr and is
    /// ignored: the builder's setting (or the default) stands, so that a
    /// typo in the environment never stops a program that starts its
    /// session with `start().unwrap()`.
    fn with_env(mut self) -> Self {
        // A blank path is taken for unset, as every setting's blank value
        // is: a file named by spaces is a slip, not a wish.
        if let Some(p) = setting(ENV_OUT).and(std::env::var_os(ENV_OUT)) {
            self.output = PathBuf::from(p);
            self.file = true;
        }
        if let Some(address) = from_env(ENV_METRICS, |v| match v.trim() {
            "off" => Ok(None),
            a if crate::metrics::parse_address(a).is_some() => Ok(Some(a.to_owned())),
            _ => Err(crate::metrics::ADDRESS_WANT),
        }) {
            self.metrics = address;
        }
        let buckets = from_env(ENV_METRICS_BUCKETS, |v| {
            crate::metrics::parse_buckets(v).ok_or(crate::metrics::BUCKETS_WANT)
        });
        if let Some(b) = buckets {
            self.buckets = Some(b);
        }
        let sample = from_env(ENV_SAMPLE_BYTES, parse_number);
        if let Some(mode) = from_env(ENV_ALLOC, |m| parse_mode(m, sample)) {
            self.mode = mode;
        } else if let (AllocMode::Sample { .. }, Some(mean_bytes)) = (self.mode, sample) {
            self.mode = AllocMode::Sample { mean_bytes };
        }
        if let Some(n) = from_env(ENV_STACK_DEPTH, parse_number) {
            self.depth = (n as usize).clamp(1, pulse_alloc::MAX_DEPTH);
        }
        if let Some(c) = from_env(ENV_COUNTERS, parse_counters) {
            self.counters = c;
        }
        if let Some(on) = from_env(ENV_ARGS, parse_switch) {
            self.args = on;
        }
        if let Some(on) = from_env(ENV_SIGNALS, parse_switch) {
            self.signals = on;
        }
        self
    }

    /// Starts recording. If a session started from `PULSE_OUT` is already
    /// running, the returned handle adopts it.
    pub fn start(self) -> Result<Session, Error> {
        let mut running = lock();
        if let Some(r) = running.as_mut() {
            if r.pid != std::process::id() {
                // The parent's session, inherited by fork: its rings still
                // hold the parent's undrained events and its sites are marked
                // as already written to the parent's file, so a new session
                // here would write a corrupt file. The child records nothing.
                return Err(Error::InForkedChild(r.path.clone()));
            }
            // A session `PULSE_METRICS` started alone, without a file, gives
            // way to one that writes a file: it finishes, and this one
            // starts with the program's settings (and serves the metrics).
            let gives_way = r.from_env && !r.file && self.file;
            if r.from_env && !gives_way {
                r.from_env = false;
                let metrics = r.metrics;
                return Ok(Session { path: pulse_alloc::untracked(|| r.path.clone()), metrics });
            }
            if !gives_way {
                return Err(Error::AlreadyRunning(r.path.clone()));
            }
        }
        let cfg = self.with_env();
        if let Some(env) = running.take() {
            drop(running);
            finish(env)?;
            running = lock();
            if let Some(r) = running.as_ref() {
                return Err(Error::AlreadyRunning(r.path.clone()));
            }
        }
        let r = launch(cfg, false)?;
        // Recording is on: the handle's copy of the path is pulse's, not
        // the program's (it is freed after the session ends).
        let path = pulse_alloc::untracked(|| r.path.clone());
        let metrics = r.metrics;
        *running = Some(r);
        Ok(Session { path, metrics })
    }
}

/// A setting's value: `None` where the variable is unset, empty or blank
/// (every variable alike: as if unset); one that is not UTF-8 comes as
/// its lossy text, to be refused by name.
fn setting(var: &str) -> Option<String> {
    let v = std::env::var_os(var)?;
    let v = v.to_string_lossy();
    (!v.trim().is_empty()).then(|| v.into_owned())
}

/// `var`'s value as `parse` reads it, or `None` where it is unset or
/// `parse` refuses it (with what it should hold): a refused value costs a
/// line on stderr, once a process (a builder reads the settings again
/// after the start from the environment did), and is ignored.
fn from_env<T>(
    var: &'static str,
    parse: impl FnOnce(&str) -> Result<T, &'static str>,
) -> Option<T> {
    let value = setting(var)?;
    match parse(&value) {
        Ok(v) => Some(v),
        Err(want) => {
            static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
            let line = format!("{}; ignored", Error::BadSetting { var, value, want });
            let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
            if !said.contains(&line) {
                say(&line);
                said.push(line);
            }
            None
        }
    }
}

/// `PULSE_ALLOC`'s value as a mode.
fn parse_mode(m: &str, sample_bytes: Option<u64>) -> Result<AllocMode, &'static str> {
    match m.trim() {
        "full" => Ok(AllocMode::Full),
        "count" => Ok(AllocMode::Count),
        "sample" => Ok(AllocMode::Sample {
            mean_bytes: sample_bytes.unwrap_or(pulse_alloc::DEFAULT_SAMPLE_INTERVAL as u64),
        }),
        "off" => Ok(AllocMode::Off),
        _ => Err("full, count, sample or off"),
    }
}

/// `PULSE_COUNTERS`'s value.
fn parse_counters(v: &str) -> Result<Counters, &'static str> {
    match v.trim() {
        "auto" => Ok(Counters::Auto),
        "software" => Ok(Counters::Software),
        "off" => Ok(Counters::Off),
        _ => Err("auto, software or off"),
    }
}

/// An `on`/`off` setting's value.
fn parse_switch(v: &str) -> Result<bool, &'static str> {
    match v.trim() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err("on or off"),
    }
}

fn parse_number(v: &str) -> Result<u64, &'static str> {
    v.trim().parse::<u64>().ok().filter(|n| *n > 0).ok_or("a positive whole number")
}

fn lock() -> std::sync::MutexGuard<'static, Option<Running>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running session. Dropping it (or calling [`Session::finish`]) stops
/// recording and completes the file; so does the end of the process.
///
/// ```no_run
/// #[global_allocator]
/// static ALLOC: pulse::Alloc = pulse::Alloc::system();
///
/// fn main() {
///     let session = pulse::Session::builder().output("run.pulse").start().unwrap();
///     {
///         pulse::scope!("work");
///         let v: Vec<u64> = (0..1000).collect();
///         assert_eq!(v.len(), 1000);
///     }
///     session.finish().unwrap();
/// }
/// ```
#[derive(Debug)]
#[must_use = "the session stops when this handle is dropped"]
pub struct Session {
    path: PathBuf,
    metrics: Option<SocketAddr>,
}

impl Session {
    /// A builder with the defaults.
    pub fn builder() -> SessionBuilder {
        SessionBuilder {
            output: PathBuf::from("pulse.pulse"),
            mode: AllocMode::Full,
            depth: pulse_alloc::DEFAULT_DEPTH,
            tsc: true,
            counters: Counters::Auto,
            args: true,
            signals: true,
            metrics: None,
            buckets: None,
            file: true,
        }
    }

    /// The session file being written (empty when the session writes none:
    /// [`SessionBuilder::write_file`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The address the operation metrics are served on, if they are
    /// ([`SessionBuilder::metrics`], `PULSE_METRICS`): with port 0 asked
    /// for, the port given.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// Stops recording and completes the file; returns its path.
    pub fn finish(self) -> Result<PathBuf, Error> {
        let mut this = std::mem::ManuallyDrop::new(self);
        let path = std::mem::take(&mut this.path);
        finish_running()?;
        Ok(path)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Err(e) = finish_running() {
            say_once(&e);
        }
    }
}

/// Says `e` on stderr, unless it is the write failure the collector said
/// when it happened.
fn say_once(e: &Error) {
    let said = crate::collector::FAILURE_SAID.load(std::sync::atomic::Ordering::Acquire);
    if !(said && matches!(e, Error::Io { .. })) {
        say(&e.to_string());
    }
}

/// Starts a session from `PULSE_OUT` if it is set. Called once when the
/// program loads; an error is reported on stderr and the program runs on.
pub(crate) fn start_from_env() {
    let set = |var| setting(var).is_some();
    // `PULSE_METRICS` alone starts a session too, with no file.
    let metrics = std::env::var_os(ENV_METRICS).is_some_and(|v| !v.is_empty() && v != "off");
    if !set(ENV_OUT) && !metrics {
        return;
    }
    let cfg = SessionBuilder { file: set(ENV_OUT), ..Session::builder() }.with_env();
    if !cfg.file && cfg.metrics.is_none() {
        // `PULSE_METRICS` alone, and not an address: nothing to do.
        return;
    }
    match launch(cfg, true) {
        Ok(r) => *lock() = Some(r),
        Err(e) => say(&e.to_string()),
    }
}

fn launch(cfg: SessionBuilder, from_env: bool) -> Result<Running, Error> {
    crate::collector::FAILURE_SAID.store(false, std::sync::atomic::Ordering::Release);
    let SessionBuilder {
        output,
        mode,
        depth,
        tsc,
        counters,
        args,
        signals: on_signals,
        metrics,
        buckets,
        file,
    } = cfg;
    pulse_alloc::untracked(|| {
        // pulse's own allocation, as everything else here, not the program's;
        // and the builder's path is freed here, before recording starts, not
        // after it as a free of a block from before the session.
        let path =
            if file { crate::output::expand(&output, std::process::id()) } else { PathBuf::new() };
        drop(output);
        // Bound before the file is created, served once it is: a refused
        // file leaves no server. A refused address ends a session that was
        // only to serve metrics; one that writes a file goes on without
        // them (the profile is worth more than the endpoint).
        let bound = match metrics {
            Some(address) => {
                let err = |source| Error::Metrics { address: address.clone(), source };
                let bound = crate::metrics::parse_address(&address)
                    .ok_or_else(|| {
                        err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("not an address; use {}", crate::metrics::ADDRESS_WANT),
                        ))
                    })
                    .and_then(|addr| crate::metrics::bind(addr).map_err(err));
                match bound {
                    Ok(listener) => Some((listener, address)),
                    Err(e) if file => {
                        say(&format!("{e}; the session file is written without them"));
                        None
                    }
                    Err(e) => return Err(e),
                }
            }
            None => None,
        };
        let io_err = |source| Error::Io { path: path.clone(), source };
        // The clock's rate is measured between this anchor and one taken
        // 1 ms later at the least; what the start has to do meanwhile is
        // done in that time rather than after it.
        let mut source = clock::select(tsc);
        let mut start = Anchor::take();
        // Counters open at the first scope that reads them (see `counters`).
        crate::counters::configure(match counters {
            Counters::Auto => Some(true),
            Counters::Software => Some(false),
            Counters::Off => None,
        });
        if matches!(mode, AllocMode::Full | AllocMode::Sample { .. }) {
            pulse_alloc::set_stack_mode(StackMode::Full, depth);
        }
        let mut cost = pulse_alloc::calibrate();
        let mut ticks_per_ns = calibrate(source, start);
        if !ClockInfo::plausible(ticks_per_ns) {
            // A counter that ran implausibly fast or slow against the
            // monotonic clock (a migrated virtual machine) cannot time the
            // session: use the monotonic clock, which needs no calibration.
            source = clock::select(false);
            ticks_per_ns = 1.0;
            // The anchor the trailer's whole-session rate is measured
            // from must be of the clock the session now reads, and so
            // must the cost of reading it.
            start = Anchor::take();
            cost = pulse_alloc::calibrate();
        }
        let mut meta = metadata(mode, source, ticks_per_ns, args);
        let tried = match counters {
            Counters::Auto => Some("hardware, else software"),
            Counters::Software => Some("software"),
            Counters::Off => None,
        };
        if let Some(tried) = tried {
            meta.extra.push((
                String::from(pulse_format::COUNTERS_AT_FIRST_USE),
                format!("{tried}, opened at the first scope that reads them"),
            ));
        }
        // Stacks go to the file only: a session without one captures none.
        let stacks = if file { StackMode::Full } else { StackMode::Off };
        meta.extra.extend([
            (String::from("cost.clock_ns"), format!("{:.1}", cost.clock_ns)),
            (String::from("cost.event_ns"), format!("{:.1}", cost.event_ns)),
            (String::from("cost.stack_ns"), format!("{:.1}", cost.stack_ns)),
            (String::from("cost.frame_ns"), format!("{:.2}", cost.frame_ns)),
            // What the analyzer needs to tell pulse's frames from the
            // program's by file, and stacks cut short from deep ones.
            (String::from("pulse.source_dirs"), source_dirs()),
            (String::from("stack_depth"), depth.to_string()),
        ]);
        crate::stats::reset(ticks_per_ns);
        crate::stats::with_aggregates(|a| {
            let stack_ns = if file { cost.stack_ns } else { 0.0 };
            a.extra.set_costs(cost.event_ns, stack_ns);
        });
        let output = if file {
            let f = crate::output::open(&path)
                .map_err(|refusal| io_err(io::Error::other(refusal.to_string())))?;
            Output::new(f)
        } else {
            Output::discard()
        };
        let mut writer = Writer::new(output, &meta).map_err(io_err)?;
        // The header reaches the kernel now: a session killed at once still
        // leaves a file that says what it is.
        writer.get_mut().flush().map_err(io_err)?;
        // Served before the collector starts: a failure leaves nothing running.
        let metrics = match bound {
            Some((bound, address)) => {
                let buckets =
                    buckets.unwrap_or_else(|| crate::metrics::DEFAULT_METRICS_BUCKETS.to_vec());
                match bound.serve(buckets) {
                    Ok(local) => {
                        let note = if crate::metrics::is_loopback(&local) {
                            ""
                        } else {
                            " (not loopback: reachable from other machines)"
                        };
                        say(&format!(
                            "pulse: metrics for Prometheus at http://{local}/metrics{note}"
                        ));
                        Some(local)
                    }
                    // The file is there by now: it goes on without them.
                    Err(source) if file => {
                        let e = Error::Metrics { address, source };
                        say(&format!("{e}; the session file is written without them"));
                        None
                    }
                    Err(source) => return Err(Error::Metrics { address, source }),
                }
            }
            None => None,
        };
        let control = Arc::new(Control::default());
        let before = Before {
            totals: pulse_alloc::totals(),
            waited_ns: pulse_alloc::waited_ns(),
            lost: pulse_alloc::lost_events(),
        };
        let collector = Collector::new(writer, Arc::clone(&control));
        let finish = Box::new(move || trailer(start, before));
        signals::reset();
        AT_EXIT.call_once(|| {
            // SAFETY: `finish_at_exit` is an `extern "C" fn()` that does not unwind.
            unsafe { libc::atexit(finish_at_exit) };
            // SAFETY: `child_after_fork` is an `extern "C" fn()` that does not unwind.
            unsafe { libc::pthread_atfork(None, None, Some(child_after_fork)) };
        });
        // Recording starts once the collector thread has marked itself as
        // pulse's own, so that its start-up allocations are not the program's.
        //
        // The wait is a flag and `yield_now`, not a channel: blocking on a
        // channel makes std create this thread's handle, which, before
        // `main`, std's start-up replaces and frees while the session
        // records (a free of a block the session never saw allocated).
        crate::collector::READY.store(false, Ordering::Release);
        let handle = std::thread::Builder::new()
            .name(String::from("pulse-collector"))
            .spawn(move || collector.run(finish))
            .map_err(io_err)?;
        while !crate::collector::READY.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        signals::arm(on_signals);
        let tracking = match mode {
            AllocMode::Off => Tracking::Off,
            AllocMode::Count => Tracking::Count,
            AllocMode::Full => {
                pulse_alloc::set_stack_mode(stacks, depth);
                Tracking::Events
            }
            AllocMode::Sample { mean_bytes } => {
                pulse_alloc::set_sample_interval(mean_bytes as usize);
                let sampled = if file { StackMode::Sample } else { StackMode::Off };
                pulse_alloc::set_stack_mode(sampled, depth);
                Tracking::Events
            }
        };
        pulse_alloc::start_recording(tracking);
        COLLECTOR.with_thread(handle.thread().clone());
        pulse_alloc::set_waker(wake_collector);
        Ok(Running {
            path,
            control,
            collector: handle,
            from_env,
            pid: std::process::id(),
            file,
            metrics,
        })
    })
}

/// Calibrates ticks per nanosecond between `start` and now, waiting busy
/// for what is left of 1 ms since `start` (within 1e-5 of the rate over a
/// whole session, as 2 ms were; the trailer carries that figure).
fn calibrate(source: clock::Source, start: Anchor) -> f64 {
    if source == clock::Source::Monotonic {
        return 1.0;
    }
    while clock::monotonic_ns().saturating_sub(start.ns) < 1_000_000 {
        std::hint::spin_loop();
    }
    start.ticks_per_ns(Anchor::take())
}

fn metadata(mode: AllocMode, source: clock::Source, ticks_per_ns: f64, args: bool) -> Metadata {
    let mut args_os = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let arg0 = args_os.next().unwrap_or_default();
    let program = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or(arg0);
    let clock = match source {
        clock::Source::Tsc => ClockInfo {
            source: ClockSource::Tsc,
            ticks_per_ns,
            calibration: String::from("invariant TSC against CLOCK_MONOTONIC over 1 ms at start"),
        },
        clock::Source::Monotonic => ClockInfo::monotonic(),
    };
    Metadata {
        writer: format!("pulse {}", env!("CARGO_PKG_VERSION")),
        program,
        args: if args { args_os.collect() } else { Vec::new() },
        pid: std::process::id(),
        host: hostname(),
        start_unix_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        clock,
        alloc_mode: mode,
        counters: Vec::new(),
        extra: Vec::new(),
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its whole length, which we pass.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// The process-wide counts at the start of a session.
struct Before {
    totals: pulse_alloc::Totals,
    waited_ns: u64,
    lost: u64,
}

/// The trailer: end calibration and the allocator's own totals, which the
/// analyzer cross-checks against its replay, and what the session cost the
/// program: time its threads waited for ring room, the collector's CPU,
/// pulse's own memory (the collector adds the time the program waited for
/// the session to finish).
fn trailer(start: Anchor, before: Before) -> Trailer {
    let end = Anchor::take();
    let t = pulse_alloc::totals().since(before.totals);
    let own = pulse_alloc::overhead();
    let mut cpu = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `cpu` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut cpu) };
    let collector_ns = cpu.tv_sec as u64 * 1_000_000_000 + cpu.tv_nsec as u64;
    let mut extra = vec![
        (String::from("allocs"), t.allocs),
        (String::from("frees"), t.frees),
        (String::from("reallocs"), t.reallocs),
        (String::from("alloc_failed"), t.failed),
        (String::from("bytes_allocated"), t.bytes_allocated),
        (String::from("bytes_freed"), t.bytes_freed),
        (String::from("pulse_allocs"), own.allocs),
        (String::from("pulse_bytes"), own.bytes),
        (String::from("pulse_ring_bytes"), own.ring_bytes),
        (String::from("collector_cpu_ns"), collector_ns),
        (String::from("wait_ns"), pulse_alloc::waited_ns().saturating_sub(before.waited_ns)),
    ];
    let mut notes = Vec::new();
    if let Some((text, threads)) = crate::counters::failures() {
        notes.push((String::from("counters"), text));
        extra.push((String::from("counter_read_failures"), threads));
    }
    Trailer {
        counters: crate::counters::found(),
        end_ts: end.ticks,
        end_unix_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        ticks_per_ns: start.ticks_per_ns(end),
        lost_events: pulse_alloc::lost_events().saturating_sub(before.lost),
        extra,
        notes,
        ..Trailer::default()
    }
}

/// Stops the running session, if any, and waits for its file to be complete.
fn finish_running() -> Result<(), Error> {
    let Some(r) = lock().take() else {
        return Ok(());
    };
    finish(r)
}

/// Stops a session taken out of [`RUNNING`] and waits for its file.
fn finish(r: Running) -> Result<(), Error> {
    if r.pid != std::process::id() {
        // A forked child: the collector thread exists only in the parent.
        std::mem::forget(r);
        return Ok(());
    }
    pulse_alloc::untracked(|| {
        signals::finishing();
        r.control.stop.store(true, Ordering::Release);
        r.collector.thread().unpark();
        // Bounded: a collector whose writes never return (a pipe nobody
        // reads) or that waits on a lock is given up on once it has made no
        // progress for `STALL_NS` (or after `MAX_FINISH_NS` in all); the
        // file keeps its whole chunks.
        if !signals::wait_for_collector(signals::MAX_FINISH_NS) {
            r.control.abandoned.store(true, Ordering::Release);
            pulse_alloc::stop_recording();
            COLLECTOR.clear();
            crate::counters::release_kept();
            return Err(Error::Io {
                path: r.path,
                source: io::Error::other(format!(
                    "the session's writer made no progress for {} s (or took over {} s); \
                     the file ends at its last whole chunk",
                    pulse_alloc::STALL_NS / 1_000_000_000,
                    signals::MAX_FINISH_NS / 1_000_000_000
                )),
            });
        }
        let result = r.collector.join();
        COLLECTOR.clear();
        crate::counters::release_kept();
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(Error::Io { path: r.path, source }),
            Err(_) => Err(Error::Io {
                path: r.path,
                source: io::Error::other("the collector thread panicked"),
            }),
        }
    })
}

extern "C" fn finish_at_exit() {
    // Nothing may unwind out of an atexit handler.
    let _ = std::panic::catch_unwind(|| {
        if let Err(e) = finish_running() {
            say_once(&e);
        }
    });
}

/// In a forked child, recording stops: the child has no collector thread,
/// and the session file belongs to the parent. The child records nothing,
/// and starting a session there fails with [`Error::InForkedChild`].
extern "C" fn child_after_fork() {
    pulse_alloc::stop_recording();
    // No collector to wait for: a signal takes its course at once.
    signals::forked();
}

/// The collector's thread handle, for waking it from the allocator's full-ring path.
struct CollectorThread(Mutex<Option<std::thread::Thread>>);

static COLLECTOR: CollectorThread = CollectorThread(Mutex::new(None));

impl CollectorThread {
    fn with_thread(&self, t: std::thread::Thread) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
    }

    fn clear(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Wakes the collector for an early round; false if no session runs.
pub(crate) fn wake_for_stats() -> bool {
    match COLLECTOR.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        Some(t) => {
            t.unpark();
            true
        }
        None => false,
    }
}

fn wake_collector() {
    // `try_lock`: a thread that finds the handle being replaced just retries
    // on its next append. Unparking neither allocates nor blocks.
    if let Ok(t) = COLLECTOR.0.try_lock() {
        if let Some(t) = t.as_ref() {
            t.unpark();
        }
    }
}

/// pulse's own source directories (the allocator's and the runtime's), one
/// a line, as they were when pulse was built.
fn source_dirs() -> String {
    [pulse_alloc::SOURCE_DIR, env!("CARGO_MANIFEST_DIR")].join("\n")
}
