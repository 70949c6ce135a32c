//! Flamegraphs as SVG: by time (the scope call tree), by allocated bytes or
//! allocation count (the allocation stacks), or by bytes live at the end.
//!
//! Frames are laid out from the same folded stacks `pulse export --format
//! folded` writes: each stack's weight widens every frame on its path.
//! Widths are proportional; a frame's colour is hashed from its name, so the
//! same function has the same colour in every graph; each frame carries a
//! tooltip with its figures; labels are cut to fit. A small script lets a
//! click zoom into a frame (a click on the root, or "Reset zoom", zooms
//! out), and "Search" (or Ctrl+F) highlight the frames whose names match a
//! regular expression, with the share of the total they cover; without
//! scripts the picture stays whole. The output is deterministic.

use std::collections::BTreeMap;
use std::io::{self, Write};

use svg::node::element::{Group, Rectangle, Script, Text as TextElement, Title};
use svg::node::Text;
use svg::Document;

use crate::export::{folded, FoldedKind};
use crate::profile::Profile;
use crate::units::{Bytes, Nanos};

const WIDTH: f64 = 1200.0;
const ROW: f64 = 17.0;
const PAD_TOP: f64 = 30.0;
/// Frames narrower than this many pixels are left out.
const MIN_WIDTH: f64 = 0.3;

/// A node of the merged stack tree, in an arena (index 0 the root), so
/// that neither building, walking nor dropping a deep tree recurses.
#[derive(Debug, Default)]
struct Node {
    weight: u64,
    depth: usize,
    children: BTreeMap<String, usize>,
}

/// Writes the flamegraph of `profile` by `kind` as SVG.
pub fn flamegraph(profile: &Profile, kind: FoldedKind, out: &mut dyn Write) -> io::Result<()> {
    let mut lines = Vec::new();
    folded(profile, kind, &mut lines)?;
    let mut nodes = vec![Node::default()];
    for line in String::from_utf8_lossy(&lines).lines() {
        let Some((stack, weight)) = line.rsplit_once(' ') else { continue };
        let Ok(weight) = weight.parse::<u64>() else { continue };
        nodes[0].weight = nodes[0].weight.saturating_add(weight);
        let mut at = 0;
        for frame in stack.split(';') {
            let next = nodes.len();
            let child = *nodes[at].children.entry(frame.to_owned()).or_insert(next);
            if child == next {
                let depth = nodes[at].depth + 1;
                nodes.push(Node { depth, ..Node::default() });
            }
            at = child;
            nodes[at].weight = nodes[at].weight.saturating_add(weight);
        }
    }
    let root = &nodes[0];
    let (title, unit): (&str, fn(u64) -> String) = match kind {
        FoldedKind::Time => ("Time (self time of each scope path)", |v| Nanos(v).to_string()),
        FoldedKind::AllocBytes => ("Allocated bytes", |v| Bytes(v).to_string()),
        FoldedKind::AllocCount => ("Allocations", |v| format!("{v} allocations")),
        FoldedKind::Leaks => ("Bytes live at the end", |v| Bytes(v).to_string()),
    };
    let total = root.weight.max(1);
    let depth = nodes.iter().map(|n| n.depth).max().unwrap_or(0);
    let height = PAD_TOP + ROW * (depth as f64 + 1.0) + 10.0;
    let mut frames = Group::new().set("id", "frames");
    frames = frames.add(frame("all", total, total, 0.0, WIDTH, height - ROW - 10.0, unit));
    let mut stack: Vec<(usize, f64, usize)> = vec![(0, 0.0, 1)];
    while let Some((node, x, level)) = stack.pop() {
        let mut cx = x;
        for (name, &child) in &nodes[node].children {
            let child_weight = nodes[child].weight;
            let w = WIDTH * child_weight as f64 / total as f64;
            if w >= MIN_WIDTH {
                let y = height - ROW * (level as f64 + 1.0) - 10.0;
                frames = frames.add(frame(name, child_weight, total, cx, w, y, unit));
                stack.push((child, cx, level + 1));
            }
            cx += w;
        }
    }
    let doc = Document::new()
        .set("width", WIDTH)
        .set("height", height)
        .set("viewBox", (0, 0, WIDTH, height))
        .set("font-family", "monospace")
        .set("font-size", 11)
        .add(Rectangle::new().set("width", "100%").set("height", "100%").set("fill", "#fdfdf8"))
        .add(
            TextElement::new("")
                .set("x", WIDTH / 2.0)
                .set("y", 18)
                .set("text-anchor", "middle")
                .set("font-size", 14)
                .add(Text::new(format!("pulse: {title} — {}", unit(nodes[0].weight)))),
        )
        .add(
            TextElement::new("")
                .set("id", "unzoom")
                .set("x", 10)
                .set("y", 18)
                .set("visibility", "hidden")
                .set("cursor", "pointer")
                .add(Text::new("Reset zoom")),
        )
        .add(
            TextElement::new("")
                .set("id", "search")
                .set("x", WIDTH - 10.0)
                .set("y", 18)
                .set("text-anchor", "end")
                .set("cursor", "pointer")
                .set("visibility", "hidden")
                .add(Text::new("Search")),
        )
        .add(
            TextElement::new("")
                .set("id", "matched")
                .set("x", WIDTH - 10.0)
                .set("y", height - 2.0)
                .set("text-anchor", "end")
                .add(Text::new("")),
        )
        .add(frames)
        .add(Script::new(SCRIPT));
    write!(out, "{doc}")?;
    writeln!(out)
}

