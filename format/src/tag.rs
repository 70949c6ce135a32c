//! The tag byte that starts each record in a chunk (docs/FORMAT.md,
//! "Records"). The encoder writes these, both decoders (`record.rs`'s
//! reference one and `event.rs`'s fast one) match on them, and
//! [`RecordKind`](crate::RecordKind)'s discriminants are them, so a kind's
//! number is written once, here.

/// [`Record::ThreadStart`](crate::Record::ThreadStart)
pub const THREAD_START: u8 = 1;
/// [`Record::ThreadEnd`](crate::Record::ThreadEnd)
pub const THREAD_END: u8 = 2;
/// [`Record::Alloc`](crate::Record::Alloc) of weight 1.
pub const ALLOC: u8 = 3;
/// [`Record::Alloc`](crate::Record::Alloc) with a weight (a sampled site):
/// the same fields and the weight after them. Counted as an `Alloc`.
pub const ALLOC_WEIGHTED: u8 = 4;
/// [`Record::AllocFailed`](crate::Record::AllocFailed)
pub const ALLOC_FAILED: u8 = 5;
/// [`Record::Free`](crate::Record::Free)
pub const FREE: u8 = 6;
/// [`Record::Realloc`](crate::Record::Realloc)
pub const REALLOC: u8 = 7;
/// [`Record::ScopeEnter`](crate::Record::ScopeEnter)
pub const SCOPE_ENTER: u8 = 8;
/// [`Record::ScopeExit`](crate::Record::ScopeExit)
pub const SCOPE_EXIT: u8 = 9;
/// [`Record::Pause`](crate::Record::Pause)
pub const PAUSE: u8 = 10;
/// [`Record::Resume`](crate::Record::Resume)
pub const RESUME: u8 = 11;
/// [`Record::Counters`](crate::Record::Counters)
pub const COUNTERS: u8 = 12;
/// [`Record::SiteDef`](crate::Record::SiteDef)
pub const SITE_DEF: u8 = 13;
/// [`Record::ScopeDef`](crate::Record::ScopeDef)
pub const SCOPE_DEF: u8 = 14;
/// [`Record::Symbol`](crate::Record::Symbol)
pub const SYMBOL: u8 = 15;
/// [`Record::Span`](crate::Record::Span)
pub const SPAN: u8 = 16;
/// [`Record::Free`](crate::Record::Free) of one of the chunk's recent
/// allocations, named by how recent it is (version 2): no address or size.
pub const FREE_RECENT: u8 = 17;
/// [`Record::Alloc`](crate::Record::Alloc) of weight 1 and alignment
/// `1 << (tag - ALLOC_NEW)`, at an address given as a delta (version 2).
pub const ALLOC_NEW: u8 = 0x20;
/// The same, at the address of one of the chunk's recent frees and of its
/// size (version 2): neither is written.
pub const ALLOC_REUSE_SAME: u8 = 0x30;
/// The same, at the address of one of the chunk's recent frees but of
/// another size, which is written (version 2).
pub const ALLOC_REUSE: u8 = 0x40;
/// The alignments the three compact allocation tags above carry: `1 << 0`
/// to `1 << 15`, each tag the base plus the alignment's log2.
pub const ALIGN_IN_TAG: u8 = 16;

/// [`Record::Realloc`](crate::Record::Realloc) of a block that moved to
/// the address of one of the chunk's recent frees, named by how recent it
/// is rather than as a delta (version 3), with an alignment of
/// `1 << (tag & 7)`; [`REALLOC_RECENT_OLD`] as with [`REALLOC_COMPACT`].
pub const REALLOC_TO_FREED: u8 = 0x50;
/// [`Record::Realloc`](crate::Record::Realloc) with an alignment of
/// `1 << (tag & 7)` (version 2); the flags below say which fields it has.
pub const REALLOC_COMPACT: u8 = 0x60;
/// With [`REALLOC_COMPACT`]: the old block is one of the chunk's recent
/// allocations, named by how recent it is, rather than its address and size.
pub const REALLOC_RECENT_OLD: u8 = 0x08;
/// With [`REALLOC_COMPACT`]: the block stayed where it was; no new address.
/// The bit is set in every [`REALLOC_TO_FREED`] tag too (0x50–0x5F), where
/// it means nothing: test a tag with `record::moved`, not with this bit.
pub const REALLOC_IN_PLACE: u8 = 0x10;

/// The first tag of the extension range: a record with a tag from here up
/// is a length and that many bytes, which a reader that does not know it
/// skips.
pub const EXTENSION: u8 = 0x80;
