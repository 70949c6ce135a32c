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

use crate::codec::{unzigzag, Cursor, DecodeError};
use crate::error::Error;
use crate::recent::Recent;
use crate::record::{self, Deltas, Record, RecordKind, Times};
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
    /// Version 1's layout: each record's timestamp in the record.
    pub(crate) inline_times: bool,
}

impl<'a> RawChunk<'a> {
    /// A chunk of `thread` from collector round `round` whose records are
    /// `body` (as [`RawChunk::body`] gives them, in this crate's
    /// [`VERSION`](crate::VERSION)), its frame at `offset`: for decoding
    /// records kept apart from the reader's buffer.
    pub fn new(offset: u64, thread: u64, round: u64, body: &'a [u8]) -> Self {
        RawChunk { offset, thread, round, body, inline_times: false }
    }

    /// The encoded records, after the chunk's thread and round.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// A decoder at this chunk's first record, for its [`body`](RawChunk::body).
    pub fn decoder(&self) -> Decoder {
        Decoder { inline_times: self.inline_times, ..Decoder::new() }
    }

    /// Decodes every record into `sink`, in order. A chunk that does not
    /// decode is [`Error::Corrupt`], as [`Reader::next_frame`](crate::Reader::next_frame)
    /// reports it; `sink` may then have received the records before the fault.
    pub fn decode(&self, sink: &mut impl Sink) -> Result<(), Error> {
        if self.inline_times {
            self.decode_as::<true>(sink)
        } else {
            self.decode_as::<false>(sink)
        }
    }

    /// [`RawChunk::decode`] for one layout of the timestamps: one loop over
    /// the whole chunk, where a [`Decoder`] rebuilds its cursors and stores
    /// them back for every record.
    fn decode_as<const INLINE: bool>(&self, sink: &mut impl Sink) -> Result<(), Error> {
        let corrupt = |e| crate::reader::corrupt(self.offset, e);
        let layout = Layout::of(self.body, INLINE).map_err(corrupt)?;
        let (mut c, mut lo, mut rest) = layout.cursors(self.body);
        let (mut d, mut recent) = (Deltas::default(), Recent::new());
        while let Some(r) =
            step::<INLINE>(&mut c, &mut lo, &mut rest, &mut d, &mut recent, self.offset)?
        {
            match r {
                Decoded::Event(e) => sink.event(e),
                Decoded::Record(r) => sink.record(r),
            }
        }
        Ok(())
    }

    /// Decodes every record into a vector, as `next_frame` does, with the
    /// reference decoder alone.
    pub fn records(&self) -> Result<Vec<Record>, Error> {
        let corrupt = |e| crate::reader::corrupt(self.offset, e);
        let l = Layout::of(self.body, self.inline_times).map_err(corrupt)?;
        let (mut c, mut lo, mut rest) = l.cursors(self.body);
        let mut times =
            if self.inline_times { Times::Inline } else { Times::Apart(&mut lo, &mut rest) };
        let mut d = Deltas::default();
        let mut recent = Recent::new();
        let mut records = Vec::with_capacity(self.body.len() / 6);
        while let Some(r) =
            record::decode(&mut c, &mut times, &mut d, &mut recent).map_err(corrupt)?
        {
            records.push(r);
        }
        if !self.inline_times {
            no_times_left(&lo, &rest).map_err(corrupt)?;
        }
        Ok(records)
    }
}

/// Where a chunk's records and timestamps are in its body, as offsets:
/// version 1's records run from the start to the end; version 2's follow
/// the varints of their length and of the timed records' count, the
/// timestamps' planes after them (docs/FORMAT.md, "Chunk payload").
#[derive(Debug, Clone, Copy, Default)]
struct Layout {
    records: usize,
    low: usize,
    rest: usize,
    /// The body's length.
    len: usize,
}

