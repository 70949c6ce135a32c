//! Replay: read a session's chunks, merge the threads by timestamp, and feed
//! each event, in order, to the aggregates.
//!
//! The collector drains every thread's ring once per round. An event can
//! only land in a later round than an event that happened after it on
//! another thread when the drain of its ring ran before it was published
//! within the same round; so by the time round `r + 2` begins, everything
//! with a timestamp up to the last one of round `r` has been read. The merger
//! therefore holds at most two rounds of events — memory bounded by the
//! collector's round, not by the session's length — and emits the rest in
//! timestamp order, each thread's own order kept.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::io::Read;
use std::sync::mpsc;

use rustc_hash::FxHashMap as HashMap;

use pulse_format::{
    Decoded, Decoder, Event, RawChunk, RawFrame, Reader, Record, RecordKind, Sink, Trailer,
};

use crate::load::compact::{At, Compact, Front, Held};
use crate::load::deaths::Away;

/// A thread of the session: pulse's id for it, and the replay's own dense
/// index (0, 1, 2, … in the order threads first appear in the file), for
/// per-thread tables without a lookup by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Thread {
    pub(crate) id: u64,
    pub(crate) ix: usize,
}

/// What receives the replayed events.
pub(crate) trait Visitor {
    /// A definition (site, scope, symbol): no timestamp, applied on arrival.
    fn definition(&mut self, r: Record);
    /// A timed event on `thread`, in global timestamp order.
    fn event(&mut self, thread: Thread, e: Event);
    /// A timed record that owns data (`ThreadStart`, `Counters`), in the
    /// same order as the events.
    fn record(&mut self, thread: Thread, r: Record);
    /// The first half of a moving [`Event::Realloc`] on `thread`: the old
    /// block at `addr` was released at `ts`. The event itself follows, at
    /// its own (later) timestamp.
    fn realloc_release(&mut self, thread: Thread, ts: u64, addr: u64);
    /// Work that may be done on another thread: on two threads, the
    /// reading thread does it while it would wait on this one (see
    /// [`crate::load::deaths`]). None by default.
    fn aside(&mut self) -> Option<Away> {
        None
    }
    /// The work of [`Visitor::aside`] back, once the replay is over.
    fn aside_done(&mut self, away: Away) {
        let _ = away;
    }
}

/// How the reading ended.
#[derive(Debug, Default)]
pub(crate) struct Ending {
    pub(crate) trailer: Option<Trailer>,
    /// Set when the file was cut short; everything before the cut was replayed.
    pub(crate) truncated: Option<pulse_format::Error>,
    pub(crate) chunks: u64,
    pub(crate) record_counts: [u64; RecordKind::ALL.len()],
    /// The session's bytes as decoded (see [`Reader::decoded_len`]).
    pub(crate) decoded_len: u64,
}

/// Reads every frame of `reader` and replays it into `v`.
///
/// A truncated file ends the replay normally, with the error in
/// [`Ending::truncated`]; any other error (a bad checksum, corrupt bytes)
/// is returned.
pub(crate) fn replay<R: Read>(
    reader: &mut Reader<R>,
    v: &mut impl Visitor,
) -> Result<Ending, pulse_format::Error> {
    replay_holding(reader, v, MAX_HELD_DECODED)
}

/// [`replay`], holding records decoded within `limit`.
fn replay_holding<R: Read>(
    reader: &mut Reader<R>,
    v: &mut impl Visitor,
    limit: Limit,
) -> Result<Ending, pulse_format::Error> {
    let mut merger = Merger::default();
    let mut here = Here { merger: &mut merger, v };
    let end = read(reader, &mut here, limit)?;
    here.merger.flush(u64::MAX, here.v);
    Ok(end)
}

/// The merge on the reading thread: each chunk merged into `v` as it is read.
struct Here<'a, V> {
    merger: &'a mut Merger,
    v: &'a mut V,
}

impl<V: Visitor> Chunks for Here<'_, V> {
    fn pool(&mut self) -> &mut Pool {
        &mut self.merger.pool
    }

    fn held(&self) -> &HeldBytes {
        &self.merger.held
    }

    fn define(&mut self, r: Record) {
        self.v.definition(r);
    }

    fn chunk(&mut self, chunk: Scanned) -> bool {
        self.merger.scanned(chunk, self.v);
        true
    }
}

/// [`replay`] on two threads where `jobs` is 2 or more: this one reads,
/// checks, decompresses and decodes each chunk (its definitions, its
/// latest timestamp, its records kept decoded within the bound) and hands
/// it to a second, which merges the threads' events in timestamp order
/// into `v` (the profile's state). The reading runs ahead by at most
/// [`CHUNKS_QUEUED`] pieces (chunks, and batches of a chunk's
/// definitions); the visitor sees the same calls in the same order as on
/// one thread. `jobs` of 1 is `replay` itself.
///
/// Handing the events themselves to a third thread, for the state alone,
/// was measured and dropped: moving 80 bytes an event between cores cost
/// more than the split gained (docs/PERFORMANCE.md). What goes back the
/// other way is smaller: the work the state sets aside ([`Visitor::aside`]),
/// which this thread does between chunks.
pub(crate) fn replay_jobs<R: Read, V: Visitor + Send>(
    reader: &mut Reader<R>,
    v: &mut V,
    jobs: usize,
) -> Result<Ending, pulse_format::Error> {
    if jobs < 2 {
        return replay(reader, v);
    }
    let (piece_tx, piece_rx) = mpsc::sync_channel::<Piece>(CHUNKS_QUEUED);
    let (spare_tx, spare_rx) = mpsc::channel::<Buffer>();
    let merger = Merger::default();
    let held = merger.held.clone();
    // Set when the reading fails: the merge then stops, as one thread's
    // replay returns the error without merging what it held.
    let failed = std::sync::atomic::AtomicBool::new(false);
    let mut away = v.aside();
    let result = std::thread::scope(|scope| {
        let state = &mut *v;
        let failed = &failed;
        let merging = std::thread::Builder::new()
            .name(String::from("pulse-merge"))
            .spawn_scoped(scope, move || merge(merger, piece_rx, spare_tx, failed, state))
            .ok()?;
        let mut queued = Queued {
            pieces: piece_tx,
            spare: spare_rx,
            pool: Pool::default(),
            held,
            definitions: Vec::new(),
            gone: false,
            away: away.as_mut(),
        };
        let result = read(reader, &mut queued, MAX_HELD_DECODED);
        failed.store(result.is_err(), std::sync::atomic::Ordering::Relaxed);
        // Closing the queue ends the merge, once it has taken every chunk
        // and emitted what it held; meanwhile this thread counts what the
        // state sets aside.
        let away = queued.away.take();
        drop(queued);
        if let Some(away) = away {
            while !merging.is_finished() {
                away.wait(WAITING);
            }
        }
        join(merging);
        Some(result)
    });
    if let Some(away) = away {
        v.aside_done(away);
    }
    // No thread to be had: the whole replay on this one.
    result.unwrap_or_else(|| replay(reader, v))
}

