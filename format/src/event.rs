//! The replay's decode path: a chunk's timed records as compact [`Event`]s,
//! with no allocation per record.
//!
//! [`Reader::next_frame`](crate::Reader::next_frame) builds a [`Record`]
//! per record, an enum some of whose kinds own strings or vectors; a replay
//! of millions of allocations does not need that. [`RawChunk::decode`]
//! hands each record with no owned data to a [`Sink`] as an [`Event`]
//! (`Copy`, no heap), and only the few that own data — thread names,
//! counter readings, definitions — as [`Record`]s.
//!
//! The common kinds are decoded by a fast path; anything it does not handle
//! (the other kinds, a varint it does not expect, the end of the buffer)
//! goes through the one reference decoder from the start of that record, so
//! both paths accept exactly the same bytes and report the same errors.

use crate::codec::{unzigzag, Cursor};
use crate::error::Error;
use crate::record::{self, Deltas, Record, RecordKind};
use crate::tag;

/// A timed record without owned data: every kind but `ThreadStart` and
/// `Counters` (which own a name and values) and the definitions (which have
/// no timestamp). The fields are those of the [`Record`] of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Event {
    /// [`Record::ThreadEnd`]
    ThreadEnd { ts: u64 },
    /// [`Record::Alloc`]
    Alloc { ts: u64, addr: u64, size: u64, align: u64, site: u32, weight: u64 },
    /// [`Record::AllocFailed`]
    AllocFailed { ts: u64, size: u64, align: u64 },
    /// [`Record::Free`]
    Free { ts: u64, addr: u64, size: u64 },
    /// [`Record::Realloc`]
    Realloc {
        ts: u64,
        start_ts: u64,
        old_addr: u64,
        old_size: u64,
        new_addr: u64,
        new_size: u64,
        align: u64,
        site: u32,
    },
    /// [`Record::ScopeEnter`]
    ScopeEnter { ts: u64, scope: u32 },
    /// [`Record::ScopeExit`]
    ScopeExit { ts: u64, scope: u32 },
    /// [`Record::Pause`]
    Pause { ts: u64 },
    /// [`Record::Resume`]
    Resume { ts: u64 },
    /// [`Record::Span`]
    Span { ts: u64, start_ts: u64, scope: u32 },
}

impl Event {
    /// The event's timestamp.
    #[inline]
    pub fn ts(&self) -> u64 {
        match *self {
            Event::ThreadEnd { ts }
            | Event::Alloc { ts, .. }
            | Event::AllocFailed { ts, .. }
            | Event::Free { ts, .. }
            | Event::Realloc { ts, .. }
            | Event::ScopeEnter { ts, .. }
            | Event::ScopeExit { ts, .. }
            | Event::Pause { ts }
            | Event::Resume { ts }
            | Event::Span { ts, .. } => ts,
        }
    }

    /// The kind of record it was.
    #[inline]
    pub fn kind(&self) -> RecordKind {
        match self {
            Event::ThreadEnd { .. } => RecordKind::ThreadEnd,
            Event::Alloc { .. } => RecordKind::Alloc,
            Event::AllocFailed { .. } => RecordKind::AllocFailed,
            Event::Free { .. } => RecordKind::Free,
            Event::Realloc { .. } => RecordKind::Realloc,
            Event::ScopeEnter { .. } => RecordKind::ScopeEnter,
            Event::ScopeExit { .. } => RecordKind::ScopeExit,
            Event::Pause { .. } => RecordKind::Pause,
            Event::Resume { .. } => RecordKind::Resume,
            Event::Span { .. } => RecordKind::Span,
        }
    }
}

impl From<Event> for Record {
    fn from(e: Event) -> Record {
        match e {
            Event::ThreadEnd { ts } => Record::ThreadEnd { ts },
            Event::Alloc { ts, addr, size, align, site, weight } => {
                Record::Alloc { ts, addr, size, align, site, weight }
            }
            Event::AllocFailed { ts, size, align } => Record::AllocFailed { ts, size, align },
            Event::Free { ts, addr, size } => Record::Free { ts, addr, size },
            Event::Realloc {
                ts,
                start_ts,
                old_addr,
                old_size,
                new_addr,
                new_size,
                align,
                site,
            } => Record::Realloc {
                ts,
                start_ts,
                old_addr,
                old_size,
                new_addr,
                new_size,
                align,
                site,
            },
            Event::ScopeEnter { ts, scope } => Record::ScopeEnter { ts, scope },
            Event::ScopeExit { ts, scope } => Record::ScopeExit { ts, scope },
            Event::Pause { ts } => Record::Pause { ts },
            Event::Resume { ts } => Record::Resume { ts },
            Event::Span { ts, start_ts, scope } => Record::Span { ts, start_ts, scope },
        }
    }
}

