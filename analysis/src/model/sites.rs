//! Allocation sites: their stacks, symbolized, and the frame a user reads as
//! "where it was allocated".
//!
//! A captured stack starts inside pulse and the allocation plumbing —
//! `__rust_alloc`, `RawVec` growth, `Vec::push`, `String` formatting,
//! hash-table resizing — and only then reaches code that asked for the
//! memory. Each frame is classified by what it is ([`FrameKind`]): by its
//! source file where it has one (pulse's own source directories, rustc's
//! library, the cargo registry, a vendor directory or a git checkout, or
//! else the program's own code), by its name only where it has none. The
//! *site* of an allocation is its innermost frame that is a dependency's or
//! the program's own — the same frame at any capture depth that reaches it
//! — and, when that frame is a dependency's, the nearest frame of the
//! program's own code is shown with it as "called from". A
//! standard-library function is a site only when no frame above it is the
//! program's or a dependency's.

use rustc_hash::FxHashMap as HashMap;

/// One symbolized frame. An address inlined into its caller yields several,
/// innermost first.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
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
        format!("{} ({})", self.function, self.place(root))
    }

    /// `file:line` shortened, or the function when there is no file. Line
    /// 0 is none (code the compiler made, with no line of its own): the
    /// file alone.
    pub fn place(&self, root: &str) -> String {
        if self.file.is_empty() {
            return self.function.clone();
        }
        match self.line {
            0 => short_path(&self.file, root).to_owned(),
            line => format!("{}:{line}", short_path(&self.file, root)),
        }
    }
}

/// What a frame is, for choosing the site of an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FrameKind {
    /// pulse's own code: the allocator and the runtime.
    Pulse,
    /// The global allocator's entry points (`__rust_alloc`, `__rg_alloc`
    /// and their kin) and collections' code taken from the registry
    /// (`hashbrown`).
    Plumbing,
    /// The standard library (`std`, `core`, `alloc` and the crates it
    /// vendors): collections and their growth paths, formatting, a
    /// thread's start-up.
    Std,
    /// A dependency: a file under the cargo registry, a `vendor` directory
    /// or a git checkout.
    Dependency,
    /// The program's own code: any other source file.
    Own,
    /// A function known by its symbol alone (no line tables), neither
    /// pulse's nor the standard library's: a dependency's or the program's.
    Unplaced,
    /// An address no symbol names.
    Unknown,
}

impl FrameKind {
    /// Whether a frame of this kind can be a site: code that asked for the
    /// memory rather than the machinery that got it.
    pub fn is_code(self) -> bool {
        matches!(self, FrameKind::Dependency | FrameKind::Own | FrameKind::Unplaced)
    }
}

/// Where an allocation was made: the site's frame and, when that is a
/// dependency's, the nearest frame of the program's own code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The innermost frame of code that asked for the memory.
    pub frame: Frame,
    /// What that frame is.
    pub kind: FrameKind,
    /// The nearest frame of the program's own code above it, when the site
    /// is not the program's own.
    pub called_from: Option<Frame>,
}

/// Sites by id, each where [`Symbols::site`] places it.
pub(crate) type Located = HashMap<u32, Site>;

/// The function and `file:line` a site row groups site `id` under, placed
/// at `site` ([`Symbols::site`]); for a site without a place, its name
/// ([`unplaced`]) and no `file:line`.
pub(crate) fn row_key(site: Option<&Site>, id: u32, root: &str) -> (String, String) {
    match site {
        Some(s) => (s.frame.function.clone(), s.frame.place(root)),
        None => (unplaced(id), String::new()),
    }
}

/// What a site that no frame places is called: its number, or for
/// [`pulse_format::NO_SITE`] what that means.
pub(crate) fn unplaced(id: u32) -> String {
    if id == pulse_format::NO_SITE {
        String::from("(no stack captured)")
    } else {
        format!("site #{id}")
    }
}

/// Frames of a stack kept, innermost first, inlined frames included: the
/// allocator captures 64 return addresses at most, and a stack that claims
/// a million would otherwise cost every report a million frames per site.
pub const MAX_STACK_FRAMES: usize = 256;

/// Frames one address may stand for (itself and the functions inlined into
/// it); further `Symbol` records for it are dropped.
pub const MAX_INLINED_FRAMES: usize = 64;

/// The names a profile's stacks may expand to, every site with an event
/// together, per byte of the session as decoded (see
/// [`pulse_format::Reader::decoded_len`]): a frame counts its function's
/// and file's bytes and [`FRAME_COST`]. Stacks are expanded site after
/// site, by id; past the budget, a stack keeps its innermost frames that
/// fit (its innermost address bare when none does) and the report says how
/// many were left out. A site's definition of a few bytes can name a set
/// of long inlined frames that every other site names too: without a
/// budget, the stacks every command expands (and the folded export
/// writes, and the leaks list) grow with the number of sites times the
/// length of that set, not with the file. Real sessions use a few bytes
/// of it per byte of the session (a program's allocation sites, symbolized).
pub const STACK_TEXT_PER_BYTE: u64 = 64;

/// ... plus this much, whatever the session's size.
pub const STACK_TEXT_BASE: u64 = 16 << 20;