/// Waits for a stage's thread; its panic goes on in this one.
fn join(stage: std::thread::ScopedJoinHandle<'_, ()>) {
    if let Err(panic) = stage.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Pieces (chunks read and decoded, and batches of their definitions)
/// waiting for the merge. With two, the merge often found the queue empty
/// while the reading thread decompressed a chunk, and its thread, woken
/// again, ran at half speed (a generated session of 10 M events took
/// 1.9–2.1 s on two threads against 1.35–1.45 s on one); with eight,
/// 0.93–0.98 s. What waits here is part of the session's decoded bytes,
/// and the records held decoded count against their bound.
const CHUNKS_QUEUED: usize = 8;

/// A chunk read and scanned, as the reading stage hands it to the merge.
struct Scanned {
    thread: u64,
    round: u64,
    offset: u64,
    /// Its timed records, if it has any.
    content: Option<Content>,
    /// Its largest timestamp.
    max: Option<u64>,
}

/// How many bytes of records may be held decoded (see [`Compact`]): past
/// it, a chunk is held as its bytes.
#[derive(Debug, Clone, Copy)]
struct Limit {
    most: usize,
    /// No more than this many times the session's decoded bytes read so
    /// far either.
    per_byte: usize,
}

/// 32 MiB, and never more than twice the session's decoded bytes, so that
/// what a command costs stays bounded by the session's size
/// (docs/RELIABILITY.md, "Cost per byte").
const MAX_HELD_DECODED: Limit = Limit { most: 32 << 20, per_byte: 2 };

/// The bytes of records held decoded, counted by the reading stage as it
/// hands them over and by the merge as they are used up.
type HeldBytes = std::sync::Arc<std::sync::atomic::AtomicUsize>;

/// Where [`read`] hands the chunks it scanned.
trait Chunks {
    /// Used-up buffers, for the next chunks.
    fn pool(&mut self) -> &mut Pool;
    /// The bytes of records held decoded.
    fn held(&self) -> &HeldBytes;
    /// A definition of the chunk being read, before the chunk itself.
    fn define(&mut self, r: Record);
    /// Takes `chunk`; `false` when no more are wanted.
    fn chunk(&mut self, chunk: Scanned) -> bool;
}

/// A used-up buffer, handed back for another chunk.
enum Buffer {
    Bytes(Vec<u8>),
    Decoded(Compact),
}

/// Buffers of used-up runs kept for reuse.
#[derive(Default)]
struct Pool {
    bytes: Vec<Vec<u8>>,
    decoded: Vec<Compact>,
}

impl Pool {
    fn bytes(&mut self) -> Vec<u8> {
        self.bytes.pop().unwrap_or_default()
    }

    fn decoded(&mut self) -> Compact {
        self.decoded.pop().unwrap_or_default()
    }

    /// Keeps `buffer` for a later chunk, unless enough are kept already or
    /// it is too large to keep.
    fn give(&mut self, buffer: Buffer) {
        match buffer {
            Buffer::Bytes(mut body) => {
                if self.bytes.len() < SPARE_RUNS && body.capacity() <= SPARE_CAPACITY {
                    body.clear();
                    self.bytes.push(body);
                }
            }
            Buffer::Decoded(mut c) => {
                if self.decoded.len() < SPARE_DECODED && c.capacity() <= MAX_HELD_DECODED.most {
                    c.clear();
                    self.decoded.push(c);
                }
            }
        }
    }
}

/// Decoded buffers kept for reuse.
const SPARE_DECODED: usize = 4;

/// What the reading stage hands the merge: a chunk's definitions, a few
/// at a time as they are read, then the chunk.
enum Piece {
    Definitions(Vec<Record>),
    /// Boxed: a piece crosses the queue by value, and most are chunks.
    Chunk(Box<Scanned>),
}

/// How long the reading thread, waiting on the merge, waits for work set
/// aside before it looks again whether the merge has moved on.
const WAITING: std::time::Duration = std::time::Duration::from_millis(1);

/// Definitions handed to the merge at a time: a chunk of nothing else
/// holds millions (a few bytes each in the file, 88 bytes a `Record`), and
/// the queue holds [`CHUNKS_QUEUED`] pieces.
const DEFINITIONS_A_PIECE: usize = 256;

/// The reading stage's side of [`replay_jobs`]: the queue to the merge,
/// and the work the merge's visitor set aside.
struct Queued<'a> {
    pieces: mpsc::SyncSender<Piece>,
    spare: mpsc::Receiver<Buffer>,
    pool: Pool,
    held: HeldBytes,
    definitions: Vec<Record>,
    /// The merge is gone (it panicked, which `join` passes on).
    gone: bool,
    away: Option<&'a mut Away>,
}

