//! Each site's live block count over the session, at up to [`SAMPLES`]
//! evenly spaced moments, for telling a leak (still growing at the end) from
//! a long-lived cache (flat since it filled).
//!
//! The replay asks [`History::due`] at every event's timestamp; every
//! `interval` ticks of the clock it takes a sample of every site's live
//! count, which the replay keeps with the site's other figures. Sampling by time, not by event, keeps a quiet phase of the
//! program (few allocations, much time) as visible as a busy one. When the
//! samples fill up, every other one is dropped and the interval doubles, so
//! memory stays at `SAMPLES` counts per site however long the session.

use rustc_hash::FxHashMap as HashMap;

/// Samples kept per site.
pub(crate) const SAMPLES: usize = 64;

/// The samples of the live counts the replay keeps per site: `live[i]` is
/// the count of the site at the replay's dense index `i` (see `DenseIds`);
/// `finish` names the sites by id.
#[derive(Debug, Clone)]
pub(crate) struct History {
    /// Ticks between samples.
    interval: u64,
    /// The timestamp of the next sample; `None` before the first event.
    next: Option<u64>,
    taken: usize,
    /// Samples per site.
    series: Vec<Vec<u32>>,
}

impl Default for History {
    fn default() -> Self {
        // About a microsecond at a few GHz to start with, so that a run of
        // a millisecond still has its samples (the interval doubles as the
        // run goes on: the samples of a long run cost the same).
        History { interval: 1 << 12, next: None, taken: 0, series: Vec::new() }
    }
}

impl History {
    /// The replay reached `ts`: whether samples are due before it (then
    /// call [`History::catch_up`]).
    #[inline]
    pub(crate) fn due(&mut self, ts: u64) -> bool {
        ts >= *self.next.get_or_insert(ts.saturating_add(self.interval))
    }

    /// Takes every sample due before `ts`, of the counts `live`. No event
    /// happened between them, so they all see the counts as they are now:
    /// where the clock jumps over many intervals (2 000 at most, from its
    /// first interval to the end of time), the samples are laid out once,
    /// by position, and each site's series is then written once, rather
    /// than every site sampled at each of them.
    #[cold]
    pub(crate) fn catch_up(&mut self, ts: u64, live: &[u64]) {
        let before = self.taken;
        // Each slot: a sample already taken (its index), or one of now.
        let mut slots: Vec<Option<usize>> = Vec::new();
        let mut halved = false;
        let mut due = 0;
        while let Some(next) = self.next.filter(|&n| ts >= n) {
            if self.taken == SAMPLES {
                if !halved {
                    slots = (0..before).map(Some).chain(std::iter::repeat_n(None, due)).collect();
                    halved = true;
                }
                slots = slots.into_iter().step_by(2).collect();
                self.taken = SAMPLES / 2;
                self.interval = self.interval.saturating_mul(2);
            }
            if halved {
                slots.push(None);
            }
            self.taken += 1;
            due += 1;
            self.next = Some(next.saturating_add(self.interval));
            if next == u64::MAX {
                break;
            }
        }
        if due == 0 {
            return;
        }
        if self.series.len() < live.len() {
            self.series.resize_with(live.len(), Vec::new);
        }
        // The samples a halving keeps, laid out here and copied back, so
        // that a site's series keeps its buffer.
        let mut laid = Vec::new();
        for (n, s) in live.iter().zip(&mut self.series) {
            let now = u32::try_from(*n).unwrap_or(u32::MAX);
            if halved {
                laid.clear();
                laid.extend(
                    slots.iter().map(|slot| slot.map_or(now, |i| s.get(i).copied().unwrap_or(0))),
                );
                s.clear();
                s.extend_from_slice(&laid);
            } else {
                // The common case: one or a few samples appended.
                s.resize(before, 0);
                s.extend(std::iter::repeat_n(now, due));
            }
        }
    }

    fn sample(&mut self, live: &[u64]) {
        if self.taken == SAMPLES {
            for s in &mut self.series {
                // Every other sample, in place.
                let kept = s.len().div_ceil(2);
                for i in 0..kept {
                    s[i] = s[2 * i];
                }
                s.truncate(kept);
            }
            self.taken = SAMPLES / 2;
            self.interval = self.interval.saturating_mul(2);
        }
        if self.series.len() < live.len() {
            self.series.resize_with(live.len(), Vec::new);
        }
        for (n, s) in live.iter().zip(&mut self.series) {
            s.resize(self.taken, 0);
            s.push(u32::try_from(*n).unwrap_or(u32::MAX));
        }
        self.taken += 1;
    }

    /// Each site's samples, all of the same length, the count at the end
    /// (`live`) last, by site id (`ids`: the id of each site index).
    pub(crate) fn finish(mut self, live: &[u64], ids: &[u32]) -> HashMap<u32, Vec<u32>> {
        self.sample(live);
        let n = self.taken;
        ids.iter()
            .zip(self.series)
            .map(|(id, mut s)| {
                s.resize(n, 0);
                (*id, s)
            })
            .collect()
    }
}

