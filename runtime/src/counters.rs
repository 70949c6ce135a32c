//! Hardware and software counters, through Linux's `perf_event_open`.
//!
//! At the first scope that reads counters, pulse tries to open the hardware
//! group (cycles, instructions, cache references and misses, branch misses)
//! on that scope's thread. Where the processor or the hypervisor exposes no
//! performance monitoring unit, it falls back to software counters (task
//! clock, page faults, context switches, CPU migrations), and records in the
//! session's trailer which counters were opened and why the others were not.
//!
//! Not at the session's start: the kernel's first task counter in a
//! process (the first after its last closed, a second earlier) waits for an
//! RCU grace period, 12-20 ms here, and a program whose scopes read no
//! counter (most profiled programs) would pay that on every run.
//!
//! Counters are read only where asked — at the boundaries of scopes made
//! with `scope!("name", counters)`, and by the collector, once a round, for
//! every thread that has opened its group — so ordinary scopes pay nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use pulse_format::CounterInfo;

/// At most this many counters are read together (they travel in one event).
pub(crate) const MAX: usize = 5;

/// Which set of counters a session reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Set {
    Hardware,
    Software,
    None,
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use perf_event::events::{Event, Hardware, Software};
    use perf_event::{Builder, Counter, Group};

    use pulse_format::{HARDWARE_COUNTERS as HW, SOFTWARE_COUNTERS as SW};

    /// The sets, named as the session's readers name them.
    pub(crate) const HARDWARE: [(&str, Hardware); MAX] = [
        (HW[0], Hardware::CPU_CYCLES),
        (HW[1], Hardware::INSTRUCTIONS),
        (HW[2], Hardware::CACHE_REFERENCES),
        (HW[3], Hardware::CACHE_MISSES),
        (HW[4], Hardware::BRANCH_MISSES),
    ];
    pub(crate) const SOFTWARE: [(&str, Software); 4] = [
        (SW[0], Software::TASK_CLOCK),
        (SW[1], Software::PAGE_FAULTS),
        (SW[2], Software::CONTEXT_SWITCHES),
        (SW[3], Software::CPU_MIGRATIONS),
    ];

    /// One thread's open group.
    pub(crate) struct ThreadGroup {
        group: Group,
        counters: Vec<Counter>,
    }

    impl ThreadGroup {
        /// Opens the group `set` on the calling thread.
        pub(crate) fn open(set: Set) -> std::io::Result<ThreadGroup> {
            let events: Vec<Event> = match set {
                Set::Hardware => HARDWARE.iter().map(|(_, e)| (*e).into()).collect(),
                Set::Software => SOFTWARE.iter().map(|(_, e)| (*e).into()).collect(),
                Set::None => return Err(std::io::Error::other("no counters")),
            };
            let mut group = Group::new()?;
            close_on_exec(&group);
            let mut counters = Vec::with_capacity(events.len());
            for e in events {
                let counter = Builder::new().group(&mut group).kind(e).build()?;
                close_on_exec(&counter);
                counters.push(counter);
            }
            group.enable()?;
            Ok(ThreadGroup { group, counters })
        }

        /// The group stopped, kept open: while a task's counter is open,
        /// the kernel keeps its scheduler's hooks for them on, and turning
        /// them on again (when the last one closes, they go a second
        /// later) waits for an RCU grace period, 12-20 ms, in whichever
        /// thread opens the next. `None` if it cannot be stopped.
        pub(crate) fn idle(mut self) -> Option<ThreadGroup> {
            self.group.disable().ok()?;
            Some(self)
        }

        /// The current values, in the set's order.
        pub(crate) fn read(&mut self) -> std::io::Result<[u64; MAX]> {
            let counts = self.group.read()?;
            let mut out = [0u64; MAX];
            for (o, c) in out.iter_mut().zip(&self.counters) {
                *o = counts.get(c).copied().unwrap_or(0);
            }
            Ok(out)
        }
    }

    /// Marks `fd` close-on-exec: `perf-event` opens its descriptors
    /// without the flag, and a program's children must not inherit pulse's
    /// counters.
    fn close_on_exec(fd: &impl std::os::fd::AsRawFd) {
        // SAFETY: `fcntl` on a descriptor the caller owns and keeps open;
        // F_SETFD touches only that descriptor's flags.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }

    /// The calling thread's user-space instructions, counted around a
    /// block of code: for a budget's instruction bound.
    pub(crate) struct Instructions(Counter);

    impl Instructions {
        /// Opens the counter on the calling thread; an error where the
        /// processor exposes no instruction counter.
        pub(crate) fn open() -> std::io::Result<Instructions> {
            let counter = Builder::new().kind(Hardware::INSTRUCTIONS).build()?;
            close_on_exec(&counter);
            Ok(Instructions(counter))
        }

        /// Runs `f` and counts its instructions.
        pub(crate) fn count<R>(&mut self, f: impl FnOnce() -> R) -> std::io::Result<(R, u64)> {
            self.0.reset()?;
            self.0.enable()?;
            let r = f();
            self.0.disable()?;
            let c = self.0.read_count_and_time()?;
            if c.time_running == 0 {
                return Err(std::io::Error::other("the counter was never scheduled"));
            }
            // Time-shared with other counters: scaled, as `perf stat` does.
            let n = if c.time_running < c.time_enabled {
                (c.count as f64 * c.time_enabled as f64 / c.time_running as f64) as u64
            } else {
                c.count
            };
            Ok((r, n))
        }
    }

    /// Tries the hardware group, then the software one, on the calling
    /// thread; returns the set to use and what to record about each counter.
    /// With `hardware` false, the hardware group is not tried (software
    /// counters were asked for) and the metadata says so.
    pub(crate) fn probe(hardware: bool) -> (Set, Vec<CounterInfo>, Option<ThreadGroup>) {
        let mut infos = Vec::new();
        let tried = if hardware {
            ThreadGroup::open(Set::Hardware).map_err(|e| {
                format!("perf_event_open: {e}: no hardware counters exposed here; software counters used instead")
            })
        } else {
            Err(String::from(
                "not opened: software counters were asked for (PULSE_COUNTERS=software)",
            ))
        };
        match tried {
            Ok(group) => {
                for (name, _) in HARDWARE {
                    infos.push(CounterInfo {
                        name: name.into(),
                        available: true,
                        reason: "hardware counter".into(),
                    });
                }
                return (Set::Hardware, infos, group.idle());
            }
            Err(reason) => {
                for (name, _) in HARDWARE {
                    infos.push(CounterInfo {
                        name: name.into(),
                        available: false,
                        reason: reason.clone(),
                    });
                }
            }
        }
        match ThreadGroup::open(Set::Software) {
            Ok(group) => {
                for (name, _) in SOFTWARE {
                    infos.push(CounterInfo {
                        name: name.into(),
                        available: true,
                        reason: "software counter".into(),
                    });
                }
                (Set::Software, infos, group.idle())
            }
            Err(e) => {
                for (name, _) in SOFTWARE {
                    infos.push(CounterInfo {
                        name: name.into(),
                        available: false,
                        reason: format!("perf_event_open: {e}"),
                    });
                }
                (Set::None, infos, None)
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    pub(crate) struct ThreadGroup;

    impl ThreadGroup {
        pub(crate) fn open(_: Set) -> std::io::Result<ThreadGroup> {
            Err(std::io::Error::other("perf_event_open is Linux-only"))
        }
        pub(crate) fn read(&mut self) -> std::io::Result<[u64; MAX]> {
            Err(std::io::Error::other("perf_event_open is Linux-only"))
        }
    }

    pub(crate) fn probe(_hardware: bool) -> (Set, Vec<CounterInfo>, Option<ThreadGroup>) {
        (Set::None, Vec::new(), None)
    }

    pub(crate) struct Instructions;

    impl Instructions {
        pub(crate) fn open() -> std::io::Result<Instructions> {
            Err(std::io::Error::other("perf_event_open is Linux-only"))
        }
        pub(crate) fn count<R>(&mut self, _: impl FnOnce() -> R) -> std::io::Result<(R, u64)> {
            Err(std::io::Error::other("perf_event_open is Linux-only"))
        }
    }
}

pub(crate) use imp::{probe, Instructions, ThreadGroup};

/// One thread's group, and why reading it stopped, if it did.
pub(crate) struct Opened {
    group: ThreadGroup,
    failed: Option<String>,
}

/// The session's counter set, every thread group opened in it (for the
/// collector's periodic samples) with its owner's pulse thread id, and the
/// threads whose counters could not be read.
struct State {
    /// The set asked for and not yet tried: `Some(true)` the hardware
    /// group, else the software one; `Some(false)` the software one. Tried
    /// by the first thread to open a group.
    asked: Option<bool>,
    set: Set,
    /// What the try found, for the session's trailer.
    found: Vec<CounterInfo>,
    groups: Vec<(u64, Arc<Mutex<Opened>>)>,
    failures: Vec<(u64, String)>,
    /// The group the session's first try of the set opened, stopped and
    /// kept open so that the threads' groups open without the kernel's
    /// wait (see [`ThreadGroup::idle`]).
    kept: Option<ThreadGroup>,
    /// Moved by each session's [`configure`]: a thread's group of an
    /// earlier session is opened again (or not) for this one's set.
    session: u64,
}

static STATE: Mutex<State> = Mutex::new(State {
    asked: None,
    set: Set::None,
    found: Vec::new(),
    groups: Vec::new(),
    failures: Vec::new(),
    kept: None,
    session: 0,
});

/// How long the collector and the session's end wait for a counters lock
/// that a program's thread holds: briefly, since that thread may be
/// stopped inside a counter read (in a long handler of a signal of its
/// own, say) for as long as it likes.
const PATIENCE: Duration = Duration::from_millis(100);

/// `m` locked if that takes no longer than `patience` (one try where it
/// is zero); `None` otherwise. A poisoned lock is taken as it is: its data
/// is never left half-changed.
fn lock_within<T>(m: &Mutex<T>, patience: Duration) -> Option<MutexGuard<'_, T>> {
    let deadline = Instant::now() + patience;
    loop {
        match m.try_lock() {
            Ok(g) => return Some(g),
            Err(TryLockError::Poisoned(e)) => return Some(e.into_inner()),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(TryLockError::WouldBlock) => return None,
        }
    }
}

/// Closes the probe's group, at the session's end (left open, until the
/// next session, where a thread holds the counters' lock).
pub(crate) fn release_kept() {
    if let Some(mut s) = lock_within(&STATE, PATIENCE) {
        s.kept = None;
    }
}

/// Starts a session's counters: `asked` is `None` for none, else whether
/// to try the hardware group before the software one, at the first scope
/// that reads them. Forgets the groups of an earlier session.
pub(crate) fn configure(asked: Option<bool>) {
    let mut s = STATE.lock().unwrap_or_else(|e| e.into_inner());
    s.asked = asked;
    s.set = Set::None;
    s.found.clear();
    s.groups.clear();
    s.failures.clear();
    s.kept = None;
    s.session += 1;
    SESSION.store(s.session, Ordering::Release);
}

/// What the session's counters turned out to be, for its trailer: empty
/// where no scope read them (or none were asked for), or where a thread
/// holds the counters' lock (a reader then names the readings by their
/// number).
pub(crate) fn found() -> Vec<CounterInfo> {
    lock_within(&STATE, PATIENCE).map(|s| s.found.clone()).unwrap_or_default()
}

/// A thread's group in the session that opened it (`group` `None`: opening
/// failed, the reason in the session's metadata). Dropped when its thread
/// exits or opens its group of a later session, it takes the group out of
/// the session's list, which closes its descriptors: a program that runs
/// counted scopes on many short-lived threads holds one group for each
/// thread alive, not one for each thread it ever had.
struct ThreadSlot {
    session: u64,
    group: Option<Arc<Mutex<Opened>>>,
    /// How many values the session's set has.
    width: usize,
}

/// The session's number ([`State::session`]), readable without its lock:
/// a counted scope whose thread opened its group in this session reads it
/// without taking the lock every thread and the collector share.
static SESSION: AtomicU64 = AtomicU64::new(0);

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        let Some(group) = self.group.take() else { return };
        // The group was allocated as pulse's own (untracked): so is its
        // release. `STATE`'s lock, which the collector takes each round: a
        // terminating signal waits for its release.
        pulse_alloc::untracked(|| {
            let _held = pulse_alloc::Holding::new();
            let mut s = STATE.lock().unwrap_or_else(|e| e.into_inner());
            s.groups.retain(|(_, g)| !Arc::ptr_eq(g, &group));
            drop(s);
            drop(group);
        });
    }
}

