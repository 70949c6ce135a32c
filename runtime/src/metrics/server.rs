//! The metrics endpoint's HTTP server: one thread of pulse's own, `poll(2)`
//! over a non-blocking listener and its connections.
//!
//! Why not a crate: `tiny_http` (the small blocking server that would fit)
//! runs its own acceptor and worker threads, which pulse cannot mark as its
//! own — what they allocate would be recorded as the program's — and it has
//! no deadline for a request's headers, so a client sending a byte a second
//! holds a worker. An async server would bring a runtime into every
//! profiled program. What is needed is small: `GET /metrics`, one request a
//! connection, under the limits below, which this file keeps in one place.
//!
//! Defences (`tests/tests/metrics_hostile.rs` runs slowloris clients, 500
//! held connections, a flood of connections and 10 MB requests at it):
//! - nothing blocks: the listener and every connection are non-blocking,
//!   and the loop waits only in `poll`;
//! - a request must arrive whole (its headers; a body is never read) within
//!   [`MAX_REQUEST`] bytes and [`REQUEST_DEADLINE`], else 431 or a close;
//! - a response must be taken within [`RESPONSE_DEADLINE`], and after it
//!   at most [`MAX_DRAIN`] more bytes are read from the client;
//! - at most [`MAX_CONNECTIONS`] are open: what a new one brings is read at
//!   once (a request already in is answered, a connection already closed
//!   takes no room), and if it must wait, the idlest one (one that has sent
//!   nothing, the oldest first) makes room, so held connections cannot lock
//!   a scrape out; the kernel queues [`BACKLOG`] connections meanwhile;
//! - the figures are rendered at most once per [`RENDER_EVERY`] and shared
//!   by the responses of that moment, so a flood of requests costs one
//!   render, and the aggregates' lock is held only while they are copied
//!   (`render.rs`), never while a socket is written;
//! - the thread is pulse's own (nothing it allocates is the program's) and
//!   blocks the terminating signals, as the collector does.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::render;

/// Connections open at once.
pub(crate) const MAX_CONNECTIONS: usize = 32;
/// The most bytes of a request read: its request line and headers.
pub(crate) const MAX_REQUEST: usize = 8 << 10;
/// How long a connection has to send its request.
pub(crate) const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// How long a client has to take its response.
pub(crate) const RESPONSE_DEADLINE: Duration = Duration::from_secs(10);
/// How long a closed connection's incoming bytes are read and dropped, so
/// that closing it does not reset it before the client has the response.
const LINGER: Duration = Duration::from_secs(1);
/// The most bytes a closed connection's client may still send: a client
/// pushing a huge request gets its connection reset past it.
const MAX_DRAIN: usize = 64 << 10;
/// Renders are at most this often; requests in between share the last one.
const RENDER_EVERY: Duration = Duration::from_millis(10);
/// Connections accepted in one turn of the loop.
const ACCEPT_BATCH: usize = 256;
/// Connections the kernel queues for accepting.
const BACKLOG: libc::c_int = 4096;

/// The content type of the text exposition format, version 0.0.4.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A server running in this process: the address asked for, the one bound,
/// and its bucket bounds, which a later session may change.
struct Server {
    requested: SocketAddr,
    local: SocketAddr,
    buckets: Arc<Mutex<Arc<[f64]>>>,
}

/// The servers started in this process. They serve until it exits: the
/// figures of the running session, or of the last one once it has ended.
static SERVERS: Mutex<Vec<Server>> = Mutex::new(Vec::new());

/// An address ready to serve: a new listener, or a server already running
/// there.
pub(crate) struct Bound {
    requested: SocketAddr,
    listener: Option<TcpListener>,
}

/// Binds `addr`, unless a server of this process runs there already (a
/// later session reuses it). Nothing is served until [`Bound::serve`];
/// dropping the result unbinds.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<Bound> {
    let servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    if servers.iter().any(|s| s.requested == addr) {
        return Ok(Bound { requested: addr, listener: None });
    }
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    // std listens with a backlog of 128: a flood of connections fills that
    // while the thread renders, and a full queue drops what comes next — a
    // scrape among them waits a second for its retry. Listening again
    // changes the backlog (the kernel caps it at `somaxconn`).
    // SAFETY: the descriptor is `listener`'s, a bound, listening socket.
    if unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Bound { requested: addr, listener: Some(listener) })
}

