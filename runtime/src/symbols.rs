//! Symbolizing the sites' frames while the program runs.
//!
//! The collector hands every frame address of every new site definition to
//! a [`Symbolizer`]; each round resolves the addresses new since the last
//! one (for at most [`ROUND_BUDGET`], the rest carried over) into `Symbol`
//! records in that round's chunks, so a session cut short (a `SIGKILL`)
//! still names the sites defined before its last round. What is left at the
//! end of the session is resolved then.
//!
//! An address is mapped to its object (the executable or a shared library)
//! and its address in that file through `/proc/self/maps`, read by the
//! collector (no loader lock: a thread inside `dlopen` may be waiting on a
//! full ring for this very collector). The object is mapped, not read, and
//! its DWARF is read lazily by `addr2line`: a compilation unit's line table
//! and functions are parsed when one of its addresses is first looked up.
//! Pages of the mapping count toward the process's resident memory as they
//! are touched, so after each round that resolved something they are
//! released (`MADV_DONTNEED`; they are read back from the page cache when
//! needed again). An object without DWARF names its frames from its symbol
//! table, without file or line. A stripped object's debug information is
//! looked for in a separate file (by build id under `/usr/lib/debug`, or by
//! its `.gnu_debuglink`).

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use object::{Object as _, ObjectSection as _, ObjectSegment as _};
use pulse_format::{ChunkEncoder, Record};

/// The most time one round spends resolving addresses (at least one
/// address is resolved each round there are any).
pub(crate) const ROUND_BUDGET: Duration = Duration::from_millis(2);

/// Addresses resolved between two releases of the mappings' pages: the
/// pages one address's unit touches are a few hundred KiB at most.
const RELEASE_EVERY: u64 = 64;

type Slice = gimli::EndianSlice<'static, gimli::RunTimeEndian>;

/// Frame addresses waiting to be resolved, and the objects that resolve them.
#[derive(Default)]
pub(crate) struct Symbolizer {
    /// Addresses queued, in the order their sites were defined.
    pending: VecDeque<u64>,
    /// Every address ever queued: each is resolved and written once.
    seen: HashSet<u64>,
    /// File-backed mappings of the process, sorted by start address.
    regions: Vec<Region>,
    /// Whether `regions` was read since the last address it could not place.
    regions_fresh: bool,
    /// Objects by path; `None` for one that cannot be read.
    objects: HashMap<String, Option<Box<ObjectFile>>>,
    /// Whether a mapping was touched since its pages were last released.
    touched: bool,
    /// Totals, for the tests and the performance notes.
    pub(crate) resolved: u64,
    pub(crate) busy: Duration,
}

impl std::fmt::Debug for Symbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbolizer")
            .field("pending", &self.pending.len())
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

/// An object file mapped into memory, with its DWARF read unit by unit.
struct ObjectFile {
    // Fields drop in declaration order: everything above `map` borrows it
    // and goes first.
    dwarf: Option<Dwarf>,
    symtab: OnceCell<object::SymbolMap<object::SymbolMapName<'static>>>,
    file: object::File<'static>,
    /// Loadable segments: file offset, size in the file, virtual address.
    segments: Vec<(u64, u64, u64)>,
    map: memmap2::Mmap,
}

