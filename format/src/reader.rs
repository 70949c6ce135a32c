//! The streaming reader: yields the header's metadata, then one frame at a time.

use std::io::{self, Read};

use crate::codec::{Cursor, DecodeError};
use crate::error::Error;
use crate::event::RawChunk;
use crate::header::{Metadata, Trailer};
use crate::record::Record;
use crate::{
    frame_crc, metadata_crc, FrameKind, CODEC_RAW, CODEC_ZSTD, MAGIC, MAX_FRAME_LEN, MAX_META_LEN,
    VERSION,
};

/// One thread's records from one collector round.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Byte offset of the chunk's frame in the file.
    pub offset: u64,
    /// The thread the records belong to (0: session-wide definitions).
    pub thread: u64,
    /// The collector round that wrote the chunk.
    pub round: u64,
    /// The records, in the order the thread produced them.
    pub records: Vec<Record>,
}

/// One unit of a session file's body.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// Records.
    Chunk(Chunk),
    /// The totals that close a finished session.
    Trailer(Trailer),
}

/// A frame as [`Reader::next_raw`] returns it: a chunk not yet decoded.
#[derive(Debug, Clone)]
pub enum RawFrame<'a> {
    /// Records, still encoded.
    Chunk(RawChunk<'a>),
    /// The totals that close a finished session.
    Trailer(Trailer),
}

/// Reads a session file from any [`Read`], one frame at a time, verifying
/// every checksum. Memory is bounded by the largest frame (64 MiB at most).
pub struct Reader<R: Read> {
    inp: R,
    offset: u64,
    version: u16,
    meta: Metadata,
    /// Bytes read so far as decoded (see [`Reader::decoded_len`]).
    decoded: u64,
    stored: Vec<u8>,
    raw: Vec<u8>,
    decompressor: zstd::bulk::Decompressor<'static>,
    finished: bool,
}

impl<R: Read> std::fmt::Debug for Reader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("offset", &self.offset)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Reader<R> {
    /// Reads and checks the header.
    pub fn new(mut inp: R) -> Result<Self, Error> {
        let mut head = [0u8; 20];
        let n = read_full(&mut inp, &mut head)?;
        if n == 0 {
            return Err(Error::Empty);
        }
        let magic_len = n.min(MAGIC.len());
        if head[..magic_len] != MAGIC[..magic_len] {
            return Err(Error::NotASession);
        }
        if n < head.len() {
            return Err(Error::Truncated { offset: 0, what: "inside the file header" });
        }
        let version = u16::from_le_bytes([head[8], head[9]]);
        if version > VERSION {
            return Err(Error::NewerVersion { found: version, supported: VERSION });
        }
        if version == 0 {
            return Err(Error::Corrupt {
                offset: 8,
                what: String::from("format version 0 does not exist"),
            });
        }
        let meta_len = u32::from_le_bytes([head[12], head[13], head[14], head[15]]);
        let crc = u32::from_le_bytes([head[16], head[17], head[18], head[19]]);
        if meta_len > MAX_META_LEN {
            return Err(Error::Corrupt {
                offset: 12,
                what: format!(
                    "the header claims {meta_len} bytes of metadata (at most {MAX_META_LEN})"
                ),
            });
        }
        let mut body = Vec::new();
        if (&mut inp).take(u64::from(meta_len)).read_to_end(&mut body)? < meta_len as usize {
            return Err(Error::Truncated { offset: 20, what: "inside the session metadata" });
        }
        if metadata_crc(version, &body) != crc {
            return Err(Error::Checksum { offset: 0 });
        }
        let mut c = Cursor::new(&body);
        let meta = Metadata::decode(&mut c).map_err(|e| corrupt(20, e))?;
        Ok(Reader {
            inp,
            offset: 20 + u64::from(meta_len),
            decoded: 20 + u64::from(meta_len),
            version,
            meta,
            stored: Vec::new(),
            raw: Vec::new(),
            decompressor: zstd::bulk::Decompressor::new()?,
            finished: false,
        })
    }