impl Bound {
    /// Serves `/metrics` with `buckets` as the duration histogram's bounds
    /// and returns the address bound. Call inside pulse's own untracked
    /// code, before the session records: the thread's start-up is then not
    /// the program's.
    pub(crate) fn serve(self, buckets: Vec<f64>) -> io::Result<SocketAddr> {
        let mut servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
        let buckets: Arc<[f64]> = Arc::from(buckets);
        let Some(listener) = self.listener else {
            let s = servers.iter().find(|s| s.requested == self.requested);
            let s = s.ok_or_else(|| io::Error::other("the metrics server went away"))?;
            *s.buckets.lock().unwrap_or_else(|e| e.into_inner()) = buckets;
            return Ok(s.local);
        };
        let local = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(buckets));
        let ready = Arc::new(AtomicBool::new(false));
        let (ready2, shared2) = (Arc::clone(&ready), Arc::clone(&shared));
        std::thread::Builder::new().name(String::from("pulse-metrics")).spawn(move || {
            // pulse's own thread from its first step: nothing it allocates
            // is recorded, and it records no events.
            pulse_alloc::mark_internal_thread();
            crate::signals::block_terminating();
            ready2.store(true, Ordering::Release);
            let idle = Loop {
                listener,
                buckets: shared2,
                conns: Vec::new(),
                cache: None,
                paused_until: None,
            };
            idle.run()
        })?;
        // As for the collector: a flag, not a channel (see `session::launch`).
        while !ready.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        servers.push(Server { requested: self.requested, local, buckets: shared });
        Ok(local)
    }
}

/// Where a connection is.
enum State {
    /// Reading the request: its bytes so far.
    Reading(Vec<u8>),
    /// Writing the response: its head, its body, and the bytes written.
    Writing { head: Vec<u8>, body: Option<Arc<[u8]>>, done: usize },
    /// Written and shut down for writing: dropping what the client still
    /// sends (the bytes dropped so far), up to [`MAX_DRAIN`].
    Draining(usize),
}

struct Conn {
    stream: TcpStream,
    state: State,
    /// When it was accepted.
    opened: Instant,
    /// When it is closed whatever state it is in.
    deadline: Instant,
    /// Whether it has sent anything.
    heard: bool,
}

impl Conn {
    /// How readily it is closed to make room: lower first.
    fn idleness(&self) -> (u8, Instant) {
        let rank = match (&self.state, self.heard) {
            (State::Draining(_), _) => 0,
            (State::Reading(_), false) => 1,
            (State::Reading(_), true) => 2,
            (State::Writing { .. }, _) => 3,
        };
        (rank, self.opened)
    }
}

struct Loop {
    listener: TcpListener,
    buckets: Arc<Mutex<Arc<[f64]>>>,
    conns: Vec<Conn>,
    /// The last render and when it was made.
    cache: Option<(Instant, Arc<[u8]>)>,
    /// Set when accepting failed for lack of descriptors: the listener
    /// rests until then rather than spinning.
    paused_until: Option<Instant>,
}

