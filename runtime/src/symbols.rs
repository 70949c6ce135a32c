//! Symbolizing the sites' frames while the program runs.
//!
//! The collector hands every frame address of every new site definition to
//! the symbolizer's threads ([`Worker`]), which resolve them as they come,
//! a compilation unit's addresses at a time, into `Symbol` records that the
//! collector writes in its next round's chunks: a session cut short (a
//! `SIGKILL`) still names the sites defined before its last rounds. What is
//! left at the end of the session is resolved then, while the program
//! waits. Where no thread can be started, the collector resolves them
//! itself, for [`ROUND_BUDGET`] a round.
//!
//! An address is mapped to its object (the executable or a shared library)
//! and its address in that file through `/proc/self/maps` (no loader lock:
//! a thread inside `dlopen` may be waiting on a full ring for the
//! collector). The object is mapped, not read, and its DWARF is read
//! straight from the mapping, one unit at a time: `.debug_aranges` names
//! the unit of each address, and the queued addresses of one unit are
//! resolved together, in one pass over the unit's entries and one over its
//! line program (see [`Dwarf::unit_frames`]), into the frames `addr2line`
//! gives. Nothing is copied, and nothing parsed is kept but the few units
//! that names were last taken from; names are read from `.debug_str` with
//! `pread` ([`Strings`]). Pages of the mapping count toward the process's
//! resident memory as they are touched (the kernel maps the pages around
//! each one touched that are in the page cache, 64 KiB by default), so
//! they are released (`MADV_DONTNEED`; they are read back from the page
//! cache when needed again) whenever the process's file-backed resident
//! memory has grown by [`RELEASE_BYTES`] since the last release, and when
//! nothing is left to resolve. An object without DWARF names its frames
//! from its symbol table, without file or line. A stripped object's debug
//! information is looked for in a separate file (by build id under
//! `/usr/lib/debug`, or by its `.gnu_debuglink`).

use std::cell::OnceCell;
use std::collections::HashMap;

use rustc_hash::{FxHashMap, FxHashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use object::{Object as _, ObjectSection as _, ObjectSegment as _};
use pulse_format::Record;

/// The most time one round spends resolving addresses where the collector
/// resolves them itself (at least one unit's addresses are resolved each
/// round there are any).
pub(crate) const ROUND_BUDGET: Duration = Duration::from_millis(2);

/// How much the process's file-backed resident memory may grow before the
/// mappings' pages are released: about what symbolizing adds to the
/// resident set at most, give or take one unit's pages.
const RELEASE_BYTES: usize = 1 << 20;

type Slice = gimli::EndianSlice<'static, gimli::RunTimeEndian>;

/// No object, or no unit: sorts after every real one.
const NONE: usize = usize::MAX;

/// Frame addresses waiting to be resolved, and the objects that resolve them.
#[derive(Default)]
pub(crate) struct Symbolizer {
    /// Addresses queued and not yet placed.
    queued: Vec<u64>,
    /// Addresses placed, by object, unit and address, the first last.
    placed: Vec<(Place, u64)>,
    /// Every address ever queued: each is resolved and written once.
    seen: FxHashSet<u64>,
    /// File-backed mappings of the process, sorted by start address.
    regions: Vec<Region>,
    /// Whether `regions` was read since the last address it could not place.
    regions_fresh: bool,
    /// Objects, by index in `paths`; `None` for one that cannot be read.
    objects: Vec<Option<Box<ObjectFile>>>,
    paths: HashMap<String, usize>,
    /// Whether a mapping was touched since the pages were last released.
    touched: bool,
    /// The process's file-backed resident bytes after the last release.
    resident: usize,
    /// Addresses resolved so far, for the tests.
    pub(crate) resolved: u64,
}

impl std::fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("pending", &self.pending())
            .field("seen", &self.seen.len())
            .field("objects", &self.objects.len())
            .finish_non_exhaustive()
    }
}

/// One line of `/proc/self/maps` that maps a file.
#[derive(Debug)]
struct Region {
    start: u64,
    end: u64,
    /// File offset of `start`.
    offset: u64,
    path: String,
}

/// Where an address is: its object (an index into `objects`), the unit
/// that holds it (an offset in `.debug_info`) and its address in the
/// object's own layout. Sorting places groups the addresses of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    object: usize,
    unit: usize,
    svma: u64,
}

impl Place {
    /// Which of `n` shares the address is in: by a hash of its unit, so that
    /// a unit's addresses are resolved together; an address in no unit is
    /// the first share's.
    fn share(&self, n: usize) -> usize {
        if n <= 1 || self.object == NONE || self.unit == NONE {
            return 0;
        }
        let h = (self.unit as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        ((h >> 32) % n as u64) as usize
    }
}

/// An object file mapped into memory, with its DWARF read unit by unit.
struct ObjectFile {
    // Fields drop in declaration order: everything above `map` borrows it
    // and goes first.
    dwarf: Option<Dwarf>,
    symtab: Symtab,
    file: object::File<'static>,
    /// Loadable segments: file offset, size in the file, virtual address.
    segments: Vec<(u64, u64, u64)>,
    map: memmap2::Mmap,
}

/// One frame of an address: the function, its file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame {
    function: String,
    file: String,
    line: u32,
}

impl Symbolizer {
    /// Queues the frames of a new site that no earlier site had.
    pub(crate) fn add(&mut self, frames: &[u64]) {
        for &a in frames {
            if self.seen.insert(a) {
                self.queued.push(a);
            }
        }
    }

    /// Addresses not yet resolved.
    pub(crate) fn pending(&self) -> usize {
        self.queued.len() + self.placed.len()
    }

    /// Resolves queued addresses into `Symbol` records in `enc` (see
    /// [`Symbolizer::resolve_next`]) until `until` has passed or `enc`
    /// holds `max_len` encoded bytes; the rest stay queued.
    #[cfg(test)]
    fn resolve_into(
        &mut self,
        enc: &mut pulse_format::ChunkEncoder,
        until: Option<std::time::Instant>,
        max_len: usize,
    ) {
        while self.resolve_next(&mut |r| enc.push(&r)) > 0 {
            if until.is_some_and(|t| std::time::Instant::now() >= t) || enc.encoded_len() >= max_len
            {
                break;
            }
        }
        self.release();
    }

    /// Resolves the queued addresses of one unit (the first, in the order
    /// of their objects and units), or one address that is in none, into
    /// `Symbol` records handed to `emit`: one per frame, the inlined ones
    /// first, the function that holds the address last. An address nothing
    /// names gets one empty record, so that it is not taken for one that
    /// was never resolved. Returns how many addresses it resolved (none
    /// when none is queued).
    pub(crate) fn resolve_next(&mut self, emit: &mut dyn FnMut(Record)) -> usize {
        self.place_queued();
        let Some(&(first, _)) = self.placed.last() else { return 0 };
        // A unit's addresses together; any other address alone.
        let n = if first.object != NONE && first.unit != NONE {
            self.placed
                .iter()
                .rev()
                .take_while(|(p, _)| (p.object, p.unit) == (first.object, first.unit))
                .count()
        } else {
            1
        };
        let mut group = self.placed.split_off(self.placed.len() - n);
        group.reverse();
        let mut frames = Vec::new();
        self.frames_of(&group, &mut frames);
        for ((_, addr), mut fs) in group.iter().zip(frames) {
            if fs.is_empty() {
                fs.push(Frame { function: String::new(), file: String::new(), line: 0 });
            }
            for f in fs {
                emit(Record::Symbol {
                    addr: *addr,
                    function: f.function,
                    file: f.file,
                    line: f.line,
                });
            }
        }
        self.resolved += n as u64;
        // Resolving is pulse at work: a thread waiting for ring room, or the
        // end of the session, keeps waiting rather than taking it for a
        // stall.
        pulse_alloc::note_progress();
        if self.touched && file_resident() >= self.resident + RELEASE_BYTES {
            self.release();
        }
        if self.pending() == 0 {
            // Nothing left to resolve: what was parsed goes back to the
            // program, until new sites come.
            for object in self.objects.iter_mut().flatten() {
                object.forget_units();
            }
            self.release();
        }
        n
    }

    /// Places the addresses queued since the last call, and sorts them
    /// with the others by object, unit and address, the first last.
    fn place_queued(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        // A library loaded since the maps were read is looked for once.
        self.regions_fresh = false;
        for a in std::mem::take(&mut self.queued) {
            let place = self.place(a);
            self.placed.push((place, a));
        }
        self.placed.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// Places the addresses queued, keeps the first of `n` shares of them
    /// (by unit: see [`Place::share`]) and hands back the others', one list
    /// a share, for other symbolizers to resolve.
    fn take_shares(&mut self, n: usize) -> Vec<Vec<u64>> {
        let mut others = vec![Vec::new(); n];
        if n > 1 && !self.queued.is_empty() {
            self.place_queued();
            self.placed.retain(|(place, a)| match place.share(n) {
                0 => true,
                k => {
                    others[k].push(*a);
                    false
                }
            });
        }
        others
    }

    /// The frames of `addr`, innermost first; none if nothing names it.
    #[cfg(test)]
    fn resolve(&mut self, addr: u64, out: &mut Vec<Frame>) {
        let mut frames = Vec::new();
        let place = self.place(addr);
        self.frames_of(&[(place, addr)], &mut frames);
        *out = frames.pop().unwrap_or_default();
    }

    /// Where `addr` is (its object opened on first use).
    fn place(&mut self, addr: u64) -> Place {
        let nowhere = Place { object: NONE, unit: NONE, svma: addr };
        // A return address points after its call; the call is one byte
        // before. (A site's first frame, inside pulse, is not a return
        // address, but one byte back is still inside the same function.)
        let probe = addr.saturating_sub(1);
        let Some(region) = self.region(probe) else { return nowhere };
        let file_offset = probe - region.start + region.offset;
        let path = region.path.clone();
        let object = match self.paths.get(&path) {
            Some(&i) => i,
            None => {
                self.objects.push(ObjectFile::open(&path));
                self.paths.insert(path, self.objects.len() - 1);
                self.objects.len() - 1
            }
        };
        let Some(o) = &self.objects[object] else { return nowhere };
        let Some(svma) = o.file_to_svma(file_offset) else { return nowhere };
        let unit = o.dwarf.as_ref().and_then(|d| d.unit_of_address(svma)).unwrap_or(NONE);
        Place { object, unit, svma }
    }

    /// The frames of each address of `group` into `out`, one list each
    /// (empty where nothing names it). The addresses are all of one unit,
    /// or there is one.
    fn frames_of(&mut self, group: &[(Place, u64)], out: &mut Vec<Vec<Frame>>) {
        out.resize_with(group.len(), Vec::new);
        out.truncate(group.len());
        out.iter_mut().for_each(Vec::clear);
        let first = group[0].0;
        let Some(Some(object)) = self.objects.get_mut(first.object) else { return };
        self.touched = true;
        let svmas: Vec<u64> = group.iter().map(|(p, _)| p.svma).collect();
        object.frames(first.unit, &svmas, out, &mut self.resident);
    }

    /// The mapping that holds `addr`, reading `/proc/self/maps` again (once
    /// for each batch of addresses placed) when none does: a library may
    /// have been loaded since.
    fn region(&mut self, addr: u64) -> Option<&Region> {
        let find = |regions: &[Region]| {
            let i = regions.partition_point(|r| r.start <= addr).checked_sub(1)?;
            (addr < regions[i].end).then_some(i)
        };
        let i = match find(&self.regions) {
            Some(i) => i,
            None if !self.regions_fresh => {
                self.regions_fresh = true;
                self.regions = read_maps();
                find(&self.regions)?
            }
            None => return None,
        };
        Some(&self.regions[i])
    }

    /// Releases the pages of the mappings, if one was touched since the
    /// last release.
    pub(crate) fn release(&mut self) {
        if std::mem::take(&mut self.touched) {
            for object in self.objects.iter().flatten() {
                object.release();
            }
            self.resident = file_resident();
        }
    }
}

impl ObjectFile {
    /// Maps and parses the object at `path`; `None` if it is not an object
    /// this can read. Its DWARF, if any, is read lazily from then on.
    fn open(path: &str) -> Option<Box<ObjectFile>> {
        let (map, file, handle) = map_object(Path::new(path))?;
        let segments = file
            .segments()
            .map(|s| {
                let (offset, size) = s.file_range();
                (offset, size, s.address())
            })
            .collect();
        // A stripped object's DWARF and symbol table may be in a separate
        // file; the segments stay the object's own.
        let separate = match file.section_by_name(".debug_info") {
            Some(_) => None,
            None => separate_debug_file(&file, Path::new(path)).and_then(|p| map_object(&p)),
        };
        let (map, file, handle) = match separate {
            Some((debug_map, debug_file, debug_handle)) => {
                // The object's parse borrows its mapping: it goes first.
                drop(file);
                drop(map);
                (debug_map, debug_file, debug_handle)
            }
            None => (map, file, handle),
        };
        let endian = if file.is_little_endian() {
            gimli::RunTimeEndian::Little
        } else {
            gimli::RunTimeEndian::Big
        };
        let dwarf = Dwarf::new(&file, endian, handle);
        let object = ObjectFile { dwarf, symtab: Symtab::default(), file, segments, map };
        object.release();
        Some(Box::new(object))
    }

    /// The address in the object's own layout of the byte at `offset` in
    /// the file.
    fn file_to_svma(&self, offset: u64) -> Option<u64> {
        let &(start, _, vaddr) = self
            .segments
            .iter()
            .find(|&&(start, size, _)| (start..start.saturating_add(size)).contains(&offset))?;
        Some(vaddr + (offset - start))
    }

