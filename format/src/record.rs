//! The records a chunk holds, and their encoding.
//!
//! Each record is a one-byte tag followed by its fields as varints. Within a
//! chunk, timestamps are zigzag deltas against the previous timestamped
//! record and block addresses are zigzag deltas against the previous
//! address, both starting from zero at the top of the chunk. Tags `0x80` and
//! above are extension records: a varint byte length follows the tag, so a
//! reader that does not know the tag skips the body.

use crate::codec::{put_i64, put_str, put_u64, unzigzag, zigzag, Cursor, DecodeError, Sink};
use crate::event::Event;
use crate::recent::{Recent, Refs};
use crate::tag;

/// Scope id 0 means "no scope": the root of a thread's call tree.
pub const NO_SCOPE: u32 = 0;
/// Site id 0 means "no stack was captured for this allocation".
pub const NO_SITE: u32 = 0;

/// One event or definition in a session.
///
/// Timestamps (`ts`) are clock ticks of the session's clock; the header's
/// [`ClockInfo`](crate::ClockInfo) turns them into nanoseconds. The thread a
/// record belongs to is the thread of the chunk that holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A thread was first seen by the session.
    ThreadStart {
        /// When it was first seen.
        ts: u64,
        /// Its name, or empty.
        name: String,
    },
    /// A thread exited while the session ran.
    ThreadEnd {
        /// When its thread-local state was torn down.
        ts: u64,
    },
    /// A block was allocated (`alloc` or `alloc_zeroed`).
    Alloc {
        /// When.
        ts: u64,
        /// The block's address.
        addr: u64,
        /// Its size in bytes, as requested.
        size: u64,
        /// Its alignment in bytes.
        align: u64,
        /// Its allocation site, or [`NO_SITE`].
        site: u32,
        /// How many allocations this one stands for: 1, or the sampling weight.
        weight: u64,
    },
    /// The inner allocator returned null.
    AllocFailed {
        /// When.
        ts: u64,
        /// The size asked for.
        size: u64,
        /// The alignment asked for.
        align: u64,
    },
    /// A block was freed.
    Free {
        /// When.
        ts: u64,
        /// The block's address.
        addr: u64,
        /// Its size, from the layout passed to `dealloc`.
        size: u64,
    },
    /// A block was resized; `old_addr == new_addr` when it grew or shrank in place.
    ///
    /// A reallocation that moves a block gives the old address back before
    /// it returns the new one, and either may be reused by another thread in
    /// between: the replay releases the old block at `start_ts` and places
    /// the new one at `ts`.
    Realloc {
        /// When `realloc` returned.
        ts: u64,
        /// When `realloc` was called (`<= ts`).
        start_ts: u64,
        /// The block before.
        old_addr: u64,
        /// Its size before.
        old_size: u64,
        /// The block after.
        new_addr: u64,
        /// Its size after.
        new_size: u64,
        /// Its alignment.
        align: u64,
        /// The site of the `realloc` call, or [`NO_SITE`].
        site: u32,
    },
    /// A scope was entered on this thread.
    ScopeEnter {
        /// When.
        ts: u64,
        /// The scope's id, defined by a [`Record::ScopeDef`].
        scope: u32,
    },
    /// A scope was left on this thread.
    ScopeExit {
        /// When.
        ts: u64,
        /// The scope's id.
        scope: u32,
    },
    /// Recording was paused on this thread.
    Pause {
        /// When.
        ts: u64,
    },
    /// Recording resumed on this thread.
    Resume {
        /// When.
        ts: u64,
    },
    /// A reading of this thread's counters, in the order the header lists them.
    Counters {
        /// When.
        ts: u64,
        /// The scope whose boundary took the reading, or [`NO_SCOPE`] for a periodic sample.
        scope: u32,
        /// The counter values.
        values: Vec<u64>,
    },
    /// An allocation site: the return addresses of its stack, innermost first.
    SiteDef {
        /// The site's id (never [`NO_SITE`]).
        site: u32,
        /// Raw instruction addresses.
        frames: Vec<u64>,
    },
    /// A scope or typed operation.
    ScopeDef {
        /// The scope's id (never [`NO_SCOPE`]).
        scope: u32,
        /// Its name.
        name: String,
        /// Its category, or empty.
        category: String,
        /// The category's description, or empty.
        description: String,
        /// Its priority (higher first), 0 when none was given.
        priority: i64,
    },
    /// The wall time of one run of an asynchronous operation, from its first
    /// poll to its completion, recorded on the thread that completed it. Its
    /// busy time is in the [`Record::ScopeEnter`]/[`Record::ScopeExit`] pairs
    /// of the same scope around each poll.
    Span {
        /// When it completed.
        ts: u64,
        /// When it was first polled (`<= ts`).
        start_ts: u64,
        /// The operation's scope.
        scope: u32,
    },
    /// One symbolized address.
    Symbol {
        /// The instruction address.
        addr: u64,
        /// The demangled function name.
        function: String,
        /// The source file, or empty.
        file: String,
        /// The source line, or 0.
        line: u32,
    },
}

