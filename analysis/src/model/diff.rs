//! Before and after: what changed between sessions of a program, each
//! change classified as an improvement, a regression, or noise.
//!
//! A figure can move between two runs of the *same* binary: a busy
//! machine, the processor's clock, the cache, a multi-threaded program's
//! interleaving. Reruns of one unchanged program measured their scopes'
//! medians up to 1.73× apart and
//! their whole durations 1.6× apart. So a change is
//! judged against what reruns do, on three grounds, all of which must hold:
//!
//! 1. **Beyond run-to-run noise**, as a factor either way (a median
//!    halved is as far as one doubled). With several sessions per side
//!    ([`diff_runs`]), the noise is measured: the spread (largest over
//!    smallest, less one) of each run's figure on either side, widened for fewer than five runs (3× for two, 1.7× for three,
//!    1.25× for four: a few runs spread less than the machine does, by
//!    chance), and a change must move the middle by more than the larger
//!    of the two. With one session on a side there is nothing to
//!    measure it by, and a change must exceed [`RERUN_NOISE_TIME`] for
//!    time, and [`RERUN_NOISE_ALLOCS`] for the allocation figures of a
//!    program that allocates on several threads.
//!    A single-threaded program's allocation figures are exact and
//!    repeat from run to run, so for them the threshold alone decides.
//! 2. **Beyond the threshold and the entries' own scatter.** The median
//!    must move by at least `threshold` (5 %); and, as before, by more than
//!    twice `spread / √n`, with `spread` the larger p90 − p50 and `n` the
//!    smaller entry count — unless the two are apart, the slower side's
//!    median beyond the faster side's p90: a loaded machine spreads the
//!    slow side's entries, which is no reason to doubt a shift that leaves
//!    the fast side behind. With fewer than three entries on either side the
//!    median must move by half, and the total by more than
//!    [`FEW_ENTRIES_FLOOR_NS`].
//!
//!    A sampled session's site figures are estimates, their error
//!    measured by the replay ([`SiteStats::bytes_error`](crate::SiteStats)):
//!    about 1/√k of its bytes for `k` sampled stacks of blocks much smaller
//!    than the interval, none for blocks much larger, which are always
//!    sampled. A location's change must be in its bytes (a sampled count
//!    moves far more, with the sizes its sample took), beyond
//!    [`SAMPLING_SIGMAS`] standard deviations of the ratio of the two
//!    estimates; a location one side's sample missed is added or removed
//!    only where the other side's bytes there would have been missed with
//!    a chance of e⁻¹² at most ([`SAMPLED_TO_TELL`] intervals).
//! 3. **Large enough to matter.** A scope's total time must move by at
//!    least `min_share` (1 %) of the session's duration and by `min_ns`; a
//!    site's allocations or bytes by `min_share` of the session's.
//!
//! **A whole run at another pace.** A shared machine can run a whole rerun
//! of an unchanged program slower: ten reruns of one binary on a two-core
//! CI machine had every scope's median 2.05–2.25× slower, all alike, in six
//! of them. Several sessions a side do not measure that away: the same
//! machine ran five reruns, then five more, the second five's medians
//! 1.5–1.7× the first's, beyond the spread within either five (up to
//! 1.6×). So such a shift is told from a change by its shape ([`Diff::pace`],
//! and `common_pace` for the rule): the two sides did the same work, and
//! every scope's median moved by one factor, which two scopes or more that
//! run mostly their own code agree on, beyond the threshold and up to
//! [`PACE_LIMIT`]. With several sessions a side, the pace excuses no more
//! than the runs of a side were seen to move among themselves: the scopes
//! must agree within that noise, and the pace be within it, as a factor,
//! raised to the power 1 + [`PACE_BAND`] (a machine that kept each side's
//! runs 3 % apart is not excused 1.06× between them). Each scope is then judged against
//! the before side's figures at that pace, and the diff says so. A change
//! to the code that slows every scope alike, within those bounds, reads the
//! same.
//!
//! `tests/tests/diff.rs` runs an unchanged program ten times and compares
//! every ordered pair: no regression at the default settings; and the
//! planted regressions of the examples are still caught.

use std::collections::BTreeMap;

use crate::model::profile::Profile;
use crate::model::sites::project_root;
use pulse_format::ScopeTime;

