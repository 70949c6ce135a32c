//! Flamegraphs as SVG: by time (the scope call tree), by allocated bytes or
//! allocation count (the allocation stacks), or by bytes live at the end.
//!
//! Frames are laid out from the same stacks `pulse export --format folded`
//! writes, taken as they are (each a list of names, never folded text read
//! back, so a name holding `;` stays one frame): each stack's weight widens
//! every frame on its path. Widths are proportional; a frame's colour is
//! hashed from its name, so the same function has the same colour in every
//! graph; each frame carries a tooltip with its figures; labels are cut to
//! fit. A small script lets a click zoom into a frame (a click on the root,
//! or "Reset zoom", zooms out), and "Search" (or Ctrl+F) highlight the
//! frames whose names match a regular expression, with the share of the
//! total they cover; without scripts the picture stays whole. The output is
//! deterministic.
//!
//! The document is written here rather than through the `svg` crate, which
//! leaves `"` unescaped in attribute values: a frame's name is in one
//! (`data-n`, for the script), and a name is whatever the session says.
//! Every name goes through [`crate::write::text::xml`], so the output is
//! well-formed XML whatever the names hold.

use std::io::{self, Write};

use crate::model::profile::Profile;
use crate::model::stacks::{stacks, FoldedKind};
use crate::write::text::xml;
use crate::write::units::{Bytes, Nanos};

const WIDTH: f64 = 1200.0;
const ROW: f64 = 17.0;
const PAD_TOP: f64 = 30.0;
/// Frames narrower than this many pixels are left out, and so is
/// everything above them.
const MIN_WIDTH: f64 = 0.3;

/// A node of the merged stack tree, in an arena (index 0 the root), so
/// that neither building, walking nor dropping a deep tree recurses. Its
/// children are sorted by name, each borrowing its name from the stacks:
/// a node costs a few words, not a map and a copy of its name.
#[derive(Debug, Default)]
struct Node<'a> {
    weight: u64,
    children: Vec<(&'a str, usize)>,
}

/// A frame to draw: its name, weight, left edge and width in pixels, and
/// its row (0 for the root).
#[derive(Debug)]
struct Drawn<'a> {
    name: &'a str,
    weight: u64,
    x: f64,
    w: f64,
    level: usize,
}

/// Writes the flamegraph of `profile` by `kind` as SVG.
pub fn flamegraph(profile: &Profile, kind: FoldedKind, out: &mut dyn Write) -> io::Result<()> {
    let (title, unit): (&str, fn(u64) -> String) = match kind {
        FoldedKind::Time => ("Time (self time of each scope path)", |v| Nanos(v).to_string()),
        FoldedKind::AllocBytes => ("Allocated bytes", |v| Bytes(v).to_string()),
        FoldedKind::AllocCount => ("Allocations", |v| format!("{v} allocations")),
        FoldedKind::Leaks => ("Bytes live at the end", |v| Bytes(v).to_string()),
    };
    render(&stacks(profile, kind), title, unit, out)
}

/// The stack tree of `stacks` (frames outermost first, each with its weight).
fn tree(stacks: &[(Vec<String>, u64)]) -> Vec<Node<'_>> {
    let mut nodes = vec![Node::default()];
    for (stack, weight) in stacks {
        nodes[0].weight = nodes[0].weight.saturating_add(*weight);
        let mut at = 0;
        for frame in stack {
            // The stacks come sorted, so a frame is its parent's last child
            // or a new last one; a search keeps any order right.
            let children = &nodes[at].children;
            let found = match children.last() {
                Some(&(name, child)) if name == frame.as_str() => Ok(child),
                Some(&(name, _)) if name < frame.as_str() => Err(children.len()),
                _ => {
                    children.binary_search_by(|(name, _)| (*name).cmp(frame)).map(|i| children[i].1)
                }
            };
            let child = match found {
                Ok(child) => child,
                Err(pos) => {
                    let next = nodes.len();
                    nodes.push(Node::default());
                    nodes[at].children.insert(pos, (frame.as_str(), next));
                    next
                }
            };
            at = child;
            nodes[at].weight = nodes[at].weight.saturating_add(*weight);
        }
    }
    nodes
}

/// The frames drawn, the root first: every frame at least [`MIN_WIDTH`]
/// wide whose parent is drawn, placed left to right under its parent.
fn layout<'a>(nodes: &[Node<'a>]) -> Vec<Drawn<'a>> {
    let total = nodes[0].weight.max(1);
    let mut drawn = vec![Drawn { name: "all", weight: total, x: 0.0, w: WIDTH, level: 0 }];
    let mut stack: Vec<(usize, f64, usize)> = vec![(0, 0.0, 1)];
    while let Some((node, x, level)) = stack.pop() {
        let mut cx = x;
        for &(name, child) in &nodes[node].children {
            let weight = nodes[child].weight;
            let w = WIDTH * weight as f64 / total as f64;
            if w >= MIN_WIDTH {
                drawn.push(Drawn { name, weight, x: cx, w, level });
                stack.push((child, cx, level + 1));
            }
            cx += w;
        }
    }
    drawn
}

