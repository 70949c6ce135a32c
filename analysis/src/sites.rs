//! Allocation sites: their stacks, symbolized, and the frame a user reads as
//! "where it was allocated".
//!
//! A captured stack starts inside pulse and the allocation plumbing —
//! `__rust_alloc`, `RawVec` growth, `Vec::push`, `String` formatting,
//! hash-table resizing — and only then reaches the program's own code. The
//! *location* of a site is its innermost frame that is neither: the line of
//! the user's code that asked for the memory.

use rustc_hash::FxHashMap as HashMap;

/// One symbolized frame. An address inlined into its caller yields several,
/// innermost first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frame {
    /// The demangled function name, or `0x…` when it could not be resolved.
    pub function: String,
    /// The source file, or empty.
    pub file: String,
    /// The source line, or 0.
    pub line: u32,
}

impl Frame {
    /// `function (file:line)`, with the file shortened for reading.
    pub fn display(&self, root: &str) -> String {
        if self.file.is_empty() {
            return self.function.clone();
        }
        format!("{} ({}:{})", self.function, short_path(&self.file, root), self.line)
    }

    /// `file:line` shortened, or the function when there is no file.
    pub fn place(&self, root: &str) -> String {
        if self.file.is_empty() {
            return self.function.clone();
        }
        format!("{}:{}", short_path(&self.file, root), self.line)
    }

    /// Whether the frame belongs to pulse, the standard library or a
    /// dependency rather than to the program's own code.
    pub fn is_library(&self) -> bool {
        is_library_function(&self.function) || is_library_file(&self.file)
    }
}

/// Frames of a stack kept, innermost first, inlined frames included: the
/// allocator captures 64 return addresses at most, and a stack that claims
/// a million would otherwise cost every report a million frames per site.
pub const MAX_STACK_FRAMES: usize = 256;

/// Frames one address may stand for (itself and the functions inlined into
/// it); further `Symbol` records for it are dropped.
pub const MAX_INLINED_FRAMES: usize = 64;

/// The symbol table and site stacks of a session.
#[derive(Debug, Clone, Default)]
pub struct Symbols {
    sites: HashMap<u32, Vec<u64>>,
    symbols: HashMap<u64, Vec<Frame>>,
    /// Frames and symbols beyond the limits above, dropped.
    pub(crate) dropped_frames: u64,
}

impl Symbols {
    pub(crate) fn add_site(&mut self, site: u32, mut frames: Vec<u64>) {
        if frames.len() > MAX_STACK_FRAMES {
            self.dropped_frames += (frames.len() - MAX_STACK_FRAMES) as u64;
            frames.truncate(MAX_STACK_FRAMES);
            frames.shrink_to_fit();
        }
        self.sites.insert(site, frames);
    }

    pub(crate) fn add_symbol(&mut self, addr: u64, frame: Frame) {
        let frames = self.symbols.entry(addr).or_default();
        if frames.len() < MAX_INLINED_FRAMES {
            frames.push(frame);
        } else {
            self.dropped_frames += 1;
        }
    }

    /// Whether the session defined `site`.
    pub fn defines(&self, site: u32) -> bool {
        self.sites.contains_key(&site)
    }

    /// Distinct addresses in the sites' stacks that no symbol names.
    pub(crate) fn unsymbolized_addresses(&self) -> u64 {
        let missing: rustc_hash::FxHashSet<u64> = self
            .sites
            .values()
            .flatten()
            .copied()
            .filter(|a| !self.symbols.contains_key(a))
            .collect();
        missing.len() as u64
    }

    /// Sites defined in the session.
    pub fn site_count(&self) -> usize {
        self.sites.len()
    }

    /// The stack of `site`, symbolized and with inlined frames expanded,
    /// innermost first. Empty if the session never defined the site.
    pub fn stack(&self, site: u32) -> Vec<Frame> {
        let Some(addrs) = self.sites.get(&site) else { return Vec::new() };
        let mut out = Vec::with_capacity(addrs.len());
        for a in addrs {
            let room = MAX_STACK_FRAMES - out.len();
            match self.symbols.get(a) {
                Some(frames) => out.extend(frames.iter().take(room).cloned()),
                None => {
                    out.push(Frame { function: format!("{a:#x}"), file: String::new(), line: 0 })
                }
            }
            if out.len() >= MAX_STACK_FRAMES {
                break;
            }
        }
        out
    }

    /// The stack of `site` with pulse's and the allocator plumbing's frames
    /// removed from the inner end, and the runtime's start-up frames from
    /// the outer end.
    pub fn user_stack(&self, site: u32) -> Vec<Frame> {
        let stack = self.stack(site);
        let Some(first) = stack.iter().position(|f| !f.is_library()) else {
            // All library frames (a thread's start-up, say): everything past
            // the allocator's entry point, pulse's own frames left out.
            let entry = stack.iter().position(|f| is_entry(&f.function)).map_or(0, |i| i + 1);
            let rest = stack.get(entry..).unwrap_or(&[]);
            let past = rest.iter().position(|f| !is_plumbing(&f.function)).unwrap_or(0);
            return if rest.is_empty() { stack } else { rest[past..].to_vec() };
        };
        let last = stack.iter().rposition(|f| !f.is_library()).unwrap_or(first);
        stack[first..=last].to_vec()
    }