    /// The frames at each of `svmas` (sorted, all in the unit at `unit` of
    /// `.debug_info`, or one address and `unit` [`NONE`]) into `out`,
    /// innermost first, as `backtrace` names them: each DWARF frame (a
    /// function without a name in DWARF takes the symbol table's), or else
    /// the symbol table's entry alone (the table is read on first use).
    /// On the way, the mapping's pages are released whenever the process's
    /// file-backed resident memory has grown by [`RELEASE_BYTES`] past
    /// `resident` (updated then).
    fn frames(&mut self, unit: usize, svmas: &[u64], out: &mut [Vec<Frame>], resident: &mut usize) {
        let ObjectFile { dwarf, symtab, file, map, .. } = self;
        let symbol = |svma| symtab.containing(file, svma);
        let mut checkpoint = || {
            if file_resident() >= *resident + RELEASE_BYTES {
                release(map);
                *resident = file_resident();
            }
        };
        if let Some(dwarf) = dwarf {
            if unit != NONE {
                // On an error the addresses get what was found before it.
                let _ = dwarf.unit_frames(unit, svmas, &symbol, out, &mut checkpoint);
            } else if let Some(whole) = &dwarf.whole {
                for (&svma, out) in svmas.iter().zip(out.iter_mut()) {
                    if dwarf_frames(whole, svma, &symbol, out).is_err() {
                        out.clear();
                    }
                }
            }
        }
        for (&svma, out) in svmas.iter().zip(out.iter_mut()) {
            if out.is_empty() {
                if let Some(name) = symbol(svma) {
                    out.push(Frame { function: demangle(name), file: String::new(), line: 0 });
                }
            }
        }
    }

    /// Drops what was parsed of the object's units.
    fn forget_units(&mut self) {
        if let Some(d) = &mut self.dwarf {
            d.names.kept.clear();
            d.names.demangled = FxHashMap::default();
        }
    }

    /// Drops the mapping's resident pages; they are read back as touched.
    fn release(&self) {
        release(&self.map);
    }
}

/// Drops the resident pages of `map`, a mapping of an object; they are read
/// back as touched.
fn release(map: &memmap2::Mmap) {
    // SAFETY: the mapping is private, read-only and never written, so
    // discarding its pages loses nothing: the next access reads the same
    // bytes back from the file.
    let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
}

/// Symbol-table lookups made by scanning the table before it is sorted
/// into a map: a program with DWARF looks a few addresses up there at
/// most (its `main`, which the compiler writes no DWARF name for), and the
/// map of a large program's table takes MiBs to build.
const SCANS: usize = 16;

/// An object's symbol table, scanned for the first few addresses looked
/// up, then sorted into a map (on the next lookup).
#[derive(Default)]
struct Symtab {
    map: OnceCell<object::SymbolMap<object::SymbolMapName<'static>>>,
    scans: std::cell::Cell<usize>,
}

impl Symtab {
    /// The name of the symbol that holds `svma`, as `object`'s symbol map
    /// finds it.
    fn containing(&self, file: &object::File<'static>, svma: u64) -> Option<&'static [u8]> {
        if self.map.get().is_none() && self.scans.get() < SCANS {
            self.scans.set(self.scans.get() + 1);
            return scan_symbols(file, svma).map(str::as_bytes);
        }
        let map = self.map.get_or_init(|| file.symbol_map());
        map.containing(svma).map(|s| s.name().as_bytes())
    }
}

/// The symbol of `file` that holds `svma`, found by one pass over the
/// symbol table: what `object`'s `SymbolMap::containing` finds, without
/// building the map. Among the symbols with a name, defined, of a known or
/// unknown kind, the last one at or before `svma`; where several share its
/// address, the one the map keeps (a known kind, a size, the widest scope,
/// the last in the table, in that order); its size, where it has none, is
/// the distance to the next symbol or section end.
fn scan_symbols(file: &object::File<'static>, svma: u64) -> Option<&'static str> {
    use object::{Object as _, ObjectSection as _};
    // The symbols and sections of an ELF file read through its own types:
    // the same answers as `object::File`'s, without a dispatch on the
    // file's format at every symbol's every field (a scan of a program's
    // 26 000 symbols took 3.4 M instructions that way).
    let (above, best) = match file {
        object::File::Elf64(elf) => {
            let table = elf.symbol_table().or_else(|| elf.dynamic_symbol_table())?;
            nearest_symbol(&table, svma)
        }
        _ => {
            let table = file.symbol_table().or_else(|| file.dynamic_symbol_table())?;
            nearest_symbol(&table, svma)
        }
    };
    let (address, _, _, mut size, name) = best?;
    if size == 0 {
        // The next entry of the map: a symbol, or the end of a section.
        let next = file
            .sections()
            .map(|s| s.address().saturating_add(s.size()))
            .filter(|&end| end > address)
            .fold(above, u64::min);
        if next != u64::MAX {
            size = next - address;
        }
    }
    (size == 0 || svma.wrapping_sub(address) < size).then_some(name)
}

/// A symbol as [`nearest_symbol`] weighs it: its address, priority,
/// `!index`, size and name (the map's order).
type Weighed<'data> = (u64, u32, usize, u64, &'data str);

/// The symbol `SymbolMap` keeps for `svma` in `table`, and the first
/// address of a symbol past `svma`, for a size that must be guessed.
#[inline(always)]
fn nearest_symbol<'data>(
    table: &impl object::ObjectSymbolTable<'data>,
    svma: u64,
) -> (u64, Option<Weighed<'data>>) {
    use object::ObjectSymbol as _;
    let mut best: Option<Weighed<'data>> = None;
    // The first symbol address past `svma`, for a size that must be guessed.
    let mut above = u64::MAX;
    for symbol in table.symbols() {
        if !symbol.is_definition() {
            continue;
        }
        let address = symbol.address();
        if address > svma {
            // Its name decides whether it counts; only the nearest matters.
            if address < above && symbol.name().is_ok_and(|n| !n.is_empty()) {
                let known = matches!(
                    symbol.kind(),
                    object::SymbolKind::Text
                        | object::SymbolKind::Data
                        | object::SymbolKind::Unknown
                );
                if known {
                    above = address;
                }
            }
            continue;
        }
        if best.is_some_and(|b| address < b.0) {
            continue;
        }
        let mut priority = match symbol.kind() {
            object::SymbolKind::Text | object::SymbolKind::Data => 0u32,
            object::SymbolKind::Unknown => 1,
            _ => continue,
        };
        let size = symbol.size();
        priority = priority * 4 + u32::from(size == 0);
        priority = priority * 4
            + match symbol.scope() {
                object::SymbolScope::Unknown => 3,
                object::SymbolScope::Compilation => 2,
                object::SymbolScope::Linkage => 1,
                object::SymbolScope::Dynamic => 0,
            };
        let Ok(name) = symbol.name() else { continue };
        if name.is_empty() {
            continue;
        }
        let this = (address, priority, !symbol.index().0, size, name);
        let better = match best {
            None => true,
            Some(b) => address > b.0 || (this.1, this.2) < (b.1, b.2),
        };
        if better {
            best = Some(this);
        }
    }
    (above, best)
}

/// The DWARF frames of `svma` in `context` into `out`, innermost first:
/// each with its function's name (the symbol table's where DWARF has none),
/// file and line. For an object without `.debug_aranges`.
fn dwarf_frames<'a>(
    context: &addr2line::Context<Slice>,
    svma: u64,
    symbol: &impl Fn(u64) -> Option<&'a [u8]>,
    out: &mut Vec<Frame>,
) -> Result<(), gimli::Error> {
    let mut frames = context.find_frames(svma).skip_all_loads()?;
    while let Some(frame) = frames.next()? {
        let function = match &frame.function {
            Some(f) => demangle(f.name.slice()),
            None => symbol(svma).map(demangle).unwrap_or_default(),
        };
        let (file, line) = match frame.location {
            Some(l) => (l.file.unwrap_or_default().to_owned(), l.line.unwrap_or(0)),
            None => (String::new(), 0),
        };
        out.push(Frame { function, file, line });
    }
    Ok(())
}

/// Units kept for the names other units take from them (an inlined
/// function's name is often an entry of another unit, by its offset in
/// `.debug_info`), the most recently used first.
const NAMED_KEPT: usize = 8;

/// How many references a name is followed through.
const NAME_DEPTH: usize = 16;

/// An object's DWARF: which unit holds which addresses, and the few units
/// that names were last taken from.
///
/// A unit's queued addresses are resolved together, from the mapped
/// sections themselves: one pass over the unit's entries finds the
/// function that holds each address, one over each of those functions
/// the inlined calls around it, one over the unit's line program (only the
/// sequences that may hold one made into rows) the file and line of each.
/// Frames are what `addr2line`'s `find_frames` gives, but
/// a context over the whole object parses every unit's header,
/// abbreviations, file table and ranges up front (tens of MiB and a few
/// hundred milliseconds for a program the size of ripgrep), and one per
/// unit parses and keeps the line table and every function of the unit,
/// with the names of all their inlined calls. An object without
/// `.debug_aranges` falls back to a context over all its units.
struct Dwarf {
    /// Every section whole.
    sections: gimli::Dwarf<Slice>,
    /// Address ranges (begin, end) and the offset of their unit, by begin.
    aranges: Vec<Arange>,
    /// The units names are taken from.
    names: Names,
    /// The context over every unit, for an object without `.debug_aranges`.
    whole: Option<addr2line::Context<Slice>>,
}

/// An address range of `.debug_aranges`: its start, length and unit (the
/// unit's offset in `.debug_info`), in 16 bytes (a program the size of
/// ripgrep has some 16 000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Arange {
    begin: u64,
    len: u32,
    unit: u32,
}

/// The units of an object that names are taken from.
#[derive(Default)]
struct Names {
    /// Where units of `.debug_info` start, in order: those `.debug_aranges`
    /// names, and those found since between them.
    unit_starts: Vec<usize>,
    /// Units read for names, most recently used first: start, end, unit.
    kept: Vec<(usize, usize, Arc<gimli::Unit<Slice>>)>,
    /// `.debug_str`, read from the file rather than the mapping.
    strings: Option<Strings>,
    /// Names read from `.debug_str` and demangled, by their offset there:
    /// a function inlined in many places, or holding several addresses of
    /// several units, is demangled once.
    demangled: FxHashMap<usize, String>,
}

/// A name: bytes of the mapping, or a string of `.debug_str` by its offset
/// there, read with [`Strings::read`].
#[derive(Clone, Copy)]
enum Name {
    Bytes(Slice),
    Str(usize),
}

/// An object's `.debug_str`, whose strings names are read from with
/// `pread`, not through the mapping: the names of a unit's frames are
/// scattered all over the section, and each page touched in a mapping
/// brings the pages around it that are in the page cache into the resident
/// set with it (64 KiB).
struct Strings {
    file: std::fs::File,
    /// Where the section is in the file, and its size.
    offset: u64,
    size: u64,
}

impl Strings {
    /// The string at `at` in the section, without its terminating zero.
    fn read(&self, at: usize) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileExt as _;
        let mut out = Vec::new();
        let mut pos = at as u64;
        loop {
            let want = (self.size.checked_sub(pos)?).min(256) as usize;
            if want == 0 || out.len() > 1 << 20 {
                return None;
            }
            let start = out.len();
            out.resize(start + want, 0);
            let n = loop {
                match self.file.read_at(&mut out[start..], self.offset + pos) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    r => break r.ok()?,
                }
            };
            out.truncate(start + n);
            if let Some(end) = out[start..].iter().position(|&b| b == 0) {
                out.truncate(start + end);
                return Some(out);
            }
            if n == 0 {
                return None;
            }
            pos += n as u64;
        }
    }
}

/// An entry's address ranges, from `DW_AT_low_pc`, `DW_AT_high_pc` and
/// `DW_AT_ranges`, read as `addr2line` reads them.
#[derive(Default)]
struct Ranges {
    low_pc: Option<u64>,
    high_pc: Option<u64>,
    size: Option<u64>,
    list: Option<gimli::RangeListsOffset<usize>>,
}

impl Ranges {
    /// Takes `attr` in if it is one of the range attributes.
    fn take(&mut self, unit: gimli::UnitRef<'_, Slice>, attr: &gimli::Attribute<Slice>) {
        match (attr.name(), attr.value()) {
            (gimli::DW_AT_low_pc, gimli::AttributeValue::Addr(a)) => self.low_pc = Some(a),
            (gimli::DW_AT_low_pc, gimli::AttributeValue::DebugAddrIndex(i)) => {
                self.low_pc = unit.address(i).ok();
            }
            (gimli::DW_AT_high_pc, gimli::AttributeValue::Addr(a)) => self.high_pc = Some(a),
            (gimli::DW_AT_high_pc, gimli::AttributeValue::DebugAddrIndex(i)) => {
                self.high_pc = unit.address(i).ok();
            }
            (gimli::DW_AT_high_pc, gimli::AttributeValue::Udata(n)) => self.size = Some(n),
            (gimli::DW_AT_ranges, v) => self.list = unit.attr_ranges_offset(v).ok().flatten(),
            _ => {}
        }
    }

    /// Calls `f` with each non-empty range.
    fn each(
        &self,
        unit: gimli::UnitRef<'_, Slice>,
        mut f: impl FnMut(u64, u64),
    ) -> Result<(), gimli::Error> {
        let mut add = |begin: u64, end: u64| {
            if begin < end {
                f(begin, end);
            }
        };
        if let Some(offset) = self.list {
            let mut list = unit.ranges(offset)?;
            while let Some(r) = list.next()? {
                add(r.begin, r.end);
            }
        } else if let (Some(begin), Some(end)) = (self.low_pc, self.high_pc) {
            add(begin, end);
        } else if let (Some(begin), Some(size)) = (self.low_pc, self.size) {
            // A -1 tombstone overflows and is left out as empty.
            add(begin, begin.wrapping_add(size));
        }
        Ok(())
    }
}

/// The indices of the addresses of `sorted` in `[begin, end)`.
fn within(sorted: &[u64], begin: u64, end: u64) -> std::ops::Range<usize> {
    let from = sorted.partition_point(|&a| a < begin);
    let to = from + sorted[from..].partition_point(|&a| a < end);
    from..to
}

