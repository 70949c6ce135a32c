//! The report as one self-contained HTML page (`pulse report --html`).
//!
//! The page holds, in order: a header (the program and its arguments, the
//! session's duration, threads and allocation totals, pulse's own cost,
//! the report's warnings); every section of the text report as a table
//! (recommendations, memory and the heap at its peak, scopes, the call
//! tree, counters, threads and the blocks freed across them, what is live
//! at the end, allocation sites); the flamegraphs by time, by allocated
//! bytes and by bytes live at the end, inline; and the live heap over time
//! stacked by its top allocation sites.
//!
//! - **Tables**: click a column's header to sort by it (figures by their
//!   value, held in a `data-v` attribute, not by their text: `1.5 KiB`
//!   after `900 B`), again to reverse; type in the box above a table to
//!   keep the rows that hold the text.
//! - **Flamegraphs**: the SVG of `pulse flamegraph`, with its script run
//!   once by the page for each: click a frame to zoom into it (it fills
//!   the width), click the root or "Reset zoom" to zoom out.
//! - **Offline, one file**: the style sheet and the script are inline and
//!   the page names no other resource. A Content-Security-Policy lets the
//!   page's one script and one style sheet run, by their SHA-256 hashes,
//!   and nothing else: no inline event handler, no other script, no
//!   image but `data:`, font, frame, form or connection.
//! - **Names are text**: every name from the session goes through
//!   [`printable`](crate::printable) (control characters as `\u{…}`), then
//!   `& < > " '` as entities, in text and attributes alike; a name can
//!   neither open an element nor leave an attribute.
//!
//! ## Bounded size
//!
//! An HTML report of a large capture must not be one a browser cannot
//! open (memray's reach gigabytes). This page is at most
//! [`MAX_HTML_BYTES`] (8 MiB) whatever the session: each table shows at
//! most [`HTML_ROWS`] rows within 256 KiB, each flamegraph at most 2 000
//! frames (the widest: a frame is never drawn without its parent) within
//! 1 MiB, each name at most 200 characters (shortened in the middle, as
//! the text report does), the warnings at most 50. What is left out is
//! said where it is left out — "… N more rows not shown; see `pulse
//! report --json --top N`", "The 2000 widest of its 5300 frames are
//! drawn" — with the command that shows it all. On real sessions the page
//! is far smaller (the tour's: under 200 KB).

mod csp;
mod sections;
mod table;

use std::io::{self, Write};

use crate::model::profile::Profile;
use crate::model::report::Report;
use crate::model::stacks::{stacks, FoldedKind};
use crate::write::fit::{shorten, Shorten};
use crate::write::flamegraph::{self, Embed};
use crate::write::text::xml as escape;
use crate::write::units::{Bytes, CostFigures, Nanos};

/// The most rows an HTML report's table shows; the rest are counted, with
/// the command that lists them.
pub const HTML_ROWS: usize = 200;

/// The most bytes an HTML report takes, whatever the session: the sum of
/// its parts' bounds, with room to spare (see the module's docs).
pub const MAX_HTML_BYTES: usize = 8 << 20;

/// The most bytes of one table's markup.
const TABLE_BYTES: usize = 256 << 10;

/// The most characters of a name in a table, as shown (escapes included).
const NAME_CHARS: usize = 200;

/// The most characters of a sentence: a recommendation's evidence or fix,
/// a warning, the command line.
const PROSE_CHARS: usize = 1000;

/// The most warnings listed; a line counts the others.
const MAX_WARNINGS: usize = 50;

/// Each flamegraph's bounds.
const FLAMEGRAPH: Embed = Embed { frames: 2000, bytes: 1 << 20, name_chars: 120 };

/// The flamegraphs, each with its figure's id, title, `--kind` and what
/// it says when it has nothing to draw.
const FLAMEGRAPHS: [(FoldedKind, &str, &str, &str, &str); 3] = [
    (FoldedKind::Time, "flame-time", "By time", "time", "No scopes recorded."),
    (
        FoldedKind::AllocBytes,
        "flame-alloc",
        "By allocated bytes",
        "alloc-bytes",
        "No allocations recorded.",
    ),
    (
        FoldedKind::Leaks,
        "flame-leaks",
        "Bytes live at the end",
        "leaks",
        "Nothing was live at the end.",
    ),
];

