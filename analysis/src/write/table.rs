//! Aligned text tables.
//!
//! Every cell and heading goes through [`printable`] as it is added: a
//! session's names are shown with their control characters escaped, so a
//! newline in a name cannot start a row of its own nor an escape sequence
//! reach the terminal, and columns are as wide as what is shown.
//!
//! Fitted to a width ([`Table::write_fit`]), a table shows its columns
//! that are always shown and then its optional ones, most important first,
//! while they fit with each name column at its least comfortable width;
//! the name columns then share the room left, each shortened as its
//! [`Shorten`] says. The caller says which columns were left out
//! ([`crate::write::fit::left_out`]).

use std::io::{self, Write};

use crate::write::fit::{shorten, Shorten, Width};
use crate::write::text::printable;

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

#[derive(Debug)]
struct Column {
    header: String,
    align: Align,
    /// How its cells shrink, and the width it keeps while another column
    /// could be dropped instead.
    shrink: Option<(Shorten, usize)>,
    /// Its place among the optional columns, most important first; `None`
    /// for a column that is always shown.
    rank: Option<usize>,
}

/// A table of text cells, printed with every column as wide as its widest
/// cell, each cell as [`printable`] shows it.
#[derive(Debug)]
pub(crate) struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[(&str, Align)]) -> Self {
        Table {
            columns: header
                .iter()
                .map(|(h, a)| Column {
                    header: printable(h).into_owned(),
                    align: *a,
                    shrink: None,
                    rank: None,
                })
                .collect(),
            rows: Vec::new(),
        }
    }

    /// The index of the first column headed `header`.
    pub(crate) fn col(&self, header: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.header == header)
    }

    /// Column `i`'s cells are shortened as `how` when the table is fitted,
    /// down to `min` characters before another column is left out for
    /// them (and below it only when nothing else can go).
    pub(crate) fn shrink(&mut self, i: usize, how: Shorten, min: usize) {
        if let Some(c) = self.columns.get_mut(i) {
            c.shrink = Some((how, min));
        }
    }

    /// [`Table::shrink`] for the column headed `header`.
    pub(crate) fn shrink_named(&mut self, header: &str, how: Shorten, min: usize) {
        if let Some(i) = self.col(header) {
            self.shrink(i, how, min);
        }
    }

    /// These columns may be left out when the table is fitted, the most
    /// important first; the others are always shown.
    pub(crate) fn optional(&mut self, columns: &[usize]) {
        for (rank, &i) in columns.iter().enumerate() {
            if let Some(c) = self.columns.get_mut(i) {
                if c.rank.is_none() {
                    c.rank = Some(rank);
                }
            }
        }
    }

    /// [`Table::optional`] by header; headers the table does not have are
    /// passed over.
    pub(crate) fn optional_named(&mut self, headers: &[&str]) {
        let columns: Vec<usize> = headers.iter().filter_map(|h| self.col(h)).collect();
        self.optional(&columns);
    }

    pub(crate) fn row(&mut self, mut cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        for cell in &mut cells {
            if let std::borrow::Cow::Owned(shown) = printable(cell) {
                *cell = shown;
            }
        }
        self.rows.push(cells);
    }

    /// Writes the table within `width` (whole for `Width::Wide`), each line
    /// indented by `indent` spaces; returns the headers of the columns left
    /// out.
    pub(crate) fn write_fit(
        &self,
        w: &mut dyn Write,
        indent: usize,
        width: Width,
    ) -> io::Result<Vec<String>> {
        let natural: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                let cells = self.rows.iter().map(|r| r[i].chars().count());
                cells.chain([self.columns[i].header.chars().count()]).max().unwrap_or(0)
            })
            .collect();
        let (shown, widths) = match width {
            Width::Fit(limit) => self.fit(&natural, indent, limit),
            Width::Wide => ((0..self.columns.len()).collect(), natural.clone()),
        };
        let mut left_out = vec![true; self.columns.len()];
        for &i in &shown {
            left_out[i] = false;
        }
        let line = |w: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
            let mut out = " ".repeat(indent);
            for (k, (i, c)) in shown.iter().zip(cells).enumerate() {
                if k > 0 {
                    out.push_str("  ");
                }
                let col = &self.columns[*i];
                let short;
                let c = match col.shrink {
                    Some((how, _)) if c.chars().count() > widths[*i] => {
                        short = shorten(how, c, widths[*i]);
                        short.as_str()
                    }
                    _ => c,
                };
                let pad = widths[*i].saturating_sub(c.chars().count());
                match col.align {
                    Align::Left => {
                        out.push_str(c);
                        out.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        out.extend(std::iter::repeat_n(' ', pad));
                        out.push_str(c);
                    }
                }
            }
            writeln!(w, "{}", out.trim_end())
        };
        line(w, &mut shown.iter().map(|&i| self.columns[i].header.as_str()))?;
        for r in &self.rows {
            line(w, &mut shown.iter().map(|&i| r[i].as_str()))?;
        }
        let dropped = (0..self.columns.len())
            .filter(|&i| left_out[i])
            .map(|i| self.columns[i].header.clone())
            .collect();
        Ok(dropped)
    }

    /// The columns to show within `limit` and every column's width.
    fn fit(&self, natural: &[usize], indent: usize, limit: usize) -> (Vec<usize>, Vec<usize>) {
        let cols = &self.columns;
        let least = |i: usize| match cols[i].shrink {
            Some((_, min)) => natural[i].min(min.max(cols[i].header.chars().count())),
            None => natural[i],
        };
        let total = |set: &[usize], w: &dyn Fn(usize) -> usize| -> usize {
            indent + set.iter().map(|&i| w(i)).sum::<usize>() + 2 * set.len().saturating_sub(1)
        };
        let all: Vec<usize> = (0..cols.len()).collect();
        if total(&all, &|i| natural[i]) <= limit {
            return (all, natural.to_vec());
        }
        // Those always shown, then the optional ones that still fit, most
        // important first.
        let mut shown: Vec<usize> =
            all.iter().copied().filter(|&i| cols[i].rank.is_none()).collect();
        let mut optional: Vec<usize> =
            all.iter().copied().filter(|&i| cols[i].rank.is_some()).collect();
        optional.sort_by_key(|&i| cols[i].rank);
        let mut used = total(&shown, &least);
        for i in optional {
            let more = least(i) + if shown.is_empty() { 0 } else { 2 };
            if used + more <= limit {
                used += more;
                shown.push(i);
            }
        }
        shown.sort_unstable();
        // The name columns share what the others leave.
        let mut widths = natural.to_vec();
        let names: Vec<usize> =
            shown.iter().copied().filter(|&i| cols[i].shrink.is_some()).collect();
        let fixed = total(&shown, &|i| if cols[i].shrink.is_some() { 0 } else { natural[i] });
        let room = limit.saturating_sub(fixed);
        if names.iter().map(|&i| natural[i]).sum::<usize>() > room {
            for (i, w) in self.share(&names, natural, &least, room) {
                widths[i] = w;
            }
        }
        (shown, widths)
    }

    /// The widths of the name columns `names` within `room` characters in
    /// all: each from its least comfortable width, then widened where that
    /// shows the most cells whole for the room it takes, then what is left
    /// shared among those still cut. Where even their least widths do not
    /// fit, each is as wide as a common cap (the longest cut first).
    fn share(
        &self,
        names: &[usize],
        natural: &[usize],
        least: &dyn Fn(usize) -> usize,
        room: usize,
    ) -> Vec<(usize, usize)> {
        // Each column's cell lengths, header included, shortest first.
        let lengths: Vec<Vec<usize>> = names
            .iter()
            .map(|&i| {
                let mut v: Vec<usize> = self.rows.iter().map(|r| r[i].chars().count()).collect();
                v.push(self.columns[i].header.chars().count());
                v.sort_unstable();
                v
            })
            .collect();
        let mut widths: Vec<usize> = names.iter().map(|&i| least(i)).collect();
        if widths.iter().sum::<usize>() > room {
            let fits =
                |cap: usize| names.iter().map(|&i| natural[i].min(cap)).sum::<usize>() <= room;
            let (mut lo, mut hi) = (1, names.iter().map(|&i| natural[i]).max().unwrap_or(1));
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                if fits(mid) {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            return names.iter().map(|&i| (i, natural[i].min(lo).max(1))).collect();
        }
        let mut left = room - widths.iter().sum::<usize>();
        // Widen where it shows the most cells whole per character spent.
        loop {
            let mut best: Option<(f64, usize, usize)> = None;
            for (k, lens) in lengths.iter().enumerate() {
                let now = widths[k];
                let cut = lens.partition_point(|&l| l <= now);
                for (j, &len) in lens.iter().enumerate().skip(cut) {
                    let cost = len - now;
                    if cost > left {
                        break;
                    }
                    // Cells up to this length come whole.
                    if lens.get(j + 1) == Some(&len) {
                        continue;
                    }
                    let gain = (j + 1 - cut) as f64 / cost as f64;
                    if best.is_none_or(|(g, _, _)| gain > g) {
                        best = Some((gain, k, len));
                    }
                }
            }
            let Some((_, k, len)) = best else { break };
            left -= len - widths[k];
            widths[k] = len;
        }
        // The rest to the columns still cut, a character at a time.
        while left > 0 {
            let mut gave = false;
            for (k, &i) in names.iter().enumerate() {
                if left > 0 && widths[k] < natural[i] {
                    widths[k] += 1;
                    left -= 1;
                    gave = true;
                }
            }
            if !gave {
                break;
            }
        }
        names.iter().copied().zip(widths).collect()
    }
}
