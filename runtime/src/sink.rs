//! The session file's byte sink: what the collector encodes in a round is
//! held here and handed to the kernel when the round ends.
//!
//! A user-space buffer that outlives a round is what a `SIGKILL` takes with
//! it: nothing stays here past [`Output::flush`], which the collector calls
//! at the end of every round (and after the header, at start). The bytes go
//! out in pieces of at most [`PIECE`], and each piece written tells the
//! program's threads that the collector is moving
//! ([`pulse_alloc::note_progress`]): a slow disk or pipe is waited for, a
//! write that never returns is not.

use std::fs::File;
use std::io::{self, Write};

/// The most one `write` call hands the kernel.
const PIECE: usize = 64 << 10;

/// The session file, with the bytes of the round being encoded.
pub(crate) struct Output {
    /// None for a session that writes no file (metrics alone): its bytes
    /// are dropped as they come.
    file: Option<File>,
    pending: Vec<u8>,
}

impl Output {
    pub(crate) fn new(file: File) -> Self {
        Output { file: Some(file), pending: Vec::with_capacity(PIECE) }
    }

    /// A sink that keeps nothing, for a session without a file.
    pub(crate) fn discard() -> Self {
        Output { file: None, pending: Vec::new() }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_some() {
            self.pending.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    /// Hands every pending byte to the kernel, a piece at a time. On an
    /// error the pending bytes are dropped: the collector writes nothing
    /// more after its first error.
    fn flush(&mut self) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else { return Ok(()) };
        let mut done = 0;
        while done < self.pending.len() {
            let end = self.pending.len().min(done + PIECE);
            match file.write(&self.pending[done..end]) {
                Ok(0) => {
                    self.pending.clear();
                    return Err(io::ErrorKind::WriteZero.into());
                }
                Ok(n) => {
                    done += n;
                    pulse_alloc::note_progress();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.pending.clear();
                    return Err(e);
                }
            }
        }
        self.pending.clear();
        // A round's worth of capacity is kept; a burst's is given back.
        self.pending.shrink_to(4 * PIECE);
        Ok(())
    }
}
