//! Text that fits a terminal: long names shortened in the middle, free
//! text wrapped at word boundaries.
//!
//! Every function here works on text as [`printable`] shows it (each one
//! escapes what it is given first: escaping twice changes nothing), and
//! measures it in characters. A cut never falls inside an escape such as
//! `\u{1b}`: an escape is kept whole or left out whole.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::write::text::printable;

/// The columns text output is fitted to unless told otherwise: what the
/// `pulse` command uses when its output is not a terminal.
pub const DEFAULT_WIDTH: usize = 100;

/// How wide a text rendering may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// Every line within this many columns (characters): tables show the
    /// columns that fit, most important first, and say which they left
    /// out; long names are shortened in the middle with `…`; free text
    /// wraps at word boundaries with a hanging indent. Below 60 columns a
    /// table whose figures alone are wider (a diff's counts in the
    /// billions) may still pass the width; the `pulse` command never fits
    /// to fewer.
    Fit(usize),
    /// Every line whole, as wide as it needs: every name in full, every
    /// column.
    Wide,
}

impl Default for Width {
    /// [`DEFAULT_WIDTH`] columns.
    fn default() -> Self {
        Width::Fit(DEFAULT_WIDTH)
    }
}

impl Width {
    /// The columns to fit, or `None` for whole lines.
    pub fn columns(self) -> Option<usize> {
        match self {
            Width::Fit(n) => Some(n),
            Width::Wide => None,
        }
    }
}

/// How a name too long for its room is shortened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shorten {
    /// A Rust path (`std::sys::pal::unix::thread_info::set_current_info`):
    /// its first segment (the crate, or a `<Type as Trait>` head) and as
    /// many of its last segments as fit, the middle ones written as `…`
    /// (`std::…::thread_info::set_current_info`); when even the first and
    /// last do not fit, the start cut short before the last segment
    /// (`<alloc::vec::Vec<T> as co…::from_iter`). A closure (`{{closure}}`)
    /// and generic arguments (`::<T>`) stay with the segment before them
    /// where they fit.
    Name,
    /// A file path, perhaps with a `:line` (`unix/stack_overflow/thread_info.rs:122`):
    /// its first directory and as many of its last components as fit
    /// (`unix/…/thread_info.rs:122`); the file name and line are kept.
    Path,
    /// `function (file:line)`: the function as [`Shorten::Name`], the
    /// place as [`Shorten::Path`]; anything else as a name.
    Location,
    /// Any other text: its start and end, the middle as `…`.
    Text,
}

/// `s` shortened as `how` to at most `width` characters, as [`printable`]
/// shows it; whole when it fits. Leading spaces (a call tree's
/// indentation) are kept, and the rest shortened to the room they leave;
/// indentation deeper than half the room gives way to the name.
///
/// ```
/// use pulse_analysis::{shorten, Shorten};
/// let name = "std::sys::pal::unix::stack_overflow::thread_info::set_current_info";
/// assert_eq!(shorten(Shorten::Name, name, 40), "std::…::thread_info::set_current_info");
/// let path = "unix/stack_overflow/thread_info.rs:122";
/// assert_eq!(shorten(Shorten::Path, path, 30), "unix/…/thread_info.rs:122");
/// assert_eq!(shorten(Shorten::Name, "tour::main", 40), "tour::main");
/// ```
pub fn shorten(how: Shorten, s: &str, width: usize) -> String {
    let shown = printable(s);
    if shown.chars().count() <= width {
        return shown.into_owned();
    }
    let body = shown.trim_start_matches(' ');
    // A call tree deeper than its column: the name keeps half the column
    // at least, the indentation what is left.
    let keep = body.chars().count().min(width / 2).max(1);
    let indent = (shown.len() - body.len()).min(width.saturating_sub(keep));
    let room = width.saturating_sub(indent);
    let short = match how {
        Shorten::Name => name(body, room),
        Shorten::Path => path(body, room),
        Shorten::Location => location(body, room),
        Shorten::Text => middle(body, room),
    };
    format!("{}{short}", " ".repeat(indent))
}

