//! The report as text: one function per section, each within a width.

use std::io::{self, Write};

use crate::model::recommend::CALLED_FROM;
use crate::model::report::{Omitted, Report, SortBy};
use crate::write::fit::{fitted, left_out, write_command, write_wrapped, Shorten, Width};
use crate::write::table::{Align, Table};
use crate::write::text::printable;
use crate::write::units::{Bytes, CostFigures, Count, Nanos};

/// Pairs of threads whose cross-thread frees the text shows, most bytes
/// first.
const FLOWS_SHOWN: usize = 5;

impl Report {
    /// Writes the report as text, whole: every name in full and every
    /// column, however wide the lines get ([`Report::render_width`] with
    /// [`Width::Wide`]). Every name from the session — in the tables, the
    /// header, the warnings and the recommendations — is shown as
    /// [`printable`] writes it, its control characters escaped.
    pub fn render(&self, w: &mut dyn Write) -> io::Result<()> {
        self.render_width(w, Width::Wide)
    }

    /// Writes the report as text within `width`: see [`Width::Fit`] for
    /// what gives way. Names are escaped as [`Report::render`] escapes
    /// them, before they are measured.
    pub fn render_width(&self, w: &mut dyn Write, width: Width) -> io::Result<()> {
        self.write_header(w, width)?;
        if self.sections.recommendations {
            self.write_recommendations(w, width)?;
        }
        if self.sections.memory {
            self.write_memory(w, width)?;
        }
        if self.sections.scopes {
            self.write_scopes(w, width)?;
        }
        if self.sections.tree && (!self.tree.is_empty() || self.tree_omitted.is_some()) {
            self.write_tree(w, width)?;
        }
        if self.sections.counters {
            self.write_counters(w, width)?;
        }
        if self.sections.threads && (self.per_thread.len() > 1 || self.selection.is_some()) {
            self.write_threads(w, width)?;
        }
        if self.sections.live_at_end && !self.live_at_end.is_empty() {
            self.write_live_at_end(w, width)?;
        }
        if self.sections.sites {
            self.write_sites(w, width)?;
        }
        Ok(())
    }

    /// The program, its run, the thread selection, pulse's own cost and the warnings.
    fn write_header(&self, w: &mut dyn Write, width: Width) -> io::Result<()> {
        let cols = width.columns();
        let mut cmd = self.program.clone();
        for a in &self.args {
            cmd.push(' ');
            cmd.push_str(a);
        }
        let first = format!("{}: ", self.sections.command());
        write_command(w, &first, &cmd, first.len(), width)?;
        writeln!(
            w,
            "  duration {}, {} thread{}",
            Nanos(self.duration_ns),
            self.threads,
            plural(self.threads)
        )?;
        if let Some(s) = &self.selection {
            let kept: Vec<String> = s
                .all
                .iter()
                .filter(|(id, _)| s.kept.contains(id))
                .map(|(id, name)| format!("#{id} {}", printable(name)).trim_end().to_owned())
                .collect();
            let (its, it) = if kept.len() == 1 { ("its", "it") } else { ("their", "they") };
            let text = format!(
                "only {} ({} of {} threads): {its} scopes, and the blocks {it} allocated, wherever freed",
                kept.join(", "),
                kept.len(),
                s.all.len()
            );
            write_wrapped(w, "  ", &text, 4, width)?;
        }
        if let Some(o) = &self.overhead {
            // The figures behind the estimate go on a line of their own
            // where the two do not fit on one.
            let head =
                format!("  pulse's own cost: ~{} on the program's threads", Nanos(o.on_threads_ns));
            let how = format!("({}, estimated)", CostFigures(o));
            const HANG: usize = 20;
            let more = " ".repeat(HANG);
            match cols {
                Some(n) if head.chars().count() + 1 + how.chars().count() > n => {
                    writeln!(w, "{head}")?;
                    write_wrapped(w, &more, &how, HANG, width)?;
                }
                _ => writeln!(w, "{head} {how}")?,
            }
            if o.wait_ns.is_some() || o.finish_ns.is_some() {
                let text = format!(
                    "{} waiting for ring room, {} waiting for the file to finish (measured)",
                    o.wait_ns.map_or_else(|| String::from("?"), |n| Nanos(n).to_string()),
                    o.finish_ns.map_or_else(|| String::from("?"), |n| Nanos(n).to_string()),
                );
                write_wrapped(w, &more, &text, HANG, width)?;
            }
            let own = [o.collector_ns, o.own_allocs, o.own_bytes, o.ring_bytes];
            if own.iter().all(Option::is_none) {
                write_wrapped(
                    w,
                    &more,
                    "collector's CPU and pulse's own memory: unknown (the session has no trailer: it did not finish)",
                    HANG,
                    width,
                )?;
            } else {
                let known = |v: Option<u64>, show: fn(u64) -> String| {
                    v.map_or_else(|| String::from("?"), show)
                };
                let text = format!(
                    "collector {} of CPU; {} allocations ({}) and {} of rings of its own",
                    known(o.collector_ns, |n| Nanos(n).to_string()),
                    known(o.own_allocs, |n| n.to_string()),
                    known(o.own_bytes, |n| Bytes(n).to_string()),
                    known(o.ring_bytes, |n| Bytes(n).to_string()),
                );
                write_wrapped(w, &more, &text, HANG, width)?;
            }
        }
        for warning in &self.warnings {
            write_wrapped(w, "  warning: ", warning, 11, width)?;
        }
        Ok(())
    }