/// One frame of an address: the function, its file and line.
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
                self.pending.push_back(a);
            }
        }
    }

    /// Addresses not yet resolved.
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Resolves queued addresses into `Symbol` records in `enc`, one per
    /// frame (the inlined ones first, the function that holds the address
    /// last), until `until` has passed or `enc` holds `max_len` encoded
    /// bytes; the rest stay queued. An address nothing names gets one
    /// empty record, so that it is not taken for one that was never
    /// resolved.
    pub(crate) fn resolve_into(
        &mut self,
        enc: &mut ChunkEncoder,
        until: Option<Instant>,
        max_len: usize,
    ) {
        let start = Instant::now();
        self.regions_fresh = false;
        // In address order, the addresses of one unit come one after the
        // other, and each unit is read once.
        self.pending.make_contiguous().sort_unstable();
        let mut frames = Vec::new();
        while let Some(addr) = self.pending.pop_front() {
            frames.clear();
            self.resolve(addr, &mut frames);
            if frames.is_empty() {
                frames.push(Frame { function: String::new(), file: String::new(), line: 0 });
            }
            for f in frames.drain(..) {
                enc.push(&Record::Symbol {
                    addr,
                    function: f.function,
                    file: f.file,
                    line: f.line,
                });
            }
            self.resolved += 1;
            // Resolving is the collector at work: a thread waiting for ring
            // room keeps waiting rather than taking it for a stall.
            pulse_alloc::note_progress();
            if self.resolved % RELEASE_EVERY == 0 {
                self.release();
            }
            if until.is_some_and(|t| Instant::now() >= t) || enc.encoded_len() >= max_len {
                break;
            }
        }
        if self.pending.is_empty() {
            // Nothing left to resolve: what was parsed goes back to the
            // program, until new sites come.
            for object in self.objects.values_mut().flatten() {
                object.forget_units();
            }
        }
        self.release();
        self.busy += start.elapsed();
    }

    /// Whether `addr` is named (a function) but placed in no file: the
    /// object it is in has no line tables for it. False where nothing
    /// names it, which says nothing about line tables.
    pub(crate) fn names_without_file(&mut self, addr: u64) -> bool {
        let mut frames = Vec::new();
        self.resolve(addr, &mut frames);
        self.release();
        !frames.is_empty() && frames.iter().all(|f| f.file.is_empty())
    }

    /// The frames of `addr`, innermost first; none if nothing names it.
    fn resolve(&mut self, addr: u64, out: &mut Vec<Frame>) {
        // A return address points after its call; the call is one byte
        // before. (A site's first frame, inside pulse, is not a return
        // address, but one byte back is still inside the same function.)
        let probe = addr.saturating_sub(1);
        let Some(region) = self.region(probe) else { return };
        let file_offset = probe - region.start + region.offset;
        let path = region.path.clone();
        let object = self.objects.entry(path).or_insert_with_key(|p| ObjectFile::open(p));
        let Some(object) = object else { return };
        self.touched = true;
        let Some(svma) = object.file_to_svma(file_offset) else { return };
        object.frames(svma, out);
    }

    /// The mapping that holds `addr`, reading `/proc/self/maps` again (once
    /// a round) when none does: a library may have been loaded since.
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

    /// Releases the pages of every mapping touched since the last release.
    fn release(&mut self) {
        if std::mem::take(&mut self.touched) {
            for object in self.objects.values().flatten() {
                object.release();
            }
        }
    }
}

