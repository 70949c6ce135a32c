//! The pulse session file format, version 3 (it reads 1 to 3).
//!
//! A session file (`.pulse`) is written while the profiled program runs and
//! read by `pulse-analysis`. This crate holds both sides — [`Writer`] and
//! [`Reader`] — so they are tested against each other. It depends on nothing
//! but a checksum and a compressor, so the analyzer reads sessions without
//! pulling in the allocator or perf-event code. `docs/FORMAT.md` is the full
//! specification; in short:
//!
//! ```text
//! offset  size  field
//! 0       8     magic  89 50 55 4C 53 45 0D 0A  ("\x89PULSE\r\n")
//! 8       2     format version, u16 little-endian (this crate writes 3)
//! 10      2     flags, 0
//! 12      4     metadata length M, u32 LE (at most 16 MiB)
//! 16      4     CRC-32 of bytes 8..10 and the metadata bytes, u32 LE
//!               (versions 1 and 2: of the metadata bytes alone)
//! 20      M     metadata (varints and length-prefixed strings)
//! then frames, each:
//! +0      1     kind: 1 chunk, 2 trailer (last frame of a finished session)
//! +1      1     codec: 0 raw, 1 zstd
//! +2      2     reserved, 0
//! +4      4     stored length S, u32 LE (at most 64 MiB)
//! +8      4     raw length, u32 LE (at most 64 MiB)
//! +12     4     CRC-32 over bytes +0..+12 and the S stored bytes
//! +16     S     payload
//! ```
//!
//! A chunk's payload is `thread` and `round` varints followed by records
//! (see [`Record`]) and then their timestamps; integers are LEB128 varints,
//! timestamps and addresses zigzag deltas within the chunk, and a block
//! the chunk allocated or freed lately may be named by how recent it is.
//!
//! ```
//! use pulse_format::{ChunkEncoder, Frame, Metadata, Reader, Record, Trailer, Writer};
//!
//! let mut w = Writer::new(Vec::new(), &Metadata::default())?;
//! let mut chunk = ChunkEncoder::new();
//! chunk.begin(1, 0);
//! chunk.push(&Record::Alloc { ts: 10, addr: 0x1000, size: 64, align: 8, site: 0, weight: 1 });
//! chunk.push(&Record::Free { ts: 20, addr: 0x1000, size: 64 });
//! w.write_chunk(&chunk)?;
//! let bytes = w.finish(Trailer::default())?;
//!
//! let mut r = Reader::new(&bytes[..])?;
//! let Some(Frame::Chunk(c)) = r.next_frame()? else { panic!() };
//! assert_eq!(c.records.len(), 2);
//! assert!(matches!(r.next_frame()?, Some(Frame::Trailer(_))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod codec;
mod dense;
mod error;
mod event;
mod header;
mod hist;
mod reader;
mod recent;
mod record;
mod scopes;
pub mod tag;
mod timing;
mod writer;

pub use dense::DenseIds;
pub use error::Error;
pub use event::{Decoded, Decoder, Event, RawChunk, Sink};
pub use header::{
    AllocMode, ClockInfo, ClockSource, CounterInfo, Metadata, Trailer, COUNTERS_AT_FIRST_USE,
    HARDWARE_COUNTERS, MAX_LIST, SOFTWARE_COUNTERS,
};
pub use hist::Histogram;
pub use reader::{Chunk, Frame, RawFrame, Reader};
pub use record::{Record, RecordKind, NO_SCOPE, NO_SITE};
pub use scopes::{Completed, ThreadScopes};
pub use timing::{CallNode, CallTree, ScopeTime, Timing, MAX_TREE_DEPTH, MAX_TREE_NODES};
pub use writer::{ChunkEncoder, Writer};

/// The bytes every session file starts with.
pub const MAGIC: [u8; 8] = *b"\x89PULSE\r\n";
/// The format version this crate writes, and the newest it reads.
pub const VERSION: u16 = 3;
/// The file extension of session files.
pub const EXTENSION: &str = "pulse";
/// The largest frame payload, stored or raw.
pub const MAX_FRAME_LEN: u32 = 64 << 20;
/// The largest metadata block.
pub const MAX_META_LEN: u32 = 16 << 20;

const CODEC_RAW: u8 = 0;
const CODEC_ZSTD: u8 = 1;

#[derive(Debug, Clone, Copy)]
#[repr(u8)]
enum FrameKind {
    Chunk = 1,
    Trailer = 2,
}

/// The metadata's CRC (header bytes 16–19) as a file of `version` has it,
/// for `metadata` its metadata bytes: from version 3 it covers the version
/// too, so that no damaged version reads as another. For tools that craft
/// or repair session files.
pub fn metadata_crc(version: u16, metadata: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    if version >= 3 {
        h.update(&version.to_le_bytes());
    }
    h.update(metadata);
    h.finalize()
}

fn frame_crc(head: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(head);
    h.update(payload);
    h.finalize()
}
