//! Loading: a session file read and replayed into a [`Profile`].
//!
//! `replay` reads the chunks and merges the threads' events in timestamp
//! order; `accumulate` is what the replay feeds, the state that becomes
//! the profile, `live` its live set and `deaths` its frees' lifetimes;
//! `merge` joins sessions into one file.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use pulse_format::Reader;

use crate::error::Error;
use crate::model::profile::Profile;

pub(crate) mod accumulate;
pub(crate) mod cache;
pub(crate) mod compact;
pub(crate) mod deaths;
pub(crate) mod live;
pub(crate) mod merge;
pub(crate) mod replay;

use accumulate::State;

/// How a session is read.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Only these threads, by id (`3` or `#3`) or name (`worker-0`; every
    /// thread of that name). Empty: all of them. The profile then holds
    /// their scopes and the blocks they allocated, wherever those were
    /// freed; a block of theirs reallocated on another thread leaves their
    /// view there, as if freed.
    pub threads: Vec<String>,
    /// Threads the replay may use: 1 replays on the caller's thread alone;
    /// 2 or more also feeds the profile's state on a second thread (the
    /// replay uses no more than two). 0, the default: as many as the
    /// process may run at once.
    pub jobs: usize,
}

impl LoadOptions {
    /// Every thread.
    pub fn new() -> Self {
        LoadOptions::default()
    }

    /// Only the threads `wanted` names (ids or names).
    pub fn threads(mut self, wanted: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.threads = wanted.into_iter().map(Into::into).collect();
        self
    }

    /// Replays on at most `jobs` threads (see [`LoadOptions::jobs`]).
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs;
        self
    }

    /// The threads the replay will use: `jobs`, or where it is 0 as many
    /// as the process may run at once.
    fn threads_to_use(&self) -> usize {
        match self.jobs {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// Opens the session file at `path`.
pub(crate) fn open(path: &Path) -> Result<File, Error> {
    if path.is_dir() {
        return Err(Error::IsDirectory(path.to_path_buf()));
    }
    File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

/// Whether a running program is writing the session file at `path`: the
/// runtime holds an exclusive `flock` on its file while its session runs.
/// Read from `/proc/locks`, which takes no lock on the file: a new session
/// may take it whenever it likes. Reading it takes the kernel's lock of
/// all file locks, though, which waits for an RCU grace period (12 ms
/// here): ask only where the answer matters, of a file without its
/// trailer. False where that cannot be told.
pub fn being_written(path: impl AsRef<Path>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else { return false };
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else { return false };
    // Linux's encoding of a device number (`major:minor`, in hex there).
    let dev = meta.dev();
    let major = (dev >> 8) & 0xfff | (dev >> 32) & !0xfff;
    let minor = dev & 0xff | (dev >> 12) & !0xff;
    let file = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    locks.lines().any(|line| {
        // `1: FLOCK  ADVISORY  WRITE 14726 fe:00:5742951 0 EOF`
        let mut fields = line.split_whitespace().skip(1);
        let kind = fields.next();
        let mode = fields.nth(1);
        let at = fields.nth(1);
        kind == Some("FLOCK") && mode == Some("WRITE") && at == Some(file.as_str())
    })
}

/// A reader that reports how far it got, and hashes what it read where
/// asked (`hash`: the replay cache's check of the file).
pub(crate) struct Counting<'a, R> {
    pub(crate) inner: R,
    pub(crate) read: u64,
    pub(crate) total: u64,
    pub(crate) hash: Option<Box<blake3::Hasher>>,
    pub(crate) progress: &'a mut dyn FnMut(u64, u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(hash) = &mut self.hash {
            hash.update(&buf[..n]);
        }
        self.read += n as u64;
        (self.progress)(self.read, self.total);
        Ok(n)
    }
}

impl Profile {
    /// Reads and replays the session file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Profile, Error> {
        Profile::load_with_progress(path, &mut |_, _| {})
    }

    /// [`Profile::load`], calling `progress(bytes read, file size)` as it
    /// reads (for a progress bar; the library prints nothing).
    pub fn load_with_progress(
        path: impl AsRef<Path>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Profile, Error> {
        Profile::load_with(path, &LoadOptions::default(), progress)
    }

    /// [`Profile::load_with_progress`] with [`LoadOptions`]. Asking for
    /// threads the session does not have is an error that lists those it has.
    pub fn load_with(
        path: impl AsRef<Path>,
        opts: &LoadOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Profile, Error> {
        let path = path.as_ref();
        let file = open(path)?;
        let meta = file.metadata().ok();
        let total = meta.as_ref().map_or(0, |m| m.len());
        // A file still being written is read as far as it went when opened:
        // read to its end it is chased for as long as its program runs.
        // (A pipe, or a file of /proc that says 0, is read to its end.)
        let limit = match meta.is_some_and(|m| m.is_file()) && total > 0 {
            true => total,
            false => u64::MAX,
        };
        let counting = Counting { inner: file.take(limit), read: 0, total, hash: None, progress };
        Profile::replay_file(path, opts, BufReader::with_capacity(1 << 20, counting))
    }

    /// Replays the session read from `input`, the file at `path`: its
    /// errors name the file, and threads asked for that it does not have
    /// are an error.
    pub(crate) fn replay_file(
        path: &Path,
        opts: &LoadOptions,
        input: impl Read,
    ) -> Result<Profile, Error> {
        let profile = Profile::read_with(input, opts).map_err(|source| match source {
            pulse_format::Error::Io(source) => Error::Io { path: path.to_path_buf(), source },
            source => Error::Format { path: path.to_path_buf(), source },
        })?;
        match &profile.selection {
            Some(s) if s.kept.is_empty() => Err(Error::NoSuchThread {
                path: path.to_path_buf(),
                wanted: s.wanted.join(", "),
                threads: s.all.iter().map(|(id, name)| format!("#{id} {name}")).collect(),
            }),
            _ => Ok(profile),
        }
    }

    /// Reads and replays a session from any reader.
    pub fn read(input: impl Read) -> Result<Profile, pulse_format::Error> {
        Profile::read_with(input, &LoadOptions::default())
    }

    /// [`Profile::read`] with [`LoadOptions`]. Threads asked for that the
    /// session does not have are not an error here: the profile's
    /// [`Selection`](crate::Selection) says which matched.
    pub fn read_with(input: impl Read, opts: &LoadOptions) -> Result<Profile, pulse_format::Error> {
        let mut reader = Reader::new(input)?;
        let mut state = State::new(reader.metadata(), opts);
        let ending = replay::replay_jobs(&mut reader, &mut state, opts.threads_to_use())?;
        Ok(state.finish(reader.metadata().clone(), reader.version(), ending))
    }
}
