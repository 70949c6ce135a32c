//! Exports to other tools' formats.
//!
//! - **Folded stacks** (`frame;frame;frame weight` per line, outermost
//!   first), which `inferno-flamegraph` and Brendan Gregg's `flamegraph.pl`
//!   turn into flamegraphs: by time (the call tree of scopes, self time in
//!   nanoseconds), by allocated bytes, by allocation count, or by bytes
//!   still live at the end (the allocation stacks, user frames only).
//! - **Chrome Trace Event JSON**, which Perfetto and `chrome://tracing`
//!   open: every scope entry as a complete event on its thread, and the
//!   live heap as a counter track.
//! - **DHAT's JSON**, which DHAT's viewer opens, for users of dhat-rs.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};

use pulse_format::{Event, Reader, Record, ThreadScopes};

use crate::load::replay::{self, Visitor};
use crate::model::profile::Profile;

/// What a folded-stack export weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoldedKind {
    /// Self time of each call-tree path, in nanoseconds.
    Time,
    /// Bytes allocated at each allocation stack.
    AllocBytes,
    /// Allocations (and reallocations) at each allocation stack.
    AllocCount,
    /// Bytes still live at the end, by allocation stack.
    Leaks,
}

/// The stacks `kind` weighs, each with its frames' names outermost first:
/// one per call-tree path (its self time) or per allocation stack (user
/// frames only, `(no stack)` where none was captured), the same stack's
/// weights added up, zero weights left out, ordered by their frames.
///
/// The flamegraph is drawn from these, and the folded export writes them:
/// each frame a name whole, whatever it holds.
pub(crate) fn stacks(profile: &Profile, kind: FoldedKind) -> Vec<(Vec<String>, u64)> {
    let mut stacks: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    match kind {
        FoldedKind::Time => {
            let nodes = &profile.call_tree.nodes;
            let to = time_paths(profile);
            // Each scope's name once, whatever the nodes it has.
            let mut names: HashMap<u32, String> = HashMap::new();
            for n in nodes.iter().skip(1) {
                names.entry(n.scope).or_insert_with(|| profile.display_name(n.scope));
            }
            // Each path's self time, and that of the paths beyond the budget
            // within it.
            let mut weights = vec![0u64; nodes.len()];
            for (i, n) in nodes.iter().enumerate().skip(1) {
                if let Some(t) = to[i] {
                    weights[t] = weights[t].saturating_add(n.self_ns);
                }
            }
            for (i, &weight) in weights.iter().enumerate().skip(1) {
                if to[i] != Some(i) {
                    continue;
                }
                let mut path = Vec::new();
                let mut at = Some(i);
                while let Some(j) = at.filter(|&j| j != 0) {
                    path.push(names[&nodes[j].scope].clone());
                    at = nodes[j].parent;
                }
                path.reverse();
                let e = stacks.entry(path).or_default();
                *e = e.saturating_add(weight);
            }
        }
        _ => {
            for (id, s) in &profile.sites {
                let weight = match kind {
                    FoldedKind::AllocBytes => s.bytes,
                    FoldedKind::AllocCount => s.allocs.saturating_add(s.reallocs),
                    _ => s.live_bytes_at_end,
                };
                let mut stack: Vec<String> =
                    profile.symbols.user_stack(*id).into_iter().map(|f| f.function).collect();
                if stack.is_empty() {
                    stack.push(String::from("(no stack)"));
                }
                stack.reverse();
                let e = stacks.entry(stack).or_default();
                *e = e.saturating_add(weight);
            }
        }
    }
    stacks.into_iter().filter(|(_, w)| *w > 0).collect()
}

