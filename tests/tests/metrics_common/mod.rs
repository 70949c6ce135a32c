//! What the metrics tests share: running `metrics_service`, a plain HTTP
//! GET over `std::net`, and a reader of Prometheus's text exposition format
//! (version 0.0.4) that checks every line against its grammar.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The names the README promises.
pub(crate) const DURATION: &str = "pulse_operation_duration_seconds";
pub(crate) const ALLOCATIONS: &str = "pulse_operation_allocations_total";
pub(crate) const ALLOCATED_BYTES: &str = "pulse_operation_allocated_bytes_total";
pub(crate) const LIVE_BYTES: &str = "pulse_heap_live_bytes";
pub(crate) const LIVE_BLOCKS: &str = "pulse_heap_live_blocks";
pub(crate) const PEAK_BYTES: &str = "pulse_heap_peak_bytes";
pub(crate) const OVERHEAD: &str = "pulse_overhead_seconds_total";

/// The default bucket bounds, as the README lists them.
pub(crate) const BUCKETS: [f64; 25] = [
    100e-9, 250e-9, 500e-9, 1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3,
    2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One operation as the program printed it from `pulse::stats()`.
#[derive(Debug, Clone)]
pub(crate) struct Stat {
    /// Name and category as Rust debug strings (quoted, escaped).
    pub(crate) name: String,
    pub(crate) category: String,
    pub(crate) count: u64,
    pub(crate) total_ns: u64,
    pub(crate) mean_ns: u64,
    pub(crate) p50_ns: u64,
    pub(crate) p99_ns: u64,
    pub(crate) allocs: u64,
    pub(crate) bytes: u64,
}

/// What the program printed once its work was done.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub(crate) elapsed: Duration,
    pub(crate) stats: Vec<Stat>,
    pub(crate) live_bytes: i64,
    pub(crate) live_blocks: i64,
    pub(crate) peak_bytes: i64,
}

impl Report {
    /// The operation whose name is `name` (plain, unquoted).
    pub(crate) fn op(&self, name: &str) -> &Stat {
        let quoted = format!("{name:?}");
        self.stats.iter().find(|s| s.name == quoted).unwrap_or_else(|| panic!("no {name}"))
    }
}

/// `metrics_service` running, its stdout read line by line.
pub(crate) struct Service {
    pub(crate) child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// The metrics address from pulse's stderr line (or `METRICS`).
    pub(crate) addr: SocketAddr,
    /// Every stderr line, as it comes.
    pub(crate) stderr: mpsc::Receiver<String>,
}

impl Service {
    /// Starts it with `args` and `env`, and waits until its metrics are
    /// served (`--builder` prints the address; otherwise pulse's stderr line
    /// gives it).
    pub(crate) fn start(
        args: &[&str],
        env: &[(&str, &str)],
        dir: Option<&std::path::Path>,
    ) -> Service {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_metrics_service"));
        cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for var in ["PULSE_OUT", "PULSE_METRICS", "PULSE_METRICS_BUCKETS", "PULSE_ALLOC"] {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().copied());
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn().expect("run metrics_service");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                eprintln!("[metrics_service] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut addr = None;
        let mut line = String::new();
        loop {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "metrics_service ended early");
            if let Some(a) = line.trim().strip_prefix("METRICS ") {
                addr = Some(a.parse().unwrap());
            }
            if line.trim() == "STARTED" {
                break;
            }
        }
        let addr = addr.unwrap_or_else(|| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let line = rx.recv_timeout(left).expect("pulse names its metrics address");
                if let Some(rest) = line.strip_prefix("pulse: metrics for Prometheus at http://") {
                    let a = rest.split('/').next().unwrap();
                    break a.parse().unwrap();
                }
            }
        });
        Service { child, stdin, stdout, addr, stderr: rx }
    }

    /// Lets it start its work (`--go`).
    pub(crate) fn go(&mut self) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for its work to end and reads what it printed.
    pub(crate) fn report(&mut self) -> Report {
        let mut elapsed = None;
        let mut stats = Vec::new();
        let mut heap = None;
        let mut line = String::new();
        loop {
            line.clear();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "metrics_service ended early");
            let line = line.trim_end_matches('\n');
            if line == "READY" {
                break;
            }
            if let Some(ns) = line.strip_prefix("ELAPSED ") {
                elapsed = Some(Duration::from_nanos(ns.parse().unwrap()));
            } else if let Some(rest) = line.strip_prefix("HEAP ") {
                let v: Vec<i64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
                heap = Some((v[0], v[1], v[2]));
            } else if let Some(rest) = line.strip_prefix("STAT\t") {
                let f: Vec<&str> = rest.split('\t').collect();
                let n = |i: usize| f[i].parse::<u64>().unwrap();
                stats.push(Stat {
                    name: f[0].to_owned(),
                    category: f[1].to_owned(),
                    count: n(2),
                    total_ns: n(3),
                    mean_ns: n(4),
                    p50_ns: n(5),
                    p99_ns: n(6),
                    allocs: n(7),
                    bytes: n(8),
                });
            }
        }
        let (live_bytes, live_blocks, peak_bytes) = heap.expect("HEAP line");
        Report {
            elapsed: elapsed.expect("ELAPSED line"),
            stats,
            live_bytes,
            live_blocks,
            peak_bytes,
        }
    }

    /// Closes its stdin and waits for it to exit; asserts it exited well.
    pub(crate) fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "metrics_service: {status}");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP response: status, headers (names lowercased), body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: Vec<u8>,
}