/// The least a scope entered fewer than three times must move, in total,
/// to be more than noise: a few scheduler time slices, which one preemption
/// of a busy machine can add to a single entry.
pub const FEW_ENTRIES_FLOOR_NS: u64 = 4_000_000;

/// How far a scope's median may move between two runs of an unchanged
/// program when there is one session per side to go by: a factor of
/// 1 + this either way (2×: reruns of one binary on a loaded two-core
/// machine were seen 1.73× apart, and 1.26× on a quieter one). A change
/// must be larger to count. Give [`diff_runs`]
/// several sessions per side to detect smaller changes: it measures the
/// noise instead.
pub const RERUN_NOISE_TIME: f64 = 1.0;

/// How far a site's allocations or bytes may move between two runs of an
/// unchanged program that allocates on several threads, with one session
/// per side (25 %; reruns of a four-thread search were seen 7 % apart).
pub const RERUN_NOISE_ALLOCS: f64 = 0.25;

/// How many standard deviations of its sampling error a sampled location's
/// estimate must move by to be more than the sample's chance: 4, since a
/// diff judges every location at once (at 3, one location in 370 would
/// move that far by chance, and a program has hundreds).
pub const SAMPLING_SIGMAS: f64 = 4.0;

/// The sampling intervals of bytes a location needs, on the side that has
/// it, to be added or removed rather than missed by the other side's
/// sample: a byte-rate sample misses `b` bytes with a chance of
/// e^(−b / interval), e⁻¹² (1 in 160 000) here. At 9 (1 in 8 100), with
/// every line of a program judged and the side that has it estimated
/// too, reruns of jaq showed a line added about once in a few hundred
/// pairs.
pub const SAMPLED_TO_TELL: f64 = 12.0;

/// How far a whole run's pace may move, every scope alike, before the move
/// is read as a change rather than the machine's (3×: see the module's
/// documentation for the 2.25× seen).
pub const PACE_LIMIT: f64 = 3.0;

/// How closely scopes must move together to be read as one pace: each
/// scope's factor within a factor of 1.2 of the pace, either way (the six
/// slow reruns' scopes were 10 % apart at most).
pub const PACE_BAND: f64 = 0.2;

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
    /// The smallest share of the session a change must move to count
    /// (0.01: 1 % of the duration for a scope's total time, of the
    /// allocations or bytes for a site's).
    pub min_share: f64,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions { threshold: 0.05, min_ns: 100_000, min_share: 0.01 }
    }
}

/// One scope's change. With several sessions per side, each figure is the
/// middle (median) of the runs' own.
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
    /// The median's relative change (after / before − 1); `None` for a
    /// scope added or removed.
    pub change: Option<f64>,
    /// The change the noise allows: beyond it (and the threshold) a change
    /// counts. The larger run-to-run spread with several sessions per
    /// side (widened for fewer than five runs, not past
    /// [`RERUN_NOISE_TIME`]), else [`RERUN_NOISE_TIME`]; where a pace is
    /// read, at least the latitude its scopes were held to.
    pub noise: f64,
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
    /// The change the noise allows (0 where the figures are exact): the
    /// run-to-run noise, and in a sampled session the sampling error too
    /// (see [`SAMPLING_SIGMAS`]).
    pub noise: f64,
    /// The classification, by allocations and bytes.
    pub verdict: Verdict,
}

/// The difference between two sessions, or two sets of runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Diff {
    /// The programs.
    pub programs: (String, String),
    /// Their arguments (the first session's of each side).
    pub arguments: (Vec<String>, Vec<String>),
    /// Sessions on each side.
    pub runs: (usize, usize),
    /// Session durations, ns (the middle run's with several).
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
    /// After's pace against before's, where the two sides ran the same
    /// work and every scope's median moved alike, by more than the
    /// threshold and within its limit: the factor, above 1 slower. Scopes are judged against before's figures at this
    /// pace (see the module's documentation). `None` otherwise.
    pub pace: Option<f64>,
    /// Things to know (two different programs, truncated inputs, a whole
    /// run at another pace).
    pub warnings: Vec<String>,
}

/// Compares `before` with `after`, one session each.
pub fn diff(before: &Profile, after: &Profile, o: &DiffOptions) -> Diff {
    diff_runs(std::slice::from_ref(before), std::slice::from_ref(after), o)
}