impl Loop {
    fn run(mut self) {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(MAX_CONNECTIONS + 1);
        loop {
            let now = Instant::now();
            self.conns.retain(|c| c.deadline > now);
            if self.paused_until.is_some_and(|t| t <= now) {
                self.paused_until = None;
            }
            fds.clear();
            let listening = self.paused_until.is_none();
            fds.push(libc::pollfd {
                fd: self.listener.as_raw_fd(),
                events: if listening { libc::POLLIN } else { 0 },
                revents: 0,
            });
            for c in &self.conns {
                let events = match c.state {
                    State::Writing { .. } => libc::POLLOUT,
                    State::Reading(_) | State::Draining(_) => libc::POLLIN,
                };
                fds.push(libc::pollfd { fd: c.stream.as_raw_fd(), events, revents: 0 });
            }
            let wake = self.conns.iter().map(|c| c.deadline).chain(self.paused_until).min();
            let timeout_ms = wake.map_or(1000, |t| {
                (t.saturating_duration_since(now).as_millis() as i32).clamp(0, 1000) + 1
            });
            // SAFETY: `fds` is a valid, writable array of `fds.len()` pollfds.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
            if n < 0 {
                if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            // The connections first: one whose request is in is answered
            // before new ones can crowd it out.
            let mut conns = std::mem::take(&mut self.conns);
            let mut i = 0;
            conns.retain_mut(|c| {
                let revents = fds[i + 1].revents;
                i += 1;
                revents == 0 || self.step(c)
            });
            self.conns = conns;
            if listening && fds[0].revents != 0 {
                self.accept();
            }
            super::SERVER_CPU_NS.store(super::thread_cpu_ns(), Ordering::Relaxed);
        }
    }

    /// Accepts what is waiting, up to a batch.
    fn accept(&mut self) {
        for _ in 0..ACCEPT_BATCH {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let now = Instant::now();
                    let mut conn = Conn {
                        stream,
                        state: State::Reading(Vec::new()),
                        opened: now,
                        deadline: now + REQUEST_DEADLINE,
                        heard: false,
                    };
                    // What has arrived is read now: a request already in is
                    // answered at once, and a connection already closed (a
                    // flood of them) takes no room.
                    if !self.step(&mut conn) {
                        continue;
                    }
                    if self.conns.len() >= MAX_CONNECTIONS {
                        let idlest =
                            (0..self.conns.len()).min_by_key(|&i| self.conns[i].idleness());
                        if let Some(victim) = idlest {
                            self.conns.swap_remove(victim);
                        }
                    }
                    self.conns.push(conn);
                }
                Err(e) => {
                    match e.kind() {
                        io::ErrorKind::WouldBlock => {}
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => continue,
                        // Out of descriptors (or worse): rest, rather than
                        // find the listener ready again at once.
                        _ => self.paused_until = Some(Instant::now() + Duration::from_millis(50)),
                    }
                    return;
                }
            }
        }
    }

    /// Moves a connection on as far as it goes without blocking; false
    /// when it is done with.
    fn step(&mut self, c: &mut Conn) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            match &mut c.state {
                State::Reading(request) => match c.stream.read(&mut chunk) {
                    Ok(0) => return false,
                    Ok(n) => {
                        c.heard = true;
                        let from = request.len().saturating_sub(3);
                        let take = n.min(MAX_REQUEST - request.len());
                        request.extend_from_slice(&chunk[..take]);
                        let reply = if let Some(end) = header_end(request, from) {
                            respond(&request[..end])
                        } else if request.len() >= MAX_REQUEST {
                            Reply::Fixed(status(
                                431,
                                "Request Header Fields Too Large",
                                "too large\n",
                            ))
                        } else {
                            continue;
                        };
                        let (head, body) = match reply {
                            Reply::Fixed(response) => (response, None),
                            Reply::Metrics { head_only } => {
                                let body = self.render();
                                (ok_head(body.len()), (!head_only).then_some(body))
                            }
                        };
                        c.state = State::Writing { head, body, done: 0 };
                        c.deadline = Instant::now() + RESPONSE_DEADLINE;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return e.kind() == io::ErrorKind::WouldBlock,
                },
                State::Writing { head, body, done } => {
                    let body_bytes: &[u8] = body.as_deref().unwrap_or(&[]);
                    let (part, at) = if *done < head.len() {
                        (&head[..], *done)
                    } else {
                        (body_bytes, *done - head.len())
                    };
                    if at >= part.len() {
                        // All written: tell the client, then drop what it
                        // still sends until it closes (or the linger ends).
                        let _ = c.stream.shutdown(Shutdown::Write);
                        c.state = State::Draining(0);
                        c.deadline = Instant::now() + LINGER;
                        continue;
                    }
                    match c.stream.write(&part[at..]) {
                        Ok(0) => return false,
                        Ok(n) => *done += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return e.kind() == io::ErrorKind::WouldBlock,
                    }
                }
                State::Draining(dropped) => match c.stream.read(&mut chunk) {
                    Ok(0) => return false,
                    Ok(n) => {
                        *dropped += n;
                        if *dropped > MAX_DRAIN {
                            return false;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return e.kind() == io::ErrorKind::WouldBlock,
                },
            }
        }
    }

    /// The metrics body: the last render if it is recent enough.
    fn render(&mut self) -> Arc<[u8]> {
        let now = Instant::now();
        if let Some((at, body)) = &self.cache {
            if now.saturating_duration_since(*at) < RENDER_EVERY {
                return Arc::clone(body);
            }
        }
        let bounds = Arc::clone(&self.buckets.lock().unwrap_or_else(|e| e.into_inner()));
        let body: Arc<[u8]> = Arc::from(render::body(&bounds));
        self.cache = Some((Instant::now(), Arc::clone(&body)));
        body
    }
}