    /// What to change, most severe first.
    fn write_recommendations(&self, w: &mut dyn Write, width: Width) -> io::Result<()> {
        let cols = width.columns();
        writeln!(w)?;
        writeln!(w, "Recommendations")?;
        if self.recommendations.is_empty() {
            writeln!(w, "  none: nothing in this session stands out")?;
        }
        // Numbers right-aligned, so that every finding's text starts in the
        // same column: `  9.` above ` 10.`.
        let digits = self.recommendations.len().to_string().len();
        let body = " ".repeat(digits + 4);
        let fix = format!("{body}fix: ");
        for (i, r) in self.recommendations.iter().enumerate() {
            let head = format!("  {:>digits$}. [{}] ", i + 1, r.severity.name());
            let indent = head.chars().count();
            let room = cols.map(|n| n.saturating_sub(indent).max(24));
            // A dependency's line and the program's line that calls it, each
            // on a line of its own and each shortened alone: shortened as one
            // they lost the allocating function and its place.
            let (site, caller) = match r.location.split_once(CALLED_FROM) {
                Some((site, caller)) => (site, Some(caller)),
                None => (r.location.as_str(), None),
            };
            writeln!(w, "{head}{}", fitted(Shorten::Location, site, room))?;
            if let Some(caller) = caller {
                let label = "called from ";
                let room = room.map(|n| n.saturating_sub(label.len()).max(24));
                let caller = fitted(Shorten::Location, caller, room);
                writeln!(w, "{:indent$}{label}{caller}", "")?;
            }
            write_wrapped(w, &body, &r.evidence, body.len(), width)?;
            write_wrapped(w, &fix, &r.fix, fix.len(), width)?;
        }
        Ok(())
    }

    /// The heap's totals, and what was live at its peak.
    fn write_memory(&self, w: &mut dyn Write, width: Width) -> io::Result<()> {
        writeln!(w)?;
        let m = &self.memory;
        writeln!(w, "Memory")?;
        let mut t =
            Table::new(&[("", Align::Left), ("blocks", Align::Right), ("bytes", Align::Right)]);
        t.row(vec!["allocated".into(), m.allocs.to_string(), Bytes(m.bytes_allocated).to_string()]);
        t.row(vec!["freed".into(), m.frees.to_string(), Bytes(m.bytes_freed).to_string()]);
        t.row(vec!["reallocated".into(), m.reallocs.to_string(), String::new()]);
        if !m.counted_only {
            t.row(vec![
                format!("peak live (at {})", Nanos(m.peak_at_ns)),
                m.peak_blocks.to_string(),
                Bytes(m.peak_bytes).to_string(),
            ]);
        }
        let end = if self.cut { "live at the cut" } else { "live at end" };
        t.row(vec![
            end.into(),
            m.live_blocks_at_end.to_string(),
            Bytes(m.live_bytes_at_end).to_string(),
        ]);
        if m.failed > 0 {
            t.row(vec!["failed allocations".into(), m.failed.to_string(), String::new()]);
        }
        t.write_fit(w, 2, width)?;
        if !self.at_peak.is_empty() && self.memory.peak_bytes > 0 {
            writeln!(w)?;
            writeln!(
                w,
                "The heap at its peak ({} at {})",
                Bytes(m.peak_bytes),
                Nanos(m.peak_at_ns)
            )?;
            let mut t = Table::new(&[
                ("function", Align::Left),
                ("at", Align::Left),
                ("bytes", Align::Right),
                ("share", Align::Right),
            ]);
            t.shrink(0, Shorten::Name, NAME_MIN);
            t.shrink(1, Shorten::Path, PLACE_MIN);
            for s in &self.at_peak {
                t.row(vec![
                    s.function.clone(),
                    s.place.clone(),
                    Bytes(s.bytes_at_peak).to_string(),
                    format!("{:.0} %", 100.0 * s.bytes_at_peak as f64 / m.peak_bytes as f64),
                ]);
            }
            let dropped = t.write_fit(w, 2, width)?;
            if self.at_peak_omitted > 0 {
                writeln!(w, "  … {} more (--top)", self.at_peak_omitted)?;
            }
            left_out(w, 2, &dropped, width)?;
        }
        Ok(())
    }