thread_local! {
    /// This thread's group: opened on its first counter scope of each
    /// session.
    static GROUP: std::cell::RefCell<Option<ThreadSlot>> = const { std::cell::RefCell::new(None) };
}

/// Reads one thread's group. A read that fails (the counter's file
/// descriptor closed or replaced under pulse, a kernel that withdraws the
/// event) is never fatal: the group is marked failed and never read again,
/// and the failure goes into the session's trailer as a note. Scopes go on
/// being timed; they just carry no more counter readings.
fn read_group(tid: u64, group: &Mutex<Opened>) -> Option<[u64; MAX]> {
    read_locked(tid, group.lock().unwrap_or_else(|e| e.into_inner()))
}

/// [`read_group`] with the group's lock held.
fn read_locked(tid: u64, mut g: MutexGuard<'_, Opened>) -> Option<[u64; MAX]> {
    if g.failed.is_some() {
        return None;
    }
    match g.group.read() {
        Ok(v) => Some(v),
        Err(e) => {
            let reason = e.to_string();
            g.failed = Some(reason.clone());
            drop(g);
            STATE.lock().unwrap_or_else(|e| e.into_inner()).failures.push((tid, reason));
            None
        }
    }
}

/// The calling thread's group, opened on first use; `None` when the
/// session has no counters or they cannot be opened here.
fn thread_group() -> Option<(Arc<Mutex<Opened>>, usize)> {
    GROUP
        .try_with(|g| {
            let mut g = g.borrow_mut();
            let current = SESSION.load(Ordering::Acquire);
            if let Some(slot) = g.as_ref().filter(|slot| slot.session == current) {
                return slot.group.clone().map(|group| (group, slot.width));
            }
            let (set, session) = {
                let mut s = STATE.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(hardware) = s.asked.take() {
                    // The session's first group: try the set asked for,
                    // and keep the try's group open, stopped, so that the
                    // threads' groups open without the kernel's wait.
                    // Other threads opening theirs wait for it here.
                    let (set, found, kept) = probe(hardware);
                    (s.set, s.found, s.kept) = (set, found, kept);
                }
                (s.set, s.session)
            };
            // The earlier session's group closes before this one's opens.
            *g = None;
            let group = ThreadGroup::open(set).ok().map(|group| {
                let group = Arc::new(Mutex::new(Opened { group, failed: None }));
                let tid = pulse_alloc::current_thread_id();
                STATE
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .groups
                    .push((tid, Arc::clone(&group)));
                group
            });
            let width = width_of(set);
            *g = Some(ThreadSlot { session, group: group.clone(), width });
            group.map(|group| (group, width))
        })
        .ok()
        .flatten()
}

