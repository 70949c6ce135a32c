//! Whether this build can give good allocation sites, told once on stderr
//! near the session's start, with the configuration line that fixes it: the
//! same two problems, in the same words, that the report warns about when
//! it reads the session (`pulse_analysis::Symbols::build_warnings`).
//!
//! - **No frame pointers**: the walk ends at once (an allocation recorded
//!   with no stack, where every allocation's stack is captured) or within a
//!   few frames, before the program's code. Judged on the first
//!   [`SITES_TO_JUDGE`] sites defined or [`ALLOCS_TO_JUDGE`] allocations
//!   (or all of them, at the end of a shorter session): most allocations
//!   without a stack, or most sites' stacks shorter than [`SHALLOW`] frames.
//! - **No line tables**: the first site's innermost frame is pulse's own
//!   code, built with the program's profile; when the symbolizer names its
//!   function but no file, the build's crates have no line tables. An
//!   address nothing names (an unreadable binary) says nothing either way.
//!
//! The collector does this off the program's threads; the line tables are
//! judged by the `Symbol` records the symbolizer makes for that frame
//! anyway, when they come.

use crate::collector::say;

/// Sites seen before the frame pointers are judged.
const SITES_TO_JUDGE: u32 = 16;
/// Or allocations seen.
const ALLOCS_TO_JUDGE: u64 = 256;

/// A stack with fewer frames than this ends before the program's code: the
/// recording function, the allocator's entry and a collection's growth are
/// already three.
const SHALLOW: usize = 4;

pub(crate) const FRAME_POINTERS_FIX: &str =
    "build with frame pointers, in .cargo/config.toml: [build] rustflags = [\"-C\", \"force-frame-pointers=yes\"]";
pub(crate) const LINE_TABLES_FIX: &str =
    "build with line tables, in Cargo.toml: [profile.release] debug = \"line-tables-only\"";

/// The collector's judgement of the build, made once.
#[derive(Debug, Default)]
pub(crate) struct BuildCheck {
    sites: u32,
    shallow: u32,
    /// Allocations seen in `full` mode, and those without a stack.
    allocs: u64,
    stackless: u64,
    /// The innermost frame of the first site, until its lines are judged.
    first_frame: Option<u64>,
    frame_pointers_judged: bool,
    lines_judged: bool,
}

impl BuildCheck {
    /// A site was defined with these return addresses.
    pub(crate) fn saw(&mut self, frames: &[u64]) {
        if self.frame_pointers_judged && self.lines_judged {
            return;
        }
        self.sites = self.sites.saturating_add(1);
        // A stack cut at the configured depth (`PULSE_STACK_DEPTH` under
        // four) says nothing of the frame pointers.
        if frames.len() < SHALLOW && frames.len() < pulse_alloc::stack_depth() {
            self.shallow = self.shallow.saturating_add(1);
        }
        if self.first_frame.is_none() && !self.lines_judged {
            self.first_frame = frames.first().copied();
        }
    }

    /// The address whose symbol the line tables are judged by, until they
    /// are.
    pub(crate) fn first_frame(&self) -> Option<u64> {
        self.first_frame.filter(|_| !self.lines_judged)
    }

    /// Whether everything is judged.
    pub(crate) fn done(&self) -> bool {
        self.frame_pointers_judged && self.lines_judged
    }

    /// Whether [`BuildCheck::allocations`] still wants counts.
    pub(crate) fn counting(&self) -> bool {
        !self.frame_pointers_judged
    }

    /// `n` allocations were drained, captured in `full` mode, `stackless`
    /// of them with no stack.
    pub(crate) fn allocations(&mut self, n: u64, stackless: u64) {
        self.allocs = self.allocs.saturating_add(n);
        self.stackless = self.stackless.saturating_add(stackless);
    }

    /// Judges what can be judged by now (everything, at the session's
    /// `end`), and says so once, on stderr, where the build falls short.
    /// `unfiled` is whether the symbolizer named [`BuildCheck::first_frame`]
    /// without a file, once its symbols have come.
    pub(crate) fn judge(&mut self, unfiled: Option<bool>, end: bool) {
        if let Some(line) = self.verdict(|_| unfiled, end) {
            say(&line);
        }
    }

