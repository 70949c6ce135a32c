//! Folded stacks (`frame;frame;frame weight` per line, outermost first),
//! which `inferno-flamegraph` and Brendan Gregg's `flamegraph.pl` turn
//! into flamegraphs: by time (the call tree of scopes, self time in
//! nanoseconds), by allocated bytes, by allocation count, or by bytes
//! still live at the end (the allocation stacks, user frames only).

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::model::profile::Profile;
use crate::model::stacks::{stacks, FoldedKind};

/// What stands for a `;` inside a frame's name in folded stacks: U+FF1B
/// FULLWIDTH SEMICOLON, which reads as one but does not split the frame.
pub const FOLDED_SEMICOLON: char = '\u{ff1b}';

/// A frame's name as one field of a folded line. The format has no escape:
/// `;` separates frames and a line ends the stack, so a `;` in a name
/// (`core::array::<impl [T; N]>::map`) is written as [`FOLDED_SEMICOLON`],
/// and control characters, newlines included, as [`crate::printable`]
/// writes them.
fn folded_frame(name: &str) -> String {
    crate::write::text::printable(name).replace(';', &FOLDED_SEMICOLON.to_string())
}

/// Writes `profile` as folded stacks, one `frame;frame weight` line per
/// distinct stack, outermost frame first, sorted, zero weights left out.
/// Each frame is one name whole (see [`FOLDED_SEMICOLON`]): a consumer
/// splitting at `;` finds the frames the stack holds.
pub fn folded(profile: &Profile, kind: FoldedKind, out: &mut dyn Write) -> io::Result<()> {
    let mut lines: BTreeMap<String, u64> = BTreeMap::new();
    for (stack, weight) in stacks(profile, kind) {
        let frames: Vec<String> = stack.iter().map(|f| folded_frame(f)).collect();
        // Two names that differ only in what the format cannot hold are
        // one line.
        let e = lines.entry(frames.join(";")).or_default();
        *e = e.saturating_add(weight);
    }
    for (stack, weight) in lines {
        writeln!(out, "{stack} {weight}")?;
    }
    Ok(())
}