/// Maps the object at `path` and parses it. The parse borrows the
/// mapping's pages: the caller drops it before the mapping.
fn map_object(path: &Path) -> Option<(memmap2::Mmap, object::File<'static>)> {
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
    Some((map, parsed))
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

impl ObjectFile {
    /// Maps and parses the object at `path`; `None` if it is not an object
    /// this can read. Its DWARF, if any, is read lazily from then on.
    fn open(path: &str) -> Option<Box<ObjectFile>> {
        let (map, file) = map_object(Path::new(path))?;
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
        let (map, file) = match separate {
            Some((debug_map, debug_file)) => {
                // The object's parse borrows its mapping: it goes first.
                drop(file);
                drop(map);
                (debug_map, debug_file)
            }
            None => (map, file),
        };
        let endian = if file.is_little_endian() {
            gimli::RunTimeEndian::Little
        } else {
            gimli::RunTimeEndian::Big
        };
        let dwarf = Dwarf::new(&file, endian);
        let object = ObjectFile { dwarf, symtab: OnceCell::new(), file, segments, map };
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

    /// The frames at `svma`, innermost first, as `backtrace` names them:
    /// each DWARF frame (a function without a name in DWARF takes the
    /// symbol table's), or else the symbol table's entry alone (the table
    /// is read on first use).
    fn frames(&mut self, svma: u64, out: &mut Vec<Frame>) {
        let ObjectFile { dwarf, symtab, file, .. } = self;
        let symbol = |svma| {
            let map = symtab.get_or_init(|| file.symbol_map());
            map.containing(svma).map(|s| s.name().as_bytes())
        };
        if let Some(dwarf) = dwarf {
            for _ in 0..=MORE_UNITS {
                out.clear();
                let Some(context) = dwarf.context(file, svma) else { break };
                let missing = match dwarf_frames(context, svma, &symbol, out) {
                    Err(gimli::Error::NoEntryAtGivenOffset(offset)) => offset,
                    _ => break,
                };
                if !dwarf.take_in(file, svma, missing) {
                    break;
                }
            }
        }
        if out.is_empty() {
            if let Some(name) = symbol(svma) {
                out.push(Frame { function: demangle(name), file: String::new(), line: 0 });
            }
        }
    }

    /// Drops the contexts of the units read so far.
    fn forget_units(&mut self) {
        if let Some(d) = &mut self.dwarf {
            d.units.clear();
        }
    }

    /// Drops the mapping's resident pages; they are read back as touched.
    fn release(&self) {
        // SAFETY: the mapping is private, read-only and never written, so
        // discarding its pages loses nothing: the next access reads the
        // same bytes back from the file.
        let _ = unsafe { self.map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
    }
}

/// The DWARF frames of `svma` in `context` into `out`, innermost first:
/// each with its function's name (the symbol table's where DWARF has none),
/// file and line. Stops at the first error, keeping the frames before it.
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

/// Compilation units kept parsed (their line tables and functions), the
/// most recently used first.
const UNITS_KEPT: usize = 8;

/// Times a unit's context is made again to take in one more unit that a
/// lookup found it needs (a name referred to through two other units).
const MORE_UNITS: usize = 4;

/// An object's DWARF: which unit holds which addresses, and the few units
/// read lately.
///
/// `addr2line`'s context over a whole object parses every unit's header,
/// abbreviations, file table and address ranges up front: tens of MiB and a
/// few hundred milliseconds for a program the size of ripgrep. Here
/// `.debug_aranges` says which unit holds an address, and a context is made
/// for that unit and the units it refers to alone, so what is parsed is the
/// units the sites' frames are in, a few at a time. An object without
/// `.debug_aranges` falls back to one context over all its units.
///
/// The units a context sees keep their offsets in `.debug_info`: an inlined
/// function's name is often a reference into another unit by its offset in
/// the section (`DW_FORM_ref_addr`; optimised Rust is full of them), so a
/// unit is not read on its own but from a copy of the section where it and
/// the units it refers to stand at their own offsets, and every other
/// stretch is one empty type unit, which `addr2line` passes over unread.
struct Dwarf {
    endian: gimli::RunTimeEndian,
    /// `.debug_info` whole.
    info: &'static [u8],
    /// Every section whole, to read unit headers and references from.
    sections: gimli::Dwarf<Slice>,
    /// Address ranges (begin, end) and the offset of their unit, by begin.
    aranges: Vec<(u64, u64, usize)>,
    /// Where each unit of `.debug_info` starts, in order; read on first use.
    unit_starts: OnceCell<Vec<usize>>,
    /// Contexts of single units, most recently used first.
    units: Vec<UnitContext>,
    /// The context over every unit, for an object without `.debug_aranges`.
    whole: Option<addr2line::Context<Slice>>,
}

/// A context over one unit (`primary`) and the units it refers to.
struct UnitContext {
    primary: usize,
    /// The units the context holds, by offset, in order.
    held: Vec<usize>,
    // `context` borrows `_copy`: it is declared, so dropped, first.
    context: addr2line::Context<Slice>,
    _copy: memmap2::MmapMut,
}

impl Dwarf {
    fn new(file: &object::File<'static>, endian: gimli::RunTimeEndian) -> Option<Dwarf> {
        let info = section(file, ".debug_info")?;
        let sections = load_sections(file, endian, info, false).ok()?;
        let mut aranges = Vec::new();
        let mut headers = sections.debug_aranges.headers();
        while let Ok(Some(header)) = headers.next() {
            let unit = header.debug_info_offset().0;
            let mut entries = header.entries();
            while let Ok(Some(e)) = entries.next() {
                let r = e.range();
                if r.begin < r.end {
                    aranges.push((r.begin, r.end, unit));
                }
            }
        }
        aranges.sort_unstable();
        let whole = if aranges.is_empty() {
            Some(
                addr2line::Context::from_dwarf(load_sections(file, endian, info, false).ok()?)
                    .ok()?,
            )
        } else {
            None
        };
        Some(Dwarf {
            endian,
            info,
            sections,
            aranges,
            unit_starts: OnceCell::new(),
            units: Vec::new(),
            whole,
        })
    }

    /// The unit that holds `svma`, by its offset in `.debug_info`.
    fn unit_of_address(&self, svma: u64) -> Option<usize> {
        let i = self.aranges.partition_point(|a| a.0 <= svma).checked_sub(1)?;
        Some(self.aranges[..=i].iter().rev().find(|a| svma < a.1)?.2)
    }

    /// The unit that holds byte `offset` of `.debug_info`.
    fn unit_of_offset(&self, offset: usize) -> Option<usize> {
        let starts = self.unit_starts.get_or_init(|| {
            let mut starts = Vec::new();
            let mut headers = self.sections.units();
            while let Ok(Some(h)) = headers.next() {
                if let Some(o) = h.debug_info_offset() {
                    starts.push(o.0);
                }
            }
            starts
        });
        let i = starts.partition_point(|&s| s <= offset).checked_sub(1)?;
        Some(starts[i])
    }

    /// The context that resolves `svma`: its unit's, made if it is not
    /// among those kept. `None` when no unit holds the address.
    fn context(
        &mut self,
        file: &object::File<'static>,
        svma: u64,
    ) -> Option<&addr2line::Context<Slice>> {
        if self.whole.is_some() {
            return self.whole.as_ref();
        }
        let unit = self.unit_of_address(svma)?;
        match self.units.iter().position(|u| u.primary == unit) {
            Some(k) => self.units[..=k].rotate_right(1),
            None => {
                let mut held = vec![unit];
                held.extend(self.referred_units(unit));
                held.sort_unstable();
                held.dedup();
                let context = self.unit_context(file, unit, held)?;
                self.units.truncate(UNITS_KEPT - 1);
                self.units.insert(0, context);
            }
        }
        self.units.first().map(|u| &u.context)
    }

    /// Makes the context of the unit that resolves `svma` again, with the
    /// unit that holds `offset` too, after a lookup in it failed for want of
    /// the entry there. Whether it was made (not if that unit was held).
    fn take_in(&mut self, file: &object::File<'static>, svma: u64, offset: u64) -> bool {
        let Some(unit) = self.unit_of_address(svma) else { return false };
        let Some(k) = self.units.iter().position(|u| u.primary == unit) else { return false };
        let Some(more) = usize::try_from(offset).ok().and_then(|o| self.unit_of_offset(o)) else {
            return false;
        };
        let mut held = self.units[k].held.clone();
        if held.contains(&more) {
            return false;
        }
        held.push(more);
        held.sort_unstable();
        self.units.remove(k);
        match self.unit_context(file, unit, held) {
            Some(context) => {
                self.units.insert(0, context);
                true
            }
            None => false,
        }
    }

    /// The units that entries of the unit at `offset` name themselves after
    /// (their `DW_AT_abstract_origin` or `DW_AT_specification` refers into
    /// another unit by section offset).
    fn referred_units(&self, offset: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let Ok(header) =
            self.sections.debug_info.header_from_offset(gimli::DebugInfoOffset(offset))
        else {
            return out;
        };
        let Ok(abbreviations) = self.sections.abbreviations(&header) else { return out };
        let mut entries = header.entries(&abbreviations);
        let mut targets = Vec::new();
        while let Ok(Some(entry)) = entries.next_dfs() {
            for attr in entry.attrs() {
                if matches!(attr.name(), gimli::DW_AT_abstract_origin | gimli::DW_AT_specification)
                {
                    if let gimli::AttributeValue::DebugInfoRef(r) = attr.value() {
                        targets.push(r.0);
                    }
                }
            }
        }
        targets.sort_unstable();
        targets.dedup();
        for t in targets {
            if let Some(u) = self.unit_of_offset(t) {
                if u != offset && out.last() != Some(&u) {
                    out.push(u);
                }
            }
        }
        out
    }

    /// A context over the units at `held` (offsets in `.debug_info`, in
    /// order), each at its own offset in a copy of the section.
    fn unit_context(
        &self,
        file: &object::File<'static>,
        primary: usize,
        held: Vec<usize>,
    ) -> Option<UnitContext> {
        let info = gimli::DebugInfo::new(self.info, self.endian);
        let mut spans = Vec::with_capacity(held.len());
        for &offset in &held {
            let header = info.header_from_offset(gimli::DebugInfoOffset(offset)).ok()?;
            let end = offset.checked_add(header.length_including_self())?;
            spans.push(offset..end.min(self.info.len()));
        }
        let len = spans.last()?.end;
        // Anonymous memory: pages nobody writes stay zero and cost nothing.
        let mut copy = memmap2::MmapMut::map_anon(len).ok()?;
        let mut at = 0;
        for span in &spans {
            fill_with_empty_units(
                &mut copy[at..span.start],
                &self.info[at..span.start],
                self.endian,
            );
            copy[span.clone()].copy_from_slice(&self.info[span.clone()]);
            at = span.end;
        }
        // SAFETY: the slice points into `copy`'s pages, which stay where
        // they are for as long as `copy` lives (moving the `MmapMut` does
        // not move them) and are not written again; the context that
        // borrows them is declared before `copy` in `UnitContext`, so it is
        // dropped first.
        let bytes: &'static [u8] = unsafe { std::slice::from_raw_parts(copy.as_ptr(), len) };
        let sections = load_sections(file, self.endian, bytes, true).ok()?;
        let context = addr2line::Context::from_dwarf(sections).ok()?;
        Some(UnitContext { primary, held, context, _copy: copy })
    }
}

/// The longest empty unit written in one piece.
const MAX_EMPTY_UNIT: usize = 0xffff_0000;
/// The header of an empty unit: a DWARF 5 type unit, which a context skips
/// without reading its abbreviations or entries.
const EMPTY_UNIT_HEADER: usize = 24;

/// Fills `out` with empty units as long as it, or with `original` (the
/// section's own units there) where it is too short for one.
fn fill_with_empty_units(out: &mut [u8], original: &[u8], endian: gimli::RunTimeEndian) {
    let big = matches!(endian, gimli::RunTimeEndian::Big);
    if out.is_empty() {
        return;
    }
    if out.len() < EMPTY_UNIT_HEADER {
        out.copy_from_slice(original);
        return;
    }
    let mut rest = out;
    while !rest.is_empty() {
        let mut n = rest.len().min(MAX_EMPTY_UNIT);
        // Never leave a piece too short to be a unit.
        if rest.len() - n != 0 && rest.len() - n < EMPTY_UNIT_HEADER {
            n -= EMPTY_UNIT_HEADER;
        }
        let (piece, tail) = rest.split_at_mut(n);
        let length = u32::try_from(n - 4).expect("a piece is shorter than 4 GiB");
        let (length, version) = if big {
            (length.to_be_bytes(), 5u16.to_be_bytes())
        } else {
            (length.to_le_bytes(), 5u16.to_le_bytes())
        };
        piece[..4].copy_from_slice(&length);
        piece[4..6].copy_from_slice(&version);
        piece[6] = gimli::DW_UT_type.0;
        piece[7] = 8; // address size
                      // Abbreviations at offset 0, type signature 0, type offset 0.
        piece[8..EMPTY_UNIT_HEADER].fill(0);
        rest = tail;
    }
}

/// The DWARF sections of `file`, with `info` as `.debug_info`; for a
/// single unit's context (`unit`), without `.debug_aranges`, which that
/// context would otherwise read whole to find its one unit's ranges.
fn load_sections(
    file: &object::File<'static>,
    endian: gimli::RunTimeEndian,
    info: &'static [u8],
    unit: bool,
) -> Result<gimli::Dwarf<Slice>, gimli::Error> {
    gimli::Dwarf::load(|id| -> Result<Slice, gimli::Error> {
        let data = match id {
            gimli::SectionId::DebugInfo => info,
            gimli::SectionId::DebugAranges if unit => &[],
            _ => section(file, id.name()).unwrap_or(&[]),
        };
        Ok(gimli::EndianSlice::new(data, endian))
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
fn demangle(raw: &[u8]) -> String {
    match std::str::from_utf8(raw).ok().and_then(|s| rustc_demangle::try_demangle(s).ok()) {
        Some(d) => format!("{d:#}"),
        None => String::from_utf8_lossy(raw).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_stretch_of_empty_units_reads_as_type_units_covering_it_exactly() {
        for (len, endian) in [
            (24, gimli::RunTimeEndian::Little),
            (1000, gimli::RunTimeEndian::Little),
            (4096, gimli::RunTimeEndian::Big),
        ] {
            let mut bytes = vec![0xaa; len];
            fill_with_empty_units(&mut bytes, &vec![0; len], endian);
            let info = gimli::DebugInfo::new(&bytes[..], endian);
            let mut headers = info.units();
            let mut covered = 0;
            while let Some(h) = headers.next().unwrap() {
                assert!(matches!(h.type_(), gimli::UnitType::Type { .. }), "{h:?}");
                covered += h.length_including_self();
            }
            assert_eq!(covered, len);
        }
        // Too short for a unit: the section's own bytes stay.
        let mut short = [0u8; 10];
        fill_with_empty_units(&mut short, &[7; 10], gimli::RunTimeEndian::Little);
        assert_eq!(short, [7; 10]);
    }
}