    /// The frame a user reads as the site's location: its innermost frame in
    /// the program's own code.
    pub fn location(&self, site: u32) -> Option<Frame> {
        let stack = self.stack(site);
        // A stack entirely in library code (a thread's start-up, say) is
        // placed at its first frame past pulse and the allocation plumbing:
        // past the allocator's entry point, since what pulse called on the
        // way in (a thread-local's `with`, say) is pulse's, not the caller's.
        let entry = stack.iter().position(|f| is_entry(&f.function)).map_or(0, |i| i + 1);
        let outer = stack.get(entry..).unwrap_or(&[]);
        stack
            .iter()
            .find(|f| !f.is_library())
            .or_else(|| {
                // The code that wanted the memory, not the collection that asked for it.
                outer.iter().find(|f| {
                    !is_plumbing(&f.function)
                        && !["alloc", "core", "hashbrown"].contains(&crate_of(&f.function))
                })
            })
            .or_else(|| outer.iter().find(|f| !is_plumbing(&f.function)))
            .or_else(|| stack.first())
            .cloned()
    }
}

/// Crates whose frames are not the user's code.
const LIBRARY_CRATES: &[&str] = &[
    "std",
    "core",
    "alloc",
    "hashbrown",
    "pulse_alloc",
    "pulse",
    "backtrace",
    "rustc_demangle",
    "__rustc",
    "__rust_alloc",
    "__rust_realloc",
    "__rust_alloc_zeroed",
    "__rust_dealloc",
    "__rg_alloc",
    "__rg_realloc",
    "__rg_alloc_zeroed",
    "__libc_start_main",
    "__libc_start_call_main",
    "_start",
    "start_thread",
    "clone",
    "clone3",
    "main",
];

fn is_library_function(name: &str) -> bool {
    if name.is_empty() || name.starts_with("0x") {
        return true;
    }
    // `<Type as Trait>::method`: the frame belongs to the type's crate.
    let s = name
        .trim_start_matches(['<', '&', '*'])
        .trim_start_matches("mut ")
        .trim_start_matches("dyn ");
    // Slices, arrays, tuples, primitives and bare generic parameters are the library's.
    if s.starts_with(['[', '(']) {
        return true;
    }
    let first = crate_of(name);
    if is_primitive(first) || (first.len() == 1 && first.chars().all(|c| c.is_ascii_uppercase())) {
        return true;
    }
    LIBRARY_CRATES.contains(&first)
}

/// The crate a function's path starts with (for `<Type as Trait>::method`,
/// the type's).
fn crate_of(name: &str) -> &str {
    let s = name
        .trim_start_matches(['<', '&', '*'])
        .trim_start_matches("mut ")
        .trim_start_matches("dyn ");
    s.split([':', '<', ' ', '>']).next().unwrap_or("")
}

/// The global allocator's entry points: `__rust_alloc` and its kin, and a
/// `GlobalAlloc` implementation's methods.
fn is_entry(name: &str) -> bool {
    let s = name.trim_start_matches('<');
    s.starts_with("__rust")
        || s.starts_with("__rg_")
        || name.contains(" as core::alloc::global::GlobalAlloc>::")
}

/// pulse itself and the allocator's entry points, down to `RawVec`.
fn is_plumbing(name: &str) -> bool {
    let s = name.trim_start_matches('<');
    [
        "pulse_alloc::",
        "pulse::",
        "__rust",
        "__rg_",
        "alloc::alloc::",
        "alloc::raw_vec::",
        "core::alloc::",
    ]
    .iter()
    .any(|p| s.starts_with(p))
}

fn is_primitive(s: &str) -> bool {
    matches!(
        s,
        "str"
            | "u8"
            | "u16"
            | "u32"
            | "u64"
            | "u128"
            | "usize"
            | "i8"
            | "i16"
            | "i32"
            | "i64"
            | "i128"
            | "isize"
            | "f32"
            | "f64"
            | "bool"
            | "char"
    )
}

fn is_library_file(file: &str) -> bool {
    file.starts_with("/rustc/")
        || file.contains("/.cargo/registry/")
        || file.contains("/.cargo/git/")
        || file.contains("/rustlib/")
        || file.contains("/library/std/")
        || file.contains("/library/core/")
        || file.contains("/library/alloc/")
}

/// A path relative to `root` when under it, else its last three components.
fn short_path<'a>(path: &'a str, root: &str) -> &'a str {
    if !root.is_empty() {
        if let Some(rest) = path.strip_prefix(root) {
            return rest.trim_start_matches('/');
        }
    }
    let mut cut = path.len();
    for _ in 0..3 {
        match path[..cut].rfind('/') {
            Some(i) => cut = i,
            None => return path,
        }
    }
    &path[cut + 1..]
}