/// Compares runs of a program before a change with runs after it: several
/// sessions per side let the noise be measured rather than assumed (see the
/// module's documentation). Each side needs one session at least; an empty
/// side compares as a session with nothing in it.
pub fn diff_runs(before: &[Profile], after: &[Profile], o: &DiffOptions) -> Diff {
    let mut warnings = Vec::new();
    let program =
        |side: &[Profile]| side.first().map(|p| p.meta.program.clone()).unwrap_or_default();
    let (pb, pa) = (program(before), program(after));
    if before.iter().chain(after).any(|p| p.meta.program != pb) {
        let mut names: Vec<&str> =
            before.iter().chain(after).map(|p| p.meta.program.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        warnings.push(format!(
            "the sessions are of different programs ({}): compared by scope and location names",
            crate::write::text::printable(&names.join(", "))
        ));
    }
    for (which, side) in [("before", before), ("after", after)] {
        let cut = side.iter().filter(|p| p.truncated.is_some()).count();
        if cut > 0 {
            let what = if side.len() == 1 {
                format!("the {which} session was")
            } else {
                format!("{cut} of the {which} sessions were")
            };
            warnings.push(format!("{what} truncated: its figures cover what was read"));
        }
    }
    let mid = |side: &[Profile], f: &dyn Fn(&Profile) -> u64| middle(side.iter().map(f));
    let allocs = (mid(before, &|p| p.memory.allocs), mid(after, &|p| p.memory.allocs));
    let (scopes, pace) = scope_changes(before, after, o);
    let args = |side: &[Profile]| side.first().map(|p| p.meta.args.clone()).unwrap_or_default();
    let arguments = (args(before), args(after));
    let one_program = before.iter().chain(after).all(|p| p.meta.program == pb);
    // A side's runs are repeats of one run, or their spread is not noise.
    for (which, side) in [("before", before), ("after", after)] {
        if one_program && side.iter().any(|p| p.meta.args != side[0].meta.args) {
            warnings.push(format!(
                "the {which} sessions ran with different arguments ({}): they are not repeats \
                 of one run, so their spread is not the noise it is taken for",
                arguments_of(side.iter())
            ));
        }
    }
    // The same program on other input does other work: every change below
    // may be the work's rather than the code's. Said where a scope of both
    // sides was entered a different number of times (a change of the code
    // alone can do that too, hence "if").
    let entries_differ =
        scopes.iter().any(|s| s.count.0 > 0 && s.count.1 > 0 && s.count.0 != s.count.1);
    if one_program && arguments.0 != arguments.1 && entries_differ {
        warnings.push(format!(
            "the two sides ran with different arguments ({}) and entered their scopes a \
             different number of times: if they did different work, the changes below are the \
             work's as much as the code's",
            arguments_of(before.iter().take(1).chain(after.iter().take(1)))
        ));
    }
    // Worth a word wherever it can move a verdict: with several sessions a
    // side, or beyond the one-a-side noise.
    if let Some(p) = pace.filter(|p| p.told) {
        let way = |k: f64| if k >= 1.0 { (k, "slower") } else { (1.0 / k, "faster") };
        let (factor, how) = way(p.factor);
        warnings.push(format!(
            "every scope ran {factor:.2}× {how} alike on the same work: a whole run at \
             another pace, as a machine busier or quieter for one side makes it (a change that \
             speeds or slows all code alike reads the same); each scope is judged at that pace"
        ));
    }
    let pace = pace.map(|p| p.factor);
    let sites = site_changes(before, after, o);
    let count = |v: Verdict| {
        scopes.iter().filter(|s| s.verdict == v).count()
            + sites.iter().filter(|s| s.verdict == v).count()
    };
    let (regressions, improvements) = (count(Verdict::Regression), count(Verdict::Improvement));
    let duration_ns = (mid(before, &|p| p.duration_ns), mid(after, &|p| p.duration_ns));
    Diff {
        programs: (pb, pa),
        arguments,
        runs: (before.len(), after.len()),
        duration_ns,
        speedup: duration_ns.0 as f64 / duration_ns.1.max(1) as f64,
        allocs,
        bytes: (
            mid(before, &|p| p.memory.bytes_allocated),
            mid(after, &|p| p.memory.bytes_allocated),
        ),
        peak_bytes: (mid(before, &|p| p.memory.peak_bytes), mid(after, &|p| p.memory.peak_bytes)),
        scopes,
        sites,
        regressions,
        improvements,
        pace,
        warnings,
    }
}

/// The sessions' distinct argument lists, quoted, at most four, for a
/// warning.
fn arguments_of<'a>(sessions: impl Iterator<Item = &'a Profile>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for p in sessions {
        let line = quoted(&p.meta.args);
        if !seen.contains(&line) {
            seen.push(line);
        }
    }
    let mut shown = seen.iter().take(4).map(String::as_str).collect::<Vec<_>>().join("; ");
    if seen.len() > 4 {
        shown.push_str(&format!("; and {} more", seen.len() - 4));
    }
    crate::write::text::printable(&shown).into_owned()
}

