//! The heap timeline as an SVG chart: the live heap over time, stacked by
//! its top sites, with the peak marked and axes with round ticks.

use std::io::{self, Write};

use svg::node::element::{
    Circle, Group, Line, Polygon, Polyline, Rectangle, Text as TextElement, Title,
};
use svg::Document;

use crate::model::profile::Profile;
use crate::model::timeline::{TimelineSite, TOP_SITES};
use crate::write::units::{Bytes, Nanos};

/// Ticks wanted along an axis, about.
const TICKS: f64 = 8.0;

/// Round ticks from 0 to at least `max` in one of `units` (value, name):
/// the step is 1, 2 or 5 times a power of ten of the largest unit it is a
/// whole number of, so that every label is exact. The last tick is the
/// first at or above `max`.
fn ticks(max: f64, units: &[(f64, &str)]) -> Vec<(f64, String)> {
    let max = max.max(1.0);
    let raw = max / TICKS;
    let (unit, name) = units.iter().rev().find(|(u, _)| raw >= *u).copied().unwrap_or(units[0]);
    let scaled = (raw / unit).max(1.0);
    let power = 10f64.powi(scaled.log10().floor() as i32);
    let mantissa = [1.0, 2.0, 5.0, 10.0].into_iter().find(|m| m * power >= scaled).unwrap_or(10.0);
    let step = mantissa * power * unit;
    // Labelled in the largest unit the step is a whole number of (1 ms
    // rather than 1000 µs).
    let (unit, name) = units
        .iter()
        .rev()
        .find(|(u, _)| step >= *u && (step / u).fract() == 0.0)
        .copied()
        .unwrap_or((unit, name));
    let mut out = Vec::new();
    let mut k = 0u32;
    loop {
        let v = f64::from(k) * step;
        let shown = v / unit;
        out.push((v, if k == 0 { String::from("0") } else { format!("{shown} {name}") }));
        if v >= max {
            break out;
        }
        k += 1;
    }
}

const TIME_UNITS: [(f64, &str); 4] = [(1.0, "ns"), (1e3, "µs"), (1e6, "ms"), (1e9, "s")];
const BYTE_UNITS: [(f64, &str); 4] =
    [(1.0, "B"), (1024.0, "KiB"), (1024.0 * 1024.0, "MiB"), (1024.0 * 1024.0 * 1024.0, "GiB")];

/// The bands' colours, most bytes first; the last is `other`'s.
const COLOURS: [&str; TOP_SITES + 1] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f",
    "#c8c8c8",
];

/// Writes the timeline of `profile` as an SVG chart: the live heap over
/// time (the most in each interval, and what was live at its end), the
/// peak marked at its time, the heap at each interval's peak stacked by
/// its top sites and the rest, with time and byte ticks.
pub fn timeline_svg(profile: &Profile, out: &mut dyn Write) -> io::Result<()> {
    chart(profile, usize::MAX, out)
}

/// The chart of [`timeline_svg`] for an HTML page: each site's name cut to
/// `name_chars` characters, so that its size is bounded whatever the
/// names (its points are: [`POINTS`] of them, [`TOP_SITES`] bands).
pub(crate) fn embedded(
    profile: &Profile,
    name_chars: usize,
    out: &mut dyn Write,
) -> io::Result<()> {
    chart(profile, name_chars, out)
}