/// The page's style sheet.
const STYLE: &str = include_str!("page.css");

/// The page's script (after the flamegraphs' [`flamegraph::ZOOM_SCRIPT`]):
/// sorting and filtering, and each flamegraph brought to life.
const SCRIPT: &str = include_str!("page.js");

/// Writes `report`, made from `profile`, as one self-contained HTML page,
/// with `profile`'s flamegraphs and heap timeline: see the module's docs.
/// The sections are those `report` has on (all, by default). At most
/// [`MAX_HTML_BYTES`] whatever the session.
///
/// ```no_run
/// let profile = pulse_analysis::Profile::load("run.pulse")?;
/// let report = pulse_analysis::report(&profile, &Default::default());
/// let mut out = std::io::BufWriter::new(std::fs::File::create("report.html")?);
/// pulse_analysis::html(&profile, &report, &mut out)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn html(profile: &Profile, report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut out = Counted { inner: out, bytes: 0 };
    let script = format!("{}{SCRIPT}", flamegraph::ZOOM_SCRIPT);
    head(report, &script, &mut out)?;
    header(report, &mut out)?;
    writeln!(out, "<main>")?;
    for section in sections::present(report) {
        sections::write(section, report, &mut out)?;
    }
    flamegraphs(profile, &mut out)?;
    timeline(profile, &mut out)?;
    writeln!(out, "</main>")?;
    writeln!(
        out,
        r#"<footer>Written by pulse {}: <code>pulse report --json</code> has every figure.</footer>"#,
        env!("CARGO_PKG_VERSION")
    )?;
    writeln!(out, "<script>{script}</script>")?;
    writeln!(out, "</body>\n</html>")?;
    debug_assert!(out.bytes <= MAX_HTML_BYTES, "{} bytes", out.bytes);
    Ok(())
}

/// A writer that counts what passes through it.
struct Counted<'a> {
    inner: &'a mut dyn Write,
    bytes: usize,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The program and its arguments, as one line of at most [`PROSE_CHARS`].
fn command(r: &Report) -> String {
    let mut cmd = r.program.clone();
    for a in &r.args {
        if cmd.len() > 4 * PROSE_CHARS {
            break;
        }
        cmd.push(' ');
        cmd.push_str(a);
    }
    shorten(Shorten::Text, &cmd, PROSE_CHARS)
}

