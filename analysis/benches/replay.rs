//! Analyzer replay: events per second and peak memory of `Profile::load` on
//! generated sessions of 1, 10 and 50 million events (`--quick`: 1 million),
//! against the budget in DESIGN.md (25 M events/s on one core), and where
//! the time goes, stage by stage.
//!
//!     cargo bench -p pulse-analysis --bench replay
//!
//! Each load is timed by the wall clock and by the CPU time of its thread:
//! on a shared machine the second is what one core spent on it. The peak
//! resident set is each load's own (reset before it).
//!
//! The sessions mix allocations with stacks (a few hundred sites), frees
//! (mostly soon, some late, some never), reallocations and properly nested
//! scopes (a few callees per caller, at most eight deep) on four threads,
//! written with the real writer in collector-sized chunks.

use std::time::Instant;

use pulse_format::{
    ChunkEncoder, ClockInfo, Event, Metadata, RawFrame, Reader, Record, Sink, Trailer, Writer,
};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Writes a session of about `events` events to `path`.
fn generate(path: &std::path::Path, events: u64) {
    let meta =
        Metadata { writer: "bench".into(), clock: ClockInfo::monotonic(), ..Metadata::default() };
    let file = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut w = Writer::new(file, &meta).expect("header");
    let mut enc = ChunkEncoder::new();
    enc.begin(0, 0);
    for site in 1..=300u32 {
        enc.push(&Record::SiteDef {
            site,
            frames: (0..12).map(|i| 0x40_0000 + u64::from(site) * 64 + i * 4096).collect(),
        });
    }
    for scope in 1..=20u32 {
        enc.push(&Record::ScopeDef {
            scope,
            name: format!("scope {scope}"),
            category: String::new(),
            description: String::new(),
            priority: 0,
        });
    }
    w.write_chunk(&enc).expect("defs");
    let threads = 4u64;
    let per_round = 16_384u64;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut live: Vec<Vec<(u64, u64)>> = vec![Vec::new(); threads as usize];
    let mut next_addr = 0x1000_0000u64;
    let mut ts = 0u64;
    let mut written = 0u64;
    let mut round = 1u64;
    while written < events {
        for t in 0..threads {
            enc.begin(t + 1, round);
            // Scopes nest as in a program: an exit closes the innermost entry.
            let mut open: Vec<u32> = Vec::new();
            for _ in 0..per_round / threads {
                ts += 20 + rng.next() % 200;
                let r = rng.next() % 100;
                let l = &mut live[t as usize];
                if r < 45 || l.is_empty() {
                    let size = 8 + rng.next() % 512;
                    next_addr += 64;
                    l.push((next_addr, size));
                    enc.push(&Record::Alloc {
                        ts,
                        addr: next_addr,
                        size,
                        align: 8,
                        site: 1 + (rng.next() % 300) as u32,
                        weight: 1,
                    });
                } else if r < 88 {
                    // Mostly the newest block, now and then an old one.
                    let i = if rng.next() % 8 == 0 {
                        (rng.next() as usize) % l.len()
                    } else {
                        l.len() - 1
                    };
                    let (addr, size) = l.swap_remove(i);
                    enc.push(&Record::Free { ts, addr, size });
                } else if r < 94 {
                    let (addr, size) = l.pop().unwrap_or((0, 0));
                    next_addr += 64;
                    l.push((next_addr, size * 2));
                    enc.push(&Record::Realloc {
                        ts,
                        start_ts: ts,
                        old_addr: addr,
                        old_size: size,
                        new_addr: next_addr,
                        new_size: size * 2,
                        align: 8,
                        site: 1 + (rng.next() % 300) as u32,
                    });
                } else if (r < 97 && open.len() < 8) || open.is_empty() {
                    // A few callees per caller, as in a program: bounded call paths.
                    let scope = 1 + (open.len() as u32 * 3 + (rng.next() % 3) as u32) % 20;
                    open.push(scope);
                    enc.push(&Record::ScopeEnter { ts, scope });
                } else {
                    let scope = open.pop().unwrap_or(1);
                    enc.push(&Record::ScopeExit { ts, scope });
                }
                written += 1;
            }
            // A chunk ends with its scopes closed, as a round's drain finds them
            // in a program that enters and leaves them quickly.
            while let Some(scope) = open.pop() {
                ts += 20;
                enc.push(&Record::ScopeExit { ts, scope });
                written += 1;
            }
            w.write_chunk(&enc).expect("chunk");
        }
        round += 1;
    }
    w.finish(Trailer { end_ts: ts, ..Trailer::default() }).expect("trailer");
}