/// `text` wrapped into lines of at most `width` characters (unless
/// `Width::Wide`, which keeps it one line): the first line starts with
/// `first`, the others with `hang` spaces (at most half the width). Lines
/// break at spaces, never between a number and its unit (`4.75 MiB`) nor
/// around `×` or `→`, and a last line of one short word takes the word
/// before it along; a word too long for a line of its own is cut into
/// pieces. `text` is shown as [`printable`] shows it. Fitted lines end
/// without trailing spaces.
///
/// ```
/// use pulse_analysis::{wrap, Width};
/// let lines = wrap("  warning: ", "the session is truncated at byte 999365", 11, Width::Fit(40));
/// assert_eq!(lines, ["  warning: the session is truncated at", "           byte 999365"]);
/// ```
pub fn wrap(first: &str, text: &str, hang: usize, width: Width) -> Vec<String> {
    wrap_with(first, text, hang, width, None)
}

/// [`wrap`], a word too long for a line of its own shortened as `long`
/// rather than cut into pieces.
pub(crate) fn wrap_with(
    first: &str,
    text: &str,
    hang: usize,
    width: Width,
    long: Option<Shorten>,
) -> Vec<String> {
    let shown = printable(text);
    let Width::Fit(width) = width else {
        return vec![format!("{first}{shown}")];
    };
    let first = printable(first);
    let first_shown = first.clone().into_owned();
    if first.chars().count() + shown.chars().count() <= width {
        return vec![format!("{first}{shown}").trim_end().to_owned()];
    }
    let words: Vec<&str> = shown.split(' ').collect();
    // Words that must stay on one line together, joined by their spaces.
    let mut groups: Vec<String> = Vec::new();
    for (i, word) in words.iter().enumerate() {
        match groups.last_mut() {
            Some(g) if i > 0 && glued(words[i - 1], word) => {
                g.push(' ');
                g.push_str(word);
            }
            _ => groups.push((*word).to_owned()),
        }
    }
    let hang = " ".repeat(hang.min(width / 2));
    let mut lines = Vec::new();
    let mut line = first.into_owned();
    // Whether `line` holds a word yet (beyond its prefix).
    let mut started = false;
    let mut pieces: Vec<String> = Vec::new();
    for group in groups {
        // A group that does not fit a line of its own goes word by word.
        let room = width.saturating_sub(hang.len()).max(1);
        if group.chars().count() > room && group.contains(' ') {
            pieces.extend(group.split(' ').map(str::to_owned));
        } else {
            pieces.push(group);
        }
    }
    for piece in pieces {
        if piece.is_empty() {
            // Two spaces in a row: keep them inside a line.
            if started {
                line.push(' ');
            }
            continue;
        }
        let len = piece.chars().count();
        let used = line.chars().count();
        if started && used + 1 + len <= width {
            line.push(' ');
            line.push_str(&piece);
            continue;
        }
        if started || used > hang.len() && used + len > width {
            lines.push(std::mem::replace(&mut line, hang.clone()).trim_end().to_owned());
        }
        let room = width.saturating_sub(line.chars().count()).max(1);
        if len <= room {
            line.push_str(&piece);
        } else if let Some(how) = long {
            line.push_str(&shorten(how, &piece, room));
        } else {
            // Cut into pieces, each as long as a line holds.
            let mut rest: &str = &piece;
            loop {
                let room = width.saturating_sub(line.chars().count()).max(1);
                let head = cut_head(rest, room);
                let head = if head.is_empty() { first_atom(rest) } else { head };
                line.push_str(head);
                rest = &rest[head.len()..];
                if rest.is_empty() {
                    break;
                }
                lines.push(std::mem::replace(&mut line, hang.clone()));
            }
        }
        started = true;
    }
    lines.push(line.trim_end().to_owned());
    // No last line of one short word: the word before it comes down too.
    let prefix = if lines.len() == 2 { first_shown.len() } else { hang.len() };
    if let [.., before, last] = &mut lines[..] {
        let word = last.trim_start();
        let hang_len = last.len() - word.len();
        // The space before the word to move down, after a word of the line's own.
        let moved = before
            .rfind(' ')
            .filter(|&at| at > prefix && !before[prefix..at].trim().is_empty())
            .map(|at| (at, &before[at + 1..]));
        if let Some((at, down)) = moved {
            let prev = before[..at].rsplit(' ').next().unwrap_or("");
            let fits = hang_len + down.chars().count() + 1 + word.chars().count() <= width;
            if !word.contains(' ')
                && word.chars().count() < 8
                && fits
                && !glued(prev, down)
                && !glued(down, word)
            {
                *last = format!("{}{down} {word}", &last[..hang_len]);
                before.truncate(at);
                let kept = before.trim_end().len();
                before.truncate(kept);
            }
        }
    }
    lines
}

