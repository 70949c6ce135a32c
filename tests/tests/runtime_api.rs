//! The instrumentation API end to end: typed operations, nested scopes,
//! `profile!` with `?` and panics, `#[profile_fn]` on sync and async
//! functions, `profile_async!` (busy versus wall time), pause/unpause and
//! `PausableTimer`, read back from the session.

use std::time::{Duration, Instant};

use pulse_examples::{block_on, Delay};

use pulse_tests::{check, temp_session};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

#[derive(pulse::Operation)]
#[allow(dead_code)]
enum Op {
    #[category(name = "Feed", description = "Market data in")]
    Parse,
    #[category(name = "Feed")]
    Validate(u32),
    #[category(name = "Orders", description = "Order handling")]
    #[priority(10)]
    Submit {
        venue: &'static str,
    },
    Fetch,
    Download,
}

/// The waits and pauses that must be left out of busy time: long enough
/// that no preemption of the few milliseconds of work around them, on a
/// loaded machine, could make up for them (the checks allow half of it).
const WAIT: Duration = Duration::from_millis(300);
const WAIT_MS: f64 = 300.0;

fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

fn parse_all(input: &str) -> Result<u64, std::num::ParseIntError> {
    let n = pulse::profile!(Op::Parse, {
        input.split(',').map(|x| x.parse::<u64>()).sum::<Result<u64, _>>()?
    });
    Ok(n)
}

#[pulse::profile_fn]
fn outer() {
    spin(Duration::from_millis(2));
    inner();
}

#[pulse::profile_fn(name = "inner work")]
fn inner() {
    spin(Duration::from_millis(3));
}

#[pulse::profile_fn]
async fn async_fn() -> u32 {
    Delay::new(WAIT).await;
    7
}