/// The attributes an entry takes its name from, in their order.
#[derive(Default)]
struct NameAttrs {
    attrs: Vec<(gimli::DwAt, gimli::AttributeValue<Slice>)>,
}

impl NameAttrs {
    fn take(&mut self, attr: &gimli::Attribute<Slice>) {
        if matches!(
            attr.name(),
            gimli::DW_AT_linkage_name
                | gimli::DW_AT_MIPS_linkage_name
                | gimli::DW_AT_name
                | gimli::DW_AT_abstract_origin
                | gimli::DW_AT_specification
        ) {
            self.attrs.push((attr.name(), attr.value()));
        }
    }
}

/// An inlined call that holds an address: the inlined function's name and
/// where it was called from (an index into the unit's files, and a line).
#[derive(Clone, Copy)]
struct Inlined {
    name: Option<Name>,
    call_file: Option<u64>,
    call_line: u32,
}

/// What a pass over one function's inlined calls works on.
struct Calls<'a> {
    /// The unit's addresses.
    svmas: &'a [u64],
    /// Those of the function, as indices into `svmas`.
    mine: &'a [usize],
    /// Per address, the inlined calls that hold it, outermost first.
    chains: &'a mut [Vec<Inlined>],
    /// How the unit's entries are read past.
    plans: &'a mut Plans,
}

/// How the entries of each of a unit's abbreviations are read past, worked
/// out at the first entry of each: most entries are only read past, and
/// `gimli` works out the size of each attribute of each entry as it goes.
#[derive(Default)]
struct Plans {
    /// By abbreviation code (compilers number them from 1 up).
    by_code: Vec<Option<Plan>>,
    /// The plan of an abbreviation whose code is past `MAX_CODE`.
    other: Option<Plan>,
}

/// The most abbreviation codes [`Plans`] keeps plans by.
const MAX_CODE: usize = 1 << 12;

/// How an entry of one abbreviation is read past.
struct Plan {
    /// Its attributes for `skip_attributes`, each run of fixed-size ones
    /// as one to four of the fixed-size forms that add up to it.
    skip: Vec<gimli::AttributeSpecification>,
    /// Whether it is a function with code: a subprogram with an address
    /// attribute.
    function: bool,
    /// The bytes of its attributes, where each has a fixed size.
    fixed: Option<usize>,
}

impl Plans {
    /// The plan of the abbreviation numbered `code` in `unit`.
    fn of_code(&mut self, code: u64, unit: &gimli::Unit<Slice>) -> Result<&Plan, gimli::Error> {
        let known = usize::try_from(code)
            .ok()
            .and_then(|c| self.by_code.get(c))
            .is_some_and(Option::is_some);
        if known {
            return Ok(self.by_code[code as usize].as_ref().expect("known"));
        }
        let abbrev =
            unit.abbreviations.get(code).ok_or(gimli::Error::InvalidAbbreviationCode(code))?;
        Ok(self.get(abbrev, &unit.header))
    }

    fn get(&mut self, abbrev: &gimli::Abbreviation, header: &gimli::UnitHeader<Slice>) -> &Plan {
        let code = usize::try_from(abbrev.code()).unwrap_or(usize::MAX);
        if code >= MAX_CODE {
            return self.other.insert(Plan::new(abbrev, header));
        }
        if self.by_code.len() <= code {
            self.by_code.resize_with(code + 1, || None);
        }
        self.by_code[code].get_or_insert_with(|| Plan::new(abbrev, header))
    }
}

impl Plan {
    fn new(abbrev: &gimli::Abbreviation, header: &gimli::UnitHeader<Slice>) -> Plan {
        let attributes = abbrev.attributes();
        let function = abbrev.tag() == gimli::DW_TAG_subprogram
            && attributes.iter().any(|a| {
                matches!(a.name(), gimli::DW_AT_low_pc | gimli::DW_AT_high_pc | gimli::DW_AT_ranges)
            });
        let fixed = attributes.iter().map(|spec| spec.size(header)).sum();
        let mut skip = Vec::new();
        let mut run = 0;
        let flush = |run: &mut usize, skip: &mut Vec<gimli::AttributeSpecification>| {
            let spec = |form| gimli::AttributeSpecification::new(gimli::DW_AT_sibling, form, None);
            while *run >= 16 {
                skip.push(spec(gimli::DW_FORM_data16));
                *run -= 16;
            }
            for (size, form) in [
                (8, gimli::DW_FORM_data8),
                (4, gimli::DW_FORM_data4),
                (2, gimli::DW_FORM_data2),
                (1, gimli::DW_FORM_data1),
            ] {
                if *run >= size {
                    skip.push(spec(form));
                    *run -= size;
                }
            }
        };
        for spec in attributes {
            match spec.size(header) {
                Some(size) => run += size,
                None => {
                    flush(&mut run, &mut skip);
                    skip.push(*spec);
                }
            }
        }
        flush(&mut run, &mut skip);
        Plan { skip, function, fixed }
    }
}

/// Where each unit's code is, from `.debug_aranges` as `gimli` reads it:
/// the ranges, and the offset in `.debug_info` of each set's unit.
fn aranges_gimli(section: &gimli::DebugAranges<Slice>) -> (Vec<Arange>, Vec<usize>) {
    let (mut aranges, mut unit_starts) = (Vec::new(), Vec::new());
    let mut headers = section.headers();
    while let Ok(Some(header)) = headers.next() {
        let unit = header.debug_info_offset().0;
        unit_starts.push(unit);
        let mut entries = header.entries();
        while let Ok(Some(e)) = entries.next() {
            let r = e.range();
            push_arange(&mut aranges, r.begin, r.end, unit);
        }
    }
    (aranges, unit_starts)
}

/// [`aranges_gimli`], read straight from the section's bytes where every
/// set has the shape compilers write for 64-bit code (32-bit DWARF,
/// version 2 or 3, 8-byte addresses, no segments); `None` where one does
/// not, for `gimli` to read. The same ranges, at a few instructions an
/// entry rather than `gimli`'s 150 (a Rust binary has tens of thousands,
/// read by each symbolizer thread as its first address comes).
fn aranges_plain(data: &[u8], endian: gimli::RunTimeEndian) -> Option<(Vec<Arange>, Vec<usize>)> {
    use gimli::Endianity as _;
    let u16_at = |b: &[u8], at: usize| Some(endian.read_u16(b.get(at..at + 2)?));
    let u32_at = |b: &[u8], at: usize| Some(endian.read_u32(b.get(at..at + 4)?));
    let u64_at = |b: &[u8], at: usize| Some(endian.read_u64(b.get(at..at + 8)?));
    // The lowest negative tombstone of an 8-byte address, which `gimli`
    // skips (-2 and -1).
    const TOMBSTONE: u64 = u64::MAX - 1;
    let (mut aranges, mut unit_starts) = (Vec::new(), Vec::new());
    let mut at = 0;
    while at < data.len() {
        let length = u32_at(data, at)?;
        if length >= 0xffff_fff0 {
            return None;
        }
        let set = data.get(at + 4..(at + 4).checked_add(length as usize)?)?;
        at += 4 + length as usize;
        // version, unit offset, address size, segment size; then padding
        // up to the first tuple, 16 bytes from the set's length field.
        if !matches!(u16_at(set, 0)?, 2 | 3) || set.get(6..8)? != [8, 0] || set.len() < 12 {
            return None;
        }
        let unit = u32_at(set, 2)? as usize;
        unit_starts.push(unit);
        for tuple in set[12..].chunks_exact(16) {
            let (begin, len) = (u64_at(tuple, 0)?, u64_at(tuple, 8)?);
            if (begin, len) == (0, 0) || begin >= TOMBSTONE {
                continue;
            }
            // An end past the address space ends the set, as in `gimli`.
            let Some(end) = begin.checked_add(len) else { break };
            push_arange(&mut aranges, begin, end, unit);
        }
    }
    Some((aranges, unit_starts))
}

/// Adds the range `[begin, end)` of the unit at `unit` to `aranges`.
fn push_arange(aranges: &mut Vec<Arange>, begin: u64, end: u64, unit: usize) {
    // Code the linker dropped keeps its entries, at address 0 (half of
    // them in a Rust binary): no code is there.
    if begin == 0 {
        return;
    }
    // A unit past 4 GiB of `.debug_info` is left to the symbol table, and
    // so is a range of 4 GiB or more: no unit has that much code, and one
    // in a damaged file would otherwise be cut into billions of pieces.
    let (Ok(unit), Ok(len)) = (u32::try_from(unit), u32::try_from(end - begin)) else { return };
    if len > 0 {
        aranges.push(Arange { begin, len, unit });
    }
}

impl Dwarf {
    fn new(
        file: &object::File<'static>,
        endian: gimli::RunTimeEndian,
        handle: std::fs::File,
    ) -> Option<Dwarf> {
        section(file, ".debug_info")?;
        let sections = load_sections(file, endian).ok()?;
        let (mut aranges, mut unit_starts) = section(file, ".debug_aranges")
            .and_then(|data| aranges_plain(data, endian))
            .unwrap_or_else(|| aranges_gimli(&sections.debug_aranges));
        // In link order, nearly sorted already: a stable sort merges the
        // runs it finds, where an unstable one would sort them all again.
        aranges.sort();
        unit_starts.sort();
        unit_starts.dedup();
        let whole = if aranges.is_empty() {
            Some(addr2line::Context::from_dwarf(load_sections(file, endian).ok()?).ok()?)
        } else {
            None
        };
        // Where `.debug_str` is borrowed whole (not compressed), its
        // strings can be read from the file.
        let strings = file
            .section_by_name(".debug_str")
            .filter(|_| section(file, ".debug_str").is_some())
            .and_then(|s| s.file_range())
            .map(|(offset, size)| Strings { file: handle, offset, size });
        let names = Names { unit_starts, strings, ..Names::default() };
        Some(Dwarf { sections, aranges, names, whole })
    }

    /// The unit that holds `svma`, by its offset in `.debug_info`.
    fn unit_of_address(&self, svma: u64) -> Option<usize> {
        let i = self.aranges.partition_point(|a| a.begin <= svma).checked_sub(1)?;
        let a = self.aranges[..=i].iter().rev().find(|a| svma - a.begin < u64::from(a.len))?;
        Some(a.unit as usize)
    }

    /// The frames of each of `svmas` (sorted, all in the unit at `base` of
    /// `.debug_info`) into `out`, innermost first, as `addr2line`'s
    /// `find_frames` gives them: the inlined calls that hold the address,
    /// innermost first, each named after the function inlined and placed
    /// where the next one in was called (the innermost where the line
    /// program places the address), then the function that holds them. An
    /// address no function holds gets one frame named from the symbol table
    /// if the line program places it, else none.
    fn unit_frames<'s>(
        &mut self,
        base: usize,
        svmas: &[u64],
        symbol: &impl Fn(u64) -> Option<&'s [u8]>,
        out: &mut [Vec<Frame>],
        checkpoint: &mut dyn FnMut(),
    ) -> Result<(), gimli::Error> {
        let Dwarf { sections, names, .. } = self;
        let header = sections.debug_info.header_from_offset(gimli::DebugInfoOffset(base))?;
        let unit = sections.unit(header)?;
        let u = gimli::UnitRef::new(sections, &unit);
        let n = svmas.len();

        // The function that holds each address: one pass over the entries.
        // Most are read past: an entry whose attributes all have a fixed
        // size is its abbreviation's code and that many bytes, skipped
        // here; the others are read with `gimli` from where they start.
        let mut plans = Plans::default();
        let mut function: Vec<Option<gimli::UnitOffset<usize>>> = vec![None; n];
        // Each address takes the first function that holds it: once every
        // one has its function, the rest of the unit changes nothing.
        let mut found = 0;
        let root = unit.header.root_offset().0;
        let bytes = unit.header.range_from(unit.header.root_offset()..)?.slice();
        let mut pos = 0;
        while pos < bytes.len() && found < n {
            let at = gimli::UnitOffset(root + pos);
            let (code, len) = uleb128(&bytes[pos..]).ok_or(gimli::Error::BadUnsignedLeb128)?;
            if code == 0 {
                // The end of an entry's children.
                pos += len;
                continue;
            }
            let plan = plans.of_code(code, &unit)?;
            // A declaration, or an inlined function's abstract instance,
            // has no addresses: only a function with code is read.
            // (An entry cut short by the unit's end is left to `gimli`,
            // which reports it.)
            if let (false, Some(size)) = (plan.function, plan.fixed) {
                if pos + len + size <= bytes.len() {
                    pos += len + size;
                    continue;
                }
            }
            let mut entries = unit.entries_raw(Some(at))?;
            let abbrev =
                entries.read_abbreviation()?.ok_or(gimli::Error::InvalidAbbreviationCode(0))?;
            if plan.function {
                let mut ranges = Ranges::default();
                for spec in abbrev.attributes() {
                    ranges.take(u, &entries.read_attribute(*spec)?);
                }
                ranges.each(u, |begin, end| {
                    for i in within(svmas, begin, end) {
                        if function[i].is_none() {
                            function[i] = Some(at);
                            found += 1;
                        }
                    }
                })?;
            } else {
                entries.skip_attributes(&plan.skip)?;
            }
            pos = entries.next_offset().0 - root;
        }

        checkpoint();
        // Each function's name, and the inlined calls around its addresses.
        let mut function_names: Vec<Option<Name>> = vec![None; n];
        let mut chains: Vec<Vec<Inlined>> = vec![Vec::new(); n];
        let mut by_function: Vec<(gimli::UnitOffset<usize>, usize)> =
            function.iter().enumerate().filter_map(|(i, f)| Some(((*f)?, i))).collect();
        by_function.sort_unstable();
        let mut mine = Vec::new();
        for group in by_function.chunk_by(|a, b| a.0 == b.0) {
            let at = group[0].0;
            mine.clear();
            mine.extend(group.iter().map(|&(_, i)| i));
            let mut entries = unit.entries_raw(Some(at))?;
            let depth = entries.next_depth();
            let Some(abbrev) = entries.read_abbreviation()? else { continue };
            let mut attrs = NameAttrs::default();
            for spec in abbrev.attributes() {
                attrs.take(&entries.read_attribute(*spec)?);
            }
            let name = names.entry_name(sections, &unit, base, &attrs);
            for &i in &mine {
                function_names[i] = name;
            }
            let mut calls = Calls { svmas, mine: &mine, chains: &mut chains, plans: &mut plans };
            names.inlined_calls(sections, &unit, base, &mut entries, depth, 0, &mut calls)?;
            checkpoint();
        }

        // The file and line of each address: one pass over the line program.
        let mut lines: Vec<Option<(u64, u32)>> = vec![None; n];
        let program = unit.line_program.as_ref();
        if let Some(program) = program {
            place_lines(program, svmas, &mut lines, true)?;
        }
        let mut files: FxHashMap<u64, String> = FxHashMap::default();
        let mut file_name = |index: u64| -> String {
            let Some(program) = program else { return String::new() };
            files
                .entry(index)
                .or_insert_with(|| {
                    program
                        .header()
                        .file(index)
                        .and_then(|f| render_file(u, f, program.header()).ok())
                        .unwrap_or_default()
                })
                .clone()
        };

        let Names { strings, demangled, .. } = names;
        let strings = strings.as_ref();
        let mut named = |name: Option<Name>, svma: u64| {
            let text = match name {
                Some(Name::Bytes(b)) => Some(demangle(b.slice())),
                // A name that could not be read is not kept: the next
                // address that needs it reads it again.
                Some(Name::Str(at)) => Some(match demangled.get(&at) {
                    Some(name) => name.clone(),
                    None => match strings.and_then(|s| s.read(at)) {
                        Some(raw) => demangled.entry(at).or_insert(demangle(&raw)).clone(),
                        None => String::new(),
                    },
                }),
                None => None,
            };
            text.unwrap_or_else(|| symbol(svma).map(demangle).unwrap_or_default())
        };
        for i in 0..n {
            let place = lines[i].map(|(f, line)| (file_name(f), line));
            if function[i].is_none() {
                if let Some((file, line)) = place {
                    out[i].push(Frame { function: named(None, svmas[i]), file, line });
                }
                continue;
            }
            let mut place = place.unwrap_or_default();
            for call in chains[i].iter().rev() {
                let (file, line) = std::mem::take(&mut place);
                out[i].push(Frame { function: named(call.name, svmas[i]), file, line });
                place = (call.call_file.map(&mut file_name).unwrap_or_default(), call.call_line);
            }
            let (file, line) = place;
            out[i].push(Frame { function: named(function_names[i], svmas[i]), file, line });
        }
        Ok(())
    }
}