/// The bytes of names the stacks (or the call tree's paths) of a session
/// of `decoded_bytes` may expand to.
pub(crate) fn text_budget(decoded_bytes: u64) -> u64 {
    STACK_TEXT_PER_BYTE.saturating_mul(decoded_bytes).saturating_add(STACK_TEXT_BASE)
}

/// What a frame of a stack counts for in [`STACK_TEXT_PER_BYTE`] besides
/// its names: about what it costs held as a [`Frame`].
pub const FRAME_COST: u64 = 64;

/// The metadata key under which the runtime records pulse's own source
/// directories, one a line, so that its frames are recognised by file.
pub const PULSE_SOURCES_KEY: &str = "pulse.source_dirs";

/// The metadata key under which the runtime records the stack depth.
pub const STACK_DEPTH_KEY: &str = "stack_depth";

/// One symbolized frame of an address, with what it is.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Named {
    frame: Frame,
    kind: FrameKind,
}

/// A frame of a site's stack, not copied: a symbol's, or an address no
/// symbol names.
#[derive(Debug, Clone, Copy)]
enum At<'a> {
    Named(&'a Named),
    Bare(u64),
}

impl At<'_> {
    fn kind(self) -> FrameKind {
        match self {
            At::Named(n) => n.kind,
            At::Bare(_) => FrameKind::Unknown,
        }
    }

    fn frame(self) -> Frame {
        match self {
            At::Named(n) => n.frame.clone(),
            At::Bare(a) => bare(a),
        }
    }

    /// Whether it is a standard-library function proper (not a collection's).
    fn std_proper(self) -> bool {
        match self {
            At::Named(n) => {
                n.frame.file.contains("/std/src/") || crate_of(&n.frame.function) == "std"
            }
            At::Bare(_) => false,
        }
    }

    /// What it counts for in the stacks' budget.
    fn cost(self) -> u64 {
        match self {
            At::Named(n) => (n.frame.function.len() + n.frame.file.len()) as u64 + FRAME_COST,
            At::Bare(_) => 18 + FRAME_COST,
        }
    }
}

/// The frame of an address no symbol names.
fn bare(addr: u64) -> Frame {
    Frame { function: format!("{addr:#x}"), file: String::new(), line: 0 }
}