/// How a site's live count moved over the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trend {
    /// Still rising through the second half of the time it had blocks live:
    /// memory that is never given back — a leak.
    Growing,
    /// Reached its level early and held it: a long-lived cache or pool.
    Flat,
    /// Too few samples to tell.
    Unknown,
}

/// Classifies a series of live counts (the last one at the end).
pub fn trend(samples: &[u32]) -> Trend {
    let Some(&end) = samples.last() else { return Trend::Unknown };
    if end == 0 {
        return Trend::Flat;
    }
    // Look only at the time the site had blocks live.
    let Some(first) = samples.iter().position(|&n| n > 0) else { return Trend::Unknown };
    let active = &samples[first..];
    if active.len() < 3 {
        return Trend::Unknown;
    }
    let half = active.len() / 2;
    let first_half_max = active[..half].iter().copied().max().unwrap_or(0);
    let second_half = &active[half..];
    // Growing: the end is above anything seen in the first half, and so is
    // a quarter of the second half at least, and the second half climbs
    // (its later samples are not below its earlier ones). The quarter keeps
    // a bounded structure whose count wobbles (a B-tree's nodes under an
    // LRU) from reading as a leak when its last sample happens to top the
    // first half's, while a leak that paused for a while (a plateau over
    // much of the second half, as a loaded machine stretches one phase of
    // the program) still is one.
    let climbs =
        second_half.windows(2).filter(|w| w[1] >= w[0]).count() * 4 >= (second_half.len() - 1) * 3;
    let above = second_half.iter().filter(|&&n| n > first_half_max).count();
    // And it sets a new high more than once, or its one step up takes it
    // half as high again: a cache that took one last small step late (a
    // few keys asked for the first time, by a thread that started late)
    // and held there is not a leak; a leak that grows in a few batches is.
    let mut high = first_half_max;
    let highs = second_half
        .iter()
        .filter(|&&n| {
            let new = n > high;
            high = high.max(n);
            new
        })
        .count();
    let stepped = highs >= 2 || u64::from(end) * 2 >= u64::from(first_half_max) * 3;
    // A leak whose thread the machine left waiting through most of the
    // second half sets its new highs in the last few samples only: in
    // three steps at least, to a quarter above the first half's highest,
    // it grows all the same (a wobble tops it by a few percent).
    let late = highs >= 3 && u64::from(end) * 4 >= u64::from(first_half_max) * 5;
    if end > first_half_max && (above * 4 >= second_half.len() || late) && climbs && stepped {
        Trend::Growing
    } else {
        Trend::Flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_rise_is_a_leak_and_a_plateau_is_a_cache() {
        let rise: Vec<u32> = (0..40).map(|i| if i < 10 { 0 } else { i - 9 }).collect();
        assert_eq!(trend(&rise), Trend::Growing);
        let plateau: Vec<u32> = (0..40).map(|i| if i < 10 { 0 } else { 8 }).collect();
        assert_eq!(trend(&plateau), Trend::Flat);
        let early: Vec<u32> = std::iter::repeat_n(1, 40).collect();
        assert_eq!(trend(&early), Trend::Flat);
        assert_eq!(trend(&[0, 0, 0]), Trend::Flat);
        assert_eq!(trend(&[0, 1]), Trend::Unknown);
    }

    /// A bounded cache's B-tree nodes, as leaky_cache's price cache
    /// recorded them: the count wobbles around its level, and its last
    /// sample tops the first half's highest.
    #[test]
    fn a_wobble_that_ends_high_is_not_a_leak() {
        let wobble = [
            0, 0, 0, 36, 38, 37, 38, 37, 36, 38, 37, 38, 36, 33, 35, 35, 35, 35, 34, 36, 36, 36,
            37, 37, 37, 37, 35, 36, 36, 37, 38, 38, 39,
        ];
        assert_eq!(trend(&wobble), Trend::Flat);
        // The same level reached by a steady climb, with the same wobble.
        let climb: Vec<u32> = (0..40).map(|i| i * 3 + [0, 2, 1][i as usize % 3]).collect();
        assert_eq!(trend(&climb), Trend::Growing);
        // A leak that paused over most of its second half, then went on.
        let paused: Vec<u32> = (0..40)
            .map(|i| {
                if i < 18 {
                    i * 10
                } else if i < 30 {
                    180
                } else {
                    i * 10
                }
            })
            .collect();
        assert_eq!(trend(&paused), Trend::Growing);
        // The example's bounded quote cache on a loaded machine: nine of
        // its twelve keys for most of the run, the last three late.
        let step = [0, 0, 0, 9, 9, 10, 9, 9, 9, 9, 9, 9, 9, 9, 10, 9, 9, 9, 9, 12, 12, 12, 12, 12];
        assert_eq!(trend(&step), Trend::Flat);
        // Leaks that grow in a few batches, and short ones.
        let batches: Vec<u32> = [(0, 13), (200, 13), (400, 12), (600, 4)]
            .iter()
            .flat_map(|&(n, k)| std::iter::repeat_n(n, k))
            .collect();
        assert_eq!(trend(&batches), Trend::Growing);
        for short in [&[1, 2, 3, 3][..], &[1, 2, 3, 3, 3], &[1, 1, 2, 2], &[1, 1, 1, 2], &[1, 1, 2]]
        {
            assert_eq!(trend(short), Trend::Growing, "{short:?}");
        }
        // The audit records leaked beside it in the same run.
        let leak = [
            0, 0, 0, 4, 6, 8, 10, 11, 14, 16, 19, 22, 24, 27, 30, 34, 37, 41, 43, 46, 47, 48, 48,
            48,
        ];
        assert_eq!(trend(&leak), Trend::Growing);
        // leaky_cache's render cache on a loaded machine: three bursts,
        // the last over the last few samples only.
        let paused = [
            0, 0, 177, 393, 570, 570, 570, 570, 570, 570, 570, 570, 570, 570, 570, 570, 570, 570,
            570, 570, 570, 570, 570, 570, 675, 879, 1076, 1294, 1513, 1574, 1574, 1574, 1574, 1574,
            1574, 1574, 1574, 1574, 1574, 1574, 1574, 1574, 1574, 1574, 1574, 1574, 1574, 1574,
            1574, 1574, 1574, 1574, 1574, 1574, 1574, 1574, 1662, 1827, 2028, 2266, 2383,
        ];
        assert_eq!(trend(&paused), Trend::Growing);
        // A bounded structure whose last few steps up are a few percent.
        let mut wobble_late = [38u32; 40];
        wobble_late[..3].fill(0);
        wobble_late[37..].copy_from_slice(&[39, 40, 41]);
        assert_eq!(trend(&wobble_late), Trend::Flat);
    }

    #[test]
    fn samples_stay_bounded_and_aligned() {
        let mut h = History::default();
        // Site 1 from the start, site 2 from half way.
        let mut live = vec![0u64; 1];
        for i in 0..1_000_000u32 {
            if i % 1000 == 0 {
                live[0] += 1;
            }
            if i == 500_000 {
                live.push(1);
            }
            let ts = u64::from(i) << 12;
            if h.due(ts) {
                h.catch_up(ts, &live);
            }
        }
        let s = h.finish(&live, &[1, 2]);
        assert!(s[&1].len() <= SAMPLES + 1);
        assert_eq!(s[&1].len(), s[&2].len());
        assert_eq!(trend(&s[&1]), Trend::Growing);
        assert_eq!(trend(&s[&2]), Trend::Flat);
    }

    /// What `catch_up` does, taking the samples due one at a time.
    fn catch_up_one_by_one(h: &mut History, ts: u64, live: &[u64]) {
        h.next.get_or_insert(ts.saturating_add(h.interval));
        while let Some(next) = h.next.filter(|&n| ts >= n) {
            h.sample(live);
            h.next = Some(next.saturating_add(h.interval));
            if next == u64::MAX {
                break;
            }
        }
    }

    #[test]
    fn catching_up_at_once_takes_the_samples_one_by_one_would() {
        let mut h = History::default();
        let mut live = vec![0u64; 13];
        let mut ts = 0u64;
        for i in 0..3000u64 {
            live[(i % 13) as usize] += 1;
            if i % 3 == 0 {
                let n = &mut live[(i % 7) as usize];
                *n = n.saturating_sub(1);
            }
            // Steps of every size, from within an interval to far past many.
            ts = ts.saturating_add(1 << (i % 50));
            let mut reference = h.clone();
            catch_up_one_by_one(&mut reference, ts, &live);
            if h.due(ts) {
                h.catch_up(ts, &live);
            }
            assert_eq!(
                (h.taken, h.interval, h.next),
                (reference.taken, reference.interval, reference.next)
            );
            assert_eq!(h.series, reference.series, "after {i} events");
        }
        let mut reference = h.clone();
        catch_up_one_by_one(&mut reference, u64::MAX, &live);
        if h.due(u64::MAX) {
            h.catch_up(u64::MAX, &live);
        }
        assert_eq!(h.series, reference.series);
    }

    #[test]
    fn a_clock_that_jumps_to_the_end_of_time_costs_bounded_work() {
        let mut h = History::default();
        for ts in [0, u64::MAX] {
            if h.due(ts) {
                h.catch_up(ts, &[1]);
            }
        }
        assert!(h.finish(&[1], &[1])[&1].len() <= SAMPLES + 1);
    }
}
