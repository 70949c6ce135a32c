//! The blocks a chunk's records may name by how recent they are rather than
//! by address (docs/FORMAT.md, "Recent blocks", versions 2 and 3).
//!
//! A free is most often of one of the thread's last few allocations, and an
//! allocation most often reuses the address of one of its last few frees
//! (the allocator's bins are last in, first out). So a record may name the
//! `k`-th most recent block allocated or freed in its chunk, `k < WINDOW`,
//! instead of writing its address and size. Both sides keep the same lists:
//! the decoder every block in a window ([`Recent`]), the encoder a table by
//! address ([`Refs`]) that answers "which recent block was at this address,
//! and of what size". The encoder names a block only when its table holds
//! the same address and size, so a reference decodes to exactly the fields
//! the event had; a table slot overwritten by another address only costs
//! the longer record. A reallocation that moved may name a recent free for
//! its address alone (version 3), and writes its new size.

/// How many blocks back a reference may reach, allocated or freed.
pub(crate) const WINDOW: usize = 256;

/// The encoder's table slots per list: four times the window, so that
/// blocks still in the window rarely share a slot.
const TABLE: usize = 4096;

/// The decoder's side: the chunk's last [`WINDOW`] blocks allocated and
/// freed, as (address, size).
#[derive(Debug, Clone)]
pub(crate) struct Recent {
    allocs: [(u64, u64); WINDOW],
    frees: [(u64, u64); WINDOW],
    n_allocs: u64,
    n_frees: u64,
}

impl Recent {
    /// Empty lists, as at the top of a chunk.
    pub(crate) fn new() -> Box<Recent> {
        Box::new(Recent {
            allocs: [(0, 0); WINDOW],
            frees: [(0, 0); WINDOW],
            n_allocs: 0,
            n_frees: 0,
        })
    }

    #[inline(always)]
    pub(crate) fn allocated(&mut self, addr: u64, size: u64) {
        self.allocs[self.n_allocs as usize % WINDOW] = (addr, size);
        self.n_allocs += 1;
    }

    #[inline(always)]
    pub(crate) fn freed(&mut self, addr: u64, size: u64) {
        self.frees[self.n_frees as usize % WINDOW] = (addr, size);
        self.n_frees += 1;
    }

    /// The `k`-th most recent block allocated (0: the last), if the chunk
    /// has had that many and it is in the window.
    #[inline(always)]
    pub(crate) fn alloc(&self, k: u64) -> Option<(u64, u64)> {
        pick(&self.allocs, self.n_allocs, k)
    }

    /// The `k`-th most recent block freed.
    #[inline(always)]
    pub(crate) fn free(&self, k: u64) -> Option<(u64, u64)> {
        pick(&self.frees, self.n_frees, k)
    }
}

#[inline(always)]
fn pick(list: &[(u64, u64); WINDOW], n: u64, k: u64) -> Option<(u64, u64)> {
    if k < n.min(WINDOW as u64) {
        Some(list[(n - 1 - k) as usize % WINDOW])
    } else {
        None
    }
}

/// One block in the encoder's table: its address and size, and its place
/// in the encoder's count of blocks (`u64::MAX` for a slot never written).
#[derive(Debug, Clone, Copy)]
struct Slot {
    addr: u64,
    size: u64,
    ord: u64,
}

const EMPTY: Slot = Slot { addr: 0, size: 0, ord: u64::MAX };

/// One list on the encoder's side: blocks by address, numbered across
/// chunks so that starting a chunk needs no clearing.
#[derive(Debug, Clone)]
struct Table {
    /// On the heap: 96 KiB, too much for the stack of the thread that
    /// makes an encoder.
    slots: Box<[Slot; TABLE]>,
    /// Blocks entered since the encoder was made.
    n: u64,
    /// `n` when the current chunk began: older blocks are not in it.
    base: u64,
}