/// The kinds of [`Record`], for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[repr(u8)]
pub enum RecordKind {
    /// [`Record::ThreadStart`]
    ThreadStart = tag::THREAD_START,
    /// [`Record::ThreadEnd`]
    ThreadEnd = tag::THREAD_END,
    /// [`Record::Alloc`]
    Alloc = tag::ALLOC,
    /// [`Record::AllocFailed`]
    AllocFailed = tag::ALLOC_FAILED,
    /// [`Record::Free`]
    Free = tag::FREE,
    /// [`Record::Realloc`]
    Realloc = tag::REALLOC,
    /// [`Record::ScopeEnter`]
    ScopeEnter = tag::SCOPE_ENTER,
    /// [`Record::ScopeExit`]
    ScopeExit = tag::SCOPE_EXIT,
    /// [`Record::Pause`]
    Pause = tag::PAUSE,
    /// [`Record::Resume`]
    Resume = tag::RESUME,
    /// [`Record::Counters`]
    Counters = tag::COUNTERS,
    /// [`Record::SiteDef`]
    SiteDef = tag::SITE_DEF,
    /// [`Record::ScopeDef`]
    ScopeDef = tag::SCOPE_DEF,
    /// [`Record::Symbol`]
    Symbol = tag::SYMBOL,
    /// [`Record::Span`]
    Span = tag::SPAN,
}

impl RecordKind {
    /// Every kind, in tag order.
    pub const ALL: [RecordKind; 15] = [
        RecordKind::ThreadStart,
        RecordKind::ThreadEnd,
        RecordKind::Alloc,
        RecordKind::AllocFailed,
        RecordKind::Free,
        RecordKind::Realloc,
        RecordKind::ScopeEnter,
        RecordKind::ScopeExit,
        RecordKind::Pause,
        RecordKind::Resume,
        RecordKind::Counters,
        RecordKind::SiteDef,
        RecordKind::ScopeDef,
        RecordKind::Symbol,
        RecordKind::Span,
    ];

    /// A stable lower-case name, as `pulse info` prints it.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::ThreadStart => "thread-start",
            RecordKind::ThreadEnd => "thread-end",
            RecordKind::Alloc => "alloc",
            RecordKind::AllocFailed => "alloc-failed",
            RecordKind::Free => "free",
            RecordKind::Realloc => "realloc",
            RecordKind::ScopeEnter => "scope-enter",
            RecordKind::ScopeExit => "scope-exit",
            RecordKind::Pause => "pause",
            RecordKind::Resume => "resume",
            RecordKind::Counters => "counters",
            RecordKind::SiteDef => "site-def",
            RecordKind::ScopeDef => "scope-def",
            RecordKind::Symbol => "symbol",
            RecordKind::Span => "span",
        }
    }

    /// The kind with this tag, if any.
    pub fn from_tag(tag: u8) -> Option<RecordKind> {
        debug_assert!(RecordKind::ALL.iter().enumerate().all(|(i, k)| k.index() == i));
        RecordKind::ALL.iter().copied().find(|k| *k as u8 == tag)
    }

    /// The position of this kind in [`RecordKind::ALL`].
    #[inline]
    pub fn index(self) -> usize {
        // Tags are 1..=16 with 4 (the weighted alloc's tag) not a kind of its own.
        let t = self as usize;
        if t < 4 {
            t - 1
        } else {
            t - 2
        }
    }
}

