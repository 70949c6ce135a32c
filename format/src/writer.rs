//! The streaming writer: header first, then one frame per chunk, then the trailer.

use std::io::{self, Write};

use crate::codec::Out;
use crate::codec::Sink;
use crate::event::Event;
use crate::header::{Metadata, Trailer};
use crate::record::{self, EncodeState, Planes, Record, RecordKind, TimeSink};
use crate::{
    frame_crc, metadata_crc, FrameKind, CODEC_RAW, CODEC_ZSTD, MAGIC, MAX_FRAME_LEN, MAX_META_LEN,
    VERSION,
};

/// zstd level 1: on allocation-churn streams it is within a few percent of
/// level 3's ratio at about twice the speed (see `docs/PERFORMANCE.md`).
const ZSTD_LEVEL: i32 = 1;

/// Room kept past the end of a chunk's bytes for [`ChunkEncoder::event`]
/// to write one record into (at most 76 bytes).
const ROOM: usize = 96;

/// A growing buffer written through room kept past its end.
#[derive(Debug, Default)]
struct Buf {
    /// The bytes are `bytes[..len]`; the buffer keeps at least [`ROOM`]
    /// bytes after them.
    bytes: Vec<u8>,
    len: usize,
}

impl Buf {
    fn clear(&mut self) {
        self.len = 0;
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    #[inline(always)]
    fn room(&mut self) -> Out<'_> {
        if self.bytes.len() < self.len + ROOM {
            self.grow();
        }
        Out { room: &mut self.bytes[self.len..self.len + ROOM], n: 0 }
    }

    #[cold]
    fn grow(&mut self) {
        let want = (self.len + ROOM).max(self.bytes.len() * 2).max(4096);
        self.bytes.resize(want, 0);
    }

    /// The buffer as a `Vec` holding exactly the bytes, for an encoder that
    /// pushes; [`Buf::put_back`] takes it back.
    fn take(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.bytes);
        v.truncate(self.len);
        v
    }

    fn put_back(&mut self, v: Vec<u8>) {
        self.len = v.len();
        self.bytes = v;
    }
}

/// The timestamps' planes of one record, written into room as [`Out`]s.
struct OutPlanes<'a> {
    low: Out<'a>,
    rest: Out<'a>,
}

impl TimeSink for OutPlanes<'_> {
    #[inline(always)]
    fn time(&mut self, v: u64) {
        self.low.byte(v as u8);
        self.rest.u64(v >> 8);
    }
}

/// Builds the body of one chunk: one thread's records, delta-encoded, and
/// their timestamps apart (docs/FORMAT.md, "Chunks").
///
/// The collector fills one, hands it to [`Writer::write_chunk`], and reuses
/// it for the next, so encoding allocates only while the buffers grow.
#[derive(Debug, Default)]
pub struct ChunkEncoder {
    /// The thread and the round.
    head: Vec<u8>,
    records: Buf,
    /// The timestamps' two planes: low bytes, and the rest.
    low: Buf,
    rest: Buf,
    state: EncodeState,
    count: u64,
    counts: [u64; RecordKind::ALL.len()],
}

impl ChunkEncoder {
    /// An empty encoder; call [`ChunkEncoder::begin`] before pushing.
    pub fn new() -> Self {
        ChunkEncoder::default()
    }

    /// Starts a chunk for `thread`, written in collector round `round`.
    pub fn begin(&mut self, thread: u64, round: u64) {
        self.head.clear();
        self.records.clear();
        self.low.clear();
        self.rest.clear();
        self.state.begin();
        self.count = 0;
        self.counts = [0; RecordKind::ALL.len()];
        crate::codec::put_u64(&mut self.head, thread);
        crate::codec::put_u64(&mut self.head, round);
    }

    /// The chunk's payload: thread, round, the records' length, the
    /// timed records' count, the records, their timestamps' two planes.
    fn payload(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.head);
        crate::codec::put_u64(out, self.records.len as u64);
        crate::codec::put_u64(out, self.low.len as u64);
        out.extend_from_slice(self.records.as_slice());
        out.extend_from_slice(self.low.as_slice());
        out.extend_from_slice(self.rest.as_slice());
    }

    /// Appends one record.
    #[inline]
    pub fn push(&mut self, r: &Record) {
        let (mut records, mut low, mut rest) =
            (self.records.take(), self.low.take(), self.rest.take());
        record::encode(
            r,
            &mut self.state,
            &mut records,
            &mut Planes { low: &mut low, rest: &mut rest },
        );
        self.records.put_back(records);
        self.low.put_back(low);
        self.rest.put_back(rest);
        self.counted(r.kind());
    }

    #[inline]
    fn counted(&mut self, kind: RecordKind) {
        self.count += 1;
        self.counts[kind.index()] += 1;
    }

    /// Appends the record of `e`: the same bytes as [`ChunkEncoder::push`]
    /// of its [`Record`], without building one. The collector encodes every
    /// event it drains this way.
    #[inline]
    pub fn event(&mut self, e: &Event) {
        let mut records = self.records.room();
        let mut times = OutPlanes { low: self.low.room(), rest: self.rest.room() };
        record::put_event(&mut records, &mut times, &mut self.state, e);
        let (nr, nl, nt) = (records.n, times.low.n, times.rest.n);
        self.records.len += nr;
        self.low.len += nl;
        self.rest.len += nt;
        self.counted(e.kind());
    }

    /// Records pushed since [`ChunkEncoder::begin`].
    pub fn records(&self) -> u64 {
        self.count
    }

    /// The chunk's payload so far: thread, round and records.
    #[cfg(test)]
    pub(crate) fn body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.payload(&mut out);
        out
    }

    /// Encoded bytes so far, before compression.
    pub fn encoded_len(&self) -> usize {
        self.head.len() + 20 + self.records.len + self.low.len + self.rest.len
    }
}

