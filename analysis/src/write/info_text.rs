//! `pulse info` as text.

use std::io::{self, Write};

use pulse_format::ClockSource;

use crate::model::info::Info;
use crate::write::fit::{fitted, write_command, write_wrapped, Shorten, Width};
use crate::write::table::{Align, Table};
use crate::write::text::printable;
use crate::write::units::{Bytes, Nanos, UnixTime};

impl Info {
    /// Writes the info as text, whole ([`Info::render_width`] with
    /// [`Width::Wide`]), every string from the session as [`printable`]
    /// shows it.
    pub fn render(&self, w: &mut dyn Write) -> io::Result<()> {
        self.render_width(w, Width::Wide)
    }

    /// [`Info::render`] within `width`: long values wrap under their
    /// column, the program's path is shortened in the middle (see
    /// [`Width::Fit`]).
    pub fn render_width(&self, w: &mut dyn Write, width: Width) -> io::Result<()> {
        const HANG: usize = 13;
        let cols = width.columns();
        let m = &self.meta;
        let format = format!("v{} ({})", self.version, printable(&m.writer));
        write_wrapped(w, "format       ", &format, HANG, width)?;
        write_command(w, "program      ", &m.program, HANG, width)?;
        if !m.args.is_empty() {
            write_command(w, "arguments    ", &m.args.join(" "), HANG, width)?;
        }
        writeln!(w, "pid          {}", m.pid)?;
        write_wrapped(w, "host         ", &m.host, HANG, width)?;
        // The raw nanoseconds are in `--json` (`meta.start_unix_ns`).
        if m.start_unix_ns == 0 {
            writeln!(w, "started      unknown")?;
        } else {
            writeln!(w, "started      {}", UnixTime(m.start_unix_ns))?;
        }
        writeln!(w, "duration     {}", Nanos(self.duration_ns))?;
        let clock = match m.clock.source {
            ClockSource::Tsc => format!(
                "TSC, {:.4} ticks/ns ({})",
                m.clock.ticks_per_ns,
                printable(&m.clock.calibration)
            ),
            ClockSource::Monotonic => String::from("CLOCK_MONOTONIC (nanoseconds)"),
        };
        write_wrapped(w, "clock        ", &clock, HANG, width)?;
        if let Some(t) = self
            .trailer
            .as_ref()
            .filter(|t| t.ticks_per_ns > 0.0 && m.clock.source == ClockSource::Tsc)
        {
            let text = format!("{:.4} ticks/ns over the whole session", t.ticks_per_ns);
            write_wrapped(w, "             ", &text, HANG, width)?;
        }
        writeln!(w, "allocations  {} mode", m.alloc_mode.name())?;
        // A session that opens its counters at first use says which set it
        // would have tried (its metadata's key, shown here rather than
        // among the other keys below).
        let asked = m.extra.iter().find(|(k, _)| k == pulse_format::COUNTERS_AT_FIRST_USE);
        if let (true, Some((_, set))) = (m.counters.is_empty(), asked) {
            let text = format!("none opened: no scope read them ({})", printable(set));
            write_wrapped(w, "counters     ", &text, HANG, width)?;
        } else if m.counters.is_empty() {
            writeln!(w, "counters     none requested")?;
        }
        for c in &m.counters {
            let state = if c.available { "opened" } else { "unavailable" };
            let text = format!("{}: {state} ({})", printable(&c.name), printable(&c.reason));
            write_wrapped(w, "counter      ", &text, HANG, width)?;
        }
        // Counters that were opened but stopped reading part way.
        if let Some(note) = self.trailer.as_ref().and_then(|t| t.note("counters")) {
            write_wrapped(w, "counters     ", note, HANG, width)?;
        }
        // A key from the session takes a third of the line at most.
        let key_room = cols.map(|n| (n / 3).max(12));
        for (k, v) in &m.extra {
            if k == pulse_format::COUNTERS_AT_FIRST_USE {
                continue;
            }
            let key = format!("{:<12} ", fitted(Shorten::Text, k, key_room));
            // The source directories are a list, a line each in the file:
            // shown as one, comma-separated (any other line break from the
            // session is shown escaped, where it cannot pass for a line).
            if k == crate::model::sites::PULSE_SOURCES_KEY {
                write_wrapped(w, &key, &v.split('\n').collect::<Vec<_>>().join(", "), HANG, width)?;
            } else {
                write_wrapped(w, &key, v, HANG, width)?;
            }
        }
        writeln!(w, "threads      {}", self.threads)?;
        writeln!(w, "chunks       {}", self.chunks)?;
        writeln!(w)?;
        let mut t = Table::new(&[("record", Align::Left), ("count", Align::Right)]);
        for (k, n) in &self.record_counts {
            t.row(vec![k.name().to_owned(), n.to_string()]);
        }
        t.write_fit(w, 0, width)?;
        writeln!(w)?;
        match &self.trailer {
            Some(tr) => {
                writeln!(w, "trailer      present: the session finished")?;
                let key_room = cols.map(|n| (n / 2).max(20));
                for (k, v) in &tr.extra {
                    let shown =
                        if k.contains("bytes") { Bytes(*v).to_string() } else { v.to_string() };
                    writeln!(w, "  {:<20} {shown}", fitted(Shorten::Text, k, key_room))?;
                }
            }
            None => writeln!(w, "trailer      missing: the session did not finish")?,
        }
        for warning in &self.warnings {
            write_wrapped(w, "warning: ", warning, 9, width)?;
        }
        Ok(())
    }
}
