//! Session metadata (in the header) and totals (in the trailer).

use crate::codec::{put_f64, put_str, put_u64, Cursor, DecodeError};
use crate::record::RecordKind;

/// Where timestamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ClockSource {
    /// `CLOCK_MONOTONIC`, one tick per nanosecond.
    Monotonic,
    /// The processor's invariant time-stamp counter.
    Tsc,
}

/// How to turn ticks into time.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ClockInfo {
    /// The clock read for every timestamp.
    pub source: ClockSource,
    /// Ticks per nanosecond (1.0 for the monotonic clock).
    pub ticks_per_ns: f64,
    /// How `ticks_per_ns` was measured, in words.
    pub calibration: String,
}

impl ClockInfo {
    /// Whether `ticks_per_ns` is a rate a clock can have: between one tick
    /// per microsecond and a thousand per nanosecond. Outside it, a session's
    /// times would come out as zero or infinity, so a reader refuses such a
    /// calibration rather than report either.
    pub fn plausible(ticks_per_ns: f64) -> bool {
        (1e-3..=1e3).contains(&ticks_per_ns)
    }

    /// The monotonic clock: ticks are nanoseconds.
    pub fn monotonic() -> Self {
        ClockInfo {
            source: ClockSource::Monotonic,
            ticks_per_ns: 1.0,
            calibration: String::from("none needed"),
        }
    }
}

/// What the allocator recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AllocMode {
    /// Nothing: the allocator was not installed or tracking was off.
    Off,
    /// Exact counts and bytes, per thread and per scope, no stacks.
    Count,
    /// Every allocation with its stack.
    Full,
    /// Every allocation counted; stacks on a sample chosen by bytes.
    Sample {
        /// The mean number of bytes between two sampled allocations.
        mean_bytes: u64,
    },
}

impl AllocMode {
    /// The name users type in `PULSE_ALLOC`.
    pub fn name(self) -> &'static str {
        match self {
            AllocMode::Off => "off",
            AllocMode::Count => "count",
            AllocMode::Full => "full",
            AllocMode::Sample { .. } => "sample",
        }
    }
}

/// Whether a counter could be opened, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CounterInfo {
    /// Its name, e.g. `cycles` or `task-clock`.
    pub name: String,
    /// Whether it is read in this session; [`Record::Counters`](crate::Record::Counters)
    /// values follow the order of the available ones.
    pub available: bool,
    /// Why it is unavailable, or how it is read.
    pub reason: String,
}

/// The key of [`Metadata::extra`] that says the session opens its counters
/// at the first scope that reads them, not at its start: the metadata
/// lists none, and [`Trailer::counters`] says what was opened. Its value
/// says which set is tried, in words.
pub const COUNTERS_AT_FIRST_USE: &str = "counters";

/// The hardware set's counters, in the order a
/// [`Record::Counters`](crate::Record::Counters) of five values holds them.
pub const HARDWARE_COUNTERS: [&str; 5] =
    ["cycles", "instructions", "cache-references", "cache-misses", "branch-misses"];

/// The software set's counters, in the order a
/// [`Record::Counters`](crate::Record::Counters) of four values holds them.
pub const SOFTWARE_COUNTERS: [&str; 4] =
    ["task-clock", "page-faults", "context-switches", "cpu-migrations"];

/// Everything known about a session when it starts.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Metadata {
    /// The writer, e.g. `pulse 0.1.0`.
    pub writer: String,
    /// The program's executable.
    pub program: String,
    /// Its arguments, without the program.
    pub args: Vec<String>,
    /// Its process id.
    pub pid: u32,
    /// The host name.
    pub host: String,
    /// Wall-clock start, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// The clock timestamps come from, calibrated at the start.
    pub clock: ClockInfo,
    /// What the allocator recorded.
    pub alloc_mode: AllocMode,
    /// The counters asked for, opened or not; none where they are opened
    /// at first use ([`COUNTERS_AT_FIRST_USE`]).
    pub counters: Vec<CounterInfo>,
    /// Further facts as key/value pairs (forward compatible).
    pub extra: Vec<(String, String)>,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            writer: String::new(),
            program: String::new(),
            args: Vec::new(),
            pid: 0,
            host: String::new(),
            start_unix_ns: 0,
            clock: ClockInfo::monotonic(),
            alloc_mode: AllocMode::Off,
            counters: Vec::new(),
            extra: Vec::new(),
        }
    }
}

