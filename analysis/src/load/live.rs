//! The replay's live set: every block allocated and not yet freed, by
//! address.
//!
//! Most blocks of real programs die young: jaq frees nine in ten within
//! 10 µs, a few hundred events after their birth. A block is therefore
//! born into a small direct-mapped table (`young`, 4096 slots, 160 KiB:
//! it stays in the core's caches) and moves to the hash map of the rest
//! (`old`) only when a younger block takes its slot. A block that dies
//! young is born and freed in the small table and never touches the large
//! one, whose entries (one per long-lived block, hundreds of thousands at
//! jaq's peak) are a cache miss each.
//!
//! An address is in at most one of the two tables: a birth at an address
//! still live in `old` (which only a session that lost events can hold)
//! finds it there, as the single table did, so the counts and the anomaly
//! stay exact. A bit per address hash (`Filter`) says which addresses
//! may be in `old`, so that a birth probes `old` only where one might be:
//! at most about one birth in eight, where every birth used to probe it.

use std::collections::HashMap;

/// A live block, as the replay keeps it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Block {
    pub(crate) size: u64,
    /// When it was allocated.
    pub(crate) ts: u64,
    /// Its site's index in the replay's site table.
    pub(crate) site: u32,
    /// The site index of its first allocation: its own site, unless a
    /// reallocation moved it here from the site that made it.
    pub(crate) origin: u32,
    /// The innermost scope open on its thread when it was allocated.
    pub(crate) scope: u32,
    /// The replay's index of the thread that allocated it: the block
    /// counts in that thread's live set whichever thread frees it.
    pub(crate) thread: u32,
}

// Four words: the young table's slot (its address and the block) stays 40 bytes.
const _: () = assert!(std::mem::size_of::<Block>() == 32);

/// Hashes a block address so that nearby addresses land in nearby buckets
/// (the low bits are the address's own, above its 8-byte granularity, with
/// the higher bits folded in), while the top bits — which the table uses to
/// tell keys of one bucket group apart — come from a multiplicative mix.
/// Blocks allocated and freed close together in time are close in memory
/// in real allocators, so the live set's table is touched in few cache
/// lines rather than one line at random per event.
#[derive(Debug, Default, Clone, Copy)]
struct BuildAddrHasher;

impl std::hash::BuildHasher for BuildAddrHasher {
    type Hasher = AddrHasher;
    fn build_hasher(&self) -> AddrHasher {
        AddrHasher(0)
    }
}

