//! The live heap over time: the most bytes live in each of up to
//! [`POINTS`] evenly spaced intervals of the session, globally and per
//! allocating thread, and an SVG chart of it with the peak marked.
//!
//! Like the per-site history, the interval starts small and doubles when
//! the points fill up (two neighbours merge, keeping the larger), so memory
//! is fixed however long the session. Each point keeps the maximum of its
//! interval, so no spike is lost to downsampling.

use std::collections::BTreeMap;
use std::io::{self, Write};

use svg::node::element::{Circle, Line, Polyline, Rectangle, Text as TextElement};
use svg::node::Text;
use svg::Document;

use crate::profile::Profile;
use crate::units::{Bytes, Nanos};

/// Points kept.
pub const POINTS: usize = 512;

/// The live heap over the session.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Timeline {
    /// Nanoseconds between two points.
    pub interval_ns: u64,
    /// The most bytes live in each interval, from the session's start.
    pub live_bytes: Vec<u64>,
    /// The same per allocating thread (blocks count for the thread that
    /// allocated them), aligned with `live_bytes`.
    pub threads: BTreeMap<u64, Vec<u64>>,
}

#[derive(Debug)]
pub(crate) struct TimelineBuilder {
    start: Option<u64>,
    interval: u64,
    points: Vec<u64>,
    /// By the replay's thread index; `None` for a thread with no block.
    threads: Vec<Option<Vec<u64>>>,
    /// The point of the last change, and the ticks since `start` it covers:
    /// the replay moves forward, so most changes fall in the same point
    /// and need no division.
    current: (usize, u64, u64),
}

impl Default for TimelineBuilder {
    fn default() -> Self {
        TimelineBuilder {
            start: None,
            interval: 1 << 16,
            points: Vec::new(),
            threads: Vec::new(),
            current: (0, 0, 0),
        }
    }
}

impl TimelineBuilder {
    /// The heap at `ts` holds `global` bytes, the share of the thread at
    /// index `thread` `own`.
    #[inline(always)]
    pub(crate) fn record(&mut self, ts: u64, global: u64, thread: usize, own: u64) {
        let start = *self.start.get_or_insert(ts);
        let since = ts.saturating_sub(start);
        let (mut i, low, high) = self.current;
        if !(low..high).contains(&since) {
            i = self.point(since);
        }
        bump(&mut self.points, i, global);
        if thread >= self.threads.len() {
            self.threads.resize_with(thread + 1, || None);
        }
        bump(self.threads[thread].get_or_insert_with(Vec::new), i, own);
    }

    /// The point `since` ticks after the start falls in, halving the
    /// resolution until it fits.
    fn point(&mut self, since: u64) -> usize {
        let mut i = (since / self.interval) as usize;
        while i >= POINTS {
            self.halve();
            i = (since / self.interval) as usize;
        }
        let low = i as u64 * self.interval;
        self.current = (i, low, low.saturating_add(self.interval));
        i
    }

    #[cold]
    fn halve(&mut self) {
        let merge = |v: &mut Vec<u64>| {
            let merged: Vec<u64> =
                v.chunks(2).map(|c| c.iter().copied().max().unwrap_or(0)).collect();
            *v = merged;
        };
        merge(&mut self.points);
        self.threads.iter_mut().flatten().for_each(merge);
        self.interval = self.interval.saturating_mul(2);
    }

    /// The timeline, its threads named by `ids` (the id of each thread index).
    pub(crate) fn finish(self, ticks_per_ns: f64, ids: &[u64]) -> Timeline {
        let n = self.points.len();
        Timeline {
            interval_ns: (self.interval as f64 / ticks_per_ns) as u64,
            live_bytes: self.points,
            threads: self
                .threads
                .into_iter()
                .enumerate()
                .filter_map(|(t, v)| {
                    let mut v = v?;
                    v.resize(n, 0);
                    Some((ids[t], v))
                })
                .collect(),
        }
    }
}

/// Raises point `i` to `v`; points between the last one and `i` carry the
/// last value forward (nothing changed in between).
#[inline]
fn bump(v: &mut Vec<u64>, i: usize, value: u64) {
    match v.get_mut(i) {
        Some(p) => *p = (*p).max(value),
        None => extend(v, i, value),
    }
}

