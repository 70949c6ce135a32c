//! A diff as text: the headline, then the scopes and locations that changed.

use crate::model::diff::{Diff, ScopeChange, SiteChange, Verdict};
use crate::write::fit::Width;

impl Diff {
    /// Writes the diff as text, whole ([`Diff::render_width`] with
    /// [`Width::Wide`]): the headline, then at most `top` scopes and
    /// locations that changed (noise left out); names from the sessions as
    /// [`crate::printable`] shows them.
    pub fn render(&self, w: &mut dyn std::io::Write, top: usize) -> std::io::Result<()> {
        self.render_width(w, top, Width::Wide)
    }

    /// [`Diff::render`] within `width`: see [`Width::Fit`] for what gives way.
    pub fn render_width(
        &self,
        w: &mut dyn std::io::Write,
        top: usize,
        width: Width,
    ) -> std::io::Result<()> {
        use crate::write::fit::{left_out, write_command, write_wrapped, Shorten};
        use crate::write::table::{Align, Table};
        use crate::write::units::{Bytes, Nanos};
        let pct = |c: f64| format!("{:+.1} %", c * 100.0);
        let command = |program: &str, args: &[String]| {
            let mut cmd = program.to_owned();
            for a in args {
                cmd.push(' ');
                cmd.push_str(a);
            }
            cmd
        };
        let programs = format!(
            "{} → {}",
            command(&self.programs.0, &self.arguments.0),
            command(&self.programs.1, &self.arguments.1)
        );
        write_command(w, "pulse diff: ", &programs, 12, width)?;
        if self.runs != (1, 1) {
            writeln!(
                w,
                "  {} runs before, {} after: each figure is the middle run's",
                self.runs.0, self.runs.1
            )?;
        }
        let pace = if self.duration_ns.0 == self.duration_ns.1 {
            String::from("no change")
        } else if self.speedup >= 1.0 {
            format!("{:.2}× faster", self.speedup)
        } else {
            format!("{:.2}× slower", 1.0 / self.speedup.max(f64::MIN_POSITIVE))
        };
        let duration = format!(
            "duration {} → {} ({pace})",
            Nanos(self.duration_ns.0),
            Nanos(self.duration_ns.1)
        );
        write_wrapped(w, "  ", &duration, 4, width)?;
        let totals = format!(
            "allocations {} → {}, bytes {} → {}, peak {} → {}",
            self.allocs.0,
            self.allocs.1,
            Bytes(self.bytes.0),
            Bytes(self.bytes.1),
            Bytes(self.peak_bytes.0),
            Bytes(self.peak_bytes.1)
        );
        write_wrapped(w, "  ", &totals, 4, width)?;
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        writeln!(
            w,
            "  {}, {}",
            plural(self.regressions, "regression", "regressions"),
            plural(self.improvements, "improvement", "improvements")
        )?;
        for warning in &self.warnings {
            write_wrapped(w, "  warning: ", warning, 11, width)?;
        }
        let name = |v: Verdict| match v {
            Verdict::Improvement => "improvement",
            Verdict::Regression => "REGRESSION",
            Verdict::Noise => "noise",
            Verdict::Added => "added",
            Verdict::Removed => "removed",
        };
        let changed: Vec<&ScopeChange> =
            self.scopes.iter().filter(|s| s.verdict != Verdict::Noise).take(top).collect();
        if !changed.is_empty() {
            writeln!(w)?;
            writeln!(w, "Scopes (median per entry)")?;
            let mut t = Table::new(&[
                ("scope", Align::Left),
                ("before", Align::Right),
                ("after", Align::Right),
                ("change", Align::Right),
                ("p99 before", Align::Right),
                ("p99 after", Align::Right),
                ("count", Align::Right),
                ("verdict", Align::Left),
            ]);
            t.shrink(0, Shorten::Name, 20);
            t.optional_named(&["before", "after", "count", "p99 after", "p99 before"]);
            for s in changed {
                t.row(vec![
                    s.name.clone(),
                    Nanos(s.p50_ns.0).to_string(),
                    Nanos(s.p50_ns.1).to_string(),
                    match (s.verdict, s.change) {
                        (_, Some(c)) => pct(c),
                        (Verdict::Added, None) => String::from("new"),
                        (_, None) => String::from("gone"),
                    },
                    Nanos(s.p99_ns.0).to_string(),
                    Nanos(s.p99_ns.1).to_string(),
                    format!("{} → {}", s.count.0, s.count.1),
                    name(s.verdict).to_owned(),
                ]);
            }
            let dropped = t.write_fit(w, 2, width)?;
            left_out(w, 2, &dropped, width)?;
        }
        let changed: Vec<&SiteChange> =
            self.sites.iter().filter(|s| s.verdict != Verdict::Noise).take(top).collect();
        if !changed.is_empty() {
            writeln!(w)?;
            writeln!(w, "Allocation sites")?;
            let mut t = Table::new(&[
                ("location", Align::Left),
                ("allocs+reallocs", Align::Right),
                ("bytes", Align::Right),
                ("verdict", Align::Left),
            ]);
            t.shrink(0, Shorten::Location, 32);
            for s in changed {
                t.row(vec![
                    s.location.clone(),
                    format!("{} → {}", s.allocs.0, s.allocs.1),
                    format!("{} → {}", Bytes(s.bytes.0), Bytes(s.bytes.1)),
                    name(s.verdict).to_owned(),
                ]);
            }
            t.write_fit(w, 2, width)?;
        }
        Ok(())
    }
}
