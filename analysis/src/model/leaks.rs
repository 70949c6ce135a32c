//! Blocks still live when the session ended, by allocation site, told
//! apart: a site whose live count was still climbing is a leak; one that
//! filled early and held is a long-lived cache. One line of code is one
//! row, however many stacks reach it: the row shows the stack that holds
//! most of its blocks and says how many others there are.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::model::history::{trend, Trend};
use crate::model::profile::Profile;
use crate::model::sites::{project_root, Frame, Located};

/// One allocation site's blocks live at the end: a line of code (in a
/// merged session, a line of code in one run), whichever stacks reach it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Leak {
    /// The stack (one site id) that holds the most of its blocks.
    pub site: u32,
    /// Other stacks that reach the same line and hold blocks at the end,
    /// counted in `blocks` and `bytes`.
    pub other_stacks: u64,
    /// The innermost frame in the program's own code.
    pub function: String,
    /// Its `file:line`.
    pub place: String,
    /// The stack of `site` with pulse's and the runtime's frames trimmed,
    /// innermost first.
    pub stack: Vec<String>,
    /// Blocks live at the end, every stack's.
    pub blocks: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The bytes they stand for: in a sampled session, where `bytes` are
    /// those of the blocks the sample took a stack of, an estimate of all
    /// of the line's (each sampled block weighed by its size, as its
    /// allocation was); the same number in other sessions, and for the
    /// blocks without a sampled stack.
    pub estimated_bytes: u64,
    /// How the live count of its location (every stack allocating at the
    /// same function and line) moved over the session. Judged by location,
    /// since a line reached by several paths shares its blocks among their
    /// stacks in proportions that wander while the line's total holds flat.
    pub trend: Trend,
    /// The location's live blocks at evenly spaced moments, the end last.
    pub history: Vec<u32>,
    /// Whether its session (its run, in a merge) was cut before it ended
    /// (the program killed): "the end" is then the cut, where the program
    /// may have been in the middle of its work, and growth there a leak
    /// or work under way.
    pub at_cut: bool,
}

impl Leak {
    /// Whether this is a leak rather than a long-lived cache.
    pub fn is_leak(&self) -> bool {
        self.trend == Trend::Growing
    }

    /// Its verdict in a table's cell.
    pub fn verdict(&self) -> &'static str {
        match (self.trend, self.at_cut) {
            (Trend::Growing, false) => "LEAK",
            (Trend::Growing, true) => "growing at the cut",
            (Trend::Flat, _) => "cache/long-lived",
            (Trend::Unknown, _) => "too little history",
        }
    }
}

/// What the verdicts of blocks live at the end mean. In a file cut before
/// its session ended (the program killed, or still writing it), the end
/// is the cut, where the program may have been in the middle of its work:
/// a count still growing there is a leak or work under way. `cut`: the
/// file, or a run of a merge, was cut.
pub(crate) fn legend(cut: bool) -> &'static str {
    if cut {
        "leak: still growing when the session ended; growing at the cut: still growing where the file was cut, before its session ended (the program killed): a leak, or work the program was in the middle of; cache: flat since it filled; too little history: live only near the end or the cut"
    } else {
        "leak: still growing when the session ended; cache: flat since it filled; too little history: live only near the end"
    }
}

/// What `pulse leaks` shows: the locations with blocks live at the end,
/// at most `top` of them, and whether the command finds a leak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakReport {
    /// The locations shown, most bytes first.
    pub leaks: Vec<Leak>,
    /// Locations with blocks live at the end beyond the `top` shown.
    pub more: usize,
    /// Locations (of all, not only those shown) whose blocks were live
    /// only near the end: too short a run to tell a leak from a cache.
    pub undecided: usize,
    /// Whether a location leaks: one still growing, or under `strict` one
    /// that cannot be told.
    pub found: bool,
    /// Whether the file (or a run of a merge) was cut before its session
    /// ended: "the end" is then the cut (see [`Leak::at_cut`]).
    pub cut: bool,
    /// In a sampled session, its interval in bytes: each row's blocks are
    /// then those the sample took a stack of, and the rest, of every line,
    /// are one row without a stack.
    pub sampled: Option<u64>,
}