impl Record {
    /// This record's kind.
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::ThreadStart { .. } => RecordKind::ThreadStart,
            Record::ThreadEnd { .. } => RecordKind::ThreadEnd,
            Record::Alloc { .. } => RecordKind::Alloc,
            Record::AllocFailed { .. } => RecordKind::AllocFailed,
            Record::Free { .. } => RecordKind::Free,
            Record::Realloc { .. } => RecordKind::Realloc,
            Record::ScopeEnter { .. } => RecordKind::ScopeEnter,
            Record::ScopeExit { .. } => RecordKind::ScopeExit,
            Record::Pause { .. } => RecordKind::Pause,
            Record::Resume { .. } => RecordKind::Resume,
            Record::Counters { .. } => RecordKind::Counters,
            Record::SiteDef { .. } => RecordKind::SiteDef,
            Record::ScopeDef { .. } => RecordKind::ScopeDef,
            Record::Symbol { .. } => RecordKind::Symbol,
            Record::Span { .. } => RecordKind::Span,
        }
    }

    /// The record's timestamp, for the kinds that have one.
    pub fn ts(&self) -> Option<u64> {
        match *self {
            Record::ThreadStart { ts, .. }
            | Record::ThreadEnd { ts }
            | Record::Alloc { ts, .. }
            | Record::AllocFailed { ts, .. }
            | Record::Free { ts, .. }
            | Record::Realloc { ts, .. }
            | Record::ScopeEnter { ts, .. }
            | Record::ScopeExit { ts, .. }
            | Record::Pause { ts }
            | Record::Resume { ts }
            | Record::Counters { ts, .. }
            | Record::Span { ts, .. } => Some(ts),
            Record::SiteDef { .. } | Record::ScopeDef { .. } | Record::Symbol { .. } => None,
        }
    }
}

/// The running state of delta encoding inside one chunk.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Deltas {
    pub(crate) ts: u64,
    pub(crate) addr: u64,
}

impl Deltas {
    #[inline(always)]
    fn put_ts(&mut self, times: &mut impl TimeSink, ts: u64) {
        times.time(zigzag(ts.wrapping_sub(self.ts) as i64));
        self.ts = ts;
    }

    #[inline(always)]
    fn put_addr(&mut self, buf: &mut impl Sink, addr: u64) {
        buf.i64(addr.wrapping_sub(self.addr) as i64);
        self.addr = addr;
    }

    #[inline]
    fn ts(&mut self, c: &mut Cursor<'_>) -> Result<u64, DecodeError> {
        self.ts = self.ts.wrapping_add(c.i64("timestamp")? as u64);
        Ok(self.ts)
    }

    #[inline]
    fn addr(&mut self, c: &mut Cursor<'_>) -> Result<u64, DecodeError> {
        self.addr = self.addr.wrapping_add(c.i64("address")? as u64);
        Ok(self.addr)
    }

    /// A timestamp from version 2's planes: its low byte, then the rest.
    #[inline]
    fn ts_planes(
        &mut self,
        lo: &mut Cursor<'_>,
        rest: &mut Cursor<'_>,
    ) -> Result<u64, DecodeError> {
        let low = lo.u8("timestamp")?;
        let high = rest.u64("timestamp")?;
        if high > u64::MAX >> 8 {
            return Err(DecodeError::Invalid(String::from("timestamp: delta over 64 bits")));
        }
        self.ts = self.ts.wrapping_add(unzigzag(high << 8 | u64::from(low)) as u64);
        Ok(self.ts)
    }
}

/// Where an encoder writes a chunk's timestamps (version 2): each
/// `zigzag(Δts)` as its low byte in one plane and the rest, shifted down
/// 8 bits, as a varint in another. The low bytes are nearly random and the
/// rest small and repetitive; apart, each compresses better.
pub(crate) trait TimeSink {
    fn time(&mut self, v: u64);
}

/// The two planes as growing buffers.
pub(crate) struct Planes<'a> {
    pub(crate) low: &'a mut Vec<u8>,
    pub(crate) rest: &'a mut Vec<u8>,
}

impl TimeSink for Planes<'_> {
    #[inline(always)]
    fn time(&mut self, v: u64) {
        self.low.push(v as u8);
        self.rest.u64(v >> 8);
    }
}

