//! Names from a session made safe to show.
//!
//! Every string a session holds — function and file names, scope, category
//! and thread names, the program and its arguments, counter names,
//! metadata — was written by whoever made the file, who may not be the
//! person reading the report. A name can hold a newline (that would forge a
//! table row), a NUL, or a terminal escape sequence (that would clear the
//! screen, set the window's title or plant a link). [`printable`] is the
//! one function every text renderer passes such a string through; the SVG
//! writers go through [`xml`], and JSON meant for a terminal through
//! [`json_printable`].

use std::borrow::Cow;

/// Whether `c` is written as an escape rather than as itself: every
/// control character (C0, DEL and C1, such as U+009B, a one-character
/// CSI), the line and paragraph separators, the bidirectional controls
/// that reorder how a line reads, and the two noncharacters U+FFFE and
/// U+FFFF, which XML does not allow.
pub(crate) fn escaped(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{fffe}'
                | '\u{ffff}'
        )
}

/// `s` with every control, bidirectional and line-breaking character
/// (C0, DEL, C1, the bidirectional marks and overrides, line and
/// paragraph separators, U+FFFE and U+FFFF) written as `\u{…}`, its code
/// point in hexadecimal, as Rust writes it (ESC is `\u{1b}`, a newline
/// `\u{a}`): what is left cannot move the cursor, start a line or reach the
/// terminal as a command, and a table's columns are as wide as what it
/// shows. Backslashes are kept as they are, so a name that already holds
/// the text `\u{1b}` reads the same as one holding ESC: the escape is for
/// reading, not for decoding. Borrowed when there is nothing to escape.
///
/// ```
/// assert_eq!(pulse_analysis::printable("a\x1b[2Jb\nc"), "a\\u{1b}[2Jb\\u{a}c");
/// assert_eq!(pulse_analysis::printable("core::fmt::write"), "core::fmt::write");
/// ```
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(escaped) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if escaped(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` as XML character data or an attribute value (in double or single
/// quotes): [`printable`], then `&`, `<`, `>`, `"` and `'` as entities.
/// XML 1.0 forbids most control characters even as `&#x1b;`, so they must
/// not reach the document in any form; `printable` has already written
/// them as visible text.
pub(crate) fn xml(s: &str) -> Cow<'_, str> {
    let shown = printable(s);
    if !shown.contains(['&', '<', '>', '"', '\'']) {
        return shown;
    }
    let mut out = String::with_capacity(shown.len() + 16);
    for c in shown.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// JSON text with every character [`printable`] escapes written as a
/// `\uXXXX` escape. serde_json escapes the C0 controls but writes DEL, the C1
/// controls (U+009B is a terminal's CSI) and the others as they are, which
/// JSON allows but a terminal would act on. Outside its strings JSON text
/// is ASCII with no control character but whitespace, so each such
/// character is inside a string, where the escape stands for the same
/// character: the value read back is unchanged. Borrowed when there is
/// nothing to escape.
pub fn json_printable(json: &str) -> Cow<'_, str> {
    let outside = |c: char| escaped(c) && !matches!(c, '\n' | '\r' | '\t');
    if !json.chars().any(outside) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if outside(c) {
            // Every character `escaped` picks is in the Basic Multilingual
            // Plane: one `\uXXXX` each.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_written_as_visible_escapes() {
        assert_eq!(printable("\0\x07\x1b\x7f\u{9b}\u{202e}\u{fffe}"), {
            "\\u{0}\\u{7}\\u{1b}\\u{7f}\\u{9b}\\u{202e}\\u{fffe}"
        });
        assert_eq!(printable("a\r\nb\tc"), "a\\u{d}\\u{a}b\\u{9}c");
        assert!(matches!(printable("<impl [T; N]>::map é ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn xml_escapes_markup_after_the_controls() {
        assert_eq!(xml("</script>&\"'\x1b"), "&lt;/script&gt;&amp;&quot;&#39;\\u{1b}");
        assert!(matches!(xml("plain::name"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_keeps_its_value_and_loses_its_controls() {
        let name = "a\u{9b}31m\x7f\x1b\u{2028}b\n";
        let json = serde_json::to_string_pretty(&[name]).unwrap();
        assert!(json.contains('\u{9b}'), "serde_json writes C1 as it is: {json:?}");
        let safe = json_printable(&json);
        assert!(!safe.chars().any(|c| c.is_control() && c != '\n'), "{safe:?}");
        let back: Vec<String> = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, [name]);
    }
}
