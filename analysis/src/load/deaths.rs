//! The frees of the replay, counted into their sites' lifetime histograms,
//! a batch at a time, on whichever thread has time for it.
//!
//! Counting a free into its site's histogram reads the histogram's header
//! and then its bucket: two cache misses in a row once the sites outgrow
//! the caches, the largest single cost of the replay's state under `perf`
//! on jaq's session. A histogram is a sum, so the thread that counts a free
//! does not change it, and counting each site's frees in the order they
//! came does not change even its layout. So the state holds frees in
//! batches; on two threads it hands each full batch to the reading thread
//! ([`Away`]), which waits on the state's thread much of the time and
//! counts batches whenever it would wait, and takes the histograms back at
//! the end; on one it counts each batch itself.

use std::sync::mpsc;

use pulse_format::Histogram;

/// Frees held before they are counted: 16 KiB.
const BATCH: usize = 1024;

/// One freed block, waiting to be counted.
#[derive(Debug, Clone, Copy)]
struct Death {
    /// The site's index in the state's tables.
    site: u32,
    /// How many blocks it stands for ([`MAX_WEIGHT`] at most: 1 but in a
    /// sampled session), and in the top bit whether it was freed right
    /// after it was allocated, nothing else allocated between.
    weight: u32,
    lifetime: u64,
}

/// The top bit of [`Death::weight`]: a temporary block.
const TEMPORARY: u32 = 1 << 31;

/// The most blocks one freed block stands for.
pub(crate) const MAX_WEIGHT: u32 = TEMPORARY - 1;

/// What a site's freed blocks add up to.
#[derive(Debug, Clone)]
pub(crate) struct SiteDeaths {
    pub(crate) temporary: u64,
    pub(crate) lifetimes: Histogram,
}

impl Default for SiteDeaths {
    fn default() -> Self {
        // One per site: coarse buckets keep thousands of them in cache.
        SiteDeaths { temporary: 0, lifetimes: Histogram::coarse() }
    }
}

/// Every site's counted frees, by site index.
#[derive(Debug, Default)]
struct Counted(Vec<SiteDeaths>);

impl Counted {
    #[inline(never)]
    fn count(&mut self, batch: &[Death]) {
        for d in batch {
            let site = d.site as usize;
            if site >= self.0.len() {
                self.0.resize_with(site + 1, SiteDeaths::default);
            }
            let s = &mut self.0[site];
            let (n, temporary) = (d.weight & MAX_WEIGHT, u64::from(d.weight >> 31));
            // Every free but a sampled session's counts once.
            if n == 1 {
                s.lifetimes.record(d.lifetime);
                s.temporary += temporary;
            } else {
                s.lifetimes.record_n(d.lifetime, u64::from(n));
                s.temporary += temporary * u64::from(n);
            }
        }
    }
}

/// The state's side: the frees of the batch being filled, and the
/// histograms, or the way to the thread that keeps them.
#[derive(Debug, Default)]
pub(crate) struct Deaths {
    pending: Vec<Death>,
    counted: Counted,
    /// Where full batches go, on two threads.
    away: Option<mpsc::Sender<Vec<Death>>>,
}

impl Deaths {
    /// The block of the site at index `site` was freed after `lifetime`
    /// ticks; `temporary`: right after it was allocated; `weight`: how many
    /// blocks it stands for, 1 to [`MAX_WEIGHT`] (the caller's to keep).
    #[inline(always)]
    pub(crate) fn push(&mut self, site: u32, temporary: bool, lifetime: u64, weight: u32) {
        if self.pending.len() >= BATCH {
            self.hand_over();
        }
        debug_assert!((1..=MAX_WEIGHT).contains(&weight), "{weight}");
        let weight = weight | u32::from(temporary) << 31;
        self.pending.push(Death { site, weight, lifetime });
    }

