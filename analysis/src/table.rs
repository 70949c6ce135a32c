//! Aligned text tables.
//!
//! Every cell and heading goes through [`printable`] as it is added: a
//! session's names are shown with their control characters escaped, so a
//! newline in a name cannot start a row of its own nor an escape sequence
//! reach the terminal, and columns are as wide as what is shown.

use std::io::{self, Write};

use crate::text::printable;

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// A table of text cells, printed with every column as wide as its widest
/// cell, each cell as [`printable`] shows it.
#[derive(Debug)]
pub(crate) struct Table {
    header: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[(&str, Align)]) -> Self {
        Table {
            header: header.iter().map(|(h, a)| (printable(h).into_owned(), *a)).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, mut cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len());
        for cell in &mut cells {
            if let std::borrow::Cow::Owned(shown) = printable(cell) {
                *cell = shown;
            }
        }
        self.rows.push(cells);
    }

    /// Writes the table, each line indented by `indent` spaces.
    pub(crate) fn write(&self, w: &mut dyn Write, indent: usize) -> io::Result<()> {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                let cells = self.rows.iter().map(|r| r[i].chars().count());
                cells.chain([self.header[i].0.chars().count()]).max().unwrap_or(0)
            })
            .collect();
        let line = |w: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
            let mut out = " ".repeat(indent);
            for (i, c) in cells.enumerate() {
                if i > 0 {
                    out.push_str("  ");
                }
                let pad = widths[i].saturating_sub(c.chars().count());
                match self.header[i].1 {
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
        line(w, &mut self.header.iter().map(|h| h.0.as_str()))?;
        for r in &self.rows {
            line(w, &mut r.iter().map(String::as_str))?;
        }
        Ok(())
    }
}
