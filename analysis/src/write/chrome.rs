//! Chrome Trace Event JSON, which Perfetto and `chrome://tracing` open:
//! every scope entry as a complete event on its thread, and the live heap
//! as a counter track. Written from a second replay of the session, not
//! from the profile: the trace holds every entry, which the profile does
//! not keep.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use pulse_format::{Event, Reader, Record, ThreadScopes};

use crate::load::replay::{self, Visitor};

/// Writes the session in `input` as Chrome Trace Event JSON: replays it
/// once more, writing each scope entry when it closes. Memory stays bounded
/// by the open scopes and the live set.
pub fn chrome(input: impl Read, out: &mut dyn Write) -> Result<(), pulse_format::Error> {
    chrome_to(input, out)?.map_err(pulse_format::Error::Io)
}

/// [`chrome`], with what reading the session failed on (the outer error)
/// told apart from what writing the trace failed on (the inner one).
pub(crate) fn chrome_to(
    input: impl Read,
    out: &mut dyn Write,
) -> Result<io::Result<()>, pulse_format::Error> {
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
    Ok(w.err.map_or(Ok(()), Err))
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