/// A command line's arguments as a shell would read them back: each with
/// a space, a quote or nothing in it single-quoted; "no arguments" for none.
fn quoted(args: &[String]) -> String {
    if args.is_empty() {
        return String::from("no arguments");
    }
    let one = |a: &String| {
        if !a.is_empty() && !a.chars().any(|c| c.is_whitespace() || "'\"\\$`;&|<>()*?".contains(c))
        {
            a.clone()
        } else {
            format!("'{}'", a.replace('\'', "'\\''"))
        }
    };
    args.iter().map(one).collect::<Vec<_>>().join(" ")
}

/// The median of `values` (the lower middle of an even count); 0 for none.
fn middle(values: impl Iterator<Item = u64>) -> u64 {
    let mut v: Vec<u64> = values.collect();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

/// The runs' spread of a figure: largest / smallest − 1, the same either
/// way (measured against the middle run, a side whose middle is one of its
/// slow runs measured its spread short); 0 for one run.
fn spread(values: &[u64]) -> f64 {
    let (Some(lo), Some(hi)) = (values.iter().min(), values.iter().max()) else { return 0.0 };
    *hi as f64 / (*lo).max(1) as f64 - 1.0
}

/// The change two sides' figures must exceed to be more than run-to-run
/// noise: the larger spread measured where both sides have several runs,
/// each widened by [`few_runs`], else `fallback`.
fn noise_between(x: &[u64], y: &[u64], fallback: f64) -> f64 {
    if x.len() >= 2 && y.len() >= 2 {
        let widened = |v: &[u64]| (spread(v) * few_runs(v.len())).min(RERUN_NOISE_TIME);
        widened(x).max(widened(y)).max(spread(x)).max(spread(y))
    } else {
        fallback
    }
}

/// How much wider than the spread of `n` runs a change must be. The spread
/// of five runs is about three standard deviations of the difference
/// between two sides' middle runs; fewer runs spread less than the machine
/// does, by chance (two runs one step of the clock's rounding apart
/// measured 4 %), and their middles move more, so the spread of `n` runs
/// is widened to about three of those standard deviations too: 3× for two
/// runs, 1.7× for three, 1.25× for four. Never past the noise one session
/// a side is judged against ([`RERUN_NOISE_TIME`]): more runs never catch
/// less.
fn few_runs(n: usize) -> f64 {
    match n {
        0..=2 => 3.0,
        3 => 1.7,
        4 => 1.25,
        _ => 1.0,
    }
}

/// Whether a program allocates on more than one thread (each with at least
/// a hundredth of the bytes): its per-site figures then vary from run to run.
fn allocates_on_several_threads(p: &Profile) -> bool {
    let total = p.memory.bytes_allocated.max(1);
    p.threads.values().filter(|t| t.bytes_allocated.saturating_mul(100) >= total).count() > 1
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

/// Each scope's change, and the pace both sides ran at where
/// [`common_pace`] finds one.
fn scope_changes(
    before: &[Profile],
    after: &[Profile],
    o: &DiffOptions,
) -> (Vec<ScopeChange>, Option<Pace>) {
    type Runs = BTreeMap<String, Vec<Figures>>;
    // Each scope's figures in every run of a side, zero where a run does
    // not have it.
    let by_name = |side: &[Profile]| -> Runs {
        let mut m: Runs = BTreeMap::new();
        for (i, p) in side.iter().enumerate() {
            for (id, t) in &p.scope_times {
                let runs = m.entry(p.display_name(*id)).or_default();
                runs.resize(side.len(), Figures::default());
                runs[i] = Figures::of(t);
            }
        }
        m
    };
    let (b, a) = (by_name(before), by_name(after));
    let duration = |side: &[Profile]| middle(side.iter().map(|p| p.duration_ns));
    let session_ns = duration(before).max(duration(after));
    let names: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let none = Vec::new();
    // Each scope's middle figures on either side, the noise its median
    // must clear, and whether every run did its same work.
    let sides: Vec<(&String, ScopeTime, ScopeTime, f64, bool)> = names
        .into_iter()
        .map(|name| {
            let (xs, ys) = (b.get(name).unwrap_or(&none), a.get(name).unwrap_or(&none));
            let figures = |runs: &[Figures]| {
                let mut f = Figures::default();
                for k in 0..f.0.len() {
                    f.0[k] = middle(runs.iter().map(|r| r.0[k]));
                }
                f.time()
            };
            let medians =
                |runs: &[Figures]| -> Vec<u64> { runs.iter().map(|r| r.time().p50_ns).collect() };
            let noise = noise_between(&medians(xs), &medians(ys), RERUN_NOISE_TIME);
            let first = xs.first().or(ys.first()).copied().unwrap_or_default().time();
            let steady = !xs.is_empty()
                && !ys.is_empty()
                && xs.iter().chain(ys).map(|r| r.time()).all(|r| {
                    r.count > 0 && r.count == first.count && same_work(r.allocs, first.allocs)
                });
            (name, figures(xs), figures(ys), noise, steady)
        })
        .collect();
    // The spread within each side, where measured, does not take in a
    // machine whose pace changed between the sides' runs: the pace is read
    // whatever their number, as far as that spread allows.
    let measured = before.len() >= 2 && after.len() >= 2;
    let first = before.first().map_or(0, |p| p.memory.allocs);
    let same = before.iter().chain(after).all(|p| same_work(p.memory.allocs, first))
        && sides.iter().all(|s| s.4);
    let scopes = sides.iter().map(|(_, x, y, noise, _)| Paced { x, y, noise: *noise });
    let pace = if same { common_pace(scopes, measured, o) } else { None };
    let k = pace.map_or(1.0, |p| p.factor);
    let mut out: Vec<ScopeChange> = sides
        .into_iter()
        .map(|(name, x, y, noise, _)| {
            // At a pace, scopes that moved within its latitude of it moved
            // alike, by the pace's own definition: that much is noise.
            let noise = pace.map_or(noise, |p| noise.max(p.latitude));
            let (verdict, change) = if x.count == 0 {
                (Verdict::Added, None)
            } else if y.count == 0 {
                (Verdict::Removed, None)
            } else {
                let change = y.p50_ns as f64 / x.p50_ns.max(1) as f64 - 1.0;
                (judge(&x, &y, k, noise, session_ns, o), Some(change))
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
                noise,
                verdict,
            }
        })
        .collect();
    let size = |c: &ScopeChange| c.change.map_or(f64::INFINITY, f64::abs);
    out.sort_by(|a, b| rank(a.verdict).cmp(&rank(b.verdict)).then(size(b).total_cmp(&size(a))));
    (out, pace)
}

/// A scope's verdict, from before's figures `x` at pace `k` (after's time
/// for before's nanosecond) and after's `y`, both entered.
fn judge(
    x: &ScopeTime,
    y: &ScopeTime,
    k: f64,
    noise: f64,
    session_ns: u64,
    o: &DiffOptions,
) -> Verdict {
    let (x50, x90, x_total) = (x.p50_ns as f64 * k, x.p90_ns as f64 * k, x.total_ns as f64 * k);
    let (y50, y90) = (y.p50_ns as f64, y.p90_ns as f64);
    let change = y50 / x50.max(1.0) - 1.0;
    let shift = y50 - x50;
    let scatter = (x90 - x50).max(y90 - y50).max(0.0);
    let n = x.count.min(y.count).max(1) as f64;
    let (needed, floor) = if n < 3.0 {
        (o.threshold.max(0.5), o.min_ns.max(FEW_ENTRIES_FLOOR_NS))
    } else {
        (o.threshold, o.min_ns)
    };
    let floor = (floor as f64).max(o.min_share * session_ns as f64);
    let moved = (y.total_ns as f64 - x_total).abs();
    // Distributions apart — the slower side's median beyond the faster
    // side's p90 — need no test of the scatter: the slower side's own
    // spread (a loaded machine's) is no reason to doubt a shift that leaves
    // the other behind.
    let apart = if shift > 0.0 { y50 > x90 } else { x50 > y90 };
    if change.abs() < needed
        || (1.0 + change).ln().abs() <= (1.0 + noise).ln()
        || !apart && shift.abs() <= 2.0 * scatter / n.sqrt()
        || moved < floor
    {
        Verdict::Noise
    } else if shift > 0.0 {
        Verdict::Regression
    } else {
        Verdict::Improvement
    }
}

/// How far apart two runs of the same work may allocate: 1 % (a
/// single-threaded program's allocations repeat exactly).
const SAME_WORK: f64 = 0.01;

/// Whether two runs' allocations are within [`SAME_WORK`] of each other.
fn same_work(p: u64, q: u64) -> bool {
    p.abs_diff(q) as f64 <= SAME_WORK * p.max(q) as f64
}

/// A scope as [`common_pace`] weighs it.
#[derive(Clone, Copy)]
struct Paced<'a> {
    /// Before's middle figures.
    x: &'a ScopeTime,
    /// After's.
    y: &'a ScopeTime,
    /// The noise its median is judged against: the spread between the
    /// runs of a side where both sides have several, else
    /// [`RERUN_NOISE_TIME`].
    noise: f64,
}

/// The factor after's scopes ran at against before's, where every run did
/// the same work and every scope moved alike; `None` where they did not,
/// or where that factor is within the threshold or beyond its limit.
///
/// - **The same work** (the caller's check): every run made as many
///   allocations, within [`SAME_WORK`], and entered every scope as often,
///   allocating within it there too.
/// - **Evidence of a pace:** scopes entered three times or more that spend
///   at least half their time in their own code on both sides (a chain of
///   nested scopes, slowed in its innermost, is one piece of evidence, not
///   one per level); two at least. Their medians' factors, averaged as
///   logarithms (so that a pace one way is the inverse of the other), are
///   the pace.
/// - **Alike:** every scope's median factor, the others' too, within
///   [`PACE_BAND`] of the pace either way.
/// - **Beyond the threshold, within [`PACE_LIMIT`].**
///
/// Where the noise is `measured`, what the runs of a side were seen to do
/// bounds what the pace may excuse: `seen`, the evidence's median noise,
/// as a factor. The scopes' factors must then lie within `seen` of each
/// other, and the pace within `seen` raised to the power `1 +`
/// [`PACE_BAND`]: a machine that kept each side's runs 3 % apart is not
/// excused 1.06× between them, one that swung 1.55× is excused 1.69×,
/// and scopes that moved 1.2× and not at all are no pace where runs are 10 %
/// apart. (`seen` is of the spreads as [`noise_between`] widens them for
/// fewer than five runs a side.)
fn common_pace<'a>(
    scopes: impl Iterator<Item = Paced<'a>> + Clone,
    measured: bool,
    o: &DiffOptions,
) -> Option<Pace> {
    let factor = |s: &Paced| {
        (s.x.p50_ns > 0 && s.y.p50_ns > 0).then(|| (s.y.p50_ns as f64 / s.x.p50_ns as f64).ln())
    };
    let own = |t: &ScopeTime| t.self_ns.saturating_mul(2) >= t.total_ns;
    // Each piece of evidence: its median's factor and its noise, as logarithms.
    let evidence: Vec<(f64, f64)> = scopes
        .clone()
        .filter(|s| s.x.count >= 3 && own(s.x) && own(s.y))
        .filter_map(|s| Some((factor(&s)?, s.noise.ln_1p())))
        .collect();
    if evidence.len() < 2 {
        return None;
    }
    let k = evidence.iter().map(|e| e.0).sum::<f64>() / evidence.len() as f64;
    let band = PACE_BAND.ln_1p();
    let factors: Vec<f64> = scopes.filter_map(|s| factor(&s)).collect();
    let mut noises: Vec<f64> = evidence.iter().map(|e| e.1).collect();
    noises.sort_by(f64::total_cmp);
    let n = noises.len();
    let seen = (noises[(n - 1) / 2] + noises[n / 2]) / 2.0;
    let (width, limit) = match measured {
        true => (seen, PACE_LIMIT.ln().min(seen * (1.0 + PACE_BAND))),
        false => (f64::INFINITY, PACE_LIMIT.ln()),
    };
    let lo = factors.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = factors.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let together = factors.iter().all(|f| (f - k).abs() <= band) && hi - lo <= width;
    let beyond = k.abs() > o.threshold.ln_1p() && k.abs() <= limit;
    (together && beyond).then(|| Pace {
        factor: k.exp(),
        // How far a scope may stand from the pace and still have moved
        // alike: the band, or with several sessions a side the width the
        // scopes were held to, if narrower.
        latitude: band.min(width).exp_m1(),
        told: measured || k.abs() > seen,
    })
}