impl Metadata {
    /// Whether the session opens its counters at the first scope that
    /// reads them, and says which in its trailer.
    pub fn counters_at_first_use(&self) -> bool {
        self.extra.iter().any(|(k, _)| k == COUNTERS_AT_FIRST_USE)
    }

    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        put_str(buf, &self.writer);
        put_str(buf, &self.program);
        put_u64(buf, self.args.len() as u64);
        for a in &self.args {
            put_str(buf, a);
        }
        put_u64(buf, u64::from(self.pid));
        put_str(buf, &self.host);
        put_u64(buf, self.start_unix_ns);
        buf.push(match self.clock.source {
            ClockSource::Monotonic => 0,
            ClockSource::Tsc => 1,
        });
        put_f64(buf, self.clock.ticks_per_ns);
        put_str(buf, &self.clock.calibration);
        match self.alloc_mode {
            AllocMode::Off => buf.push(0),
            AllocMode::Count => buf.push(1),
            AllocMode::Full => buf.push(2),
            AllocMode::Sample { mean_bytes } => {
                buf.push(3);
                put_u64(buf, mean_bytes);
            }
        }
        put_counters(buf, &self.counters);
        put_pairs(buf, self.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }

    pub(crate) fn decode(c: &mut Cursor<'_>) -> Result<Self, DecodeError> {
        let writer = c.str("writer")?;
        let program = c.str("program")?;
        let n = c.count("arguments")?;
        let mut args = Vec::with_capacity(n);
        for _ in 0..n {
            args.push(c.str("argument")?);
        }
        let pid = c.u32("pid")?;
        let host = c.str("host")?;
        let start_unix_ns = c.u64("start time")?;
        let source = match c.u8("clock source")? {
            0 => ClockSource::Monotonic,
            1 => ClockSource::Tsc,
            v => return Err(DecodeError::Invalid(format!("unknown clock source {v}"))),
        };
        let ticks_per_ns = c.f64("ticks per ns")?;
        if !ClockInfo::plausible(ticks_per_ns) {
            return Err(DecodeError::Invalid(format!(
                "clock calibration {ticks_per_ns:e} ticks/ns is not a rate a clock can have"
            )));
        }
        let calibration = c.str("calibration")?;
        let alloc_mode = match c.u8("allocation mode")? {
            0 => AllocMode::Off,
            1 => AllocMode::Count,
            2 => AllocMode::Full,
            3 => AllocMode::Sample { mean_bytes: c.u64("sampling interval")? },
            v => return Err(DecodeError::Invalid(format!("unknown allocation mode {v}"))),
        };
        let counters = get_counters(c)?;
        let extra = get_pairs(c, |c| c.str("value"))?;
        Ok(Metadata {
            writer,
            program,
            args,
            pid,
            host,
            start_unix_ns,
            clock: ClockInfo { source, ticks_per_ns, calibration },
            alloc_mode,
            counters,
            extra,
        })
    }
}

/// Totals written when the session finishes, for a reader to cross-check.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Trailer {
    /// The clock at the end of the session, in ticks.
    pub end_ts: u64,
    /// Wall-clock end, nanoseconds since the Unix epoch.
    pub end_unix_ns: u64,
    /// Ticks per nanosecond measured over the whole session (0 if not measured).
    pub ticks_per_ns: f64,
    /// Chunks written before the trailer.
    pub chunks: u64,
    /// Records written, by kind.
    pub record_counts: Vec<(RecordKind, u64)>,
    /// Events the program produced that could not be written (0 under the
    /// default lossless policy).
    pub lost_events: u64,
    /// Further totals as key/value pairs (forward compatible), e.g. the
    /// profiler's own allocations.
    pub extra: Vec<(String, u64)>,
    /// What went wrong during the session that a reader should be told, as
    /// key/text pairs, e.g. `counters` when reading them failed part way.
    /// Absent from files written before it existed (read as empty).
    pub notes: Vec<(String, String)>,
    /// The counters asked for, opened or not, where the session opened them
    /// at first use ([`COUNTERS_AT_FIRST_USE`]); empty where none was read
    /// or the metadata lists them.
    pub counters: Vec<CounterInfo>,
}

