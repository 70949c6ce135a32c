//! The metrics endpoint against the program's own figures: `metrics_service`
//! runs its operations, prints `pulse::stats()` and `pulse::heap_stats()`,
//! and stays idle while its `/metrics` is scraped. Every line of the scrape
//! must be valid text exposition format (0.0.4), and its counts, sums,
//! allocations, buckets and heap figures those the program printed.
//!
//! Three ways to ask for the metrics: `PULSE_METRICS` alone (a session with
//! no file, started before `main`), `Session::builder().metrics(…)
//! .write_file(false)`, and `PULSE_METRICS` beside `PULSE_OUT` (the file is
//! written as well).

mod metrics_common;

use std::path::PathBuf;
use std::time::Duration;

use metrics_common::*;

/// A fresh empty directory for one run.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pulse-metrics-{}-{name}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// Scrapes `svc` and checks the scrape against `report`; returns its text.
fn check_scrape(svc: &Service, report: &Report) -> String {
    let resp = get(svc.addr, "/metrics", Duration::from_secs(2)).expect("scrape");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    assert_eq!(resp.headers["content-length"], resp.body.len().to_string());
    let text = String::from_utf8(resp.body).expect("UTF-8");
    let x = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));

    let types = [
        (DURATION, "histogram"),
        (ALLOCATIONS, "counter"),
        (ALLOCATED_BYTES, "counter"),
        (LIVE_BYTES, "gauge"),
        (LIVE_BLOCKS, "gauge"),
        (PEAK_BYTES, "gauge"),
        (OVERHEAD, "counter"),
    ];
    for (name, ty) in types {
        assert_eq!(x.types.get(name).map(String::as_str), Some(ty), "{name}\n{text}");
        assert!(x.help.get(name).is_some_and(|h| !h.is_empty()), "HELP {name}");
    }

    assert!(!report.stats.is_empty());
    for stat in &report.stats {
        let name: &str = stat.name.trim_matches('"');
        let op = [("operation", name)];
        // The category label, unescaped by the parser, is the program's own.
        let sample = x
            .samples
            .iter()
            .find(|s| s.name == format!("{DURATION}_count") && s.labels["operation"] == name)
            .unwrap_or_else(|| panic!("no series for {name}\n{text}"));
        assert_eq!(format!("{:?}", sample.labels["category"]), stat.category, "{name}");

        let count = x.value(&format!("{DURATION}_count"), &op).unwrap();
        assert_eq!(count, stat.count as f64, "{name}: count");
        let sum = x.value(&format!("{DURATION}_sum"), &op).unwrap();
        let diff = (sum * 1e9 - stat.total_ns as f64).abs();
        assert!(
            diff <= 2.0 + stat.total_ns as f64 * 1e-9,
            "{name}: sum {sum} s, total {} ns",
            stat.total_ns
        );
        assert_eq!(x.value(ALLOCATIONS, &op), Some(stat.allocs as f64), "{name}: allocations");
        assert_eq!(x.value(ALLOCATED_BYTES, &op), Some(stat.bytes as f64), "{name}: bytes");

        let buckets = x.buckets(&op);
        let bounds: Vec<f64> = buckets.iter().map(|b| b.0).filter(|le| le.is_finite()).collect();
        assert_eq!(bounds, BUCKETS, "{name}: the documented default buckets");
        for (q, want_ns) in [(0.5, stat.p50_ns), (0.99, stat.p99_ns)] {
            let rank = (q * count).ceil();
            let at = buckets.iter().position(|b| b.1 >= rank).unwrap();
            let want = want_ns as f64 / 1e9;
            let lower = if at == 0 { 0.0 } else { buckets[at - 1].0 };
            // The bucket the scrape puts the quantile in is the stats' one.
            let le = buckets[at].0;
            let within = (lower < want && want <= le)
                || (want - le).abs() <= 0.02 * le
                || (want - lower).abs() <= 0.02 * lower;
            assert!(within, "{name}: p{} {want} s outside ({lower}, {le}]", q * 100.0);
        }
    }
    assert_eq!(x.value(LIVE_BYTES, &[]), Some(report.live_bytes as f64), "live bytes");
    assert_eq!(x.value(LIVE_BLOCKS, &[]), Some(report.live_blocks as f64), "live blocks");
    // One thread allocates: the collector's peak is exact, the thread's own.
    assert_eq!(x.value(PEAK_BYTES, &[]), Some(report.peak_bytes as f64), "peak");
    let overhead = x.value(OVERHEAD, &[]).unwrap();
    assert!(overhead > 0.0 && overhead < 60.0, "overhead {overhead} s");
    text
}

/// Other paths and methods get plain answers; the server goes on.
fn check_other_requests(svc: &Service) {
    let t = Duration::from_secs(2);
    assert_eq!(get(svc.addr, "/nothing", t).unwrap().status, 404);
    assert_eq!(get(svc.addr, "/", t).unwrap().status, 200);
    let post = "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    let r = request(svc.addr, post, t).unwrap();
    assert_eq!((r.status, r.headers["allow"].as_str()), (405, "GET, HEAD"));
    let head = request(svc.addr, "HEAD /metrics HTTP/1.1\r\n\r\n", t).unwrap();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert!(head.headers["content-length"].parse::<usize>().unwrap() > 1000);
    assert_eq!(get(svc.addr, "/metrics?x=1", t).unwrap().status, 200);
}