/// Opens the calling thread's group if it has none yet: a counted scope
/// does so before its clock is read, so that its first entry on a thread
/// does not time the opening.
pub(crate) fn prepare() {
    // A scope in a signal handler that interrupted this thread inside
    // pulse (a counters read, whose group lock it holds): no counters.
    if pulse_alloc::in_pulse() {
        return;
    }
    pulse_alloc::untracked(|| {
        // `STATE`'s lock, which the collector takes each round: a
        // terminating signal waits for its release.
        let _held = pulse_alloc::Holding::new();
        let _ = thread_group();
    });
}

/// Reads the calling thread's counters, opening its group on first use.
/// `None` when the session has no counters or they cannot be read.
pub(crate) fn read_current() -> Option<([u64; MAX], usize)> {
    // A scope in a signal handler that interrupted this thread inside
    // pulse (this very read, holding its group's lock and its slot): the
    // scope is timed without counters rather than wait on itself.
    if pulse_alloc::in_pulse() {
        return None;
    }
    pulse_alloc::untracked(|| {
        // The group's lock (and `STATE`'s, on a thread's first read in a
        // session), which the collector takes each round: a terminating
        // signal waits for their release.
        let _held = pulse_alloc::Holding::new();
        let (group, width) = thread_group()?;
        let values = read_group(pulse_alloc::current_thread_id(), &group)?;
        Some((values, width))
    })
}

