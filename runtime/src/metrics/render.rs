//! The `/metrics` body: the figures copied out of the aggregates under
//! their lock, then encoded with the lock released.
//!
//! The encoder is `prometheus-client`'s text format 0.0.4 (the Prometheus
//! project's Rust client): label values escaped as the format says
//! (backslash, double quote, newline), HELP text escaped, counters named
//! with `_total`, `le` bounds written the way Prometheus's Go clients write
//! them (`1e-07`, `0.0025`), so the series are the ones a Go exporter would
//! give. pulse uses it as an encoder only: the figures are the collector's,
//! handed to it through a [`Collector`] at each render.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// One operation's (or scope's) figures.
#[derive(Debug)]
struct Op {
    name: &'static str,
    category: &'static str,
    count: u64,
    sum_seconds: f64,
    /// Entries at most each bound, cumulative.
    at_most: Vec<u64>,
    allocs: u64,
    bytes: u64,
}

/// Everything one scrape shows.
#[derive(Debug)]
struct Snapshot {
    bounds: Vec<f64>,
    ops: Vec<Op>,
    live_bytes: i64,
    live_blocks: i64,
    peak_bytes: i64,
    overhead_seconds: f64,
}

impl Snapshot {
    /// Copies the figures: the aggregates' lock is held only for the copy.
    fn take(bounds: &[f64]) -> Snapshot {
        // The heap's counters first: the peak is at least what they say.
        let heap = pulse_alloc::totals();
        let defs = crate::scope::definitions_since(0);
        let mut snap = Snapshot {
            bounds: bounds.to_vec(),
            ops: Vec::new(),
            live_bytes: heap.live_bytes(),
            live_blocks: heap.live_blocks(),
            peak_bytes: heap.live_bytes(),
            overhead_seconds: 0.0,
        };
        crate::stats::with_aggregates(|a| {
            let (timing, ticks_per_ns) = a.timing();
            let ticks_per_s = ticks_per_ns * 1e9;
            // `as` saturates: a bound past the clock's range counts everything.
            let ticks: Vec<u64> = bounds.iter().map(|s| (s * ticks_per_s) as u64).collect();
            for (id, entries, allocs, bytes) in timing.scope_entries() {
                let Some(d) = (id as usize).checked_sub(1).and_then(|i| defs.get(i)) else {
                    continue;
                };
                let mut at_most = Vec::with_capacity(ticks.len());
                entries.counts_at_most(&ticks, &mut at_most);
                snap.ops.push(Op {
                    name: d.name,
                    category: d.category,
                    count: entries.count(),
                    sum_seconds: entries.sum() as f64 / ticks_per_s,
                    at_most,
                    allocs,
                    bytes,
                });
            }
            snap.peak_bytes = a.extra.peak(snap.live_bytes);
            snap.overhead_seconds = a.extra.overhead_seconds();
        });
        snap.ops.sort_by(|a, b| (a.category, a.name).cmp(&(b.category, b.name)));
        snap
    }
}

/// One operation's histogram, as the encoder takes it: the count of each
/// bucket on its own (the encoder sums them up) and `+Inf` from the count.
struct Histogram<'a> {
    op: &'a Op,
    bounds: &'a [f64],
}

