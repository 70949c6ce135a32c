//! Several sessions of a program merged into one session file, to analyze
//! many runs (or many processes) as one aggregate.
//!
//! The sessions are laid end to end on one nanosecond clock, each starting
//! a microsecond after the previous one ended. Everything that could
//! collide between two processes is made distinct: thread ids, site ids and
//! block and frame addresses carry the session's number in their high bits,
//! and scopes are matched by name and category. The result is an ordinary
//! session file: every report, export and diff reads it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use pulse_format::{
    AllocMode, ChunkEncoder, ClockInfo, Event, Metadata, RawFrame, Reader, Record, Sink, Trailer,
    Writer, COUNTERS_AT_FIRST_USE, NO_SCOPE, NO_SITE,
};

use crate::error::Error;
use crate::model::sites::{recorded_dirs, MAX_PULSE_DIRS, PULSE_SOURCES_KEY, STACK_DEPTH_KEY};
use crate::write::text::printable;

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MergeSummary {
    /// Sessions merged.
    pub sessions: usize,
    /// Records written.
    pub records: u64,
    /// Things to know (different programs, truncated inputs).
    pub warnings: Vec<String>,
}

/// Where a session's addresses go: above anything a 64-bit process maps,
/// under its number in the merge, from 1 (`base` + 1, `base` the sessions
/// before it). A merge given to the merge has numbered its own sessions
/// so: they are numbered on from `base`, apart from every other's.
fn tag(base: u64, addr: u64) -> u64 {
    if addr == 0 {
        return 0;
    }
    let number = base.saturating_add((addr >> 52).max(1));
    (addr & ((1 << 52) - 1)) | (number << 52)
}

/// A thread's id in the merge: its own in the low 32 bits, its session's
/// number (see [`tag`]) above.
fn tag_thread(base: u64, thread: u64) -> u64 {
    if thread == 0 {
        return 0;
    }
    let number = base.saturating_add((thread >> 32).max(1));
    (thread & 0xFFFF_FFFF) | (number << 32)
}

/// Where a session to merge is read from.
enum Source<'a> {
    File(&'a Path),
    /// The bytes of a session, and its place among the inputs.
    Bytes(usize, &'a [u8]),
}

impl Source<'_> {
    /// The name errors and warnings give it.
    fn path(&self) -> PathBuf {
        match self {
            Source::File(p) => p.to_path_buf(),
            Source::Bytes(k, _) => PathBuf::from(format!("session {}", k + 1)),
        }
    }

    /// A reader at its first frame (each pass opens it anew).
    fn open(&self) -> Result<Reader<Box<dyn Read + '_>>, Error> {
        let input: Box<dyn Read + '_> = match self {
            Source::File(path) => {
                if path.is_dir() {
                    return Err(Error::IsDirectory(path.to_path_buf()));
                }
                let file = File::open(path)
                    .map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
                Box::new(BufReader::new(file))
            }
            Source::Bytes(_, bytes) => Box::new(*bytes),
        };
        Reader::new(input).map_err(|source| Error::Format { path: self.path(), source })
    }
}

/// Merges the sessions at `inputs` into one, written to `out`.
pub fn merge(inputs: &[impl AsRef<Path>], out: impl Write) -> Result<MergeSummary, Error> {
    let sources: Vec<Source<'_>> = inputs.iter().map(|p| Source::File(p.as_ref())).collect();
    merge_sources(&sources, out)
}

/// [`merge`] for sessions held in memory; errors and warnings name them
/// `session 1`, `session 2`, … in the order given.
pub fn merge_bytes(inputs: &[&[u8]], out: impl Write) -> Result<MergeSummary, Error> {
    let sources: Vec<Source<'_>> =
        inputs.iter().enumerate().map(|(k, b)| Source::Bytes(k, b)).collect();
    merge_sources(&sources, out)
}