impl Event {
    /// The event form of `r`, or `None` if it owns data or has no timestamp.
    #[inline]
    pub fn of(r: &Record) -> Option<Event> {
        Some(match *r {
            Record::ThreadEnd { ts } => Event::ThreadEnd { ts },
            Record::Alloc { ts, addr, size, align, site, weight } => {
                Event::Alloc { ts, addr, size, align, site, weight }
            }
            Record::AllocFailed { ts, size, align } => Event::AllocFailed { ts, size, align },
            Record::Free { ts, addr, size } => Event::Free { ts, addr, size },
            Record::Realloc {
                ts,
                start_ts,
                old_addr,
                old_size,
                new_addr,
                new_size,
                align,
                site,
            } => {
                Event::Realloc { ts, start_ts, old_addr, old_size, new_addr, new_size, align, site }
            }
            Record::ScopeEnter { ts, scope } => Event::ScopeEnter { ts, scope },
            Record::ScopeExit { ts, scope } => Event::ScopeExit { ts, scope },
            Record::Pause { ts } => Event::Pause { ts },
            Record::Resume { ts } => Event::Resume { ts },
            Record::Span { ts, start_ts, scope } => Event::Span { ts, start_ts, scope },
            Record::ThreadStart { .. }
            | Record::Counters { .. }
            | Record::SiteDef { .. }
            | Record::ScopeDef { .. }
            | Record::Symbol { .. } => return None,
        })
    }
}

impl TryFrom<Record> for Event {
    type Error = Record;

    /// The event form of `r`, or `r` back if it owns data or has no timestamp.
    fn try_from(r: Record) -> Result<Event, Record> {
        Event::of(&r).ok_or(r)
    }
}

/// Receives a chunk's records from [`RawChunk::decode`], in the chunk's order.
pub trait Sink {
    /// A record without owned data.
    fn event(&mut self, e: Event);
    /// A record that owns data (`ThreadStart`, `Counters`) or has no
    /// timestamp (`SiteDef`, `ScopeDef`, `Symbol`).
    fn record(&mut self, r: Record);
}

/// A chunk as stored, not yet decoded: its header fields and the bytes of
/// its records, borrowed from the [`Reader`](crate::Reader)'s buffer until
/// its next frame.
#[derive(Debug, Clone, Copy)]
pub struct RawChunk<'a> {
    /// Byte offset of the chunk's frame in the file.
    pub offset: u64,
    /// The thread the records belong to (0: session-wide definitions).
    pub thread: u64,
    /// The collector round that wrote the chunk.
    pub round: u64,
    pub(crate) body: &'a [u8],
}

impl<'a> RawChunk<'a> {
    /// A chunk of `thread` from collector round `round` whose records are
    /// `body` (as [`RawChunk::body`] gives them), its frame at `offset`:
    /// for decoding records kept apart from the reader's buffer.
    pub fn new(offset: u64, thread: u64, round: u64, body: &'a [u8]) -> Self {
        RawChunk { offset, thread, round, body }
    }

    /// The encoded records, after the chunk's thread and round.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// Decodes every record into `sink`, in order. A chunk that does not
    /// decode is [`Error::Corrupt`], as [`Reader::next_frame`](crate::Reader::next_frame)
    /// reports it; `sink` may then have received the records before the fault.
    pub fn decode(&self, sink: &mut impl Sink) -> Result<(), Error> {
        let mut c = Cursor::new(self.body);
        let mut d = Deltas::default();
        loop {
            match step(&mut c, &mut d, self.offset)? {
                None => return Ok(()),
                Some(Decoded::Event(e)) => sink.event(e),
                Some(Decoded::Record(r)) => sink.record(r),
            }
        }
    }