/// What an encoder keeps from one record to the next within a chunk: the
/// deltas' bases and the recent blocks it may name.
#[derive(Debug, Default, Clone)]
pub(crate) struct EncodeState {
    pub(crate) deltas: Deltas,
    pub(crate) refs: Refs,
}

impl EncodeState {
    /// The top of a chunk.
    pub(crate) fn begin(&mut self) {
        self.deltas = Deltas::default();
        self.refs.begin();
    }
}

/// Appends `r`: the records without owned data as their [`Event`], the
/// others here. Every timestamp goes to `times` (version 2 keeps a
/// chunk's timestamps after its records), everything else to `buf`.
pub(crate) fn encode(
    r: &Record,
    st: &mut EncodeState,
    buf: &mut Vec<u8>,
    times: &mut impl TimeSink,
) {
    if let Some(e) = Event::of(r) {
        return put_event(buf, times, st, &e);
    }
    let d = &mut st.deltas;
    match r {
        Record::ThreadStart { ts, name } => {
            buf.push(tag::THREAD_START);
            d.put_ts(times, *ts);
            put_str(buf, name);
        }
        Record::Counters { ts, scope, values } => {
            buf.push(tag::COUNTERS);
            d.put_ts(times, *ts);
            put_u64(buf, u64::from(*scope));
            put_u64(buf, values.len() as u64);
            for v in values {
                put_u64(buf, *v);
            }
        }
        Record::SiteDef { site, frames } => {
            buf.push(tag::SITE_DEF);
            put_u64(buf, u64::from(*site));
            put_u64(buf, frames.len() as u64);
            let mut prev = 0u64;
            for f in frames {
                put_i64(buf, f.wrapping_sub(prev) as i64);
                prev = *f;
            }
        }
        Record::ScopeDef { scope, name, category, description, priority } => {
            buf.push(tag::SCOPE_DEF);
            put_u64(buf, u64::from(*scope));
            put_str(buf, name);
            put_str(buf, category);
            put_str(buf, description);
            put_i64(buf, *priority);
        }
        Record::Symbol { addr, function, file, line } => {
            buf.push(tag::SYMBOL);
            put_u64(buf, *addr);
            put_str(buf, function);
            put_str(buf, file);
            put_u64(buf, u64::from(*line));
        }
        Record::ThreadEnd { .. }
        | Record::Alloc { .. }
        | Record::AllocFailed { .. }
        | Record::Free { .. }
        | Record::Realloc { .. }
        | Record::ScopeEnter { .. }
        | Record::ScopeExit { .. }
        | Record::Pause { .. }
        | Record::Resume { .. }
        | Record::Span { .. } => unreachable!("{:?} is an event", r.kind()),
    }
}

/// The log2 of `align` if an allocation tag can carry it.
#[inline(always)]
fn align_in_tag(align: u64) -> Option<u8> {
    (align.is_power_of_two() && align.trailing_zeros() < u32::from(tag::ALIGN_IN_TAG))
        .then(|| align.trailing_zeros() as u8)
}