impl Names {
    /// The start and end of the unit that holds byte `offset` of
    /// `.debug_info`: from the starts known, reading the headers after the
    /// nearest one (a unit `.debug_aranges` does not name) where needed.
    fn unit_span(
        &mut self,
        sections: &gimli::Dwarf<Slice>,
        offset: usize,
    ) -> Option<(usize, usize)> {
        let info = &sections.debug_info;
        let k = self.unit_starts.partition_point(|&s| s <= offset);
        let mut at = k.checked_sub(1).map_or(0, |k| self.unit_starts[k]);
        loop {
            let header = info.header_from_offset(gimli::DebugInfoOffset(at)).ok()?;
            let end = at.checked_add(header.length_including_self())?;
            if offset < end {
                if let Err(k) = self.unit_starts.binary_search(&at) {
                    self.unit_starts.insert(k, at);
                }
                return Some((at, end));
            }
            if end <= at {
                return None;
            }
            at = end;
        }
    }

    /// The unit that holds byte `offset` of `.debug_info`, read (or kept
    /// from before) for the names of its entries.
    fn named_unit(
        &mut self,
        sections: &gimli::Dwarf<Slice>,
        offset: usize,
    ) -> Option<(usize, Arc<gimli::Unit<Slice>>)> {
        if let Some(k) = self.kept.iter().position(|u| (u.0..u.1).contains(&offset)) {
            self.kept[..=k].rotate_right(1);
            return Some((self.kept[0].0, Arc::clone(&self.kept[0].2)));
        }
        let (start, end) = self.unit_span(sections, offset)?;
        let header = sections.debug_info.header_from_offset(gimli::DebugInfoOffset(start)).ok()?;
        let unit = Arc::new(unit_for_names(sections, header).ok()?);
        self.kept.truncate(NAMED_KEPT - 1);
        self.kept.insert(0, (start, end, Arc::clone(&unit)));
        Some((start, unit))
    }

    /// The name `value` (an entry's `DW_AT_abstract_origin` or
    /// `DW_AT_specification`) refers to, as `addr2line` follows it: the
    /// entry's linkage name, else its name, else where it refers to in
    /// turn, `depth` times at most. `unit` (starting at `base` in
    /// `.debug_info`) holds the entry that refers.
    fn name_of(
        &mut self,
        sections: &gimli::Dwarf<Slice>,
        unit: &gimli::Unit<Slice>,
        base: usize,
        value: gimli::AttributeValue<Slice>,
        depth: usize,
    ) -> Option<Name> {
        if depth == 0 {
            return None;
        }
        let end = base + unit.header.length_including_self();
        match value {
            gimli::AttributeValue::UnitRef(at) => self.name_at(sections, unit, base, at, depth),
            gimli::AttributeValue::DebugInfoRef(r) if (base..end).contains(&r.0) => {
                self.name_at(sections, unit, base, gimli::UnitOffset(r.0 - base), depth)
            }
            gimli::AttributeValue::DebugInfoRef(r) => {
                let (start, other) = self.named_unit(sections, r.0)?;
                self.name_at(sections, &other, start, gimli::UnitOffset(r.0 - start), depth)
            }
            _ => None,
        }
    }

    /// The name of the entry at `at` in `unit` (see [`Dwarf::name_of`]).
    fn name_at(
        &mut self,
        sections: &gimli::Dwarf<Slice>,
        unit: &gimli::Unit<Slice>,
        base: usize,
        at: gimli::UnitOffset<usize>,
        depth: usize,
    ) -> Option<Name> {
        let u = gimli::UnitRef::new(sections, unit);
        let mut entries = u.entries_raw(Some(at)).ok()?;
        let abbrev = entries.read_abbreviation().ok()??;
        let (mut name, mut next) = (None, None);
        for spec in abbrev.attributes() {
            let attr = entries.read_attribute(*spec).ok()?;
            match attr.name() {
                gimli::DW_AT_linkage_name | gimli::DW_AT_MIPS_linkage_name => {
                    if let Some(s) = self.string(sections, unit, attr.value()) {
                        return Some(s);
                    }
                }
                gimli::DW_AT_name => {
                    if let Some(s) = self.string(sections, unit, attr.value()) {
                        name = Some(s);
                    }
                }
                gimli::DW_AT_abstract_origin | gimli::DW_AT_specification => {
                    next = Some(attr.value());
                }
                _ => {}
            }
        }
        if name.is_some() {
            return name;
        }
        self.name_of(sections, unit, base, next?, depth - 1)
    }

    /// The string `value` is, as `addr2line` reads it (`Unit::attr_string`):
    /// one of `.debug_str` by its offset there where that section is read
    /// from the file, else the bytes.
    fn string(
        &self,
        sections: &gimli::Dwarf<Slice>,
        unit: &gimli::Unit<Slice>,
        value: gimli::AttributeValue<Slice>,
    ) -> Option<Name> {
        let offset = match (&self.strings, value) {
            (Some(_), gimli::AttributeValue::DebugStrRef(o)) => Some(o.0),
            (Some(_), gimli::AttributeValue::DebugStrOffsetsIndex(i)) => {
                Some(sections.string_offset(unit, i).ok()?.0)
            }
            _ => None,
        };
        match offset {
            // In the section, as the mapping's slice would be.
            Some(o) if (o as u64) < self.strings.as_ref().map_or(0, |s| s.size) => {
                Some(Name::Str(o))
            }
            Some(_) => None,
            None => sections.attr_string(unit, value).ok().map(Name::Bytes),
        }
    }

    /// The name of an entry with the attributes `attrs` (in their order), as
    /// `addr2line` names a function or an inlined call.
    fn entry_name(
        &mut self,
        sections: &gimli::Dwarf<Slice>,
        unit: &gimli::Unit<Slice>,
        base: usize,
        attrs: &NameAttrs,
    ) -> Option<Name> {
        let mut name = None;
        for &(at, value) in &attrs.attrs {
            match at {
                gimli::DW_AT_linkage_name | gimli::DW_AT_MIPS_linkage_name => {
                    if let Some(s) = self.string(sections, unit, value) {
                        name = Some(s);
                    }
                }
                gimli::DW_AT_name if name.is_none() => {
                    name = self.string(sections, unit, value);
                }
                gimli::DW_AT_abstract_origin | gimli::DW_AT_specification if name.is_none() => {
                    name = self.name_of(sections, unit, base, value, NAME_DEPTH);
                }
                _ => {}
            }
        }
        name
    }

    /// Walks the children of the entry at `depth` (a function, or an
    /// inlined call `inlined` deep) and records, for each of the function's
    /// addresses, the inlined calls that hold it, as `addr2line` finds them.
    #[allow(clippy::too_many_arguments)]
    fn inlined_calls(
        &mut self,
        sections: &gimli::Dwarf<Slice>,
        unit: &gimli::Unit<Slice>,
        base: usize,
        entries: &mut gimli::EntriesRaw<'_, Slice>,
        depth: isize,
        inlined: usize,
        calls: &mut Calls<'_>,
    ) -> Result<(), gimli::Error> {
        let u = gimli::UnitRef::new(sections, unit);
        loop {
            let next = entries.next_depth();
            if next <= depth {
                return Ok(());
            }
            let Some(abbrev) = entries.read_abbreviation()? else { continue };
            match abbrev.tag() {
                gimli::DW_TAG_subprogram => {
                    entries.skip_attributes(&calls.plans.get(abbrev, &unit.header).skip)?;
                    skip_children(entries, next, calls.plans, &unit.header)?;
                }
                gimli::DW_TAG_inlined_subroutine => {
                    let mut ranges = Ranges::default();
                    let mut attrs = NameAttrs::default();
                    let (mut call_file, mut call_line) = (None, 0);
                    for spec in abbrev.attributes() {
                        let attr = entries.read_attribute(*spec)?;
                        ranges.take(u, &attr);
                        attrs.take(&attr);
                        match attr.name() {
                            gimli::DW_AT_call_file => {
                                // DWARF 5 numbers files from 0.
                                if let gimli::AttributeValue::FileIndex(f) = attr.value() {
                                    if f > 0 || unit.header.version() >= 5 {
                                        call_file = Some(f);
                                    }
                                }
                            }
                            gimli::DW_AT_call_line => {
                                call_line = attr.udata_value().unwrap_or(0) as u32;
                            }
                            _ => {}
                        }
                    }
                    // The function's addresses this call holds, at this depth.
                    let mut held = Vec::new();
                    ranges.each(u, |begin, end| {
                        for &i in calls.mine {
                            let a = calls.svmas[i];
                            if begin <= a && a < end && calls.chains[i].len() == inlined {
                                held.push(i);
                            }
                        }
                    })?;
                    if held.is_empty() {
                        // Nothing in it is any of the addresses'.
                        skip_children(entries, next, calls.plans, &unit.header)?;
                        continue;
                    }
                    held.dedup();
                    let name = self.entry_name(sections, unit, base, &attrs);
                    for &i in &held {
                        if calls.chains[i].len() == inlined {
                            calls.chains[i].push(Inlined { name, call_file, call_line });
                        }
                    }
                    self.inlined_calls(sections, unit, base, entries, next, inlined + 1, calls)?;
                }
                _ => entries.skip_attributes(&calls.plans.get(abbrev, &unit.header).skip)?,
            }
        }
    }
}

/// The unsigned LEB128 number at the start of `bytes`, and its length;
/// `None` past the end, or past 64 bits.
#[inline(always)]
fn uleb128(bytes: &[u8]) -> Option<(u64, usize)> {
    // Most abbreviation codes take one byte.
    if let Some(&b) = bytes.first().filter(|&&b| b < 0x80) {
        return Some((u64::from(b), 1));
    }
    let mut n = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        let low = u64::from(b & 0x7f);
        if i == 9 && low > 1 {
            return None;
        }
        n |= low << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, i + 1));
        }
    }
    None
}

/// The file and line of each of `svmas` (sorted) into `lines`, as
/// `addr2line` places an address: by the row at or before it in the first
/// sequence that holds it, of the rows at one address the last. A row
/// places the addresses from its own up to the next row's (or the end of
/// its sequence), found with a cursor over the sorted addresses as the
/// rows go up. With `skip`, the sequences that hold none of the addresses
/// are not made (see [`line_rows`]).
fn place_lines(
    program: &gimli::IncompleteLineProgram<Slice, usize>,
    svmas: &[u64],
    lines: &mut [Option<(u64, u32)>],
    skip: bool,
) -> Result<(), gimli::Error> {
    let n = svmas.len();
    let wanted = |lo: u64, hi: u64| {
        let i = svmas.partition_point(|&a| a < lo);
        !skip || (i < n && svmas[i] < hi)
    };
    let mut row_before: Option<Row> = None;
    let mut next = 0;
    line_rows(program, wanted, |row| {
        let Some(before) = row_before else {
            next = svmas.partition_point(|&a| a < row.address);
            row_before = (!row.end).then_some(row);
            return;
        };
        if row.address < before.address {
            // Not in address order (or a sequence whose end was a
            // tombstone's): the cursor starts again.
            next = svmas.partition_point(|&a| a < row.address);
        } else if row.address > before.address {
            while next < n && svmas[next] < row.address {
                if svmas[next] >= before.address && lines[next].is_none() {
                    lines[next] = Some((before.file, before.line as u32));
                }
                next += 1;
            }
        }
        row_before = (!row.end).then_some(row);
    })
}