/// How many values `set` has.
fn width_of(set: Set) -> usize {
    match set {
        Set::Hardware => MAX,
        Set::Software => 4,
        Set::None => 0,
    }
}

/// Reads every opened thread group: `(thread id, values, width)`. For the
/// collector's periodic samples; a group that fails to read is skipped,
/// and so is one whose lock its thread holds (it is reading the group, or
/// stopped while it did), or every group while a thread holds the
/// session's lock (opening its group): the collector never waits on a
/// program's thread for a sample.
pub(crate) fn sample_all() -> Vec<(u64, [u64; MAX], usize)> {
    let Some(s) = lock_within(&STATE, Duration::ZERO) else { return Vec::new() };
    let (groups, n) = (s.groups.clone(), width_of(s.set));
    drop(s);
    groups
        .into_iter()
        .filter_map(|(tid, g)| Some((tid, read_locked(tid, lock_within(&g, Duration::ZERO)?)?, n)))
        .collect()
}

/// The threads whose counters stopped being readable in this session, as
/// one line for the trailer's `counters` note, with their number; `None`
/// when every read succeeded.
pub(crate) fn failures() -> Option<(String, u64)> {
    let s = lock_within(&STATE, PATIENCE)?;
    let (first_tid, first) = s.failures.first()?;
    let n = s.failures.len();
    let more = if n > 1 { format!(" (and {} more threads)", n - 1) } else { String::new() };
    Some((
        format!(
            "unavailable after a read failed on thread {first_tid}{more}: {first}; \
             readings stop there, timing is unaffected"
        ),
        n as u64,
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Descriptors of this process's perf events.
    fn perf_descriptors() -> Vec<i32> {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                let target = std::fs::read_link(e.path()).ok()?;
                target.to_string_lossy().contains("perf_event").then(|| e.file_name())
            })
            .filter_map(|n| n.to_str()?.parse().ok())
            .collect()
    }

    /// A session opens no counter at its start. A counted scope opens its
    /// thread's group before its clock is read (`prepare`); the first one
    /// tries the set asked for, and keeps that try's group open, stopped,
    /// for the session: opening a thread's group then never waits on the
    /// kernel turning its scheduler hooks for counters back on. A thread's
    /// group closes as the thread exits.
    #[test]
    fn a_threads_group_is_opened_before_its_first_read_and_the_probes_is_kept() {
        // The software group: what every machine here can open (the
        // end-to-end counters tests rely on it too).
        configure(Some(false));
        assert!(found().is_empty(), "nothing tried yet");
        assert!(perf_descriptors().is_empty(), "nothing opened at the start");
        std::thread::spawn(|| {
            let tid = pulse_alloc::current_thread_id();
            let opened = || STATE.lock().unwrap().groups.iter().any(|(t, _)| *t == tid);
            assert!(!opened());
            prepare();
            assert!(opened(), "prepare opened the thread's group");
            let (values, n) = read_current().expect("a reading");
            assert_eq!(n, 4);
            assert!(values[0] > 0, "task-clock counted: {values:?}");
            // No child of the program inherits them: every perf descriptor
            // of this process is close-on-exec.
            let perf = perf_descriptors();
            assert!(perf.len() >= 10, "the probe's group and the thread's: {perf:?}");
            for fd in perf {
                // SAFETY: F_GETFD reads a descriptor's flags and nothing else.
                let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
                assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC, "fd {fd}");
            }
        })
        .join()
        .unwrap();
        let found = found();
        let opened: Vec<&str> =
            found.iter().filter(|c| c.available).map(|c| c.name.as_str()).collect();
        assert_eq!(opened, pulse_format::SOFTWARE_COUNTERS);
        assert!(found
            .iter()
            .any(|c| !c.available && c.reason.contains("software counters were asked")));
        assert!(STATE.lock().unwrap().kept.is_some());
        assert!(STATE.lock().unwrap().groups.is_empty(), "the thread's group left with it");
        assert_eq!(perf_descriptors().len(), 5, "the probe's group only");
        release_kept();
        assert!(STATE.lock().unwrap().kept.is_none());
        assert!(perf_descriptors().is_empty());
        configure(None);
        held_locks_do_not_stop_the_collector_or_the_end();
    }

    /// A thread stopped while it holds a counters lock (inside a read, in a
    /// long handler of a signal of its own) stops neither the collector's
    /// samples nor the session's end: the samples skip what is held, the
    /// end waits `PATIENCE` at most. Run after the test above, in the same
    /// test: both use the process's one `STATE`.
    fn held_locks_do_not_stop_the_collector_or_the_end() {
        configure(Some(false));
        let (opened_tx, opened_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            prepare();
            let (group, _) = thread_group().expect("the software group");
            // Stopped inside a read: the group's lock held until told.
            let _held = group.lock().unwrap();
            opened_tx.send(()).unwrap();
            done_rx.recv().unwrap();
        });
        opened_rx.recv().unwrap();
        // Each check on a thread of its own, watched: one that waited on
        // the held lock would never return.
        let within = |check: fn()| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                check();
                let _ = tx.send(());
            });
            rx.recv_timeout(Duration::from_secs(10)).expect("returned without the held lock");
        };
        within(|| assert!(sample_all().is_empty(), "the held group is skipped"));
        // The session's lock held too (a thread opening its group, stopped).
        let s = STATE.lock().unwrap();
        within(|| {
            assert!(sample_all().is_empty());
            assert!(found().is_empty(), "not had: the readings are named by their number");
            assert!(failures().is_none());
            release_kept();
        });
        drop(s);
        assert_eq!(found().len(), 9, "had once released: the five tried, the four opened");
        done_tx.send(()).unwrap();
        thread.join().unwrap();
        release_kept();
        configure(None);
    }
}
