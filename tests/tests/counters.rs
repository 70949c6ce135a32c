//! Counters read through the real `perf_event_open`, both ways.
//!
//! Where the processor exposes a PMU, the hardware group is opened and its
//! readings must be the processor's: a loop of twice the iterations retires
//! twice the instructions, at least one per iteration, at a plausible rate
//! per cycle, with misses no more than their references; the report's ratios
//! are those readings'. Where it exposes none, the fallback's reason is in
//! the session. Either way, a child run with `PULSE_COUNTERS=software` opens
//! the software group and says why the hardware one was not opened, and a
//! bad value of that variable is refused in one line.

use std::hint::black_box;
use std::process::Command;

use pulse_analysis::Profile;
use pulse_tests::{check, temp_session};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

/// Iterations of the short loop; the long one runs twice as many.
const N: u64 = 20_000_000;
const HARDWARE: [&str; 5] =
    ["cycles", "instructions", "cache-references", "cache-misses", "branch-misses"];
const SOFTWARE: [&str; 4] = ["task-clock", "page-faults", "context-switches", "cpu-migrations"];

/// A loop whose instruction count is fixed by `n`: a dependent chain the
/// compiler cannot fold (`black_box` on every step).
#[inline(never)]
fn chain(n: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..n {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    x
}

fn record(path: &std::path::Path, builder: pulse::SessionBuilder) {
    let session = builder.output(path).start().expect("start");
    {
        pulse::scope!("short", counters);
        black_box(chain(N));
    }
    {
        pulse::scope!("long", counters);
        black_box(chain(2 * N));
    }
    {
        // Fresh pages, touched: page faults for the software group.
        pulse::scope!("touch", counters);
        let mut v = vec![0u8; 16 << 20];
        for i in (0..v.len()).step_by(4096) {
            v[i] = 1;
        }
        black_box(&v);
    }
    session.finish().expect("finish");
}

/// The summed readings of scope `name`, by counter name.
fn readings(p: &Profile, name: &str) -> Vec<(String, u64)> {
    let (id, _) = p.scopes.iter().find(|(_, s)| s.name == name).expect("scope defined");
    let t = &p.scope_times[id];
    check(t.counted == 1, format!("{name}: read at both ends once, got {}", t.counted));
    let names: Vec<&str> =
        p.meta.counters.iter().filter(|c| c.available).map(|c| c.name.as_str()).collect();
    check(
        names.len() == t.counters.len(),
        format!("{name}: {} readings for counters {names:?}", t.counters.len()),
    );
    names.iter().map(|n| n.to_string()).zip(t.counters.iter().copied()).collect()
}

fn get(r: &[(String, u64)], name: &str) -> u64 {
    r.iter().find(|(n, _)| n == name).map_or_else(|| panic!("no {name} in {r:?}"), |(_, v)| *v)
}

fn software_child() {
    let path = temp_session("counters_software");
    record(&path, pulse::Session::builder());
    let p = Profile::load(&path).expect("load");
    let _ = std::fs::remove_file(&path);
    for c in &p.meta.counters {
        if HARDWARE.contains(&c.name.as_str()) {
            check(!c.available, format!("{} opened though software was asked for", c.name));
            check(
                c.reason.contains("PULSE_COUNTERS=software"),
                format!("{}: the reason says software was asked for: {}", c.name, c.reason),
            );
        }
    }
    let opened: Vec<&str> =
        p.meta.counters.iter().filter(|c| c.available).map(|c| c.name.as_str()).collect();
    check(opened == SOFTWARE, format!("the software group is opened: {opened:?}"));
    let touch = readings(&p, "touch");
    check(get(&touch, "task-clock") > 0, format!("task-clock counted: {touch:?}"));
    check(get(&touch, "page-faults") >= 1, format!("touching 16 MiB faults: {touch:?}"));
    println!("counters (software asked for): ok: touch {touch:?}");
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("software") => return software_child(),
        Some("handler") => return handler_child(),
        _ => {}
    }
    let path = temp_session("counters_auto");
    record(&path, pulse::Session::builder().counters(pulse::Counters::Auto));
    let p = Profile::load(&path).expect("load");
    let _ = std::fs::remove_file(&path);
    let hw = p.meta.counters.iter().any(|c| c.name == "cycles" && c.available);
    if hw {
        let (short, long) = (readings(&p, "short"), readings(&p, "long"));
        let (i1, i2) = (get(&short, "instructions"), get(&long, "instructions"));
        check(i1 >= N, format!("at least one instruction per iteration: {i1} for {N}"));
        let ratio = i2 as f64 / i1 as f64;
        check(
            (1.9..=2.1).contains(&ratio),
            format!("twice the iterations, twice the instructions: {i2} / {i1} = {ratio:.3}"),
        );
        for r in [&short, &long] {
            let (cycles, instr) = (get(r, "cycles"), get(r, "instructions"));
            // No x86 core retires more than ~8 instructions a cycle, nor
            // (on a dependent multiply chain) fewer than one per 50.
            let ipc = instr as f64 / cycles.max(1) as f64;
            check((0.02..=8.0).contains(&ipc), format!("IPC {ipc:.2} from {r:?}"));
            check(
                get(r, "cache-misses") <= get(r, "cache-references"),
                format!("misses within references: {r:?}"),
            );
            check(get(r, "branch-misses") <= instr, format!("branch misses: {r:?}"));
        }
        // The report's ratios are these readings'.
        let report = pulse_analysis::report(&p, &Default::default());
        let row = report.counters.rows.iter().find(|r| r.name == "long").expect("a row for long");
        let ipc = row.ratios.iter().find(|(n, _)| *n == "IPC").map(|(_, v)| *v);
        let want = get(&long, "instructions") as f64 / get(&long, "cycles") as f64;
        check(
            ipc.is_some_and(|v| (v - want).abs() < 1e-6 * want.max(1.0)),
            format!("report IPC {ipc:?}, readings {want}"),
        );
        println!(
            "counters (hardware): ok: {i1} and {i2} instructions ({ratio:.3}×), IPC {want:.2}"
        );
    } else {
        let why = p.meta.counters.iter().find(|c| c.name == "cycles").map(|c| c.reason.clone());
        check(
            why.as_deref().is_some_and(|w| w.contains("perf_event_open")),
            format!("no PMU here, and the reason is recorded: {why:?}"),
        );
        let opened: Vec<&str> =
            p.meta.counters.iter().filter(|c| c.available).map(|c| c.name.as_str()).collect();
        check(opened == SOFTWARE, format!("the fallback is the software group: {opened:?}"));
        println!("counters (no PMU here, software fallback): ok: {why:?}");
    }

    // The software group on request, whatever the hardware.
    let me = std::env::current_exe().expect("current_exe");
    let out = Command::new(&me)
        .arg("software")
        .env("PULSE_COUNTERS", "software")
        .env_remove("PULSE_OUT")
        .output()
        .expect("run the child");
    check(
        out.status.success(),
        format!(
            "software child: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    );
    print!("{}", String::from_utf8_lossy(&out.stdout));

    // A bad value is ignored (with a line on stderr): the session starts
    // with the builder's setting.
    std::env::set_var("PULSE_COUNTERS", "sometimes");
    let path = temp_session("counters_bad");
    let started = pulse::Session::builder().output(&path).counters(pulse::Counters::Off).start();
    std::env::remove_var("PULSE_COUNTERS");
    check(started.is_ok(), format!("a bad PULSE_COUNTERS stops nothing: {started:?}"));
    drop(started);
    let p = Profile::load(&path).expect("load");
    check(
        p.meta.counters.iter().all(|c| !c.available),
        format!("the builder's Off stands: {:?}", p.meta.counters),
    );

    sessions_in_a_row();
    threads_come_and_go();
    scopes_in_a_signal_handler(&me);
}

/// A counted scope in a signal handler that interrupts the same thread's
/// counted scopes (in the middle of reading its counters, now and then)
/// neither waits on the read it interrupted nor panics: the handler's
/// scope goes uncounted when it interrupts pulse's own code. Run in a
/// child, which must end within a minute.
fn scopes_in_a_signal_handler(me: &std::path::Path) {
    let mut child = Command::new(me)
        .arg("handler")
        .env_remove("PULSE_OUT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the child");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if start.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("output");
    check(
        status.is_some_and(|s| s.success()),
        format!(
            "counted scopes in a signal handler: {status:?} after {:?}: {}{}",
            start.elapsed(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    );
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

/// The handler of [`scopes_in_a_signal_handler`]'s signal: a counted scope.
extern "C" fn counted_handler(_: libc::c_int) {
    pulse::scope!("handler", counters);
    black_box(chain(100));
}

fn handler_child() {
    let (path, session) = software_session("counters_handler");
    {
        // The thread's group, opened before any signal comes.
        pulse::scope!("counted", counters);
        black_box(chain(100));
    }
    // SAFETY: a plain handler for SIGUSR1, which nothing else here uses;
    // `pthread_self` has no preconditions.
    let main = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = counted_handler as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()), 0);
        libc::pthread_self()
    };
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: `main` is the main thread, alive until `done`.
                unsafe { libc::pthread_kill(main, libc::SIGUSR1) };
                sent += 1;
                std::thread::sleep(std::time::Duration::from_micros(20));
            }
            sent
        })
    };
    for _ in 0..200_000 {
        pulse::scope!("counted", counters);
        black_box(chain(50));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = sender.join().expect("sender");
    session.finish().expect("finish");
    let p = Profile::load(&path).expect("load");
    let _ = std::fs::remove_file(&path);
    let count = |name: &str| {
        let (id, _) = p.scopes.iter().find(|(_, s)| s.name == name).expect("a scope");
        p.scope_times[id].count
    };
    let (counted, handled) = (count("counted"), count("handler"));
    check(counted == 200_001, format!("every counted scope recorded: {counted}"));
    check(handled > 0, format!("the handler's scope recorded: {handled} of {sent} signals"));
    println!(
        "counters, {sent} signals whose handler enters a counted scope: {handled} recorded \
         beside {counted} counted scopes: ok"
    );
}