/// The call-tree paths the folded stacks and the flamegraph by time hold:
/// for each node, the node its self time is drawn in — itself, or the
/// nearest enclosing node within the names' budget (see
/// [`crate::STACK_TEXT_PER_BYTE`]: each path holds the names of every node
/// on it, and a tree of a few thousand nodes 128 deep under a long name
/// would hold gigabytes of them); `None` for the root, and for an
/// outermost scope whose own name is past the budget.
fn time_paths(profile: &Profile) -> Vec<Option<usize>> {
    let nodes = &profile.call_tree.nodes;
    let mut left = crate::model::sites::text_budget(profile.decoded_bytes);
    let mut cost = vec![0u64; nodes.len()];
    let mut to: Vec<Option<usize>> = vec![None; nodes.len()];
    // A node's parent comes before it.
    for (i, n) in nodes.iter().enumerate().skip(1) {
        let parent = n.parent.filter(|&p| p < i).unwrap_or(0);
        let parent_kept = parent == 0 || to[parent] == Some(parent);
        let c = cost[parent]
            .saturating_add(display_len(profile, n.scope))
            .saturating_add(crate::model::sites::FRAME_COST);
        if parent_kept && c <= left {
            left -= c;
            cost[i] = c;
            to[i] = Some(i);
        } else {
            to[i] = to[parent];
        }
    }
    to
}

/// The length of [`Profile::display_name`] of `scope`, without making it.
fn display_len(profile: &Profile, scope: u32) -> u64 {
    let len = match profile.scopes.get(&scope) {
        Some(s) if !s.category.is_empty() => s.category.len() + 2 + s.name.len(),
        Some(s) => s.name.len(),
        None => "scope #".len() + 10,
    };
    len as u64
}

/// How many call-tree nodes the folded stacks and the flamegraph by time
/// leave out for the names' budget (their time is in an enclosing path's),
/// if any.
pub(crate) fn paths_over_budget(profile: &Profile) -> Option<usize> {
    let to = time_paths(profile);
    let n = to.iter().enumerate().skip(1).filter(|(i, t)| **t != Some(*i)).count();
    (n > 0).then_some(n)
}

/// What stands for a `;` inside a frame's name in folded stacks: U+FF1B
/// FULLWIDTH SEMICOLON, which reads as one but does not split the frame.
pub const FOLDED_SEMICOLON: char = '\u{ff1b}';

/// A frame's name as one field of a folded line. The format has no escape:
/// `;` separates frames and a line ends the stack, so a `;` in a name
/// (`core::array::<impl [T; N]>::map`) is written as [`FOLDED_SEMICOLON`],
/// and control characters, newlines included, as [`crate::printable`]
/// writes them.
fn folded_frame(name: &str) -> String {
    crate::write::text::printable(name).replace(';', &FOLDED_SEMICOLON.to_string())
}

/// Writes `profile` as folded stacks, one `frame;frame weight` line per
/// distinct stack, outermost frame first, sorted, zero weights left out.
/// Each frame is one name whole (see [`FOLDED_SEMICOLON`]): a consumer
/// splitting at `;` finds the frames the stack holds.
pub fn folded(profile: &Profile, kind: FoldedKind, out: &mut dyn Write) -> io::Result<()> {
    let mut lines: BTreeMap<String, u64> = BTreeMap::new();
    for (stack, weight) in stacks(profile, kind) {
        let frames: Vec<String> = stack.iter().map(|f| folded_frame(f)).collect();
        // Two names that differ only in what the format cannot hold are
        // one line.
        let e = lines.entry(frames.join(";")).or_default();
        *e = e.saturating_add(weight);
    }
    for (stack, weight) in lines {
        writeln!(out, "{stack} {weight}")?;
    }
    Ok(())
}

/// Writes the session in `input` as Chrome Trace Event JSON: replays it
/// once more, writing each scope entry when it closes. Memory stays bounded
/// by the open scopes and the live set.
pub fn chrome(input: impl Read, out: &mut dyn Write) -> Result<(), pulse_format::Error> {
    let mut reader = Reader::new(input)?;
    let tpn = reader.metadata().clock.ticks_per_ns;
    let mut w = ChromeWriter {
        out,
        tpn,
        first: None,
        names: BTreeMap::new(),
        threads: BTreeMap::new(),
        live: rustc_hash::FxHashMap::default(),
        live_bytes: 0,
        last_counter: None,
        wrote_any: false,
        err: None,
    };
    w.raw("{\"traceEvents\":[\n");
    let end = replay::replay(&mut reader, &mut w)?;
    let _ = end;
    w.raw("\n],\"displayTimeUnit\":\"ns\"}\n");
    match w.err {
        Some(e) => Err(pulse_format::Error::Io(e)),
        None => Ok(()),
    }
}