fn merge_sources(inputs: &[Source<'_>], out: impl Write) -> Result<MergeSummary, Error> {
    let mut summary = MergeSummary { sessions: inputs.len(), ..MergeSummary::default() };
    let first = inputs.first().ok_or_else(|| Error::Io {
        path: Default::default(),
        source: std::io::Error::other("nothing to merge: give at least one session"),
    })?;
    let first_meta = first.open()?.metadata().clone();
    let mut meta = Metadata {
        writer: format!("pulse merge {}", env!("CARGO_PKG_VERSION")),
        args: Vec::new(),
        clock: ClockInfo {
            calibration: String::from("merged sessions, converted to nanoseconds"),
            ..ClockInfo::monotonic()
        },
        extra: vec![(String::from("merged_sessions"), inputs.len().to_string())],
        counters: first_meta.counters.clone(),
        ..first_meta.clone()
    };
    let out_err = Error::Write;
    let mut scopes: BTreeMap<(String, String), u32> = BTreeMap::new();
    // (session, its scope id) → the merged scope id.
    let mut scope_map: BTreeMap<(usize, u32), u32> = BTreeMap::new();
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    // First pass over every session: its time span and its largest site id.
    let mut spans: Vec<Span> = Vec::with_capacity(inputs.len());
    // The allocation mode of the first session that recorded allocations.
    let mut recording: Option<(AllocMode, PathBuf)> = None;
    let mut first_use: Option<(String, String)> = None;
    // pulse's source directories, of every session (its frames are told
    // from the program's by them), and the stack depth where all agree.
    let mut source_dirs: Vec<String> = Vec::new();
    let mut depths: Vec<Option<String>> = Vec::new();
    let mut offset_ns = 0u64;
    for input in inputs {
        let path = &input.path();
        let fmt = |source| Error::Format { path: path.clone(), source };
        let mut r = input.open()?;
        // A sampled run's sites are weighed by its interval, a full one's
        // counted, a counting one's totals are in its trailer alone: one
        // mode for the merge would misread the others. (A session that
        // recorded no allocations merges with any.)
        let this = r.metadata().alloc_mode;
        let recorded = match recording {
            _ if this == AllocMode::Off => None,
            Some((m, _)) if m != this => Some(m),
            Some(_) => None,
            None => {
                recording = Some((this, path.clone()));
                None
            }
        };
        if let Some(other) = recorded {
            let mode = |m: AllocMode| match m {
                AllocMode::Sample { mean_bytes } => {
                    format!("sample mode (one stack per {mean_bytes} B on average)")
                }
                m => format!("{} mode", m.name()),
            };
            return Err(Error::DifferentModes {
                path: path.clone(),
                modes: (mode(this), mode(other)),
            });
        }
        if r.metadata().program != first_meta.program {
            summary.warnings.push(format!(
                "{} is a session of {}, not {}",
                printable(&path.display().to_string()),
                printable(&r.metadata().program),
                printable(&first_meta.program)
            ));
        }
        // Counters: the first session's that lists any names the merged
        // readings, in its metadata or (opened at first use) its trailer;
        // where none does, a session that would have opened them at first
        // use keeps its key, so that readings of sessions cut before their
        // trailer are still named by their number.
        if meta.counters.is_empty() {
            meta.counters = r.metadata().counters.clone();
        }
        if first_use.is_none() {
            first_use =
                r.metadata().extra.iter().find(|(k, _)| k == COUNTERS_AT_FIRST_USE).cloned();
        }
        let extra = |key: &str| r.metadata().extra.iter().find(|(k, _)| k == key).map(|e| &e.1);
        // The directories a reader takes, as many.
        for dir in recorded_dirs(extra(PULSE_SOURCES_KEY).map_or("", |v| v.as_str())) {
            if source_dirs.len() < MAX_PULSE_DIRS && !source_dirs.iter().any(|d| d == dir) {
                source_dirs.push(dir.to_owned());
            }
        }
        depths.push(extra(STACK_DEPTH_KEY).cloned());
        // A merge given to a merge keeps its runs (and which were cut).
        let (inner, inner_cut) = (merged_runs(r.metadata()), merged_cut(r.metadata()));
        let mut truncated = false;
        let tpn = r.metadata().clock.ticks_per_ns;
        let mut first = FirstPass { lo: u64::MAX, hi: 0, last_event: 0, max_site: 0 };
        let mut max_round = 0u64;
        loop {
            match r.next_raw() {
                Ok(Some(RawFrame::Chunk(c))) => {
                    max_round = max_round.max(c.round);
                    c.decode(&mut first).map_err(fmt)?;
                }
                Ok(Some(RawFrame::Trailer(t))) => {
                    first.hi = first.hi.max(t.end_ts);
                    if meta.counters.is_empty() {
                        meta.counters = t.counters.clone();
                    }
                    for (key, v) in &t.extra {
                        // pulse's own costs are each run's, not the merge's.
                        let own = ["collector_cpu_ns", "wait_ns", "finish_ns"];
                        if !key.starts_with("pulse_") && !own.contains(&key.as_str()) {
                            let total = totals.entry(key.clone()).or_default();
                            *total = total.saturating_add(*v);
                        }
                    }
                }
                Ok(None) => break,
                Err(e) if e.is_truncation() => {
                    summary.warnings.push(format!(
                        "{}: {e}; merged up to the cut",
                        printable(&path.display().to_string())
                    ));
                    truncated = true;
                    break;
                }
                Err(e) => return Err(fmt(e)),
            }
        }
        let FirstPass { mut lo, hi, last_event, max_site } = first;
        if lo == u64::MAX {
            lo = 0;
        }
        let span = Span {
            lo,
            tpn,
            offset_ns,
            max_site,
            max_round,
            last_event: 0,
            inner,
            inner_cut,
            truncated,
        };
        // The run ends, for what is judged over time, at its last event:
        // the trailer's end also covers the time pulse took to finish.
        let span = Span { last_event: span.ns(last_event.min(hi)), ..span };
        offset_ns = span.ns(hi).saturating_add(1_000);
        spans.push(span);
    }
    // Where each session lies in the merged one, so that what is judged run
    // by run (leaks: a cache filled in each run is not a leak of them all)
    // can be: `highest site id:first ns:last ns`, one per session, or one
    // per run of a merge given to the merge; and which runs were cut.
    let mut site_base = 0u32;
    let mut runs = Vec::with_capacity(spans.len());
    let mut cut: Vec<String> = Vec::new();
    for span in &spans {
        let base = site_base;
        site_base = site_base.saturating_add(span.max_site);
        if span.inner.is_empty() {
            if span.truncated {
                cut.push(runs.len().to_string());
            }
            runs.push(format!("{site_base}:{}:{}", span.offset_ns, span.last_event));
            continue;
        }
        let last = span.inner.len() - 1;
        for (k, r) in span.inner.iter().enumerate() {
            let top = match k == last {
                true => site_base,
                false => base.saturating_add(r.last_site.min(span.max_site)),
            };
            let (start, end) = (span.ns(r.start_ns), span.ns(r.end_ns));
            // Cut where it was, or where this file was: in the run the
            // reading stopped in (and any it never reached).
            if span.inner_cut.contains(&k) || span.truncated && end >= span.last_event {
                cut.push(runs.len().to_string());
            }
            runs.push(format!("{top}:{}:{}", start.min(span.last_event), end.min(span.last_event)));
        }
    }
    // The merge's mode is that of the sessions that recorded allocations.
    if let Some((mode, _)) = recording {
        meta.alloc_mode = mode;
    }
    meta.extra.push((String::from(MERGED_RUNS), runs.join(",")));
    if !cut.is_empty() {
        meta.extra.push((String::from(MERGED_CUT), cut.join(",")));
    }
    if !source_dirs.is_empty() {
        meta.extra.push((String::from(PULSE_SOURCES_KEY), source_dirs.join("\n")));
    }
    if let (Some(Some(depth)), true) = (depths.first(), depths.windows(2).all(|w| w[0] == w[1])) {
        meta.extra.push((String::from(STACK_DEPTH_KEY), depth.clone()));
    }
    if let (true, Some(key)) = (meta.counters.is_empty(), first_use) {
        meta.extra.push(key);
    }
    let mut w = Writer::new(out, &meta).map_err(out_err)?;
    let (mut round_base, mut site_base, mut tag_base) = (0u64, 0u32, 0u64);
    let mut enc = ChunkEncoder::new();
    for (k, (input, span)) in inputs.iter().zip(&spans).enumerate() {
        let path = &input.path();
        let fmt = |source| Error::Format { path: path.clone(), source };
        // Second pass: rewrite every record, one at a time, as it is decoded.
        let mut r = input.open()?;
        loop {
            let chunk = match r.next_raw() {
                Ok(Some(RawFrame::Chunk(c))) => c,
                Ok(Some(RawFrame::Trailer(_))) | Ok(None) => break,
                Err(e) if e.is_truncation() => break,
                Err(e) => return Err(fmt(e)),
            };
            let thread = tag_thread(tag_base, chunk.thread);
            let round = round_base.saturating_add(chunk.round);
            enc.begin(thread, round);
            let mut copy = Copy {
                k,
                tag_base,
                span,
                site_base,
                scopes: &mut scopes,
                scope_map: &mut scope_map,
                enc: &mut enc,
                w: &mut w,
                thread,
                round,
                records: &mut summary.records,
                err: None,
            };
            chunk.decode(&mut copy).map_err(fmt)?;
            if let Some(e) = copy.err {
                return Err(out_err(e));
            }
            w.write_chunk(&enc).map_err(out_err)?;
        }
        round_base = round_base.saturating_add(span.max_round.saturating_add(2));
        site_base = site_base.saturating_add(span.max_site);
        tag_base = tag_base.saturating_add(span.inner.len().max(1) as u64);
    }
    let trailer = Trailer {
        end_ts: offset_ns,
        ticks_per_ns: 1.0,
        extra: totals.into_iter().collect(),
        ..Trailer::default()
    };
    w.finish(trailer).map_err(out_err)?;
    Ok(summary)
}

/// A session's first pass: its earliest and latest timestamps, the latest
/// of its records' (`last_event`: the trailer's end may be later), and its
/// largest site id.
struct FirstPass {
    lo: u64,
    hi: u64,
    last_event: u64,
    max_site: u32,
}

impl FirstPass {
    fn ts(&mut self, ts: u64) {
        self.lo = self.lo.min(ts);
        self.hi = self.hi.max(ts);
        self.last_event = self.last_event.max(ts);
    }
}

impl Sink for FirstPass {
    fn event(&mut self, e: Event) {
        self.ts(e.ts());
    }

    fn record(&mut self, r: Record) {
        if let Some(ts) = r.ts() {
            self.ts(ts);
        }
        if let Record::SiteDef { site, .. } = r {
            self.max_site = self.max_site.max(site);
        }
    }
}

/// A merged chunk grows no larger than this: past it, the input chunk's
/// records go on in another chunk of the same thread and round (the
/// writer's chunks hold about 1 MiB, so a session's own never reach it),
/// so that merging holds one record at a time and a chunk's encoding,
/// whatever the inputs' frames hold, and never writes a frame over the
/// format's limit.
const MERGED_CHUNK: usize = 4 << 20;

/// Session `k`'s records rewritten into the merged session as they are
/// decoded, one at a time.
struct Copy<'a, W: Write> {
    k: usize,
    /// The sessions numbered before this one's (see [`tag`]).
    tag_base: u64,
    span: &'a Span,
    site_base: u32,
    scopes: &'a mut BTreeMap<(String, String), u32>,
    scope_map: &'a mut BTreeMap<(usize, u32), u32>,
    enc: &'a mut ChunkEncoder,
    w: &'a mut Writer<W>,
    thread: u64,
    round: u64,
    records: &'a mut u64,
    /// The first error writing a full chunk; nothing is written after it.
    err: Option<std::io::Error>,
}

