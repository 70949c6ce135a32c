//! pulse's metrics read by a real Prometheus (Debian's `/usr/bin/prometheus`):
//! it scrapes `metrics_service` on loopback every second while the program
//! runs its operations, and its query API's answers must be pulse's own
//! figures, as the program printed them from `pulse::stats()`:
//!
//! - `pulse_heap_live_bytes`: the program's live bytes, exactly;
//! - `rate(pulse_operation_allocations_total[1m])`: the allocations the
//!   program counted (the last sample, exactly), at the rate Prometheus's
//!   extrapolation gives from its samples;
//! - `histogram_quantile(0.99, sum by (le, operation) (rate(
//!   pulse_operation_duration_seconds_bucket[1m])))`: in the bucket of the
//!   p99 `pulse::stats()` gives;
//! - every expression of `docs/grafana-dashboard.json`, its variables set:
//!   each must parse and return data.
//!
//! Without `/usr/bin/prometheus` (or `PULSE_PROMETHEUS_BIN`) the test says
//! what is missing and passes,
//! unless `PULSE_PROMETHEUS_TESTS=require` (as CI sets it), when it fails.
//! Prometheus is killed at the end whatever happens (a guard's `Drop`).

mod metrics_common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics_common::*;
use serde_json::Value;

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// The Prometheus binary: `PULSE_PROMETHEUS_BIN`, or Debian's.
fn prometheus_bin() -> PathBuf {
    std::env::var_os("PULSE_PROMETHEUS_BIN")
        .map_or_else(|| PathBuf::from(PROMETHEUS), PathBuf::from)
}
const INSTALL: &str = "apt-get install -y prometheus";

/// Whether Prometheus is here; if not, says so (or fails under
/// `PULSE_PROMETHEUS_TESTS=require`).
fn prometheus_available() -> bool {
    let bin = prometheus_bin();
    if bin.exists() {
        return true;
    }
    let msg = format!("prometheus tests: missing {}; install it with `{INSTALL}`", bin.display());
    if std::env::var("PULSE_PROMETHEUS_TESTS").as_deref() == Ok("require") {
        panic!("{msg} (PULSE_PROMETHEUS_TESTS=require)");
    }
    let _ = writeln!(
        std::io::stderr(),
        "{msg}; skipped (PULSE_PROMETHEUS_TESTS=require makes this a failure)"
    );
    false
}

/// A Prometheus server of this test's own, killed when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second, its storage and
    /// its configuration in a fresh directory, listening on loopback.
    fn start(target: SocketAddr) -> Prometheus {
        let dir = std::env::temp_dir().join(format!(
            "pulse-prometheus-{}-{}",
            std::process::id(),
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
        ));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: pulse\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(prometheus_bin())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let p = Prometheus { child, addr, dir };
        p.wait_for(Duration::from_secs(30), "Prometheus ready", || {
            http(p.addr, "/-/ready").is_ok_and(|(status, _)| status == 200)
        });
        p
    }

    /// Polls `ok` every 100 ms until it holds, or fails after `timeout`.
    fn wait_for(&self, timeout: Duration, what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !ok() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("prometheus.log"));
                panic!(
                    "{what}: not within {timeout:?}; prometheus.log:\n{}",
                    log.unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `expr` evaluated at `time` (Unix seconds): the API's `data`.
    fn query(&self, expr: &str, time: f64) -> Value {
        let path = format!("/api/v1/query?query={}&time={time:.3}", encode(expr));
        let (status, body) = http(self.addr, &path).expect("query Prometheus");
        let v: Value = serde_json::from_slice(&body).expect("JSON from Prometheus");
        assert_eq!(status, 200, "{expr}: {v}");
        assert_eq!(v["status"], "success", "{expr}: {v}");
        v["data"].clone()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `GET path` with HTTP/1.0 (so the answer is not chunked): status and body.
fn http(addr: SocketAddr, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let raw = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    request(addr, &raw, Duration::from_secs(10)).map(|r| (r.status, r.body))
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// An instant vector's samples by their `operation` label (or "" without).
fn by_operation(data: &Value) -> BTreeMap<String, f64> {
    assert_eq!(data["resultType"], "vector", "{data}");
    data["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let op = r["metric"]["operation"].as_str().unwrap_or("").to_owned();
            (op, r["value"][1].as_str().unwrap().parse::<f64>().unwrap())
        })
        .collect()
}

/// A range vector's samples `(ms, value)` by their `operation` label.
fn ranges_by_operation(data: &Value) -> BTreeMap<String, Vec<(i64, f64)>> {
    assert_eq!(data["resultType"], "matrix", "{data}");
    data["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let op = r["metric"]["operation"].as_str().unwrap().to_owned();
            let points = r["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                    (t, p[1].as_str().unwrap().parse::<f64>().unwrap())
                })
                .collect();
            (op, points)
        })
        .collect()
}