/// The symbol table and site stacks of a session.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Symbols {
    sites: HashMap<u32, Vec<u64>>,
    symbols: HashMap<u64, Vec<Named>>,
    /// pulse's source directories, each ending in `/`.
    pulse_dirs: Vec<String>,
    /// Frames and symbols beyond the limits above, dropped.
    pub(crate) dropped_frames: u64,
    /// The frames of each site's stack within the names' budget, where
    /// that is fewer than its own (see [`STACK_TEXT_PER_BYTE`]).
    budgeted: HashMap<u32, usize>,
    /// Frames the budget left out.
    pub(crate) over_budget_frames: u64,
    /// What each source file says of its frames, worked out once a file
    /// for the directories in `pulse_dirs` (thousands of symbols name a
    /// few hundred files). Not kept in the replay cache.
    #[serde(skip)]
    files: HashMap<String, FileFacts>,
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

    pub(crate) fn add_symbol(&mut self, addr: u64, mut frame: Frame) {
        let frames = self.symbols.entry(addr).or_default();
        if frames.len() >= MAX_INLINED_FRAMES {
            self.dropped_frames += 1;
            return;
        }
        if let Some(name) = demangled(&frame.function) {
            frame.function = name;
        }
        let kind = classify_with(&frame, &mut self.files, &self.pulse_dirs);
        frames.push(Named { frame, kind });
    }

    /// Sets pulse's source directories from the session's metadata value
    /// (one a line); the analyzer's own workspace's are always known.
    pub(crate) fn set_pulse_dirs(&mut self, recorded: Option<&str>) {
        let mut dirs: Vec<String> = recorded_dirs(recorded.unwrap_or(""))
            .chain(BUILT_PULSE_DIRS.iter().copied())
            .map(|d| format!("{}/", normalized(d).trim_end_matches('/')))
            .collect();
        dirs.sort();
        dirs.dedup();
        self.pulse_dirs = dirs;
        // What a frame is depends on them.
        self.files.clear();
        for n in self.symbols.values_mut().flatten() {
            n.kind = classify_with(&n.frame, &mut self.files, &self.pulse_dirs);
        }
    }

    /// Keeps the stacks of `sites` (in their order) within `budget` bytes
    /// of names (see [`STACK_TEXT_PER_BYTE`]): each keeps its innermost
    /// frames that fit in what the sites before it left.
    pub(crate) fn budget(&mut self, budget: u64, sites: impl Iterator<Item = u32>) {
        let mut left = budget;
        let mut budgeted = HashMap::default();
        let mut over = 0u64;
        for site in sites {
            let Some(at) = self.walk(site) else { continue };
            let mut kept = 0;
            for a in &at {
                let cost = a.cost();
                if cost > left {
                    break;
                }
                left -= cost;
                kept += 1;
            }
            if kept < at.len() {
                over += (at.len() - kept) as u64;
                budgeted.insert(site, kept);
            }
        }
        self.budgeted.extend(budgeted);
        self.over_budget_frames += over;
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

    /// Return addresses captured for `site` (before inlined frames are
    /// expanded); 0 for a site never defined.
    pub fn captured_depth(&self, site: u32) -> usize {
        self.sites.get(&site).map_or(0, Vec::len)
    }

    /// The frames of `site`'s stack, innermost first, inlined frames
    /// expanded, without copying them: at most [`MAX_STACK_FRAMES`], and
    /// what the names' budget leaves; `None` for a site never defined.
    fn walk(&self, site: u32) -> Option<Vec<At<'_>>> {
        let addrs = self.sites.get(&site)?;
        let limit = self.budgeted.get(&site).copied().unwrap_or(MAX_STACK_FRAMES);
        if limit == 0 {
            // Nothing fit: the innermost address, bare, for a name.
            return Some(addrs.first().map(|&a| At::Bare(a)).into_iter().collect());
        }
        // Sized for the inlined frames too: a stack of a few dozen
        // addresses holds a few hundred frames, which growing would copy
        // several times over, for every site of every report.
        let frames: usize =
            addrs.iter().map(|a| self.symbols.get(a).map_or(1, Vec::len)).sum::<usize>();
        let mut out = Vec::with_capacity(frames.min(limit));
        for &a in addrs {
            let room = limit - out.len();
            match self.symbols.get(&a) {
                Some(frames) => out.extend(frames.iter().take(room).map(At::Named)),
                None => out.push(At::Bare(a)),
            }
            if out.len() >= limit {
                break;
            }
        }
        Some(out)
    }

    /// The stack of `site`, symbolized and with inlined frames expanded,
    /// innermost first. Empty if the session never defined the site.
    pub fn stack(&self, site: u32) -> Vec<Frame> {
        self.walk(site).unwrap_or_default().into_iter().map(At::frame).collect()
    }

    /// What `frame` is: pulse's, the allocator's entry, the standard
    /// library's, a dependency's or the program's own.
    pub fn kind(&self, frame: &Frame) -> FrameKind {
        classify(frame, &self.pulse_dirs)
    }

    /// The index in `stack` of its site's frame (see [`Symbols::site`]),
    /// or `None` for an empty stack.
    fn site_index(stack: &[At<'_>]) -> Option<usize> {
        if stack.is_empty() {
            return None;
        }
        let kinds = || stack.iter().map(|a| a.kind());
        // Code that asked for the memory: a dependency's or the program's.
        if let Some(i) = kinds().position(|k| k.is_code()) {
            return Some(i);
        }
        // Nothing but the standard library past pulse (a thread's start-up,
        // say): the code that wanted the memory, std's own, rather than the
        // collection that asked for it.
        // Past the allocator's entry point: what pulse called on the way in
        // (a thread-local's `with`, say) is pulse's, not the caller's.
        let past = kinds()
            .rposition(|k| matches!(k, FrameKind::Pulse | FrameKind::Plumbing))
            .map_or(0, |i| i + 1);
        (past..stack.len())
            .find(|&i| stack[i].kind() == FrameKind::Std && stack[i].std_proper())
            .or_else(|| (past..stack.len()).find(|&i| stack[i].kind() == FrameKind::Std))
            .or_else(|| kinds().position(|k| k == FrameKind::Unknown))
            .or_else(|| kinds().position(|k| k != FrameKind::Pulse))
            .or(Some(0))
    }

    /// Where `site`'s allocations were made: its innermost frame that is a
    /// dependency's or the program's own code, with the nearest frame of
    /// the program's own code when the site is a dependency's. A stack of
    /// nothing but pulse and the standard library (a thread's start-up)
    /// is placed at its innermost `std` frame past the collections.
    /// `None` if the session never defined the site.
    pub fn site(&self, site: u32) -> Option<Site> {
        let stack = self.walk(site)?;
        let i = Self::site_index(&stack)?;
        let kind = stack[i].kind();
        let called_from = if kind == FrameKind::Own {
            None
        } else {
            stack[i + 1..].iter().find(|a| a.kind() == FrameKind::Own).map(|a| a.frame())
        };
        Some(Site { frame: stack[i].frame(), kind, called_from })
    }

    /// Whether `site`'s block was allocated or grown inside `format!`: its
    /// stack passes through `alloc::fmt::format` below its location. That
    /// is the string `format!` builds, in a buffer of its own that it grows
    /// as it writes, which no `reserve` of the caller's reaches.
    pub(crate) fn in_format(&self, site: u32) -> bool {
        let Some(stack) = self.walk(site) else { return false };
        let Some(i) = Self::site_index(&stack) else { return false };
        stack[..i].iter().any(|a| match a {
            At::Named(n) => n.frame.function.starts_with("alloc::fmt::format"),
            At::Bare(_) => false,
        })
    }

    /// [`Symbols::site`] of each of `sites` that has one, found once for
    /// the parts of a report that each go through them all.
    pub(crate) fn located<'a>(&self, sites: impl Iterator<Item = &'a u32>) -> Located {
        sites.filter_map(|&id| Some((id, self.site(id)?))).collect()
    }

    /// The function and `file:line` that the report's site rows group
    /// `site` under (`root`: the project root paths are shown relative to).
    pub(crate) fn row_key(&self, site: u32, root: &str) -> (String, String) {
        row_key(self.site(site).as_ref(), site, root)
    }

    /// The frame a user reads as the site's location (see [`Symbols::site`]).
    pub fn location(&self, site: u32) -> Option<Frame> {
        let stack = self.walk(site)?;
        Self::site_index(&stack).map(|i| stack[i].frame())
    }

    /// The stack of `site` from its location outwards, the runtime's
    /// start-up frames past the outermost dependency or program frame left
    /// out: the stack a flamegraph, an export or a leak shows.
    pub fn user_stack(&self, site: u32) -> Vec<Frame> {
        let stack = self.walk(site).unwrap_or_default();
        let Some(first) = Self::site_index(&stack) else { return Vec::new() };
        let last = if stack[first].kind().is_code() {
            stack.iter().rposition(|a| a.kind().is_code()).unwrap_or(first)
        } else {
            stack.len() - 1
        };
        stack[first..=last].iter().map(|a| a.frame()).collect()
    }

    /// What keeps this session's sites from being read as file:line of the
    /// program's code, one warning each with its fix: stacks that end
    /// before reaching the program (no frame pointers) and sites without
    /// a file (no line tables). `weight` gives each site's events.
    pub(crate) fn build_warnings(
        &self,
        weights: impl Iterator<Item = (u32, u64)>,
        depth: Option<usize>,
    ) -> Vec<String> {
        let (mut total, mut short, mut placed, mut unfiled) = (0u64, 0u64, 0u64, 0u64);
        let mut cut = 0u64;
        // Stacks shorter than this end early (a session that recorded its
        // depth; without it, only stacks that never reach code count).
        let shallow = depth.map_or(0, |d: usize| d.min(4));
        if self.sites.is_empty() && depth.is_none() {
            // No stack captured and no depth recorded: a session written
            // without stacks.
            return Vec::new();
        }
        for (id, w) in weights {
            // Site 0 is an event whose stack could not be read; a site the
            // session never defined is warned about on its own.
            if w == 0 || (id != 0 && !self.defines(id)) {
                continue;
            }
            total = total.saturating_add(w);
            let stack = self.walk(id).unwrap_or_default();
            let reaches_code = stack.iter().any(|a| a.kind().is_code());
            let captured = self.captured_depth(id);
            if !reaches_code && depth.is_some_and(|d| captured >= d) {
                // Cut by the configured depth, not by a missing frame pointer.
                cut = cut.saturating_add(w);
                continue;
            }
            if stack.is_empty() || captured < shallow || !reaches_code {
                short = short.saturating_add(w);
                continue;
            }
            if let Some(i) = Self::site_index(&stack) {
                placed = placed.saturating_add(w);
                if matches!(stack[i], At::Bare(_))
                    || matches!(stack[i], At::Named(n) if n.frame.file.is_empty())
                {
                    unfiled = unfiled.saturating_add(w);
                }
            }
        }
        let mut out = Vec::new();
        if total > 0 && short > total / 2 {
            out.push(format!(
                "{:.0} % of the allocations' stacks end before reaching the program's code: build with frame pointers, in .cargo/config.toml: [build] rustflags = [\"-C\", \"force-frame-pointers=yes\"]",
                short as f64 * 100.0 / total as f64
            ));
        }
        if total > 0 && cut > total / 2 {
            out.push(format!(
                "{:.0} % of the allocations' stacks reach the capture depth ({}) before the program's code: raise PULSE_STACK_DEPTH (at most {})",
                cut as f64 * 100.0 / total as f64,
                depth.unwrap_or(0),
                64
            ));
        }
        if placed > 0 && unfiled > placed / 2 {
            out.push(format!(
                "{:.0} % of the allocations' sites have no file and line: build with line tables, in Cargo.toml: [profile.release] debug = \"line-tables-only\"",
                unfiled as f64 * 100.0 / placed as f64
            ));
        }
        out
    }
}