impl Queued<'_> {
    /// Sends `piece`, doing the work set aside while the queue is full.
    fn send(&mut self, mut piece: Piece) {
        let Some(away) = &mut self.away else {
            self.gone = self.gone || self.pieces.send(piece).is_err();
            return;
        };
        loop {
            match self.pieces.try_send(piece) {
                Ok(()) => return,
                Err(mpsc::TrySendError::Disconnected(_)) => {
                    self.gone = true;
                    return;
                }
                Err(mpsc::TrySendError::Full(p)) => piece = p,
            }
            away.wait(WAITING);
        }
    }

    fn send_definitions(&mut self) {
        if !self.definitions.is_empty() {
            let batch =
                std::mem::replace(&mut self.definitions, Vec::with_capacity(DEFINITIONS_A_PIECE));
            self.send(Piece::Definitions(batch));
        }
    }
}

impl Chunks for Queued<'_> {
    fn pool(&mut self) -> &mut Pool {
        while let Ok(b) = self.spare.try_recv() {
            self.pool.give(b);
        }
        &mut self.pool
    }

    fn held(&self) -> &HeldBytes {
        &self.held
    }

    fn define(&mut self, r: Record) {
        self.definitions.push(r);
        if self.definitions.len() >= DEFINITIONS_A_PIECE {
            self.send_definitions();
        }
    }

    fn chunk(&mut self, chunk: Scanned) -> bool {
        self.send_definitions();
        self.send(Piece::Chunk(Box::new(chunk)));
        if let Some(away) = &mut self.away {
            away.work();
        }
        !self.gone
    }
}

/// Reads every frame of `reader`, scans each chunk and hands it on, in the
/// file's order, its records held decoded within `limit`.
fn read<R: Read>(
    reader: &mut Reader<R>,
    out: &mut impl Chunks,
    limit: Limit,
) -> Result<Ending, pulse_format::Error> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut end = Ending::default();
    loop {
        let before = usize::try_from(reader.decoded_len()).unwrap_or(usize::MAX);
        match reader.next_raw() {
            Ok(Some(RawFrame::Chunk(chunk))) => {
                end.chunks += 1;
                let read = before.saturating_add(chunk.body().len());
                let allowance = (limit.most)
                    .min(read.saturating_mul(limit.per_byte))
                    .saturating_sub(out.held().load(Relaxed));
                let compact = out.pool().decoded();
                let counts = &mut end.record_counts;
                let s = scan(&chunk, counts, |r| out.define(r), compact, allowance)?;
                let content = match s.compact {
                    Some(compact) if s.timed => {
                        out.held().fetch_add(compact.bytes(), Relaxed);
                        Some(Content::Decoded { compact, at: At::default() })
                    }
                    _ if s.timed => {
                        let mut body = out.pool().bytes();
                        body.extend_from_slice(chunk.body());
                        Some(Content::Bytes { body, decoder: chunk.decoder(), head: None })
                    }
                    Some(compact) => {
                        out.pool().give(Buffer::Decoded(compact));
                        None
                    }
                    None => None,
                };
                let (thread, round, offset) = (chunk.thread, chunk.round, chunk.offset);
                let max = s.max;
                if !out.chunk(Scanned { thread, round, offset, content, max }) {
                    break;
                }
            }
            Ok(Some(RawFrame::Trailer(t))) => end.trailer = Some(t),
            Ok(None) => break,
            Err(e) if e.is_truncation() => {
                end.truncated = Some(e);
                break;
            }
            Err(e) => return Err(e),
        }
    }
    end.decoded_len = reader.decoded_len();
    Ok(end)
}

/// The merging stage of [`replay_jobs`]: the chunks merged into `v` as
/// [`replay`] merges them, until the queue closes or the reading `failed`;
/// the used-up chunks' buffers go back to the reading stage.
fn merge(
    mut merger: Merger,
    pieces: mpsc::Receiver<Piece>,
    spare: mpsc::Sender<Buffer>,
    failed: &std::sync::atomic::AtomicBool,
    v: &mut impl Visitor,
) {
    let failed = || failed.load(std::sync::atomic::Ordering::Relaxed);
    for piece in pieces {
        if failed() {
            return;
        }
        let chunk = match piece {
            Piece::Definitions(definitions) => {
                definitions.into_iter().for_each(|r| v.definition(r));
                continue;
            }
            Piece::Chunk(chunk) => *chunk,
        };
        merger.scanned(chunk, v);
        let Pool { bytes, decoded } = &mut merger.pool;
        for b in bytes.drain(..).map(Buffer::Bytes).chain(decoded.drain(..).map(Buffer::Decoded)) {
            // The reading stage may be done.
            let _ = spare.send(b);
        }
    }
    if !failed() {
        merger.flush(u64::MAX, v);
    }
}

/// Replays `input` through the decoder and the merge into a visitor that
/// only counts: the replay without its state, for the bench's breakdown.
pub(crate) fn merge_only(input: impl Read) -> Result<u64, pulse_format::Error> {
    #[derive(Default)]
    struct Count(u64);

    impl Visitor for Count {
        fn definition(&mut self, r: Record) {
            std::hint::black_box(r);
        }
        fn event(&mut self, thread: Thread, e: Event) {
            self.0 = self.0.wrapping_add(e.ts() ^ thread.ix as u64);
        }
        fn record(&mut self, _: Thread, r: Record) {
            std::hint::black_box(r);
        }
        fn realloc_release(&mut self, _: Thread, ts: u64, _: u64) {
            self.0 = self.0.wrapping_add(ts);
        }
    }

    let mut reader = Reader::new(input)?;
    let mut count = Count::default();
    replay(&mut reader, &mut count)?;
    Ok(count.0)
}

