//! The timeline chart of real sessions (the examples, run as processes),
//! read back as an XML document: the peak is marked at its time and the
//! line ends at what was live at the end, both on the chart's own scales as
//! its axis ticks state them; the heap by site adds up to the line.

use std::path::Path;
use std::process::Command;

use pulse_analysis::{timeline_svg, Profile, TOP_SITES};
use pulse_tests::temp_session;

/// Runs an example with `PULSE_OUT` set and reads its session back.
fn run(bin: &str, args: &[&str]) -> Profile {
    let name = Path::new(bin).file_name().unwrap().to_string_lossy().into_owned();
    let path = temp_session(&name);
    let out = Command::new(bin).args(args).env("PULSE_OUT", &path).output().unwrap();
    assert!(out.status.success(), "{bin}: {}", String::from_utf8_lossy(&out.stderr));
    Profile::load(&path).unwrap()
}

/// A tick label's value: `0`, or a number and its unit (`200 ms`, `20 KiB`).
fn value(label: &str) -> f64 {
    let label = label.trim();
    if label == "0" {
        return 0.0;
    }
    let (n, unit) = label.split_once(' ').unwrap_or_else(|| panic!("tick label {label:?}"));
    let scale = match unit {
        "ns" | "B" => 1.0,
        "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => panic!("unit of {label:?}"),
    };
    n.parse::<f64>().unwrap_or_else(|_| panic!("number of {label:?}")) * scale
}

/// An axis as its ticks state it: value → coordinate, fitted through the
/// first and last tick and checked against every other one.
struct Axis {
    ticks: Vec<(f64, f64)>,
}

impl Axis {
    /// The ticks of `class`, at their `coordinate`; their step must be 1,
    /// 2 or 5 times a power of ten of one of `units`.
    fn read(doc: &roxmltree::Document<'_>, class: &str, coordinate: &str, units: &[f64]) -> Axis {
        let ticks: Vec<(f64, f64)> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text") && n.attribute("class") == Some(class))
            .map(|n| {
                let at: f64 = n.attribute(coordinate).unwrap().parse().unwrap();
                (value(n.text().unwrap_or("")), at)
            })
            .collect();
        assert!(ticks.len() >= 3, "{class}: {ticks:?}");
        let axis = Axis { ticks };
        // Round values, evenly spaced, on a straight scale.
        let step = axis.ticks[1].0 - axis.ticks[0].0;
        for (i, (v, at)) in axis.ticks.iter().enumerate() {
            assert!((v - i as f64 * step).abs() < 1e-6 * step, "{class}: {:?}", axis.ticks);
            assert!((axis.map(*v) - at).abs() < 0.1, "{class}: {:?}", axis.ticks);
        }
        let unit = units.iter().rev().copied().find(|u| step >= *u).unwrap();
        let mantissa = step / unit / 10f64.powi((step / unit).log10().floor() as i32);
        assert!(
            [1.0, 2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-9),
            "{class}: a step of {step} is not round: {:?}",
            axis.ticks
        );
        axis
    }

    fn map(&self, v: f64) -> f64 {
        let (v0, c0) = self.ticks[0];
        let (v1, c1) = self.ticks[self.ticks.len() - 1];
        c0 + (v - v0) * (c1 - c0) / (v1 - v0)
    }
}

