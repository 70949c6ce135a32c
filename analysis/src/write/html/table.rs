//! A sortable, filterable HTML table of bounded size.
//!
//! A [`Table`] renders its rows as they come and keeps at most
//! [`HTML_ROWS`] of them within [`TABLE_BYTES`]; the rows past either bound
//! are counted, not rendered, and the table ends with a line saying how
//! many are not shown and which command lists them. A numeric cell holds
//! its raw value in `data-v`, which the page's script sorts by (not the
//! text, `1.5 KiB` or `300 ns`); a text cell sorts by its text, or by its
//! `data-v` where it has one (a call tree's name, without its indentation).

use std::fmt::Display;
use std::io::{self, Write};

use crate::write::fit::{shorten, Shorten};
use crate::write::text::xml as escape;
use crate::write::units::{Bytes, Nanos};

use super::{HTML_ROWS, NAME_CHARS, PROSE_CHARS, TABLE_BYTES};

/// How a column sorts and aligns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sort {
    /// By text, left-aligned.
    Text,
    /// By number, right-aligned: figures.
    Number,
    /// By number, left-aligned: a rank shown as a word (a severity).
    Rank,
}

/// One cell, rendered: its escaped content, and its sort key if it has one.
#[derive(Debug, Clone)]
pub(super) struct Cell {
    html: String,
    key: Option<String>,
}

impl Cell {
    /// A name from the session (a function, scope or thread name), as
    /// [`Shorten::Name`] shortens it to [`NAME_CHARS`].
    pub(super) fn name(s: &str) -> Cell {
        Cell::shortened(Shorten::Name, s, NAME_CHARS)
    }

    /// A `file:line`, as [`Shorten::Path`] shortens it.
    pub(super) fn path(s: &str) -> Cell {
        Cell::shortened(Shorten::Path, s, NAME_CHARS)
    }

    /// A `function (file:line)`, as [`Shorten::Location`] shortens it.
    pub(super) fn location(s: &str) -> Cell {
        Cell::shortened(Shorten::Location, s, NAME_CHARS)
    }

    /// A sentence (evidence, advice), cut in the middle past [`PROSE_CHARS`].
    pub(super) fn prose(s: &str) -> Cell {
        Cell::shortened(Shorten::Text, s, PROSE_CHARS)
    }

    fn shortened(how: Shorten, s: &str, chars: usize) -> Cell {
        Cell { html: breakable(&escape(&shorten(how, s, chars))), key: None }
    }

    /// A name indented `depth` levels (a call tree's row), sorted by the
    /// name alone.
    pub(super) fn indented(depth: usize, name: &str) -> Cell {
        let shown = escape(&shorten(Shorten::Name, name, NAME_CHARS)).into_owned();
        let indent = "· ".repeat(depth.min(64));
        let html = format!(r#"<span class="indent">{indent}</span>{}"#, breakable(&shown));
        Cell { html, key: Some(shown) }
    }

    /// Lines of names, each shortened as [`Cell::name`]: at most `most`,
    /// then a line counting the others.
    pub(super) fn lines<'a>(lines: impl ExactSizeIterator<Item = &'a String>, most: usize) -> Cell {
        let n = lines.len();
        let mut html: Vec<String> = lines.take(most).map(|l| Cell::name(l).html).collect();
        if n > most {
            html.push(format!("… {} more", n - most));
        }
        Cell { html: html.join("<br>"), key: None }
    }

    /// A figure: `value`, shown as `shown`.
    pub(super) fn number(value: impl Into<f64>, shown: impl Display) -> Cell {
        let v: f64 = value.into();
        let key = v.is_finite().then(|| v.to_string());
        Cell { html: escape(&shown.to_string()).into_owned(), key }
    }

    /// A whole number.
    pub(super) fn count(v: u64) -> Cell {
        Cell { html: v.to_string(), key: Some(v.to_string()) }
    }

    /// Nanoseconds, shown as a duration.
    pub(super) fn ns(v: u64) -> Cell {
        Cell { html: escape(&Nanos(v).to_string()).into_owned(), key: Some(v.to_string()) }
    }

    /// Bytes, shown in binary units.
    pub(super) fn bytes(v: u64) -> Cell {
        Cell { html: Bytes(v).to_string(), key: Some(v.to_string()) }
    }

    /// A share (0..1), shown as a percentage.
    pub(super) fn share(v: f64) -> Cell {
        Cell::number(v, format!("{:.1} %", 100.0 * v))
    }

    /// A rank shown as `word`, sorted by `rank`.
    pub(super) fn rank(rank: u64, word: &str) -> Cell {
        Cell { html: escape(word).into_owned(), key: Some(rank.to_string()) }
    }

    /// Text of the report's own (a verdict, a figure with no sort key):
    /// escaped all the same.
    pub(super) fn text(s: &str) -> Cell {
        Cell { html: escape(s).into_owned(), key: None }
    }

    /// The cell's content, as markup (escaped).
    pub(super) fn html(&self) -> &str {
        &self.html
    }

    /// Nothing to show (a figure that does not apply): sorts below every
    /// figure.
    pub(super) fn empty() -> Cell {
        Cell { html: String::new(), key: None }
    }
}