/// Writes [`wrap`]'s lines.
pub(crate) fn write_wrapped(
    w: &mut dyn Write,
    first: &str,
    text: &str,
    hang: usize,
    width: Width,
) -> io::Result<()> {
    for line in wrap(first, text, hang, width) {
        writeln!(w, "{line}")?;
    }
    Ok(())
}

/// Writes [`wrap_with`]'s lines, long words shortened as paths: a
/// command line.
pub(crate) fn write_command(
    w: &mut dyn Write,
    first: &str,
    text: &str,
    hang: usize,
    width: Width,
) -> io::Result<()> {
    for line in wrap_with(first, text, hang, width, Some(Shorten::Path)) {
        writeln!(w, "{line}")?;
    }
    Ok(())
}

/// The units a number is never parted from, and the signs that keep their
/// neighbours.
const UNITS: &[&str] = &["ns", "µs", "ms", "s", "B", "KiB", "MiB", "GiB", "TiB", "%", "ticks/ns"];

/// Whether a line must not break between `before` and `after`.
fn glued(before: &str, after: &str) -> bool {
    let bare = after.trim_end_matches([',', ';', ':', ')', '.']);
    let number = before.ends_with(|c: char| c.is_ascii_digit());
    let sign = |w: &str| w == "×" || w == "→";
    (number && UNITS.contains(&bare)) || sign(before) || sign(after)
}

/// The length of the escape `\u{…}` that `s` starts with, if it does.
fn escape_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix("\\u{")?;
    let digits = rest.find('}')?;
    (1..=6).contains(&digits).then_some(())?;
    rest[..digits].chars().all(|c| c.is_ascii_hexdigit()).then_some(3 + digits + 1)
}

/// The first atom of `s`: an escape, or one character.
fn first_atom(s: &str) -> &str {
    let n = escape_len(s).unwrap_or_else(|| s.chars().next().map_or(0, char::len_utf8));
    &s[..n]
}

/// The longest start of `s` of whole atoms within `n` characters.
fn cut_head(s: &str, n: usize) -> &str {
    let (mut end, mut count) = (0, 0);
    while end < s.len() {
        let atom = first_atom(&s[end..]);
        let len = atom.chars().count();
        if count + len > n {
            break;
        }
        count += len;
        end += atom.len();
    }
    &s[..end]
}

/// The longest end of `s` of whole atoms within `n` characters.
fn cut_tail(s: &str, n: usize) -> &str {
    let mut bounds = vec![0];
    let mut at = 0;
    while at < s.len() {
        at += first_atom(&s[at..]).len();
        bounds.push(at);
    }
    let (mut start, mut count) = (s.len(), 0);
    for pair in bounds.windows(2).rev() {
        let len = s[pair[0]..pair[1]].chars().count();
        if count + len > n {
            break;
        }
        count += len;
        start = pair[0];
    }
    &s[start..]
}

/// `s` within `width` characters: its start and end around `…`.
fn middle(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let room = width - 1;
    let tail = cut_tail(s, room / 2);
    let head = cut_head(s, room - tail.chars().count());
    format!("{head}…{tail}")
}

