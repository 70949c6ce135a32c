//! The in-process report: [`stats`](crate::stats) as a text table, in the
//! style a program prints at its end.

use std::fmt;

use crate::stats::OpStats;

/// How durations are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeUnit {
    /// The unit that suits each value (ns, µs, ms, s).
    #[default]
    Auto,
    /// Nanoseconds.
    Nanos,
    /// Microseconds.
    Micros,
    /// Milliseconds.
    Millis,
    /// Seconds.
    Seconds,
}

/// The order of the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Total time, most first.
    #[default]
    Total,
    /// Self time, most first.
    SelfTime,
    /// Mean time, most first.
    Mean,
    /// Calls, most first.
    Count,
    /// Priority, highest first, then total time.
    Priority,
}

/// Builds a text report of the operations recorded so far.
///
/// ```no_run
/// let report = pulse::ReportBuilder::new()
///     .group_by_category(true)
///     .include_percentiles(true)
///     .time_unit(pulse::TimeUnit::Micros)
///     .sort_by(pulse::SortKey::Mean)
///     .build();
/// println!("{report}");
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReportBuilder {
    group: bool,
    percentiles: bool,
    unit: TimeUnit,
    sort: SortKey,
}

impl ReportBuilder {
    /// A flat table sorted by total time, without percentiles.
    pub fn new() -> Self {
        ReportBuilder::default()
    }

    /// One section per category, with its description.
    pub fn group_by_category(mut self, on: bool) -> Self {
        self.group = on;
        self
    }

    /// Adds p50, p90, p99 and p99.9 columns.
    pub fn include_percentiles(mut self, on: bool) -> Self {
        self.percentiles = on;
        self
    }

    /// The unit of every duration.
    pub fn time_unit(mut self, unit: TimeUnit) -> Self {
        self.unit = unit;
        self
    }

    /// The order of the rows.
    pub fn sort_by(mut self, key: SortKey) -> Self {
        self.sort = key;
        self
    }

    /// The report of everything recorded so far (see [`crate::stats`]).
    pub fn build(&self) -> Report {
        self.build_from(crate::stats())
    }

    /// The report of `ops`.
    pub fn build_from(&self, mut ops: Vec<OpStats>) -> Report {
        let key = |o: &OpStats| match self.sort {
            SortKey::Total => (0, o.time.total_ns),
            SortKey::SelfTime => (0, o.time.self_ns),
            SortKey::Mean => (0, o.time.mean_ns),
            SortKey::Count => (0, o.time.count),
            SortKey::Priority => (o.priority, o.time.total_ns),
        };
        ops.sort_by(|a, b| key(b).cmp(&key(a)).then_with(|| a.name.cmp(b.name)));
        if self.group {
            // Categories in order of their first (best-ranked) operation.
            let mut order: Vec<&'static str> = Vec::new();
            for o in &ops {
                if !order.contains(&o.category) {
                    order.push(o.category);
                }
            }
            ops.sort_by_key(|o| order.iter().position(|c| *c == o.category));
        }
        Report { ops, options: self.clone() }
    }
}

/// A rendered-on-display report; see [`ReportBuilder`].
#[derive(Debug, Clone)]
pub struct Report {
    ops: Vec<OpStats>,
    options: ReportBuilder,
}

