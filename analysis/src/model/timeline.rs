//! The live heap over time: in each of up to [`POINTS`] evenly spaced
//! intervals of the session, the most bytes live and the bytes live at its
//! end, globally and per allocating thread; and what the heap held at each
//! interval's peak, by allocation site. `write/timeline_svg.rs` draws it.
//!
//! Like the per-site history, the interval starts small and doubles when
//! the points fill up (two neighbours merge, keeping the larger), so memory
//! is fixed however long the session. Each point keeps the maximum of its
//! interval, so no spike is lost to downsampling.
//!
//! The breakdown by site is taken at each interval's peak, so that the
//! sites of an interval add up to its maximum exactly: every site keeps its
//! live bytes, and the first time it changes after a new peak of the
//! current interval it saves what it had at that peak (as the heap at the
//! session's peak is kept, in `load/accumulate.rs`). A site that did not change in
//! an interval still has what it had at the end of the last one it changed
//! in, so each site keeps an entry only for the intervals it changed in:
//! at most [`POINTS`] per site, merged pairwise with the points.

use std::collections::BTreeMap;

/// Points kept.
pub const POINTS: usize = 512;

/// Sites the breakdown names; the rest of the heap is one `other` band.
pub const TOP_SITES: usize = 8;

/// Stacks considered for the breakdown: those with the most bytes live at
/// an interval's peak, grouped by their line before the [`TOP_SITES`] are
/// chosen.
const CANDIDATE_STACKS: usize = 64;

/// The live heap over the session.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Timeline {
    /// Nanoseconds between two points: point `i` covers
    /// `[i * interval_ns, (i + 1) * interval_ns)` from the session's start.
    pub interval_ns: f64,
    /// The most bytes live in each interval, from the session's start (the
    /// bytes live when the interval began count).
    pub live_bytes: Vec<u64>,
    /// The bytes live at the end of each interval, aligned with
    /// `live_bytes`: the last is what was live when the session ended.
    pub end_bytes: Vec<u64>,
    /// The most bytes live in each interval per allocating thread (blocks
    /// count for the thread that allocated them), aligned with `live_bytes`.
    pub threads: BTreeMap<u64, Vec<u64>>,
    /// The heap at each interval's peak by allocation site (the user's
    /// line, as the report's site rows): the [`TOP_SITES`] lines with the
    /// most bytes at any interval's peak, most first. Each series is
    /// aligned with `live_bytes`.
    pub sites: Vec<TimelineSite>,
    /// The rest of the heap at each interval's peak: with `sites`, it adds
    /// up to `live_bytes` at every point.
    pub other_bytes: Vec<u64>,
}

/// One allocation site's share of the heap over time.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TimelineSite {
    /// The user's function, or what the stack ended in.
    pub function: String,
    /// `file:line`, as the report's site rows show it.
    pub place: String,
    /// Its bytes live at each interval's peak.
    pub bytes: Vec<u64>,
    /// The most of those.
    pub peak_bytes: u64,
}

/// No point.
const NONE: u32 = u32::MAX;

/// One site as the timeline follows it. The replay keeps it beside the
/// site's other figures, its bytes live among them, so that a change to a
/// site touches one place ([`Sites`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Track {
    /// The point it last changed in, whose entry is not written yet, or `NONE`.
    point: u32,
    /// The interval peak (epoch) at which `at_peak` was saved.
    epoch: u64,
    /// Its bytes live at that peak.
    at_peak: u64,
}

impl Default for Track {
    fn default() -> Self {
        Track { point: NONE, epoch: 0, at_peak: 0 }
    }
}

/// The sites as the replay keeps them, by the replay's site index: each
/// one's [`Track`] and its bytes live now.
pub(crate) trait Sites {
    /// How many.
    fn count(&self) -> usize;
    /// Site `site`'s track and its bytes live.
    fn track(&mut self, site: usize) -> (&mut Track, u64);
}

/// A site's figures in one point it changed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    point: u32,
    /// Its bytes live at the point's peak.
    at_peak: u64,
    /// Its bytes live at the point's end.
    end: u64,
}