/// `GET path` on `addr` with HTTP/1.1 and `Connection: close`, the whole
/// response read within `timeout`.
pub(crate) fn get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<Response> {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        timeout,
    )
}

/// Sends `raw` and reads the response until the server closes.
pub(crate) fn request(addr: SocketAddr, raw: &str, timeout: Duration) -> std::io::Result<Response> {
    let deadline = Instant::now() + timeout;
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(raw.as_bytes())?;
    let mut all = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut buf)? {
            0 => break,
            n => all.extend_from_slice(&buf[..n]),
        }
    }
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no end of headers"))?;
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no status"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Response { status, headers, body: all[end + 4..].to_vec() })
}

/// One sample: metric name, labels (values unescaped), value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// A scrape read back: each family's type and help, and the samples.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    pub(crate) types: HashMap<String, String>,
    pub(crate) help: HashMap<String, String>,
    pub(crate) samples: Vec<Sample>,
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    let first_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    chars.next().is_some_and(first_ok)
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

/// A sample value as Go's `ParseFloat` reads it (what Prometheus uses).
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => {
            let ok = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
            ok.then(|| s.parse().ok()).flatten()
        }
    }
}

/// Reads a label set `{a="x",b="y"}` from the start of `s`; returns the
/// labels and the rest.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').ok_or("no {")?;
    loop {
        rest = rest.trim_start_matches(' ');
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = rest[..eq].trim();
        if !is_name(name, false) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..].trim_start_matches(' ').strip_prefix('"').ok_or("unquoted value")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next().ok_or("unterminated label value")?;
            match c {
                '"' => break i,
                '\\' => match chars.next().ok_or("dangling backslash")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => return Err(format!("bad escape \\{other}")),
                },
                '\n' => return Err("raw newline in label value".into()),
                c => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = rest[end + 1..].trim_start_matches(' ');
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("labels not separated by ,".into());
        }
    }
}

/// The family a sample belongs to: its name, or the histogram (or summary)
/// it is a `_bucket`, `_sum` or `_count` of.
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).is_some_and(|t| t == "histogram" || t == "summary") {
                return base;
            }
        }
    }
    name
}

