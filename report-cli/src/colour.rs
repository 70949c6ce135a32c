//! Colour for a terminal: a writer that colours the words a reader looks
//! for first — severities, verdicts, warnings — line by line. The library
//! renders plain text; colour is the terminal's business alone.

use std::io::{self, Write};

const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[33m";
const GREEN: &str = "\x1b[32m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// The words and their colours, longest first where one contains another.
const WORDS: &[(&str, &str)] = &[
    ("[critical]", RED),
    ("[high]", YELLOW),
    ("REGRESSION", RED),
    ("LEAK", RED),
    ("improvement", GREEN),
    ("warning:", YELLOW),
    ("Recommendations", BOLD),
];

/// Colours whole lines as they complete; writes the rest on flush.
pub(crate) struct Colour<W: Write> {
    inner: W,
    line: Vec<u8>,
}

impl<W: Write> Colour<W> {
    pub(crate) fn new(inner: W) -> Self {
        Colour { inner, line: Vec::new() }
    }

    fn emit(&mut self) -> io::Result<()> {
        let text = String::from_utf8_lossy(&self.line).into_owned();
        let mut out = text;
        for (word, code) in WORDS {
            if out.contains(word) {
                out = out.replacen(word, &format!("{code}{word}{RESET}"), 1);
            }
        }
        self.inner.write_all(out.as_bytes())?;
        self.line.clear();
        Ok(())
    }
}

impl<W: Write> Write for Colour<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for &b in buf {
            self.line.push(b);
            if b == b'\n' {
                self.emit()?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.line.is_empty() {
            self.emit()?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_coloured_and_lines_kept_whole() {
        let mut c = Colour::new(Vec::new());
        write!(c, "  1. [crit").unwrap();
        writeln!(c, "ical] app::f").unwrap();
        write!(c, "LEAK tail").unwrap();
        c.flush().unwrap();
        let out = String::from_utf8(c.inner).unwrap();
        assert_eq!(out, "  1. \x1b[1;31m[critical]\x1b[0m app::f\n\x1b[1;31mLEAK\x1b[0m tail");
    }
}
