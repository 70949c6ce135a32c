//! `pulse leaks` as text: each location's blocks, verdict and stack.

use std::io::{self, Write};

use crate::model::history::Trend;
use crate::model::leaks::LeakReport;
use crate::write::fit::{shorten, wrap, Shorten, Width};
use crate::write::text::printable;
use crate::write::units::Bytes;

impl LeakReport {
    /// Writes the locations as text within `width`: each one's blocks,
    /// verdict and stack, the frames as [`printable`] shows them (each
    /// shortened in the middle to fit, see [`Shorten::Location`]), then a
    /// note on the locations too short to tell.
    pub fn render_width(&self, w: &mut dyn Write, width: Width) -> io::Result<()> {
        if self.cut {
            let text = "The file, or a run merged into it, was cut before its session ended (the program was killed, or is still writing it): what was live there was live at the cut, where the program may have been in the middle of its work.";
            for line in wrap("", text, 0, width) {
                writeln!(w, "{line}")?;
            }
            writeln!(w)?;
        }
        if let Some(interval) = self.sampled {
            let text = format!(
                "A sampled session (a stack for every {} allocated, on average): each line's blocks are those the sample took a stack of; the rest, of every line, are counted together without a stack.",
                Bytes(interval)
            );
            for line in wrap("", &text, 0, width) {
                writeln!(w, "{line}")?;
            }
            writeln!(w)?;
        }
        if self.leaks.is_empty() && self.more == 0 {
            match self.cut {
                true => writeln!(w, "no block was live at the cut")?,
                false => writeln!(w, "no block was live at the end of the session")?,
            }
        }
        for l in &self.leaks {
            let verdict = match (l.trend, l.at_cut) {
                (Trend::Growing, false) => "LEAK: still growing when the session ended",
                (Trend::Growing, true) => {
                    "still growing when the file was cut: a leak, or work under way"
                }
                (Trend::Flat, _) => "long-lived: flat since it filled (a cache or pool?)",
                (Trend::Unknown, false) => {
                    "too short to tell: live only near the end of the run (a leak or a cache)"
                }
                (Trend::Unknown, true) => {
                    "too short to tell: live only near the cut (a leak, a cache or work under way)"
                }
            };
            let blocks = if l.blocks == 1 {
                String::from("1 block")
            } else {
                format!("{} blocks", l.blocks)
            };
            let at = if l.at_cut { "at the cut" } else { "at end" };
            let about = match self.sampled.is_some() && l.estimated_bytes != l.bytes {
                true => format!(" (sampled: about {} in all)", Bytes(l.estimated_bytes)),
                false => String::new(),
            };
            let head = format!("{blocks}, {} live {at}{about} — {verdict}", Bytes(l.bytes));
            for line in wrap("", &head, 2, width) {
                writeln!(w, "{line}")?;
            }
            for frame in &l.stack {
                match width.columns() {
                    Some(n) => {
                        let short = shorten(Shorten::Location, frame, n.saturating_sub(4));
                        writeln!(w, "    {short}")?;
                    }
                    None => writeln!(w, "    {}", printable(frame))?,
                }
            }
            if self.sampled.is_some() && l.site == pulse_format::NO_SITE {
                let why = "(no stack captured: blocks of any line that the sample took no stack of; PULSE_ALLOC=full, or a smaller PULSE_SAMPLE_BYTES, finds their lines)";
                for line in wrap("    ", why, 4, width) {
                    writeln!(w, "{line}")?;
                }
            }
            if l.other_stacks > 0 {
                let stacks = if l.other_stacks == 1 { "stack reaches" } else { "stacks reach" };
                writeln!(
                    w,
                    "    (the stack with the most blocks; {} other {stacks} this line)",
                    l.other_stacks
                )?;
            }
            writeln!(w)?;
        }
        if self.more > 0 {
            let places = if self.more == 1 { "location" } else { "locations" };
            writeln!(w, "… {} more {places} with blocks live at the end (--top)", self.more)?;
        }
        if self.undecided > 0 {
            let n = if self.undecided == 1 {
                String::from("1 site's")
            } else {
                format!("{} sites'", self.undecided)
            };
            let end = if self.cut { "the end of the run or the cut" } else { "the end of the run" };
            let text = format!(
                "{n} blocks were live only near {end}: too short to tell a leak from a cache; run it longer, or pass --strict to count them as leaks"
            );
            for line in wrap("", &text, 2, width) {
                writeln!(w, "{line}")?;
            }
        }
        Ok(())
    }
}