/// One thread's line: the most bytes in each point up to the last it
/// changed in, and its bytes live now (carried into the points after).
#[derive(Debug, Default)]
struct ThreadLine {
    max: Vec<u64>,
    last: u64,
}

#[derive(Debug)]
pub(crate) struct TimelineBuilder {
    start: Option<u64>,
    /// Ticks per point.
    interval: u64,
    /// The most bytes live in each point; the last is the current one.
    points: Vec<u64>,
    /// The bytes live at the end of each point (so far, for the current one).
    ends: Vec<u64>,
    /// The epoch of each point's latest peak.
    peak_epochs: Vec<u64>,
    /// Incremented at each new peak of the current point (and at the start
    /// of each point, whose first moment is its first peak).
    epoch: u64,
    /// By the replay's thread index; `None` for a thread with no block.
    threads: Vec<Option<ThreadLine>>,
    /// The current point, and the ticks since `start` it covers: the
    /// replay moves forward, so most events fall in the same point and
    /// need no division.
    current: (usize, u64, u64),
    /// By the replay's site index: what each site's [`Track`] wrote.
    entries: Vec<Vec<Entry>>,
}

impl Default for TimelineBuilder {
    fn default() -> Self {
        TimelineBuilder {
            start: None,
            interval: 1,
            points: Vec::new(),
            ends: Vec::new(),
            peak_epochs: Vec::new(),
            epoch: 0,
            threads: Vec::new(),
            current: (0, 0, 0),
            entries: Vec::new(),
        }
    }
}

impl TimelineBuilder {
    /// The session's first event is at `ts`: the timeline starts there,
    /// with nothing live.
    pub(crate) fn start(&mut self, ts: u64) {
        if self.start.is_some() {
            return;
        }
        self.start = Some(ts);
        self.points.push(0);
        self.ends.push(0);
        self.epoch += 1;
        self.peak_epochs.push(self.epoch);
        self.current = (0, 0, self.interval);
    }

    /// The replay reached `ts`: the heap changes that follow fall in its
    /// point. A clock that steps back stays in the current point.
    #[inline(always)]
    pub(crate) fn advance(&mut self, ts: u64, sites: &mut impl Sites) {
        let Some(start) = self.start else { return };
        let since = ts.saturating_sub(start);
        if since >= self.current.2 {
            self.move_to(since, sites);
        }
    }

    /// Moves to the point `since` ticks after the start falls in, halving
    /// the resolution until it fits. The points skipped held what the last
    /// one ended with, as does the new one at its start.
    #[inline(never)]
    fn move_to(&mut self, since: u64, sites: &mut impl Sites) {
        let mut i = (since / self.interval) as usize;
        while i >= POINTS {
            self.halve(sites);
            i = (since / self.interval) as usize;
        }
        let end = self.ends.last().copied().unwrap_or(0);
        if i + 1 > self.points.len() {
            self.points.resize(i + 1, end);
            self.ends.resize(i + 1, end);
            self.epoch += 1;
            self.peak_epochs.resize(i + 1, self.epoch);
        }
        let low = i as u64 * self.interval;
        self.current = (i, low, low.saturating_add(self.interval));
    }

    /// The heap holds `global` bytes, of which the thread at index `thread`
    /// allocated `own`.
    #[inline(always)]
    pub(crate) fn record(&mut self, global: u64, thread: usize, own: u64) {
        let i = self.current.0;
        let Some(p) = self.points.get_mut(i) else { return };
        // `>=`: of equal peaks the latest counts, as for the session's peak.
        if global >= *p {
            *p = global;
            self.epoch += 1;
            self.peak_epochs[i] = self.epoch;
        }
        self.ends[i] = global;
        if thread >= self.threads.len() {
            self.threads.resize_with(thread + 1, || None);
        }
        let t = self.threads[thread].get_or_insert_with(ThreadLine::default);
        if t.max.len() <= i {
            let last = t.last;
            t.max.resize(i + 1, last);
        }
        t.max[i] = t.max[i].max(own);
        t.last = own;
    }

