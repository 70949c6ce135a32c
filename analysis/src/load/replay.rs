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

use rustc_hash::FxHashMap as HashMap;

use pulse_format::{
    Decoded, Decoder, Event, RawChunk, RawFrame, Reader, Record, RecordKind, Sink, Trailer,
};

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
    let mut merger = Merger::default();
    let mut end = Ending::default();
    loop {
        match reader.next_raw() {
            Ok(Some(RawFrame::Chunk(chunk))) => {
                end.chunks += 1;
                merger.chunk(&chunk, &mut end.record_counts, v)?;
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
    merger.flush(u64::MAX, v);
    end.decoded_len = reader.decoded_len();
    Ok(end)
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

/// A held record, decoded: an event, or a timed record with owned data.
#[derive(Debug)]
enum Held {
    Event(Event),
    Record(u64, Record),
}

/// One chunk's held records: its payload as stored (a byte or two a
/// record, where a decoded [`Event`] is 64 bytes), decoded again one
/// record at a time as they go out, the next one decoded ahead.
#[derive(Debug)]
struct Run {
    body: Vec<u8>,
    /// The chunk's frame, for the error a record cannot have twice.
    offset: u64,
    decoder: Decoder,
    /// The next timed record; `None` once the run is used up.
    head: Option<Held>,
}

impl Run {
    /// Decodes the next timed record into `head`. Definitions were applied
    /// on arrival and are passed over; the chunk decoded whole on arrival,
    /// so no error can come now.
    fn advance(&mut self) {
        self.head = loop {
            match self.decoder.next(&self.body, self.offset) {
                Ok(Some(Decoded::Event(e))) => break Some(Held::Event(e)),
                Ok(Some(Decoded::Record(r))) => {
                    if let Some(ts) = r.ts() {
                        break Some(Held::Record(ts, r));
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
        Some(key(self.runs.front()?.head.as_ref()?, self.released))
    }
}

/// The timestamp `h` is merged at: a moving reallocation's release (not
/// yet `released`) comes first, at the time it was called.
#[inline(always)]
fn key(h: &Held, released: bool) -> u64 {
    match *h {
        Held::Event(Event::Realloc { ts, start_ts, old_addr, new_addr, .. })
            if old_addr != new_addr && !released =>
        {
            start_ts.min(ts)
        }
        Held::Event(e) => e.ts(),
        Held::Record(ts, _) => ts,
    }
}

/// A chunk's first pass, on arrival: its definitions applied, its records
/// counted, the largest timestamp of its timed ones.
struct Scan<'a, V> {
    max: Option<u64>,
    timed: bool,
    counts: &'a mut [u64; RecordKind::ALL.len()],
    v: &'a mut V,
}

impl<V: Visitor> Sink for Scan<'_, V> {
    #[inline]
    fn event(&mut self, e: Event) {
        self.counts[e.kind().index()] += 1;
        let ts = e.ts();
        self.max = Some(self.max.map_or(ts, |m| m.max(ts)));
        self.timed = true;
    }

    fn record(&mut self, r: Record) {
        self.counts[r.kind().index()] += 1;
        match r.ts() {
            Some(ts) => {
                self.max = Some(self.max.map_or(ts, |m| m.max(ts)));
                self.timed = true;
            }
            None => self.v.definition(r),
        }
    }
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
    spare: Vec<Vec<u8>>,
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
    /// Takes in one chunk: applies its definitions, counts its records into
    /// `counts`, holds its timed records, and emits what is now complete.
    fn chunk(
        &mut self,
        chunk: &RawChunk<'_>,
        counts: &mut [u64; RecordKind::ALL.len()],
        v: &mut impl Visitor,
    ) -> Result<(), pulse_format::Error> {
        let q = self.queue(chunk.thread);
        let mut scan = Scan { max: None, timed: false, counts, v };
        chunk.decode(&mut scan)?;
        let (max, timed) = (scan.max, scan.timed);
        if timed {
            self.hold(q, chunk);
        }
        self.pushed(chunk.round, max, v);
        Ok(())
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
    fn hold(&mut self, q: usize, chunk: &RawChunk<'_>) {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.extend_from_slice(chunk.body());
        let mut run = Run { body: buf, offset: chunk.offset, decoder: chunk.decoder(), head: None };
        run.advance();
        if run.head.is_none() {
            Self::recycle(&mut self.spare, run.body);
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

    /// Gives a used-up run's buffer back.
    fn recycle(spare: &mut Vec<Vec<u8>>, mut body: Vec<u8>) {
        if spare.len() < SPARE_RUNS && body.capacity() <= SPARE_CAPACITY {
            body.clear();
            spare.push(body);
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
                while let Some(h) = &run.head {
                    if !first {
                        let k = key(h, *released);
                        if k > threshold || limit.is_some_and(|l| (k, id) > l) {
                            self.heap.push(Reverse((k, id, i)));
                            break 'queue;
                        }
                    }
                    first = false;
                    match *h {
                        Held::Event(Event::Realloc {
                            ts, start_ts, old_addr, new_addr, ..
                        }) if old_addr != new_addr && !*released => {
                            *released = true;
                            v.realloc_release(thread, start_ts.min(ts), old_addr);
                        }
                        Held::Event(e) => {
                            run.advance();
                            *released = false;
                            v.event(thread, e);
                        }
                        Held::Record(..) => {
                            let held = run.head.take();
                            run.advance();
                            if let Some(Held::Record(_, r)) = held {
                                v.record(thread, r);
                            }
                        }
                    }
                }
                if let Some(run) = runs.pop_front() {
                    Self::recycle(&mut self.spare, run.body);
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
        let mut w = pulse_format::Writer::new(Vec::new(), &Default::default()).unwrap();
        let mut enc = pulse_format::ChunkEncoder::new();
        enc.begin(thread, round);
        for r in &records {
            enc.push(r);
        }
        w.write_chunk(&enc).unwrap();
        let bytes = w.finish(Trailer::default()).unwrap();
        let mut reader = Reader::new(&bytes[..]).unwrap();
        let Ok(Some(RawFrame::Chunk(chunk))) = reader.next_raw() else { panic!("a chunk") };
        let mut counts = [0; RecordKind::ALL.len()];
        m.chunk(&chunk, &mut counts, v).unwrap();
    }

    /// Timed records held.
    fn held(m: &Merger) -> usize {
        let mut n = 0;
        for run in m.queues.iter().flat_map(|q| &q.runs) {
            let mut d = run.decoder.clone();
            n += usize::from(run.head.is_some());
            while let Ok(Some(r)) = d.next(&run.body, 0) {
                n += usize::from(!matches!(r, Decoded::Record(r) if r.ts().is_none()));
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
        let mut m = Merger::default();
        let mut got = Everything::default();
        push(&mut m, 5, 0, records.clone(), &mut got);
        m.flush(u64::MAX, &mut got);
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
        push(&mut m, 1, 0, mixed, &mut v);
        assert_eq!(v.0, [def.clone(), def], "on arrival, before the events go out");
        assert!(v.1.is_empty());
        // Held as its bytes: about three a record (the tag, and the
        // timestamp's low byte and rest), not a 64-byte event each.
        let run = &m.queues[1].runs[0];
        assert!(run.body.len() < 3_100, "{} bytes", run.body.len());
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
}
