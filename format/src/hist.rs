//! A log-linear histogram of durations (or any `u64`), for percentiles.
//!
//! Values below 64 have a bucket each. Above, every power of two is split
//! into 64 equal buckets, so a bucket is at most 1/64 of its lower bound
//! wide. A percentile is reported as its bucket's midpoint (clamped to the
//! exact minimum and maximum), hence within **0.8 %** (1/128) of the true
//! value. [`Histogram::coarse`] splits each power of two into 4 instead
//! (percentiles within 12.5 %), for the many per-site histograms of block
//! lifetimes.
//!
//! Memory follows the buckets used, not the range of values: a histogram
//! holds the buckets between its lowest and highest used ones (about 28 KiB
//! for values spread from one nanosecond to an hour), or, while fewer than
//! a quarter of those are used, a list of the used ones alone: at most
//! about 48 bytes per bucket used, or 128 bytes if that is more. A value
//! far from the others costs one bucket, not the buckets in between.

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 6;
/// The same for [`Histogram::coarse`].
const COARSE_BITS: u32 = 2;

/// Counts of values by log-linear bucket, with the exact count, sum, minimum
/// and maximum.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Histogram {
    /// Sub-buckets per power of two, as a power of two; 0 means the default.
    sub_bits: u32,
    counts: Counts,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

/// The counts of the buckets used.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
enum Counts {
    /// `(bucket, count)` of each bucket used, by bucket.
    Sparse(Vec<(usize, u64)>),
    /// The counts of buckets `lo..lo + counts.len()`; `used` of them are
    /// not zero.
    Dense { lo: usize, counts: Vec<u64>, used: usize },
}

impl Default for Counts {
    fn default() -> Self {
        Counts::Sparse(Vec::new())
    }
}

/// Buckets a dense histogram may span whatever it holds.
const DENSE_MIN: usize = 16;

/// Whether `span` buckets of which `used` are used are worth holding densely.
fn dense_enough(span: usize, used: usize) -> bool {
    span <= DENSE_MIN.max(4 * used)
}

impl Counts {
    /// Adds `n` to bucket `b`.
    #[inline]
    fn add(&mut self, b: usize, n: u64) {
        if let Counts::Dense { lo, counts, used } = self {
            if let Some(c) = b.checked_sub(*lo).and_then(|i| counts.get_mut(i)) {
                *used += usize::from(*c == 0);
                *c += n;
                return;
            }
        }
        self.add_slow(b, n);
    }

    #[cold]
    fn add_slow(&mut self, b: usize, n: u64) {
        if let Counts::Dense { lo, counts, used } = self {
            let hi = *lo + counts.len();
            if dense_enough(hi.max(b + 1) - (*lo).min(b), *used + 1) {
                if b >= hi {
                    // Grows as a Vec does: amortized constant time.
                    counts.resize(b + 1 - *lo, 0);
                } else {
                    // Downwards by half the span at least, so that values
                    // arriving in falling order do not copy it every time.
                    let new_lo = b.min(lo.saturating_sub(counts.len() / 2));
                    let mut grown = vec![0; hi - new_lo];
                    grown[*lo - new_lo..].copy_from_slice(counts);
                    *counts = grown;
                    *lo = new_lo;
                }
                counts[b - *lo] = n;
                *used += 1;
                return;
            }
            // Too far from the others to fill the buckets between.
            let mut list: Vec<(usize, u64)> = Counts::dense_iter(*lo, counts).collect();
            list.insert(list.partition_point(|&(k, _)| k < b), (b, n));
            *self = Counts::Sparse(list);
            return;
        }
        let Counts::Sparse(list) = self else { return };
        match list.binary_search_by_key(&b, |&(k, _)| k) {
            Ok(i) => list[i].1 += n,
            Err(i) => {
                list.insert(i, (b, n));
                let (first, last) = (list[0].0, list[list.len() - 1].0);
                if dense_enough(last + 1 - first, list.len()) {
                    let mut counts = vec![0; last + 1 - first];
                    for &(k, c) in list.iter() {
                        counts[k - first] = c;
                    }
                    let used = list.len();
                    *self = Counts::Dense { lo: first, counts, used };
                }
            }
        }
    }