#[cold]
#[inline(never)]
fn extend(v: &mut Vec<u64>, i: usize, value: u64) {
    let last = v.last().copied().unwrap_or(0);
    v.resize(i + 1, last);
    v[i] = value;
}

/// Writes the timeline of `profile` as an SVG chart: the live heap over
/// time, the peak marked.
pub fn timeline_svg(profile: &Profile, out: &mut dyn Write) -> io::Result<()> {
    let t = &profile.timeline;
    let (w, h, left, bottom, top) = (1200.0, 400.0, 70.0, 40.0, 40.0);
    let plot_w = w - left - 20.0;
    let plot_h = h - top - bottom;
    let max = t.live_bytes.iter().copied().max().unwrap_or(0).max(1);
    let n = t.live_bytes.len().max(1);
    let x = |i: usize| left + plot_w * i as f64 / n as f64;
    let y = |b: u64| top + plot_h * (1.0 - b as f64 / max as f64);
    let mut points = String::new();
    for (i, b) in t.live_bytes.iter().enumerate() {
        points.push_str(&format!("{:.1},{:.1} {:.1},{:.1} ", x(i), y(*b), x(i + 1), y(*b)));
    }
    let peak_i = t
        .live_bytes
        .iter()
        .enumerate()
        .max_by_key(|(i, b)| (**b, usize::MAX - i))
        .map_or(0, |(i, _)| i);
    let peak = profile.memory.peak_bytes;
    let label = |s: String, x: f64, y: f64, anchor: &str| {
        TextElement::new("")
            .set("x", x)
            .set("y", y)
            .set("text-anchor", anchor.to_owned())
            .add(Text::new(s))
    };
    let mut doc = Document::new()
        .set("width", w)
        .set("height", h)
        .set("viewBox", (0, 0, w, h))
        .set("font-family", "monospace")
        .set("font-size", 11)
        .add(Rectangle::new().set("width", "100%").set("height", "100%").set("fill", "#fdfdf8"))
        .add(label(
            format!("pulse: live heap over {}", Nanos(profile.duration_ns)),
            w / 2.0,
            20.0,
            "middle",
        ))
        .add(
            Line::new()
                .set("x1", left)
                .set("y1", top + plot_h)
                .set("x2", left + plot_w)
                .set("y2", top + plot_h)
                .set("stroke", "#444"),
        )
        .add(
            Line::new()
                .set("x1", left)
                .set("y1", top)
                .set("x2", left)
                .set("y2", top + plot_h)
                .set("stroke", "#444"),
        )
        .add(label(Bytes(max).to_string(), left - 6.0, top + 4.0, "end"))
        .add(label(String::from("0"), left - 6.0, top + plot_h, "end"))
        .add(label(String::from("0"), left, top + plot_h + 16.0, "start"))
        .add(label(
            Nanos(t.interval_ns.saturating_mul(n as u64)).to_string(),
            left + plot_w,
            top + plot_h + 16.0,
            "end",
        ))
        .add(
            Polyline::new()
                .set("points", points.trim_end().to_owned())
                .set("fill", "none")
                .set("stroke", "rgb(220,90,40)")
                .set("stroke-width", 1.5),
        );
    if !t.live_bytes.is_empty() {
        let (px, py) = (x(peak_i) + (x(peak_i + 1) - x(peak_i)) / 2.0, y(t.live_bytes[peak_i]));
        doc = doc
            .add(
                Circle::new()
                    .set("cx", format!("{px:.1}"))
                    .set("cy", format!("{py:.1}"))
                    .set("r", 4)
                    .set("fill", "rgb(160,20,20)"),
            )
            .add(label(
                format!("peak {} at {}", Bytes(peak), Nanos(profile.memory.peak_at_ns)),
                px.min(left + plot_w - 200.0).max(left + 4.0),
                (py - 8.0).max(top - 4.0),
                "start",
            ));
    }
    write!(out, "{doc}")?;
    writeln!(out)
}