/// A session with the software counters, writing to a fresh file `name`.
fn software_session(name: &str) -> (std::path::PathBuf, pulse::Session) {
    let path = temp_session(name);
    let session = pulse::Session::builder()
        .output(&path)
        .counters(pulse::Counters::Software)
        .start()
        .expect("start");
    (path, session)
}

/// Descriptors this process has open.
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Counted scopes on 1 500 short-lived threads, one after another: each
/// thread's group closes as the thread exits, so the process never holds
/// more than a few groups (it held one for every thread it ever had, 6 000
/// descriptors, past the usual limit of 1 024), and every thread's scope is
/// counted.
fn threads_come_and_go() {
    const THREADS: u64 = 1500;
    let (path, session) = software_session("counters_threads");
    let before = open_descriptors();
    let mut most = before;
    for _ in 0..THREADS {
        std::thread::spawn(|| {
            pulse::scope!("brief", counters);
            black_box(chain(1000));
        })
        .join()
        .expect("thread");
        most = most.max(open_descriptors());
    }
    session.finish().expect("finish");
    let p = Profile::load(&path).expect("load");
    let _ = std::fs::remove_file(&path);
    // Three groups at most beyond those at the start: the session's kept
    // first group (opened by the first counted scope), the running
    // thread's, and an exited thread's that the collector still holds for
    // the round it is sampling in (seen on a loaded machine).
    check(
        most <= before + 3 * SOFTWARE.len(),
        format!("descriptors open: {before} at the start, {most} at most over {THREADS} threads"),
    );
    let (id, _) = p.scopes.iter().find(|(_, s)| s.name == "brief").expect("scope defined");
    let t = &p.scope_times[id];
    check(t.counted == THREADS, format!("{} of {THREADS} threads' scopes counted", t.counted));
    println!("counters, {THREADS} threads one after another: at most {most} descriptors open: ok");
}

/// Sessions one after another on this thread, which read its counters in
/// the sessions above: each reads them as its own set says, software,
/// software again, then none.
fn sessions_in_a_row() {
    for (k, counters) in
        [pulse::Counters::Software, pulse::Counters::Software, pulse::Counters::Off]
            .into_iter()
            .enumerate()
    {
        let path = temp_session(&format!("counters_row{k}"));
        let session = pulse::Session::builder().output(&path).counters(counters).start();
        let session = session.expect("start");
        for _ in 0..20 {
            pulse::scope!("again", counters);
            black_box(chain(1000));
        }
        session.finish().expect("finish");
        let p = Profile::load(&path).expect("load");
        let _ = std::fs::remove_file(&path);
        let (id, _) = p.scopes.iter().find(|(_, s)| s.name == "again").expect("scope defined");
        let t = &p.scope_times[id];
        let want = if counters == pulse::Counters::Off { (0, 0) } else { (20, SOFTWARE.len()) };
        check(
            (t.counted, t.counters.len()) == want,
            format!(
                "session {k} ({counters:?}): read {} times, {} counters",
                t.counted,
                t.counters.len()
            ),
        );
    }
    println!("counters, sessions in a row: ok");
}