    /// Scopes and operations by time (the hotspots).
    fn write_scopes(&self, w: &mut dyn Write, width: Width) -> io::Result<()> {
        writeln!(w)?;
        let by = match self.sorted_by {
            SortBy::SelfTime => "self time",
            SortBy::Total => "total time",
            SortBy::Mean => "mean time",
            SortBy::Count => "count",
            SortBy::Priority => "priority",
        };
        writeln!(w, "Scopes by {by}")?;
        if self.scopes.is_empty() && self.scopes_omitted == 0 {
            writeln!(w, "  (no scopes recorded)")?;
        } else {
            let asynchronous = self.scopes.iter().any(|s| s.time.runs > 0);
            let memory = self.scopes.iter().any(|s| s.memory.peak_live_bytes > 0);
            let mut cols = vec![
                ("scope", Align::Left),
                ("count", Align::Right),
                ("self", Align::Right),
                ("total", Align::Right),
                ("mean", Align::Right),
                ("p50", Align::Right),
                ("p99", Align::Right),
                ("p99.9", Align::Right),
                ("max", Align::Right),
                ("allocs", Align::Right),
            ];
            if memory {
                cols.push(("peak live", Align::Right));
                cols.push(("live at end", Align::Right));
            }
            if asynchronous {
                cols.push(("wall/run (async)", Align::Right));
            }
            let mut t = Table::new(&cols);
            t.shrink(0, Shorten::Name, NAME_MIN);
            // The column the rows are ordered by stays; the others give
            // way from the end of this list.
            let key = match self.sorted_by {
                SortBy::SelfTime | SortBy::Priority => "self",
                SortBy::Total => "total",
                SortBy::Mean => "mean",
                SortBy::Count => "count",
            };
            let order = [
                "self",
                "total",
                "count",
                "mean",
                "p50",
                "p99",
                "allocs",
                "peak live",
                "wall/run (async)",
                "max",
                "live at end",
                "p99.9",
            ];
            let optional: Vec<&str> = order.into_iter().filter(|h| *h != key).collect();
            t.optional_named(&optional);
            for s in &self.scopes {
                let name = if s.category.is_empty() {
                    s.name.clone()
                } else {
                    format!("{}::{}", s.category, s.name)
                };
                let st = &s.time;
                let count = match st.runs {
                    0 => st.count.to_string(),
                    _ => format!("{} polls", st.count),
                };
                let mut row = vec![
                    name,
                    count,
                    Nanos(st.self_ns).to_string(),
                    Nanos(st.total_ns).to_string(),
                    Nanos(st.mean_ns).to_string(),
                    Nanos(st.p50_ns).to_string(),
                    Nanos(st.p99_ns).to_string(),
                    Nanos(st.p999_ns).to_string(),
                    Nanos(st.max_ns).to_string(),
                    st.allocs.to_string(),
                ];
                if memory {
                    row.push(Bytes(s.memory.peak_live_bytes).to_string());
                    row.push(Bytes(s.memory.live_bytes_at_end).to_string());
                }
                if asynchronous {
                    row.push(match st.wall_ns.checked_div(st.runs) {
                        Some(per_run) => format!("{} × {}", Nanos(per_run), st.runs),
                        None => String::new(),
                    });
                }
                t.row(row);
            }
            let dropped = t.write_fit(w, 2, width)?;
            if self.scopes_omitted > 0 {
                writeln!(w, "  … {} more (--top)", self.scopes_omitted)?;
            }
            left_out(w, 2, &dropped, width)?;
            if asynchronous {
                let text = match dropped.iter().any(|d| d.as_str() == "wall/run (async)") {
                    true => "an async operation's count, times and percentiles are its polls' (its time from first poll to completion, waiting included, is the wall/run column)",
                    false => "an async operation's count, times and percentiles are its polls'; wall/run: the mean time from first poll to completion, waiting included, × the runs",
                };
                write_wrapped(w, "  ", text, 4, width)?;
            }
        }
        Ok(())
    }