/// One chunk's held records, as they wait to go out: in the chunk's
/// payload as stored (a byte or two a record, decoded again as they go
/// out, the next one decoded ahead) or decoded once already (see
/// [`Compact`]).
#[derive(Debug)]
struct Run {
    content: Content,
    /// The chunk's frame, for the error a record cannot have twice.
    offset: u64,
}

/// What a run holds of its chunk's records.
#[derive(Debug)]
enum Content {
    /// `head`: the next timed record, decoded; `None` once used up.
    Bytes {
        body: Vec<u8>,
        decoder: Decoder,
        head: Option<Held>,
    },
    Decoded {
        compact: Compact,
        at: At,
    },
}

impl Run {
    /// A run of `content`, at its first timed record.
    fn new(content: Content, offset: u64) -> Run {
        let mut run = Run { content, offset };
        run.fill();
        run
    }

    /// The next timed record, read where it is held, and the words it
    /// takes in a decoded run; `None` once the run is used up.
    #[inline(always)]
    fn front(&self) -> Option<(Front, usize)> {
        match &self.content {
            Content::Decoded { compact, at } => at.front(compact),
            Content::Bytes { head, .. } => match head.as_ref()? {
                Held::Event(e) => Some((Front::Event(*e), 0)),
                Held::Record(ts, _) => Some((Front::Record(*ts), 0)),
            },
        }
    }

    /// Past the front, an event that took `len` words.
    #[inline(always)]
    fn pass(&mut self, len: usize) {
        match &mut self.content {
            Content::Decoded { at, .. } => at.pass(len),
            Content::Bytes { .. } => self.fill(),
        }
    }

    /// The front, a record with data, moved out; the run moves past it.
    fn take(&mut self) -> Option<Record> {
        match &mut self.content {
            Content::Decoded { compact, at } => at.take(compact),
            Content::Bytes { head, .. } => {
                let held = head.take();
                self.fill();
                match held {
                    Some(Held::Record(_, r)) => Some(*r),
                    _ => None,
                }
            }
        }
    }

    /// Decodes the next timed record of a run held as bytes into its
    /// head. Definitions were applied on arrival and are passed over; the
    /// chunk decoded whole on arrival, so no error can come now.
    fn fill(&mut self) {
        let Content::Bytes { body, decoder, head } = &mut self.content else { return };
        *head = loop {
            match decoder.next(body, self.offset) {
                Ok(Some(Decoded::Event(e))) => break Some(Held::Event(e)),
                Ok(Some(Decoded::Record(r))) => {
                    if let Some(ts) = r.ts() {
                        break Some(Held::Record(ts, Box::new(r)));
                    }
                }
                Ok(None) | Err(_) => break None,
            }
        };
    }
}

/// One thread's held events, in its own order: its chunks' runs, oldest
/// first (none of them used up).
#[derive(Debug, Default)]
struct Queue {
    id: u64,
    runs: VecDeque<Run>,
    /// The front is a moving reallocation whose release half was emitted.
    released: bool,
}

impl Queue {
    /// The timestamp the front is merged at, if any.
    fn key(&self) -> Option<u64> {
        Some(key(&self.runs.front()?.front()?.0, self.released))
    }
}

/// The timestamp `h` is merged at: a moving reallocation's release (not
/// yet `released`) comes first, at the time it was called.
#[inline(always)]
fn key(f: &Front, released: bool) -> u64 {
    match *f {
        Front::Event(Event::Realloc { ts, start_ts, old_addr, new_addr, .. })
            if old_addr != new_addr && !released =>
        {
            start_ts.min(ts)
        }
        Front::Event(e) => e.ts(),
        Front::Record(ts) => ts,
    }
}

/// A chunk's first pass, on arrival: its definitions handed to `define`,
/// its records counted, the largest timestamp of its timed ones, and its
/// timed records kept in `compact` while that takes at most `allowance`
/// bytes (past it, `compact` is given up, and the chunk's bytes kept).
struct Scan<'a, F> {
    /// The largest timestamp, if `timed`.
    max: u64,
    timed: bool,
    counts: &'a mut [u64; RecordKind::ALL.len()],
    define: F,
    compact: Option<Compact>,
    allowance: usize,
}

impl<F: FnMut(Record)> Scan<'_, F> {
    #[inline(always)]
    fn timed(&mut self, ts: u64) {
        self.max = self.max.max(ts);
        self.timed = true;
    }

    /// Gives the compact form up where it outgrew its allowance.
    #[inline(always)]
    fn check(&mut self) {
        if self.compact.as_ref().is_some_and(|c| c.bytes() > self.allowance) {
            self.compact = None;
        }
    }
}

impl<F: FnMut(Record)> Sink for Scan<'_, F> {
    #[inline(always)]
    fn event(&mut self, e: Event) {
        self.counts[e.kind().index()] += 1;
        self.timed(e.ts());
        if let Some(c) = &mut self.compact {
            c.event(e);
            self.check();
        }
    }

    fn record(&mut self, r: Record) {
        self.counts[r.kind().index()] += 1;
        match r.ts() {
            Some(ts) => {
                self.timed(ts);
                if let Some(c) = &mut self.compact {
                    c.record(ts, r);
                    self.check();
                }
            }
            None => (self.define)(r),
        }
    }
}

/// What [`scan`] found of a chunk.
struct Found {
    max: Option<u64>,
    timed: bool,
    /// Its timed records, where they fit the allowance.
    compact: Option<Compact>,
}