/// Reads a scrape, checking every line against the text format's grammar
/// (version 0.0.4): `# HELP name text`, `# TYPE name type` at most once per
/// name and before its samples, other comments, blank lines, and samples
/// `name{labels} value [timestamp]` with names, label names, escapes and
/// values as the format allows; and each histogram's buckets: an `le`
/// label, cumulative counts that never fall, a `+Inf` bucket equal to
/// `_count`, and a `_sum`.
pub(crate) fn parse_exposition(text: &str) -> Result<Exposition, String> {
    let mut x = Exposition::default();
    let mut seen_samples: HashMap<String, ()> = HashMap::new();
    assert!(text.ends_with('\n'), "the exposition ends with a line feed");
    for (n, line) in text.lines().enumerate() {
        let err = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start_matches(' ');
            let mut parts = comment.splitn(3, ' ');
            match parts.next() {
                Some("HELP") => {
                    let name = parts.next().ok_or_else(|| err("HELP without a name".into()))?;
                    if !is_name(name, true) {
                        return Err(err("bad metric name".into()));
                    }
                    let text = parts.next().unwrap_or("");
                    // Only \\ and \n are escapes in HELP text.
                    let mut chars = text.chars();
                    while let Some(c) = chars.next() {
                        if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
                            return Err(err("bad escape in HELP".into()));
                        }
                    }
                    if x.help.insert(name.to_owned(), text.to_owned()).is_some() {
                        return Err(err("HELP twice".into()));
                    }
                }
                Some("TYPE") => {
                    let name = parts.next().ok_or_else(|| err("TYPE without a name".into()))?;
                    let ty = parts.next().ok_or_else(|| err("TYPE without a type".into()))?;
                    if !is_name(name, true) {
                        return Err(err("bad metric name".into()));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&ty) {
                        return Err(err(format!("unknown type {ty}")));
                    }
                    if seen_samples.contains_key(name) {
                        return Err(err("TYPE after the family's samples".into()));
                    }
                    if x.types.insert(name.to_owned(), ty.to_owned()).is_some() {
                        return Err(err("TYPE twice".into()));
                    }
                }
                _ => {}
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !is_name(name, true) {
            return Err(err("bad metric name".into()));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(err)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let mut fields = rest.split(' ').filter(|f| !f.is_empty());
        let value = fields.next().and_then(parse_value).ok_or_else(|| err("bad value".into()))?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| err("bad timestamp".into()))?;
        }
        if fields.next().is_some() {
            return Err(err("trailing fields".into()));
        }
        seen_samples.insert(family_of(name, &x.types).to_owned(), ());
        x.samples.push(Sample { name: name.to_owned(), labels, value });
    }
    // Histograms: per label set, buckets cumulative up to +Inf == _count.
    for (family, ty) in &x.types {
        if ty != "histogram" {
            continue;
        }
        // Label pairs other than `le` → `(le, count)` of each bucket.
        type Series = BTreeMap<Vec<(String, String)>, Vec<(f64, f64)>>;
        let mut series = Series::new();
        for s in x.samples.iter().filter(|s| s.name == format!("{family}_bucket")) {
            let le = s.labels.get("le").ok_or(format!("{family}: a bucket without le"))?;
            let le = parse_value(le).ok_or(format!("{family}: bad le {le}"))?;
            let key = s.labels.iter().filter(|(k, _)| *k != "le");
            let key = key.map(|(k, v)| (k.clone(), v.clone())).collect();
            series.entry(key).or_default().push((le, s.value));
        }
        for (key, buckets) in series {
            let labels: BTreeMap<String, String> = key.iter().cloned().collect();
            let find = |suffix: &str| {
                x.samples
                    .iter()
                    .find(|s| s.name == format!("{family}{suffix}") && s.labels == labels)
                    .map(|s| s.value)
            };
            let count = find("_count").ok_or(format!("{family}{key:?}: no _count"))?;
            find("_sum").ok_or(format!("{family}{key:?}: no _sum"))?;
            if !buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1) {
                return Err(format!("{family}{key:?}: buckets not rising: {buckets:?}"));
            }
            let last = buckets.last().unwrap();
            if last.0 != f64::INFINITY || last.1 != count {
                return Err(format!("{family}{key:?}: +Inf bucket {last:?}, count {count}"));
            }
        }
    }
    Ok(x)
}

impl Exposition {
    /// The one sample of `name` with these labels (among others: `le` for
    /// buckets).
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert!(found.len() <= 1, "{name}{labels:?}: {} samples", found.len());
        found.first().map(|s| s.value)
    }

    /// `(le, cumulative count)` of one operation's histogram.
    pub(crate) fn buckets(&self, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
        let name = format!("{DURATION}_bucket");
        let mut v: Vec<(f64, f64)> = self
            .samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| (parse_value(&s.labels["le"]).unwrap(), s.value))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }
}

/// The bucket (index into `bounds`, `bounds.len()` for `+Inf`) a value in
/// seconds falls in.
pub(crate) fn bucket_of(bounds: &[f64], seconds: f64) -> usize {
    bounds.iter().position(|&le| seconds <= le).unwrap_or(bounds.len())
}

/// Whether `a` and `b` (seconds) fall in the same bucket, or in neighbouring
/// ones with `b` within 2 % of the bound between them (the histogram behind
/// the buckets is 1/64 of a power of two wide, the stats' percentiles are
/// that bucket's midpoint).
pub(crate) fn same_bucket(bounds: &[f64], a: f64, b: f64) -> bool {
    let (ia, ib) = (bucket_of(bounds, a), bucket_of(bounds, b));
    if ia == ib {
        return true;
    }
    if ia.abs_diff(ib) != 1 {
        return false;
    }
    let edge = bounds[ia.min(ib)];
    (b - edge).abs() <= 0.02 * edge
}
