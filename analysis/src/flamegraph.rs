//! Flamegraphs as SVG: by time (the scope call tree), by allocated bytes or
//! allocation count (the allocation stacks), or by bytes live at the end.
//!
//! Frames are laid out from the same folded stacks `pulse export --format
//! folded` writes: each stack's weight widens every frame on its path.
//! Widths are proportional; a frame's colour is hashed from its name, so the
//! same function has the same colour in every graph; each frame carries a
//! tooltip with its figures; labels are cut to fit. A small script lets a
//! click zoom into a frame (and a click on the root zoom out); without
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

/// A node of the merged stack tree.
#[derive(Debug, Default)]
struct Node {
    weight: u64,
    children: BTreeMap<String, Node>,
}

/// Writes the flamegraph of `profile` by `kind` as SVG.
pub fn flamegraph(profile: &Profile, kind: FoldedKind, out: &mut dyn Write) -> io::Result<()> {
    let mut lines = Vec::new();
    folded(profile, kind, &mut lines)?;
    let mut root = Node::default();
    for line in String::from_utf8_lossy(&lines).lines() {
        let Some((stack, weight)) = line.rsplit_once(' ') else { continue };
        let Ok(weight) = weight.parse::<u64>() else { continue };
        root.weight = root.weight.saturating_add(weight);
        let mut node = &mut root;
        for frame in stack.split(';') {
            node = node.children.entry(frame.to_owned()).or_default();
            node.weight = node.weight.saturating_add(weight);
        }
    }
    let (title, unit): (&str, fn(u64) -> String) = match kind {
        FoldedKind::Time => ("Time (self time of each scope path)", |v| Nanos(v).to_string()),
        FoldedKind::AllocBytes => ("Allocated bytes", |v| Bytes(v).to_string()),
        FoldedKind::AllocCount => ("Allocations", |v| format!("{v} allocations")),
        FoldedKind::Leaks => ("Bytes live at the end", |v| Bytes(v).to_string()),
    };
    let depth = max_depth(&root);
    let height = PAD_TOP + ROW * (depth as f64 + 1.0) + 10.0;
    let mut frames = Group::new().set("id", "frames");
    let total = root.weight.max(1);
    frames = frames.add(frame("all", total, total, 0.0, WIDTH, height - ROW - 10.0, unit));
    let mut stack: Vec<(&Node, f64, usize)> = vec![(&root, 0.0, 1)];
    while let Some((node, x, level)) = stack.pop() {
        let mut cx = x;
        for (name, child) in &node.children {
            let w = WIDTH * child.weight as f64 / total as f64;
            if w >= MIN_WIDTH {
                let y = height - ROW * (level as f64 + 1.0) - 10.0;
                frames = frames.add(frame(name, child.weight, total, cx, w, y, unit));
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
                .add(Text::new(format!("pulse: {title} — {}", unit(root.weight)))),
        )
        .add(frames)
        .add(Script::new(ZOOM_SCRIPT));
    write!(out, "{doc}")?;
    writeln!(out)
}

fn max_depth(n: &Node) -> usize {
    n.children.values().map(|c| 1 + max_depth(c)).max().unwrap_or(0)
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

/// Click a frame to zoom into it (its width fills the graph); click the
/// root ("all") to zoom out. Frames outside the zoomed one are hidden.
const ZOOM_SCRIPT: &str = r#"
document.querySelectorAll('g.f').forEach(function (g) {
  g.style.cursor = 'pointer';
  g.addEventListener('click', function () {
    var x0 = parseFloat(g.dataset.x), w0 = parseFloat(g.dataset.w), full = 1200;
    document.querySelectorAll('g.f').forEach(function (o) {
      var x = parseFloat(o.dataset.x), w = parseFloat(o.dataset.w);
      var nx = (x - x0) * full / w0, nw = w * full / w0;
      var visible = nx + nw > 0.01 && nx < full - 0.01;
      o.style.display = visible ? '' : 'none';
      var r = o.querySelector('rect'), t = o.querySelector('text');
      r.setAttribute('x', Math.max(nx, 0)); r.setAttribute('width', Math.max(Math.min(nw, full) - 0.5, 0.1));
      t.setAttribute('x', Math.max(nx, 0) + 3);
    });
  });
});
"#;