impl<W: Write> Sink for Copy<'_, W> {
    fn event(&mut self, e: Event) {
        self.copy(e.into());
    }

    fn record(&mut self, r: Record) {
        self.copy(r);
    }
}

impl<W: Write> Copy<'_, W> {
    fn copy(&mut self, rec: Record) {
        let (k, base) = (self.k, self.tag_base);
        let span = self.span;
        let ns = |ts: u64| span.ns(ts);
        let site_base = self.site_base;
        let site = |s: u32| if s == NO_SITE { NO_SITE } else { site_base.saturating_add(s) };
        let scope_map = &mut *self.scope_map;
        let rec = match rec {
            Record::ScopeDef { scope, name, category, description, priority } => {
                let next = self.scopes.len() as u32 + 1;
                let id = *self.scopes.entry((name.clone(), category.clone())).or_insert(next);
                scope_map.insert((k, scope), id);
                if id != next {
                    return;
                }
                Record::ScopeDef { scope: id, name, category, description, priority }
            }
            Record::SiteDef { site: s, frames } => Record::SiteDef {
                site: site(s),
                frames: frames.into_iter().map(|f| tag(base, f)).collect(),
            },
            Record::Symbol { addr, function, file, line } => {
                Record::Symbol { addr: tag(base, addr), function, file, line }
            }
            Record::ThreadStart { ts, name } => Record::ThreadStart { ts: ns(ts), name },
            Record::ThreadEnd { ts } => Record::ThreadEnd { ts: ns(ts) },
            Record::Alloc { ts, addr, size, align, site: s, weight } => Record::Alloc {
                ts: ns(ts),
                addr: tag(base, addr),
                size,
                align,
                site: site(s),
                weight,
            },
            Record::AllocFailed { ts, size, align } => {
                Record::AllocFailed { ts: ns(ts), size, align }
            }
            Record::Free { ts, addr, size } => {
                Record::Free { ts: ns(ts), addr: tag(base, addr), size }
            }
            Record::Realloc {
                ts,
                start_ts,
                old_addr,
                old_size,
                new_addr,
                new_size,
                align,
                site: s,
            } => Record::Realloc {
                ts: ns(ts),
                start_ts: ns(start_ts),
                old_addr: tag(base, old_addr),
                old_size,
                new_addr: tag(base, new_addr),
                new_size,
                align,
                site: site(s),
            },
            Record::ScopeEnter { ts, scope } => {
                Record::ScopeEnter { ts: ns(ts), scope: mapped(scope_map, k, scope) }
            }
            Record::ScopeExit { ts, scope } => {
                Record::ScopeExit { ts: ns(ts), scope: mapped(scope_map, k, scope) }
            }
            Record::Pause { ts } => Record::Pause { ts: ns(ts) },
            Record::Resume { ts } => Record::Resume { ts: ns(ts) },
            Record::Counters { ts, scope, values } => {
                Record::Counters { ts: ns(ts), scope: mapped(scope_map, k, scope), values }
            }
            Record::Span { ts, start_ts, scope } => Record::Span {
                ts: ns(ts),
                start_ts: ns(start_ts),
                scope: mapped(scope_map, k, scope),
            },
        };
        if self.err.is_some() {
            return;
        }
        if self.enc.encoded_len() >= MERGED_CHUNK {
            if let Err(e) = self.w.write_chunk(self.enc) {
                self.err = Some(e);
                return;
            }
            self.enc.begin(self.thread, self.round);
        }
        self.enc.push(&rec);
        *self.records += 1;
    }
}