struct ChromeWriter<'a> {
    out: &'a mut dyn Write,
    tpn: f64,
    first: Option<u64>,
    names: BTreeMap<u32, String>,
    threads: BTreeMap<u64, (ThreadScopes, Vec<(u32, u64)>)>,
    live: rustc_hash::FxHashMap<u64, u64>,
    live_bytes: u64,
    last_counter: Option<u64>,
    wrote_any: bool,
    err: Option<io::Error>,
}

impl ChromeWriter<'_> {
    fn raw(&mut self, s: &str) {
        if self.err.is_none() {
            if let Err(e) = self.out.write_all(s.as_bytes()) {
                self.err = Some(e);
            }
        }
    }

    fn event(&mut self, json: String) {
        if self.wrote_any {
            self.raw(",\n");
        }
        self.wrote_any = true;
        self.raw(&json);
    }

    /// Microseconds since the first event.
    fn us(&self, ts: u64) -> f64 {
        ts.saturating_sub(self.first.unwrap_or(ts)) as f64 / self.tpn / 1000.0
    }

    fn counter(&mut self, ts: u64) {
        // At most one sample per microsecond of trace: enough to see the shape.
        let us = self.us(ts) as u64;
        if self.last_counter != Some(us) {
            self.last_counter = Some(us);
            let e = format!("{{\"name\":\"live heap\",\"ph\":\"C\",\"pid\":1,\"ts\":{us},\"args\":{{\"bytes\":{}}}}}", self.live_bytes);
            self.event(e);
        }
    }
}

impl Visitor for ChromeWriter<'_> {
    fn definition(&mut self, r: Record) {
        if let Record::ScopeDef { scope, name, category, .. } = r {
            // As the profile keeps them: the trace names every entry.
            let (name, _) = crate::model::profile::cut_scope_name(name);
            let (category, _) = crate::model::profile::cut_scope_name(category);
            let full = if category.is_empty() { name } else { format!("{category}::{name}") };
            self.names.insert(scope, full);
        }
    }

    fn event(&mut self, thread: replay::Thread, e: Event) {
        self.timed(thread.id, e.into());
    }

    fn record(&mut self, thread: replay::Thread, r: Record) {
        self.timed(thread.id, r);
    }

    fn realloc_release(&mut self, _thread: replay::Thread, _ts: u64, _addr: u64) {}
}

impl ChromeWriter<'_> {
    fn timed(&mut self, thread: u64, r: Record) {
        let Some(ts) = r.ts() else { return self.definition(r) };
        self.first.get_or_insert(ts);
        match r {
            Record::ThreadStart { name, .. } => {
                let e = format!(
                    "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{thread},\"args\":{{\"name\":{}}}}}",
                    json_string(&name)
                );
                self.event(e);
            }
            Record::ScopeEnter { scope, .. } => {
                let t = self.threads.entry(thread).or_default();
                t.0.enter(scope, ts);
                t.1.push((scope, ts));
            }
            Record::ScopeExit { scope, .. } => {
                let t = self.threads.entry(thread).or_default();
                let mut closed = Vec::new();
                let open = &mut t.1;
                t.0.exit(scope, ts, |_| {
                    if let Some(e) = open.pop() {
                        closed.push(e);
                    }
                });
                for (s, start) in closed {
                    let name = self.names.get(&s).cloned().unwrap_or_else(|| format!("scope #{s}"));
                    let e = format!(
                        "{{\"name\":{},\"ph\":\"X\",\"pid\":1,\"tid\":{thread},\"ts\":{:.3},\"dur\":{:.3}}}",
                        json_string(&name),
                        self.us(start),
                        (ts.saturating_sub(start)) as f64 / self.tpn / 1000.0
                    );
                    self.event(e);
                }
            }
            Record::Alloc { addr, size, .. } => {
                if let Some(old) = self.live.insert(addr, size) {
                    self.live_bytes = self.live_bytes.saturating_sub(old);
                }
                self.live_bytes = self.live_bytes.saturating_add(size);
                self.counter(ts);
            }
            Record::Free { addr, .. } => {
                if let Some(size) = self.live.remove(&addr) {
                    self.live_bytes = self.live_bytes.saturating_sub(size);
                    self.counter(ts);
                }
            }
            Record::Realloc { old_addr, new_addr, new_size, .. } => {
                if let Some(size) = self.live.remove(&old_addr) {
                    self.live_bytes = self.live_bytes.saturating_sub(size);
                }
                self.live.insert(new_addr, new_size);
                self.live_bytes = self.live_bytes.saturating_add(new_size);
                self.counter(ts);
            }
            _ => {}
        }
    }
}