/// A whole run's pace, as [`common_pace`] reads it.
#[derive(Debug, Clone, Copy)]
struct Pace {
    /// After's time for before's nanosecond.
    factor: f64,
    /// How far a scope may stand from the pace and still have moved alike,
    /// as a relative change: at least this much is noise at this pace.
    latitude: f64,
    /// Worth a word to the user: with several sessions a side, or beyond
    /// the one-a-side noise (a pace within 2× moves no verdict much there).
    told: bool,
}

/// The figures of a scope in one run that a diff compares: count, p50,
/// p90, p99, mean, total, self time and allocations.
#[derive(Debug, Clone, Copy, Default)]
struct Figures([u64; 8]);

impl Figures {
    fn of(t: &ScopeTime) -> Self {
        Figures([t.count, t.p50_ns, t.p90_ns, t.p99_ns, t.mean_ns, t.total_ns, t.self_ns, t.allocs])
    }

    fn time(self) -> ScopeTime {
        let [count, p50_ns, p90_ns, p99_ns, mean_ns, total_ns, self_ns, allocs] = self.0;
        ScopeTime {
            count,
            p50_ns,
            p90_ns,
            p99_ns,
            mean_ns,
            total_ns,
            self_ns,
            allocs,
            ..Default::default()
        }
    }
}