/// Escaped text with a line break allowed after each `::` and `/`: a long
/// path or function name wraps at its segments rather than widening its
/// column or breaking inside a word (`<wbr>` adds no text: what the
/// filter reads is the name).
fn breakable(escaped: &str) -> String {
    escaped.replace("::", "::<wbr>").replace('/', "/<wbr>")
}

/// A table being filled: its head and the rows that fit, rendered.
#[derive(Debug)]
pub(super) struct Table {
    id: &'static str,
    label: String,
    sorts: Vec<Sort>,
    head: String,
    body: String,
    shown: usize,
    /// Rows past this page's bounds.
    left_out: usize,
    /// The report limits this table to `--top` rows.
    by_top: bool,
    /// Rows the report itself left out (by its `--top`).
    omitted: usize,
    /// The command that lists every row.
    lister: &'static str,
}

impl Table {
    /// A table with the element id `id` (one of the page's own, never a
    /// name from the session), described as `label` for the filter box,
    /// and these columns: each a header and how it sorts.
    pub(super) fn new(id: &'static str, label: &str, columns: &[(&str, Sort)]) -> Table {
        let mut head = String::from("<tr>");
        for (name, sort) in columns {
            let class = match sort {
                Sort::Text => "",
                Sort::Number => r#" class="n""#,
                Sort::Rank => r#" class="k""#,
            };
            head.push_str(&format!(
                r#"<th{class} tabindex="0" title="Sort by this column">{}</th>"#,
                escape(&shorten(Shorten::Name, name, NAME_CHARS))
            ));
        }
        head.push_str("</tr>");
        Table {
            id,
            label: label.to_owned(),
            sorts: columns.iter().map(|(_, s)| *s).collect(),
            head,
            body: String::new(),
            shown: 0,
            left_out: 0,
            by_top: false,
            omitted: 0,
            lister: "pulse report --json",
        }
    }

    /// The report limits this table to `--top` rows, and left `omitted`
    /// out: they are counted with the rows this page leaves out, and the
    /// command to list them asks for them all.
    pub(super) fn by_top(mut self, omitted: usize) -> Table {
        self.by_top = true;
        self.omitted = omitted;
        self
    }

    /// The command that lists every row, if not `pulse report --json`.
    pub(super) fn lister(mut self, command: &'static str) -> Table {
        self.lister = command;
        self
    }

    /// Whether another row would be left out.
    fn full(&self) -> bool {
        self.shown >= HTML_ROWS || self.head.len() + self.body.len() >= TABLE_BYTES
    }

    /// Adds a row of `cells`, one a column; left out (and counted) when the
    /// table is full or the row would take it past [`TABLE_BYTES`].
    pub(super) fn row(&mut self, cells: Vec<Cell>) {
        if self.full() {
            self.left_out += 1;
            return;
        }
        let mut tr = String::from("<tr>");
        for (cell, sort) in cells.into_iter().zip(&self.sorts) {
            let class = if *sort == Sort::Number { r#" class="n""# } else { "" };
            match cell.key {
                Some(k) => tr.push_str(&format!(
                    r#"<td{class} data-v="{}">{}</td>"#,
                    escape(&k),
                    cell.html
                )),
                None => tr.push_str(&format!("<td{class}>{}</td>", cell.html)),
            }
        }
        tr.push_str("</tr>\n");
        if self.head.len() + self.body.len() + tr.len() > TABLE_BYTES {
            self.left_out += 1;
            return;
        }
        self.body.push_str(&tr);
        self.shown += 1;
    }

    /// Adds a row for each of `items`, its cells made by `cells`; once the
    /// table is full the rest are counted without making their cells.
    pub(super) fn rows<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        mut cells: impl FnMut(T) -> Vec<Cell>,
    ) {
        let mut items = items.into_iter();
        for item in items.by_ref() {
            if self.full() {
                self.left_out += 1;
                break;
            }
            self.row(cells(item));
        }
        self.left_out += items.count();
    }

    /// Writes the table: a filter box (shown by the script), the table, a
    /// line for when the filter hides every row, and one saying how many
    /// rows are not shown, if any.
    pub(super) fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, r#"<div class="tbl">"#)?;
        writeln!(
            out,
            r#"<input type="search" class="filter" placeholder="Filter rows" aria-label="Filter {}" hidden>"#,
            escape(&self.label)
        )?;
        writeln!(out, r#"<div class="scroll"><table class="sortable" id="{}">"#, self.id)?;
        writeln!(out, "<thead>{}</thead>", self.head)?;
        write!(out, "<tbody>\n{}</tbody></table></div>\n", self.body)?;
        writeln!(out, r#"<p class="empty" hidden>No row holds that text.</p>"#)?;
        let more = self.left_out + self.omitted;
        if more > 0 {
            let top =
                if self.by_top { format!(" --top {}", self.shown + more) } else { String::new() };
            writeln!(
                out,
                r#"<p class="more">… {more} more row{} not shown; see <code>{}{top}</code></p>"#,
                if more == 1 { "" } else { "s" },
                self.lister
            )?;
        }
        writeln!(out, "</div>")
    }
}
