//! Before and after: what changed between two sessions of a program, each
//! change classified as an improvement, a regression, or noise.
//!
//! Time is judged on distributions, not on a bare percentage. A scope's
//! median moved by `shift`; its spread is the larger of the two sessions'
//! p90 − p50; with `n` the smaller entry count, a shift is real when it is
//! both at least `threshold` of the old median and more than twice
//! `spread / √n` — so a scope entered once, or one whose entries scatter
//! widely, needs a larger move to count. With fewer than three entries on
//! either side there is no spread to go by: the median must move by half,
//! and its total by more than [`FEW_ENTRIES_FLOOR_NS`], beyond what one
//! preemption of the thread could add to a single entry.
//! A change of less than `min_ns` of total time is noise whatever its
//! share: microseconds do not make a regression. Allocation counts and
//! bytes are exact, so for memory the threshold alone decides.

use std::collections::BTreeMap;

use crate::profile::Profile;
use crate::sites::project_root;

/// The least a scope entered fewer than three times must move, in total,
/// to be more than noise: a few scheduler time slices, which one preemption
/// of a busy machine can add to a single entry.
pub const FEW_ENTRIES_FLOOR_NS: u64 = 4_000_000;

/// How a figure moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Better beyond the threshold and the noise.
    Improvement,
    /// Worse beyond the threshold and the noise.
    Regression,
    /// Within the threshold or the noise.
    Noise,
    /// In one session only.
    Added,
    /// In the other session only.
    Removed,
}

/// Options for [`diff`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DiffOptions {
    /// The smallest relative change that counts (0.05: 5 %).
    pub threshold: f64,
    /// The smallest change of a scope's total time that counts, in ns.
    pub min_ns: u64,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions { threshold: 0.05, min_ns: 100_000 }
    }
}

/// One scope's change.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScopeChange {
    /// `category::name`.
    pub name: String,
    /// Entries before and after.
    pub count: (u64, u64),
    /// Median entry before and after, ns.
    pub p50_ns: (u64, u64),
    /// Mean entry before and after, ns.
    pub mean_ns: (u64, u64),
    /// 99th percentile before and after, ns.
    pub p99_ns: (u64, u64),
    /// Total time before and after, ns.
    pub total_ns: (u64, u64),
    /// Allocations inside before and after.
    pub allocs: (u64, u64),
    /// The median's relative change (after / before − 1).
    pub change: f64,
    /// The classification.
    pub verdict: Verdict,
}

/// One allocation location's change.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SiteChange {
    /// The user's function and `file:line`.
    pub location: String,
    /// Allocations (and reallocations) before and after.
    pub allocs: (u64, u64),
    /// Bytes allocated before and after.
    pub bytes: (u64, u64),
    /// Bytes live at the end before and after.
    pub live_bytes_at_end: (u64, u64),
    /// The classification, by allocations and bytes.
    pub verdict: Verdict,
}

/// The difference between two sessions.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Diff {
    /// The programs.
    pub programs: (String, String),
    /// Session durations, ns.
    pub duration_ns: (u64, u64),
    /// Before's duration over after's: above 1 is faster.
    pub speedup: f64,
    /// Allocations before and after.
    pub allocs: (u64, u64),
    /// Bytes allocated before and after.
    pub bytes: (u64, u64),
    /// Peak live bytes before and after.
    pub peak_bytes: (u64, u64),
    /// Scopes, regressions first, then improvements, by the size of the change.
    pub scopes: Vec<ScopeChange>,
    /// Allocation locations, in the same order.
    pub sites: Vec<SiteChange>,
    /// Changes beyond the threshold for the worse.
    pub regressions: usize,
    /// Changes beyond the threshold for the better.
    pub improvements: usize,
    /// Things to know (two different programs, truncated inputs).
    pub warnings: Vec<String>,
}