/// The process's peak resident set since the last [`reset_peak_rss`].
fn max_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Starts the peak resident set afresh (Linux: `clear_refs` 5), so that
/// each row's peak is its own load's and not the generator's or an
/// earlier row's.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// CPU time this thread has run, in nanoseconds (Linux schedstat): on a
/// shared machine, what the load cost one core, without the time it
/// waited for one.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Wall and CPU seconds of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let c = cpu_ns();
    let t = Instant::now();
    let out = f();
    let wall = t.elapsed().as_secs_f64();
    (out, wall, cpu_ns().saturating_sub(c) as f64 / 1e9)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Counts what the event decoder hands over.
struct Count(u64);

impl Sink for Count {
    fn event(&mut self, e: Event) {
        self.0 = self.0.wrapping_add(e.ts() | 1);
    }
    fn record(&mut self, r: Record) {
        std::hint::black_box(r);
    }
}

/// The load in stages, each alone, CPU seconds (median): frames read,
/// checked and decompressed; also decoded into events; also merged in
/// timestamp order (the replay without its state).
fn stages(path: &std::path::Path, runs: usize) -> [f64; 3] {
    let open = || {
        Reader::new(std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).unwrap()))
            .unwrap()
    };
    let frames = (0..runs)
        .map(|_| {
            timed(|| {
                let mut r = open();
                let mut bytes = 0;
                while let Some(f) = r.next_raw().unwrap() {
                    if let RawFrame::Chunk(c) = f {
                        bytes += c.body().len();
                    }
                }
                std::hint::black_box(bytes)
            })
            .2
        })
        .collect();
    let decode = (0..runs)
        .map(|_| {
            timed(|| {
                let mut r = open();
                let mut sink = Count(0);
                while let Some(f) = r.next_raw().unwrap() {
                    if let RawFrame::Chunk(c) = f {
                        c.decode(&mut sink).unwrap();
                    }
                }
                std::hint::black_box(sink.0)
            })
            .2
        })
        .collect();
    let merge = (0..runs)
        .map(|_| {
            timed(|| {
                let f = std::fs::File::open(path).unwrap();
                pulse_analysis::bench::merge_only(std::io::BufReader::with_capacity(1 << 20, f))
                    .unwrap()
            })
            .2
        })
        .collect();
    [median(frames), median(decode), median(merge)]
}

/// The wall time of a load through an empty cache (a replay that stores
/// its profile) and of a later one (the file hashed, the profile read
/// back), and the entry's size.
fn through_cache(path: &std::path::Path, dir: &std::path::Path, runs: usize) -> (f64, f64, u64) {
    let load = |cache: &pulse_analysis::Cache| {
        let opts = pulse_analysis::LoadOptions::new().jobs(1);
        let (p, used) =
            pulse_analysis::Profile::load_cached(path, &opts, cache, &mut |_, _| {}).expect("load");
        std::hint::black_box(p.memory.allocs);
        used
    };
    let (mut firsts, mut laters, mut entry) = (Vec::new(), Vec::new(), 0);
    for _ in 0..runs {
        let _ = std::fs::remove_dir_all(dir);
        let cache = pulse_analysis::Cache::new(dir);
        let start = Instant::now();
        assert_eq!(load(&cache), pulse_analysis::CacheUse::Stored);
        firsts.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        assert_eq!(load(&cache), pulse_analysis::CacheUse::Hit);
        laters.push(start.elapsed().as_secs_f64());
        entry = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .sum();
    }
    (median(firsts), median(laters), entry)
}

/// A session to replay: one generated here, of about `events` events, or
/// one given with `--session PATH` (a real program's).
enum Input {
    Generated(u64),
    Given(std::path::PathBuf),
}