    /// The call tree of scopes.
    fn write_tree(&self, w: &mut dyn Write, width: Width) -> io::Result<()> {
        writeln!(w)?;
        writeln!(w, "Call tree")?;
        let mut t = Table::new(&[
            ("scope", Align::Left),
            ("count", Align::Right),
            ("total", Align::Right),
            ("self", Align::Right),
        ]);
        t.shrink(0, Shorten::Name, NAME_MIN);
        // A parent's `… N more` row goes after its last shown descendant.
        let more = |t: &mut Table, depth: usize, o: &Omitted| {
            t.row(vec![
                format!("{}… {} more ({})", "  ".repeat(depth), o.count, Nanos(o.total_ns)),
                String::new(),
                String::new(),
                String::new(),
            ]);
        };
        let mut pending: Vec<(usize, Omitted)> = Vec::new();
        for r in &self.tree {
            while pending.last().is_some_and(|(depth, _)| *depth > r.depth) {
                if let Some((depth, o)) = pending.pop() {
                    more(&mut t, depth, &o);
                }
            }
            if let Some(o) = r.omitted {
                pending.push((r.depth + 1, o));
            }
            let name = if r.recursion > 1 {
                format!("{} (recursive, {} levels)", r.name, r.recursion)
            } else {
                r.name.clone()
            };
            t.row(vec![
                format!("{}{name}", "  ".repeat(r.depth)),
                r.count.to_string(),
                Nanos(r.total_ns).to_string(),
                Nanos(r.self_ns).to_string(),
            ]);
        }
        while let Some((depth, o)) = pending.pop() {
            more(&mut t, depth, &o);
        }
        if let Some(o) = &self.tree_omitted {
            more(&mut t, 0, o);
        }
        t.write_fit(w, 2, width)?;
        Ok(())
    }

    /// Each thread's time and memory.
    fn write_threads(&self, w: &mut dyn Write, width: Width) -> io::Result<()> {
        writeln!(w)?;
        write_wrapped(
            w,
            "",
            "Threads (time inside their outermost scopes; live sets count the blocks each allocated)",
            2,
            width,
        )?;
        let mut t = Table::new(&[
            ("thread", Align::Left),
            ("scoped time", Align::Right),
            ("allocated", Align::Right),
            ("peak live", Align::Right),
            ("live at end", Align::Right),
        ]);
        t.shrink(0, Shorten::Text, 16);
        for th in &self.per_thread {
            let name = if th.name.is_empty() {
                format!("#{}", th.id)
            } else {
                format!("#{} {}", th.id, th.name)
            };
            t.row(vec![
                name,
                Nanos(th.scoped_ns).to_string(),
                Bytes(th.bytes_allocated).to_string(),
                Bytes(th.peak_live_bytes).to_string(),
                Bytes(th.live_bytes_at_end).to_string(),
            ]);
        }
        t.write_fit(w, 2, width)?;
        for f in self.flows.iter().take(FLOWS_SHOWN) {
            let text = format!(
                "#{} → #{}: {}, {} freed on another thread",
                f.from,
                f.to,
                if f.blocks == 1 {
                    String::from("1 block")
                } else {
                    format!("{} blocks", f.blocks)
                },
                Bytes(f.bytes)
            );
            write_wrapped(w, "  ", &text, 4, width)?;
        }
        if let Some(rest) = self.flows.get(FLOWS_SHOWN..).filter(|r| !r.is_empty()) {
            let blocks: u64 = rest.iter().fold(0, |a, f| a.saturating_add(f.blocks));
            let bytes: u64 = rest.iter().fold(0, |a, f| a.saturating_add(f.bytes));
            let pairs = if rest.len() == 1 { "pair" } else { "pairs" };
            let blocks =
                if blocks == 1 { String::from("1 block") } else { format!("{blocks} blocks") };
            let text = format!(
                "… {} more {pairs} of threads: {blocks}, {} (--json lists each)",
                rest.len(),
                Bytes(bytes)
            );
            write_wrapped(w, "  ", &text, 4, width)?;
        }
        Ok(())
    }