/// One location's figures in one run: allocations and reallocations,
/// bytes, bytes live at the end.
/// A location's figures in one run: allocations (and reallocations),
/// bytes, bytes live at the end, and the variance of its bytes estimate
/// (0 where the run did not sample).
type SiteFigures = (u64, u64, u64, f64);

/// The sampling error of the ratio of two sides' bytes estimates of a
/// location, as a factor's logarithm: [`SAMPLING_SIGMAS`] standard
/// deviations, each side's relative variance its runs' mean (a run that
/// did not sample, or a block sure to be sampled, adds none). 0 where
/// neither side sampled.
fn sampling_error(sides: [&[SiteFigures]; 2]) -> f64 {
    let relative = |runs: &[SiteFigures]| -> f64 {
        let sum: f64 = runs.iter().map(|r| r.3 / (r.1.max(1) as f64).powi(2)).sum();
        sum / runs.len().max(1) as f64
    };
    // Bounded, so that the noise it allows stays a number.
    (SAMPLING_SIGMAS * (relative(sides[0]) + relative(sides[1])).sqrt()).min(MAX_SAMPLING_ERROR)
}

/// The most [`sampling_error`] is taken to be: a factor of e²⁰.
const MAX_SAMPLING_ERROR: f64 = 20.0;

/// Whether a location seen on one side only is really absent from a
/// sampled `side`: its sample would have missed `bytes` (what the other
/// side made there) with a chance of e^(−bytes / interval), which
/// [`SAMPLED_TO_TELL`] intervals make e⁻¹² at most. Always where `side`
/// did not sample.
fn absent(side: &[Profile], bytes: u64) -> bool {
    side.iter()
        .filter_map(Profile::sample_interval)
        .all(|i| bytes as f64 / i.max(1) as f64 >= SAMPLED_TO_TELL)
}