    /// Decodes every record into a vector, as `next_frame` does.
    pub fn records(&self) -> Result<Vec<Record>, Error> {
        let mut c = Cursor::new(self.body);
        let mut d = Deltas::default();
        let mut records = Vec::with_capacity(self.body.len() / 6);
        while let Some(r) =
            record::decode(&mut c, &mut d).map_err(|e| crate::reader::corrupt(self.offset, e))?
        {
            records.push(r);
        }
        Ok(records)
    }
}

/// One record as [`Decoder::next`] returns it.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A record without owned data.
    Event(Event),
    /// A record that owns data (`ThreadStart`, `Counters`) or has no
    /// timestamp (`SiteDef`, `ScopeDef`, `Symbol`).
    Record(Record),
}

/// A chunk's records decoded one at a time, on demand: where the next one
/// starts and the chunk's running timestamp and address. It borrows
/// nothing, so that a replay can keep a chunk's bytes (a byte or two a
/// record) and decode each record when it is needed, rather than keep the
/// chunk decoded (an [`Event`] is 64 bytes).
///
/// ```
/// use pulse_format::{Decoded, Decoder, Event};
/// // `Pause` at 5 and `Resume` at 9: a tag, then the timestamp's delta
/// // (zigzag, so 5 is written 10, and the 4 to 9 is written 8).
/// let body = [10, 10, 11, 8];
/// let body = &body[..];
/// let mut d = Decoder::new();
/// assert_eq!(d.next(body, 0).unwrap(), Some(Decoded::Event(Event::Pause { ts: 5 })));
/// assert_eq!(d.next(body, 0).unwrap(), Some(Decoded::Event(Event::Resume { ts: 9 })));
/// assert_eq!(d.next(body, 0).unwrap(), None);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Decoder {
    pos: usize,
    deltas: Deltas,
}

impl Decoder {
    /// At the first record of a chunk.
    pub fn new() -> Self {
        Decoder::default()
    }

    /// The next record of `body` — the records of the chunk this decoder
    /// began at, as [`RawChunk::body`] gives them, whose frame is at
    /// `offset` (for the error) — or `None` at its end. A record that does
    /// not decode is the error [`RawChunk::decode`] reports for it.
    #[inline]
    pub fn next(&mut self, body: &[u8], offset: u64) -> Result<Option<Decoded>, Error> {
        let mut c = Cursor::new(body);
        c.set_position(self.pos);
        let r = step(&mut c, &mut self.deltas, offset);
        self.pos = c.position();
        r
    }
}

/// The next record at `c`: the fast path for the common kinds, else the
/// reference decoder from the start of the same record.
#[inline(always)]
fn step(c: &mut Cursor<'_>, d: &mut Deltas, offset: u64) -> Result<Option<Decoded>, Error> {
    let (pos, saved) = (c.position(), *d);
    if let Some(e) = fast(c, d) {
        return Ok(Some(Decoded::Event(e)));
    }
    c.set_position(pos);
    *d = saved;
    Ok(record::decode(c, d).map_err(|e| crate::reader::corrupt(offset, e))?.map(|r| {
        match Event::try_from(r) {
            Ok(e) => Decoded::Event(e),
            Err(r) => Decoded::Record(r),
        }
    }))
}

/// A varint: one or two bytes inline, longer ones out of line; `None` for
/// anything the reference decoder must judge (short, overlong).
#[inline(always)]
fn var(c: &mut Cursor<'_>) -> Option<u64> {
    let (buf, pos) = (c.buf(), c.position());
    let b = *buf.get(pos)?;
    if b < 0x80 {
        c.set_position(pos + 1);
        return Some(u64::from(b));
    }
    if let Some(&b1) = buf.get(pos + 1) {
        if b1 < 0x80 {
            c.set_position(pos + 2);
            return Some(u64::from(b & 0x7f) | u64::from(b1) << 7);
        }
    }
    var_long(c)
}