    fn dense_iter(lo: usize, counts: &[u64]) -> impl Iterator<Item = (usize, u64)> + '_ {
        counts.iter().enumerate().filter(|(_, &c)| c > 0).map(move |(i, &c)| (lo + i, c))
    }

    /// `(bucket, count)` of every bucket used, by bucket.
    fn iter(&self) -> Box<dyn Iterator<Item = (usize, u64)> + '_> {
        match self {
            Counts::Sparse(list) => Box::new(list.iter().copied()),
            Counts::Dense { lo, counts, .. } => Box::new(Counts::dense_iter(*lo, counts)),
        }
    }
}

impl PartialEq for Histogram {
    fn eq(&self, other: &Self) -> bool {
        self.bits() == other.bits()
            && (self.count, self.sum, self.min, self.max)
                == (other.count, other.sum, other.min, other.max)
            && self.counts.iter().eq(other.counts.iter())
    }
}

impl Eq for Histogram {}

/// The bucket a value falls in, with `2^bits` sub-buckets per power of two.
#[inline]
fn bucket(v: u64, bits: u32) -> usize {
    let sub = 1u64 << bits;
    if v < sub {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // v >= 2^e, e >= bits
    let group = (e - bits + 1) as usize;
    (group << bits) + ((v >> (e - bits)) & (sub - 1)) as usize
}

/// The lowest value of bucket `b` and its width.
fn range(b: usize, bits: u32) -> (u64, u64) {
    let sub = 1u64 << bits;
    if (b as u64) < sub {
        return (b as u64, 1);
    }
    let group = (b >> bits) as u32;
    let e = group + bits - 1;
    let m = (b as u64) & (sub - 1);
    let width = 1u64 << (e - bits);
    ((1u64 << e) | (m << (e - bits)), width)
}

impl Histogram {
    /// An empty histogram (percentiles within 0.8 %).
    pub fn new() -> Self {
        Histogram::default()
    }

    /// An empty histogram with 4 buckets per power of two (percentiles
    /// within 12.5 %), for when there are many of them.
    pub fn coarse() -> Self {
        Histogram { sub_bits: COARSE_BITS, ..Histogram::default() }
    }

    #[inline]
    fn bits(&self) -> u32 {
        if self.sub_bits == 0 {
            SUB_BITS
        } else {
            self.sub_bits
        }
    }

    /// Whether its parts agree: buckets in order and in range, their counts
    /// adding up to the count, the minimum not above the maximum. Always so
    /// for a histogram built by recording; for one read back from storage
    /// (the analyzer's replay cache), what makes its other methods safe.
    pub fn is_consistent(&self) -> bool {
        let bits = self.bits();
        if bits > 16 {
            return false;
        }
        let last = bucket(u64::MAX, bits);
        let mut total = 0u64;
        let mut prev = None;
        if let Counts::Dense { lo, counts, used } = &self.counts {
            let nonzero = counts.iter().filter(|&&n| n > 0).count();
            if lo.checked_add(counts.len()).is_none_or(|end| end > last + 1) || *used != nonzero {
                return false;
            }
        }
        for (b, n) in self.counts.iter() {
            if b > last || prev.is_some_and(|p| p >= b) {
                return false;
            }
            prev = Some(b);
            total = match total.checked_add(n) {
                Some(t) => t,
                None => return false,
            };
        }
        total == self.count && (self.count == 0 || self.min <= self.max)
    }

    /// Adds one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts.add(bucket(v, self.bits()), 1);
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        self.max = self.max.max(v);
        self.count += 1;
        self.sum += u128::from(v);
    }

    /// Adds `n` values of `v`: one value standing for `n` (a sampled
    /// block weighted by the inverse of its chance).
    #[inline]
    pub fn record_n(&mut self, v: u64, n: u64) {
        if n == 0 {
            return;
        }
        self.counts.add(bucket(v, self.bits()), n);
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        self.max = self.max.max(v);
        self.count += n;
        self.sum += u128::from(v) * u128::from(n);
    }

    /// The histogram with every bucket's count multiplied by `f`, the
    /// same values' shape counted as `f` times as many: the count is
    /// `count × f` rounded, shared among the buckets by their shares (the
    /// largest remainders rounded up; a bucket left with none left out),
    /// the sum likewise. The minimum and maximum stay.
    pub fn scaled(&self, f: f64) -> Histogram {
        let mut out = Histogram { sub_bits: self.sub_bits, ..Histogram::default() };
        let f = if f.is_finite() { f.max(0.0) } else { 0.0 };
        let target = (self.count as f64 * f).round().min(u64::MAX as f64) as u64;
        let exact: Vec<(usize, f64)> = self.counts.iter().map(|(b, n)| (b, n as f64 * f)).collect();
        let mut whole: Vec<u64> = exact.iter().map(|(_, x)| x.floor() as u64).collect();
        let mut left = target.saturating_sub(whole.iter().fold(0u64, |a, &n| a.saturating_add(n)));
        // The largest remainders first; the lowest bucket first among equals.
        let mut order: Vec<usize> = (0..exact.len()).collect();
        order.sort_by(|&i, &j| {
            let (a, b) = (exact[i].1.fract(), exact[j].1.fract());
            b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal).then(i.cmp(&j))
        });
        for i in order {
            if left == 0 {
                break;
            }
            whole[i] += 1;
            left -= 1;
        }
        for ((b, _), m) in exact.iter().zip(whole) {
            if m > 0 {
                out.counts.add(*b, m);
                out.count = out.count.saturating_add(m);
            }
        }
        if out.count > 0 {
            (out.min, out.max) = (self.min, self.max);
            out.sum = (self.sum as f64 * f).round().min(u128::MAX as f64) as u128;
        }
        out
    }

    /// Adds every value of `other`.
    /// Histograms of different precisions do not merge: `other`'s values
    /// are then re-bucketed from its bucket midpoints.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        if other.bits() != self.bits() {
            for (b, n) in other.counts.iter() {
                let (low, width) = range(b, other.bits());
                let mid = low + width / 2;
                self.counts.add(bucket(mid, self.bits()), n);
                self.sum += u128::from(mid) * u128::from(n);
            }
        } else {
            for (b, n) in other.counts.iter() {
                self.counts.add(b, n);
            }
            self.sum += other.sum;
        }
        self.min = if self.count == 0 { other.min } else { self.min.min(other.min) };
        self.max = self.max.max(other.max);
        self.count += other.count;
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their sum, saturated to `u64`.
    pub fn sum(&self) -> u64 {
        u64::try_from(self.sum).unwrap_or(u64::MAX)
    }

    /// The smallest value (0 when empty).
    pub fn min(&self) -> u64 {
        self.min
    }

    /// The largest value (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean, rounded down (0 when empty).
    pub fn mean(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            (self.sum / u128::from(self.count)) as u64
        }
    }

    /// How many values are at most `v` (to the bucket: within 1.6 %).
    pub fn count_at_most(&self, v: u64) -> u64 {
        let last = bucket(v, self.bits());
        self.counts.iter().take_while(|&(b, _)| b <= last).map(|(_, n)| n).sum()
    }

    /// [`Histogram::count_at_most`] for each of `bounds` (in rising
    /// order), in one pass over the buckets: cumulative counts, as a
    /// Prometheus histogram's `le` buckets hold them. `out` is cleared first.
    pub fn counts_at_most(&self, bounds: &[u64], out: &mut Vec<u64>) {
        out.clear();
        let mut buckets = self.counts.iter().peekable();
        let mut seen = 0;
        for &v in bounds {
            let last = bucket(v, self.bits());
            while let Some(&(b, n)) = buckets.peek() {
                if b > last {
                    break;
                }
                seen += n;
                buckets.next();
            }
            out.push(seen);
        }
    }

    /// The value below which a fraction `q` (0..=1) of the values fall:
    /// the midpoint of the bucket holding the value of rank `ceil(q·n)`,
    /// clamped to the exact minimum and maximum; the exact minimum or
    /// maximum itself where that rank is the first or the last (the p99 of
    /// fewer than a hundred values is their largest). 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        if rank >= self.count {
            return self.max;
        }
        if rank == 1 {
            return self.min;
        }
        let mut seen = 0;
        for (b, n) in self.counts.iter() {
            seen += n;
            if seen >= rank {
                let (low, width) = range(b, self.bits());
                return (low + width / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_out_of_joint_is_told() {
        let mut h = Histogram::new();
        for v in [3, 70, 5000, 1 << 40] {
            h.record(v);
        }
        assert!(h.is_consistent() && Histogram::new().is_consistent());
        let broken = [
            Histogram { min: 9, max: 2, ..h.clone() },
            Histogram { count: h.count + 1, ..h.clone() },
            Histogram { sub_bits: 40, ..h.clone() },
            Histogram { counts: Counts::Sparse(vec![(9, 2), (3, 2)]), ..h.clone() },
            Histogram { counts: Counts::Sparse(vec![(usize::MAX, 4)]), ..h.clone() },
            Histogram { counts: Counts::Dense { lo: 1, counts: vec![4], used: 0 }, ..h.clone() },
        ];
        for b in broken {
            assert!(!b.is_consistent(), "{b:?}");
        }
    }

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for v in (0..5000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let b = bucket(v, SUB_BITS);
            assert!(b >= last, "{v}");
            last = b;
            let (low, width) = range(b, SUB_BITS);
            assert!(low <= v && v - low < width, "{v}: bucket {b} = [{low}, +{width})");
            assert!(width == 1 || width <= low / 64 + 1, "{v}: width {width} for low {low}");
        }
    }

    #[test]
    fn percentiles_are_within_the_documented_error() {
        let mut h = Histogram::new();
        let values: Vec<u64> = (1..=100_000u64).map(|i| i * 37 + (i % 7) * 1000).collect();
        for &v in &values {
            h.record(v);
        }
        let mut sorted = values.clone();
        sorted.sort_unstable();
        for q in [0.5, 0.9, 0.99, 0.999] {
            let exact = sorted[((q * sorted.len() as f64).ceil() as usize).max(1) - 1] as f64;
            let got = h.quantile(q) as f64;
            assert!((got - exact).abs() / exact <= 1.0 / 128.0 + 1e-9, "q {q}: {got} vs {exact}");
        }
        assert_eq!(h.min(), sorted[0]);
        assert_eq!(h.max(), *sorted.last().unwrap());
        assert_eq!(h.count(), 100_000);
    }

    #[test]
    fn a_scaled_histogram_counts_as_many_more() {
        let mut h = Histogram::coarse();
        for v in [10, 10, 10, 1000, 5000] {
            h.record(v);
        }
        let s = h.scaled(2.5);
        assert!(s.is_consistent());
        // 5 × 2.5 = 12.5 → 13: 7.5 → 7 + 1, 2.5 and 2.5 → 2 and 2, the
        // one left to the largest remainder, the lowest bucket's.
        assert_eq!((s.count(), s.count_at_most(10)), (13, 8));
        // Just under 1, many small buckets: the total, not each rounded up.
        let mut many = Histogram::coarse();
        for v in 0..100u64 {
            many.record(1 << (v % 40));
        }
        assert_eq!(many.scaled(0.999).count(), 100);
        assert_eq!(many.scaled(0.97).count(), 97);
        assert_eq!((s.min(), s.max()), (10, 5000));
        assert_eq!(h.scaled(0.0).count(), 0);
        assert!(h.scaled(0.0).is_consistent());
        assert_eq!(h.scaled(1.0), h);
    }

    #[test]
    fn the_first_and_last_ranks_are_exact() {
        let mut h = Histogram::new();
        for v in [600_000_123, 690_860_777] {
            h.record(v);
        }
        // Two values: the p99 is the larger, the p50 the smaller, exactly.
        assert_eq!(h.quantile(0.99), 690_860_777);
        assert_eq!(h.quantile(0.5), 600_000_123);
        for v in 0..97 {
            h.record(1000 + v);
        }
        assert_eq!(h.quantile(0.99), 690_860_777, "99 values: p99 is the largest");
        // A hundred: rank 99, the second largest, in another bucket.
        h.record(5);
        let second = h.quantile(0.99) as f64;
        assert!((second / 600_000_123.0 - 1.0).abs() < 0.01, "{second}");
        assert_ne!(h.quantile(0.99), 690_860_777);
        assert_eq!(h.quantile(0.0), 5);
    }

    /// xorshift64*: deterministic, no dependency.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn the_buckets_held_are_the_buckets_used_in_every_representation() {
        for (seed, bits) in [(1, SUB_BITS), (2, COARSE_BITS), (3, SUB_BITS), (4, SUB_BITS)] {
            let mut next = rng(seed);
            let mut h = if bits == COARSE_BITS { Histogram::coarse() } else { Histogram::new() };
            let mut reference = std::collections::BTreeMap::new();
            for i in 0..20_000u64 {
                // Clusters, far outliers, and runs rising and falling.
                let v = match (seed + i) % 5 {
                    0 => 1000 + next() % 100,
                    1 => next() >> (next() % 64),
                    2 => i * 37,
                    3 => u64::MAX - i * 1_000_003,
                    _ => 20_000 - i,
                };
                h.record(v);
                *reference.entry(bucket(v, bits)).or_insert(0u64) += 1;
                if i % 997 == 0 {
                    let held: Vec<(usize, u64)> = h.counts.iter().collect();
                    let want: Vec<(usize, u64)> = reference.iter().map(|(&b, &n)| (b, n)).collect();
                    assert_eq!(held, want, "seed {seed}, after {i} values");
                }
            }
        }
    }

    #[test]
    fn a_value_far_from_the_others_costs_one_bucket() {
        let held = |h: &Histogram| match &h.counts {
            Counts::Sparse(list) => list.capacity() * 16,
            Counts::Dense { counts, .. } => counts.capacity() * 8,
        };
        let mut h = Histogram::new();
        h.record(1);
        h.record(u64::MAX);
        assert!(held(&h) <= 64, "{} bytes", held(&h));
        assert_eq!((h.quantile(0.5), h.max()), (1, u64::MAX));
        // Dense once the buckets between are mostly used, and back to a list
        // when an outlier would stretch it.
        let mut h = Histogram::new();
        for v in 0..1000 {
            h.record(v);
        }
        assert!(matches!(h.counts, Counts::Dense { .. }));
        let before = held(&h);
        h.record(1 << 50);
        assert!(matches!(h.counts, Counts::Sparse(_)));
        assert!(held(&h) <= 2 * before, "{} bytes, {before} before", held(&h));
        assert_eq!(h.count(), 1001);
        assert_eq!(h.count_at_most(999), 1000);
    }

    #[test]
    fn equal_contents_are_equal_however_held() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for v in 0..200 {
            a.record(v);
        }
        for v in (0..200).rev() {
            b.record(v);
        }
        b.record(1 << 60);
        a.record(1 << 60);
        assert_eq!(a, b);
        let mut c = Histogram::coarse();
        c.merge(&a);
        assert_eq!(c.count(), a.count());
        assert_eq!((c.min(), c.max()), (0, 1 << 60));
    }

    #[test]
    fn small_values_are_exact_and_merging_adds() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for v in 0..10 {
            a.record(v);
            b.record(v + 10);
        }
        a.merge(&b);
        assert_eq!(a.count(), 20);
        assert_eq!(a.quantile(0.5), 9);
        assert_eq!(a.min(), 0);
        assert_eq!(a.max(), 19);
        assert_eq!(a.mean(), 9);
        assert_eq!(a.count_at_most(4), 5);
        assert_eq!(a.count_at_most(1000), 20);
        assert_eq!(Histogram::new().quantile(0.5), 0);
    }

    #[test]
    fn counts_at_most_many_bounds_match_one_at_a_time() {
        let mut next = rng(7);
        let mut h = Histogram::new();
        for _ in 0..10_000 {
            h.record(next() >> (next() % 64));
        }
        let bounds: Vec<u64> = (0..64).map(|e| 1u64 << e).chain([u64::MAX]).collect();
        let mut out = vec![42];
        h.counts_at_most(&bounds, &mut out);
        let one_by_one: Vec<u64> = bounds.iter().map(|&v| h.count_at_most(v)).collect();
        assert_eq!(out, one_by_one);
        assert_eq!(out.last(), Some(&h.count()));
        Histogram::new().counts_at_most(&bounds, &mut out);
        assert!(out.iter().all(|&n| n == 0) && out.len() == bounds.len());
    }
}