    /// The site at index `site`, whose track is `t`, is about to change
    /// from `live` bytes live. Called before [`TimelineBuilder::record`]
    /// for the same change.
    #[inline(always)]
    pub(crate) fn site(&mut self, site: usize, t: &mut Track, live: u64) {
        let i = self.current.0 as u32;
        if t.point != i {
            if t.point != NONE {
                self.settle(site, t, live);
            }
            t.point = i;
        }
        if t.epoch < self.epoch {
            t.at_peak = live;
            t.epoch = self.epoch;
        }
    }

    /// Writes the entry of the site at index `site`, whose track is `t`
    /// and which has `live` bytes live, for the point it last changed in,
    /// which is over.
    #[inline(never)]
    fn settle(&mut self, site: usize, t: &mut Track, live: u64) {
        let p = t.point;
        if p == NONE {
            return;
        }
        let peak_epoch = self.peak_epochs.get(p as usize).copied().unwrap_or(0);
        // Saved at that peak if it changed after it; else it has not changed since.
        let at_peak = if t.epoch >= peak_epoch { t.at_peak } else { live };
        if site >= self.entries.len() {
            self.entries.resize_with(site + 1, Vec::new);
        }
        self.entries[site].push(Entry { point: p, at_peak, end: live });
        t.point = NONE;
    }

    /// Writes every site's entry for the point it last changed in.
    fn settle_all(&mut self, sites: &mut impl Sites) {
        for site in 0..sites.count() {
            let (t, live) = sites.track(site);
            self.settle(site, t, live);
        }
    }

    #[cold]
    fn halve(&mut self, sites: &mut impl Sites) {
        self.settle_all(sites);
        let n = self.points.len();
        // Which half of each merged point had its peak (the later of equals).
        let later: Vec<bool> = (0..n.div_ceil(2))
            .map(|k| 2 * k + 1 < n && self.points[2 * k + 1] >= self.points[2 * k])
            .collect();
        let merge_max = |v: &mut Vec<u64>| {
            let merged: Vec<u64> =
                v.chunks(2).map(|c| c.iter().copied().max().unwrap_or(0)).collect();
            *v = merged;
        };
        merge_max(&mut self.points);
        self.ends = self.ends.chunks(2).map(|c| c[c.len() - 1]).collect();
        self.threads.iter_mut().flatten().for_each(|t| merge_max(&mut t.max));
        for e in &mut self.entries {
            if !e.is_empty() {
                *e = merge_entries(e, &later);
            }
        }
        self.peak_epochs.truncate(self.points.len());
        self.interval = self.interval.saturating_mul(2);
        let i = self.points.len().saturating_sub(1);
        let low = i as u64 * self.interval;
        self.current = (i, low, low.saturating_add(self.interval));
    }

    /// The timeline: its threads named by `ids` (the id of each thread
    /// index), its sites by `key` (the function and place of each site
    /// index); `live_at_end` is what the replay ended with.
    pub(crate) fn finish(
        mut self,
        sites: &mut impl Sites,
        ticks_per_ns: f64,
        ids: &[u64],
        live_at_end: u64,
        key: impl Fn(usize) -> (String, String),
    ) -> Timeline {
        self.settle_all(sites);
        let n = self.points.len();
        if let (Some(end), Some(max)) = (self.ends.last_mut(), self.points.last_mut()) {
            *end = live_at_end;
            *max = (*max).max(live_at_end);
        }
        let (sites, other_bytes) = self.breakdown(&key);
        Timeline {
            interval_ns: self.interval as f64 / ticks_per_ns,
            live_bytes: self.points,
            end_bytes: self.ends,
            threads: self
                .threads
                .into_iter()
                .enumerate()
                .filter_map(|(t, line)| {
                    let ThreadLine { mut max, last } = line?;
                    max.resize(n, last);
                    Some((ids[t], max))
                })
                .collect(),
            sites,
            other_bytes,
        }
    }

