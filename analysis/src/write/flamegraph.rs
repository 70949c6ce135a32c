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
//! The same picture is drawn into the HTML report (`write/html/`), where
//! it must share its page with others: its controls are found by class
//! within its own `<svg>`, never by id, and [`embedded`] leaves the script
//! out (the page runs [`ZOOM_SCRIPT`] once for every flamegraph on it) and
//! keeps the picture within a number of frames and of bytes.
//!
//! The document is written here rather than through the `svg` crate, which
//! leaves `"` unescaped in attribute values: a frame's name is in one
//! (`data-n`, for the script), and a name is whatever the session says.
//! Every name goes through [`crate::write::text::xml`], so the output is
//! well-formed XML whatever the names hold.

use std::io::{self, Write};

use crate::model::profile::Profile;
use crate::model::stacks::{stacks, FoldedKind};
use crate::write::fit::{shorten, Shorten};
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

/// Bounds on a flamegraph drawn into another document: at most `frames`
/// frames, whose markup comes to at most `bytes`, each name cut to
/// `name_chars` characters (as [`Shorten::Name`] shortens it). The frames
/// kept are the widest, so a frame is never drawn without its parent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Embed {
    pub(crate) frames: usize,
    pub(crate) bytes: usize,
    pub(crate) name_chars: usize,
}

/// How many frames a flamegraph drew, of those wide enough to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shown {
    pub(crate) drawn: usize,
    pub(crate) wide_enough: usize,
}

/// Writes the flamegraph of `profile` by `kind` as SVG.
pub fn flamegraph(profile: &Profile, kind: FoldedKind, out: &mut dyn Write) -> io::Result<()> {
    let (title, unit) = title(kind);
    render(&stacks(profile, kind), title, unit, None, out).map(|_| ())
}

/// Writes the flamegraph of `stacks` (a profile's stacks by `kind`, as
/// [`stacks`] makes them) as an `<svg>` element for an HTML page: no script
/// (the page runs [`ZOOM_SCRIPT`]) and within `embed`'s bounds. Says how
/// many frames it drew.
pub(crate) fn embedded(
    stacks: &[(Vec<String>, u64)],
    kind: FoldedKind,
    embed: Embed,
    out: &mut dyn Write,
) -> io::Result<Shown> {
    let (title, unit) = title(kind);
    render(stacks, title, unit, Some(embed), out)
}

/// The picture's title and how it writes a weight.
fn title(kind: FoldedKind) -> (&'static str, fn(u64) -> String) {
    match kind {
        FoldedKind::Time => ("Time (self time of each scope path)", |v| Nanos(v).to_string()),
        FoldedKind::AllocBytes => ("Allocated bytes", |v| Bytes(v).to_string()),
        FoldedKind::AllocCount => ("Allocations", |v| format!("{v} allocations")),
        FoldedKind::Leaks => ("Bytes live at the end", |v| Bytes(v).to_string()),
    }
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
/// With `embed`, the frames, their names and their bytes are bounded and
/// there is no script.
fn render(
    stacks: &[(Vec<String>, u64)],
    title: &str,
    unit: fn(u64) -> String,
    embed: Option<Embed>,
    out: &mut dyn Write,
) -> io::Result<Shown> {
    let nodes = tree(stacks);
    let total = nodes[0].weight;
    let drawn = layout(&nodes);
    let wide_enough = drawn.len();
    let (drawn, names) = match embed {
        Some(e) => bounded(drawn, e, total.max(1), unit),
        None => {
            let names = drawn.iter().map(|d| d.name.to_owned()).collect();
            (drawn, names)
        }
    };
    let depth = drawn.iter().map(|d| d.level).max().unwrap_or(0);
    let height = PAD_TOP + ROW * (depth as f64 + 1.0) + 10.0;
    writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="flamegraph" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="monospace" font-size="11">"#
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
        r#"<text class="unzoom" x="10" y="18" visibility="hidden" cursor="pointer">Reset zoom</text>"#
    )?;
    writeln!(
        out,
        r#"<text class="search" x="{}" y="18" text-anchor="end" visibility="hidden" cursor="pointer">Search</text>"#,
        WIDTH - 10.0
    )?;
    writeln!(
        out,
        r#"<text class="matched" x="{}" y="{}" text-anchor="end"></text>"#,
        WIDTH - 10.0,
        height - 2.0
    )?;
    writeln!(out, r#"<g class="frames">"#)?;
    for (d, name) in drawn.iter().zip(&names) {
        let y = height - ROW * (d.level as f64 + 1.0) - 10.0;
        frame(out, d, name, total.max(1), y, unit)?;
    }
    writeln!(out, "</g>")?;
    if embed.is_none() {
        writeln!(
            out,
            "<script><![CDATA[(function () {{{ZOOM_SCRIPT}pulseFlamegraph(document.documentElement, true);\n}})();]]></script>"
        )?;
    }
    writeln!(out, "</svg>")?;
    Ok(Shown { drawn: drawn.len(), wide_enough })
}

/// The frames of `drawn` (the root first, each after its parent) that
/// `embed` keeps, in their order, with their names cut: the widest first
/// (a parent is at least as wide as its child, and comes first among
/// equals) while there is room for their number and their markup. What
/// is kept is a prefix of that order, so every frame kept has its parent.
fn bounded<'a>(
    drawn: Vec<Drawn<'a>>,
    embed: Embed,
    total: u64,
    unit: fn(u64) -> String,
) -> (Vec<Drawn<'a>>, Vec<String>) {
    let mut order: Vec<usize> = (0..drawn.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&drawn[a], &drawn[b]);
        b.w.total_cmp(&a.w).then(a.level.cmp(&b.level))
    });
    let mut names: Vec<Option<String>> = vec![None; drawn.len()];
    let (mut frames, mut bytes) = (0, 0);
    let mut scratch = Vec::new();
    for i in order {
        let d = &drawn[i];
        let name = shorten(Shorten::Name, d.name, embed.name_chars);
        // Drawn at y = 0: each of the two `y` written later is at most
        // `Y_DIGITS` characters longer. (Into a `Vec`, which cannot fail.)
        scratch.clear();
        let _ = frame(&mut scratch, d, &name, total, 0.0, unit);
        bytes += scratch.len() + 2 * Y_DIGITS;
        frames += 1;
        if frames > embed.frames || bytes > embed.bytes {
            break;
        }
        names[i] = Some(name);
    }
    drawn.into_iter().zip(names).filter_map(|(d, n)| n.map(|n| (d, n))).unzip()
}