impl EncodeMetric for Histogram<'_> {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut below = 0;
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .zip(&self.op.at_most)
            .map(|(&le, &n)| {
                let own = n.saturating_sub(below);
                below = below.max(n);
                (le, own)
            })
            .collect();
        encoder.encode_histogram::<NoLabelSet>(self.op.sum_seconds, self.op.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The metric names, as users type them in queries and dashboards. The
/// encoder adds `_total` to the counters' names.
pub(crate) const DURATION: &str = "pulse_operation_duration_seconds";
pub(crate) const ALLOCATIONS: &str = "pulse_operation_allocations";
pub(crate) const ALLOCATED_BYTES: &str = "pulse_operation_allocated_bytes";
pub(crate) const LIVE_BYTES: &str = "pulse_heap_live_bytes";
pub(crate) const LIVE_BLOCKS: &str = "pulse_heap_live_blocks";
pub(crate) const PEAK_BYTES: &str = "pulse_heap_peak_bytes";
pub(crate) const OVERHEAD: &str = "pulse_overhead_seconds";

/// A per-operation counter: its name, help, and how to read it.
type Counter = (&'static str, &'static str, fn(&Op) -> u64);

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let labels = |op: &Op| [("operation", op.name), ("category", op.category)];
        {
            let mut family = encoder.encode_descriptor(
                DURATION,
                "Time each entry of an operation or scope took (children included, pauses \
                 excluded), as pulse's collector measured it; buckets to within 1.6 %.",
                None,
                MetricType::Histogram,
            )?;
            for op in &self.ops {
                let labels = labels(op);
                Histogram { op, bounds: &self.bounds }.encode(family.encode_family(&labels)?)?;
            }
        }
        let counters: [Counter; 2] = [
            (
                ALLOCATIONS,
                "Allocations made while the operation or scope was the innermost one open.",
                |op| op.allocs,
            ),
            (ALLOCATED_BYTES, "Bytes those allocations asked for.", |op| op.bytes),
        ];
        for (name, help, value) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for op in &self.ops {
                let labels = labels(op);
                ConstCounter::new(value(op)).encode(family.encode_family(&labels)?)?;
            }
        }
        let gauges = [
            (
                LIVE_BYTES,
                "Bytes the program has allocated and not freed, pulse's own excluded.",
                self.live_bytes,
            ),
            (LIVE_BLOCKS, "Blocks the program has allocated and not freed.", self.live_blocks),
            (
                PEAK_BYTES,
                "The most bytes live at once this session, as pulse's collector saw them: \
                 exact where one thread allocates at a time, a lower bound otherwise.",
                self.peak_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            let family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(value).encode(family)?;
        }
        let family = encoder.encode_descriptor(
            OVERHEAD,
            "pulse's own cost this session: its events and stacks on the program's threads \
             (counted, times their measured cost), their waits for ring room, and the CPU \
             time of its collector and metrics threads.",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(self.overhead_seconds).encode(family)?;
        Ok(())
    }
}

/// The `/metrics` body, with `bounds` (seconds, rising) as the duration
/// histogram's buckets. Call it on pulse's own thread: it allocates.
pub(crate) fn body(bounds: &[f64]) -> Vec<u8> {
    let snapshot = Snapshot::take(bounds);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_encodes_as_the_exposition_format_says() {
        let op = |name, category, count, at_most: Vec<u64>| Op {
            name,
            category,
            count,
            sum_seconds: 0.25,
            at_most,
            allocs: 3,
            bytes: 96,
        };
        let snap = Snapshot {
            bounds: vec![1e-7, 2.5e-3, 1.0],
            ops: vec![
                op("Parse", "Input", 4, vec![1, 3, 4]),
                op("Odd", "a\"b\\c\nd", 0, vec![0, 0, 0]),
            ],
            live_bytes: -5,
            live_blocks: 2,
            peak_bytes: 4096,
            overhead_seconds: 0.5,
        };
        let mut registry = Registry::default();
        registry.register_collector(Box::new(snap));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        let want = [
            "# TYPE pulse_operation_duration_seconds histogram",
            r#"pulse_operation_duration_seconds_bucket{operation="Parse",category="Input",le="1e-07"} 1"#,
            r#"pulse_operation_duration_seconds_bucket{operation="Parse",category="Input",le="0.0025"} 3"#,
            r#"pulse_operation_duration_seconds_bucket{operation="Parse",category="Input",le="1"} 4"#,
            r#"pulse_operation_duration_seconds_bucket{operation="Parse",category="Input",le="+Inf"} 4"#,
            r#"pulse_operation_duration_seconds_sum{operation="Parse",category="Input"} 0.25"#,
            r#"pulse_operation_duration_seconds_count{operation="Parse",category="Input"} 4"#,
            r#"pulse_operation_duration_seconds_count{operation="Odd",category="a\"b\\c\nd"} 0"#,
            "# TYPE pulse_operation_allocations_total counter",
            r#"pulse_operation_allocations_total{operation="Parse",category="Input"} 3"#,
            r#"pulse_operation_allocated_bytes_total{operation="Parse",category="Input"} 96"#,
            "# TYPE pulse_heap_live_bytes gauge",
            "pulse_heap_live_bytes -5",
            "pulse_heap_live_blocks 2",
            "pulse_heap_peak_bytes 4096",
            "# TYPE pulse_overhead_seconds_total counter",
            "pulse_overhead_seconds_total 0.5",
        ];
        for line in want {
            assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
        }
        assert!(text.lines().all(|l| !l.is_empty()), "{text}");
    }
}