/// pulse's source directories a session's metadata may name (the runtime
/// names two or three): every frame's file is compared with each of them,
/// so a metadata value of a million lines would cost as much per frame.
pub(crate) const MAX_PULSE_DIRS: usize = 64;

/// The directories a session's [`PULSE_SOURCES_KEY`] value names that a
/// reader takes: its absolute lines, trimmed, the first [`MAX_PULSE_DIRS`].
pub(crate) fn recorded_dirs(value: &str) -> impl Iterator<Item = &str> {
    value.lines().map(str::trim).filter(|d| d.starts_with('/') && d.len() > 1).take(MAX_PULSE_DIRS)
}

/// pulse's source directories as the analyzer was built: the crates beside
/// it in its workspace.
const BUILT_PULSE_DIRS: &[&str] = &[
    concat!(env!("CARGO_MANIFEST_DIR"), "/../alloc"),
    concat!(env!("CARGO_MANIFEST_DIR"), "/../runtime"),
];

/// A mangled symbol (legacy `_ZN…` or v0 `_R…`), demangled without its
/// hash; `None` for a name that is not mangled.
fn demangled(name: &str) -> Option<String> {
    let looks_mangled = name.starts_with("_ZN")
        || name.starts_with("__ZN")
        || name.starts_with("_R")
        || name.starts_with("__R");
    if !looks_mangled {
        return None;
    }
    rustc_demangle::try_demangle(name).ok().map(|d| format!("{d:#}"))
}