/// The project root guessed from the program's path: everything before its
/// `/target/` directory. File paths under it are shown relative to it.
pub(crate) fn project_root(program: &str) -> String {
    program.find("/target/").map(|i| program[..i].to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_and_inlined_frames_are_bounded() {
        let mut s = Symbols::default();
        s.add_site(1, (0..1_000_000u64).collect());
        for i in 0..1000 {
            s.add_symbol(7, Frame { function: format!("f{i}"), file: String::new(), line: 1 });
        }
        s.add_site(2, vec![7; 100]);
        assert_eq!(s.stack(1).len(), MAX_STACK_FRAMES);
        assert_eq!(s.stack(1)[0].function, "0x0", "the innermost frames are kept");
        assert_eq!(s.stack(2).len(), MAX_STACK_FRAMES);
        assert_eq!(s.stack(2)[MAX_INLINED_FRAMES].function, "f0");
        let dropped = (1_000_000 - MAX_STACK_FRAMES) + (1000 - MAX_INLINED_FRAMES);
        assert_eq!(s.dropped_frames, dropped as u64);
    }

    fn f(function: &str, file: &str) -> Frame {
        Frame { function: function.into(), file: file.into(), line: 1 }
    }

    #[test]
    fn plumbing_is_library_and_user_code_is_not() {
        for lib in [
            "alloc::raw_vec::RawVecInner<A>::grow_amortized",
            "<alloc::vec::Vec<T> as core::iter::traits::collect::FromIterator<T>>::from_iter",
            "<[T] as alloc::slice::hack::ConvertVec>::to_vec",
            "<str as alloc::string::ToString>::to_string",
            "alloc::fmt::format::format_inner",
            "hashbrown::raw::RawTable<T,A>::reserve_rehash",
            "pulse_alloc::thread::on_alloc",
            "__rust_alloc",
            "<T as alloc::borrow::ToOwned>::to_owned",
            "0x55d0c0ffee",
        ] {
            assert!(f(lib, "").is_library(), "{lib}");
        }
        for user in [
            "tour::parse_feed",
            "<tour::Order as core::clone::Clone>::clone",
            "myapp::main::{{closure}}",
        ] {
            assert!(!f(user, "/home/me/app/src/main.rs").is_library(), "{user}");
        }
        assert!(f("serde_json::de::from_str", "/root/.cargo/registry/src/x/serde_json/src/de.rs")
            .is_library());
    }

    #[test]
    fn the_location_is_the_innermost_user_frame() {
        let mut s = Symbols::default();
        s.add_site(1, vec![10, 20, 30, 40]);
        s.add_symbol(10, f("__rust_alloc", ""));
        s.add_symbol(
            20,
            f("alloc::raw_vec::RawVec<T>::grow_one", "/rustc/abc/library/alloc/src/raw_vec.rs"),
        );
        s.add_symbol(30, f("app::inner", "/p/src/lib.rs"));
        s.add_symbol(30, f("app::outer", "/p/src/lib.rs"));
        s.add_symbol(40, f("std::rt::lang_start_internal", "/rustc/abc/library/std/src/rt.rs"));
        assert_eq!(s.location(1).unwrap().function, "app::inner");
        let user: Vec<String> = s.user_stack(1).into_iter().map(|f| f.function).collect();
        assert_eq!(user, ["app::inner", "app::outer"]);
        assert!(s.location(2).is_none());
    }

    #[test]
    fn a_library_only_stack_is_placed_past_the_allocator_entry() {
        let mut s = Symbols::default();
        s.add_site(1, vec![10, 20, 30, 40, 50, 55, 60]);
        s.add_symbol(10, f("pulse_alloc::thread::site_for", "/p/alloc/src/thread.rs"));
        s.add_symbol(20, f("std::thread::local::LocalKey<T>::with", "/rustc/a/std/src/local.rs"));
        s.add_symbol(
            30,
            f("<pulse_alloc::tracking::Alloc<A> as core::alloc::global::GlobalAlloc>::alloc", ""),
        );
        s.add_symbol(40, f("__rustc::__rust_alloc", ""));
        s.add_symbol(50, f("alloc::alloc::alloc", "/rustc/a/alloc/src/alloc.rs"));
        s.add_symbol(55, f("<alloc::collections::btree::map::BTreeMap<K, V>>::insert", ""));
        s.add_symbol(60, f("std::sys::thread_info::set_current_info", "/rustc/a/std/src/x.rs"));
        assert_eq!(s.location(1).unwrap().function, "std::sys::thread_info::set_current_info");
        let user: Vec<String> = s.user_stack(1).into_iter().map(|f| f.function).collect();
        assert_eq!(
            user,
            [
                "<alloc::collections::btree::map::BTreeMap<K, V>>::insert",
                "std::sys::thread_info::set_current_info"
            ]
        );
    }

    #[test]
    fn paths_are_shortened_for_reading() {
        assert_eq!(short_path("/work/app/src/main.rs", "/work/app"), "src/main.rs");
        assert_eq!(short_path("/a/b/c/d/e.rs", ""), "c/d/e.rs");
        assert_eq!(project_root("/work/app/target/release/app"), "/work/app");
    }
}