/// The metadata key of a merged session's runs (see [`merged_runs`]).
pub(crate) const MERGED_RUNS: &str = "merged_runs";

/// The metadata key of the runs of a merge whose files were cut before
/// their sessions ended: their indices, comma-separated (see
/// [`merged_cut`]). Apart from [`MERGED_RUNS`], which older readers parse
/// whole.
pub(crate) const MERGED_CUT: &str = "merged_cut";

/// The runs of a merged session (indices into [`merged_runs`]) whose files
/// were cut before their sessions ended; empty for any other session.
pub(crate) fn merged_cut(meta: &Metadata) -> Vec<usize> {
    let Some((_, v)) = meta.extra.iter().find(|(k, _)| k == MERGED_CUT) else {
        return Vec::new();
    };
    v.split(',').filter_map(|k| k.parse().ok()).collect()
}

/// One session's place in a merge, from its first pass.
struct Span {
    /// Its earliest timestamp.
    lo: u64,
    tpn: f64,
    /// Where its earliest timestamp lands, in ns on the merged clock.
    offset_ns: u64,
    max_site: u32,
    max_round: u64,
    /// Its last event, in ns on the merged clock.
    last_event: u64,
    /// Where it is itself a merge, its runs, and those of them cut.
    inner: Vec<Run>,
    inner_cut: Vec<usize>,
    /// Whether its file was cut before its session ended.
    truncated: bool,
}