impl Trailer {
    /// Records written of `kind`.
    pub fn count(&self, kind: RecordKind) -> u64 {
        self.record_counts.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n)
    }

    /// The text of a note, if present.
    pub fn note(&self, key: &str) -> Option<&str> {
        self.notes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of an extra total, if present.
    pub fn extra(&self, key: &str) -> Option<u64> {
        self.extra.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        put_u64(buf, self.end_ts);
        put_u64(buf, self.end_unix_ns);
        put_f64(buf, self.ticks_per_ns);
        put_u64(buf, self.chunks);
        put_u64(buf, self.record_counts.len() as u64);
        for (k, n) in &self.record_counts {
            buf.push(*k as u8);
            put_u64(buf, *n);
        }
        put_u64(buf, self.lost_events);
        put_u64(buf, self.extra.len() as u64);
        for (k, v) in &self.extra {
            put_str(buf, k);
            put_u64(buf, *v);
        }
        // Fields 8 and 9 are written only where there is a note or a
        // counter (field 8 then as none), so a trailer without them is byte
        // for byte what it was before they existed.
        if !self.notes.is_empty() || !self.counters.is_empty() {
            put_pairs(buf, self.notes.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        if !self.counters.is_empty() {
            put_counters(buf, &self.counters);
        }
    }

    pub(crate) fn decode(c: &mut Cursor<'_>) -> Result<Self, DecodeError> {
        let end_ts = c.u64("end time")?;
        let end_unix_ns = c.u64("end wall time")?;
        let ticks_per_ns = c.f64("ticks per ns")?;
        let chunks = c.u64("chunk count")?;
        let n = list_len(c, "record counts")?;
        let mut record_counts = Vec::with_capacity(n);
        for _ in 0..n {
            let tag = c.u8("record kind")?;
            let count = c.u64("record count")?;
            // A kind this reader does not know is an extension; skip it.
            if let Some(kind) = RecordKind::from_tag(tag) {
                record_counts.push((kind, count));
            }
        }
        let lost_events = c.u64("lost events")?;
        let extra = get_pairs(c, |c| c.u64("value"))?;
        // Field 8 came later: a trailer that ends after field 7 has no notes.
        let notes = if c.is_empty() { Vec::new() } else { get_pairs(c, |c| c.str("note"))? };
        // Field 9 came later still.
        let counters = if c.is_empty() { Vec::new() } else { get_counters(c)? };
        Ok(Trailer {
            end_ts,
            end_unix_ns,
            ticks_per_ns,
            chunks,
            record_counts,
            lost_events,
            extra,
            notes,
            counters,
        })
    }
}

fn put_counters(buf: &mut Vec<u8>, counters: &[CounterInfo]) {
    put_u64(buf, counters.len() as u64);
    for c in counters {
        put_str(buf, &c.name);
        buf.push(u8::from(c.available));
        put_str(buf, &c.reason);
    }
}

/// The most entries a list of the metadata or the trailer may hold (its
/// arguments aside): counters, key/value pairs, notes, record counts. A
/// compressed trailer of a few kilobytes could otherwise claim millions of
/// empty entries, each a few bytes and costing a reader a hundred.
pub const MAX_LIST: usize = 65_536;

/// A list's length, refused past [`MAX_LIST`].
fn list_len(c: &mut Cursor<'_>, what: &'static str) -> Result<usize, DecodeError> {
    let n = c.count(what)?;
    if n > MAX_LIST {
        return Err(DecodeError::Invalid(format!(
            "{what}: claims {n} entries, more than the {MAX_LIST} a session may list"
        )));
    }
    Ok(n)
}

fn get_counters(c: &mut Cursor<'_>) -> Result<Vec<CounterInfo>, DecodeError> {
    let n = list_len(c, "counters")?;
    let mut counters = Vec::with_capacity(n);
    for _ in 0..n {
        counters.push(CounterInfo {
            name: c.str("counter name")?,
            available: c.u8("counter availability")? != 0,
            reason: c.str("counter reason")?,
        });
    }
    Ok(counters)
}

fn put_pairs<'a>(buf: &mut Vec<u8>, pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)>) {
    put_u64(buf, pairs.len() as u64);
    for (k, v) in pairs {
        put_str(buf, k);
        put_str(buf, v);
    }
}

fn get_pairs<V>(
    c: &mut Cursor<'_>,
    mut value: impl FnMut(&mut Cursor<'_>) -> Result<V, DecodeError>,
) -> Result<Vec<(String, V)>, DecodeError> {
    let n = list_len(c, "pairs")?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let k = c.str("key")?;
        out.push((k, value(c)?));
    }
    Ok(out)
}