    /// What was still live when the session ended.
    fn write_live_at_end(&self, w: &mut dyn Write, width: Width) -> io::Result<()> {
        writeln!(w)?;
        let title = match self.cut {
            true => "Live at the cut",
            false => "Live at end",
        };
        let legend =
            crate::model::leaks::legend(self.cut || self.live_at_end.iter().any(|l| l.at_cut));
        write_wrapped(w, "", &format!("{title} ({legend})"), 2, width)?;
        let mut t = Table::new(&[
            ("function", Align::Left),
            ("at", Align::Left),
            ("blocks", Align::Right),
            ("bytes", Align::Right),
            ("verdict", Align::Left),
        ]);
        t.shrink(0, Shorten::Name, NAME_MIN);
        t.shrink(1, Shorten::Path, PLACE_MIN);
        for l in &self.live_at_end {
            let verdict = l.verdict();
            t.row(vec![
                l.function.clone(),
                l.place.clone(),
                l.blocks.to_string(),
                Bytes(l.bytes).to_string(),
                verdict.to_owned(),
            ]);
        }
        let dropped = t.write_fit(w, 2, width)?;
        if self.live_at_end_omitted > 0 {
            writeln!(w, "  … {} more (--top)", self.live_at_end_omitted)?;
        }
        left_out(w, 2, &dropped, width)?;
        Ok(())
    }

    /// Allocation sites.
    fn write_sites(&self, w: &mut dyn Write, width: Width) -> io::Result<()> {
        writeln!(w)?;
        let title = format!(
            "Allocation sites by {} (lifetimes of the freed blocks; short-lived: freed within {})",
            if self.sites_by_peak {
                "their own peak of live bytes"
            } else if self.sites_by_allocs {
                "allocations"
            } else {
                "bytes"
            },
            Nanos(self.short_lived_ns)
        );
        write_wrapped(w, "", &title, 2, width)?;
        if self.sites.is_empty() && self.sites_omitted == 0 {
            writeln!(w, "  (no allocations recorded)")?;
        } else {
            let mut columns = vec![
                ("function", Align::Left),
                ("at", Align::Left),
                ("allocs", Align::Right),
                ("bytes", Align::Right),
                ("mean", Align::Right),
                ("largest", Align::Right),
                ("reallocs", Align::Right),
                ("lifetime p50", Align::Right),
                ("short-lived", Align::Right),
                ("live at end", Align::Right),
            ];
            if self.sites_by_peak {
                columns.push(("own peak", Align::Right));
            }
            let callers = self.sites.iter().any(|s| !s.called_from.is_empty());
            if callers {
                columns.push(("called from", Align::Left));
            }
            let mut t = Table::new(&columns);
            t.shrink(0, Shorten::Name, NAME_MIN);
            t.shrink(1, Shorten::Path, PLACE_MIN);
            t.shrink_named("called from", Shorten::Location, 32);
            // The order's own figures first, then the others as they fit.
            let key: &[&str] = if self.sites_by_peak {
                &["own peak"]
            } else if self.sites_by_allocs {
                &["allocs", "reallocs"]
            } else {
                &["bytes"]
            };
            let rest = [
                "allocs",
                "bytes",
                "short-lived",
                "reallocs",
                "live at end",
                "lifetime p50",
                "mean",
                "largest",
                "called from",
            ];
            let order: Vec<&str> = key.iter().chain(&rest).copied().collect();
            t.optional_named(&order);
            for s in &self.sites {
                let (life, short) = if s.freed == 0 {
                    (String::from("-"), String::from("-"))
                } else {
                    (
                        Nanos(s.lifetime_p50_ns).to_string(),
                        format!("{:.0} %", 100.0 * s.short_lived as f64 / s.freed as f64),
                    )
                };
                let mut row = vec![
                    s.function.clone(),
                    s.place.clone(),
                    s.allocs.to_string(),
                    Bytes(s.bytes).to_string(),
                    Bytes(s.mean_size).to_string(),
                    Bytes(s.max_size).to_string(),
                    s.reallocs.to_string(),
                    life,
                    short,
                    Bytes(s.live_bytes_at_end).to_string(),
                ];
                if self.sites_by_peak {
                    // Several stacks' sum is known at a few moments only.
                    let bound = if s.peak_live_exact { "" } else { "≥" };
                    row.push(format!("{bound}{}", Bytes(s.peak_live_bytes)));
                }
                if callers {
                    row.push(s.called_from.clone());
                }
                t.row(row);
            }
            let dropped = t.write_fit(w, 2, width)?;
            if self.sites_omitted > 0 {
                writeln!(w, "  … {} more (--top)", self.sites_omitted)?;
            }
            if self.sites_by_peak && self.sites.iter().any(|s| !s.peak_live_exact) {
                write_wrapped(
                    w,
                    "  ",
                    "≥: a line several stacks allocate from, or a sampled session; the most known to have been live at once (its own peak may be higher)",
                    2,
                    width,
                )?;
            }
            left_out(w, 2, &dropped, width)?;
        }
        Ok(())
    }
}

