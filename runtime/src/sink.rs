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
//!
//! A regular file is never written past the process's file size limit
//! (`ulimit -f`, `RLIMIT_FSIZE`): the kernel would answer such a write with
//! `SIGXFSZ`, whose default action kills the program. A round that would
//! cross the limit is refused whole, as a full disk refuses it, so that the
//! file ends at the last round that fit and the program runs on.

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
    /// Where the next byte goes in a regular file (which the size limit
    /// applies to), or `None` for a pipe or a device.
    end: Option<u64>,
}

impl Output {
    pub(crate) fn new(mut file: File) -> Self {
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        let end = if regular { io::Seek::stream_position(&mut file).ok() } else { None };
        Output { file: Some(file), pending: Vec::with_capacity(PIECE), end }
    }

    /// A sink that keeps nothing, for a session without a file.
    pub(crate) fn discard() -> Self {
        Output { file: None, pending: Vec::new(), end: None }
    }

    /// Refuses the pending bytes if they would take a regular file past
    /// the process's file size limit.
    fn within_limit(&self) -> io::Result<()> {
        let Some(end) = self.end else { return Ok(()) };
        let limit = size_limit();
        if end.saturating_add(self.pending.len() as u64) <= limit {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("the file size limit (ulimit -f) of {limit} bytes is reached"),
        ))
    }
}

/// The process's file size limit in bytes (`u64::MAX` for none), read
/// again for each round: the program may change it.
fn size_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: `getrlimit` writes one `rlimit` through the pointer, which is
    // to a live local of that type; it has no other effect.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) };
    if got != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return u64::MAX;
    }
    limit.rlim_cur
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
        // (A session without a file has no `end`: nothing to refuse.)
        if let Err(e) = self.within_limit() {
            self.pending.clear();
            return Err(e);
        }
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
                    if let Some(end) = &mut self.end {
                        *end += n as u64;
                    }
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