/// What `f` is. Its file decides where it has one; its name where it has
/// none. The allocator's entry points are told by name either way: the
/// `#[global_allocator]` shims are placed at the program's own line that
/// declares the allocator.
fn classify(f: &Frame, pulse_dirs: &[String]) -> FrameKind {
    classify_with(f, &mut HashMap::default(), pulse_dirs)
}

/// [`classify`], with what each file says kept in `files` (for
/// `pulse_dirs`: the caller clears it when they change).
fn classify_with(
    f: &Frame,
    files: &mut HashMap<String, FileFacts>,
    pulse_dirs: &[String],
) -> FrameKind {
    let name = f.function.as_str();
    if is_entry(name) {
        return FrameKind::Plumbing;
    }
    if f.file.is_empty() {
        if name.is_empty() || name.starts_with("0x") {
            return FrameKind::Unknown;
        }
        return classify_name(name);
    }
    let file = match files.get(f.file.as_str()) {
        Some(&facts) => facts,
        None => {
            let facts = FileFacts::of(&f.file, pulse_dirs);
            files.insert(f.file.clone(), facts);
            facts
        }
    };
    // The C runtime's start-up (libc's, with line tables of their own). A
    // `main` in a Rust file is the program's own: under line-tables-only an
    // inlined frame has its short name.
    let c_start = C_START.contains(&name) && !file.rust;
    if c_start || file.c {
        return FrameKind::Std;
    }
    // pulse's own directories, or (a session recorded elsewhere) a full
    // name in one of pulse's crates.
    if file.pulse || (is_path(name) && classify_name(name) == FrameKind::Pulse) {
        return FrameKind::Pulse;
    }
    // A relative path with no crate directory is std's, unless the
    // function's path names a crate of the program's.
    let relative_std = || !is_path(name) || classify_name(name) == FrameKind::Std;
    if file.std || (file.relative_std && relative_std()) {
        return FrameKind::Std;
    }
    file.dependency.unwrap_or(FrameKind::Own)
}

/// What a frame's source file says of it, whatever its function.
#[derive(Debug, Clone, Copy)]
struct FileFacts {
    /// A Rust source file.
    rust: bool,
    /// C or assembly: the C runtime's.
    c: bool,
    /// In one of pulse's directories or crates.
    pulse: bool,
    /// rustc's library (see [`is_std_path`]).
    std: bool,
    /// A relative `src/…` or `library/…` path: std's unless the function
    /// names a crate of the program's.
    relative_std: bool,
    /// A dependency's file: [`FrameKind::Plumbing`] for collections'
    /// plumbing, [`FrameKind::Dependency`] otherwise.
    dependency: Option<FrameKind>,
}

impl FileFacts {
    fn of(path: &str, pulse_dirs: &[String]) -> FileFacts {
        let file = normalized(path);
        let dependency = is_dependency_file(&file).then(|| {
            if PLUMBING_DEPENDENCIES.iter().any(|c| file.contains(&format!("/{c}-"))) {
                FrameKind::Plumbing
            } else {
                FrameKind::Dependency
            }
        });
        FileFacts {
            rust: path.ends_with(".rs"),
            c: [".c", ".h", ".S"].iter().any(|e| path.ends_with(e)),
            pulse: pulse_dirs.iter().any(|d| file.starts_with(d.as_str()))
                || is_pulse_package_file(&file),
            std: is_std_path(&file),
            relative_std: file.starts_with("src/") || file.starts_with("library/"),
            dependency,
        }
    }
}

/// `path` with `/./` and `dir/../` taken out, so that a directory named
/// through `..` (the analyzer's own workspace) is its prefix.
fn normalized(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains("/.") {
        return path.into();
    }
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "." => {}
            ".." if parts.len() > 1 => {
                parts.pop();
            }
            _ => parts.push(p),
        }
    }
    parts.join("/").into()
}

/// Registry crates that are collections' plumbing, like std's own.
const PLUMBING_DEPENDENCIES: &[&str] = &["hashbrown"];

/// pulse's crates as a dependency from the registry or a git checkout.
fn is_pulse_package_file(file: &str) -> bool {
    if !is_dependency_file(file) {
        return false;
    }
    file.split('/').any(|c| {
        ["pulse-alloc-", "pulse-format-", "pulse-macros-"].iter().any(|p| c.starts_with(p))
            || c.strip_prefix("pulse-")
                .is_some_and(|v| v.starts_with(|ch: char| ch.is_ascii_digit()))
    })
}

/// rustc's library: `/rustc/<hash>/library/…`, a toolchain's `rust-src`,
/// std's vendored crates (`/rust/deps/…`). Some of std's line tables give
/// relative `src/…` and `library/…` paths instead ([`FileFacts`]).
fn is_std_path(file: &str) -> bool {
    file.starts_with("/rustc/")
        || file.starts_with("/rust/deps/")
        || file.contains("/rustlib/src/rust/")
        || file.contains("/library/std/src/")
        || file.contains("/library/core/src/")
        || file.contains("/library/alloc/src/")
}