/// `Profile::load` of `path` on `jobs` threads.
fn load(path: &std::path::Path, jobs: usize) -> pulse_analysis::Profile {
    let opts = pulse_analysis::LoadOptions::new().jobs(jobs);
    pulse_analysis::Profile::load_with(path, &opts, &mut |_, _| {}).expect("load")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `--write PATH`: only write the generated session of 10 million events
    // there, to replay it by other means (`pulse report`, `perf`).
    if let Some(i) = args.iter().position(|a| a == "--write") {
        let path = args.get(i + 1).expect("--write takes the path to write to");
        generate(std::path::Path::new(path), 10_000_000);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let given = args.iter().position(|a| a == "--session").map(|i| {
        std::path::PathBuf::from(args.get(i + 1).expect("--session takes a session file's path"))
    });
    let smoke = !args.iter().any(|a| a == "--bench") && !quick && given.is_none();
    let inputs: Vec<Input> = match given {
        Some(path) => vec![Input::Given(path)],
        None if smoke => vec![Input::Generated(50_000)],
        None if quick => vec![Input::Generated(1_000_000)],
        None => [1_000_000, 10_000_000, 50_000_000].map(Input::Generated).into(),
    };
    let runs = if smoke { 1 } else { 3 };
    let dir = std::env::temp_dir().join(format!("pulse-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    println!(
        "analyzer replay (Profile::load), one thread, and two (the state fed on a second), \
         median of {runs}"
    );
    println!(
        "{:>12} {:>9} {:>9} {:>10} {:>9} {:>10} {:>9} {:>11} {:>16}",
        "events",
        "file",
        "wall",
        "events/s",
        "cpu",
        "events/s",
        "peak RSS",
        "peak blocks",
        "two threads"
    );
    let mut slowest = (f64::INFINITY, f64::INFINITY);
    let mut breakdown = Vec::new();
    let mut cached = Vec::new();
    for input in inputs {
        // One file at a time: the 50 M one is a few hundred megabytes.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = match input {
            Input::Generated(n) => {
                let path = dir.join(format!("{n}.pulse"));
                generate(&path, n);
                path
            }
            Input::Given(path) => path,
        };
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        let mut walls = Vec::new();
        let mut cpus = Vec::new();
        let mut twos = Vec::new();
        // Each two-thread load against the one-thread load just before it:
        // on a shared machine the median of these pairs is steadier than
        // the ratio of the two medians, whose loads ran minutes apart.
        let mut speedups = Vec::new();
        let mut rss = 0;
        let mut live = 0;
        let mut n = 0;
        for _ in 0..runs {
            reset_peak_rss();
            let (p, wall, cpu) = timed(|| load(&path, 1));
            rss = rss.max(max_rss());
            live = p.memory.peak_blocks;
            n = p.record_counts.iter().sum();
            std::hint::black_box(p.memory.allocs);
            drop(p);
            walls.push(wall);
            cpus.push(cpu);
            let (p, two, _) = timed(|| load(&path, 2));
            std::hint::black_box(p.memory.allocs);
            twos.push(two);
            speedups.push(wall / two);
        }
        let (wall, cpu, two) = (median(walls), median(cpus), median(twos));
        slowest = (slowest.0.min(n as f64 / wall), slowest.1.min(n as f64 / cpu));
        println!(
            "{:>12} {:>7.1}MB {:>7.0}ms {:>8.1} M {:>7.0}ms {:>8.1} M {:>7.0}MB {:>11} {:>7.0}ms {:>5.2}x",
            n,
            size as f64 / 1e6,
            wall * 1e3,
            n as f64 / wall / 1e6,
            cpu * 1e3,
            n as f64 / cpu / 1e6,
            rss as f64 / 1e6,
            live,
            two * 1e3,
            median(speedups),
        );
        breakdown.push((n, stages(&path, runs), cpu));
        cached.push((n, wall, through_cache(&path, &dir.join("cache"), runs)));
    }
    println!(
        "  two threads: the wall time of the same load on two threads, and its speedup \
         (the median of each run's one-thread load over its two-thread one)"
    );
    println!();
    println!(
        "read once, ask many times: a load through the replay cache, median of {runs} \
         (ratios against the plain load above)"
    );
    println!("{:>12} {:>16} {:>16} {:>9}", "events", "first (stores)", "later (hits)", "entry");
    for (n, plain, (first, later, entry)) in cached {
        println!(
            "{:>12} {:>7.0}ms {:>5.2}x {:>7.0}ms {:>5.3}x {:>7.1}MB",
            n,
            first * 1e3,
            first / plain,
            later * 1e3,
            later / plain,
            entry as f64 / 1e6
        );
    }
    println!();
    println!("where the time goes, CPU ns per event (each stage timed alone, median of {runs}):");
    println!(
        "{:>12} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "events", "frames", "decode", "merge", "state", "total"
    );
    for (n, [frames, decode, merge], total) in breakdown {
        let ns = |s: f64| s * 1e9 / n as f64;
        println!(
            "{:>12} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            n,
            ns(frames),
            ns(decode - frames),
            ns(merge - decode),
            ns(total - merge),
            ns(total)
        );
    }
    println!(
        "  frames: read, CRC-32, zstd; decode: into events; merge: timestamp order; state: the profile's figures"
    );
    const BUDGET: f64 = 25e6;
    let verdict = |rate: f64| {
        if rate >= BUDGET {
            format!("met ({:.1} M events/s)", rate / 1e6)
        } else {
            format!("missed: {:.1} M events/s is {:.1}x short", rate / 1e6, BUDGET / rate)
        }
    };
    println!(
        "budget (DESIGN.md): >= 25 M events/s on one core, memory O(live set + sites): \
         CPU time {}; wall time {}",
        verdict(slowest.1),
        verdict(slowest.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
