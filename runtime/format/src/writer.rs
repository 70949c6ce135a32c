//! The streaming writer: header first, then one frame per chunk, then the trailer.

use std::io::{self, Write};

use crate::header::{Metadata, Trailer};
use crate::record::{self, Deltas, Record, RecordKind};
use crate::{
    frame_crc, FrameKind, CODEC_RAW, CODEC_ZSTD, MAGIC, MAX_FRAME_LEN, MAX_META_LEN, VERSION,
};

/// zstd level 1: on allocation-churn streams it is within a few percent of
/// level 3's ratio at about twice the speed (see `docs/PERFORMANCE.md`).
const ZSTD_LEVEL: i32 = 1;

/// Builds the body of one chunk: one thread's records, delta-encoded.
///
/// The collector fills one, hands it to [`Writer::write_chunk`], and reuses
/// it for the next, so encoding allocates only while the buffer grows.
#[derive(Debug, Default)]
pub struct ChunkEncoder {
    body: Vec<u8>,
    deltas: Deltas,
    records: u64,
    counts: [u64; RecordKind::ALL.len()],
}

impl ChunkEncoder {
    /// An empty encoder; call [`ChunkEncoder::begin`] before pushing.
    pub fn new() -> Self {
        ChunkEncoder::default()
    }

    /// Starts a chunk for `thread`, written in collector round `round`.
    pub fn begin(&mut self, thread: u64, round: u64) {
        self.body.clear();
        self.deltas = Deltas::default();
        self.records = 0;
        self.counts = [0; RecordKind::ALL.len()];
        crate::codec::put_u64(&mut self.body, thread);
        crate::codec::put_u64(&mut self.body, round);
    }

    /// Appends one record.
    #[inline]
    pub fn push(&mut self, r: &Record) {
        record::encode(r, &mut self.deltas, &mut self.body);
        self.records += 1;
        self.counts[r.kind().index()] += 1;
    }

    /// Records pushed since [`ChunkEncoder::begin`].
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The chunk's payload so far: thread, round and records.
    #[cfg(test)]
    pub(crate) fn body(&self) -> &[u8] {
        &self.body
    }

    /// Encoded bytes so far, before compression.
    pub fn encoded_len(&self) -> usize {
        self.body.len()
    }
}

/// Writes a session file to any [`Write`], with memory bounded by one chunk.
pub struct Writer<W: Write> {
    out: W,
    compressor: zstd::bulk::Compressor<'static>,
    stored: Vec<u8>,
    chunks: u64,
    counts: [u64; RecordKind::ALL.len()],
    bytes: u64,
}

impl<W: Write> std::fmt::Debug for Writer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("chunks", &self.chunks)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Writer<W> {
    /// Writes the magic, version and metadata.
    ///
    /// Metadata the reader would refuse — a clock rate that is not a
    /// positive number, or more than [`MAX_META_LEN`] bytes of it — is an
    /// `InvalidInput` error here rather than an unreadable file later.
    pub fn new(mut out: W, meta: &Metadata) -> io::Result<Self> {
        let tpn = meta.clock.ticks_per_ns;
        if !(tpn.is_finite() && tpn > 0.0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("clock calibration {tpn} ticks/ns is not a positive number"),
            ));
        }
        let mut body = Vec::new();
        meta.encode(&mut body);
        if body.len() > MAX_META_LEN as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "session metadata larger than the format allows",
            ));
        }
        let mut head = Vec::with_capacity(20 + body.len());
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&VERSION.to_le_bytes());
        head.extend_from_slice(&0u16.to_le_bytes());
        head.extend_from_slice(&(body.len() as u32).to_le_bytes());
        head.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        head.extend_from_slice(&body);
        out.write_all(&head)?;
        Ok(Writer {
            out,
            compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL)?,
            stored: Vec::new(),
            chunks: 0,
            counts: [0; RecordKind::ALL.len()],
            bytes: head.len() as u64,
        })
    }

    /// Compresses and writes one chunk. An empty chunk writes nothing.
    pub fn write_chunk(&mut self, chunk: &ChunkEncoder) -> io::Result<()> {
        if chunk.records == 0 {
            return Ok(());
        }
        self.write_frame(FrameKind::Chunk, &chunk.body)?;
        self.chunks += 1;
        for (total, n) in self.counts.iter_mut().zip(chunk.counts) {
            *total += n;
        }
        Ok(())
    }

    /// Writes the trailer, filling in the chunk and record counts, and
    /// returns the underlying writer, flushed.
    pub fn finish(mut self, mut trailer: Trailer) -> io::Result<W> {
        trailer.chunks = self.chunks;
        trailer.record_counts = RecordKind::ALL
            .iter()
            .zip(self.counts)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (*k, n))
            .collect();
        let mut body = Vec::new();
        trailer.encode(&mut body);
        self.write_frame(FrameKind::Trailer, &body)?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Records written so far, all kinds together.
    pub fn records_written(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The underlying writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    fn write_frame(&mut self, kind: FrameKind, raw: &[u8]) -> io::Result<()> {
        if raw.len() > MAX_FRAME_LEN as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame larger than the format allows",
            ));
        }
        self.stored.clear();
        self.stored.reserve(zstd::zstd_safe::compress_bound(raw.len()));
        let n = self.compressor.compress_to_buffer(raw, &mut self.stored)?;
        let (codec, payload) =
            if n < raw.len() { (CODEC_ZSTD, &self.stored[..]) } else { (CODEC_RAW, raw) };
        let mut head = [0u8; 16];
        head[0] = kind as u8;
        head[1] = codec;
        head[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        head[8..12].copy_from_slice(&(raw.len() as u32).to_le_bytes());
        let crc = frame_crc(&head[..12], payload);
        head[12..16].copy_from_slice(&crc.to_le_bytes());
        self.out.write_all(&head)?;
        self.out.write_all(payload)?;
        self.bytes += 16 + payload.len() as u64;
        Ok(())
    }
}