/// Writes a session file to any [`Write`], with memory bounded by one chunk.
pub struct Writer<W: Write> {
    out: W,
    compressor: zstd::bulk::Compressor<'static>,
    stored: Vec<u8>,
    /// A chunk's payload, gathered from its encoder's buffers.
    payload: Vec<u8>,
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
    /// Metadata the reader would refuse — a clock rate that is not
    /// [plausible](crate::ClockInfo::plausible), or more than [`MAX_META_LEN`] bytes of it — is an
    /// `InvalidInput` error here rather than an unreadable file later.
    pub fn new(mut out: W, meta: &Metadata) -> io::Result<Self> {
        let tpn = meta.clock.ticks_per_ns;
        if !crate::ClockInfo::plausible(tpn) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("clock calibration {tpn:e} ticks/ns is not a rate a clock can have"),
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
        head.extend_from_slice(&metadata_crc(VERSION, &body).to_le_bytes());
        head.extend_from_slice(&body);
        out.write_all(&head)?;
        Ok(Writer {
            out,
            compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL)?,
            stored: Vec::new(),
            payload: Vec::new(),
            chunks: 0,
            counts: [0; RecordKind::ALL.len()],
            bytes: head.len() as u64,
        })
    }

    /// Compresses and writes one chunk. An empty chunk writes nothing.
    pub fn write_chunk(&mut self, chunk: &ChunkEncoder) -> io::Result<()> {
        if chunk.count == 0 {
            return Ok(());
        }
        let mut payload = std::mem::take(&mut self.payload);
        chunk.payload(&mut payload);
        let written = self.write_frame(FrameKind::Chunk, &payload);
        self.payload = payload;
        written?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event pushed writes exactly the bytes of pushing its record,
    /// also between records pushed whole.
    #[test]
    fn direct_pushes_match_their_records() {
        let records = [
            Record::ThreadStart { ts: 1, name: String::from("worker") },
            Record::ThreadEnd { ts: 5 },
            Record::Alloc { ts: 10, addr: 0x7f00_1000, size: 24, align: 8, site: 3, weight: 1 },
            Record::Alloc {
                ts: 12,
                addr: 0x7f00_2000,
                size: 1 << 20,
                align: 16,
                site: 0,
                weight: 9,
            },
            Record::Free { ts: 11, addr: 0x7f00_1000, size: 24 },
            Record::AllocFailed { ts: 13, size: 1 << 40, align: 4096 },
            Record::Realloc {
                ts: 20,
                start_ts: 18,
                old_addr: 0x7f00_2000,
                old_size: 1 << 20,
                new_addr: 0x7e00_0000,
                new_size: 1 << 21,
                align: 16,
                site: 4,
            },
            Record::ScopeEnter { ts: 21, scope: 2 },
            Record::ScopeExit { ts: 9, scope: 2 },
            Record::Pause { ts: 30 },
            Record::Resume { ts: 31 },
            Record::Span { ts: 40, start_ts: 1, scope: 7 },
            Record::Counters { ts: 41, scope: 7, values: vec![1, 1 << 40] },
            Record::Free { ts: 42, addr: 0x7e00_0000, size: 1 << 21 },
        ];
        let mut by_record = ChunkEncoder::new();
        by_record.begin(3, 1);
        for r in &records {
            by_record.push(r);
        }
        let mut direct = ChunkEncoder::new();
        direct.begin(3, 1);
        for r in &records {
            match Event::of(r) {
                Some(e) => direct.event(&e),
                // The records that own data go through `push` on both sides.
                None => direct.push(r),
            }
        }
        assert_eq!(direct.body(), by_record.body());
        assert_eq!(direct.counts, by_record.counts);
        assert_eq!(direct.records(), records.len() as u64);
    }
}