/// The document's head, with its policy, title and style, and `<body>`.
fn head(r: &Report, script: &str, out: &mut dyn Write) -> io::Result<()> {
    let program = r.program.rsplit('/').next().unwrap_or_default();
    writeln!(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")?;
    writeln!(
        out,
        r#"<meta http-equiv="Content-Security-Policy" content="{}">"#,
        csp::policy(script, STYLE)
    )?;
    writeln!(out, r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#)?;
    writeln!(out, r#"<meta name="generator" content="pulse {}">"#, env!("CARGO_PKG_VERSION"))?;
    // No favicon to ask a server (or the file system) for.
    writeln!(out, r#"<link rel="icon" href="data:,">"#)?;
    writeln!(
        out,
        "<title>pulse report: {}</title>",
        escape(&shorten(Shorten::Path, program, NAME_CHARS))
    )?;
    writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>")
}

/// One figure of the header's grid: its name, its value, and a detail
/// under it (or nothing).
fn figure(out: &mut dyn Write, name: &str, value: &str, detail: &str) -> io::Result<()> {
    write!(out, "<div><dt>{}</dt><dd>{}", escape(name), escape(value))?;
    if !detail.is_empty() {
        write!(out, "<small>{}</small>", escape(detail))?;
    }
    writeln!(out, "</dd></div>")
}

/// The header: the command line, the figures, the view, pulse's own
/// cost, the warnings and the table of contents.
fn header(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "<header>")?;
    writeln!(out, r#"<h1>pulse report <code class="cmd">{}</code></h1>"#, escape(&command(r)))?;
    writeln!(out, r#"<dl class="totals">"#)?;
    let m = &r.memory;
    let blocks = |n: u64| if n == 1 { String::from("1 block") } else { format!("{n} blocks") };
    figure(out, "duration", &Nanos(r.duration_ns).to_string(), "")?;
    figure(out, "threads", &r.threads.to_string(), "")?;
    figure(out, "allocated", &Bytes(m.bytes_allocated).to_string(), &blocks(m.allocs))?;
    figure(out, "freed", &Bytes(m.bytes_freed).to_string(), &blocks(m.frees))?;
    figure(out, "reallocations", &m.reallocs.to_string(), "")?;
    if !m.counted_only {
        let at = format!("at {}, {}", Nanos(m.peak_at_ns), blocks(m.peak_blocks));
        figure(out, "peak live", &Bytes(m.peak_bytes).to_string(), &at)?;
    }
    let end = blocks(m.live_blocks_at_end);
    let at = if r.cut { "live at the cut" } else { "live at end" };
    figure(out, at, &Bytes(m.live_bytes_at_end).to_string(), &end)?;
    writeln!(out, "</dl>")?;
    selection(r, out)?;
    overhead(r, out)?;
    warnings(r, out)?;
    contents(r, out)?;
    writeln!(out, "</header>")
}

/// For a view of some threads, which.
fn selection(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    let Some(s) = &r.selection else { return Ok(()) };
    let mut kept = String::new();
    for (id, name) in s.all.iter().filter(|(id, _)| s.kept.contains(id)) {
        if kept.len() > 4 * PROSE_CHARS {
            break;
        }
        if !kept.is_empty() {
            kept.push_str(", ");
        }
        kept.push_str(format!("#{id} {name}").trim_end());
    }
    let text = format!(
        "Only {} ({} of {} threads): their scopes, and the blocks they allocated, wherever freed.",
        shorten(Shorten::Text, &kept, PROSE_CHARS),
        s.kept.len(),
        s.all.len()
    );
    writeln!(out, r#"<p class="note">{}</p>"#, escape(&text))
}

/// What pulse cost the program, and how that was estimated.
fn overhead(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    let Some(o) = &r.overhead else { return Ok(()) };
    let known = |v: Option<u64>, show: fn(u64) -> String| v.map_or_else(|| "?".into(), show);
    let text = format!(
        "pulse's own cost: ~{} on the program's threads ({}, estimated); {} waiting for ring room, {} waiting for the file to finish; the collector {} of CPU; {} allocations ({}) and {} of rings of its own.",
        Nanos(o.on_threads_ns),
        CostFigures(o),
        known(o.wait_ns, |n| Nanos(n).to_string()),
        known(o.finish_ns, |n| Nanos(n).to_string()),
        known(o.collector_ns, |n| Nanos(n).to_string()),
        known(o.own_allocs, |n| n.to_string()),
        known(o.own_bytes, |n| Bytes(n).to_string()),
        known(o.ring_bytes, |n| Bytes(n).to_string()),
    );
    writeln!(out, r#"<p class="note">{}</p>"#, escape(&text))
}

/// The report's warnings, at most [`MAX_WARNINGS`].
fn warnings(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    if r.warnings.is_empty() {
        return Ok(());
    }
    writeln!(out, r#"<ul class="warnings">"#)?;
    for w in r.warnings.iter().take(MAX_WARNINGS) {
        let text = shorten(Shorten::Text, w, PROSE_CHARS);
        writeln!(out, "<li><strong>warning:</strong> {}</li>", escape(&text))?;
    }
    if r.warnings.len() > MAX_WARNINGS {
        let more = r.warnings.len() - MAX_WARNINGS;
        writeln!(out, "<li>… {more} more warnings: see <code>pulse report</code></li>")?;
    }
    writeln!(out, "</ul>")
}

/// Links to the sections on the page.
fn contents(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    write!(out, "<nav>")?;
    let tables = sections::present(r).into_iter().map(|s| (s.id(), s.title()));
    let charts = [("flamegraphs", "Flamegraphs"), ("timeline", "Heap timeline")];
    for (id, title) in tables.chain(charts) {
        write!(out, r##"<a href="#{id}">{title}</a> "##)?;
    }
    writeln!(out, "</nav>")
}

/// The flamegraphs by time, allocated bytes and bytes live at the end,
/// each within [`FLAMEGRAPH`]'s bounds, saying so when it is cut.
fn flamegraphs(profile: &Profile, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, r#"<section id="flamegraphs">"#)?;
    writeln!(out, "<h2>Flamegraphs</h2>")?;
    writeln!(
        out,
        r#"<p class="note">Click a frame to zoom into it, the bottom frame (<q>all</q>) or <q>Reset zoom</q> to zoom out; <q>Search</q> highlights the frames whose names match a regular expression. Hover a frame for its figures.</p>"#
    )?;
    for (kind, id, title, flag, nothing) in FLAMEGRAPHS {
        writeln!(out, r#"<figure id="{id}">"#)?;
        writeln!(out, "<figcaption>{title}</figcaption>")?;
        let stacks = stacks(profile, kind);
        if stacks.is_empty() {
            writeln!(out, r#"<p class="note">{nothing}</p>"#)?;
        } else {
            let shown = flamegraph::embedded(&stacks, kind, FLAMEGRAPH, out)?;
            if shown.drawn < shown.wide_enough {
                writeln!(
                    out,
                    r#"<p class="more">The {} widest of its {} frames are drawn (at most {} here); see <code>pulse flamegraph --kind {flag}</code> for them all.</p>"#,
                    shown.drawn, shown.wide_enough, FLAMEGRAPH.frames
                )?;
            }
        }
        writeln!(out, "</figure>")?;
    }
    writeln!(out, "</section>")
}

/// The live heap over time, stacked by its top sites.
fn timeline(profile: &Profile, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, r#"<section id="timeline">"#)?;
    writeln!(out, "<h2>Heap timeline</h2>")?;
    writeln!(
        out,
        r#"<p class="note">The most bytes live in each of up to {} intervals, the peak marked; under the line, the heap at each interval's peak stacked by its top {} allocation sites. Hover a band for its site.</p>"#,
        crate::model::timeline::POINTS,
        crate::model::timeline::TOP_SITES
    )?;
    writeln!(out, r#"<figure id="heap-timeline">"#)?;
    crate::write::timeline_svg::embedded(profile, NAME_CHARS, out)?;
    writeln!(out, "</figure>")?;
    writeln!(out, "</section>")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The most tables a page has: one per section, two for memory and for
    /// threads.
    const TABLES: usize = 10;

    /// A bound on the timeline chart: 512 points in 9 bands and a line,
    /// about 30 bytes a point, and 9 names of [`NAME_CHARS`] twice.
    const TIMELINE_BYTES: usize = 512 << 10;

    /// A bound on the header: the command line and each warning at most
    /// [`PROSE_CHARS`] characters of up to 6 bytes escaped, and the figures.
    const HEADER_BYTES: usize = (MAX_WARNINGS + 4) * (6 * PROSE_CHARS + 64) + (8 << 10);

    /// The parts' bounds add up to less than the page's.
    #[test]
    fn the_parts_fit_the_whole() {
        let assets = STYLE.len() + 2 * (SCRIPT.len() + flamegraph::ZOOM_SCRIPT.len()) + 4096;
        let flamegraphs = FLAMEGRAPHS.len() * (FLAMEGRAPH.bytes + 4096);
        let tables = TABLES * (TABLE_BYTES + 4096);
        let sum = assets + flamegraphs + tables + TIMELINE_BYTES + HEADER_BYTES;
        assert!(sum <= MAX_HTML_BYTES, "{sum} > {MAX_HTML_BYTES}");
    }

    /// The script and the style sheet can sit between their tags.
    #[test]
    fn the_assets_do_not_close_their_elements() {
        for text in [SCRIPT, flamegraph::ZOOM_SCRIPT, STYLE] {
            let lower = text.to_ascii_lowercase();
            assert!(!lower.contains("</script") && !lower.contains("</style"));
            assert!(!lower.contains("<!--"));
        }
    }
}