/// `s` as a JSON string literal, with no control character in its text
/// (see [`crate::json_printable`]): the trace may be read on a terminal.
fn json_string(s: &str) -> String {
    serde_json::to_string(s)
        .map(|j| crate::write::text::json_printable(&j).into_owned())
        .unwrap_or_else(|_| String::from("\"?\""))
}

/// Writes `profile` as DHAT's JSON (`dhat-heap.json`), which DHAT's viewer
/// (`dh_view.html`) opens, as it opens dhat-rs's: one program point per
/// distinct stack, with its totals, its own peak, its share of the global
/// peak and what was live at the end; times in microseconds.
///
/// The viewer refuses a file in which two program points have the same
/// frames, and sites whose stacks differ only in frames the report leaves
/// out (the allocator's plumbing, two addresses on one line) display the
/// same: they are one program point, their totals summed. The peak of such
/// a point (`mb`, `mbk`) is the largest of its sites' own peaks, as for a
/// report row that gathers several stacks: the sites' peaks may fall at
/// different times, so their sum would overstate it.
pub fn dhat(profile: &Profile, out: &mut dyn Write) -> io::Result<()> {
    let root = crate::model::sites::project_root(&profile.meta.program);
    let mut ftbl: Vec<String> = vec![String::from("[root]")];
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let us = |ticks: u64| (ticks as f64 / profile.ticks_per_ns / 1000.0) as u64;
    // Program points by their frames, in the order their first site comes.
    let mut points: Vec<(Vec<usize>, [u64; 9])> = Vec::new();
    let mut by_frames: HashMap<Vec<usize>, usize> = HashMap::new();
    for (id, s) in &profile.sites {
        let mut fs = Vec::new();
        for f in profile.symbols.user_stack(*id) {
            let name = f.display(&root);
            let next = ftbl.len();
            let i = *index.entry(name.clone()).or_insert(next);
            if i == next {
                ftbl.push(name);
            }
            fs.push(i);
        }
        let k = *by_frames.entry(fs.clone()).or_insert_with(|| {
            points.push((fs, [0; 9]));
            points.len() - 1
        });
        let t = &mut points[k].1;
        let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        add(&mut t[0], s.bytes);
        add(&mut t[1], s.allocs.saturating_add(s.reallocs));
        add(&mut t[2], us(s.lifetimes.sum()));
        t[3] = t[3].max(s.peak_live_bytes);
        t[4] = t[4].max(s.peak_live_blocks);
        add(&mut t[5], s.bytes_at_peak);
        add(&mut t[6], s.blocks_at_peak);
        add(&mut t[7], s.live_bytes_at_end);
        add(&mut t[8], s.live_blocks_at_end);
    }
    let pps: Vec<_> = points
        .into_iter()
        .map(|(fs, t)| {
            serde_json::json!({
                "tb": t[0], "tbk": t[1], "tl": t[2], "mb": t[3], "mbk": t[4],
                "gb": t[5], "gbk": t[6], "eb": t[7], "ebk": t[8], "fs": fs,
            })
        })
        .collect();
    let mut cmd = profile.meta.program.clone();
    for a in &profile.meta.args {
        cmd.push(' ');
        cmd.push_str(a);
    }
    let doc = serde_json::json!({
        "dhatFileVersion": 2,
        "mode": "rust-heap",
        "verb": "Allocated",
        "bklt": true,
        "bkacc": false,
        "tu": "µs",
        "Mtu": "s",
        "tuth": 10,
        "cmd": cmd,
        "pid": profile.meta.pid,
        "tg": profile.memory.peak_at_ns / 1000,
        "te": profile.duration_ns / 1000,
        "pps": pps,
        "ftbl": ftbl,
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}