    /// The [`TOP_SITES`] lines with the most bytes at an interval's peak
    /// (of the [`CANDIDATE_STACKS`] stacks with the most), and the rest.
    fn breakdown(&self, key: &impl Fn(usize) -> (String, String)) -> (Vec<TimelineSite>, Vec<u64>) {
        let n = self.points.len();
        let mut stacks: Vec<(u64, usize)> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.is_empty())
            .map(|(s, e)| (dense(e, n).into_iter().max().unwrap_or(0), s))
            .filter(|(peak, _)| *peak > 0)
            .collect();
        stacks.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        stacks.truncate(CANDIDATE_STACKS);
        let mut lines: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
        for (_, s) in stacks {
            let sum = lines.entry(key(s)).or_insert_with(|| vec![0; n]);
            for (a, b) in sum.iter_mut().zip(dense(&self.entries[s], n)) {
                *a = a.saturating_add(b);
            }
        }
        let mut sites: Vec<TimelineSite> = lines
            .into_iter()
            .map(|((function, place), bytes)| TimelineSite {
                function,
                place,
                peak_bytes: bytes.iter().copied().max().unwrap_or(0),
                bytes,
            })
            .collect();
        sites.sort_by(|a, b| {
            b.peak_bytes
                .cmp(&a.peak_bytes)
                .then_with(|| a.function.cmp(&b.function))
                .then_with(|| a.place.cmp(&b.place))
        });
        sites.truncate(TOP_SITES);
        let other = (0..n)
            .map(|i| {
                let named = sites.iter().fold(0u64, |a, s| a.saturating_add(s.bytes[i]));
                self.points[i].saturating_sub(named)
            })
            .collect();
        (sites, other)
    }
}

/// A site's bytes at each of `n` points' peaks, from its entries.
fn dense(entries: &[Entry], n: usize) -> Vec<u64> {
    let mut out = Vec::with_capacity(n);
    let mut carry = 0;
    let mut next = entries.iter().peekable();
    for i in 0..n {
        match next.peek() {
            Some(e) if e.point as usize == i => {
                out.push(e.at_peak);
                carry = e.end;
                next.next();
            }
            _ => out.push(carry),
        }
    }
    out
}

