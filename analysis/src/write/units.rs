//! Human units for durations and sizes.

use std::fmt;

/// A duration in nanoseconds, shown as ns, µs, ms or s with three significant digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Nanos(pub u64);

impl fmt::Display for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0 as f64;
        let s = if self.0 < 1_000 {
            format!("{} ns", self.0)
        } else if self.0 < 1_000_000 {
            format!("{} µs", sig3(n / 1e3))
        } else if self.0 < 1_000_000_000 {
            format!("{} ms", sig3(n / 1e6))
        } else {
            format!("{} s", sig3(n / 1e9))
        };
        f.pad(&s)
    }
}

/// A size in bytes, shown as B, KiB, MiB or GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0 as f64;
        let s = if self.0 < 1024 {
            format!("{} B", self.0)
        } else if self.0 < 1 << 20 {
            format!("{} KiB", sig3(n / 1024.0))
        } else if self.0 < 1 << 30 {
            format!("{} MiB", sig3(n / (1u64 << 20) as f64))
        } else {
            format!("{} GiB", sig3(n / (1u64 << 30) as f64))
        };
        f.pad(&s)
    }
}

/// A count, shown as is below ten thousand and as k, M or G above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Count(pub u64);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0 as f64;
        let s = if self.0 < 10_000 {
            self.0.to_string()
        } else if self.0 < 1_000_000 {
            format!("{}k", sig3(n / 1e3))
        } else if self.0 < 1_000_000_000 {
            format!("{}M", sig3(n / 1e6))
        } else {
            format!("{}G", sig3(n / 1e9))
        };
        f.pad(&s)
    }
}

/// A moment in nanoseconds after the Unix epoch, shown as a UTC date and
/// time to the millisecond (`2026-12-05 17:05:22.123 UTC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct UnixTime(pub(crate) u64);

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1_000_000_000;
        let millis = self.0 % 1_000_000_000 / 1_000_000;
        let (days, day) = (secs / 86_400, secs % 86_400);
        // The proleptic Gregorian calendar from days since 1970-01-01
        // (Howard Hinnant's `civil_from_days`), in eras of 400 years.
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z % 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + u64::from(m <= 2);
        let s = format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{millis:03} UTC",
            day / 3_600,
            day % 3_600 / 60,
            day % 60
        );
        f.pad(&s)
    }
}

/// Three significant digits, without trailing zeros past the point.
fn sig3(v: f64) -> String {
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// The figures behind pulse's estimate of its own cost on the program's
/// threads: `761k events × 11 ns, 571k stacks × 40 ns (28.4 frames each)`:
/// a stack's cost is the whole walk's, not a frame's.
pub(crate) struct CostFigures<'a>(pub(crate) &'a crate::Overhead);

impl fmt::Display for CostFigures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{} events × {:.0} ns, {} stacks × {:.0} ns",
            Count(o.events),
            o.event_ns,
            Count(o.stacked_events),
            o.stack_ns
        )?;
        match o.stack_frames {
            Some(frames) => write!(f, " ({frames:.1} frames each)"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_figures_say_the_frames_where_known() {
        let mut o = crate::Overhead {
            events: 761_000,
            stacked_events: 571_000,
            event_ns: 11.0,
            stack_ns: 40.2,
            ..Default::default()
        };
        assert_eq!(CostFigures(&o).to_string(), "761k events × 11 ns, 571k stacks × 40 ns");
        o.stack_frames = Some(28.43);
        assert_eq!(
            CostFigures(&o).to_string(),
            "761k events × 11 ns, 571k stacks × 40 ns (28.4 frames each)"
        );
    }

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(Nanos(999).to_string(), "999 ns");
        assert_eq!(Nanos(1_500).to_string(), "1.5 µs");
        assert_eq!(Nanos(12_340_000).to_string(), "12.3 ms");
        assert_eq!(Nanos(2_000_000_000).to_string(), "2 s");
    }

    #[test]
    fn counts_abbreviate_above_ten_thousand() {
        assert_eq!(Count(9_999).to_string(), "9999");
        assert_eq!(Count(12_345).to_string(), "12.3k");
        assert_eq!(Count(2_207_582).to_string(), "2.21M");
        assert_eq!(Count(2_123_669_361).to_string(), "2.12G");
    }

    #[test]
    fn moments_read_as_utc_dates() {
        assert_eq!(UnixTime(0).to_string(), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(UnixTime(1_700_000_000_123_456_789).to_string(), "2023-11-14 22:13:20.123 UTC");
        // A leap day, and the last moment of a year.
        assert_eq!(UnixTime(951_782_400_000_000_000).to_string(), "2000-02-29 00:00:00.000 UTC");
        assert_eq!(UnixTime(1_798_761_599_999_000_000).to_string(), "2026-12-31 23:59:59.999 UTC");
        assert_eq!(UnixTime(u64::MAX).to_string(), "2554-07-21 23:34:33.709 UTC");
    }

    #[test]
    fn sizes_pick_their_unit() {
        assert_eq!(Bytes(0).to_string(), "0 B");
        assert_eq!(Bytes(1536).to_string(), "1.5 KiB");
        assert_eq!(Bytes(3 << 20).to_string(), "3 MiB");
        assert_eq!(Bytes(5 << 30).to_string(), "5 GiB");
    }
}
