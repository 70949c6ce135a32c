//! The metrics endpoint under hostile clients: while `metrics_service`
//! runs its operations, this test holds 500 connections open, keeps
//! slowloris clients sending a byte a second, opens and closes connections
//! in a flood, and sends 10 MB requests — and scrapes `/metrics` as
//! Prometheus would, five times a second.
//!
//! The program's operations must keep their speed (against a run without
//! the clients, a generous ratio: this machine's cores are shared with the
//! clients), every normal scrape must answer within a second, and the
//! server must close what it should: slowloris connections at its 5 s
//! request deadline, huge requests after 8 KiB.
//!
//! Its own test binary: nothing else runs beside it while it times.

mod metrics_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics_common::*;

const ITERATIONS: &str = "20000";

/// Runs the program once; with `hostile`, under attack from the moment its
/// metrics are served until at least `hold` has passed.
fn run(hostile: bool, hold: Duration) -> (Report, Option<Seen>) {
    let mut svc = Service::start(&[ITERATIONS, "--go"], &[("PULSE_METRICS", "127.0.0.1:0")], None);
    let attack = hostile.then(|| Attack::start(svc.addr));
    if let Some(a) = &attack {
        a.wait_until_in_place();
    }
    let began = Instant::now();
    svc.go();
    let report = svc.report();
    let attack = attack.map(|a| {
        // Past the server's deadlines, the figures idle, the clients on.
        while began.elapsed() < hold {
            std::thread::sleep(Duration::from_millis(50));
        }
        a.stop()
    });
    // The server answers still.
    let r = get(svc.addr, "/metrics", Duration::from_secs(1)).expect("a scrape after the attack");
    assert_eq!(r.status, 200);
    svc.finish();
    (report, attack)
}

/// The hostile clients, and a normal scraper, on their threads.
struct Attack {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    held: Arc<AtomicUsize>,
    slow_started: Arc<AtomicUsize>,
    /// How long each slowloris connection lived before the server closed it.
    slow_lives: Arc<Mutex<Vec<Duration>>>,
    /// Each 10 MB request: the bytes the server took before refusing it,
    /// and whether the whole request went through.
    big: Arc<Mutex<Vec<(usize, bool)>>>,
    /// Each normal scrape's time, or its error.
    scrapes: Arc<Mutex<Vec<Result<Duration, String>>>>,
    flood: Arc<AtomicUsize>,
}

/// What the attack saw.
struct Seen {
    held: usize,
    slow_lives: Vec<Duration>,
    big: Vec<(usize, bool)>,
    scrapes: Vec<Result<Duration, String>>,
    flood: usize,
}