/// One frame: a rectangle with a tooltip and a label cut to fit.
fn frame(
    name: &str,
    weight: u64,
    total: u64,
    x: f64,
    w: f64,
    y: f64,
    unit: fn(u64) -> String,
) -> Group {
    let share = 100.0 * weight as f64 / total as f64;
    let tip = format!("{name}: {} ({share:.1} %)", unit(weight));
    // About 7 px per character at 11 px monospace.
    let fits = ((w - 6.0) / 7.0).max(0.0) as usize;
    let label: String = if name.chars().count() <= fits {
        name.to_owned()
    } else if fits > 2 {
        name.chars().take(fits - 2).chain("..".chars()).collect()
    } else {
        String::new()
    };
    Group::new()
        .set("class", "f")
        .set("data-n", name)
        .set("data-x", format!("{x:.2}"))
        .set("data-w", format!("{w:.2}"))
        .add(Title::new(tip))
        .add(
            Rectangle::new()
                .set("x", format!("{x:.2}"))
                .set("y", format!("{y:.2}"))
                .set("width", format!("{:.2}", (w - 0.5).max(0.1)))
                .set("height", ROW - 1.0)
                .set("rx", 2)
                .set("fill", colour(name)),
        )
        .add(
            TextElement::new("")
                .set("x", format!("{:.2}", x + 3.0))
                .set("y", format!("{:.2}", y + ROW - 5.0))
                .add(Text::new(label)),
        )
}

/// A warm colour hashed from the name (FNV-1a): stable across runs and graphs.
fn colour(name: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let r = 205 + (h % 50);
    let g = 80 + ((h >> 8) % 120);
    let b = 40 + ((h >> 16) % 50);
    format!("rgb({r},{g},{b})")
}

/// Click a frame to zoom into it (its width fills the graph, its label
/// refitted); click the root ("all") or "Reset zoom" to zoom out. "Search"
/// or Ctrl+F asks for a regular expression and highlights the frames whose
/// names match, with the share of the total they cover (each stretch of
/// the graph counted once); an empty search clears it. The controls stay
/// hidden where scripts do not run.
const SCRIPT: &str = r#"
(function () {
  var full = 1200, frames = document.querySelectorAll('g.f');
  var unzoom = document.getElementById('unzoom'), search = document.getElementById('search');
  var matched = document.getElementById('matched');
  function fit(name, w) {
    var n = Math.floor((w - 6) / 7);
    return name.length <= n ? name : (n > 2 ? name.slice(0, n - 2) + '..' : '');
  }
  function zoom(x0, w0) {
    frames.forEach(function (o) {
      var x = parseFloat(o.dataset.x), w = parseFloat(o.dataset.w);
      var nx = (x - x0) * full / w0, nw = w * full / w0;
      o.style.display = nx + nw > 0.01 && nx < full - 0.01 ? '' : 'none';
      var left = Math.max(nx, 0), width = Math.min(nx + nw, full) - left;
      var r = o.querySelector('rect'), t = o.querySelector('text');
      r.setAttribute('x', left); r.setAttribute('width', Math.max(width - 0.5, 0.1));
      t.setAttribute('x', left + 3); t.textContent = fit(o.dataset.n, width);
    });
    unzoom.setAttribute('visibility', w0 < full ? 'visible' : 'hidden');
  }
  function find(re) {
    var spans = [];
    frames.forEach(function (o) {
      var r = o.querySelector('rect');
      if (!r.dataset.fill) { r.dataset.fill = r.getAttribute('fill'); }
      var hit = re !== null && re.test(o.dataset.n);
      r.setAttribute('fill', hit ? 'rgb(230,0,230)' : r.dataset.fill);
      if (hit) { spans.push([parseFloat(o.dataset.x), parseFloat(o.dataset.w)]); }
    });
    spans.sort(function (a, b) { return a[0] - b[0]; });
    var covered = 0, end = -1;
    spans.forEach(function (s) {
      var a = Math.max(s[0], end), b = s[0] + s[1];
      if (b > a) { covered += b - a; end = b; }
    });
    matched.textContent = re === null ? '' : 'Matched: ' + (100 * covered / full).toFixed(1) + ' %';
  }
  function ask() {
    var term = prompt('Search frames (regular expression)', '');
    if (term === null) { return; }
    try { find(term === '' ? null : new RegExp(term)); } catch (e) { matched.textContent = 'bad expression'; }
  }
  frames.forEach(function (g) {
    g.style.cursor = 'pointer';
    g.addEventListener('click', function () { zoom(parseFloat(g.dataset.x), parseFloat(g.dataset.w)); });
  });
  unzoom.addEventListener('click', function () { zoom(0, full); });
  search.setAttribute('visibility', 'visible');
  search.addEventListener('click', ask);
  document.addEventListener('keydown', function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === 'f') { e.preventDefault(); ask(); }
  });
})();
"#;