/// A site's entries once each two neighbouring points are one: its bytes
/// at the merged point's peak are those at the peak of the half that had
/// it (`later[k]`: the second), its end the second half's.
fn merge_entries(entries: &[Entry], later: &[bool]) -> Vec<Entry> {
    let mut out = Vec::with_capacity(entries.len());
    let mut carry = 0;
    let mut i = 0;
    while i < entries.len() {
        let k = entries[i].point / 2;
        let first = (entries[i].point % 2 == 0).then(|| {
            i += 1;
            entries[i - 1]
        });
        let second = entries.get(i).filter(|e| e.point == 2 * k + 1).copied();
        if second.is_some() {
            i += 1;
        }
        let before_second = first.map_or(carry, |f| f.end);
        let at_peak = if later.get(k as usize).copied().unwrap_or(false) {
            second.map_or(before_second, |s| s.at_peak)
        } else {
            first.map_or(carry, |f| f.at_peak)
        };
        let end = second.or(first).map_or(carry, |e| e.end);
        out.push(Entry { point: k, at_peak, end });
        carry = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One heap change: at `ts`, site `site` grows by `grow` bytes or
    /// shrinks by `shrink` (at most what it has).
    #[derive(Debug, Clone, Copy)]
    struct Change {
        ts: u64,
        site: usize,
        grow: u64,
        shrink: u64,
    }

    /// The sites' tracks and bytes live.
    #[derive(Debug, Default)]
    struct Live(Vec<(Track, u64)>);

    impl Sites for Live {
        fn count(&self) -> usize {
            self.0.len()
        }
        fn track(&mut self, site: usize) -> (&mut Track, u64) {
            let (t, live) = &mut self.0[site];
            (t, *live)
        }
    }

    impl Live {
        fn bytes(&self) -> Vec<u64> {
            self.0.iter().map(|s| s.1).collect()
        }
    }

    /// The builder fed `changes`, as the replay feeds it.
    fn build(
        start: u64,
        changes: &[Change],
        sites: usize,
    ) -> (TimelineBuilder, Live, Vec<Vec<u64>>) {
        let mut b = TimelineBuilder::default();
        b.start(start);
        let mut live = Live(vec![(Track::default(), 0); sites]);
        let mut states = Vec::new();
        for c in changes {
            b.advance(c.ts, &mut live);
            let (t, before) = &mut live.0[c.site];
            b.site(c.site, t, *before);
            *before = (*before + c.grow).saturating_sub(c.shrink);
            let global = live.bytes().iter().sum();
            b.record(global, 0, global);
            states.push(live.bytes());
        }
        (b, live, states)
    }

    /// What each point must hold, worked out from every state: the most
    /// bytes live from its start (what the last point ended with) through
    /// each change in it, the latest moment of that most, each site's
    /// bytes then, and the bytes at its end.
    fn expected(
        start: u64,
        interval: u64,
        n: usize,
        changes: &[Change],
        states: &[Vec<u64>],
        sites: usize,
    ) -> Vec<(u64, u64, Vec<u64>)> {
        let mut out = Vec::new();
        let mut before = vec![0u64; sites];
        let mut k = 0;
        for i in 0..n as u64 {
            let mut moments = vec![before.clone()];
            while k < changes.len() && (changes[k].ts - start) / interval <= i {
                moments.push(states[k].clone());
                k += 1;
            }
            let total = |m: &Vec<u64>| m.iter().sum::<u64>();
            let most = moments.iter().map(total).max().unwrap();
            let at = moments.iter().rposition(|m| total(m) == most).unwrap();
            let end = moments.last().unwrap().clone();
            out.push((most, total(&end), moments[at].clone()));
            before = end;
        }
        out
    }

    fn changes(sites: usize) -> impl Strategy<Value = Vec<Change>> {
        prop::collection::vec(
            (0u64..5_000, 0..sites, 0u64..1000, 0u64..1000, any::<bool>()),
            1..400,
        )
        .prop_map(|v| {
            let mut ts = 1_000u64;
            v.into_iter()
                .map(|(gap, site, grow, shrink, which)| {
                    // Mostly small steps, now and then a long quiet time.
                    ts += if gap > 4_900 { gap * 1_000 } else { gap % 50 };
                    let (grow, shrink) = if which { (grow, 0) } else { (0, shrink) };
                    Change { ts, site, grow, shrink }
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn every_point_holds_its_most_its_end_and_its_sites_at_its_peak(c in changes(5)) {
            let (mut b, mut live, states) = build(1_000, &c, 5);
            let interval = b.interval;
            b.settle_all(&mut live);
            let n = b.points.len();
            let want = expected(1_000, interval, n, &c, &states, 5);
            let last = (c.last().unwrap().ts - 1_000) / interval;
            prop_assert_eq!(n as u64, last + 1);
            for (i, (most, end, at_peak)) in want.iter().enumerate() {
                prop_assert_eq!(b.points[i], *most, "point {} of {}", i, n);
                prop_assert_eq!(b.ends[i], *end, "point {}", i);
                for (s, e) in b.entries.iter().enumerate() {
                    let sites = dense(e, n);
                    prop_assert_eq!(sites[i], at_peak.get(s).copied().unwrap_or(0), "point {} site {}", i, s);
                }
            }
        }
    }

    #[test]
    fn a_quiet_time_after_a_spike_holds_what_was_left_not_the_spike() {
        let c = |ts, site, grow, shrink| Change { ts, site, grow, shrink };
        // 1 MB for a moment, freed at once; then nothing for a long while.
        let changes = [c(10, 0, 1 << 20, 0), c(11, 0, 0, 1 << 20), c(12, 1, 100, 0)];
        let (mut b, mut live, _) = build(10, &changes, 2);
        b.advance(10_000, &mut live);
        b.advance(100_000, &mut live);
        let t = b.finish(&mut live, 1.0, &[1], 100, |s| (format!("f{s}"), String::new()));
        assert_eq!(t.live_bytes[0], 1 << 20);
        assert!(t.live_bytes[1..].iter().all(|b| *b == 100), "{:?}", t.live_bytes);
        assert_eq!(t.end_bytes.last(), Some(&100));
        assert_eq!(t.sites[0].function, "f0", "{:?}", t.sites);
        assert_eq!(t.sites[0].bytes[0], 1 << 20);
        assert_eq!(t.sites[1].bytes[1..].iter().max(), Some(&100));
        assert_eq!(t.threads[&1].last(), Some(&100));
    }
}