/// Compares `before` with `after`.
pub fn diff(before: &Profile, after: &Profile, o: &DiffOptions) -> Diff {
    let mut warnings = Vec::new();
    if before.meta.program != after.meta.program {
        warnings.push(format!(
            "the sessions are of different programs ({} and {}): compared by scope and location names",
            before.meta.program, after.meta.program
        ));
    }
    for (which, p) in [("before", before), ("after", after)] {
        if p.truncated.is_some() {
            warnings.push(format!(
                "the {which} session was truncated: its figures cover what was read"
            ));
        }
    }
    let scopes = scope_changes(before, after, o);
    let sites = site_changes(before, after, o);
    let count = |v: Verdict| {
        scopes.iter().filter(|s| s.verdict == v).count()
            + sites.iter().filter(|s| s.verdict == v).count()
    };
    let (regressions, improvements) = (count(Verdict::Regression), count(Verdict::Improvement));
    Diff {
        programs: (before.meta.program.clone(), after.meta.program.clone()),
        duration_ns: (before.duration_ns, after.duration_ns),
        speedup: before.duration_ns as f64 / after.duration_ns.max(1) as f64,
        allocs: (before.memory.allocs, after.memory.allocs),
        bytes: (before.memory.bytes_allocated, after.memory.bytes_allocated),
        peak_bytes: (before.memory.peak_bytes, after.memory.peak_bytes),
        scopes,
        sites,
        regressions,
        improvements,
        warnings,
    }
}

/// Worse first, then better, then the rest; bigger changes first within each.
fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Regression => 0,
        Verdict::Improvement => 1,
        Verdict::Added | Verdict::Removed => 2,
        Verdict::Noise => 3,
    }
}