impl Attack {
    fn start(addr: SocketAddr) -> Attack {
        let a = Attack {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            held: Arc::new(AtomicUsize::new(0)),
            slow_started: Arc::new(AtomicUsize::new(0)),
            slow_lives: Arc::default(),
            big: Arc::default(),
            scrapes: Arc::default(),
            flood: Arc::new(AtomicUsize::new(0)),
        };
        let mut threads = Vec::new();
        // 500 connections opened and held, sending nothing.
        let (stop, held) = (Arc::clone(&a.stop), Arc::clone(&a.held));
        threads.push(std::thread::spawn(move || {
            let mut conns = Vec::new();
            // A connect the full accept queue dropped is tried again.
            while conns.len() < 500 && !stop.load(Ordering::Relaxed) {
                if let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                    conns.push(c);
                    held.fetch_add(1, Ordering::Relaxed);
                }
            }
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }));
        // Slowloris: a request a byte a second, again whenever it is closed.
        for _ in 0..4 {
            let (stop, started, lives) =
                (Arc::clone(&a.stop), Arc::clone(&a.slow_started), Arc::clone(&a.slow_lives));
            threads.push(std::thread::spawn(move || {
                let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaa";
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut c) = TcpStream::connect(addr) else { continue };
                    started.fetch_add(1, Ordering::Relaxed);
                    let opened = Instant::now();
                    let _ = c.set_read_timeout(Some(Duration::from_millis(1)));
                    let mut closed = false;
                    for &b in request.iter().cycle() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if c.write_all(&[b]).is_err() || !still_open(&mut c) {
                            closed = true;
                            break;
                        }
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    if closed {
                        lives.lock().unwrap().push(opened.elapsed());
                    }
                }
            }));
        }
        // A flood: connections opened and closed at once, a few a millisecond.
        let (stop, flood) = (Arc::clone(&a.stop), Arc::clone(&a.flood));
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..4 {
                    if TcpStream::connect(addr).is_ok() {
                        flood.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }));
        // 10 MB requests, one after another.
        let (stop, big) = (Arc::clone(&a.stop), Arc::clone(&a.big));
        threads.push(std::thread::spawn(move || {
            let mut body = b"GET /metrics?".to_vec();
            body.resize(10 << 20, b'a');
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut c) = TcpStream::connect(addr) else { continue };
                let _ = c.set_write_timeout(Some(Duration::from_secs(5)));
                let mut sent = 0;
                let mut whole = true;
                for piece in body.chunks(64 << 10) {
                    match c.write(piece) {
                        Ok(n) if n == piece.len() => sent += n,
                        Ok(n) => {
                            sent += n;
                            whole = false;
                            break;
                        }
                        Err(_) => {
                            whole = false;
                            break;
                        }
                    }
                }
                big.lock().unwrap().push((sent, whole));
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
        // A normal scraper.
        let (stop, scrapes) = (Arc::clone(&a.stop), Arc::clone(&a.scrapes));
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = get(addr, "/metrics", Duration::from_secs(1));
                let r = match r {
                    Ok(r) if r.status == 200 && r.body.starts_with(b"# HELP") => Ok(t.elapsed()),
                    Ok(r) => Err(format!("status {}", r.status)),
                    Err(e) => Err(format!("{e} after {:?}", t.elapsed())),
                };
                scrapes.lock().unwrap().push(r);
                std::thread::sleep(Duration::from_millis(200));
            }
        }));
        Attack { threads, ..a }
    }

    fn wait_until_in_place(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.held.load(Ordering::Relaxed) < 500
            || self.slow_started.load(Ordering::Relaxed) < 4
        {
            assert!(
                Instant::now() < deadline,
                "hostile clients not in place: {} held, {} slowloris",
                self.held.load(Ordering::Relaxed),
                self.slow_started.load(Ordering::Relaxed)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        Seen {
            held: self.held.load(Ordering::Relaxed),
            slow_lives: take(&self.slow_lives),
            big: take(&self.big),
            scrapes: take(&self.scrapes),
            flood: self.flood.load(Ordering::Relaxed),
        }
    }
}

fn take<T>(m: &Mutex<Vec<T>>) -> Vec<T> {
    std::mem::take(&mut *m.lock().unwrap())
}

/// Whether the server keeps `c` open: a read (1 ms timeout) finds nothing yet.
fn still_open(c: &mut TcpStream) -> bool {
    let mut probe = [0u8; 256];
    matches!(c.read(&mut probe), Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

#[test]
fn hostile_clients_stall_neither_the_program_nor_a_scrape() {
    let (quiet, _) = run(false, Duration::ZERO);
    let (loud, seen) = run(true, Duration::from_secs(8));
    let seen = seen.unwrap();

    let ratio = loud.elapsed.as_secs_f64() / quiet.elapsed.as_secs_f64();
    let p50 = |r: &Report| r.op("Render").p50_ns as f64;
    let p50_ratio = p50(&loud) / p50(&quiet);
    let ok: Vec<Duration> = seen.scrapes.iter().filter_map(|s| s.as_ref().ok().copied()).collect();
    let failed: Vec<&String> = seen.scrapes.iter().filter_map(|s| s.as_ref().err()).collect();
    let slowest = ok.iter().max().copied().unwrap_or_default();
    let mut lives = seen.slow_lives.clone();
    lives.sort();
    println!(
        "work: {:.3} s quiet, {:.3} s under attack ({ratio:.2}x); Render p50 {} ns quiet, {} ns \
         under attack ({p50_ratio:.2}x)",
        quiet.elapsed.as_secs_f64(),
        loud.elapsed.as_secs_f64(),
        p50(&quiet),
        p50(&loud),
    );
    println!(
        "scrapes: {} answered, slowest {slowest:?}, mean {:?}; {} failed",
        ok.len(),
        ok.iter().sum::<Duration>() / ok.len().max(1) as u32,
        failed.len()
    );
    println!(
        "held {} connections; flood of {} connections; slowloris connections closed after {:?}",
        seen.held, seen.flood, lives
    );
    println!(
        "10 MB requests: {} sent, bytes taken before the refusal: {:?}",
        seen.big.len(),
        seen.big.iter().map(|b| b.0).collect::<Vec<_>>()
    );

    assert!(failed.is_empty(), "failed scrapes: {failed:?}");
    assert!(ok.len() >= 20, "{} scrapes", ok.len());
    assert!(slowest < Duration::from_secs(1), "slowest scrape {slowest:?}");
    assert!(ratio < 2.0, "the work took {ratio:.2}x as long under attack");
    assert!(p50_ratio < 2.0, "Render's median took {p50_ratio:.2}x as long under attack");
    assert_eq!(seen.held, 500);
    // The server closes a request that is not in after 5 s.
    assert!(!lives.is_empty(), "no slowloris connection was closed");
    assert!(lives.iter().all(|l| *l < Duration::from_secs(8)), "slowloris lives {lives:?}");
    // No 10 MB request went through whole.
    assert!(!seen.big.is_empty());
    assert!(seen.big.iter().all(|b| !b.1), "a 10 MB request went through: {:?}", seen.big);
}