fn site_changes(before: &[Profile], after: &[Profile], o: &DiffOptions) -> Vec<SiteChange> {
    let by_location = |side: &[Profile]| -> BTreeMap<String, Vec<SiteFigures>> {
        let mut m: BTreeMap<String, Vec<SiteFigures>> = BTreeMap::new();
        for (i, p) in side.iter().enumerate() {
            let root = project_root(&p.meta.program);
            for (id, s) in &p.sites {
                let Some(f) = p.symbols.location(*id) else { continue };
                let runs = m.entry(f.display(&root)).or_default();
                runs.resize(side.len(), (0, 0, 0, 0.0));
                let e = &mut runs[i];
                e.0 = e.0.saturating_add(s.allocs.saturating_add(s.reallocs));
                e.1 = e.1.saturating_add(s.bytes);
                e.2 = e.2.saturating_add(s.live_bytes_at_end);
                e.3 += (s.bytes_error as f64).powi(2);
            }
        }
        m
    };
    let (b, a) = (by_location(before), by_location(after));
    // Single-threaded allocation figures repeat exactly; several threads'
    // do not, and with one run a side the noise must be assumed.
    let threaded = before.iter().chain(after).any(allocates_on_several_threads);
    let fallback = if threaded { RERUN_NOISE_ALLOCS } else { 0.0 };
    let total = |side: &[Profile], f: fn(&Profile) -> u64| middle(side.iter().map(f));
    let floor_allocs = o.min_share
        * total(before, |p| p.memory.allocs.saturating_add(p.memory.reallocs))
            .max(total(after, |p| p.memory.allocs.saturating_add(p.memory.reallocs)))
            as f64;
    let floor_bytes = o.min_share
        * total(before, |p| p.memory.bytes_allocated)
            .max(total(after, |p| p.memory.bytes_allocated)) as f64;
    let names: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let none = Vec::new();
    let mut out: Vec<(f64, SiteChange)> = names
        .into_iter()
        .map(|loc| {
            let (xs, ys) = (b.get(loc).unwrap_or(&none), a.get(loc).unwrap_or(&none));
            let pick = |runs: &[SiteFigures], f: fn(&SiteFigures) -> u64| -> Vec<u64> {
                let mut v: Vec<u64> = runs.iter().map(f).collect();
                v.resize(v.len().max(1), 0);
                v
            };
            let (xa, ya) = (pick(xs, |r| r.0), pick(ys, |r| r.0));
            let (xb, yb) = (pick(xs, |r| r.1), pick(ys, |r| r.1));
            let (xl, yl) = (pick(xs, |r| r.2), pick(ys, |r| r.2));
            let m = |v: &[u64]| middle(v.iter().copied());
            let (x, y) = ((m(&xa), m(&xb), m(&xl)), (m(&ya), m(&yb), m(&yl)));
            let mut noise =
                noise_between(&xa, &ya, fallback).max(noise_between(&xb, &yb, fallback));
            let rel = |p: u64, q: u64| q as f64 / p.max(1) as f64 - 1.0;
            let (da, db) = (rel(x.0, y.0), rel(x.1, y.1));
            let needed = o.threshold.max(noise + f64::EPSILON);
            let big = (y.0 as f64 - x.0 as f64).abs() >= floor_allocs
                || (y.1 as f64 - x.1 as f64).abs() >= floor_bytes;
            // A sampled side's figures are estimates: a change must also be
            // beyond their sampling error, either way as a factor.
            let sampling = if x.0 > 0 && y.0 > 0 {
                sampling_error([xs.as_slice(), ys.as_slice()])
            } else {
                0.0
            };
            noise = noise.max(sampling.exp_m1());
            let up = |d: f64| d >= needed && d.ln_1p() > sampling;
            let down = |d: f64| d <= -needed && -d.ln_1p() > sampling;
            // A sampled count is judged by its bytes alone: a sampled
            // small block stands for thousands of blocks and a large one
            // for one, so a line's count moves with the sizes its sample
            // happened to take (a lexer's line read 75 and 6 961
            // allocations in two runs of one command, its bytes 1.60 and
            // 1.82 MB), where the bytes' error is measured.
            let counted = !before.iter().chain(after).any(|p| p.sample_interval().is_some());
            let (up_a, down_a) = (counted && up(da), counted && down(da));
            let verdict = if x.0 == 0 {
                if absent(before, y.1) {
                    Verdict::Added
                } else {
                    Verdict::Noise
                }
            } else if y.0 == 0 {
                if absent(after, x.1) {
                    Verdict::Removed
                } else {
                    Verdict::Noise
                }
            } else if !big {
                Verdict::Noise
            } else if up_a || up(db) {
                Verdict::Regression
            } else if down_a || down(db) {
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
                noise,
                verdict,
            };
            (size, change)
        })
        .collect();
    out.sort_by(|(sa, a), (sb, b)| rank(a.verdict).cmp(&rank(b.verdict)).then(sb.total_cmp(sa)));
    out.into_iter().map(|(_, c)| c).collect()
}