#[derive(Debug)]
struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    #[inline]
    fn write_u64(&mut self, addr: u64) {
        // Shifted copies of the higher bits folded into the lower ones: a
        // bijection, so no two addresses share a hash, and a page's blocks
        // (or a slab's) keep their order in the table.
        let low = fold(addr);
        let mix = addr.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = (low & (u64::MAX >> 7)) | (mix & !(u64::MAX >> 7));
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// An address's higher bits folded into its lower ones (above its 8-byte
/// granularity): a bijection that keeps a page's blocks in order.
#[inline(always)]
fn fold(addr: u64) -> u64 {
    let x = addr >> 3;
    x ^ (x >> 9) ^ (x >> 17) ^ (x >> 25) ^ (x >> 37)
}

/// The addresses that may be in the live set's `old` table: a bit per
/// [`fold`] of an address (neighbouring blocks, neighbouring bits), set
/// when a block moves there and left set when it leaves, until the bits
/// are made anew from the table's keys. That happens once more than an
/// eighth of them may be set, sized then at sixteen bits a key: rebuilding
/// costs the table's length, once every as many moves in.
#[derive(Debug)]
struct Filter {
    bits: Vec<u64>,
    /// The bits' count less one: a power of two less one.
    mask: u64,
    /// Addresses added since the bits were made: at least the bits set.
    added: usize,
}

/// The fewest bits a filter has.
const FILTER_MIN_BITS: usize = 1 << 16;

impl Filter {
    fn new(keys: usize) -> Filter {
        let n = keys.saturating_mul(16).next_power_of_two().max(FILTER_MIN_BITS);
        Filter { bits: vec![0; n / 64], mask: n as u64 - 1, added: 0 }
    }

    /// The word and the bit of `addr`.
    #[inline(always)]
    fn at(&self, addr: u64) -> (usize, u64) {
        let i = fold(addr) & self.mask;
        ((i >> 6) as usize, 1 << (i & 63))
    }

    /// Whether a block at `addr` may be in the table (if not, it is not).
    #[inline(always)]
    fn may_hold(&self, addr: u64) -> bool {
        let (word, bit) = self.at(addr);
        self.bits[word] & bit != 0
    }

    #[inline(always)]
    fn add(&mut self, addr: u64) {
        let (word, bit) = self.at(addr);
        self.bits[word] |= bit;
        self.added += 1;
    }

    /// Whether enough bits may be set that the filter should be made anew.
    #[inline(always)]
    fn full(&self) -> bool {
        self.added > self.bits.len() * 8
    }

    /// A filter of exactly `keys`.
    #[cold]
    fn of(keys: impl ExactSizeIterator<Item = u64>) -> Filter {
        let mut f = Filter::new(keys.len());
        keys.for_each(|k| f.add(k));
        f
    }
}

/// Slots of the young table: a power of two.
const YOUNG: usize = 1 << 12;

/// The live set (see the module's documentation).
#[derive(Debug)]
pub(crate) struct LiveSet {
    young: Box<[Slot]>,
    young_len: usize,
    old: HashMap<u64, Block, BuildAddrHasher>,
    /// Which addresses may be in `old`.
    filter: Filter,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    addr: u64,
    block: Option<Block>,
}

impl Default for LiveSet {
    fn default() -> Self {
        LiveSet {
            young: vec![Slot { addr: 0, block: None }; YOUNG].into_boxed_slice(),
            young_len: 0,
            old: HashMap::default(),
            filter: Filter::new(0),
        }
    }
}

/// The young slot of `addr`: the top bits of a multiplicative hash, so
/// that blocks a size class's stride apart spread over every slot.
#[inline(always)]
fn slot(addr: u64) -> usize {
    ((addr >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - YOUNG.trailing_zeros())) as usize
}

impl LiveSet {
    /// Blocks live.
    pub(crate) fn len(&self) -> usize {
        self.young_len + self.old.len()
    }

    /// Makes `block` live at `addr`; the block live there before, if any,
    /// is returned (it is no longer live).
    #[inline(always)]
    pub(crate) fn insert(&mut self, addr: u64, block: Block) -> Option<Block> {
        let i = slot(addr);
        let s = self.young[i];
        if let Some(b) = s.block {
            if s.addr == addr {
                self.young[i].block = Some(block);
                return Some(b);
            }
        }
        let before = if self.old_may_hold(addr) { self.old.remove(&addr) } else { None };
        if let Some(b) = s.block {
            // An older block gives its slot up.
            self.old.insert(s.addr, b);
            self.filter.add(s.addr);
            if self.filter.full() {
                self.filter = Filter::of(self.old.keys().copied());
            }
        } else {
            self.young_len += 1;
        }
        self.young[i] = Slot { addr, block: Some(block) };
        before
    }

    /// Ends the block at `addr`, if one is live there.
    #[inline(always)]
    pub(crate) fn remove(&mut self, addr: u64) -> Option<Block> {
        let s = &mut self.young[slot(addr)];
        if s.addr == addr {
            if let Some(b) = s.block.take() {
                self.young_len -= 1;
                return Some(b);
            }
        }
        if !self.old_may_hold(addr) {
            return None;
        }
        self.old.remove(&addr)
    }

    /// Whether `old` may hold a block at `addr` (if not, it does not).
    #[inline(always)]
    fn old_may_hold(&self, addr: u64) -> bool {
        !self.old.is_empty() && self.filter.may_hold(addr)
    }

    /// The block live at `addr`.
    #[inline]
    pub(crate) fn get(&self, addr: u64) -> Option<&Block> {
        let s = &self.young[slot(addr)];
        match &s.block {
            Some(b) if s.addr == addr => Some(b),
            _ if self.old_may_hold(addr) => self.old.get(&addr),
            _ => None,
        }
    }

    /// Whether a block is live at `addr`.
    #[inline]
    pub(crate) fn contains(&self, addr: u64) -> bool {
        self.get(addr).is_some()
    }

    /// Every live block, in no order.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.young.iter().filter_map(|s| s.block.as_ref()).chain(self.old.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(size: u64) -> Block {
        Block { size, ts: size, site: 0, origin: 0, scope: 0, thread: 0 }
    }

    #[test]
    fn a_dense_heap_fills_the_live_tables_buckets_one_to_one() {
        use std::hash::{BuildHasher, Hasher};
        let hash = |addr: u64| {
            let mut h = BuildAddrHasher.build_hasher();
            h.write_u64(addr);
            h.finish()
        };
        // 2^16 blocks of 8 bytes from an aligned base: as many buckets.
        let base = 0x7f3a_1234_0000_0000u64;
        let mut seen = vec![false; 1 << 16];
        for i in 0..1u64 << 16 {
            let b = (hash(base + 8 * i) & 0xffff) as usize;
            assert!(!seen[b], "block {i} shares a bucket");
            seen[b] = true;
        }
        // The bits that tell a bucket's keys apart are mixed.
        let tags: std::collections::BTreeSet<u64> =
            (0..4096u64).map(|i| hash(base + 64 * i) >> 57).collect();
        assert!(tags.len() > 100, "{} tags", tags.len());
    }

    /// Blocks that outgrow the young table fill `old`, whose filter grows
    /// with it and never hides a block there, while addresses never
    /// allocated are mostly told apart without a probe.
    #[test]
    fn the_filter_keeps_every_old_block_and_grows_with_them() {
        let mut live = LiveSet::default();
        let n = 300_000u64;
        let addr = |i: u64| 0x7f00_0000_0000 + i * 48;
        for i in 0..n {
            assert!(live.insert(addr(i), block(i)).is_none());
        }
        assert!(live.old.len() as u64 >= n - YOUNG as u64);
        assert!(live.filter.bits.len() * 64 > FILTER_MIN_BITS, "the filter grew");
        for i in 0..n {
            assert!(live.filter.may_hold(addr(i)) || live.young[slot(addr(i))].addr == addr(i));
            assert_eq!(live.get(addr(i)).map(|b| b.size), Some(i), "block {i}");
        }
        let strangers = (0..10_000u64).filter(|&i| live.old_may_hold(addr(n + 1_000_000 + i)));
        assert!(strangers.count() < 2_500, "most absent addresses need no probe");
        for i in 0..n {
            assert_eq!(live.remove(addr(i)).map(|b| b.size), Some(i));
        }
        assert_eq!(live.len(), 0);
    }

    /// The same operations on the live set and on a plain map give the
    /// same answers, whichever table a block is in: addresses that share
    /// a young slot (evictions), reuse of a live address young and old,
    /// frees of unknown addresses.
    #[test]
    fn the_live_set_answers_as_one_map_would() {
        let mut live = LiveSet::default();
        let mut map: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rng = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Few enough addresses that they collide, in young slots and as reuse.
        let addrs: Vec<u64> = (0..20_000).map(|i| 0x1000 + i * 16).collect();
        for step in 0..400_000u64 {
            let addr = addrs[(rng() % addrs.len() as u64) as usize];
            match rng() % 5 {
                0..=2 => {
                    let got = live.insert(addr, block(step)).map(|b| b.size);
                    assert_eq!(got, map.insert(addr, step), "insert at step {step}");
                }
                3 => {
                    let got = live.remove(addr).map(|b| b.size);
                    assert_eq!(got, map.remove(&addr), "remove at step {step}");
                }
                _ => {
                    assert_eq!(live.get(addr).map(|b| b.size), map.get(&addr).copied());
                    assert_eq!(live.contains(addr), map.contains_key(&addr));
                }
            }
            assert_eq!(live.len(), map.len());
        }
        assert!(!live.old.is_empty() && live.young_len > 0, "both tables were used");
        let mut sizes: Vec<u64> = live.blocks().map(|b| b.size).collect();
        let mut expected: Vec<u64> = map.values().copied().collect();
        sizes.sort_unstable();
        expected.sort_unstable();
        assert_eq!(sizes, expected);
    }
}
