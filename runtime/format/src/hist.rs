//! A log-linear histogram of durations (or any `u64`), for percentiles.
//!
//! Values below 64 have a bucket each. Above, every power of two is split
//! into 64 equal buckets, so a bucket is at most 1/64 of its lower bound
//! wide. A percentile is reported as its bucket's midpoint (clamped to the
//! exact minimum and maximum), hence within **0.8 %** (1/128) of the true
//! value. Memory grows with the largest value seen: about 28 KiB for values
//! up to an hour in nanoseconds. [`Histogram::coarse`] splits each power of
//! two into 4 instead (percentiles within 12.5 %, a fortieth of the memory),
//! for the many per-site histograms of block lifetimes.

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 6;
/// The same for [`Histogram::coarse`].
const COARSE_BITS: u32 = 2;

/// Counts of values by log-linear bucket, with the exact count, sum, minimum
/// and maximum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Sub-buckets per power of two, as a power of two; 0 means the default.
    sub_bits: u32,
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

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

    /// Adds one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        let b = bucket(v, self.bits());
        if b >= self.counts.len() {
            self.counts.resize(b + 1, 0);
        }
        self.counts[b] += 1;
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        self.max = self.max.max(v);
        self.count += 1;
        self.sum += u128::from(v);
    }

    /// Adds every value of `other`.
    /// Histograms of different precisions do not merge: `other` is then
    /// re-bucketed value by value from its bucket midpoints.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        if other.bits() != self.bits() {
            for (b, &n) in other.counts.iter().enumerate() {
                let (low, width) = range(b, other.bits());
                for _ in 0..n {
                    self.record(low + width / 2);
                }
            }
            return;
        }
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.min = if self.count == 0 { other.min } else { self.min.min(other.min) };
        self.max = self.max.max(other.max);
        self.count += other.count;
        self.sum += other.sum;
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
        self.counts.iter().take(last + 1).sum()
    }

    /// The value below which a fraction `q` (0..=1) of the values fall:
    /// the midpoint of the bucket holding the value of rank `ceil(q·n)`,
    /// clamped to the exact minimum and maximum. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, &n) in self.counts.iter().enumerate() {
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
}