impl Span {
    /// A timestamp of this session on the merged clock.
    fn ns(&self, ts: u64) -> u64 {
        self.offset_ns.saturating_add((ts.saturating_sub(self.lo) as f64 / self.tpn) as u64)
    }
}

/// One run of a merged session: sites up to `last_site` (above the
/// previous run's), from `start_ns` to `end_ns` on its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) last_site: u32,
    pub(crate) start_ns: u64,
    pub(crate) end_ns: u64,
}

/// The runs a merged session was made of, in order; empty for a session
/// that is not a merge (or whose record of its runs does not read).
pub(crate) fn merged_runs(meta: &Metadata) -> Vec<Run> {
    let Some((_, v)) = meta.extra.iter().find(|(k, _)| k == MERGED_RUNS) else {
        return Vec::new();
    };
    let run = |r: &str| -> Option<Run> {
        let mut f = r.split(':').map(|x| x.parse::<u64>().ok());
        let (Some(Some(site)), Some(Some(start_ns)), Some(Some(end_ns)), None) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            return None;
        };
        Some(Run { last_site: u32::try_from(site).ok()?, start_ns, end_ns })
    };
    v.split(',').map(run).collect::<Option<Vec<Run>>>().unwrap_or_default()
}

/// Session `k`'s scope id as merged (definitions come before their uses).
fn mapped(map: &BTreeMap<(usize, u32), u32>, k: usize, scope: u32) -> u32 {
    if scope == NO_SCOPE {
        return NO_SCOPE;
    }
    map.get(&(k, scope)).copied().unwrap_or(scope)
}