fn check(name: &str, p: &Profile) {
    let mut svg = Vec::new();
    timeline_svg(p, &mut svg).unwrap();
    let svg = String::from_utf8(svg).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{name}: {e}"));
    let x = Axis::read(&doc, "x-tick", "x", &[1.0, 1e3, 1e6, 1e9]);
    let y = Axis::read(&doc, "y-tick", "y", &[1.0, 1024.0, 1048576.0, 1073741824.0]);
    let by_class = |tag: &str, class: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name(tag) && n.attribute("class") == Some(class))
            .unwrap_or_else(|| panic!("{name}: no <{tag} class={class:?}>"))
    };
    let m = &p.memory;

    // The peak marker, at the peak's time and height.
    let marker = by_class("circle", "peak");
    let cx: f64 = marker.attribute("cx").unwrap().parse().unwrap();
    let cy: f64 = marker.attribute("cy").unwrap().parse().unwrap();
    let want = x.map(m.peak_at_ns as f64);
    assert!(
        (cx - want).abs() <= 1.0,
        "{name}: the peak at {} ns is marked at x = {cx}, its time is at x = {want:.1}",
        m.peak_at_ns
    );
    assert!((cy - y.map(m.peak_bytes as f64)).abs() <= 1.0, "{name}: marker y {cy}");

    // The line ends at the session's end, with what was live then.
    let line = by_class("polyline", "heap").attribute("points").unwrap();
    let points: Vec<(f64, f64)> = line
        .split_whitespace()
        .map(|p| {
            let (a, b) = p.split_once(',').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    let (last_x, last_y) = *points.last().unwrap();
    assert!((last_x - x.map(p.duration_ns as f64)).abs() <= 1.0, "{name}: ends at x {last_x}");
    assert!(
        (last_y - y.map(m.live_bytes_at_end as f64)).abs() <= 0.1,
        "{name}: the line ends at y = {last_y}, {} live at the end is at y = {:.1}",
        m.live_bytes_at_end,
        y.map(m.live_bytes_at_end as f64)
    );
    // Nothing above the peak, and the peak reached.
    let top = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    assert!((top - y.map(m.peak_bytes as f64)).abs() <= 0.1, "{name}: top {top}");

    // The heap by site adds up to the line at every point, and the
    // legend names each band.
    let t = &p.timeline;
    assert!(!t.sites.is_empty() && t.sites.len() <= TOP_SITES, "{name}: {:?}", t.sites.len());
    assert_eq!(t.end_bytes.last(), Some(&m.live_bytes_at_end), "{name}");
    assert_eq!(t.live_bytes.iter().max(), Some(&m.peak_bytes), "{name}");
    for i in 0..t.live_bytes.len() {
        let sum = t.sites.iter().map(|s| s.bytes[i]).sum::<u64>() + t.other_bytes[i];
        assert_eq!(sum, t.live_bytes[i], "{name}: point {i}");
    }
    assert!(t.sites.windows(2).all(|w| w[0].peak_bytes >= w[1].peak_bytes), "{name}");
    let bands = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("sites"))
        .unwrap()
        .children()
        .filter(|n| n.has_tag_name("polygon"))
        .count();
    assert_eq!(bands, t.sites.len() + 1, "{name}: a band per site and one for the rest");
    let legend = by_class("g", "legend");
    let named: Vec<&str> = legend.descendants().filter_map(|n| n.text()).collect();
    for s in &t.sites {
        assert!(named.iter().any(|l| l.contains(&s.function)), "{name}: {} {named:?}", s.function);
    }
}

#[test]
fn trading_timeline_marks_its_peak_at_its_time_and_ends_at_its_live_bytes() {
    let p = run(env!("CARGO_BIN_EXE_trading"), &["3000"]);
    check("trading", &p);
}

#[test]
fn threads_timeline_marks_its_peak_at_its_time_and_ends_at_its_live_bytes() {
    let p = run(env!("CARGO_BIN_EXE_threads"), &["150"]);
    check("threads", &p);
}

#[test]
fn tour_timeline_ends_at_the_bytes_live_at_the_end_and_shows_its_sites() {
    let p = run(env!("CARGO_BIN_EXE_tour"), &["20000"]);
    check("tour", &p);
    // The tour's heap at its peak is mostly the feed parsed into one
    // buffer: the biggest band is that line, and at the peak's interval the
    // bands hold what the report's "heap at its peak" holds.
    let t = &p.timeline;
    assert_eq!(t.sites[0].function, "tour::parse_feed", "{:?}", t.sites[0]);
    let report = pulse_analysis::report(&p, &Default::default());
    let i = t.live_bytes.iter().rposition(|b| *b == p.memory.peak_bytes).unwrap();
    for s in &t.sites {
        let row = report.at_peak.iter().find(|r| r.function == s.function && r.place == s.place);
        if let Some(row) = row {
            assert_eq!(s.bytes[i], row.bytes_at_peak, "{} {}", s.function, s.place);
        }
    }
}