/// A row of a line program: what symbolizing reads of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    address: u64,
    file: u64,
    /// 0 where the compiler gave none.
    line: u64,
    /// The end of a sequence: the first address past it.
    end: bool,
}

/// Runs `program` and calls `row` with each row it makes, as `gimli`'s
/// `LineRows` makes them (a tombstone's rows left out), in the sequences
/// `wanted` asks for: with a decoder of its own that keeps only the
/// address, file and line, several times faster, or with `gimli`'s (every
/// sequence) where instructions hold several operations.
///
/// `wanted(lo, hi)` is asked of each sequence with rows, `lo` and `hi` the
/// addresses of its first and last: a sequence it declines is only read
/// through for its length and the addresses of its rows (see
/// [`scan_sequence`]), several times faster again than making them. A
/// sequence whose last row is not its end (a tombstone cut it short) is
/// made whatever `wanted` says, and so is the one after it: a caller that
/// pairs each row with the one before sees the same pairs.
fn line_rows(
    program: &gimli::IncompleteLineProgram<Slice, usize>,
    mut wanted: impl FnMut(u64, u64) -> bool,
    mut row: impl FnMut(Row),
) -> Result<(), gimli::Error> {
    let header = program.header();
    let encoding = header.line_encoding();
    if encoding.maximum_operations_per_instruction != 1 || encoding.line_range == 0 {
        let mut rows = program.clone().rows();
        while let Some((_, r)) = rows.next_row()? {
            row(Row {
                address: r.address(),
                file: r.file_index(),
                line: r.line().map_or(0, std::num::NonZeroU64::get),
                end: r.end_sequence(),
            });
        }
        return Ok(());
    }
    let program = LineProgram::new(header);
    let mut input = header.raw_program_buf();
    // Whether the last sequence made ended on a row that was not its end.
    let mut carried = false;
    while !input.is_empty() {
        let Some(sequence) = scan_sequence(input.slice(), &program) else {
            // Something the decoder reports, or stops at: it reads the rest.
            return program.rows(input, &mut row);
        };
        let (this, rest) = (input.range_to(..sequence.len), input.range_from(sequence.len..));
        input = rest;
        let Some((lo, hi)) = sequence.span else { continue };
        if carried || !sequence.ended || wanted(lo, hi) {
            program.rows(this, &mut row)?;
        }
        carried = !sequence.ended;
    }
    Ok(())
}

/// What decoding a line program needs of its header.
struct LineProgram {
    version: u16,
    base: u8,
    range: u8,
    line_base: i64,
    /// `minimum_instruction_length`.
    step: u64,
    size: u8,
    little: bool,
    /// The addresses that fit in `size` bytes.
    mask: u64,
    /// `gimli`'s smallest tombstone: -2 in the address's size.
    tombstone_from: u64,
    standard_lengths: Slice,
    /// How far each special opcode advances the address.
    advance: [u64; 256],
    /// For each standard opcode that leaves the address as it is and makes
    /// no row, the numbers it takes, which a scan only reads past;
    /// [`NOT_SKIPPED`] for the others.
    skipped: [u8; 256],
}

/// In [`LineProgram::skipped`]: an opcode a scan reads for what it does.
const NOT_SKIPPED: u8 = u8::MAX;

/// A sequence of a line program as [`scan_sequence`] finds it.
struct Sequence {
    /// Its bytes, through its `DW_LNE_end_sequence` (or the program's end).
    len: usize,
    /// The addresses its rows are in, if it has any: from its first row's
    /// to its last row's or past.
    span: Option<(u64, u64)>,
    /// Whether its last row, if any, is its end.
    ended: bool,
}

impl LineProgram {
    fn new(header: &gimli::LineProgramHeader<Slice, usize>) -> LineProgram {
        let encoding = header.line_encoding();
        let (base, range) = (header.opcode_base(), encoding.line_range);
        let step = u64::from(encoding.minimum_instruction_length);
        let size = header.address_size();
        let mask = if size >= 8 { u64::MAX } else { (1u64 << (size * 8)) - 1 };
        let mut advance = [0u64; 256];
        for (opcode, by) in advance.iter_mut().enumerate().skip(usize::from(base)) {
            *by = step.wrapping_mul((opcode as u64 - u64::from(base)) / u64::from(range));
        }
        // As the decoder reads them: line, file, column and instruction set
        // take one number, the flags none, an opcode past those it knows
        // as many as the header says.
        let lengths = header.standard_opcode_lengths().slice();
        let mut skipped = [NOT_SKIPPED; 256];
        for (opcode, n) in skipped.iter_mut().enumerate().take(usize::from(base)).skip(1) {
            *n = match opcode {
                3 | 4 | 5 | 12 => 1,
                6 | 7 | 10 | 11 => 0,
                0..=12 => NOT_SKIPPED,
                _ => lengths.get(opcode - 1).copied().unwrap_or(NOT_SKIPPED),
            };
        }
        LineProgram {
            version: header.version(),
            base,
            range,
            line_base: i64::from(encoding.line_base),
            step,
            size,
            little: gimli::Endianity::is_little_endian(gimli::Reader::endian(
                &header.raw_program_buf(),
            )),
            mask,
            tombstone_from: mask - 1,
            standard_lengths: *header.standard_opcode_lengths(),
            advance,
            skipped,
        }
    }