    /// The batch is full: out to the thread that counts, or counted here.
    #[inline(never)]
    fn hand_over(&mut self) {
        if let Some(out) = &self.away {
            let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH));
            match out.send(batch) {
                Ok(()) => return,
                // The other side is gone: the batch is counted here, and
                // every one after it.
                Err(mpsc::SendError(batch)) => {
                    self.pending = batch;
                    self.away = None;
                }
            }
        }
        self.counted.count(&self.pending);
        self.pending.clear();
    }

    /// Hands the counting to another thread, which calls [`Away::work`]
    /// when it has time, until [`Deaths::back`].
    pub(crate) fn away(&mut self) -> Away {
        let (full, batches) = mpsc::channel();
        self.away = Some(full);
        Away { batches, counted: std::mem::take(&mut self.counted) }
    }

    /// Takes the counting back from `away`, every batch handed over counted.
    /// Call it once the state's thread has stopped.
    pub(crate) fn back(&mut self, mut away: Away) {
        self.away = None;
        away.work();
        // Every batch went to `away`: its receiving end lives in it, so no
        // send failed and nothing was counted here meanwhile.
        debug_assert!(self.counted.0.is_empty());
        self.counted = away.counted;
    }

    /// Every site's counted frees, for `sites` sites, by site index.
    pub(crate) fn counted(mut self, sites: usize) -> Vec<SiteDeaths> {
        self.away = None;
        self.hand_over();
        let mut counted = self.counted.0;
        counted.resize_with(sites.max(counted.len()), SiteDeaths::default);
        counted
    }
}

/// The counting thread's side of [`Deaths::away`].
#[derive(Debug)]
pub(crate) struct Away {
    batches: mpsc::Receiver<Vec<Death>>,
    counted: Counted,
}

impl Away {
    /// Counts every batch handed over so far.
    pub(crate) fn work(&mut self) {
        while let Ok(batch) = self.batches.try_recv() {
            self.counted.count(&batch);
        }
    }

    /// Waits up to `timeout` for a batch, then counts every batch handed
    /// over: for a thread that would otherwise wait on the state's, so that
    /// the batches do not pile up meanwhile.
    pub(crate) fn wait(&mut self, timeout: std::time::Duration) {
        if let Ok(batch) = self.batches.recv_timeout(timeout) {
            self.counted.count(&batch);
        }
        self.work();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frees(n: u64) -> impl Iterator<Item = (u32, bool, u64)> {
        (0..n).map(|i| ((i * 7 % 13) as u32, i % 3 == 0, i * i % 100_003))
    }

    fn counted_here(n: u64) -> Vec<SiteDeaths> {
        let mut d = Deaths::default();
        frees(n).for_each(|(s, t, l)| d.push(s, t, l, 1));
        d.counted(20)
    }

    #[test]
    fn a_weighted_free_counts_as_many() {
        let mut d = Deaths::default();
        d.push(0, true, 50, 1000);
        d.push(0, false, 5, 1);
        d.push(1, false, 7, MAX_WEIGHT);
        let c = d.counted(2);
        assert_eq!((c[0].lifetimes.count(), c[0].temporary), (1001, 1000));
        assert_eq!(c[0].lifetimes.count_at_most(10), 1);
        assert_eq!((c[1].lifetimes.count(), c[1].temporary), (u64::from(MAX_WEIGHT), 0));
    }

    fn same(a: &[SiteDeaths], b: &[SiteDeaths]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.temporary, y.temporary);
            assert_eq!(x.lifetimes, y.lifetimes);
            assert_eq!(format!("{:?}", x.lifetimes), format!("{:?}", y.lifetimes));
        }
    }

    #[test]
    fn frees_counted_away_or_here_give_the_same_histograms() {
        let n = 5 * BATCH as u64 + 17;
        let here = counted_here(n);
        assert_eq!(here.iter().map(|s| s.lifetimes.count()).sum::<u64>(), n);
        assert_eq!(here.iter().map(|s| s.temporary).sum::<u64>(), n.div_ceil(3));
        // Counted on another thread as it goes, and at the end.
        let mut d = Deaths::default();
        let mut away = d.away();
        std::thread::scope(|scope| {
            let state = &mut d;
            let feeding =
                scope.spawn(move || frees(n).for_each(|(s, t, l)| state.push(s, t, l, 1)));
            while !feeding.is_finished() {
                away.wait(std::time::Duration::from_millis(1));
            }
        });
        d.back(away);
        same(&here, &d.counted(20));
    }

    #[test]
    fn a_batch_the_other_side_never_took_is_counted_here() {
        let n = 3 * BATCH as u64 + 5;
        let mut d = Deaths::default();
        drop(d.away());
        frees(n).for_each(|(s, t, l)| d.push(s, t, l, 1));
        same(&counted_here(n), &d.counted(20));
    }
}