    /// The session's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// The file's format version.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes of the session read so far as decoded: the header and the
    /// metadata, then each frame's 16-byte header and its payload at its
    /// raw length, whether it was stored compressed or not. What a reader
    /// of the session does is bounded per byte of this, never of the file,
    /// which zstd can make thousands of times smaller.
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// The next frame, or `None` after the trailer.
    ///
    /// A file that ends before its trailer yields [`Error::Truncated`] once
    /// every whole frame before the cut has been returned.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, Error> {
        Ok(match self.next_raw()? {
            None => None,
            Some(RawFrame::Trailer(t)) => Some(Frame::Trailer(t)),
            Some(RawFrame::Chunk(c)) => Some(Frame::Chunk(Chunk {
                offset: c.offset,
                thread: c.thread,
                round: c.round,
                records: c.records()?,
            })),
        })
    }

    /// [`Reader::next_frame`] without decoding a chunk's records: the
    /// frame is checked (lengths, checksum, codec, kind, the chunk's thread
    /// and round) and decompressed into a buffer the reader reuses, and
    /// [`RawChunk::decode`] then decodes it without a `Record` per event.
    pub fn next_raw(&mut self) -> Result<Option<RawFrame<'_>>, Error> {
        if self.finished {
            return Ok(None);
        }
        let start = self.offset;
        let mut head = [0u8; 16];
        let n = read_full(&mut self.inp, &mut head)?;
        if n == 0 {
            return Err(Error::Truncated {
                offset: start,
                what: "the file ends before the trailer",
            });
        }
        if n < head.len() {
            return Err(Error::Truncated { offset: start, what: "inside a frame header" });
        }
        let kind = head[0];
        let codec = head[1];
        let stored_len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let raw_len = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        let crc = u32::from_le_bytes([head[12], head[13], head[14], head[15]]);
        if stored_len > MAX_FRAME_LEN || raw_len > MAX_FRAME_LEN {
            return Err(Error::Corrupt {
                offset: start,
                what: format!(
                    "the frame claims {} bytes (at most {MAX_FRAME_LEN})",
                    stored_len.max(raw_len)
                ),
            });
        }
        // Grow with the bytes actually read rather than allocating the claimed
        // length up front: a damaged length in a short file costs nothing.
        self.stored.clear();
        let got = (&mut self.inp).take(u64::from(stored_len)).read_to_end(&mut self.stored)?;
        if got < stored_len as usize {
            return Err(Error::Truncated { offset: start, what: "inside a frame" });
        }
        self.offset += 16 + u64::from(stored_len);
        if frame_crc(&head[..12], &self.stored) != crc {
            return Err(Error::Checksum { offset: start });
        }
        let raw: &[u8] = match codec {
            CODEC_RAW => {
                if raw_len != stored_len {
                    return Err(Error::Corrupt {
                        offset: start,
                        what: String::from("raw frame with two lengths"),
                    });
                }
                &self.stored
            }
            CODEC_ZSTD => {
                self.raw.clear();
                self.raw.reserve(raw_len as usize);
                let n = self
                    .decompressor
                    .decompress_to_buffer(&self.stored[..], &mut self.raw)
                    .map_err(|e| Error::Corrupt { offset: start, what: format!("zstd: {e}") })?;
                if n != raw_len as usize {
                    return Err(Error::Corrupt {
                        offset: start,
                        what: format!("decompressed to {n} bytes, expected {raw_len}"),
                    });
                }
                &self.raw
            }
            c => return Err(Error::Corrupt { offset: start, what: format!("unknown codec {c}") }),
        };
        self.decoded += 16 + raw.len() as u64;
        let mut c = Cursor::new(raw);
        match kind {
            k if k == FrameKind::Chunk as u8 => {
                let thread = c.u64("thread").map_err(|e| corrupt(start, e))?;
                let round = c.u64("round").map_err(|e| corrupt(start, e))?;
                let body = &raw[c.position()..];
                let inline_times = self.version == 1;
                Ok(Some(RawFrame::Chunk(RawChunk {
                    offset: start,
                    thread,
                    round,
                    body,
                    inline_times,
                })))
            }
            k if k == FrameKind::Trailer as u8 => {
                let t = Trailer::decode(&mut c).map_err(|e| corrupt(start, e))?;
                self.finished = true;
                let mut probe = [0u8; 1];
                if read_full(&mut self.inp, &mut probe)? != 0 {
                    return Err(Error::Corrupt {
                        offset: self.offset,
                        what: String::from("data after the trailer"),
                    });
                }
                Ok(Some(RawFrame::Trailer(t)))
            }
            k => Err(Error::Corrupt { offset: start, what: format!("unknown frame kind {k}") }),
        }
    }
}

pub(crate) fn corrupt(offset: u64, e: DecodeError) -> Error {
    let what = match e {
        DecodeError::Short(what) => format!("{what} runs past the end of the frame"),
        DecodeError::Invalid(what) => what,
    };
    Error::Corrupt { offset, what }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