    /// Runs the instructions of `input` from a sequence's start and calls
    /// `row` with each row they make.
    fn rows(&self, mut input: Slice, row: &mut impl FnMut(Row)) -> Result<(), gimli::Error> {
        use gimli::Reader as _;
        let LineProgram { base, range, line_base, step, size, mask, tombstone_from, .. } = *self;
        let (mut address, mut file, mut line, mut tombstone) = (0u64, 1u64, 1u64, false);
        let advance = |address: &mut u64, tombstone: bool, by: u64| -> Result<(), gimli::Error> {
            if !tombstone {
                let a = address.checked_add(by).ok_or(gimli::Error::AddressOverflow)?;
                if a & !mask != 0 {
                    return Err(gimli::Error::AddressOverflow);
                }
                *address = a;
            }
            Ok(())
        };
        let add_line = |line: &mut u64, by: i64| {
            if by < 0 {
                *line = line.saturating_sub(by.unsigned_abs());
            } else {
                *line = line.wrapping_add(by as u64);
            }
        };
        while !input.is_empty() {
            let opcode = input.read_u8()?;
            if opcode >= base {
                let adjusted = opcode - base;
                add_line(&mut line, line_base + i64::from(adjusted % range));
                advance(&mut address, tombstone, step.wrapping_mul(u64::from(adjusted / range)))?;
                if !tombstone {
                    row(Row { address, file, line, end: false });
                }
                continue;
            }
            match opcode {
                0 => {
                    let len = input.read_uleb128()? as usize;
                    let mut rest = input.split(len)?;
                    match gimli::DwLne(rest.read_u8()?) {
                        gimli::DW_LNE_end_sequence => {
                            if !tombstone {
                                row(Row { address, file, line, end: true });
                            }
                            (address, file, line, tombstone) = (0, 1, 1, false);
                        }
                        gimli::DW_LNE_set_address => {
                            let a = rest.read_address(size)?;
                            tombstone = a < address || a >= tombstone_from;
                            if !tombstone {
                                address = a;
                            }
                        }
                        gimli::DW_LNE_define_file if self.version <= 4 => {
                            // Files a program defines as it goes are not named.
                            rest.read_null_terminated_slice()?;
                        }
                        _ => {}
                    }
                }
                1 => {
                    if !tombstone {
                        row(Row { address, file, line, end: false });
                    }
                }
                2 => {
                    let by = input.read_uleb128()?;
                    advance(&mut address, tombstone, step.wrapping_mul(by))?;
                }
                3 => add_line(&mut line, input.read_sleb128()?),
                4 => file = input.read_uleb128()?,
                5 | 12 => {
                    input.read_uleb128()?;
                }
                8 => {
                    let by = u64::from((255 - base) / range);
                    advance(&mut address, tombstone, step.wrapping_mul(by))?;
                }
                9 => {
                    let by = u64::from(input.read_u16()?);
                    advance(&mut address, tombstone, by)?;
                }
                6 | 7 | 10 | 11 => {}
                _ => {
                    let mut lengths = self.standard_lengths;
                    lengths.skip(usize::from(opcode - 1))?;
                    for _ in 0..lengths.read_u8()? {
                        input.read_uleb128()?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Reads the sequence at the start of `input` for its length and the
/// addresses of its first and last rows, without making its rows: the
/// address is all it keeps, and a special opcode's advance is read from a
/// table. Its addresses only go up: a `DW_LNE_set_address` back makes a
/// tombstone, whose rows are left out. `None` where the decoder would stop
/// with an error, or might (an unusually long number, an address past the
/// address size), so that the decoder reads it and reports it as before.
fn scan_sequence(bytes: &[u8], p: &LineProgram) -> Option<Sequence> {
    /// Skips an unsigned or signed LEB128 number; `None` past 9 bytes (or
    /// the end), which the decoder is left to read.
    fn skip_leb(bytes: &[u8], at: &mut usize) -> Option<()> {
        let start = *at;
        while *bytes.get(*at)? & 0x80 != 0 {
            *at += 1;
            if *at - start >= 9 {
                return None;
            }
        }
        *at += 1;
        Some(())
    }
    /// Reads an unsigned LEB128 number as the decoder would.
    fn read_uleb(bytes: &[u8], at: &mut usize) -> Option<u64> {
        let (n, len) = uleb128(bytes.get(*at..)?)?;
        *at += len;
        Some(n)
    }
    let (mut address, mut tombstone) = (0u64, false);
    // The lowest address of a row so far, and whether there was one. The
    // highest is the address at the end: the address only goes up.
    let (mut lo, mut rows) = (u64::MAX, false);
    let mut at = 0;
    let advance = |address: &mut u64, tombstone: bool, by: u64| -> Option<()> {
        if !tombstone {
            let a = address.checked_add(by)?;
            if a & !p.mask != 0 {
                return None;
            }
            *address = a;
        }
        Some(())
    };
    while at < bytes.len() {
        let opcode = bytes[at];
        at += 1;
        if opcode >= p.base {
            if !tombstone {
                advance(&mut address, false, p.advance[usize::from(opcode)])?;
                lo = lo.min(address);
                rows = true;
            }
            continue;
        }
        let operands = p.skipped[usize::from(opcode)];
        if operands != NOT_SKIPPED {
            for _ in 0..operands {
                skip_leb(bytes, &mut at)?;
            }
            continue;
        }
        match opcode {
            0 => {
                let len = usize::try_from(read_uleb(bytes, &mut at)?).ok()?;
                let rest = bytes.get(at..at.checked_add(len)?)?;
                at += len;
                match gimli::DwLne(*rest.first()?) {
                    gimli::DW_LNE_end_sequence => {
                        if !tombstone {
                            lo = lo.min(address);
                            rows = true;
                        }
                        let span = rows.then_some((lo, address));
                        return Some(Sequence { len: at, span, ended: !tombstone });
                    }
                    gimli::DW_LNE_set_address => {
                        let size = usize::from(p.size);
                        let raw = rest.get(1..1 + size)?;
                        let mut word = [0u8; 8];
                        let a = match (size, p.little) {
                            (1 | 2 | 4 | 8, true) => {
                                word[..size].copy_from_slice(raw);
                                u64::from_le_bytes(word)
                            }
                            (1 | 2 | 4 | 8, false) => {
                                word[8 - size..].copy_from_slice(raw);
                                u64::from_be_bytes(word)
                            }
                            _ => return None,
                        };
                        tombstone = a < address || a >= p.tombstone_from;
                        if !tombstone {
                            address = a;
                        }
                    }
                    // A file defined by the program (DWARF 4 and before):
                    // the decoder reads its name, and may stop at it; it
                    // reads this sequence.
                    gimli::DW_LNE_define_file if p.version <= 4 => return None,
                    _ => {}
                }
            }
            1 => {
                if !tombstone {
                    lo = lo.min(address);
                    rows = true;
                }
            }
            2 => {
                let by = read_uleb(bytes, &mut at)?;
                advance(&mut address, tombstone, p.step.wrapping_mul(by))?;
            }
            3..=5 | 12 => skip_leb(bytes, &mut at)?,
            8 => advance(&mut address, tombstone, p.advance[255])?,
            9 => {
                let raw: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
                at += 2;
                let by = if p.little { u16::from_le_bytes(raw) } else { u16::from_be_bytes(raw) };
                advance(&mut address, tombstone, u64::from(by))?;
            }
            6 | 7 | 10 | 11 => {}
            _ => {
                let operands = *p.standard_lengths.slice().get(usize::from(opcode - 1))?;
                for _ in 0..operands {
                    skip_leb(bytes, &mut at)?;
                }
            }
        }
    }
    Some(Sequence { len: at, span: rows.then_some((lo, address)), ended: false })
}

/// A unit for reading the names of its entries: what `gimli`'s `Unit::new`
/// makes, without the line program (its header's file table is a good part
/// of the work, and names need none of it), nor the unit's own name and
/// directory.
fn unit_for_names(
    sections: &gimli::Dwarf<Slice>,
    header: gimli::UnitHeader<Slice>,
) -> Result<gimli::Unit<Slice>, gimli::Error> {
    let abbreviations = sections.abbreviations(&header)?;
    let mut unit = gimli::Unit {
        header,
        abbreviations,
        name: None,
        comp_dir: None,
        low_pc: 0,
        str_offsets_base: gimli::DebugStrOffsetsBase(0),
        addr_base: gimli::DebugAddrBase(0),
        loclists_base: gimli::DebugLocListsBase(0),
        rnglists_base: gimli::DebugRngListsBase(0),
        line_program: None,
        dwo_id: None,
    };
    // The bases that strings, addresses and ranges are read from.
    let (mut strings, mut addresses, mut ranges) = (None, None, None);
    let mut entries = unit.entries_raw(None)?;
    let abbrev = entries.read_abbreviation()?.ok_or(gimli::Error::MissingUnitDie)?;
    for spec in abbrev.attributes() {
        match entries.read_attribute(*spec)?.value() {
            gimli::AttributeValue::DebugStrOffsetsBase(b) => strings = Some(b),
            gimli::AttributeValue::DebugAddrBase(b) => addresses = Some(b),
            gimli::AttributeValue::DebugRngListsBase(b) => ranges = Some(b),
            _ => {}
        }
    }
    unit.str_offsets_base = strings.unwrap_or(unit.str_offsets_base);
    unit.addr_base = addresses.unwrap_or(unit.addr_base);
    unit.rnglists_base = ranges.unwrap_or(unit.rnglists_base);
    Ok(unit)
}

/// Skips the children of the entry at `depth` whose attributes were just
/// read.
fn skip_children(
    entries: &mut gimli::EntriesRaw<'_, Slice>,
    depth: isize,
    plans: &mut Plans,
    header: &gimli::UnitHeader<Slice>,
) -> Result<(), gimli::Error> {
    while entries.next_depth() > depth {
        if let Some(abbrev) = entries.read_abbreviation()? {
            entries.skip_attributes(&plans.get(abbrev, header).skip)?;
        }
    }
    Ok(())
}

/// The path of a line program's file entry, as `addr2line` renders it: the
/// unit's directory, the entry's directory (unless it is the unit's),
/// the entry's name, each replacing what is before it if absolute.
fn render_file(
    unit: gimli::UnitRef<'_, Slice>,
    file: &gimli::FileEntry<Slice, usize>,
    header: &gimli::LineProgramHeader<Slice, usize>,
) -> Result<String, gimli::Error> {
    let mut path = match unit.comp_dir {
        Some(dir) => dir.to_string_lossy().into_owned(),
        None => String::new(),
    };
    if file.directory_index() != 0 {
        if let Some(dir) = file.directory(header) {
            path_push(&mut path, &unit.attr_string(dir)?.to_string_lossy());
        }
    }
    path_push(&mut path, &unit.attr_string(file.path_name())?.to_string_lossy());
    Ok(path)
}

/// Appends `p` to `path` as `addr2line` does.
fn path_push(path: &mut String, p: &str) {
    let forward_root = |p: &str| p.starts_with('/') || p.get(1..3) == Some(":/");
    let backward_root = |p: &str| p.starts_with('\\') || p.get(1..3) == Some(":\\");
    if forward_root(p) || backward_root(p) {
        *path = p.to_owned();
    } else {
        let separator = if backward_root(path) { '\\' } else { '/' };
        if !path.is_empty() && !path.ends_with(separator) {
            path.push(separator);
        }
        path.push_str(p);
    }
}

/// The DWARF sections of `file`, borrowed from its mapping.
fn load_sections(
    file: &object::File<'static>,
    endian: gimli::RunTimeEndian,
) -> Result<gimli::Dwarf<Slice>, gimli::Error> {
    gimli::Dwarf::load(|id| -> Result<Slice, gimli::Error> {
        Ok(gimli::EndianSlice::new(section(file, id.name()).unwrap_or(&[]), endian))
    })
}

/// The symbolizer on threads of its own (`pulse-symbols`), so that
/// resolving never holds up the collector's rounds, and goes on while the
/// collector sleeps, on other cores where there are some: the collector
/// hands them each round's new frame addresses and takes the records they
/// have made since, to write in that round's chunks. At the end of the
/// session the collector has them resolve what is left and writes that.
///
/// There are two where the machine has two cores or more, each with a
/// symbolizer of its own that resolves the units of one half (by a hash of
/// the unit): what is left when the program ends is done twice as fast, as
/// its threads have stopped, and during the run the symbolizers get two
/// threads' share of a busy machine.
pub(crate) struct Worker {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<WorkerState>,
    changed: Condvar,
    /// Threads that are pulse's own.
    started: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct WorkerState {
    /// Frame addresses handed over since each thread last took them.
    queued: Vec<Vec<u64>>,
    /// `Symbol` records made since the collector last took them.
    done: Vec<Record>,
    /// No more addresses come: resolve what is left and end.
    last: bool,
    /// The collector is gone: end now.
    gone: bool,
    /// Threads that have ended.
    ended: usize,
    /// The first thread has placed every address it will be handed, and
    /// handed the other threads theirs.
    forwarded: bool,
}

/// The most threads symbolizing.
const WORKERS: usize = 2;

impl Worker {
    /// Starts the threads, and returns once they are pulse's own. Call it
    /// from the collector's thread before recording starts, so that
    /// nothing the threads allocate as they start is recorded, and they
    /// block the signals the collector blocks.
    pub(crate) fn start() -> std::io::Result<Worker> {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, WORKERS);
        let shared = Arc::new(Shared::default());
        {
            let mut state = shared.lock();
            state.queued = vec![Vec::new(); n];
        }
        let mut threads = Vec::new();
        for k in 0..n {
            let theirs = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(String::from("pulse-symbols"))
                .spawn(move || work(&theirs, k, n));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // Those started end at once; the collector symbolizes.
                    drop(Worker { shared, threads });
                    return Err(e);
                }
            }
        }
        // A flag and `yield_now`, as the session waits for the collector.
        while shared.started.load(std::sync::atomic::Ordering::Acquire) < n {
            std::thread::yield_now();
        }
        Ok(Worker { shared, threads })
    }

    /// Hands over the frames of new sites (each address once), and takes
    /// the records made since the last call.
    pub(crate) fn exchange(&self, frames: &[u64], records: &mut Vec<Record>) {
        let mut state = self.shared.lock();
        if !frames.is_empty() {
            // To the first thread, which hands the others their share.
            state.queued[0].extend_from_slice(frames);
            self.shared.changed.notify_all();
        }
        records.append(&mut state.done);
    }

    /// Has the threads resolve everything left, and hands the records to
    /// `write` as they come, at least `batch` of them at a time but for
    /// the last; returns when the threads are done.
    pub(crate) fn finish(mut self, batch: usize, write: &mut dyn FnMut(&mut Vec<Record>)) {
        let threads = std::mem::take(&mut self.threads);
        let mut records = Vec::new();
        let mut state = self.shared.lock();
        state.last = true;
        self.shared.changed.notify_all();
        loop {
            records.append(&mut state.done);
            let ended = state.ended >= threads.len();
            if records.len() >= batch || (ended && !records.is_empty()) {
                drop(state);
                write(&mut records);
                records.clear();
                state = self.shared.lock();
                continue;
            }
            if ended {
                break;
            }
            state = self.shared.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        // Not joined: a thread's last steps, past its work, can wait on
        // what a thread in a signal handler holds (std's record of the
        // threads' stacks, while Rust reports a stack overflow), and the
        // session is finished by then.
        drop(state);
        drop(threads);
    }
}

impl Drop for Worker {
    /// A collector that ends without [`Worker::finish`] (given up on) lets
    /// the threads end after the unit they are on, without waiting for
    /// them.
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            let mut state = self.shared.lock();
            state.gone = true;
            self.shared.changed.notify_all();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, WorkerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Symbolizer thread `k` of `n`: resolves a unit's addresses at a time, and
/// hands the records over after each. The first thread is handed every
/// address: it places them, keeps its share and hands the others theirs,
/// so that each address is placed once and resolved once.
fn work(shared: &Shared, k: usize, n: usize) {
    pulse_alloc::mark_internal_thread();
    crate::signals::symbolizer_started(k);
    shared.started.fetch_add(1, std::sync::atomic::Ordering::Release);
    // However the thread ends (a panic too), the collector stops waiting.
    struct Ended<'a>(&'a Shared, usize);
    impl Drop for Ended<'_> {
        fn drop(&mut self) {
            crate::signals::symbolizer_ended(self.1);
            let mut state = self.0.lock();
            state.ended += 1;
            // The first thread hands the others nothing more.
            state.forwarded |= self.1 == 0;
            self.0.changed.notify_all();
        }
    }
    let _ended = Ended(shared, k);
    let mut symbols = Symbolizer::default();
    let mut made = Vec::new();
    // Whether no more addresses come to this thread: the collector's last
    // ones have come (and, to the others, the first thread's).
    let no_more = |state: &WorkerState| state.last && (k == 0 || state.forwarded);
    loop {
        let last = {
            let mut state = shared.lock();
            while state.queued[k].is_empty()
                && symbols.pending() == 0
                && !no_more(&state)
                && !state.gone
            {
                state = shared.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if state.gone {
                break;
            }
            let queued = std::mem::take(&mut state.queued[k]);
            let last = no_more(&state);
            // Placed with the lock released: the first placing reads the
            // binary's debug information, and the collector takes the lock
            // each round (a signal's wait for the collector sees no
            // progress while it is blocked).
            drop(state);
            symbols.add(&queued);
            last
        };
        if k == 0 && n > 1 {
            let others = symbols.take_shares(n);
            let handed = others.iter().any(|a| !a.is_empty());
            let mut state = shared.lock();
            if handed || (last && !state.forwarded) {
                for (queued, addrs) in state.queued.iter_mut().zip(others).skip(1) {
                    queued.extend(addrs);
                }
                state.forwarded |= last;
                shared.changed.notify_all();
            }
        }
        let resolved = symbols.resolve_next(&mut |r| made.push(r));
        let mut state = shared.lock();
        state.done.append(&mut made);
        if resolved == 0 && last && state.queued[k].is_empty() {
            break;
        }
        if resolved > 0 {
            shared.changed.notify_all();
        }
    }
}

/// The process's file-backed resident memory in bytes (the resident shared
/// pages of `/proc/self/statm`); 0 if it cannot be read.
fn file_resident() -> usize {
    use std::os::unix::fs::FileExt as _;
    // Opened once, read again from its start each time.
    static STATM: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();
    let Some(f) = STATM.get_or_init(|| std::fs::File::open("/proc/self/statm").ok()) else {
        return 0;
    };
    let mut buf = [0u8; 128];
    let n = f.read_at(&mut buf, 0).unwrap_or(0);
    let pages = std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse::<usize>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as usize;
    pages * page
}

/// Maps the object at `path` and parses it; returns the file too. The
/// parse borrows the mapping's pages: the caller drops it before the
/// mapping.
fn map_object(path: &Path) -> Option<(memmap2::Mmap, object::File<'static>, std::fs::File)> {
    let file = std::fs::File::open(path).ok()?;
    // SAFETY: the mapping is private and read-only; a program that
    // rewrites its own executable or libraries in place while it runs
    // would change what is read (the loader's own mappings share that
    // assumption).
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    // SAFETY: the slice points into `map`'s pages, which stay where they
    // are for as long as `map` lives (moving the `Mmap` value does not move
    // them); whoever holds the parse drops it before `map` (`ObjectFile`
    // declares it, and all that borrows it, before its mapping).
    let data: &'static [u8] = unsafe { std::slice::from_raw_parts(map.as_ptr(), map.len()) };
    let parsed = object::File::parse(data).ok()?;
    Some((map, parsed, file))
}

/// Where the debug information of a stripped object is: by its build id
/// under `/usr/lib/debug/.build-id`, else by its `.gnu_debuglink` next to
/// it, in `.debug/` beside it, or under `/usr/lib/debug` (the checksum is
/// not verified).
fn separate_debug_file(file: &object::File<'static>, path: &Path) -> Option<PathBuf> {
    if let Ok(Some(id)) = file.build_id() {
        if id.len() >= 2 {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            let p = PathBuf::from(format!(
                "/usr/lib/debug/.build-id/{}/{}.debug",
                &hex[..2],
                &hex[2..]
            ));
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let (name, _crc) = file.gnu_debuglink().ok()??;
    let name = std::str::from_utf8(name).ok()?;
    let real = std::fs::canonicalize(path).ok()?;
    let dir = real.parent()?;
    [
        dir.join(name),
        dir.join(".debug").join(name),
        Path::new("/usr/lib/debug").join(dir.strip_prefix("/").ok()?).join(name),
    ]
    .into_iter()
    .find(|p| p.is_file() && *p != real)
}

/// The file-backed mappings of this process, sorted by start address.
fn read_maps() -> Vec<Region> {
    let Ok(text) = std::fs::read_to_string("/proc/self/maps") else { return Vec::new() };
    let mut regions: Vec<Region> = text.lines().filter_map(parse_maps_line).collect();
    regions.sort_by_key(|r| r.start);
    regions
}

/// `start-end perms offset dev inode path`, for a line whose path is a file.
fn parse_maps_line(line: &str) -> Option<Region> {
    let mut fields = line.splitn(6, ' ');
    let (start, end) = fields.next()?.split_once('-')?;
    let _perms = fields.next()?;
    let offset = fields.next()?;
    let _dev = fields.next()?;
    let _inode = fields.next()?;
    let path = fields.next()?.trim_start();
    // `[heap]`, `[vdso]`, anonymous memory, and files deleted since they
    // were mapped: nothing to read symbols from.
    if !path.starts_with('/') || path.ends_with(" (deleted)") {
        return None;
    }
    Some(Region {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        offset: u64::from_str_radix(offset, 16).ok()?,
        path: path.to_owned(),
    })
}

/// The bytes of section `name`, borrowed from the mapping. A compressed
/// section cannot be; without it the frames come from the symbol table.
fn section(file: &object::File<'static>, name: &str) -> Option<&'static [u8]> {
    file.section_by_name(name)
        .filter(|s| {
            matches!(s.compressed_file_range(), Ok(r) if r.format == object::CompressionFormat::None)
        })
        .and_then(|s| s.data().ok())
}

/// A symbol's name as `backtrace` prints it with `{:#}`: demangled without
/// the hash if it is a Rust name, else as it is (lossily, if not UTF-8).
/// One frame of a symbolized address: function, file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Named {
    pub(crate) function: String,
    pub(crate) file: String,
    pub(crate) line: u32,
}

/// Symbolizes `addrs` in this process, now: each address's frames, inlined
/// ones first (none where nothing names it). For a report made in the
/// process, such as a budget's; slow, as a first symbolization is.
pub(crate) fn symbolize_now(addrs: &[u64]) -> HashMap<u64, Vec<Named>> {
    let mut s = Symbolizer::default();
    s.add(addrs);
    let mut out: HashMap<u64, Vec<Named>> = HashMap::new();
    while s.resolve_next(&mut |r| {
        if let Record::Symbol { addr, function, file, line } = r {
            let frames = out.entry(addr).or_default();
            if !function.is_empty() || !file.is_empty() {
                frames.push(Named { function, file, line });
            }
        }
    }) > 0
    {}
    s.release();
    out
}

/// The address range, in this process, of the function of the main
/// executable whose demangled name (without its hash) is `name`: from the
/// executable's symbol table and the load address the dynamic loader gives
/// it. `None` where the executable has no symbol table or no such function.
pub(crate) fn function_range(name: &str) -> Option<(u64, u64)> {
    use object::{Object as _, ObjectSymbol as _, ObjectSymbolTable as _};
    let (_map, file, _handle) = map_object(Path::new("/proc/self/exe"))?;
    let table = file.symbol_table()?;
    let symbol = table.symbols().find(|sym| {
        sym.is_definition()
            && sym.size() > 0
            && sym.name_bytes().is_ok_and(|raw| {
                std::str::from_utf8(raw)
                    .ok()
                    .and_then(|s| rustc_demangle::try_demangle(s).ok())
                    .is_some_and(|d| format!("{d:#}") == name)
            })
    })?;
    let bias = if file.kind() == object::ObjectKind::Dynamic { main_load_bias()? } else { 0 };
    let start = symbol.address().wrapping_add(bias);
    Some((start, start.wrapping_add(symbol.size())))
}

/// The main executable's load bias: what the dynamic loader added to its
/// addresses.
fn main_load_bias() -> Option<u64> {
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid `info` for the call, and `data`
        // is the `u64` that `main_load_bias` passed in.
        unsafe { *(data as *mut u64) = (*info).dlpi_addr };
        1
    }
    let mut bias = u64::MAX;
    // SAFETY: `first` matches the callback type and writes only through
    // `data`, which points at `bias` for the whole call. The loader visits
    // the main program first.
    unsafe { libc::dl_iterate_phdr(Some(first), &mut bias as *mut u64 as *mut libc::c_void) };
    (bias != u64::MAX).then_some(bias)
}

fn demangle(raw: &[u8]) -> String {
    use std::fmt::Write as _;
    match std::str::from_utf8(raw).ok().and_then(|s| rustc_demangle::try_demangle(s).ok()) {
        Some(d) => {
            // Written piece by piece: room for the whole name at once (the
            // mangled one's length, more than the name without its hash).
            let mut name = String::with_capacity(raw.len());
            let _ = write!(name, "{d:#}");
            name
        }
        None => String::from_utf8_lossy(raw).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use pulse_format::ChunkEncoder;

    #[test]
    fn a_maps_line_of_a_file_is_parsed_and_others_are_skipped() {
        let r = parse_maps_line(
            "7f1c2a000000-7f1c2a1f0000 r-xp 00028000 08:01 1234   /usr/lib/x86_64-linux-gnu/libc.so.6",
        )
        .unwrap();
        assert_eq!((r.start, r.end, r.offset), (0x7f1c_2a00_0000, 0x7f1c_2a1f_0000, 0x28000));
        assert_eq!(r.path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
        assert!(parse_maps_line("55d0c000-55d0d000 rw-p 00000000 00:00 0   [heap]").is_none());
        assert!(parse_maps_line("7ffd1000-7ffd3000 r-xp 00000000 00:00 0   [vdso]").is_none());
        assert!(parse_maps_line("7f00-7f10 rw-p 00000000 00:00 0 ").is_none());
        assert!(parse_maps_line("7f00-7f10 r-xp 00000000 08:01 9 /tmp/x (deleted)").is_none());
        assert!(parse_maps_line("garbage").is_none());
    }

    #[inline(never)]
    fn a_function_to_find() -> u64 {
        a_function_to_find as *const () as usize as u64
    }

    #[test]
    fn an_address_of_this_test_binary_names_its_function_file_and_line() {
        let mut s = Symbolizer::default();
        // One past the function's entry, as a return address would be.
        let addr = std::hint::black_box(a_function_to_find()) + 1;
        let mut frames = Vec::new();
        s.resolve(addr, &mut frames);
        let f = frames.last().expect("the test binary has debug information");
        assert!(f.function.ends_with("a_function_to_find"), "{}", f.function);
        assert!(f.file.ends_with("symbols.rs"), "{}", f.file);
        assert!(f.line > 0);
    }

    #[test]
    fn an_address_in_a_shared_library_is_named_from_that_library() {
        let mut s = Symbolizer::default();
        // A function of the C library, a shared object at its own bias.
        let addr = libc::getpid as *const () as usize as u64 + 1;
        let path = s.region(addr - 1).map(|r| r.path.clone()).unwrap_or_default();
        assert!(path.contains("libc"), "{path}");
        let mut frames = Vec::new();
        s.resolve(addr, &mut frames);
        let f = frames.last().expect("libc's symbol table names its exports");
        assert!(f.function.contains("getpid"), "{}", f.function);
    }

    /// The records `enc` holds, written and read back as a session file.
    fn records(enc: &ChunkEncoder) -> Vec<Record> {
        let mut w =
            pulse_format::Writer::new(Vec::new(), &pulse_format::Metadata::default()).unwrap();
        w.write_chunk(enc).unwrap();
        let bytes = w.finish(pulse_format::Trailer::default()).unwrap();
        let mut r = pulse_format::Reader::new(&bytes[..]).unwrap();
        match r.next_frame().unwrap() {
            Some(pulse_format::Frame::Chunk(c)) => c.records,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_address_is_written_once_and_one_nothing_names_is_written_empty() {
        let mut s = Symbolizer::default();
        let here = std::hint::black_box(a_function_to_find()) + 1;
        s.add(&[8, here, 8]);
        s.add(&[here]);
        assert_eq!(s.pending(), 2, "each address is queued once");
        let mut enc = ChunkEncoder::default();
        enc.begin(0, 0);
        s.resolve_into(&mut enc, None, usize::MAX);
        assert_eq!(s.pending(), 0);
        let recs = records(&enc);
        let of = |a: u64| -> Vec<&Record> {
            recs.iter().filter(|r| matches!(r, Record::Symbol { addr, .. } if *addr == a)).collect()
        };
        let empty =
            Record::Symbol { addr: 8, function: String::new(), file: String::new(), line: 0 };
        assert_eq!(of(8), [&empty]);
        let Some(Record::Symbol { function, .. }) = of(here).last().copied() else {
            panic!("{recs:?}")
        };
        assert!(function.ends_with("a_function_to_find"), "{function}");
        s.add(&[8, here]);
        assert_eq!(s.pending(), 0, "resolved addresses are not queued again");
    }

    #[test]
    fn a_round_out_of_time_carries_the_rest_over() {
        let mut s = Symbolizer::default();
        s.add(&[8, 16, 24]);
        let mut enc = ChunkEncoder::default();
        enc.begin(0, 0);
        // A deadline already past: one address, the rest for later rounds.
        s.resolve_into(&mut enc, Some(Instant::now()), usize::MAX);
        assert_eq!((s.resolved, s.pending()), (1, 2));
        s.resolve_into(&mut enc, None, usize::MAX);
        assert_eq!((s.resolved, s.pending()), (3, 0));
        assert_eq!(records(&enc).len(), 3);
    }

    /// Calls `f` with the object that the tests over a whole object read:
    /// `PULSE_TEST_SYMBOL_OBJECT`'s (an absolute path) where it is set,
    /// else this test binary.
    fn with_test_object(f: impl FnOnce(&mut ObjectFile)) {
        let mut s = Symbolizer::default();
        let here = std::hint::black_box(a_function_to_find()) + 1;
        let place = s.place(here);
        let mut other =
            std::env::var("PULSE_TEST_SYMBOL_OBJECT").ok().and_then(|p| ObjectFile::open(&p));
        let object = match &mut other {
            Some(o) => o,
            None => s.objects[place.object].as_mut().expect("this test binary"),
        };
        f(object);
    }

    /// Frames of addresses all over this test binary, as the new resolver
    /// and as `addr2line`'s context over the whole object give them.
    #[test]
    fn frames_are_those_of_addr2line_over_the_whole_object() {
        use object::ObjectSymbol as _;
        let step: usize =
            std::env::var("PULSE_TEST_SYMBOL_STEP").ok().and_then(|v| v.parse().ok()).unwrap_or(13);
        with_test_object(|object| {
            let endian = if object.file.is_little_endian() {
                gimli::RunTimeEndian::Little
            } else {
                gimli::RunTimeEndian::Big
            };
            let whole =
                addr2line::Context::from_dwarf(load_sections(&object.file, endian).unwrap())
                    .unwrap();
            let map = object.file.symbol_map();
            let symbol = |svma| {
                map.containing(svma).map(|s: &object::SymbolMapName<'_>| s.name().as_bytes())
            };
            let mut svmas: Vec<u64> = object
                .file
                .symbols()
                .filter(|s| s.kind() == object::SymbolKind::Text && s.size() > 1)
                .step_by(step)
                .flat_map(|s| [s.address() + 1, s.address() + s.size() / 2])
                .collect();
            svmas.sort_unstable();
            svmas.dedup();
            let dwarf = object.dwarf.as_ref().unwrap();
            let mut keyed: Vec<(usize, u64)> =
                svmas.iter().map(|&a| (dwarf.unit_of_address(a).unwrap_or(NONE), a)).collect();
            keyed.sort_unstable();
            let (mut checked, mut differ) = (0, 0);
            let mut took = Duration::ZERO;
            let mut groups = 0;
            for group in keyed.chunk_by(|a, b| a.0 == b.0 && a.0 != NONE) {
                let addrs: Vec<u64> = group.iter().map(|g| g.1).collect();
                let mut got = vec![Vec::new(); addrs.len()];
                let t = Instant::now();
                object.frames(group[0].0, &addrs, &mut got, &mut 0);
                took += t.elapsed();
                groups += 1;
                for (&a, got) in addrs.iter().zip(&got) {
                    let mut want = Vec::new();
                    if dwarf_frames(&whole, a, &symbol, &mut want).is_err() {
                        want.clear();
                    }
                    if want.is_empty() {
                        if let Some(name) = symbol(a) {
                            want.push(Frame {
                                function: demangle(name),
                                file: String::new(),
                                line: 0,
                            });
                        }
                    }
                    checked += 1;
                    if *got != want {
                        differ += 1;
                        if differ <= 10 {
                            eprintln!("{a:#x}:\n  got  {got:?}\n  want {want:?}");
                        }
                    }
                }
            }
            eprintln!("{checked} addresses, {differ} differ; {groups} groups resolved in {took:?}");
            assert!(checked > 50, "{checked}");
            assert_eq!(differ, 0);
        });
    }

    /// A scan of the symbol table finds what `object`'s symbol map finds,
    /// in this test binary and in the C library.
    #[test]
    fn aranges_read_plainly_are_gimli_s() {
        with_test_object(|object| {
            let endian = if object.file.is_little_endian() {
                gimli::RunTimeEndian::Little
            } else {
                gimli::RunTimeEndian::Big
            };
            let data = section(&object.file, ".debug_aranges").expect("a .debug_aranges");
            let by_gimli = |d: &'static [u8]| aranges_gimli(&gimli::DebugAranges::new(d, endian));
            let plain = aranges_plain(data, endian).expect("the usual shape");
            assert!(plain.0.len() > 100, "{} ranges", plain.0.len());
            assert_eq!(plain, by_gimli(data));
            // Damaged copies: read alike, or left to gimli. Each byte of
            // the first sets' headers and tuples changed, and cuts.
            let mut rng = 0x9e37_79b9_7f4a_7c15u64;
            for _ in 0..3000 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let mut d = data[..data.len().min(4096)].to_vec();
                let at = (rng >> 8) as usize % d.len();
                match rng % 4 {
                    0 => d.truncate(at),
                    1 => d[at] = (rng >> 32) as u8,
                    2 => d[at] ^= 1 << ((rng >> 40) % 8),
                    _ => d[at..].iter_mut().take(8).for_each(|b| *b = 0xff),
                }
                let d: &'static [u8] = Box::leak(d.into_boxed_slice());
                if let Some(p) = aranges_plain(d, endian) {
                    assert_eq!(p, by_gimli(d), "damaged at {at}");
                }
            }
        });
    }

    #[test]
    fn a_scan_of_the_symbol_table_finds_what_the_map_finds() {
        use object::{ObjectSymbol as _, ObjectSymbolTable as _};
        let mut s = Symbolizer::default();
        let here = std::hint::black_box(a_function_to_find()) + 1;
        let libc = libc::getpid as *const () as usize as u64 + 1;
        for addr in [here, libc] {
            let place = s.place(addr);
            let object = s.objects[place.object].as_ref().expect("an object");
            let map = object.file.symbol_map();
            let table = object.file.symbol_table().or_else(|| object.file.dynamic_symbol_table());
            // About 50 symbols of the table, each probed four ways.
            let count = table.as_ref().map_or(0, |t| t.symbols().count());
            let mut probes: Vec<u64> = table
                .into_iter()
                .flat_map(|t| t.symbols())
                .step_by((count / 50).max(1))
                .flat_map(|s| {
                    [
                        s.address(),
                        s.address() + 1,
                        s.address() + s.size(),
                        s.address().wrapping_sub(1),
                    ]
                })
                .collect();
            probes.extend([0, 1, u64::MAX, place.svma]);
            for p in probes {
                let want = map.containing(p).map(|s| s.name());
                assert_eq!(scan_symbols(&object.file, p), want, "{p:#x}");
            }
        }
    }

    /// The line programs of units of this test binary (some 40 of them
    /// spread over it, or every `PULSE_TEST_SYMBOL_STEP`th; or of
    /// `PULSE_TEST_SYMBOL_OBJECT`'s) give the rows `gimli` gives. The
    /// number of units follows the build's codegen units: an incremental
    /// build has ten times as many as a clean one.
    #[test]
    fn line_rows_are_gimli_s() {
        with_test_object(|object| {
            let sections = &object.dwarf.as_ref().expect("DWARF").sections;
            let units = {
                let mut headers = sections.units();
                std::iter::from_fn(|| headers.next().ok().flatten()).count()
            };
            let step: usize = std::env::var("PULSE_TEST_SYMBOL_STEP")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or((units / 40).max(1));
            let (mut programs, mut rows) = (0, 0);
            let mut headers = sections.units();
            let mut k = 0;
            while let Ok(Some(header)) = headers.next() {
                k += 1;
                if k % step != 0 {
                    continue;
                }
                let Ok(unit) = sections.unit(header) else { continue };
                let Some(program) = &unit.line_program else { continue };
                let mut want = Vec::new();
                let mut gimli_rows = program.clone().rows();
                let gimli_end = loop {
                    match gimli_rows.next_row() {
                        Ok(Some((_, r))) => want.push(Row {
                            address: r.address(),
                            file: r.file_index(),
                            line: r.line().map_or(0, std::num::NonZeroU64::get),
                            end: r.end_sequence(),
                        }),
                        Ok(None) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                };
                let mut got = Vec::new();
                let end = line_rows(program, |_, _| true, |r| got.push(r));
                assert_eq!(got, want);
                assert_eq!(end, gimli_end);
                programs += 1;
                rows += got.len();
            }
            eprintln!("{programs} line programs, {rows} rows");
            assert!(programs > 10 && rows > 1000, "{programs} {rows}");
        });
    }

    /// Every sequence's rows made and only the wanted ones place the same
    /// file and line at every address: addresses at, just before and just
    /// past each row of a sample of the sequences, and a spread over the
    /// unit, in every unit of this test binary (or of
    /// `PULSE_TEST_SYMBOL_OBJECT`).
    #[test]
    fn skipping_sequences_places_every_address_alike() {
        with_test_object(|object| {
            let sections = &object.dwarf.as_ref().expect("DWARF").sections;
            let (mut programs, mut placed, mut skipped) = (0, 0, 0);
            let mut headers = sections.units();
            let mut k = 0u64;
            while let Ok(Some(header)) = headers.next() {
                let Ok(unit) = sections.unit(header) else { continue };
                let Some(program) = &unit.line_program else { continue };
                let mut rows = Vec::new();
                line_rows(program, |_, _| true, |r| rows.push(r)).unwrap();
                let (mut sequences, mut wanted) = (0, 0);
                line_rows(
                    program,
                    |_, _| {
                        sequences += 1;
                        false
                    },
                    |_| wanted += 1,
                )
                .unwrap();
                assert_eq!(wanted, 0, "no sequence wanted, none made");
                let mut svmas = Vec::new();
                for r in &rows {
                    k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    if k >> 60 == 0 {
                        svmas.extend([r.address.saturating_sub(1), r.address, r.address + 1]);
                    }
                }
                if let (Some(lo), Some(hi)) =
                    (rows.iter().map(|r| r.address).min(), rows.iter().map(|r| r.address).max())
                {
                    svmas.extend((0..64).map(|i| lo + (hi - lo) / 64 * i));
                }
                svmas.sort_unstable();
                svmas.dedup();
                let mut all = vec![None; svmas.len()];
                let mut some = vec![None; svmas.len()];
                place_lines(program, &svmas, &mut all, false).unwrap();
                place_lines(program, &svmas, &mut some, true).unwrap();
                assert_eq!(some, all);
                let mut made = 0;
                line_rows(
                    program,
                    |lo, hi| svmas.iter().any(|&a| lo <= a && a < hi),
                    |_| made += 1,
                )
                .unwrap();
                skipped += usize::from(made < rows.len());
                programs += 1;
                placed += all.iter().flatten().count();
                let _ = sequences;
            }
            eprintln!(
            "{programs} line programs, {placed} addresses placed, {skipped} with sequences skipped"
        );
            assert!(
                programs > 10 && placed > 1000 && skipped > 10,
                "{programs} {placed} {skipped}"
            );
        });
    }

    /// The entries' walk reads an abbreviation's code as `gimli` reads it:
    /// the same number and length, and no number where `gimli` errs.
    #[test]
    fn codes_are_read_as_gimli_reads_them() {
        use gimli::Reader as _;
        let cases: [&[u8]; 9] = [
            &[0],
            &[0x7f, 0xaa],
            &[0x80, 0x01],
            &[0xff, 0xff, 0x03],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
            &[0x80],
            &[],
        ];
        for bytes in cases {
            let mut r = gimli::EndianSlice::new(bytes, gimli::LittleEndian);
            let want = r.read_uleb128().ok().map(|n| (n, bytes.len() - r.len()));
            assert_eq!(uleb128(bytes), want, "{bytes:x?}");
        }
    }

    /// A unit whose last entry the unit's length cuts short is an error, as
    /// `gimli` reads it, though the entries' walk skips most entries by
    /// their length alone.
    #[test]
    fn an_entry_cut_short_by_its_unit_is_an_error() {
        // 1: a compile unit with children, no attributes; 2: a variable
        // with a 4-byte reference.
        let abbrev: &'static [u8] = &[1, 0x11, 1, 0, 0, 2, 0x34, 0, 0x49, 0x13, 0, 0, 0];
        let entries = |cut: usize| {
            let dies: &[u8] = &[1, 2, 0xaa, 0xbb, 0xcc, 0xdd, 0];
            let dies = &dies[..dies.len() - cut];
            let mut info = ((7 + dies.len()) as u32).to_le_bytes().to_vec();
            info.extend([4, 0, 0, 0, 0, 0, 8]);
            info.extend(dies);
            &*Box::leak(info.into_boxed_slice())
        };
        for (cut, fails) in [(0, false), (3, true)] {
            let info = entries(cut);
            let sections = gimli::Dwarf::load(|id| -> Result<Slice, gimli::Error> {
                let bytes: &'static [u8] = match id {
                    gimli::SectionId::DebugInfo => info,
                    gimli::SectionId::DebugAbbrev => abbrev,
                    _ => &[],
                };
                Ok(gimli::EndianSlice::new(bytes, gimli::RunTimeEndian::Little))
            })
            .unwrap();
            let mut dwarf =
                Dwarf { sections, aranges: Vec::new(), names: Names::default(), whole: None };
            let mut out = vec![Vec::new()];
            let got = dwarf.unit_frames(0, &[0x1000], &|_| None, &mut out, &mut || {});
            assert_eq!(got.is_err(), fails, "{cut} bytes cut: {got:?}");
        }
    }

    /// A DWARF 4 line program of `body`, with opcode 13 a standard opcode
    /// of two operands.
    fn line_program_of(body: &[u8]) -> gimli::IncompleteLineProgram<Slice, usize> {
        let mut header = vec![1, 1, 1, (-5i8) as u8, 14, 14];
        header.extend([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 2]);
        header.push(0); // no directories
        header.extend(b"a.rs\0\0\0\0b.rs\0\0\0\0\0");
        let mut unit = vec![4, 0];
        unit.extend((header.len() as u32).to_le_bytes());
        unit.extend(header);
        unit.extend(body);
        let mut section = (unit.len() as u32).to_le_bytes().to_vec();
        section.extend(unit);
        let section: &'static [u8] = Box::leak(section.into_boxed_slice());
        let debug_line =
            gimli::DebugLine::from(gimli::EndianSlice::new(section, gimli::RunTimeEndian::Little));
        debug_line.program(gimli::DebugLineOffset(0), 8, None, None).unwrap()
    }

    fn set_address(a: u64) -> Vec<u8> {
        let mut op = vec![0, 9, 2];
        op.extend(a.to_le_bytes());
        op
    }

    const END_SEQUENCE: [u8; 3] = [0, 1, 1];

    /// Sequences cut short by a tombstone, one wholly a tombstone's, every
    /// standard opcode, and a file defined by the program: the addresses
    /// around each row are placed alike whether the sequences that hold
    /// none of them are made or not, for every choice of those addresses.
    #[test]
    fn skipping_sequences_keeps_a_tombstone_s_rows_paired() {
        let mut body = Vec::new();
        // A plain sequence: rows at 0x1000, 0x1003, 0x1007, end at 0x1100.
        body.extend(set_address(0x1000));
        body.extend([1, 14 + 5 + 3 * 14, 14 + 6 + 4 * 14, 2, 0xf9, 0x01]);
        body.extend(END_SEQUENCE);
        // Rows at 0x1800 and 0x1821, past a fixed_advance_pc (0x10), a
        // const_add_pc (0x11), an opcode of two operands, a column and an
        // instruction set (a number in two bytes).
        body.extend(set_address(0x1800));
        body.extend([1, 9, 0x10, 0, 8, 13, 0x81, 0x01, 7, 5, 3, 12, 0x80, 0x00, 14 + 5]);
        body.extend(END_SEQUENCE);
        // Rows at 0x2000 and 0x2010, then back to 0x1500: a tombstone,
        // so its end is left out and its last row pairs with the next
        // sequence's first.
        body.extend(set_address(0x2000));
        body.extend([1, 9, 0x10, 0, 3, 0x7b, 1]);
        body.extend(set_address(0x1500));
        body.extend([1, 14 + 7]);
        body.extend(END_SEQUENCE);
        // Rows at 0x3000, 0x3011 (const_add_pc), 0x3020, end at 0x3030.
        body.extend(set_address(0x3000));
        body.extend([4, 2, 1, 8, 14 + 5, 13, 0x81, 0x01, 7, 5, 3, 2, 15, 14 + 5 + 14]);
        body.extend([2, 0x0e, 1]);
        body.extend(END_SEQUENCE);
        // Wholly a tombstone's.
        body.extend(set_address(u64::MAX - 1));
        body.extend([1, 14 + 5 + 14, 2, 0x40]);
        body.extend(END_SEQUENCE);
        // A plain one after it.
        body.extend(set_address(0x4000));
        body.extend([1, 14 + 5 + 14 * 2]);
        body.extend(END_SEQUENCE);
        let plain = body.clone();
        // Cut short by a tombstone, then a sequence whose one row is at the
        // last address: the first's last row pairs with it, not with the
        // sequence after.
        let mut at_the_top = plain.clone();
        at_the_top.extend(set_address(0x6000));
        at_the_top.extend([1]);
        at_the_top.extend(set_address(0x5800));
        at_the_top.extend(END_SEQUENCE);
        at_the_top.extend(set_address(u64::MAX - 0x10));
        at_the_top.extend([2, 0x10, 1]);
        at_the_top.extend(END_SEQUENCE);
        at_the_top.extend(set_address(0x7000));
        at_the_top.extend([1, 2, 0x10]);
        at_the_top.extend(END_SEQUENCE);
        // A file defined by the program: the decoder reads the rest.
        body.extend(set_address(0x5000));
        body.extend([0, 6, 3, b'c', 0, 0, 0, 0, 1, 14 + 5 + 14]);
        body.extend(END_SEQUENCE);
        for body in [plain, at_the_top, body] {
            let program = line_program_of(&body);
            let mut rows = Vec::new();
            line_rows(&program, |_, _| true, |r| rows.push(r)).unwrap();
            let mut want = Vec::new();
            let mut gimli_rows = program.clone().rows();
            while let Some((_, r)) = gimli_rows.next_row().unwrap() {
                want.push((r.address(), r.end_sequence()));
            }
            assert_eq!(rows.iter().map(|r| (r.address, r.end)).collect::<Vec<_>>(), want);
            let mut around: Vec<u64> = rows
                .iter()
                .flat_map(|r| [r.address - 1, r.address, r.address.saturating_add(1)])
                .chain([0x7008])
                .collect();
            around.sort_unstable();
            around.dedup();
            // Each address alone, each pair, and a thousand draws of a third.
            let mut choices: Vec<Vec<u64>> = Vec::new();
            for (i, &a) in around.iter().enumerate() {
                choices.push(vec![a]);
                choices.extend(around[i + 1..].iter().map(|&b| vec![a, b]));
            }
            let mut k = 1u64;
            for _ in 0..1000 {
                choices.push(
                    around
                        .iter()
                        .copied()
                        .filter(|_| {
                            k = k
                                .wrapping_mul(6364136223846793005)
                                .wrapping_add(1442695040888963407);
                            k >> 62 == 0 || k >> 62 == 1 && k & 1 == 0
                        })
                        .collect(),
                );
            }
            for svmas in choices {
                let mut all = vec![None; svmas.len()];
                let mut some = vec![None; svmas.len()];
                place_lines(&program, &svmas, &mut all, false).unwrap();
                place_lines(&program, &svmas, &mut some, true).unwrap();
                assert_eq!(some, all, "{svmas:x?}");
            }
            // The tombstone's last row places what lies between it and the
            // next sequence's first row, made or not.
            let svmas = [0x2800];
            let mut some = [None];
            place_lines(&program, &svmas, &mut some, true).unwrap();
            assert_eq!(some, [Some((1, 0))]);
        }
    }
}
