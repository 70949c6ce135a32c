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

use pulse_format::{Frame, Reader, Record, RecordKind, Trailer};

/// What receives the replayed events.
pub(crate) trait Visitor {
    /// A definition (site, scope, symbol): no timestamp, applied on arrival.
    fn definition(&mut self, r: Record);
    /// A timed event on `thread`, in global timestamp order.
    fn event(&mut self, thread: u64, r: Record);
    /// The first half of a moving [`Record::Realloc`] on `thread`: the old
    /// block at `addr` was released at `ts`. The record itself follows, at
    /// its own (later) timestamp.
    fn realloc_release(&mut self, thread: u64, ts: u64, addr: u64);
}

/// A held event: a record, or the release half of a moving realloc.
#[derive(Debug)]
enum Item {
    Record(Record),
    Release { ts: u64, addr: u64 },
}

impl Item {
    fn ts(&self) -> u64 {
        match self {
            Item::Record(r) => r.ts().unwrap_or(0),
            Item::Release { ts, .. } => *ts,
        }
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
        match reader.next_frame() {
            Ok(Some(Frame::Chunk(chunk))) => {
                end.chunks += 1;
                for r in &chunk.records {
                    end.record_counts[r.kind().index()] += 1;
                }
                merger.push(chunk.thread, chunk.round, chunk.records, v);
            }
            Ok(Some(Frame::Trailer(t))) => end.trailer = Some(t),
            Ok(None) => break,
            Err(e) if e.is_truncation() => {
                end.truncated = Some(e);
                break;
            }
            Err(e) => return Err(e),
        }
    }
    merger.flush(u64::MAX, v);
    Ok(end)
}

#[derive(Default)]
struct Merger {
    queues: HashMap<u64, VecDeque<Item>>,
    /// The largest timestamp seen in each round still held.
    round_max: BTreeMap<u64, u64>,
    highest_round: Option<u64>,
}

impl Merger {
    fn push(&mut self, thread: u64, round: u64, records: Vec<Record>, v: &mut impl Visitor) {
        let new_round = self.highest_round.is_none_or(|h| round > h);
        let q = self.queues.entry(thread).or_default();
        let mut max = None;
        for r in records {
            match r.ts() {
                Some(ts) => {
                    max = Some(max.map_or(ts, |m: u64| m.max(ts)));
                    if let Record::Realloc { start_ts, old_addr, new_addr, .. } = r {
                        if old_addr != new_addr {
                            q.push_back(Item::Release { ts: start_ts.min(ts), addr: old_addr });
                        }
                    }
                    q.push_back(Item::Record(r));
                }
                None => v.definition(r),
            }
        }
        if let Some(m) = max {
            let e = self.round_max.entry(round).or_insert(m);
            *e = (*e).max(m);
        }
        if new_round {
            self.highest_round = Some(round);
            // Everything up to the last timestamp of round `round - 2` is complete.
            let done: Vec<u64> =
                self.round_max.range(..round.saturating_sub(1)).map(|(r, _)| *r).collect();
            if round >= 2 && !done.is_empty() {
                let threshold =
                    done.iter().filter_map(|r| self.round_max.remove(r)).max().unwrap_or(0);
                self.flush(threshold, v);
            }
        }
    }

    /// Emits, in timestamp order, every held event up to `threshold`.
    fn flush(&mut self, threshold: u64, v: &mut impl Visitor) {
        let mut heap: BinaryHeap<Reverse<(u64, u64)>> = self
            .queues
            .iter()
            .filter_map(|(t, q)| q.front().map(|i| Reverse((i.ts(), *t))))
            .collect();
        while let Some(Reverse((ts, thread))) = heap.pop() {
            if ts > threshold {
                break;
            }
            let Some(q) = self.queues.get_mut(&thread) else {
                continue;
            };
            match q.pop_front() {
                Some(Item::Record(r)) => v.event(thread, r),
                Some(Item::Release { ts, addr }) => v.realloc_release(thread, ts, addr),
                None => continue,
            }
            if let Some(next) = q.front() {
                heap.push(Reverse((next.ts(), thread)));
            }
        }
        self.queues.retain(|_, q| !q.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Log(Vec<(u64, u64)>);

    impl Visitor for Log {
        fn definition(&mut self, _: Record) {}
        fn event(&mut self, thread: u64, r: Record) {
            self.0.push((thread, r.ts().unwrap()));
        }
        fn realloc_release(&mut self, thread: u64, ts: u64, _: u64) {
            self.0.push((thread, ts));
        }
    }

    fn ev(ts: u64) -> Record {
        Record::Pause { ts }
    }

    #[test]
    fn a_late_round_is_merged_back_into_timestamp_order() {
        let mut m = Merger::default();
        let mut log = Log::default();
        // Thread 2's event at ts 15 was drained a round after thread 1's at ts 20.
        m.push(1, 0, vec![ev(10), ev(20)], &mut log);
        m.push(2, 1, vec![ev(15), ev(30)], &mut log);
        m.push(1, 1, vec![ev(25)], &mut log);
        m.push(1, 2, vec![ev(40)], &mut log);
        m.flush(u64::MAX, &mut log);
        let ts: Vec<u64> = log.0.iter().map(|e| e.1).collect();
        assert_eq!(ts, [10, 15, 20, 25, 30, 40]);
    }

    #[test]
    fn each_thread_keeps_its_own_order_even_if_its_clock_steps_back() {
        let mut m = Merger::default();
        let mut log = Log::default();
        m.push(1, 0, vec![ev(10), ev(9), ev(11)], &mut log);
        m.flush(u64::MAX, &mut log);
        assert_eq!(log.0, [(1, 10), (1, 9), (1, 11)]);
    }

    #[test]
    fn memory_holds_at_most_two_rounds() {
        let mut m = Merger::default();
        let mut log = Log::default();
        for round in 0..100u64 {
            m.push(1, round, vec![ev(round * 10), ev(round * 10 + 5)], &mut log);
            assert!(m.queues.values().map(VecDeque::len).sum::<usize>() <= 6);
        }
    }
}