/// `s` split at `sep` where it is outside brackets of any kind.
fn split_top(s: &str, sep: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut depth, mut start, mut i) = (0usize, 0, 0);
    let bytes = s.as_bytes();
    while i < s.len() {
        match bytes[i] {
            b'<' | b'(' | b'[' | b'{' => depth += 1,
            // `->` closes nothing.
            b'>' if i > 0 && bytes[i - 1] == b'-' => {}
            b'>' | b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 && bytes[i..].starts_with(sep.as_bytes()) {
            parts.push(s[start..i].to_owned());
            i += sep.len();
            start = i;
            continue;
        }
        i += 1;
    }
    parts.push(s[start..].to_owned());
    parts
}

/// `segs` joined by `sep` within `width`: the first `head` of them, `…`
/// for the fewest after them, and the rest; `None` when even the first
/// and the last do not fit, or there is nothing between them to leave out.
fn elide(segs: &[String], sep: &str, head: usize, width: usize) -> Option<String> {
    if segs.len() < head + 2 {
        return None;
    }
    let first = segs[..head].join(sep);
    let mark = format!("{sep}…{sep}");
    let fixed = first.chars().count() + mark.chars().count();
    let sep_len = sep.chars().count();
    // The most segments from the end that fit.
    let (mut tail, mut from) = (0, None);
    for k in (head + 1..segs.len()).rev() {
        tail += segs[k].chars().count() + if k + 1 < segs.len() { sep_len } else { 0 };
        if fixed + tail > width {
            break;
        }
        from = Some(k);
    }
    from.map(|k| format!("{first}{mark}{}", segs[k..].join(sep)))
}

/// A Rust path within `width`: see [`Shorten::Name`].
fn name(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let raw = split_top(s, "::");
    // A closure's segments stay with the function they are in, and generic
    // arguments (`::<T>`) with what they are arguments of, where they fit.
    let mut merged: Vec<String> = Vec::new();
    for seg in &raw {
        let several = merged.len() > 1;
        let generic = seg.starts_with('<');
        match merged.last_mut() {
            Some(last) if generic || seg.starts_with('{') && several => {
                last.push_str("::");
                last.push_str(seg);
            }
            _ => merged.push(seg.clone()),
        }
    }
    // Middle segments left out; else the start cut short before the last
    // segment, if a few characters of it are left: with a closure or
    // generic arguments kept with their function first, then without.
    for segs in [&merged, &raw] {
        if let Some(short) = elide(segs, "::", 1, width) {
            return short;
        }
        if let [_, .., last] = &segs[..] {
            let last = format!("::{last}");
            let len = last.chars().count();
            if len + 4 <= width {
                return format!("{}…{last}", cut_head(s, width - 1 - len));
            }
        }
    }
    if let [_, .., last] = &raw[..] {
        if last.chars().count() < width {
            return format!("…{}", cut_tail(s, width - 1));
        }
    }
    middle(s, width)
}

/// A file path within `width`: see [`Shorten::Path`].
fn path(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let parts: Vec<String> = s.split('/').map(str::to_owned).collect();
    // An absolute path keeps its first directory: `/work/…/tour`.
    let head = if parts.first().is_some_and(String::is_empty) { 2 } else { 1 };
    if let Some(short) = elide(&parts, "/", head, width) {
        return short;
    }
    if let [_, .., last] = &parts[..] {
        let last = format!("/{last}");
        let len = last.chars().count();
        if len + 4 <= width {
            return format!("{}…{last}", cut_head(s, width - 1 - len));
        }
        if len < width {
            return format!("…{last}");
        }
    }
    middle(s, width)
}

/// `function (file:line)` within `width`: see [`Shorten::Location`].
fn location(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let split = s.strip_suffix(')').and_then(|inner| {
        let at = inner.rfind(" (")?;
        Some((&inner[..at], &inner[at + 2..]))
    });
    let Some((function, place)) = split.filter(|_| width >= 24) else {
        return name(s, width);
    };
    let room = width - 3;
    let p = place.chars().count();
    // The function gets three fifths at least, more where the place is short.
    let f_room = room.saturating_sub(p).max(room * 3 / 5);
    // The place gets what the function leaves, and the function then what
    // the place leaves.
    let short = name(function, f_room);
    let place = path(place, room - short.chars().count().min(room));
    let function = name(function, room - place.chars().count().min(room));
    format!("{function} ({place})")
}