/// Writes the SVG of `stacks`. Its height is that of the rows drawn: a
/// stack deeper than its frames wide enough to draw adds no empty band.
fn render(
    stacks: &[(Vec<String>, u64)],
    title: &str,
    unit: fn(u64) -> String,
    out: &mut dyn Write,
) -> io::Result<()> {
    let nodes = tree(stacks);
    let total = nodes[0].weight;
    let drawn = layout(&nodes);
    let depth = drawn.iter().map(|d| d.level).max().unwrap_or(0);
    let height = PAD_TOP + ROW * (depth as f64 + 1.0) + 10.0;
    writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="monospace" font-size="11">"#
    )?;
    writeln!(out, r##"<rect width="100%" height="100%" fill="#fdfdf8"/>"##)?;
    writeln!(
        out,
        r#"<text x="{}" y="18" text-anchor="middle" font-size="14">pulse: {} — {}</text>"#,
        WIDTH / 2.0,
        xml(title),
        xml(&unit(total))
    )?;
    writeln!(
        out,
        r#"<text id="unzoom" x="10" y="18" visibility="hidden" cursor="pointer">Reset zoom</text>"#
    )?;
    writeln!(
        out,
        r#"<text id="search" x="{}" y="18" text-anchor="end" visibility="hidden" cursor="pointer">Search</text>"#,
        WIDTH - 10.0
    )?;
    writeln!(
        out,
        r#"<text id="matched" x="{}" y="{}" text-anchor="end"></text>"#,
        WIDTH - 10.0,
        height - 2.0
    )?;
    writeln!(out, r#"<g id="frames">"#)?;
    for d in &drawn {
        let y = height - ROW * (d.level as f64 + 1.0) - 10.0;
        frame(out, d, total.max(1), y, unit)?;
    }
    writeln!(out, "</g>")?;
    writeln!(out, "<script><![CDATA[{SCRIPT}]]></script>")?;
    writeln!(out, "</svg>")
}

/// One frame: a rectangle with a tooltip and a label cut to fit.
fn frame(
    out: &mut dyn Write,
    d: &Drawn<'_>,
    total: u64,
    y: f64,
    unit: fn(u64) -> String,
) -> io::Result<()> {
    let Drawn { name, weight, x, w, .. } = *d;
    let share = 100.0 * weight as f64 / total as f64;
    // Cut to fit as shown: an escaped control character is several
    // characters wide.
    let shown = crate::write::text::printable(name);
    // About 7 px per character at 11 px monospace.
    let fits = ((w - 6.0) / 7.0).max(0.0) as usize;
    let label: String = if shown.chars().count() <= fits {
        shown.into_owned()
    } else if fits > 2 {
        shown.chars().take(fits - 2).chain("..".chars()).collect()
    } else {
        String::new()
    };
    writeln!(out, r#"<g class="f" data-n="{}" data-x="{x:.2}" data-w="{w:.2}">"#, xml(name))?;
    writeln!(out, "<title>{}: {} ({share:.1} %)</title>", xml(name), xml(&unit(weight)))?;
    writeln!(
        out,
        r#"<rect x="{x:.2}" y="{y:.2}" width="{:.2}" height="{}" rx="2" fill="{}"/>"#,
        (w - 0.5).max(0.1),
        ROW - 1.0,
        colour(name)
    )?;
    writeln!(out, r#"<text x="{:.2}" y="{:.2}">{}</text>"#, x + 3.0, y + ROW - 5.0, xml(&label))?;
    writeln!(out, "</g>")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn svg(stacks: &[(Vec<&str>, u64)]) -> String {
        let stacks: Vec<(Vec<String>, u64)> =
            stacks.iter().map(|(s, w)| (s.iter().map(|f| (*f).to_owned()).collect(), *w)).collect();
        let mut out = Vec::new();
        render(&stacks, "Allocations", |v| format!("{v} allocations"), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The frames' names as an XML parser reads them, and the document's height.
    fn frames(svg: &str) -> (Vec<String>, f64) {
        let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
        let names = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("f"))
            .map(|n| n.attribute("data-n").unwrap().to_owned())
            .collect();
        let height = doc.root_element().attribute("height").unwrap().parse().unwrap();
        (names, height)
    }

    #[test]
    fn a_name_holding_a_semicolon_is_one_frame() {
        let (names, _) = frames(&svg(&[(vec!["main", "core::array::<impl [T; N]>::map"], 5)]));
        assert_eq!(names, ["all", "main", "core::array::<impl [T; N]>::map"]);
    }

    #[test]
    fn the_height_is_that_of_the_frames_drawn() {
        // A stack 40 frames deep, far too narrow to draw beside a wide one:
        // two rows (the root and `wide`), not 41.
        let deep: Vec<&str> = (0..40).map(|_| "narrow").collect();
        let (names, height) = frames(&svg(&[(vec!["wide"], 1_000_000), (deep, 1)]));
        assert_eq!(names, ["all", "wide"]);
        assert_eq!(height, PAD_TOP + 2.0 * ROW + 10.0);
        // Drawn, the deep stack's rows count.
        let deep: Vec<&str> = (0..40).map(|_| "deep").collect();
        let (names, height) = frames(&svg(&[(vec!["wide"], 1), (deep, 1)]));
        assert_eq!(names.len(), 42);
        assert_eq!(height, PAD_TOP + 41.0 * ROW + 10.0);
    }

    #[test]
    fn markup_and_controls_in_names_stay_text() {
        let evil = "</script><script>alert(1)</script>\" onload=\"alert(2)\x1b[2J\0&amp;'";
        let (names, _) = frames(&svg(&[(vec![evil], 1)]));
        assert_eq!(
            names[1],
            "</script><script>alert(1)</script>\" onload=\"alert(2)\\u{1b}[2J\\u{0}&amp;'"
        );
    }
}
