//! JSON for any of the model's values.

use std::io::{self, Write};

use crate::write::text::json_printable;

/// Writes `value` as pretty JSON and a newline, with the control characters
/// serde_json leaves in strings (DEL, C1) escaped too: it may be read on a
/// terminal. The schemas are in `docs/schema/`.
pub fn write_json(value: &impl serde::Serialize, out: &mut dyn Write) -> io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    writeln!(out, "{}", json_printable(&text))
}