/// A varint of three bytes or more: up to eight decoded from one
/// little-endian word without a branch per byte; longer ones, and those
/// too near the end of the buffer for a word, byte by byte.
#[inline(never)]
fn var_long(c: &mut Cursor<'_>) -> Option<u64> {
    let (buf, pos) = (c.buf(), c.position());
    if let Some(word) = buf.get(pos..pos + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        // The last byte is the first whose high bit is clear.
        let stop = !w & 0x8080_8080_8080_8080;
        if stop != 0 {
            let len = (stop.trailing_zeros() / 8 + 1) as usize;
            // Its bytes, then their 7-bit groups side by side.
            let x = w & (stop ^ (stop - 1));
            let mut v = 0;
            for i in 0..8 {
                v |= (x >> i) & (0x7f << (7 * i));
            }
            c.set_position(pos + len);
            return Some(v);
        }
    }
    let rest = buf.get(pos..)?;
    let mut v = 0u64;
    for (i, &b) in rest.iter().take(10).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            if i == 9 && b > 1 {
                return None;
            }
            c.set_position(pos + i + 1);
            return Some(v);
        }
    }
    None
}

#[inline(always)]
fn var32(c: &mut Cursor<'_>) -> Option<u32> {
    u32::try_from(var(c)?).ok()
}

#[inline(always)]
fn delta(c: &mut Cursor<'_>) -> Option<u64> {
    Some(unzigzag(var(c)?) as u64)
}