/// The chart, each site named in at most `name_chars` characters.
fn chart(profile: &Profile, name_chars: usize, out: &mut dyn Write) -> io::Result<()> {
    let t = &profile.timeline;
    let legend = t.sites.len() + usize::from(!t.sites.is_empty());
    let (w, left, right, top, plot_h) = (1200.0, 80.0, 20.0, 40.0, 320.0);
    let plot_w = w - left - right;
    let bottom = top + plot_h;
    let h = bottom + 44.0 + 16.0 * legend as f64;
    let duration = profile.duration_ns.max(1) as f64;
    let max = t.live_bytes.iter().copied().max().unwrap_or(0).max(profile.memory.peak_bytes);
    let yticks = ticks(max as f64, &BYTE_UNITS);
    let ymax = yticks.last().map_or(1.0, |(v, _)| v.max(1.0));
    let xticks: Vec<(f64, String)> =
        ticks(duration, &TIME_UNITS).into_iter().filter(|(v, _)| *v <= duration).collect();
    let x = |ns: f64| left + plot_w * (ns / duration).clamp(0.0, 1.0);
    let y = |b: f64| top + plot_h * (1.0 - b / ymax);
    // Each point's span on the chart, the last one's cut at the session's end.
    let span = |i: usize| (x(i as f64 * t.interval_ns), x((i + 1) as f64 * t.interval_ns));
    let label = |s: String, x: f64, y: f64, anchor: &str| {
        TextElement::new(s)
            .set("x", format!("{x:.1}"))
            .set("y", format!("{y:.1}"))
            .set("text-anchor", anchor.to_owned())
    };
    let line = |x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str| {
        Line::new()
            .set("x1", format!("{x1:.1}"))
            .set("y1", format!("{y1:.1}"))
            .set("x2", format!("{x2:.1}"))
            .set("y2", format!("{y2:.1}"))
            .set("stroke", stroke.to_owned())
    };
    let title = if profile.memory.counted_only {
        format!(
            "pulse: {} session in count mode: no allocation events, so no live heap over time",
            Nanos(profile.duration_ns)
        )
    } else if t.sites.is_empty() {
        format!("pulse: live heap over {}", Nanos(profile.duration_ns))
    } else {
        format!(
            "pulse: live heap over {}, by allocation site at each interval's peak",
            Nanos(profile.duration_ns)
        )
    };
    let mut doc = Document::new()
        .set("width", w)
        .set("height", h)
        .set("viewBox", (0, 0, w, h))
        .set("font-family", "monospace")
        .set("font-size", 11)
        .add(Rectangle::new().set("width", "100%").set("height", "100%").set("fill", "#fdfdf8"))
        .add(label(title, w / 2.0, 20.0, "middle"));
    // Grid and ticks.
    let mut axes = Group::new().set("class", "axes");
    for (v, name) in &yticks {
        let yy = y(*v);
        axes = axes.add(line(left, yy, left + plot_w, yy, "#e4e4dc")).add(line(
            left - 4.0,
            yy,
            left,
            yy,
            "#444",
        ));
        axes = axes.add(
            label(name.clone(), left - 6.0, yy, "end")
                .set("class", "y-tick")
                .set("dominant-baseline", "middle"),
        );
    }
    for (v, name) in &xticks {
        let xx = x(*v);
        axes = axes
            .add(line(xx, bottom, xx, bottom + 4.0, "#444"))
            .add(label(name.clone(), xx, bottom + 16.0, "middle").set("class", "x-tick"));
    }
    axes = axes
        .add(line(left, bottom, left + plot_w, bottom, "#444"))
        .add(line(left, top, left, bottom, "#444"));
    doc = doc.add(axes);
    // The heap at each interval's peak, stacked by site: the bands' tops
    // are the line's maxima.
    if !t.sites.is_empty() {
        let mut bands = Group::new().set("class", "sites");
        let mut below = vec![0u64; t.live_bytes.len()];
        let layers = t.sites.iter().map(|s| (&s.bytes, site_name(s, name_chars)));
        let layers = layers.chain(std::iter::once((&t.other_bytes, String::from("other"))));
        for (k, (bytes, name)) in layers.enumerate() {
            let above: Vec<u64> =
                below.iter().zip(bytes).map(|(a, b)| a.saturating_add(*b)).collect();
            let mut pts = Vec::new();
            for (i, v) in above.iter().enumerate() {
                let (x0, x1) = span(i);
                pts.push((x0, y(*v as f64)));
                pts.push((x1, y(*v as f64)));
            }
            for (i, v) in below.iter().enumerate().rev() {
                let (x0, x1) = span(i);
                pts.push((x1, y(*v as f64)));
                pts.push((x0, y(*v as f64)));
            }
            bands = bands.add(
                Polygon::new()
                    .set("points", points(&pts))
                    .set("fill", COLOURS[k.min(TOP_SITES)])
                    .set("fill-opacity", 0.75)
                    .add(Title::new(name)),
            );
            below = above;
        }
        doc = doc.add(bands);
    }
    // The line: each interval's maximum, then what was live at its end; it
    // ends with what was live when the session ended.
    if !t.live_bytes.is_empty() && !profile.memory.counted_only {
        let mut pts = Vec::new();
        for (i, (max, end)) in t.live_bytes.iter().zip(&t.end_bytes).enumerate() {
            let (x0, x1) = span(i);
            pts.push((x0, y(*max as f64)));
            pts.push((x1, y(*max as f64)));
            pts.push((x1, y(*end as f64)));
        }
        let last = t.end_bytes.last().copied().unwrap_or(0);
        pts.push((x(duration), y(last as f64)));
        doc = doc.add(
            Polyline::new()
                .set("class", "heap")
                .set("points", points(&pts))
                .set("fill", "none")
                .set("stroke", "rgb(220,90,40)")
                .set("stroke-width", 1.5),
        );
        let peak = profile.memory.peak_bytes;
        let (px, py) = (x(profile.memory.peak_at_ns as f64), y(peak as f64));
        doc = doc
            .add(
                Circle::new()
                    .set("class", "peak")
                    .set("cx", format!("{px:.1}"))
                    .set("cy", format!("{py:.1}"))
                    .set("r", 4)
                    .set("fill", "rgb(160,20,20)"),
            )
            .add(label(
                format!("peak {} at {}", Bytes(peak), Nanos(profile.memory.peak_at_ns)),
                (px + 8.0).min(left + plot_w - 200.0).max(left + 4.0),
                (py - 8.0).max(top - 4.0),
                "start",
            ));
    }
    // The legend: each band's site and the most it held at an interval's peak.
    if !t.sites.is_empty() {
        let mut g = Group::new().set("class", "legend");
        let rows = t.sites.iter().map(|s| (site_name(s, name_chars), s.peak_bytes)).chain(
            std::iter::once((
                String::from("other sites"),
                t.other_bytes.iter().copied().max().unwrap_or(0),
            )),
        );
        for (k, (name, most)) in rows.enumerate() {
            let yy = bottom + 36.0 + 16.0 * k as f64;
            g = g
                .add(
                    Rectangle::new()
                        .set("x", left)
                        .set("y", format!("{:.1}", yy - 9.0))
                        .set("width", 10)
                        .set("height", 10)
                        .set("fill", COLOURS[k.min(TOP_SITES)]),
                )
                .add(label(Bytes(most).to_string(), left + 86.0, yy, "end"))
                .add(label(name, left + 94.0, yy, "start"));
        }
        doc = doc.add(g);
    }
    write!(out, "{doc}")?;
    writeln!(out)
}

/// `function (file:line)`, as a session named them, made safe to show,
/// in at most `chars` characters (as [`crate::write::fit::Shorten::Location`]
/// shortens it).
fn site_name(s: &TimelineSite, chars: usize) -> String {
    let name = if s.place.is_empty() || s.place == s.function {
        s.function.clone()
    } else {
        format!("{} ({})", s.function, s.place)
    };
    crate::write::fit::shorten(crate::write::fit::Shorten::Location, &name, chars)
}

/// `x,y x,y …` with one decimal, a point that repeats its predecessor left out.
fn points(pts: &[(f64, f64)]) -> String {
    let mut s = String::with_capacity(pts.len() * 12);
    let mut last = None;
    for &(x, y) in pts {
        let p = (format!("{x:.1}"), format!("{y:.1}"));
        if last.as_ref() == Some(&p) {
            continue;
        }
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&p.0);
        s.push(',');
        s.push_str(&p.1);
        last = Some(p);
    }
    s
}