/// The width a function name keeps in a fitted table before a column of
/// figures gives way for it.
const NAME_MIN: usize = 24;

/// The same for a `file:line`.
const PLACE_MIN: usize = 22;

impl Report {
    /// Hardware counters by scope.
    fn write_counters(&self, w: &mut dyn Write, width: Width) -> io::Result<()> {
        let c = &self.counters;
        if c.rows.is_empty() && c.names.is_empty() && c.unavailable.is_empty() {
            return Ok(());
        }
        writeln!(w)?;
        writeln!(w, "Counters (mean per entry)")?;
        if !c.unavailable.is_empty() && c.names.is_empty() {
            write_wrapped(w, "  none could be opened: ", &c.unavailable[0].1, 4, width)?;
        } else if !c.unavailable.is_empty() {
            let names: Vec<&str> = c.unavailable.iter().map(|(n, _)| n.as_str()).collect();
            let text =
                format!("{} ({})", printable(&names.join(", ")), printable(&c.unavailable[0].1));
            write_wrapped(w, "  unavailable here: ", &text, 4, width)?;
        }
        if c.rows.is_empty() {
            writeln!(w, "  no scope read them (use scope!(\"name\", counters))")?;
            return Ok(());
        }
        let ratio_names: Vec<&str> = c
            .rows
            .iter()
            .flat_map(|r| r.ratios.iter().map(|(n, _)| *n))
            .fold(Vec::new(), |mut v, n| {
                if !v.contains(&n) {
                    v.push(n);
                }
                v
            });
        let mut cols: Vec<(String, Align)> =
            vec![("scope".into(), Align::Left), ("entries".into(), Align::Right)];
        cols.extend(c.names.iter().map(|n| (n.clone(), Align::Right)));
        cols.extend(ratio_names.iter().map(|n| (n.to_string(), Align::Right)));
        let header: Vec<(&str, Align)> = cols.iter().map(|(n, a)| (n.as_str(), *a)).collect();
        let mut t = Table::new(&header);
        t.shrink(0, Shorten::Name, NAME_MIN);
        // The ratios first (what the advice reads), then task-clock, then
        // the counters in their order.
        let first = 2 + c.names.len();
        let clock = c.names.iter().position(|n| n == "task-clock").map(|i| 2 + i);
        let mut optional: Vec<usize> = (first..first + ratio_names.len()).collect();
        optional.extend(clock);
        optional.extend((2..first).filter(|&i| Some(i) != clock));
        t.optional(&optional);
        for r in &c.rows {
            let mut row = vec![r.name.clone(), r.entries.to_string()];
            row.extend(c.names.iter().enumerate().map(|(i, n)| {
                let v = r.per_entry.get(i).copied().unwrap_or(0.0);
                if n == "task-clock" {
                    Nanos(v as u64).to_string()
                } else if v >= 10_000.0 {
                    Count(v.round() as u64).to_string()
                } else {
                    format!("{v:.1}")
                }
            }));
            row.extend(ratio_names.iter().map(|n| {
                r.ratios
                    .iter()
                    .find(|(k, _)| k == n)
                    .map_or(String::new(), |(_, v)| format!("{v:.2}"))
            }));
            t.row(row);
        }
        let dropped = t.write_fit(w, 2, width)?;
        left_out(w, 2, &dropped, width)
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