/// The [`LeakReport`] of `profile`: its `top` locations with the most
/// bytes live at the end; `strict` counts those too short to tell as leaks.
pub fn leak_report(profile: &Profile, top: usize, strict: bool) -> LeakReport {
    // Stacks for the rows shown only: the others are counted, then cut.
    let mut leaks = leaks_with_stacks(profile, top, None);
    let undecided = leaks.iter().filter(|l| l.trend == Trend::Unknown).count();
    let found = leaks.iter().any(Leak::is_leak) || strict && undecided > 0;
    let more = leaks.len().saturating_sub(top);
    leaks.truncate(top);
    let sampled = profile.sample_interval();
    LeakReport { leaks, more, undecided, found, cut: any_cut(profile), sampled }
}

/// Whether the file, or a run of a merge, was cut before its session ended.
pub(crate) fn any_cut(profile: &Profile) -> bool {
    profile.truncated.is_some() || !crate::load::merge::merged_cut(&profile.meta).is_empty()
}

/// A location: function and `file:line`; `None` for a site without one.
type Place<'a> = Option<(&'a str, &'a str)>;

/// Every site with blocks live at the end, most bytes first.
pub fn leaks(profile: &Profile) -> Vec<Leak> {
    leaks_with_stacks(profile, usize::MAX, None)
}