fn is_dependency_file(file: &str) -> bool {
    file.contains("/.cargo/registry/")
        || file.contains("/.cargo/git/checkouts/")
        || file.contains("/registry/src/")
        || file.contains("/git/checkouts/")
        || file.contains("/vendor/")
}

/// The C runtime's start-up: where every stack ends.
const C_START: &[&str] = &[
    "__libc_start_main",
    "__libc_start_call_main",
    "_start",
    "start_thread",
    "clone",
    "clone3",
    "main",
];

/// Crates of the standard library and the C runtime's start-up symbols.
const STD_CRATES: &[&str] = &[
    "std",
    "core",
    "alloc",
    "hashbrown",
    "std_detect",
    "panic_unwind",
    "panic_abort",
    "compiler_builtins",
    "__libc_start_main",
    "__libc_start_call_main",
    "_start",
    "start_thread",
    "clone",
    "clone3",
    "main",
];

/// pulse's crates, by name.
const PULSE_CRATES: &[&str] = &["pulse_alloc", "pulse", "pulse_format"];

/// What a frame without a file is, by its name.
fn classify_name(name: &str) -> FrameKind {
    if is_entry(name) {
        return FrameKind::Plumbing;
    }
    let s = trim_prefix(trim_prefix(name.trim_start_matches(['<', '&', '*']), "mut "), "dyn ");
    // Slices, arrays, tuples, primitives and bare generic parameters are the library's.
    if s.starts_with(['[', '(']) {
        return FrameKind::Std;
    }
    let first = crate_of(name);
    if PULSE_CRATES.contains(&first) {
        return FrameKind::Pulse;
    }
    if is_primitive(first)
        || (first.len() == 1 && first.chars().all(|c| c.is_ascii_uppercase()))
        || STD_CRATES.contains(&first)
    {
        return FrameKind::Std;
    }
    FrameKind::Unplaced
}

/// The crate a function's path starts with (for `<Type as Trait>::method`,
/// the type's).
fn crate_of(name: &str) -> &str {
    let s = trim_prefix(trim_prefix(name.trim_start_matches(['<', '&', '*']), "mut "), "dyn ");
    s.split([':', '<', ' ', '>']).next().unwrap_or("")
}

/// The global allocator's entry points: `__rust_alloc` and its kin, and a
/// `GlobalAlloc` implementation's methods.
fn is_entry(name: &str) -> bool {
    static GLOBAL_ALLOC: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| {
            memchr::memmem::Finder::new(" as core::alloc::global::GlobalAlloc>::")
        });
    let s = trim_prefix(name.trim_start_matches('<'), "__rustc::");
    s.starts_with("__rust_")
        || s.starts_with("__rg_")
        || s.starts_with("__rdl_")
        || GLOBAL_ALLOC.find(name.as_bytes()).is_some()
}

/// `s` without every leading `prefix`: `trim_start_matches` with a string
/// pattern, without building a searcher for it at every call (this runs
/// several times for each of a session's symbols).
fn trim_prefix<'a>(mut s: &'a str, prefix: &str) -> &'a str {
    while let Some(rest) = s.strip_prefix(prefix) {
        s = rest;
    }
    s
}