/// Scans `chunk` (see [`Scan`]), its timed records kept in `compact` (an
/// empty one) if they fit in `allowance` bytes.
fn scan(
    chunk: &RawChunk<'_>,
    counts: &mut [u64; RecordKind::ALL.len()],
    define: impl FnMut(Record),
    compact: Compact,
    allowance: usize,
) -> Result<Found, pulse_format::Error> {
    let compact = Some(compact);
    let mut scan = Scan { max: 0, timed: false, counts, define, compact, allowance };
    chunk.decode(&mut scan)?;
    let max = scan.timed.then_some(scan.max);
    Ok(Found { max, timed: scan.timed, compact: scan.compact })
}

/// Buffers of used-up runs kept for reuse: one per chunk held at most,
/// which is a few per thread running at once.
const SPARE_RUNS: usize = 32;

/// A used-up run's buffer larger than this is given back rather than kept
/// (the writer's chunks hold about 1 MiB).
const SPARE_CAPACITY: usize = 4 << 20;

#[derive(Default)]
struct Merger {
    /// One per thread, by dense index.
    queues: Vec<Queue>,
    by_id: HashMap<u64, usize>,
    pool: Pool,
    /// The bytes of records held decoded, shared with the reading stage.
    held: HeldBytes,
    /// Every queue holding events, at the key of its front: a queue's front
    /// changes only when it is emitted or when the queue, empty, receives a
    /// run, so the heap is kept across flushes rather than rebuilt from
    /// every thread at each.
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    /// The largest timestamp seen in each round still held.
    round_max: BTreeMap<u64, u64>,
    highest_round: Option<u64>,
}

impl Merger {
    /// Takes in one chunk (its definitions applied already): holds its
    /// timed records, and emits what is now complete.
    fn scanned(&mut self, chunk: Scanned, v: &mut impl Visitor) {
        let q = self.queue(chunk.thread);
        if let Some(content) = chunk.content {
            self.hold(q, content, chunk.offset);
        }
        self.pushed(chunk.round, chunk.max, v);
    }

    /// The queue of `thread`.
    fn queue(&mut self, thread: u64) -> usize {
        let next = self.queues.len();
        let q = *self.by_id.entry(thread).or_insert(next);
        if q == next {
            self.queues.push(Queue { id: thread, ..Queue::default() });
        }
        q
    }

    /// Holds a chunk's records (which hold a timed one) at the back of
    /// queue `q`.
    fn hold(&mut self, q: usize, content: Content, offset: u64) {
        let run = Run::new(content, offset);
        if run.front().is_none() {
            Self::used_up(&mut self.pool, &self.held, run);
            return;
        }
        let queue = &mut self.queues[q];
        queue.runs.push_back(run);
        if queue.runs.len() == 1 {
            if let Some(k) = queue.key() {
                self.heap.push(Reverse((k, queue.id, q)));
            }
        }
    }

    /// Gives a used-up run's buffer back to `pool`.
    fn used_up(pool: &mut Pool, held: &HeldBytes, run: Run) {
        match run.content {
            Content::Bytes { body, .. } => pool.give(Buffer::Bytes(body)),
            Content::Decoded { compact, .. } => {
                held.fetch_sub(compact.bytes(), std::sync::atomic::Ordering::Relaxed);
                pool.give(Buffer::Decoded(compact));
            }
        }
    }

    /// A chunk of round `round` whose largest timestamp was `max` came in:
    /// emits what is now complete.
    fn pushed(&mut self, round: u64, max: Option<u64>, v: &mut impl Visitor) {
        let new_round = self.highest_round.is_none_or(|h| round > h);
        if let Some(m) = max {
            let e = self.round_max.entry(round).or_insert(m);
            *e = (*e).max(m);
        }
        if new_round {
            self.highest_round = Some(round);
            // Everything up to the last timestamp of round `round - 2` is complete.
            if round >= 2 {
                let keep = self.round_max.split_off(&round.saturating_sub(1));
                let done = std::mem::replace(&mut self.round_max, keep);
                if let Some(threshold) = done.into_values().max() {
                    self.flush(threshold, v);
                }
            }
        }
    }