/// Appends the record of `e`, its timestamp to `times`: the one encoder of
/// the event records, used by [`encode`] and by the writer's
/// [`ChunkEncoder::event`](crate::ChunkEncoder::event), which the collector
/// feeds with no [`Record`] in between.
#[inline(always)]
pub(crate) fn put_event(
    buf: &mut impl Sink,
    times: &mut impl TimeSink,
    st: &mut EncodeState,
    e: &Event,
) {
    let (d, refs) = (&mut st.deltas, &mut st.refs);
    match *e {
        Event::ThreadEnd { ts } | Event::Pause { ts } | Event::Resume { ts } => {
            buf.byte(e.kind() as u8);
            d.put_ts(times, ts);
        }
        Event::Alloc { ts, addr, size, align, site, weight } => {
            match align_in_tag(align).filter(|_| weight == 1) {
                Some(a) => match refs.free(addr) {
                    Some((k, freed)) if freed == size => {
                        buf.byte(tag::ALLOC_REUSE_SAME + a);
                        buf.u64(k);
                        d.addr = addr;
                    }
                    Some((k, _)) => {
                        buf.byte(tag::ALLOC_REUSE + a);
                        buf.u64(k);
                        buf.u64(size);
                        d.addr = addr;
                    }
                    None => {
                        buf.byte(tag::ALLOC_NEW + a);
                        d.put_addr(buf, addr);
                        buf.u64(size);
                    }
                },
                None => {
                    buf.byte(if weight == 1 { tag::ALLOC } else { tag::ALLOC_WEIGHTED });
                    d.put_addr(buf, addr);
                    buf.u64(size);
                    buf.u64(align);
                }
            }
            buf.u64(u64::from(site));
            if weight != 1 {
                buf.u64(weight);
            }
            d.put_ts(times, ts);
            refs.allocated(addr, size);
        }
        Event::AllocFailed { ts, size, align } => {
            buf.byte(tag::ALLOC_FAILED);
            d.put_ts(times, ts);
            buf.u64(size);
            buf.u64(align);
        }
        Event::Free { ts, addr, size } => {
            match refs.alloc(addr, size) {
                Some(k) => {
                    buf.byte(tag::FREE_RECENT);
                    buf.u64(k);
                    d.addr = addr;
                }
                None => {
                    buf.byte(tag::FREE);
                    d.put_addr(buf, addr);
                    buf.u64(size);
                }
            }
            d.put_ts(times, ts);
            refs.freed(addr, size);
        }
        Event::Realloc { ts, start_ts, old_addr, old_size, new_addr, new_size, align, site } => {
            let recent = refs.alloc(old_addr, old_size);
            match align_in_tag(align).filter(|a| *a < 8) {
                Some(a) => {
                    // A block that moves most often lands where a recent
                    // free was: the allocator's bins again.
                    let to_freed = if new_addr == old_addr { None } else { refs.free(new_addr) };
                    let mut t = match to_freed {
                        Some(_) => tag::REALLOC_TO_FREED + a,
                        None if new_addr == old_addr => {
                            tag::REALLOC_COMPACT + tag::REALLOC_IN_PLACE + a
                        }
                        None => tag::REALLOC_COMPACT + a,
                    };
                    if recent.is_some() {
                        t |= tag::REALLOC_RECENT_OLD;
                    }
                    buf.byte(t);
                    buf.i64(ts.wrapping_sub(start_ts) as i64);
                    match recent {
                        Some(k) => buf.u64(k),
                        None => {
                            d.put_addr(buf, old_addr);
                            buf.u64(old_size);
                        }
                    }
                    match to_freed {
                        Some((k, _)) => buf.u64(k),
                        None if new_addr != old_addr => {
                            buf.i64(new_addr.wrapping_sub(old_addr) as i64);
                        }
                        None => {}
                    }
                    buf.u64(new_size);
                }
                None => {
                    buf.byte(tag::REALLOC);
                    buf.i64(ts.wrapping_sub(start_ts) as i64);
                    d.put_addr(buf, old_addr);
                    buf.u64(old_size);
                    buf.i64(new_addr.wrapping_sub(old_addr) as i64);
                    buf.u64(new_size);
                    buf.u64(align);
                }
            }
            buf.u64(u64::from(site));
            d.addr = new_addr;
            d.put_ts(times, ts);
            if old_addr != new_addr {
                refs.freed(old_addr, old_size);
            }
            refs.allocated(new_addr, new_size);
        }
        Event::ScopeEnter { ts, scope } | Event::ScopeExit { ts, scope } => {
            buf.byte(e.kind() as u8);
            d.put_ts(times, ts);
            buf.u64(u64::from(scope));
        }
        Event::Span { ts, start_ts, scope } => {
            buf.byte(tag::SPAN);
            d.put_ts(times, ts);
            buf.i64(ts.wrapping_sub(start_ts) as i64);
            buf.u64(u64::from(scope));
        }
    }
}

/// Where a chunk's timestamps are: in each record (version 1), or after
/// the records, in a stream of their own (version 2), which the decoder
/// reads with a second cursor.
pub(crate) enum Times<'c, 'a> {
    Inline,
    /// The low bytes' plane and the rest's.
    Apart(&'c mut Cursor<'a>, &'c mut Cursor<'a>),
}