impl Layout {
    fn of(body: &[u8], inline_times: bool) -> Result<Layout, DecodeError> {
        if inline_times {
            let len = body.len();
            return Ok(Layout { records: 0, low: len, rest: len, len });
        }
        let mut c = Cursor::new(body);
        let len = c.u64("the records' length")?;
        let timed = c.u64("the timed records' count")?;
        let records = c.position();
        let left = (body.len() - records) as u64;
        if len > left || timed > left - len {
            return Err(DecodeError::Invalid(format!(
                "the chunk claims {len} bytes of records and {timed} timestamps in {left} bytes"
            )));
        }
        let low = records + len as usize;
        Ok(Layout { records, low, rest: low + timed as usize, len: body.len() })
    }

    /// Cursors at the start of the records, the low bytes and the rest.
    #[inline(always)]
    fn cursors<'a>(&self, body: &'a [u8]) -> (Cursor<'a>, Cursor<'a>, Cursor<'a>) {
        let at = |end: usize, pos: usize| {
            let mut c = Cursor::new(&body[..end]);
            c.set_position(pos);
            c
        };
        (at(self.low, self.records), at(self.rest, self.low), at(body.len(), self.rest))
    }
}

/// Version 2: the timestamps end with the records.
fn no_times_left(lo: &Cursor<'_>, rest: &Cursor<'_>) -> Result<(), DecodeError> {
    if lo.is_empty() && rest.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::Invalid(format!(
            "{} bytes of timestamps after the chunk's last record",
            lo.remaining() + rest.remaining()
        )))
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
/// and its timestamp start, the chunk's running timestamp and address, and
/// its recent blocks. It borrows nothing, so that a replay can keep a
/// chunk's bytes (a byte or two a record) and decode each record when it is
/// needed, rather than keep the chunk decoded (an [`Event`] is 64 bytes).
///
/// ```
/// use pulse_format::{Decoded, Decoder, Event};
/// // `Pause` at 5 and `Resume` at 9: the records' length (2) and the timed
/// // records' count (2), their tags, then their timestamps' deltas (zigzag,
/// // so 5 is written 10, and the 4 to 9 is written 8): the low bytes, then
/// // the rest (0 and 0).
/// let body = [2, 2, 10, 11, 10, 8, 0, 0];
/// let body = &body[..];
/// let mut d = Decoder::new();
/// assert_eq!(d.next(body, 0).unwrap(), Some(Decoded::Event(Event::Pause { ts: 5 })));
/// assert_eq!(d.next(body, 0).unwrap(), Some(Decoded::Event(Event::Resume { ts: 9 })));
/// assert_eq!(d.next(body, 0).unwrap(), None);
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    inline_times: bool,
    /// The body's layout, read by the first call.
    layout: Option<Layout>,
    /// Where the next record, low byte and rest of a timestamp start.
    at: Layout,
    deltas: Deltas,
    recent: Box<Recent>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// At the first record of a chunk written in this crate's
    /// [`VERSION`](crate::VERSION); [`RawChunk::decoder`] gives one for any
    /// chunk a [`Reader`](crate::Reader) returns.
    pub fn new() -> Self {
        Decoder {
            inline_times: false,
            layout: None,
            at: Layout::default(),
            deltas: Deltas::default(),
            recent: Recent::new(),
        }
    }

    /// The next record of `body` — the records of the chunk this decoder
    /// began at, as [`RawChunk::body`] gives them, whose frame is at
    /// `offset` (for the error) — or `None` at its end. A record that does
    /// not decode is the error [`RawChunk::decode`] reports for it.
    #[inline(always)]
    pub fn next(&mut self, body: &[u8], offset: u64) -> Result<Option<Decoded>, Error> {
        let corrupt = |e| crate::reader::corrupt(offset, e);
        let layout = match self.layout {
            Some(l) if l.len == body.len() => l,
            Some(_) => {
                return Err(corrupt(DecodeError::Invalid(String::from(
                    "a decoder was handed another body than the chunk it began",
                ))))
            }
            None => {
                let l = Layout::of(body, self.inline_times).map_err(corrupt)?;
                (self.layout, self.at) = (Some(l), l);
                l
            }
        };
        let (mut c, mut lo, mut rest) = layout.cursors(body);
        c.set_position(self.at.records);
        lo.set_position(self.at.low);
        rest.set_position(self.at.rest);
        // The result goes back as it came, never looked at here: read back
        // to be tested, its bytes stalled the loads that copy it out (the
        // store forwarding of a 100-byte value written in pieces fails).
        let r = if self.inline_times {
            step::<true>(&mut c, &mut lo, &mut rest, &mut self.deltas, &mut self.recent, offset)
        } else {
            step::<false>(&mut c, &mut lo, &mut rest, &mut self.deltas, &mut self.recent, offset)
        };
        self.at = Layout {
            records: c.position(),
            low: lo.position(),
            rest: rest.position(),
            len: layout.len,
        };
        r
    }
}