/// Where the request's headers end (past their blank line), looking from
/// `from` on.
fn header_end(request: &[u8], from: usize) -> Option<usize> {
    let tail = &request[from..];
    let crlf = tail.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = tail.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    crlf.into_iter().chain(lf).min().map(|i| from + i)
}

/// What a request gets.
#[derive(Debug, PartialEq)]
enum Reply {
    /// A response written in full.
    Fixed(Vec<u8>),
    /// The metrics, or for `HEAD` only the head they would have.
    Metrics { head_only: bool },
}

/// The reply to a request's head.
fn respond(request: &[u8]) -> Reply {
    let line = request.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ' || b == b'\r').filter(|w| !w.is_empty());
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return Reply::Fixed(status(400, "Bad Request", "bad request\n"));
    };
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let head_only = method == b"HEAD";
    if method != b"GET" && !head_only {
        let mut r = status(405, "Method Not Allowed", "GET /metrics\n");
        let blank = r.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |i| i + 2);
        r.splice(blank..blank, b"Allow: GET, HEAD\r\n".iter().copied());
        return Reply::Fixed(r);
    }
    match path {
        b"/metrics" => Reply::Metrics { head_only },
        b"/" => Reply::Fixed(status(200, "OK", "pulse: operation metrics at /metrics\n")),
        _ => Reply::Fixed(status(404, "Not Found", "not found: pulse serves /metrics\n")),
    }
}

/// The head of a 200 response carrying `len` bytes of metrics.
fn ok_head(len: usize) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {len}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// A short plain-text response, head and body together.
fn status(code: u16, reason: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_answered_by_method_and_path() {
        let code = |req: &str| match respond(req.as_bytes()) {
            Reply::Metrics { head_only: false } => String::from("metrics"),
            Reply::Metrics { head_only: true } => String::from("metrics head"),
            Reply::Fixed(r) => String::from_utf8(r).unwrap().split(' ').nth(1).unwrap().to_owned(),
        };
        assert_eq!(code("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), "metrics");
        assert_eq!(code("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), "metrics");
        assert_eq!(code("HEAD /metrics HTTP/1.1\r\n\r\n"), "metrics head");
        assert_eq!(code("GET / HTTP/1.1\r\n\r\n"), "200");
        assert_eq!(code("GET /other HTTP/1.1\r\n\r\n"), "404");
        assert_eq!(code("POST /metrics HTTP/1.1\r\n\r\n"), "405");
        assert_eq!(code("\r\n\r\n"), "400");
        let Reply::Fixed(r) = respond(b"DELETE / HTTP/1.1\r\n\r\n") else { panic!() };
        let r = String::from_utf8(r).unwrap();
        assert!(r.contains("\r\nAllow: GET, HEAD\r\n\r\nGET /metrics\n"), "{r}");
    }

    #[test]
    fn the_end_of_the_headers_is_found_across_reads() {
        assert_eq!(header_end(b"GET / HTTP/1.1\r\n\r\n", 0), Some(18));
        assert_eq!(header_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
        assert_eq!(header_end(b"GET /\n\n", 3), Some(7));
        assert_eq!(header_end(b"xx\r\n\r\nbody", 0), Some(6));
    }
}