/// The common kinds, decoded without the reference decoder's error
/// plumbing. `None`: let the reference decoder read this record.
#[inline(always)]
fn fast(c: &mut Cursor<'_>, d: &mut Deltas) -> Option<Event> {
    let tag = *c.buf().get(c.position())?;
    c.set_position(c.position() + 1);
    Some(match tag {
        tag::ALLOC | tag::ALLOC_WEIGHTED => {
            let ts = d.ts.wrapping_add(delta(c)?);
            let addr = d.addr.wrapping_add(delta(c)?);
            let size = var(c)?;
            let align = var(c)?;
            let site = var32(c)?;
            let weight = if tag == tag::ALLOC_WEIGHTED { var(c)? } else { 1 };
            (d.ts, d.addr) = (ts, addr);
            Event::Alloc { ts, addr, size, align, site, weight }
        }
        tag::FREE => {
            let ts = d.ts.wrapping_add(delta(c)?);
            let addr = d.addr.wrapping_add(delta(c)?);
            let size = var(c)?;
            (d.ts, d.addr) = (ts, addr);
            Event::Free { ts, addr, size }
        }
        tag::REALLOC => {
            let ts = d.ts.wrapping_add(delta(c)?);
            let start_ts = ts.wrapping_sub(delta(c)?);
            let old_addr = d.addr.wrapping_add(delta(c)?);
            let old_size = var(c)?;
            let new_addr = old_addr.wrapping_add(delta(c)?);
            let new_size = var(c)?;
            let align = var(c)?;
            let site = var32(c)?;
            (d.ts, d.addr) = (ts, new_addr);
            Event::Realloc { ts, start_ts, old_addr, old_size, new_addr, new_size, align, site }
        }
        tag::SCOPE_ENTER | tag::SCOPE_EXIT => {
            let ts = d.ts.wrapping_add(delta(c)?);
            let scope = var32(c)?;
            d.ts = ts;
            if tag == tag::SCOPE_ENTER {
                Event::ScopeEnter { ts, scope }
            } else {
                Event::ScopeExit { ts, scope }
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChunkEncoder;

    #[derive(Default)]
    struct Collect(Vec<Record>);

    impl Sink for Collect {
        fn event(&mut self, e: Event) {
            self.0.push(e.into());
        }
        fn record(&mut self, r: Record) {
            self.0.push(r);
        }
    }

    #[test]
    fn both_paths_decode_the_same_records() {
        let records = vec![
            Record::ThreadStart { ts: 5, name: "main".into() },
            Record::Alloc { ts: 10, addr: 0x1000, size: 64, align: 8, site: 3, weight: 1 },
            Record::Alloc {
                ts: 9,
                addr: u64::MAX,
                size: 1 << 40,
                align: 16,
                site: 70_000,
                weight: 9,
            },
            Record::Free { ts: u64::MAX, addr: 0, size: 0 },
            Record::Realloc {
                ts: 30,
                start_ts: 28,
                old_addr: 0x1000,
                old_size: 64,
                new_addr: 0x2000,
                new_size: 128,
                align: 8,
                site: 3,
            },
            Record::ScopeEnter { ts: 31, scope: 2 },
            Record::Counters { ts: 32, scope: 2, values: vec![1, 2] },
            Record::ScopeExit { ts: 33, scope: 2 },
            Record::SiteDef { site: 3, frames: vec![1, 2, 3] },
            Record::Pause { ts: 40 },
            Record::Resume { ts: 41 },
            Record::Span { ts: 45, start_ts: 40, scope: 2 },
            Record::AllocFailed { ts: 46, size: 1, align: 1 },
            Record::ThreadEnd { ts: 50 },
        ];
        let mut enc = ChunkEncoder::new();
        enc.begin(1, 0);
        for r in &records {
            enc.push(r);
        }
        let body = &enc.body()[2..];
        let chunk = RawChunk { offset: 0, thread: 1, round: 0, body };
        let mut got = Collect::default();
        chunk.decode(&mut got).unwrap();
        assert_eq!(got.0, records);
        assert_eq!(chunk.records().unwrap(), records);
        // One at a time, the same.
        let mut d = Decoder::new();
        let mut one = Vec::new();
        while let Some(r) = d.next(body, 0).unwrap() {
            one.push(match r {
                Decoded::Event(e) => Record::from(e),
                Decoded::Record(r) => r,
            });
        }
        assert_eq!(one, records);
        assert_eq!(d.next(body, 0).unwrap(), None, "and nothing after the end");
    }

    #[test]
    fn varints_of_every_length_decode_alike_on_both_paths() {
        let mut enc = ChunkEncoder::new();
        enc.begin(1, 0);
        let mut records = Vec::new();
        for shift in 0..64 {
            for v in [1u64 << shift, (1u64 << shift) - 1, u64::MAX >> shift] {
                records.push(Record::Free { ts: v, addr: v.rotate_left(17), size: v });
                records.push(Record::ScopeEnter { ts: !v, scope: v as u32 });
            }
        }
        for r in &records {
            enc.push(r);
        }
        let chunk = RawChunk { offset: 0, thread: 1, round: 0, body: &enc.body()[2..] };
        let mut got = Collect::default();
        chunk.decode(&mut got).unwrap();
        assert_eq!(got.0, records);
        // Non-minimal encodings are accepted, as the reference decoder does.
        let body =
            [6u8, 0x80, 0x80, 0x80, 0x00, 0x81, 0x80, 0x80, 0x00, 0x85, 0x80, 0x00, 0, 0, 0, 0, 0];
        let chunk = RawChunk { offset: 0, thread: 1, round: 0, body: &body[..12] };
        let mut got = Collect::default();
        chunk.decode(&mut got).unwrap();
        assert_eq!(got.0, chunk.records().unwrap());
        assert_eq!(got.0, [Record::Free { ts: 0, addr: u64::MAX, size: 5 }]);
    }

    #[test]
    fn a_damaged_record_is_the_reference_decoders_error() {
        let mut enc = ChunkEncoder::new();
        enc.begin(1, 0);
        enc.push(&Record::Alloc { ts: 10, addr: 0x1000, size: 64, align: 8, site: 3, weight: 1 });
        let mut body = enc.body()[2..].to_vec();
        for cut in 0..body.len() {
            let chunk = RawChunk { offset: 7, thread: 1, round: 0, body: &body[..cut] };
            let fast = chunk.decode(&mut Collect::default()).map_err(|e| e.to_string());
            let slow = chunk.records().map(|_| ()).map_err(|e| e.to_string());
            assert_eq!(fast, slow, "cut at {cut}");
            let mut d = Decoder::new();
            let one = loop {
                match d.next(&body[..cut], 7) {
                    Ok(Some(_)) => {}
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e.to_string()),
                }
            };
            assert_eq!(one, slow, "cut at {cut}, one at a time");
        }
        // A site id over 32 bits.
        body.truncate(body.len() - 1);
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x7f]);
        let chunk = RawChunk { offset: 7, thread: 1, round: 0, body: &body };
        let fast = chunk.decode(&mut Collect::default()).map_err(|e| e.to_string());
        assert_eq!(fast, chunk.records().map(|_| ()).map_err(|e| e.to_string()));
        assert!(fast.is_err());
    }
}