/// The next record at `c`, its timestamp in the planes at `lo` and `rest`
/// unless `INLINE` (version 1): the fast path for the common kinds, else
/// the reference decoder from the start of the same record.
#[inline(always)]
fn step<'a, const INLINE: bool>(
    c: &mut Cursor<'_>,
    lo: &mut Cursor<'a>,
    rest: &mut Cursor<'a>,
    d: &mut Deltas,
    recent: &mut Recent,
    offset: u64,
) -> Result<Option<Decoded>, Error> {
    // Only the cursors need putting back when the fast path declines: it
    // changes the deltas and the recent blocks only on success. (A copy of
    // the deltas, kept to restore them, was read back from the stack while
    // its two halves were still being stored: a failed store forward on
    // every record, 15 % of the decoding under `perf`.)
    let (pos, low, high) = (c.position(), lo.position(), rest.position());
    if let Some(e) = fast::<INLINE>(c, lo, rest, d, recent) {
        return Ok(Some(Decoded::Event(e)));
    }
    c.set_position(pos);
    lo.set_position(low);
    rest.set_position(high);
    let corrupt = |e| crate::reader::corrupt(offset, e);
    let mut times = if INLINE { Times::Inline } else { Times::Apart(lo, rest) };
    let r = record::decode(c, &mut times, d, recent).map_err(corrupt)?;
    if r.is_none() && !INLINE {
        // The end of the records: the timestamps end there too.
        no_times_left(lo, rest).map_err(corrupt)?;
    }
    Ok(r.map(|r| match Event::try_from(r) {
        Ok(e) => Decoded::Event(e),
        Err(r) => Decoded::Record(r),
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

/// A timestamp's delta from version 2's planes: its low byte and the rest.
#[inline(always)]
fn planes(lo: &mut Cursor<'_>, rest: &mut Cursor<'_>) -> Option<u64> {
    let low = *lo.buf().get(lo.position())?;
    let high = var(rest)?;
    if high > u64::MAX >> 8 {
        return None;
    }
    lo.set_position(lo.position() + 1);
    Some(unzigzag(high << 8 | u64::from(low)) as u64)
}

/// The common kinds, decoded without the reference decoder's error
/// plumbing. `None`: let the reference decoder read this record. The
/// deltas and the recent blocks change only once the whole record has
/// decoded, so that a `None` leaves them as they were.
#[inline(always)]
fn fast<const INLINE: bool>(
    c: &mut Cursor<'_>,
    lo: &mut Cursor<'_>,
    rest: &mut Cursor<'_>,
    d: &mut Deltas,
    recent: &mut Recent,
) -> Option<Event> {
    let tag = *c.buf().get(c.position())?;
    c.set_position(c.position() + 1);
    // Read first whatever the kind: a kind this path does not decode
    // returns `None` below, and the caller puts the cursors back.
    let ts = d.ts.wrapping_add(if INLINE { delta(c)? } else { planes(lo, rest)? });
    let e = match tag {
        tag::ALLOC | tag::ALLOC_WEIGHTED => {
            let addr = d.addr.wrapping_add(delta(c)?);
            let size = var(c)?;
            let align = var(c)?;
            let site = var32(c)?;
            let weight = if tag == tag::ALLOC_WEIGHTED { var(c)? } else { 1 };
            d.addr = addr;
            recent.allocated(addr, size);
            Event::Alloc { ts, addr, size, align, site, weight }
        }
        tag::FREE => {
            let addr = d.addr.wrapping_add(delta(c)?);
            let size = var(c)?;
            d.addr = addr;
            recent.freed(addr, size);
            Event::Free { ts, addr, size }
        }
        tag::FREE_RECENT => {
            let (addr, size) = recent.alloc(var(c)?)?;
            d.addr = addr;
            recent.freed(addr, size);
            Event::Free { ts, addr, size }
        }
        t if t == tag::REALLOC || record::is_realloc_compact(t) => {
            let compact = t != tag::REALLOC;
            let start_ts = ts.wrapping_sub(delta(c)?);
            let (old_addr, old_size) = if compact && t & tag::REALLOC_RECENT_OLD != 0 {
                recent.alloc(var(c)?)?
            } else {
                (d.addr.wrapping_add(delta(c)?), var(c)?)
            };
            let new_addr = match record::moved(t) {
                record::Moved::InPlace => old_addr,
                record::Moved::ToFreed => recent.free(var(c)?)?.0,
                record::Moved::Delta => old_addr.wrapping_add(delta(c)?),
            };
            let new_size = var(c)?;
            let align = if compact { 1 << (t & 7) } else { var(c)? };
            let site = var32(c)?;
            d.addr = new_addr;
            if old_addr != new_addr {
                recent.freed(old_addr, old_size);
            }
            recent.allocated(new_addr, new_size);
            Event::Realloc { ts, start_ts, old_addr, old_size, new_addr, new_size, align, site }
        }
        tag::SCOPE_ENTER => Event::ScopeEnter { ts, scope: var32(c)? },
        tag::SCOPE_EXIT => Event::ScopeExit { ts, scope: var32(c)? },
        t if record::is_alloc_v2(t) => {
            // A compact allocation: the alignment is in the tag.
            let align = 1u64 << ((tag - tag::ALLOC_NEW) % tag::ALIGN_IN_TAG);
            let (addr, size) = if tag < tag::ALLOC_REUSE_SAME {
                (d.addr.wrapping_add(delta(c)?), var(c)?)
            } else {
                let (addr, freed) = recent.free(var(c)?)?;
                (addr, if tag < tag::ALLOC_REUSE { freed } else { var(c)? })
            };
            let site = var32(c)?;
            d.addr = addr;
            recent.allocated(addr, size);
            Event::Alloc { ts, addr, size, align, site, weight: 1 }
        }
        // The other kinds go to the reference decoder.
        _ => return None,
    };
    d.ts = ts;
    Some(e)
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
        let payload = enc.body();
        let body = &payload[2..];
        let chunk = RawChunk::new(0, 1, 0, body);
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
        let payload = enc.body();
        let chunk = RawChunk::new(0, 1, 0, &payload[2..]);
        let mut got = Collect::default();
        chunk.decode(&mut got).unwrap();
        assert_eq!(got.0, records);
        // Non-minimal encodings are accepted, as the reference decoder does
        // (a version 1 chunk: the timestamp in the record).
        let body =
            [6u8, 0x80, 0x80, 0x80, 0x00, 0x81, 0x80, 0x80, 0x00, 0x85, 0x80, 0x00, 0, 0, 0, 0, 0];
        let chunk = RawChunk { inline_times: true, ..RawChunk::new(0, 1, 0, &body[..12]) };
        let mut got = Collect::default();
        chunk.decode(&mut got).unwrap();
        assert_eq!(got.0, chunk.records().unwrap());
        assert_eq!(got.0, [Record::Free { ts: 0, addr: u64::MAX, size: 5 }]);
    }

    /// Both paths and the one-at-a-time decoder end `chunk` the same way.
    fn same_ending(chunk: &RawChunk<'_>) -> Result<(), String> {
        let fast = chunk.decode(&mut Collect::default()).map_err(|e| e.to_string());
        let slow = chunk.records().map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(fast, slow, "{:?}", chunk.body());
        let mut d = chunk.decoder();
        let one = loop {
            match d.next(chunk.body(), chunk.offset) {
                Ok(Some(_)) => {}
                Ok(None) => break Ok(()),
                Err(e) => break Err(e.to_string()),
            }
        };
        assert_eq!(one, slow, "{:?}, one at a time", chunk.body());
        slow
    }

    #[test]
    fn a_decoder_handed_another_body_says_so() {
        let mut enc = ChunkEncoder::new();
        enc.begin(1, 0);
        enc.push(&Record::Pause { ts: 5 });
        enc.push(&Record::Resume { ts: 9 });
        let payload = enc.body();
        let mut d = Decoder::new();
        assert!(d.next(&payload[2..], 0).unwrap().is_some());
        let err = d.next(&payload[2..4], 0).unwrap_err().to_string();
        assert!(err.contains("another body"), "{err}");
    }

    #[test]
    fn a_damaged_record_is_the_reference_decoders_error() {
        let mut enc = ChunkEncoder::new();
        enc.begin(1, 0);
        enc.push(&Record::Alloc { ts: 10, addr: 0x1000, size: 64, align: 8, site: 3, weight: 1 });
        enc.push(&Record::Free { ts: 12, addr: 0x1000, size: 64 });
        enc.push(&Record::Alloc { ts: 13, addr: 0x1000, size: 64, align: 8, site: 3, weight: 1 });
        let payload = enc.body();
        let body = &payload[2..];
        // The records' length and count, a compact allocation (8-aligned),
        // a free of it and an allocation at its address, then the
        // timestamps' low bytes and the rest of each.
        assert_eq!(
            body,
            [10, 3, 0x23, 0x80, 0x40, 64, 3, tag::FREE_RECENT, 0, 0x33, 0, 3, 20, 4, 2, 0, 0, 0]
        );
        for cut in 0..body.len() {
            let mut cut_body = body[..cut].to_vec();
            same_ending(&RawChunk::new(7, 1, 0, &cut_body)).ok();
            // Also with the records' length kept true to the cut.
            if let Some(n) = cut_body.first_mut() {
                *n = (*n).min(cut as u8 - 1);
                same_ending(&RawChunk::new(7, 1, 0, &cut_body)).ok();
            }
        }
        let v1 = [3u8, 20, 0x80, 0x40, 64, 8, 3];
        for cut in 0..v1.len() {
            let chunk = RawChunk { inline_times: true, ..RawChunk::new(7, 1, 0, &v1[..cut]) };
            same_ending(&chunk).ok();
        }
        // A site id over 32 bits, in each version.
        let v2 = [9u8, 1, 0x23, 0x80, 0x40, 64, 0xff, 0xff, 0xff, 0xff, 0x7f, 20, 0];
        assert!(same_ending(&RawChunk::new(7, 1, 0, &v2)).is_err());
        let v1 = [3u8, 20, 0x80, 0x40, 64, 8, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(
            same_ending(&RawChunk { inline_times: true, ..RawChunk::new(7, 1, 0, &v1) }).is_err()
        );
        // A free of a block the chunk never had, timestamps left over (in
        // either plane), a timestamp missing, a length past the end, and a
        // delta over 64 bits.
        for bad in [
            &[2u8, 1, tag::FREE_RECENT, 0, 20, 0][..],
            &[0, 1, 20, 0],
            &[1, 1, 10, 20, 0, 0],
            &[2, 2, 10, 10, 20, 0],
            &[5, 1, 10, 2],
            &[1, 1, 10, 20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        ] {
            let err = same_ending(&RawChunk::new(7, 1, 0, bad)).unwrap_err();
            assert!(err.contains("at byte 7"), "{err}");
        }
    }
}