/// Whether records of `tag` have a timestamp.
fn timed(tag: u8) -> bool {
    matches!(
        tag,
        tag::THREAD_START
            | tag::THREAD_END
            | tag::ALLOC
            | tag::ALLOC_WEIGHTED
            | tag::ALLOC_FAILED
            | tag::FREE
            | tag::FREE_RECENT
            | tag::REALLOC
            | tag::SCOPE_ENTER
            | tag::SCOPE_EXIT
            | tag::PAUSE
            | tag::RESUME
            | tag::COUNTERS
            | tag::SPAN
    ) || is_alloc_v2(tag)
        || is_realloc_compact(tag)
}

/// The compact reallocation tags: version 2's, and version 3's to a recent
/// free's address just below them.
#[inline(always)]
pub(crate) fn is_realloc_compact(tag: u8) -> bool {
    (tag::REALLOC_TO_FREED..tag::REALLOC_COMPACT + 0x20).contains(&tag)
}

/// Where a reallocation's block went, as its tag says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moved {
    /// Nowhere: it stayed.
    InPlace,
    /// By a delta from the old address.
    Delta,
    /// To a recent free's address, named by how recent it is.
    ToFreed,
}

#[inline(always)]
pub(crate) fn moved(tag: u8) -> Moved {
    if !is_realloc_compact(tag) {
        // Tag 7: the new address is always a delta.
        Moved::Delta
    } else if tag < tag::REALLOC_COMPACT {
        Moved::ToFreed
    } else if tag & tag::REALLOC_IN_PLACE != 0 {
        Moved::InPlace
    } else {
        Moved::Delta
    }
}

/// The compact allocation tags of version 2.
#[inline(always)]
pub(crate) fn is_alloc_v2(tag: u8) -> bool {
    (tag::ALLOC_NEW..tag::ALLOC_REUSE + tag::ALIGN_IN_TAG).contains(&tag)
}

/// A reference to a recent block that the chunk does not have.
fn no_block(what: &str, k: u64) -> DecodeError {
    DecodeError::Invalid(format!("{what} names recent block {k}, which the chunk does not have"))
}