/// [`leaks`], with the stacks of the first `stacks` rows only (the others'
/// empty): for a report that shows a few rows of what may be many sites'.
///
/// `located`: the sites' locations where the caller has found them
/// already ([`crate::model::sites::Symbols::located`]); those it lacks are
/// found here.
pub(crate) fn leaks_with_stacks(
    profile: &Profile,
    stacks: usize,
    located: Option<&Located>,
) -> Vec<Leak> {
    let root = project_root(&profile.meta.program);
    // Each location wanted (the sites live at the end, and those with a
    // history) found once, for finding one walks the site's stack.
    let none = Located::default();
    let located = located.unwrap_or(&none);
    let live: Vec<u32> =
        profile.sites.iter().filter(|(_, s)| s.live_blocks_at_end > 0).map(|(&k, _)| k).collect();
    let lacking: Vec<u32> = live
        .iter()
        .chain(profile.site_history.keys())
        .filter(|s| !located.contains_key(s))
        .copied()
        .collect();
    let found = profile.symbols.located(lacking.iter());
    let frame_of = |site: u32| located.get(&site).or_else(|| found.get(&site)).map(|s| &s.frame);
    // The frame and its place, `file:line` or the function where it has no
    // file: for the sites live at the end, and the sites with a history
    // in a function one of them is in (no other can share a row's line).
    let mut placed: HashMap<u32, (&Frame, String)> = HashMap::default();
    for &site in &live {
        if let Some(f) = frame_of(site) {
            placed.insert(site, (f, f.place(&root)));
        }
    }
    let leaking: HashSet<&str> = placed.values().map(|(f, _)| f.function.as_str()).collect();
    for &site in profile.site_history.keys() {
        if let Some(f) = frame_of(site).filter(|f| leaking.contains(f.function.as_str())) {
            placed.entry(site).or_insert_with(|| (f, f.place(&root)));
        }
    }
    let place_of = |site: u32| -> Place<'_> {
        placed.get(&site).map(|(f, p)| (f.function.as_str(), p.as_str()))
    };
    // A merged session is judged run by run: each run's sites have the
    // history of their own run (see `Profile::site_history`), since a cache
    // every run fills is no leak of them all.
    let runs = crate::load::merge::merged_runs(&profile.meta);
    // The first run whose last site is at or past `site`: the first whose
    // running maximum is, found by halving (a merge's metadata may name a
    // million runs).
    let mut highest = 0;
    let reach: Vec<u32> = runs
        .iter()
        .map(|r| {
            highest = highest.max(r.last_site);
            highest
        })
        .collect();
    let run_of =
        |site: u32| Some(reach.partition_point(|&h| h < site)).filter(|&i| i < reach.len());
    let cut_runs = crate::load::merge::merged_cut(&profile.meta);
    // A merged file cut short was cut in the last run it holds events of
    // (the runs before it are whole), as a merge of it records.
    let cut_in = match profile.truncated {
        Some(_) => profile
            .sites
            .keys()
            .filter(|&&s| s != pulse_format::NO_SITE)
            .filter_map(|&s| run_of(s))
            .max(),
        None => None,
    };
    let at_cut = |site: u32| match run_of(site) {
        Some(r) => cut_runs.contains(&r) || cut_in == Some(r),
        None => profile.truncated.is_some(),
    };
    // Every location's live count over time: its sites' histories added up
    // (in a merge, per run).
    let mut by_place: HashMap<(Place, Option<usize>), Vec<u32>> = HashMap::default();
    for (site, h) in &profile.site_history {
        // A site without a place stands alone, its history its own.
        let key @ Some(_) = place_of(*site) else { continue };
        let sum = by_place.entry((key, run_of(*site))).or_default();
        if sum.len() < h.len() {
            sum.resize(h.len(), 0);
        }
        for (a, b) in sum.iter_mut().zip(h) {
            *a = a.saturating_add(*b);
        }
    }
    let mut out: Vec<Leak> = profile
        .sites
        .iter()
        .filter(|(_, s)| s.live_blocks_at_end > 0)
        .map(|(&site, s)| {
            let history = match place_of(site) {
                // A site without a location stands alone.
                None => profile.site_history.get(&site).cloned().unwrap_or_default(),
                key => by_place.get(&(key, run_of(site))).cloned().unwrap_or_default(),
            };
            let (function, place) = match placed.get(&site) {
                Some((at, _)) if at.file.is_empty() => (at.function.clone(), String::new()),
                Some((at, place)) => (at.function.clone(), place.clone()),
                None => (crate::model::sites::unplaced(site), String::new()),
            };
            Leak {
                site,
                other_stacks: 0,
                function,
                place,
                // Filled in below, for the rows wanted.
                stack: Vec::new(),
                blocks: s.live_blocks_at_end,
                bytes: s.live_bytes_at_end,
                estimated_bytes: match site {
                    pulse_format::NO_SITE => s.live_bytes_at_end,
                    _ => s.estimated_live_bytes_at_end,
                },
                trend: trend(&history),
                history,
                at_cut: at_cut(site),
            }
        })
        .collect();
    // One row a line (a run's line in a merge): the stack with the most
    // blocks stands for the others. A site without a location stands alone.
    out.sort_by(|a, b| b.blocks.cmp(&a.blocks).then(a.site.cmp(&b.site)));
    let mut rows: Vec<Leak> = Vec::with_capacity(out.len());
    let mut row_of: HashMap<(Place, Option<usize>), usize> = HashMap::default();
    for leak in out {
        let key = place_of(leak.site).map(|p| (Some(p), run_of(leak.site)));
        match key.as_ref().and_then(|k| row_of.get(k)) {
            Some(&i) => {
                let row = &mut rows[i];
                row.other_stacks += 1;
                row.blocks = row.blocks.saturating_add(leak.blocks);
                row.bytes = row.bytes.saturating_add(leak.bytes);
                row.estimated_bytes = row.estimated_bytes.saturating_add(leak.estimated_bytes);
            }
            None => {
                if let Some(k) = key {
                    row_of.insert(k, rows.len());
                }
                rows.push(leak);
            }
        }
    }
    rows.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.site.cmp(&b.site)));
    for row in rows.iter_mut().take(stacks) {
        row.stack = profile.symbols.user_stack(row.site).iter().map(|f| f.display(&root)).collect();
    }
    rows
}