#[test]
fn pulse_metrics_alone_serves_the_stats_with_no_file() {
    let dir = temp_dir("env");
    // A port alone is on loopback.
    let mut svc = Service::start(&["3000", "--go"], &[("PULSE_METRICS", "0")], Some(&dir));
    assert!(svc.addr.ip().is_loopback(), "{}", svc.addr);
    svc.go();
    let report = svc.report();
    let text = check_scrape(&svc, &report);
    check_other_requests(&svc);
    // An excerpt for the record.
    let excerpt: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Render") || !l.contains('{'))
        .filter(|l| !l.contains("le=\"1e-07\"") || l.contains("Render"))
        .take(60)
        .collect();
    println!("{}", excerpt.join("\n"));
    svc.finish();
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "no session file: {left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_builder_serves_metrics_without_a_file() {
    let dir = temp_dir("builder");
    let mut svc = Service::start(&["2000", "--go", "--builder", "127.0.0.1:0"], &[], Some(&dir));
    assert!(svc.addr.ip().is_loopback());
    svc.go();
    let report = svc.report();
    check_scrape(&svc, &report);
    svc.finish();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "no session file");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pulse_metrics_beside_pulse_out_serves_and_writes_the_file() {
    let dir = temp_dir("out");
    let out = dir.join("run.pulse");
    let env = [("PULSE_METRICS", "127.0.0.1:0"), ("PULSE_OUT", out.to_str().unwrap())];
    let mut svc = Service::start(&["2000", "--go"], &env, None);
    svc.go();
    let report = svc.report();
    check_scrape(&svc, &report);
    svc.finish();
    // The file has the same operations, counted the same.
    let profile = pulse_analysis::Profile::load(&out).expect("session file");
    let counts = |v: Vec<u64>| v.into_iter().sum::<u64>();
    assert_eq!(
        counts(profile.scope_times.values().map(|t| t.count).collect()),
        counts(report.stats.iter().map(|s| s.count).collect())
    );
    // The replay's exact peak is the one the scrape gave.
    assert_eq!(profile.memory.peak_bytes as i64, report.peak_bytes);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_less_session_gives_way_to_the_programs_own() {
    // `PULSE_METRICS` alone starts a session before `main`; the program's
    // own session, with a file, replaces it and is served on the same port.
    let dir = temp_dir("gives-way");
    let out = dir.join("own.pulse");
    let env = [("PULSE_METRICS", "127.0.0.1:0")];
    let mut svc = Service::start(&["1000", "--go", "--file", out.to_str().unwrap()], &env, None);
    svc.go();
    let report = svc.report();
    check_scrape(&svc, &report);
    svc.finish();
    let profile = pulse_analysis::Profile::load(&out).expect("the program's session file");
    assert!(profile.trailer.is_some());
    assert!(profile.scope_times.values().any(|t| t.count > 0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn buckets_follow_pulse_metrics_buckets() {
    let env = [("PULSE_METRICS", "127.0.0.1:0"), ("PULSE_METRICS_BUCKETS", "0.001, 0.00001,0.1")];
    let mut svc = Service::start(&["300", "--go"], &env, None);
    svc.go();
    let report = svc.report();
    let resp = get(svc.addr, "/metrics", Duration::from_secs(2)).unwrap();
    let x = parse_exposition(std::str::from_utf8(&resp.body).unwrap()).unwrap();
    let buckets = x.buckets(&[("operation", "Parse")]);
    let les: Vec<f64> = buckets.iter().map(|b| b.0).collect();
    assert_eq!(les, [1e-5, 1e-3, 0.1, f64::INFINITY]);
    assert_eq!(buckets[3].1, report.op("Parse").count as f64);
    svc.finish();
}

#[test]
fn a_metrics_address_in_use_costs_the_metrics_not_the_session_file() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let path =
        std::env::temp_dir().join(format!("pulse-metrics-taken-{}.pulse", std::process::id()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_metrics_service"))
        .args(["10"])
        .env("PULSE_METRICS", &port)
        .env("PULSE_OUT", &path)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot serve metrics on {port}")), "{stderr}");
    assert!(stderr.contains("the session file is written without them"), "{stderr}");
    let p = pulse_analysis::Profile::load(&path).expect("the session file");
    let _ = std::fs::remove_file(&path);
    assert!(p.trailer.is_some() && p.memory.allocs > 0);
    drop(taken);
}

#[test]
fn a_bad_pulse_metrics_is_refused_on_stderr_and_the_program_runs() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_metrics_service"))
        .args(["10"])
        .env("PULSE_METRICS", "example.com:9464")
        .env_remove("PULSE_OUT")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PULSE_METRICS=example.com:9464 is not valid"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("READY"));
}