    /// What [`BuildCheck::judge`] says, if anything: `unfiled(addr)` tells
    /// whether the symbolizer names `addr` without a file (`None` while it
    /// is not known yet).
    fn verdict(&mut self, unfiled: impl FnOnce(u64) -> Option<bool>, end: bool) -> Option<String> {
        let seen = self.sites >= SITES_TO_JUDGE || self.allocs >= ALLOCS_TO_JUDGE;
        if !self.frame_pointers_judged && (seen || (end && (self.sites > 0 || self.allocs > 0))) {
            self.frame_pointers_judged = true;
            let what = if self.stackless * 2 > self.allocs {
                Some(format!(
                    "{} of the first {} allocations have no stack",
                    self.stackless, self.allocs
                ))
            } else if self.shallow * 2 > self.sites {
                Some(format!(
                    "{} of the first {} allocation sites' stacks end before the program's code",
                    self.shallow, self.sites
                ))
            } else {
                None
            };
            if let Some(what) = what {
                // Without a stack there is no frame of the program's to
                // judge the line tables by: the frame pointers come first.
                self.lines_judged = true;
                return Some(format!("pulse: {what}: {FRAME_POINTERS_FIX}"));
            }
        }
        if !self.lines_judged && self.frame_pointers_judged {
            if let Some(addr) = self.first_frame {
                let unfiled = match unfiled(addr) {
                    Some(u) => u,
                    // Not symbolized yet: judged when it is. At the end, an
                    // address never named says nothing either way.
                    None if end => false,
                    None => return None,
                };
                self.first_frame = None;
                self.lines_judged = true;
                if unfiled {
                    return Some(format!(
                        "pulse: this build has no line tables, so allocation sites will have no file and line: {LINE_TABLES_FIX}"
                    ));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A good build's stack: pulse's frames, a collection's, the program's.
    const DEEP: [u64; 8] = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80];

    #[test]
    fn a_good_build_is_not_warned_about() {
        let mut c = BuildCheck::default();
        c.saw(&DEEP);
        c.allocations(100, 0);
        assert_eq!(c.verdict(|addr| panic!("{addr:#x} judged before its time"), false), None);
        for _ in 1..SITES_TO_JUDGE {
            c.saw(&DEEP);
        }
        c.allocations(1000, 3);
        // Then the lines, by the first site's innermost frame, once.
        let mut asked = Vec::new();
        assert_eq!(
            c.verdict(
                |addr| {
                    asked.push(addr);
                    Some(false)
                },
                false
            ),
            None
        );
        assert_eq!(asked, [DEEP[0]]);
        assert_eq!(c.verdict(|_| Some(true), true), None);
    }

    #[test]
    fn stacks_that_end_at_once_or_early_ask_for_frame_pointers_once() {
        let mut c = BuildCheck::default();
        c.allocations(300, 299);
        let said = c.verdict(|_| Some(true), false).expect("said");
        assert!(said.contains("299 of the first 300 allocations have no stack"), "{said}");
        assert!(said.contains(FRAME_POINTERS_FIX), "{said}");
        assert!(!c.counting());
        assert_eq!(c.verdict(|_| Some(true), true), None, "once, and no line-table advice then");

        let mut c = BuildCheck::default();
        for i in 0..SITES_TO_JUDGE {
            c.saw(if i % 4 == 0 { &DEEP } else { &DEEP[..2] });
        }
        let said = c.verdict(|_| Some(true), false).expect("said");
        assert!(said.contains("12 of the first 16 allocation sites"), "{said}");
    }

    #[test]
    fn a_frame_named_without_a_file_asks_for_line_tables() {
        let mut c = BuildCheck::default();
        c.saw(&DEEP);
        c.saw(&[0x99; 6]);
        assert_eq!(c.verdict(|_| Some(true), false), None, "too few sites to judge yet");
        let mut asked = None;
        let said = c.verdict(
            |addr| {
                asked = Some(addr);
                Some(true)
            },
            true,
        );
        assert_eq!(asked, Some(DEEP[0]), "the first site's innermost frame");
        assert!(said.expect("said").contains(LINE_TABLES_FIX));
        assert_eq!(c.verdict(|_| Some(true), true), None, "once");
    }

    #[test]
    fn the_line_tables_wait_for_the_first_frame_s_symbols() {
        let mut c = BuildCheck::default();
        for _ in 0..SITES_TO_JUDGE {
            c.saw(&DEEP);
        }
        assert_eq!(c.verdict(|_| None, false), None, "not symbolized yet");
        assert_eq!(c.first_frame(), Some(DEEP[0]), "still waited for");
        let said = c.verdict(|_| Some(true), false).expect("said once the symbols came");
        assert!(said.contains(LINE_TABLES_FIX), "{said}");
        assert_eq!(c.first_frame(), None);
        assert!(c.done());

        let mut c = BuildCheck::default();
        c.saw(&DEEP);
        assert_eq!(c.verdict(|_| None, true), None, "never named: nothing to say");
        assert!(c.done());
    }

    #[test]
    fn a_session_without_stacks_says_nothing() {
        let mut c = BuildCheck::default();
        assert_eq!(c.verdict(|_| Some(true), true), None);
    }
}