fn scope_changes(before: &Profile, after: &Profile, o: &DiffOptions) -> Vec<ScopeChange> {
    let by_name = |p: &Profile| -> BTreeMap<String, pulse_format::ScopeTime> {
        p.scope_times.iter().map(|(id, t)| (p.display_name(*id), t.clone())).collect()
    };
    let (b, a) = (by_name(before), by_name(after));
    let names: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let mut out: Vec<ScopeChange> = names
        .into_iter()
        .map(|name| {
            let zero = pulse_format::ScopeTime::default();
            let (x, y) = (b.get(name).unwrap_or(&zero), a.get(name).unwrap_or(&zero));
            let change = y.p50_ns as f64 / x.p50_ns.max(1) as f64 - 1.0;
            let verdict = if x.count == 0 {
                Verdict::Added
            } else if y.count == 0 {
                Verdict::Removed
            } else {
                let shift = y.p50_ns as f64 - x.p50_ns as f64;
                let spread = (x.p90_ns.saturating_sub(x.p50_ns))
                    .max(y.p90_ns.saturating_sub(y.p50_ns)) as f64;
                let n = x.count.min(y.count).max(1) as f64;
                let noise = 2.0 * spread / n.sqrt();
                let (needed, floor) = if n < 3.0 {
                    (o.threshold.max(0.5), o.min_ns.max(FEW_ENTRIES_FLOOR_NS))
                } else {
                    (o.threshold, o.min_ns)
                };
                let moved = (y.total_ns as f64 - x.total_ns as f64).abs();
                if change.abs() < needed || shift.abs() <= noise || moved < floor as f64 {
                    Verdict::Noise
                } else if shift > 0.0 {
                    Verdict::Regression
                } else {
                    Verdict::Improvement
                }
            };
            ScopeChange {
                name: name.clone(),
                count: (x.count, y.count),
                p50_ns: (x.p50_ns, y.p50_ns),
                mean_ns: (x.mean_ns, y.mean_ns),
                p99_ns: (x.p99_ns, y.p99_ns),
                total_ns: (x.total_ns, y.total_ns),
                allocs: (x.allocs, y.allocs),
                change,
                verdict,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        rank(a.verdict).cmp(&rank(b.verdict)).then(b.change.abs().total_cmp(&a.change.abs()))
    });
    out
}

fn site_changes(before: &Profile, after: &Profile, o: &DiffOptions) -> Vec<SiteChange> {
    // (allocs + reallocs, bytes, live bytes at end) per user location.
    let by_location = |p: &Profile| -> BTreeMap<String, (u64, u64, u64)> {
        let root = project_root(&p.meta.program);
        let mut m: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
        for (id, s) in &p.sites {
            let Some(f) = p.symbols.location(*id) else { continue };
            let e = m.entry(f.display(&root)).or_default();
            e.0 = e.0.saturating_add(s.allocs.saturating_add(s.reallocs));
            e.1 = e.1.saturating_add(s.bytes);
            e.2 = e.2.saturating_add(s.live_bytes_at_end);
        }
        m
    };
    let (b, a) = (by_location(before), by_location(after));
    let names: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let mut out: Vec<(f64, SiteChange)> = names
        .into_iter()
        .map(|loc| {
            let (x, y) =
                (b.get(loc).copied().unwrap_or_default(), a.get(loc).copied().unwrap_or_default());
            let rel = |p: u64, q: u64| q as f64 / p.max(1) as f64 - 1.0;
            let (da, db) = (rel(x.0, y.0), rel(x.1, y.1));
            let verdict = if x.0 == 0 {
                Verdict::Added
            } else if y.0 == 0 {
                Verdict::Removed
            } else if da >= o.threshold || db >= o.threshold {
                Verdict::Regression
            } else if da <= -o.threshold || db <= -o.threshold {
                Verdict::Improvement
            } else {
                Verdict::Noise
            };
            let size = da.abs().max(db.abs());
            let change = SiteChange {
                location: loc.clone(),
                allocs: (x.0, y.0),
                bytes: (x.1, y.1),
                live_bytes_at_end: (x.2, y.2),
                verdict,
            };
            (size, change)
        })
        .collect();
    out.sort_by(|(sa, a), (sb, b)| rank(a.verdict).cmp(&rank(b.verdict)).then(sb.total_cmp(sa)));
    out.into_iter().map(|(_, c)| c).collect()
}

impl Diff {
    /// Writes the diff as text: the headline, then at most `top` scopes and
    /// locations that changed (noise left out).
    pub fn render(&self, w: &mut dyn std::io::Write, top: usize) -> std::io::Result<()> {
        use crate::units::{Bytes, Nanos};
        let pct = |c: f64| format!("{:+.1} %", c * 100.0);
        writeln!(w, "pulse diff: {} → {}", self.programs.0, self.programs.1)?;
        writeln!(
            w,
            "  duration {} → {} ({:.2}× {})",
            Nanos(self.duration_ns.0),
            Nanos(self.duration_ns.1),
            if self.speedup >= 1.0 {
                self.speedup
            } else {
                1.0 / self.speedup.max(f64::MIN_POSITIVE)
            },
            if self.speedup >= 1.0 { "faster" } else { "slower" }
        )?;
        writeln!(
            w,
            "  allocations {} → {}, bytes {} → {}, peak {} → {}",
            self.allocs.0,
            self.allocs.1,
            Bytes(self.bytes.0),
            Bytes(self.bytes.1),
            Bytes(self.peak_bytes.0),
            Bytes(self.peak_bytes.1)
        )?;
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        writeln!(
            w,
            "  {}, {}",
            plural(self.regressions, "regression", "regressions"),
            plural(self.improvements, "improvement", "improvements")
        )?;
        for warning in &self.warnings {
            writeln!(w, "  warning: {warning}")?;
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
            let mut t = crate::table::Table::new(&[
                ("scope", crate::table::Align::Left),
                ("before", crate::table::Align::Right),
                ("after", crate::table::Align::Right),
                ("change", crate::table::Align::Right),
                ("p99 before", crate::table::Align::Right),
                ("p99 after", crate::table::Align::Right),
                ("count", crate::table::Align::Right),
                ("verdict", crate::table::Align::Left),
            ]);
            for s in changed {
                t.row(vec![
                    s.name.clone(),
                    Nanos(s.p50_ns.0).to_string(),
                    Nanos(s.p50_ns.1).to_string(),
                    pct(s.change),
                    Nanos(s.p99_ns.0).to_string(),
                    Nanos(s.p99_ns.1).to_string(),
                    format!("{} → {}", s.count.0, s.count.1),
                    name(s.verdict).to_owned(),
                ]);
            }
            t.write(w, 2)?;
        }
        let changed: Vec<&SiteChange> =
            self.sites.iter().filter(|s| s.verdict != Verdict::Noise).take(top).collect();
        if !changed.is_empty() {
            writeln!(w)?;
            writeln!(w, "Allocation sites")?;
            let mut t = crate::table::Table::new(&[
                ("location", crate::table::Align::Left),
                ("allocs", crate::table::Align::Right),
                ("bytes", crate::table::Align::Right),
                ("verdict", crate::table::Align::Left),
            ]);
            for s in changed {
                t.row(vec![
                    s.location.clone(),
                    format!("{} → {}", s.allocs.0, s.allocs.1),
                    format!("{} → {}", Bytes(s.bytes.0), Bytes(s.bytes.1)),
                    name(s.verdict).to_owned(),
                ]);
            }
            t.write(w, 2)?;
        }
        Ok(())
    }
}