    /// Emits, in timestamp order, every held event up to `threshold`: each
    /// thread's events in its own order, the earliest front first (ties:
    /// the lower thread id). A run of one thread's events that no other
    /// thread's front precedes goes out without touching the heap.
    fn flush(&mut self, threshold: u64, v: &mut impl Visitor) {
        while let Some(&Reverse((k, id, i))) = self.heap.peek() {
            if k > threshold {
                break;
            }
            self.heap.pop();
            let limit = self.heap.peek().map(|Reverse((k, id, _))| (*k, *id));
            let thread = Thread { id, ix: i };
            let Queue { runs, released, .. } = &mut self.queues[i];
            // The heap's earliest front goes out; the events after it follow
            // while they come before every other front.
            let mut first = true;
            'queue: while let Some(run) = runs.front_mut() {
                while let Some((f, len)) = run.front() {
                    if !first {
                        let k = key(&f, *released);
                        if k > threshold || limit.is_some_and(|l| (k, id) > l) {
                            self.heap.push(Reverse((k, id, i)));
                            break 'queue;
                        }
                    }
                    first = false;
                    match f {
                        Front::Event(Event::Realloc {
                            ts, start_ts, old_addr, new_addr, ..
                        }) if old_addr != new_addr && !*released => {
                            *released = true;
                            v.realloc_release(thread, start_ts.min(ts), old_addr);
                        }
                        Front::Event(e) => {
                            *released = false;
                            v.event(thread, e);
                            run.pass(len);
                        }
                        Front::Record(_) => match run.take() {
                            Some(r) => v.record(thread, r),
                            // Not so: the front was a record. A run that
                            // had none would not move; it is used up.
                            None => break,
                        },
                    }
                }
                if let Some(run) = runs.pop_front() {
                    Self::used_up(&mut self.pool, &self.held, run);
                }
            }
            if runs.is_empty() {
                *runs = VecDeque::new();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Log(Vec<(u64, u64)>);

    impl Visitor for Log {
        fn definition(&mut self, _: Record) {}
        fn event(&mut self, thread: Thread, e: Event) {
            self.0.push((thread.id, e.ts()));
        }
        fn record(&mut self, thread: Thread, r: Record) {
            self.0.push((thread.id, r.ts().unwrap()));
        }
        fn realloc_release(&mut self, thread: Thread, ts: u64, _: u64) {
            self.0.push((thread.id, ts));
        }
    }

    fn ev(ts: u64) -> Record {
        Record::Pause { ts }
    }

    /// What `replay` does with one chunk of `records`.
    fn push(m: &mut Merger, thread: u64, round: u64, records: Vec<Record>, v: &mut impl Visitor) {
        push_holding(m, thread, round, records, v, MAX_HELD_DECODED);
    }

    /// [`push`], holding records decoded within `limit`.
    fn push_holding(
        m: &mut Merger,
        thread: u64,
        round: u64,
        records: Vec<Record>,
        v: &mut impl Visitor,
        limit: Limit,
    ) {
        let mut w = pulse_format::Writer::new(Vec::new(), &Default::default()).unwrap();
        let mut enc = pulse_format::ChunkEncoder::new();
        enc.begin(thread, round);
        for r in &records {
            enc.push(r);
        }
        w.write_chunk(&enc).unwrap();
        let bytes = w.finish(Trailer::default()).unwrap();
        let mut reader = Reader::new(&bytes[..]).unwrap();
        read(&mut reader, &mut Here { merger: m, v }, limit).unwrap();
    }

    /// Timed records held.
    fn held(m: &Merger) -> usize {
        let mut n = 0;
        for run in m.queues.iter().flat_map(|q| &q.runs) {
            match &run.content {
                Content::Bytes { body, decoder, head } => {
                    n += usize::from(head.is_some());
                    let mut d = decoder.clone();
                    while let Ok(Some(r)) = d.next(body, 0) {
                        n += usize::from(!matches!(r, Decoded::Record(r) if r.ts().is_none()));
                    }
                }
                Content::Decoded { compact, at } => {
                    let (mut c, mut at) = (compact.clone(), *at);
                    while at.next(&mut c).is_some() {
                        n += 1;
                    }
                }
            }
        }
        n
    }

    #[test]
    fn a_late_round_is_merged_back_into_timestamp_order() {
        let mut m = Merger::default();
        let mut log = Log::default();
        // Thread 2's event at ts 15 was drained a round after thread 1's at ts 20.
        push(&mut m, 1, 0, vec![ev(10), ev(20)], &mut log);
        push(&mut m, 2, 1, vec![ev(15), ev(30)], &mut log);
        push(&mut m, 1, 1, vec![ev(25)], &mut log);
        push(&mut m, 1, 2, vec![ev(40)], &mut log);
        m.flush(u64::MAX, &mut log);
        let ts: Vec<u64> = log.0.iter().map(|e| e.1).collect();
        assert_eq!(ts, [10, 15, 20, 25, 30, 40]);
    }

    #[test]
    fn each_thread_keeps_its_own_order_even_if_its_clock_steps_back() {
        let mut m = Merger::default();
        let mut log = Log::default();
        push(&mut m, 1, 0, vec![ev(10), ev(9), ev(11)], &mut log);
        m.flush(u64::MAX, &mut log);
        assert_eq!(log.0, [(1, 10), (1, 9), (1, 11)]);
    }

    #[test]
    fn runs_interleave_as_one_event_at_a_time_would() {
        let mut m = Merger::default();
        let mut log = Log::default();
        let names = |ts| Record::ThreadStart { ts, name: String::new() };
        push(&mut m, 2, 0, vec![names(1), ev(5), ev(6), ev(20), ev(20), ev(31)], &mut log);
        push(&mut m, 1, 0, vec![ev(2), ev(20), ev(21), ev(30)], &mut log);
        let moving = Record::Realloc {
            ts: 40,
            start_ts: 3,
            old_addr: 1,
            old_size: 1,
            new_addr: 2,
            new_size: 2,
            align: 1,
            site: 0,
        };
        push(&mut m, 3, 0, vec![moving, ev(41)], &mut log);
        m.flush(u64::MAX, &mut log);
        // Equal timestamps: the lower thread id first; the release half at its call.
        assert_eq!(
            log.0,
            [
                (2, 1),
                (1, 2),
                (3, 3),
                (2, 5),
                (2, 6),
                (1, 20),
                (2, 20),
                (2, 20),
                (1, 21),
                (1, 30),
                (2, 31),
                (3, 40),
                (3, 41)
            ]
        );
    }

    #[derive(Default)]
    struct Everything(Vec<(u64, Record)>);

    impl Visitor for Everything {
        fn definition(&mut self, _: Record) {}
        fn event(&mut self, thread: Thread, e: Event) {
            self.0.push((thread.id, e.into()));
        }
        fn record(&mut self, thread: Thread, r: Record) {
            self.0.push((thread.id, r));
        }
        fn realloc_release(&mut self, thread: Thread, ts: u64, addr: u64) {
            self.0.push((thread.id, Record::Free { ts, addr, size: u64::MAX }));
        }
    }

    #[test]
    fn every_event_comes_back_as_it_went_in() {
        let realloc = |ts, start_ts, old_addr, new_addr, align| Record::Realloc {
            ts,
            start_ts,
            old_addr,
            old_size: 7,
            new_addr,
            new_size: u64::MAX,
            align,
            site: u32::MAX,
        };
        let alloc = |ts, align, weight| Record::Alloc {
            ts,
            addr: u64::MAX - ts,
            size: ts * 3,
            align,
            site: 9,
            weight,
        };
        let records = vec![
            Record::ThreadStart { ts: 1, name: "t".into() },
            alloc(2, 16, 1),
            alloc(3, 1 << 63, 1),
            alloc(4, 8, 5),
            alloc(5, 0, 1),
            alloc(6, 24, 1),
            Record::Free { ts: 7, addr: 1, size: 2 },
            realloc(10, 8, 0x100, 0x100, 8),
            realloc(11, 9, 0x100, 0x200, 8),
            realloc(12, 12, 0x200, 0x300, 3),
            realloc(13, 13, 0x300, 0x300, 0),
            Record::ScopeEnter { ts: 14, scope: u32::MAX },
            Record::Counters { ts: 15, scope: 1, values: vec![1, 2] },
            Record::ScopeExit { ts: 16, scope: 3 },
            Record::Pause { ts: 17 },
            Record::Resume { ts: 18 },
            Record::AllocFailed { ts: 19, size: u64::MAX, align: 3 },
            Record::Span { ts: 20, start_ts: 2, scope: 4 },
            Record::ThreadEnd { ts: 21 },
        ];
        // Held as the chunk's bytes and held decoded.
        for most in [0, usize::MAX] {
            let mut m = Merger::default();
            let mut got = Everything::default();
            let limit = Limit { most, per_byte: usize::MAX };
            push_holding(&mut m, 5, 0, records.clone(), &mut got, limit);
            let decoded = matches!(m.queues[0].runs[0].content, Content::Decoded { .. });
            assert_eq!(decoded, most > 0);
            m.flush(u64::MAX, &mut got);
            the_same_came_back(got, &records);
        }
    }

    #[test]
    fn a_session_replays_the_same_held_decoded_or_as_bytes() {
        // Three threads over forty rounds, every third chunk a round late;
        // blocks freed soon and on other threads, moving reallocations.
        let mut w = pulse_format::Writer::new(Vec::new(), &Default::default()).unwrap();
        let mut enc = pulse_format::ChunkEncoder::new();
        let mut ts = 0;
        let mut late: Vec<(u64, u64, Vec<Record>)> = Vec::new();
        for round in 0..40u64 {
            for thread in 1..=3u64 {
                let mut records = Vec::new();
                for i in 0..500u64 {
                    ts += 1 + i % 7;
                    let addr = 0x1000 * thread + (i % 50) * 16;
                    records.push(match i % 5 {
                        0 | 1 => Record::Alloc { ts, addr, size: i, align: 8, site: 1, weight: 1 },
                        2 => Record::Free { ts, addr: addr - 16, size: i },
                        3 => Record::Realloc {
                            ts: ts + 2,
                            start_ts: ts,
                            old_addr: addr,
                            old_size: 1,
                            new_addr: addr + 0x10_0000,
                            new_size: 2,
                            align: 16,
                            site: 2,
                        },
                        _ => Record::ScopeEnter { ts, scope: thread as u32 },
                    });
                }
                late.push((thread, round + u64::from((round + thread) % 3 == 0), records));
            }
            // The late ones last.
            late.sort_by_key(|(_, r, _)| *r);
            for (thread, r, records) in late.drain(..) {
                enc.begin(thread, r);
                for rec in &records {
                    enc.push(rec);
                }
                w.write_chunk(&enc).unwrap();
            }
        }
        let bytes = w.finish(Trailer::default()).unwrap();
        let replayed = |limit: Limit| {
            let mut got = Everything::default();
            replay_holding(&mut Reader::new(&bytes[..]).unwrap(), &mut got, limit).unwrap();
            got.0
        };
        let as_bytes = replayed(Limit { most: 0, per_byte: 0 });
        assert_eq!(as_bytes.len(), 40 * 3 * 600);
        assert_eq!(replayed(MAX_HELD_DECODED), as_bytes);
        assert_eq!(replayed(Limit { most: usize::MAX, per_byte: usize::MAX }), as_bytes);
    }

    fn the_same_came_back(got: Everything, records: &[Record]) {
        let releases: Vec<(u64, u64)> = got
            .0
            .iter()
            .filter_map(|(_, r)| match r {
                Record::Free { ts, addr, size: u64::MAX } => Some((*ts, *addr)),
                _ => None,
            })
            .collect();
        // The moving ones, each released at its call, before its own record.
        assert_eq!(releases, [(9, 0x100), (12, 0x200)]);
        let events: Vec<Record> = got
            .0
            .into_iter()
            .filter(|(_, r)| !matches!(r, Record::Free { size: u64::MAX, .. }))
            .map(|(t, r)| {
                assert_eq!(t, 5);
                r
            })
            .collect();
        assert_eq!(events, records);
    }

    #[test]
    fn a_chunk_is_held_as_its_bytes_and_its_definitions_applied_on_arrival() {
        #[derive(Default)]
        struct Defs(Vec<Record>, Vec<u64>);
        impl Visitor for Defs {
            fn definition(&mut self, r: Record) {
                self.0.push(r);
            }
            fn event(&mut self, _: Thread, e: Event) {
                self.1.push(e.ts());
            }
            fn record(&mut self, _: Thread, r: Record) {
                self.1.push(r.ts().unwrap());
            }
            fn realloc_release(&mut self, _: Thread, _: u64, _: u64) {}
        }
        let mut m = Merger::default();
        let mut v = Defs::default();
        let def = Record::ScopeDef {
            scope: 1,
            name: "s".into(),
            category: String::new(),
            description: String::new(),
            priority: 0,
        };
        push(&mut m, 0, 0, vec![def.clone()], &mut v);
        assert!(m.queues[0].runs.is_empty(), "definitions only: nothing held");
        let pauses: Vec<Record> = (0..1000).map(ev).collect();
        let mut mixed = pauses.clone();
        mixed.insert(500, def.clone());
        // Past what may be held decoded (twice the session's bytes so far).
        push(&mut m, 1, 0, mixed, &mut v);
        assert_eq!(v.0, [def.clone(), def], "on arrival, before the events go out");
        assert!(v.1.is_empty());
        // Held as its bytes: about three a record (the tag, and the
        // timestamp's low byte and rest), not a 64-byte event each.
        let Content::Bytes { body, .. } = &m.queues[1].runs[0].content else {
            panic!("held decoded")
        };
        assert!(body.len() < 3_100, "{} bytes", body.len());
        assert_eq!(held(&m), 1000);
        m.flush(u64::MAX, &mut v);
        assert_eq!(v.1, (0..1000).collect::<Vec<u64>>());
        assert_eq!(held(&m), 0);
    }

    #[test]
    fn memory_holds_at_most_two_rounds() {
        let mut m = Merger::default();
        let mut log = Log::default();
        for round in 0..100u64 {
            push(&mut m, 1 + round % 3, round, vec![ev(round * 10), ev(round * 10 + 5)], &mut log);
            assert!(held(&m) <= 6);
            assert!(m.heap.len() <= 3);
        }
    }

    /// The buffers of held decoded runs and of the pool, spare capacity
    /// included, stay within twice the bound on records held decoded: a
    /// buffer that grew for a large chunk and went back to the pool counts
    /// at its size when a small chunk reuses it. Each round, five one-event
    /// chunks on threads 2-6, then a large chunk of allocations on thread 1.
    #[test]
    fn buffers_held_decoded_stay_within_the_bound_at_their_size() {
        let most = 1 << 20;
        let limit = Limit { most, per_byte: usize::MAX };
        let mut m = Merger::default();
        let mut log = Log::default();
        let capacity = |m: &Merger| -> usize {
            let held: usize = m
                .queues
                .iter()
                .flat_map(|q| &q.runs)
                .map(|r| match &r.content {
                    Content::Decoded { compact, .. } => compact.capacity(),
                    Content::Bytes { .. } => 0,
                })
                .sum();
            held + m.pool.decoded.iter().map(Compact::capacity).sum::<usize>()
        };
        let mut worst = 0;
        for round in 0..30u64 {
            let base = round * 1_000_000;
            let tiny = |t: u64| vec![ev(base + if t == 2 { 900_000 } else { 500_000 + 10 - t })];
            for t in 2..=6u64 {
                push_holding(&mut m, t, round, tiny(t), &mut log, limit);
            }
            let big: Vec<Record> = (0..14_000)
                .map(|i| Record::Alloc {
                    ts: base + 10 + i,
                    addr: 0x1000 + 16 * i,
                    size: 16,
                    align: 8,
                    site: 1,
                    weight: 1,
                })
                .collect();
            push_holding(&mut m, 1, round, big, &mut log, limit);
            worst = worst.max(capacity(&m));
        }
        assert!(worst <= 2 * most, "{worst} bytes of buffers held, bound {most}");
    }

    /// A session of `chunks` chunks of 200 events each, on three threads.
    fn session_of(chunks: u64) -> Vec<u8> {
        let mut w = pulse_format::Writer::new(Vec::new(), &Default::default()).unwrap();
        let mut enc = pulse_format::ChunkEncoder::new();
        let mut ts = 0;
        for round in 0..chunks {
            enc.begin(1 + round % 3, round);
            for _ in 0..200 {
                ts += 1;
                enc.push(&ev(ts));
            }
            w.write_chunk(&enc).unwrap();
        }
        w.finish(Trailer::default()).unwrap()
    }

    /// A visitor that panics at its thousandth event.
    struct PanicsAt(u64);

    impl Visitor for PanicsAt {
        fn definition(&mut self, _: Record) {}
        fn event(&mut self, _: Thread, _: Event) {
            self.0 += 1;
            assert!(self.0 < 1000, "the merge panics");
        }
        fn record(&mut self, _: Thread, _: Record) {}
        fn realloc_release(&mut self, _: Thread, _: u64, _: u64) {}
    }

    #[test]
    fn a_panic_in_the_merge_reaches_the_caller_and_the_reader_stops() {
        let bytes = session_of(500);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut reader = Reader::new(&bytes[..]).unwrap();
            replay_jobs(&mut reader, &mut PanicsAt(0), 2)
        }));
        assert!(r.is_err());
    }

    /// Reads `.0` 64 bytes at a time; halfway, panics or fails (`.2`).
    struct FailsHalfway<'a>(&'a [u8], usize, bool);

    impl std::io::Read for FailsHalfway<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.1 >= self.0.len() / 2 {
                assert!(!self.2, "the reading panics");
                return Err(std::io::Error::other("disk gone"));
            }
            let n = buf.len().min(64).min(self.0.len() - self.1);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn a_panic_in_the_reading_reaches_the_caller_and_the_merge_stops() {
        let bytes = session_of(500);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut reader = Reader::new(FailsHalfway(&bytes, 0, true)).unwrap();
            replay_jobs(&mut reader, &mut Log::default(), 2)
        }));
        assert!(r.is_err());
    }

    #[test]
    fn a_read_error_halfway_ends_both_stages_with_the_one_thread_error() {
        let bytes = session_of(500);
        let mut reader = Reader::new(FailsHalfway(&bytes, 0, false)).unwrap();
        let two = replay_jobs(&mut reader, &mut Log::default(), 2);
        let mut reader = Reader::new(FailsHalfway(&bytes, 0, false)).unwrap();
        let one = replay_jobs(&mut reader, &mut Log::default(), 1);
        assert!(two.is_err(), "{two:?}");
        assert_eq!(format!("{:?}", two.err()), format!("{:?}", one.err()));
    }
}