/// Prometheus's `rate()` of a counter over `range_s` ending at `end_ms`,
/// from its samples: the increase, extrapolated towards the range's ends
/// (and no further back than the counter's zero) as `extrapolatedRate` in
/// Prometheus's `promql/functions.go` does.
fn extrapolated_rate(points: &[(i64, f64)], end_ms: i64, range_s: f64) -> f64 {
    let (first, last) = (points[0], points[points.len() - 1]);
    let mut increase = last.1 - first.1;
    let mut previous = 0.0;
    for p in points {
        if p.1 < previous {
            increase += previous;
        }
        previous = p.1;
    }
    let start_ms = end_ms - (range_s * 1000.0) as i64;
    let mut to_start = (first.0 - start_ms) as f64 / 1000.0;
    let to_end = (end_ms - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let average = sampled / (points.len() - 1) as f64;
    if increase > 0.0 && first.1 >= 0.0 {
        to_start = to_start.min(sampled * (first.1 / increase));
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold { to_start } else { average / 2.0 };
    interval += if to_end < threshold { to_end } else { average / 2.0 };
    increase * (interval / sampled) / range_s
}

/// The dashboard's expressions, with its variables set as Grafana would
/// for "All" over one target and a short range.
fn dashboard_queries() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana-dashboard.json");
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let set = expr
                .replace("$__rate_interval", "1m")
                .replace("$job", ".+")
                .replace("$instance", ".+");
            assert!(!set.contains('$'), "a variable left in {expr}");
            out.push((panel["title"].as_str().unwrap().to_owned(), set));
        }
    }
    assert!(out.len() >= 5);
    out
}

#[test]
fn prometheus_reads_what_pulse_counts() {
    if !prometheus_available() {
        return;
    }
    // About 5 s of work: a request, then a millisecond's pause.
    let env = [("PULSE_METRICS", "127.0.0.1:0")];
    let mut svc = Service::start(&["4000", "--go", "--pace-us", "1000"], &env, None);
    let prom = Prometheus::start(svc.addr);

    // A scrape before the work: every counter Prometheus sees starts near 0.
    prom.wait_for(Duration::from_secs(20), "a first scrape", || {
        by_operation(&prom.query("up{job=\"pulse\"}", now())).values().any(|v| *v == 1.0)
    });
    svc.go();
    let report = svc.report();
    let ready = now();
    // Two scrapes of the idle program after its figures were printed.
    prom.wait_for(Duration::from_secs(20), "two scrapes after the work", || {
        let t = by_operation(&prom.query("timestamp(pulse_heap_live_bytes)", now()));
        t.values().any(|ts| *ts >= ready + 2.0)
    });
    let at = (now() * 1000.0).floor() / 1000.0;
    let at_ms = (at * 1000.0).round() as i64;

    // The live heap: exactly the program's.
    let live = by_operation(&prom.query("pulse_heap_live_bytes", at));
    println!("pulse_heap_live_bytes: Prometheus {:?}, pulse {}", live[""], report.live_bytes);
    assert_eq!(live[""], report.live_bytes as f64);

    // Allocation rates: the samples end at the program's count, and the
    // rate is Prometheus's extrapolation over them.
    let rates = by_operation(&prom.query("rate(pulse_operation_allocations_total[1m])", at));
    let samples = ranges_by_operation(&prom.query("pulse_operation_allocations_total[1m]", at));
    // The quantile of the whole run, from the buckets' counts as last
    // scraped, which is what pulse's own p99 covers. (Over `rate(…[1m])`
    // each bucket's series is extrapolated to the window on its own, and a
    // series that starts near zero less far than the others: the quantile
    // of a short run then moves by up to a bucket, as it did under load.)
    let p99s = by_operation(&prom.query(
        "histogram_quantile(0.99, sum by (le, operation) \
         (pulse_operation_duration_seconds_bucket))",
        at,
    ));
    println!(
        "{:<8} {:>8} {:>14} {:>14} {:>10} {:>14} {:>14}",
        "op", "allocs", "last sample", "rate (Prom)", "rate (calc)", "p99 (Prom)", "p99 (pulse)"
    );
    for stat in &report.stats {
        let op = stat.name.trim_matches('"');
        let points = &samples[op];
        let last = points.last().unwrap().1;
        let want_rate = extrapolated_rate(points, at_ms, 60.0);
        let rate = rates[op];
        let p99 = p99s[op];
        let pulse_p99 = stat.p99_ns as f64 / 1e9;
        println!(
            "{op:<8} {:>8} {last:>14} {rate:>14.3} {want_rate:>10.3} {p99:>14.9} {pulse_p99:>14.9}",
            stat.allocs
        );
        assert!(points.len() >= 3, "{op}: {} samples", points.len());
        assert_eq!(last, stat.allocs as f64, "{op}: the last sample is the program's count");
        assert!(rate > 0.0 || stat.allocs == 0, "{op}: rate {rate}");
        assert!(
            (rate - want_rate).abs() <= 1e-6 * want_rate.max(1.0),
            "{op}: rate {rate}, {want_rate}"
        );
        assert!(same_bucket(&BUCKETS, p99, pulse_p99), "{op}: p99 {p99} s, pulse {pulse_p99} s");
    }

    // The dashboard's queries parse and return data.
    for (title, expr) in dashboard_queries() {
        let data = prom.query(&expr, at);
        let result = data["result"].as_array().unwrap();
        let values: Vec<String> = result
            .iter()
            .take(4)
            .map(|r| {
                format!("{}={}", r["metric"]["operation"].as_str().unwrap_or("-"), r["value"][1])
            })
            .collect();
        println!("dashboard {title:?}: {} series, {}", result.len(), values.join(" "));
        assert!(!result.is_empty(), "{title}: no data from {expr}");
    }
    svc.finish();
}