/// Writes the line that says which columns a fitted table left out, if any.
pub(crate) fn left_out(
    w: &mut dyn Write,
    indent: usize,
    dropped: &[String],
    width: Width,
) -> io::Result<()> {
    let Width::Fit(n) = width else { return Ok(()) };
    if dropped.is_empty() {
        return Ok(());
    }
    let text = format!("left out to fit {n} columns: {}; --wide shows them", dropped.join(", "));
    write_wrapped(w, &" ".repeat(indent), &text, indent + 2, width)
}

/// `s` as [`printable`] shows it, shortened as `how` to fit `width`
/// (whole when `Width::Wide`).
pub(crate) fn fitted(how: Shorten, s: &str, width: Option<usize>) -> Cow<'_, str> {
    match width {
        Some(n) => Cow::Owned(shorten(how, s, n)),
        None => printable(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len(s: &str) -> usize {
        s.chars().count()
    }

    #[test]
    fn names_keep_their_head_and_last_segments() {
        let n = "std::sys::pal::unix::stack_overflow::thread_info::set_current_info";
        assert_eq!(name(n, 100), n);
        assert_eq!(name(n, 40), "std::…::thread_info::set_current_info");
        assert_eq!(name(n, 30), "std::…::set_current_info");
        assert!(len(&name(n, 20)) <= 20, "{}", name(n, 20));
        assert!(name(n, 20).ends_with("set_current_info"), "{}", name(n, 20));
        let q = "<alloc::vec::Vec<T> as core::iter::traits::collect::FromIterator<T>>::from_iter";
        let short = name(q, 40);
        assert_eq!(len(&short), 40, "{short}");
        assert!(short.starts_with("<alloc::vec::Vec<T> as ") && short.ends_with("…::from_iter"));
        // A closure stays with its function where they fit.
        let c = "tour::server::fetch_upstream::{{closure}}::{{closure}}";
        assert_eq!(name(c, 49), "tour::…::fetch_upstream::{{closure}}::{{closure}}");
        assert_eq!(name(c, 30), "tour::…::{{closure}}");
        // Generic arguments stay with their function.
        let g = "std::panicking::catch_unwind::<isize, std::rt::lang_start_internal::{closure#0}>";
        assert_eq!(
            name(g, 75),
            "std::…::catch_unwind::<isize, std::rt::lang_start_internal::{closure#0}>"
        );
        // The generic arguments' `::` do not split.
        assert_eq!(split_top("a::<b::c>::d", "::"), ["a", "<b::c>", "d"]);
        assert_eq!(split_top("f::<impl Fn() -> u8>::g", "::"), ["f", "<impl Fn() -> u8>", "g"]);
        for w in 0..n.len() {
            assert!(len(&name(n, w)) <= w, "{w}: {}", name(n, w));
            assert!(len(&name(q, w)) <= w, "{w}: {}", name(q, w));
        }
    }

    #[test]
    fn paths_keep_their_file_and_line() {
        let p = "unix/stack_overflow/thread_info.rs:122";
        assert_eq!(path(p, 30), "unix/…/thread_info.rs:122");
        assert!(path(p, 20).ends_with("/thread_info.rs:122"), "{}", path(p, 20));
        assert_eq!(path("/work/main/target/release/examples/tour", 25), "/work/…/examples/tour");
        for w in 0..p.len() {
            assert!(len(&path(p, w)) <= w, "{w}: {}", path(p, w));
        }
    }

    #[test]
    fn locations_shorten_both_halves() {
        let l = "std::sys::pal::unix::stack_overflow::thread_info::set_current_info (unix/stack_overflow/thread_info.rs:122)";
        let s = location(l, 60);
        assert_eq!(s, "std::…::set_current_info (unix/…/thread_info.rs:122)");
        for w in 0..l.len() {
            assert!(len(&location(l, w)) <= w, "{w}: {}", location(l, w));
        }
        assert_eq!(location("main", 10), "main");
    }

    #[test]
    fn escapes_are_cut_whole() {
        let s = "app::\u{1b}[2J\u{1b}[2J::leaf";
        for w in 0..40 {
            let short = shorten(Shorten::Name, s, w);
            assert!(len(&short) <= w, "{w}: {short}");
            // Every backslash still starts a whole escape.
            for (i, _) in short.match_indices('\\') {
                assert!(escape_len(&short[i..]).is_some(), "{w}: {short}");
            }
        }
    }

    #[test]
    fn long_names_cost_their_length() {
        // Quadratic work on these would take minutes in a debug build.
        let segments = vec!["a\u{1b}b"; 50_000].join("::");
        assert!(len(&shorten(Shorten::Name, &segments, 60)) <= 60);
        assert!(len(&shorten(Shorten::Location, &format!("{segments} (x/y.rs:1)"), 60)) <= 60);
        let dirs = vec!["dir"; 50_000].join("/");
        assert!(len(&shorten(Shorten::Path, &dirs, 60)) <= 60);
        let word = "\u{1b}".repeat(50_000);
        assert!(wrap("", &word, 2, Width::Fit(60)).iter().all(|l| len(l) <= 60));
        let words = vec!["w"; 100_000].join(" ");
        let lines = wrap("", &words, 2, Width::Fit(60));
        assert!(lines.iter().all(|l| len(l) <= 60));
        assert_eq!(lines.concat().matches('w').count(), 100_000);
    }

    #[test]
    fn leading_spaces_are_kept() {
        let deep = format!("{}app::deep::name", " ".repeat(200));
        let short = shorten(Shorten::Name, &deep, 30);
        assert_eq!(len(&short), 30, "{short:?}");
        assert!(short.ends_with("app::deep::name"), "{short:?}");
        let s = "      Serve::Request::Handler::Inner::Deepest";
        assert_eq!(shorten(Shorten::Name, s, 30), "      Serve::…::Inner::Deepest");
        assert_eq!(shorten(Shorten::Name, s, 25), "      Serve::…::Deepest");
    }

    #[test]
    fn text_wraps_at_words_with_a_hanging_indent() {
        let text = "400018 reallocations for 200001 allocations: buffers grown step by step, the largest to 4.75 MiB (20.2 MiB allocated, copies included)";
        let lines = wrap("     ", text, 5, Width::Fit(60));
        for l in &lines {
            assert!(len(l) <= 60, "{l:?}");
        }
        assert!(lines[1..].iter().all(|l| l.starts_with("     ") && !l.starts_with("      ")));
        assert_eq!(lines.join(" ").split_whitespace().collect::<Vec<_>>().join(" "), text);
        // A number stays with its unit.
        for l in &lines {
            assert!(!l.ends_with("4.75") && !l.ends_with("20.2"), "{l:?}");
        }
        assert_eq!(wrap("  ", text, 4, Width::Wide), [format!("  {text}")]);
        // A last word alone takes the one before it along, never the only one.
        assert_eq!(wrap("", "aaaa bbbb cccc d", 2, Width::Fit(14)), ["aaaa bbbb", "  cccc d"]);
        assert_eq!(wrap("", "aaaaaaaaaaaa d", 2, Width::Fit(12)), ["aaaaaaaaaaaa", "  d"]);
        assert_eq!(wrap("", "xx aaaaaaaaaa d", 2, Width::Fit(12)), ["xx", "  aaaaaaaaaa", "  d"]);
        // A word longer than a line is cut into pieces, none lost.
        let long = "x".repeat(50);
        let lines = wrap("ab ", &long, 2, Width::Fit(20));
        assert!(lines.iter().all(|l| len(l) <= 20), "{lines:?}");
        assert_eq!(lines.concat().matches('x').count(), 50);
    }
}