fn main() {
    let path = temp_session("runtime_api");
    let session = pulse::Session::builder().output(&path).start().expect("start");

    check(parse_all("1,2,3") == Ok(6), "parse ok");
    check(parse_all("1,x").is_err(), "parse error returns early");
    pulse::profile!(Op::Validate(3), { spin(Duration::from_millis(1)) });
    pulse::profile!(Op::Submit { venue: "XNYS" }, { spin(Duration::from_millis(1)) });
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let caught =
        std::panic::catch_unwind(|| pulse::profile!(Op::Validate(4), { panic!("inside a scope") }));
    std::panic::set_hook(hook);
    check(caught.is_err(), "the panic propagated");
    outer();
    let v = block_on(async_fn());
    check(v == 7, "async fn value");
    let busy_wall = block_on(pulse::profile_async!(Op::Fetch, async {
        spin(Duration::from_millis(2));
        Delay::new(WAIT).await;
        spin(Duration::from_millis(2));
        5
    }));
    check(busy_wall == 5, "profile_async value");
    {
        pulse::scope!("paused parent");
        spin(Duration::from_millis(2));
        pulse::pause!();
        spin(WAIT);
        {
            pulse::scope!("never recorded");
        }
        pulse::unpause!();
        spin(Duration::from_millis(2));
    }
    {
        pulse::scope!("counted", counters);
        spin(Duration::from_millis(3));
    }
    let mut t = pulse::PausableTimer::start(&Op::Download);
    spin(Duration::from_millis(2));
    t.pause();
    spin(WAIT);
    t.resume();
    spin(Duration::from_millis(2));
    let active = t.finish();
    check(active >= Duration::from_millis(4) && active < WAIT / 2, format!("active {active:?}"));

    let path = session.finish().expect("finish");
    let p = pulse_analysis::Profile::load(&path).expect("load");
    let find = |name: &str| {
        let (id, info) = p
            .scopes
            .iter()
            .find(|(_, s)| s.name == name)
            .unwrap_or_else(|| panic!("no scope {name}"));
        (info.clone(), p.scope_times.get(id).cloned().unwrap_or_default())
    };
    let ms = |ns: u64| ns as f64 / 1e6;

    let (parse, t) = find("Parse");
    check(parse.category == "Feed" && parse.description == "Market data in", format!("{parse:?}"));
    check(t.count == 2, format!("Parse entered twice, the `?` exit closed it: {t:?}"));
    let (validate, t) = find("Validate");
    check(validate.description == "Market data in", "a category's description is reused");
    check(t.count == 2, format!("the panic closed Validate: {t:?}"));
    let (submit, _) = find("Submit");
    check(submit.priority == 10 && submit.category == "Orders", format!("{submit:?}"));

    let (_, o) = find("runtime_api::outer");
    let (_, i) = find("inner work");
    check(o.count == 1 && i.count == 1, "profile_fn entries");
    check(
        ms(o.total_ns) >= 4.5 && ms(o.self_ns) >= 1.5 && ms(o.self_ns) < ms(o.total_ns),
        format!("outer {o:?}"),
    );
    let tree = &p.call_tree;
    let outer_node =
        tree.roots().iter().find(|&&n| p.scope_name(tree.nodes[n].scope) == "runtime_api::outer");
    let outer_node = outer_node.copied().expect("outer is a root");
    check(
        tree.nodes[outer_node]
            .children
            .iter()
            .any(|&c| p.scope_name(tree.nodes[c].scope) == "inner work"),
        "inner is under outer in the call tree",
    );

    let (_, f) = find("Fetch");
    check(f.runs == 1, format!("one async run: {f:?}"));
    check(
        ms(f.total_ns) >= 3.5 && ms(f.total_ns) < WAIT_MS / 2.0,
        format!("busy time excludes the wait: {f:?}"),
    );
    check(ms(f.wall_ns) >= WAIT_MS, format!("wall time includes the wait: {f:?}"));
    let (_, a) = find("runtime_api::async_fn");
    check(
        a.runs == 1 && ms(a.wall_ns) >= WAIT_MS && ms(a.total_ns) < WAIT_MS / 2.0,
        format!("async fn: {a:?}"),
    );

    let (_, pp) = find("paused parent");
    check(
        ms(pp.total_ns) >= 3.5 && ms(pp.total_ns) < WAIT_MS / 2.0,
        format!("the pause is excluded: {pp:?}"),
    );
    check(
        !p.scopes.values().any(|s| s.name == "never recorded"),
        "a scope entered while paused is not recorded",
    );
    let (_, d) = find("Download");
    check(d.count == 2 && ms(d.total_ns) < WAIT_MS / 2.0, format!("two active segments: {d:?}"));
    check(
        p.anomalies.unmatched_exits == 0 && p.anomalies.open_at_end == 0,
        format!("{:?}", p.anomalies),
    );

    // Counters: the hardware group where there is a PMU, else the software
    // fallback, with the reason recorded; read at both ends of `counted`.
    let counters = &p.meta.counters;
    let hw = counters.iter().any(|c| c.name == "cycles" && c.available);
    let sw = counters.iter().any(|c| c.name == "task-clock" && c.available);
    check(hw || sw, format!("no counters: {counters:?}"));
    if !hw {
        let why = counters
            .iter()
            .find(|c| c.name == "cycles")
            .map(|c| c.reason.clone())
            .unwrap_or_default();
        check(why.contains("perf_event_open"), format!("the fallback's reason is recorded: {why}"));
    }
    let (_, c) = find("counted");
    check(c.counted == 1 && c.counters.len() == if hw { 5 } else { 4 }, format!("counted: {c:?}"));
    if !hw {
        // task-clock (CPU nanoseconds) counted part of the 3 ms spin at least;
        // on a loaded machine the thread may not have run for all of it.
        check(c.counters[0] >= 100_000, format!("task-clock {:?}", c.counters));
    }
    let report = pulse_analysis::report(&p, &Default::default());
    check(
        report.counters.rows.iter().any(|r| r.name == "counted"),
        format!("{:?}", report.counters),
    );

    // The in-process statistics are the file's numbers, exactly.
    let live = pulse::stats();
    check(
        live.len() == p.scope_times.len(),
        format!("{} ops in process, {} in the file", live.len(), p.scope_times.len()),
    );
    for op in &live {
        let (id, _) = p
            .scopes
            .iter()
            .find(|(_, s)| s.name == op.name && s.category == op.category)
            .expect("op in file");
        check(
            p.scope_times[id] == op.time,
            format!("{}: in process {:?}, file {:?}", op.name, op.time, p.scope_times[id]),
        );
    }
    let text = pulse::ReportBuilder::new()
        .group_by_category(true)
        .include_percentiles(true)
        .build()
        .to_string();
    check(text.contains("Feed — Market data in") && text.contains("Validate"), text);
    println!("runtime_api: ok");
}