/// What a row's `y` (`0.00` measured, at most `99999999.99` written: rows
/// are 17 px and a stack is at most a few thousand frames deep) may add.
const Y_DIGITS: usize = 8;

/// One frame, named `name` (its name, perhaps cut): a rectangle with a
/// tooltip and a label cut to fit, its colour that of its whole name.
fn frame(
    out: &mut dyn Write,
    d: &Drawn<'_>,
    name: &str,
    total: u64,
    y: f64,
    unit: fn(u64) -> String,
) -> io::Result<()> {
    let Drawn { weight, x, w, .. } = *d;
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
        colour(d.name)
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

/// The flamegraph's script, as a function `pulseFlamegraph(svg, keys)`
/// that brings one `<svg>` to life, finding its frames and controls by
/// class within it: a standalone SVG calls it on its root (with `keys`,
/// for Ctrl+F), the HTML report on each of its flamegraphs (without: the
/// browser's own find stays). Click a frame to zoom into it (its width
/// fills the graph, its label refitted); click the root ("all") or "Reset
/// zoom" to zoom out. "Search" (or Ctrl+F) asks for a regular expression
/// and highlights the frames whose names match, with the share of the
/// total they cover (each stretch of the graph counted once); an empty
/// search clears it. The controls stay hidden where scripts do not run.
/// Valid inside an HTML `<script>` element too: it holds no `</script` nor
/// `<!--`.
pub(crate) const ZOOM_SCRIPT: &str = r#"
function pulseFlamegraph(svg, keys) {
  var full = 1200, frames = svg.querySelectorAll('g.f');
  var unzoom = svg.querySelector('.unzoom'), search = svg.querySelector('.search');
  var matched = svg.querySelector('.matched');
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
  if (keys) {
    document.addEventListener('keydown', function (e) {
      if ((e.ctrlKey || e.metaKey) && e.key === 'f') { e.preventDefault(); ask(); }
    });
  }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn svg(stacks: &[(Vec<&str>, u64)]) -> String {
        let stacks: Vec<(Vec<String>, u64)> =
            stacks.iter().map(|(s, w)| (s.iter().map(|f| (*f).to_owned()).collect(), *w)).collect();
        let mut out = Vec::new();
        render(&stacks, "Allocations", |v| format!("{v} allocations"), None, &mut out).unwrap();
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

    /// Embedded, the frames kept are the widest, each with its parent,
    /// within the number and the bytes allowed; names cut.
    #[test]
    fn embedded_keeps_the_widest_frames_with_their_parents() {
        let long = "x".repeat(500);
        let stacks: Vec<(Vec<String>, u64)> = vec![
            (vec!["a".into(), "a1".into(), "a2".into()], 50),
            (vec!["b".into(), long.clone()], 30),
            (vec!["c".into()], 20),
        ];
        let unit: fn(u64) -> String = |v| v.to_string();
        let embed = |frames, bytes| Embed { frames, bytes, name_chars: 40 };
        let names = |e: Embed| {
            let mut out = Vec::new();
            let shown = render(&stacks, "t", unit, Some(e), &mut out).unwrap();
            let svg = String::from_utf8(out).unwrap();
            assert!(!svg.contains("<script"), "{svg}");
            (frames(&svg).0, shown, svg.len())
        };
        // All 7 frames: the root, a, a1, a2, b, the long one, c.
        let (all, shown, _) = names(embed(100, 1 << 20));
        assert_eq!(shown, Shown { drawn: 7, wide_enough: 7 });
        assert!(all.iter().all(|n| n.chars().count() <= 40), "{all:?}");
        // Four: the root, then a, a1 and a2 (50 each) before b (30).
        let (four, shown, _) = names(embed(4, 1 << 20));
        assert_eq!(four, ["all", "a", "a1", "a2"]);
        assert_eq!(shown, Shown { drawn: 4, wide_enough: 7 });
        // Within the bytes of about two frames' markup: the root and a,
        // or the root alone.
        let (_, _, one) = names(embed(1, 1 << 20));
        let (_, _, two) = names(embed(2, 1 << 20));
        let (kept, _, _) = names(embed(100, 2 * (two - one) + 4 * Y_DIGITS));
        assert!((1..=2).contains(&kept.len()) && kept[0] == "all", "{kept:?}");
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