/// Whether `name` is a path (has a `::`): `contains("::")` without a
/// searcher built at every call.
fn is_path(name: &str) -> bool {
    let b = name.as_bytes();
    memchr::memchr_iter(b':', b).any(|i| b.get(i + 1) == Some(&b':'))
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

/// A path relative to `root` when under it, else its last three components.
pub(crate) fn short_path<'a>(path: &'a str, root: &str) -> &'a str {
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

    const RUSTC: &str = "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library";
    const REGISTRY: &str = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f";

    fn symbols() -> Symbols {
        let mut s = Symbols::default();
        s.set_pulse_dirs(Some("/work/pulse/alloc\n/work/pulse/runtime"));
        s
    }

    /// Frames as sessions of the `realworld` programs recorded them, with
    /// full, line-tables-only and no debug information.
    #[test]
    fn frames_are_told_apart_by_what_they_are() {
        let s = symbols();
        use FrameKind::*;
        let cases: &[(&str, String, FrameKind)] = &[
            (
                "pulse_alloc::site::instruction_pointer",
                "/work/pulse/alloc/src/site.rs".into(),
                Pulse,
            ),
            // line-tables-only: short names, pulse's file.
            ("instruction_pointer", "/work/pulse/alloc/src/site.rs".into(), Pulse),
            ("alloc_recorded", "/work/pulse/alloc/src/thread.rs".into(), Pulse),
            ("alloc::alloc::alloc", format!("{RUSTC}/alloc/src/alloc.rs"), Std),
            ("grow_one", format!("{RUSTC}/alloc/src/raw_vec/mod.rs"), Std),
            ("<T as core::convert::Into<U>>::into", "src/convert/mod.rs".into(), Std),
            ("alloc::boxed::Box<T>::new", format!("{RUSTC}/alloc/src/boxed.rs"), Std),
            ("reserve_rehash", "/rust/deps/hashbrown-0.15.5/src/raw/mod.rs".into(), Std),
            ("__rustc::__rust_alloc", String::new(), Plumbing),
            ("__rg_alloc", "/home/me/app/src/main.rs".into(), Plumbing),
            (
                "<pulse_alloc::tracking::Alloc<A> as core::alloc::global::GlobalAlloc>::alloc",
                String::new(),
                Plumbing,
            ),
            (
                "hashbrown::raw::RawTable<T,A>::reserve_rehash",
                format!("{REGISTRY}/hashbrown-0.15.2/src/raw/mod.rs"),
                Plumbing,
            ),
            (
                "jaq_core::box_iter::box_once",
                format!("{REGISTRY}/jaq-core-3.1.2/src/box_iter.rs"),
                Dependency,
            ),
            ("box_once", format!("{REGISTRY}/jaq-core-3.1.2/src/box_iter.rs"), Dependency),
            (
                "<jaq_json::Val as core::clone::Clone>::clone",
                format!("{REGISTRY}/jaq-json-2.0.3/src/lib.rs"),
                Dependency,
            ),
            ("ignore::walk::Worker::run", "/src/vendor/ignore/src/walk.rs".into(), Dependency),
            (
                "dep::f",
                "/home/me/.cargo/git/checkouts/dep-1a2b/abc123/src/lib.rs".into(),
                Dependency,
            ),
            ("pulse_realworld::jq", "/work/pulse/realworld/src/lib.rs".into(), Own),
            ("jq", "/work/pulse/realworld/src/lib.rs".into(), Own),
            // line-tables-only: the program's `main`, inlined, by its short name.
            ("main", "/home/me/app/src/main.rs".into(), Own),
            ("main", String::new(), Std),
            ("__libc_start_call_main", "../sysdeps/nptl/libc_start_call_main.h".into(), Std),
            (
                "pulse_alloc::thread::on_alloc",
                format!("{REGISTRY}/pulse-alloc-0.1.0/src/thread.rs"),
                Pulse,
            ),
            // No line tables: names decide.
            ("pulse_alloc::thread::alloc_recorded", String::new(), Pulse),
            ("alloc::raw_vec::RawVecInner<A>::grow_amortized", String::new(), Std),
            ("<[T] as alloc::slice::hack::ConvertVec>::to_vec", String::new(), Std),
            ("std::rt::lang_start_internal", String::new(), Std),
            ("jaq_core::box_iter::box_once", String::new(), Unplaced),
            ("myapp::main", String::new(), Unplaced),
            ("0x55d0c0ffee", String::new(), Unknown),
            // A relative path, a function of the program's: not std's.
            ("myapp::convert", "src/convert/mod.rs".into(), Own),
        ];
        for (function, file, want) in cases {
            assert_eq!(s.kind(&f(function, file)), *want, "{function} in {file:?}");
        }
        // The same through a session's symbols, whose files' facts are
        // worked out once a file for all of its frames (several cases share
        // a file), before pulse's directories are known and after.
        let mut s = Symbols::default();
        for (addr, (function, file, _)) in cases.iter().enumerate() {
            s.add_symbol(addr as u64, f(function, file));
        }
        s.set_pulse_dirs(Some("/work/pulse/alloc\n/work/pulse/runtime"));
        for (addr, (function, file, want)) in cases.iter().enumerate() {
            assert_eq!(s.symbols[&(addr as u64)][0].kind, *want, "{function} in {file:?}");
        }
    }

    #[test]
    fn mangled_names_are_demangled() {
        let mut s = symbols();
        s.add_site(1, vec![10, 20]);
        s.add_symbol(10, f("_ZN11pulse_alloc4site19instruction_pointer17h0123456789abcdefE", ""));
        s.add_symbol(20, f("_ZN5myapp4main17h0123456789abcdefE", ""));
        let stack = s.stack(1);
        assert_eq!(stack[0].function, "pulse_alloc::site::instruction_pointer");
        assert_eq!(s.kind(&stack[0]), FrameKind::Pulse);
        assert_eq!(s.location(1).unwrap().function, "myapp::main");
    }

    /// A jq allocation's stack as a release build with full debug
    /// information recorded it, cut at depths 8, 32 and 64.
    #[test]
    fn the_site_is_the_innermost_dependency_or_program_frame_at_any_depth() {
        let frames = [
            ("pulse_alloc::site::instruction_pointer", "/work/pulse/alloc/src/site.rs"),
            ("pulse_alloc::thread::alloc_recorded", "/work/pulse/alloc/src/thread.rs"),
            ("alloc::alloc::alloc", &format!("{RUSTC}/alloc/src/alloc.rs")),
            ("alloc::boxed::Box<T>::new", &format!("{RUSTC}/alloc/src/boxed.rs")),
            ("jaq_core::box_iter::box_once", &format!("{REGISTRY}/jaq-core-3.1.2/src/box_iter.rs")),
            (
                "jaq_core::filter::<impl jaq_core::compile::TermId>::run",
                &format!("{REGISTRY}/jaq-core-3.1.2/src/filter.rs"),
            ),
            (
                "core::ops::function::FnOnce::call_once",
                &format!("{RUSTC}/core/src/ops/function.rs"),
            ),
            ("jaq_core::filter::cartesian", &format!("{REGISTRY}/jaq-core-3.1.2/src/filter.rs")),
            ("pulse_realworld::jq", "/work/pulse/realworld/src/lib.rs"),
            ("real_pulse::main", "/work/pulse/realworld/src/bin/real_pulse.rs"),
            ("std::rt::lang_start_internal", &format!("{RUSTC}/std/src/rt.rs")),
        ];
        for depth in [5, 8, 32, 64] {
            let mut s = symbols();
            let n = depth.min(frames.len());
            s.add_site(1, (0..n as u64).collect());
            for (i, (function, file)) in frames[..n].iter().enumerate() {
                s.add_symbol(i as u64, f(function, file));
            }
            let site = s.site(1).unwrap();
            assert_eq!(site.frame.function, "jaq_core::box_iter::box_once", "depth {depth}");
            assert_eq!(site.kind, FrameKind::Dependency);
            let caller = site.called_from.map(|c| c.function);
            if depth > 8 {
                assert_eq!(caller.as_deref(), Some("pulse_realworld::jq"), "depth {depth}");
                let user: Vec<String> = s.user_stack(1).into_iter().map(|f| f.function).collect();
                assert_eq!(user.first().unwrap(), "jaq_core::box_iter::box_once");
                assert_eq!(user.last().unwrap(), "real_pulse::main", "start-up trimmed");
            } else {
                assert_eq!(caller, None, "depth {depth}: the program's frame is past the stack");
            }
        }
    }

    #[test]
    fn a_std_function_is_a_site_only_without_code_above_it() {
        // ripgrep's walker pushing onto a path buffer: std's `push_slice`
        // is plumbing under `ignore`'s frame.
        let mut s = symbols();
        s.add_site(1, vec![1, 2, 3, 4, 5]);
        s.add_symbol(
            1,
            f("pulse_alloc::thread::alloc_recorded", "/work/pulse/alloc/src/thread.rs"),
        );
        s.add_symbol(
            2,
            f("alloc::raw_vec::RawVec<T,A>::reserve", &format!("{RUSTC}/alloc/src/raw_vec/mod.rs")),
        );
        s.add_symbol(
            3,
            f(
                "<std::sys::os_str::bytes::Buf>::push_slice",
                &format!("{RUSTC}/std/src/sys/os_str/bytes.rs"),
            ),
        );
        s.add_symbol(4, f("std::path::PathBuf::_push", &format!("{RUSTC}/std/src/path.rs")));
        s.add_symbol(
            5,
            f("ignore::walk::Worker::run", &format!("{REGISTRY}/ignore-0.4.23/src/walk.rs")),
        );
        assert_eq!(s.location(1).unwrap().function, "ignore::walk::Worker::run");
        // A thread's start-up: nothing but std past pulse.
        s.add_site(2, vec![1, 2, 6, 7]);
        s.add_symbol(
            6,
            f(
                "std::sys::thread_info::set_current_info",
                &format!("{RUSTC}/std/src/sys/thread_info.rs"),
            ),
        );
        s.add_symbol(7, f("std::rt::lang_start_internal", &format!("{RUSTC}/std/src/rt.rs")));
        assert_eq!(s.location(2).unwrap().function, "std::sys::thread_info::set_current_info");
        assert!(s.location(3).is_none());
    }

    #[test]
    fn builds_without_frame_pointers_or_line_tables_are_told() {
        let mut s = symbols();
        // Stacks of two frames: pulse's and one more.
        s.add_site(1, vec![1, 2]);
        s.add_symbol(
            1,
            f("pulse_alloc::thread::alloc_recorded", "/work/pulse/alloc/src/thread.rs"),
        );
        s.add_symbol(2, f("std::rt::lang_start_internal", &format!("{RUSTC}/std/src/rt.rs")));
        let w = s.build_warnings([(1, 100)].into_iter(), Some(32));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("force-frame-pointers=yes"), "{w:?}");
        // Deep stacks whose code has no file.
        s.add_site(2, vec![1, 3, 4, 5, 2]);
        s.add_symbol(3, f("__rustc::__rust_alloc", ""));
        s.add_symbol(4, f("myapp::parse", ""));
        s.add_symbol(5, f("myapp::main", ""));
        let w = s.build_warnings([(2, 100)].into_iter(), Some(32));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("debug = \"line-tables-only\""), "{w:?}");
        // No stack read at all (every event at site 0): the frame pointer
        // register held no frame of the thread's stack.
        let none = Symbols::default();
        let w = none.build_warnings([(0, 100)].into_iter(), Some(32));
        assert!(w.len() == 1 && w[0].contains("force-frame-pointers=yes"), "{w:?}");
        assert!(
            none.build_warnings([(0, 100)].into_iter(), None).is_empty(),
            "no depth: no stacks asked for"
        );
        // A good build: nothing to say.
        s.add_symbol(6, f("myapp::parse", "/home/me/app/src/main.rs"));
        s.add_site(3, vec![1, 3, 6, 5, 2]);
        assert!(s.build_warnings([(3, 100), (1, 1)].into_iter(), Some(32)).is_empty());
    }

    #[test]
    fn paths_are_shortened_for_reading() {
        assert_eq!(short_path("/work/app/src/main.rs", "/work/app"), "src/main.rs");
        assert_eq!(short_path("/a/b/c/d/e.rs", ""), "c/d/e.rs");
        assert_eq!(project_root("/work/app/target/release/app"), "/work/app");
    }
}