impl Report {
    /// The rows, in report order.
    pub fn ops(&self) -> &[OpStats] {
        &self.ops
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ops.is_empty() {
            return writeln!(f, "no operations recorded");
        }
        let mut header = vec!["operation", "calls", "total", "self", "mean", "min", "max"];
        if self.options.percentiles {
            header.extend(["p50", "p90", "p99", "p99.9"]);
        }
        header.push("allocs");
        let unit = self.options.unit;
        let rows: Vec<Vec<String>> = self
            .ops
            .iter()
            .map(|o| {
                let t = &o.time;
                let d = |ns: u64| duration(ns, unit);
                let mut r = vec![
                    o.name.to_owned(),
                    t.count.to_string(),
                    d(t.total_ns),
                    d(t.self_ns),
                    d(t.mean_ns),
                    d(t.min_ns),
                    d(t.max_ns),
                ];
                if self.options.percentiles {
                    r.extend([d(t.p50_ns), d(t.p90_ns), d(t.p99_ns), d(t.p999_ns)]);
                }
                r.push(t.allocs.to_string());
                r
            })
            .collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .chain([header[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |f: &mut fmt::Formatter<'_>, cells: &[&str]| -> fmt::Result {
            let mut out = String::from("  ");
            for (i, c) in cells.iter().enumerate() {
                let pad = " ".repeat(widths[i].saturating_sub(c.chars().count()));
                if i == 0 {
                    out.push_str(c);
                    out.push_str(&pad);
                } else {
                    out.push_str("  ");
                    out.push_str(&pad);
                    out.push_str(c);
                }
            }
            writeln!(f, "{}", out.trim_end())
        };
        let mut category: Option<&str> = None;
        for (i, (o, r)) in self.ops.iter().zip(&rows).enumerate() {
            let new_section = self.options.group && category != Some(o.category);
            if i == 0 || new_section {
                if self.options.group {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    let name = if o.category.is_empty() { "(no category)" } else { o.category };
                    if o.description.is_empty() {
                        writeln!(f, "{name}")?;
                    } else {
                        writeln!(f, "{name} — {}", o.description)?;
                    }
                    category = Some(o.category);
                }
                line(f, &header)?;
            }
            let cells: Vec<&str> = r.iter().map(String::as_str).collect();
            line(f, &cells)?;
        }
        Ok(())
    }
}

fn duration(ns: u64, unit: TimeUnit) -> String {
    let v = ns as f64;
    match unit {
        TimeUnit::Nanos => format!("{ns} ns"),
        TimeUnit::Micros => format!("{:.2} µs", v / 1e3),
        TimeUnit::Millis => format!("{:.3} ms", v / 1e6),
        TimeUnit::Seconds => format!("{:.4} s", v / 1e9),
        TimeUnit::Auto if ns < 1_000 => format!("{ns} ns"),
        TimeUnit::Auto if ns < 1_000_000 => format!("{:.2} µs", v / 1e3),
        TimeUnit::Auto if ns < 1_000_000_000 => format!("{:.2} ms", v / 1e6),
        TimeUnit::Auto => format!("{:.2} s", v / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_format::ScopeTime;

    fn op(name: &'static str, category: &'static str, total: u64, count: u64) -> OpStats {
        OpStats {
            name,
            category,
            description: if category == "Feed" { "Market data" } else { "" },
            priority: 0,
            time: ScopeTime {
                count,
                total_ns: total,
                mean_ns: total / count,
                ..ScopeTime::default()
            },
        }
    }

    #[test]
    fn grouping_keeps_categories_together_in_rank_order() {
        let ops = vec![op("a", "Feed", 10, 1), op("b", "Orders", 30, 1), op("c", "Feed", 20, 1)];
        let r = ReportBuilder::new().group_by_category(true).build_from(ops);
        let names: Vec<&str> = r.ops().iter().map(|o| o.name).collect();
        assert_eq!(names, ["b", "c", "a"]);
        let text = r.to_string();
        assert!(text.starts_with("Orders\n"), "{text}");
        assert!(text.contains("Feed — Market data"), "{text}");
    }

    #[test]
    fn units_and_percentile_columns_follow_the_options() {
        let r = ReportBuilder::new()
            .include_percentiles(true)
            .time_unit(TimeUnit::Micros)
            .sort_by(SortKey::Count)
            .build_from(vec![op("x", "", 1_500, 1), op("y", "", 500, 5)]);
        let text = r.to_string();
        assert!(text.lines().next().unwrap().contains("p99.9"), "{text}");
        assert!(text.contains("1.50 µs"), "{text}");
        assert_eq!(r.ops()[0].name, "y");
    }
}