/// Decodes the next record, skipping extension records this reader does not
/// know. Returns `Ok(None)` when the buffer is exhausted.
pub(crate) fn decode(
    c: &mut Cursor<'_>,
    t: &mut Times<'_, '_>,
    d: &mut Deltas,
    recent: &mut Recent,
) -> Result<Option<Record>, DecodeError> {
    loop {
        if c.is_empty() {
            return Ok(None);
        }
        let tag = c.u8("record tag")?;
        // Version 1 has each record's timestamp right after its tag.
        let ts = match t {
            Times::Inline if timed(tag) => d.ts(c)?,
            _ => 0,
        };
        let t = &mut *t;
        let mut ts = move |d: &mut Deltas| -> Result<u64, DecodeError> {
            match t {
                Times::Inline => Ok(ts),
                Times::Apart(lo, rest) => d.ts_planes(lo, rest),
            }
        };
        let r = match tag {
            tag::THREAD_START => Record::ThreadStart { ts: ts(d)?, name: c.str("thread name")? },
            tag::THREAD_END => Record::ThreadEnd { ts: ts(d)? },
            tag::ALLOC | tag::ALLOC_WEIGHTED => {
                let addr = d.addr(c)?;
                let size = c.u64("size")?;
                let align = c.u64("align")?;
                let site = c.u32("site")?;
                let weight = if tag == tag::ALLOC_WEIGHTED { c.u64("weight")? } else { 1 };
                recent.allocated(addr, size);
                Record::Alloc { ts: ts(d)?, addr, size, align, site, weight }
            }
            t_ if is_alloc_v2(t_) => {
                let align = 1u64 << ((t_ - tag::ALLOC_NEW) % tag::ALIGN_IN_TAG);
                let (addr, size) = if t_ < tag::ALLOC_REUSE_SAME {
                    (d.addr(c)?, c.u64("size")?)
                } else {
                    let k = c.u64("recent free")?;
                    let (addr, freed) =
                        recent.free(k).ok_or_else(|| no_block("an allocation", k))?;
                    d.addr = addr;
                    (addr, if t_ < tag::ALLOC_REUSE { freed } else { c.u64("size")? })
                };
                let site = c.u32("site")?;
                recent.allocated(addr, size);
                Record::Alloc { ts: ts(d)?, addr, size, align, site, weight: 1 }
            }
            tag::ALLOC_FAILED => {
                Record::AllocFailed { ts: ts(d)?, size: c.u64("size")?, align: c.u64("align")? }
            }
            tag::FREE | tag::FREE_RECENT => {
                let (addr, size) = if tag == tag::FREE {
                    (d.addr(c)?, c.u64("size")?)
                } else {
                    let k = c.u64("recent allocation")?;
                    let block = recent.alloc(k).ok_or_else(|| no_block("a free", k))?;
                    d.addr = block.0;
                    block
                };
                recent.freed(addr, size);
                Record::Free { ts: ts(d)?, addr, size }
            }
            t_ if t_ == tag::REALLOC || is_realloc_compact(t_) => {
                let start = c.i64("realloc start")? as u64;
                let compact = t_ != tag::REALLOC;
                let (old_addr, old_size) = if compact && t_ & tag::REALLOC_RECENT_OLD != 0 {
                    let k = c.u64("recent allocation")?;
                    recent.alloc(k).ok_or_else(|| no_block("a reallocation", k))?
                } else {
                    (d.addr(c)?, c.u64("old size")?)
                };
                let new_addr = match moved(t_) {
                    Moved::InPlace => old_addr,
                    Moved::ToFreed => {
                        let k = c.u64("recent free")?;
                        let block = recent.free(k).ok_or_else(|| no_block("a reallocation", k))?;
                        block.0
                    }
                    Moved::Delta => old_addr.wrapping_add(c.i64("address")? as u64),
                };
                let new_size = c.u64("new size")?;
                let align = if compact { 1 << (t_ & 7) } else { c.u64("align")? };
                let site = c.u32("site")?;
                d.addr = new_addr;
                if old_addr != new_addr {
                    recent.freed(old_addr, old_size);
                }
                recent.allocated(new_addr, new_size);
                let ts = ts(d)?;
                Record::Realloc {
                    ts,
                    start_ts: ts.wrapping_sub(start),
                    old_addr,
                    old_size,
                    new_addr,
                    new_size,
                    align,
                    site,
                }
            }
            tag::SCOPE_ENTER => Record::ScopeEnter { ts: ts(d)?, scope: c.u32("scope")? },
            tag::SCOPE_EXIT => Record::ScopeExit { ts: ts(d)?, scope: c.u32("scope")? },
            tag::PAUSE => Record::Pause { ts: ts(d)? },
            tag::RESUME => Record::Resume { ts: ts(d)? },
            tag::COUNTERS => {
                let ts = ts(d)?;
                let scope = c.u32("scope")?;
                let n = c.count("counter values")?;
                let mut values = Vec::with_capacity(n);
                for _ in 0..n {
                    values.push(c.u64("counter value")?);
                }
                Record::Counters { ts, scope, values }
            }
            tag::SITE_DEF => {
                let site = c.u32("site")?;
                let n = c.count("frames")?;
                let mut frames = Vec::with_capacity(n);
                let mut prev = 0u64;
                for _ in 0..n {
                    prev = prev.wrapping_add(c.i64("frame")? as u64);
                    frames.push(prev);
                }
                Record::SiteDef { site, frames }
            }
            tag::SCOPE_DEF => Record::ScopeDef {
                scope: c.u32("scope")?,
                name: c.str("scope name")?,
                category: c.str("category")?,
                description: c.str("description")?,
                priority: c.i64("priority")?,
            },
            tag::SYMBOL => Record::Symbol {
                addr: c.u64("address")?,
                function: c.str("function")?,
                file: c.str("file")?,
                line: c.u32("line")?,
            },
            tag::SPAN => {
                let ts = ts(d)?;
                let start_ts = ts.wrapping_sub(c.i64("span start")? as u64);
                Record::Span { ts, start_ts, scope: c.u32("scope")? }
            }
            t if t >= tag::EXTENSION => {
                let n = c.count("extension length")?;
                c.bytes(n, "extension body")?;
                continue;
            }
            t => return Err(DecodeError::Invalid(format!("unknown record tag {t}"))),
        };
        return Ok(Some(r));
    }
}