impl Table {
    #[inline(always)]
    fn slot(addr: u64) -> usize {
        // Blocks are at least 8-aligned; the multiply spreads the rest.
        (((addr >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> (64 - TABLE.trailing_zeros()))
            as usize
    }

    #[inline(always)]
    fn enter(&mut self, addr: u64, size: u64) {
        self.slots[Self::slot(addr)] = Slot { addr, size, ord: self.n };
        self.n += 1;
    }

    /// How many blocks back the block at `addr` was entered in this chunk,
    /// and its size, if it is in the window.
    #[inline(always)]
    fn find(&self, addr: u64) -> Option<(u64, u64)> {
        let s = self.slots[Self::slot(addr)];
        let in_window = s.ord >= self.base && s.ord < self.n && self.n - s.ord <= WINDOW as u64;
        (s.addr == addr && in_window).then(|| (self.n - 1 - s.ord, s.size))
    }
}

/// The encoder's side: the chunk's recent allocations and frees by address.
#[derive(Debug, Clone)]
pub(crate) struct Refs {
    allocs: Table,
    frees: Table,
}

impl Default for Refs {
    fn default() -> Self {
        let slots = vec![EMPTY; TABLE].into_boxed_slice().try_into().expect("TABLE slots");
        let table = Table { slots, n: 0, base: 0 };
        Refs { allocs: table.clone(), frees: table }
    }
}

impl Refs {
    /// A new chunk: no block before this one may be named.
    pub(crate) fn begin(&mut self) {
        self.allocs.base = self.allocs.n;
        self.frees.base = self.frees.n;
    }

    #[inline(always)]
    pub(crate) fn allocated(&mut self, addr: u64, size: u64) {
        self.allocs.enter(addr, size);
    }

    #[inline(always)]
    pub(crate) fn freed(&mut self, addr: u64, size: u64) {
        self.frees.enter(addr, size);
    }

    /// `k` for [`Recent::alloc`] if the block at `addr` of `size` bytes is
    /// one of the recent allocations.
    #[inline(always)]
    pub(crate) fn alloc(&self, addr: u64, size: u64) -> Option<u64> {
        self.allocs.find(addr).and_then(|(k, s)| (s == size).then_some(k))
    }

    /// `k` for [`Recent::free`] and the freed block's size, if a recent
    /// free was at `addr`.
    #[inline(always)]
    pub(crate) fn free(&self, addr: u64) -> Option<(u64, u64)> {
        self.frees.find(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the encoder names, the decoder's lists hold.
    #[test]
    fn a_reference_names_the_block_it_was_made_for() {
        let mut refs = Refs::default();
        let mut seed = 1u64;
        for chunk in 0..20 {
            refs.begin();
            let mut recent = Recent::new();
            for i in 0..5_000u64 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // Few distinct addresses, so that slots are shared and reused.
                let addr = 0x1000 + (seed % 700) * 16;
                let size = seed % 3;
                if let Some(k) = refs.alloc(addr, size) {
                    assert_eq!(recent.alloc(k), Some((addr, size)), "chunk {chunk} record {i}");
                }
                if let Some((k, s)) = refs.free(addr) {
                    assert_eq!(recent.free(k), Some((addr, s)), "chunk {chunk} record {i}");
                }
                if seed % 2 == 0 {
                    refs.allocated(addr, size);
                    recent.allocated(addr, size);
                } else {
                    refs.freed(addr, size);
                    recent.freed(addr, size);
                }
            }
        }
    }

    #[test]
    fn nothing_is_named_across_chunks_or_past_the_window() {
        let mut refs = Refs::default();
        refs.allocated(0x1000, 8);
        assert_eq!(refs.alloc(0x1000, 8), Some(0));
        assert_eq!(refs.alloc(0x1000, 9), None, "another size");
        refs.begin();
        assert_eq!(refs.alloc(0x1000, 8), None, "a block of the last chunk");
        refs.allocated(0x1000, 8);
        for i in 0..WINDOW as u64 - 1 {
            refs.allocated(0x10_0000 + i * 64, 8);
        }
        assert_eq!(refs.alloc(0x1000, 8), Some(WINDOW as u64 - 1));
        refs.allocated(0x20_0000, 8);
        assert_eq!(refs.alloc(0x1000, 8), None, "out of the window");
        assert_eq!(refs.alloc(0, 0), None, "a slot never written");
        let recent = Recent::new();
        assert_eq!(recent.alloc(0), None);
    }
}
