//! Where a command's `-o` output goes: standard output for `-`; else the
//! file, written whole or not at all.
//!
//! A regular file (or a path not there yet) is written as a temporary file
//! beside it and renamed into place once every byte is out: a command that
//! fails half way leaves what was there before, not a part of its output.
//! A path that is one of the sessions being read is refused before anything
//! is written, however it is spelled (a link, another name of the same
//! file). Anything else (`/dev/null`, a pipe) is written as it is.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use same_file::Handle;

/// Who may read a file written here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readers {
    /// As the umask allows, like any file a command creates.
    Usual,
    /// The owner only: a session file, which names the program and its
    /// host, as the runtime writes its sessions.
    Owner,
}

/// An output being written; [`Sink::finish`] puts it in place.
pub(crate) enum Sink {
    Stdout(BufWriter<io::Stdout>),
    /// A file that is not a regular one, written in place.
    Direct(BufWriter<File>),
    /// A temporary file beside `path`, renamed over it when finished.
    Whole {
        file: BufWriter<File>,
        temp: Temporary,
        path: PathBuf,
    },
}

/// A temporary file, removed when dropped unless renamed into place.
pub(crate) struct Temporary(Option<PathBuf>);

impl Temporary {
    /// A new file in `dir` named after `name`, created exclusively (never
    /// through a link, never over another file) with `mode`.
    fn create(dir: &Path, name: &str, mode: u32) -> io::Result<(File, Temporary)> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for attempt in 0u32.. {
            let path =
                dir.join(format!(".{name}.{}-{stamp:x}-{attempt}.pulse-tmp", std::process::id()));
            match File::options().write(true).create_new(true).mode(mode).open(&path) {
                Ok(file) => return Ok((file, Temporary(Some(path)))),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns by its hundredth attempt")
    }

    /// Renames the file to `path`.
    fn persist(mut self, path: &Path) -> io::Result<()> {
        let temp = self.0.take().expect("a temporary file is persisted once");
        std::fs::rename(&temp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temp);
        })
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The output `path` of a command that reads `inputs`: refused if it is
/// one of them.
pub(crate) fn create(path: &Path, inputs: &[&Path], readers: Readers) -> anyhow::Result<Sink> {
    if path.as_os_str() == "-" {
        return Ok(Sink::Stdout(BufWriter::new(io::stdout())));
    }
    let cannot = || format!("cannot write {}", path.display());
    if let Ok(out) = Handle::from_path(path) {
        for input in inputs {
            if Handle::from_path(input).is_ok_and(|h| h == out) {
                bail!(
                    "cannot write {}: it is the session {} being read; give -o another path",
                    path.display(),
                    input.display()
                );
            }
        }
    }
    // Through a link to the file it names, so that the link stays a link.
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    match std::fs::metadata(&target) {
        Ok(m) if !m.is_file() => {
            let file = File::options().write(true).open(&target).with_context(cannot)?;
            return Ok(Sink::Direct(BufWriter::new(file)));
        }
        _ => {}
    }
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mode = match readers {
        Readers::Usual => 0o666,
        Readers::Owner => 0o600,
    };
    let name = target.file_name().map_or_else(Default::default, |n| n.to_string_lossy());
    match Temporary::create(dir, &name, mode) {
        Ok((file, temp)) => {
            Ok(Sink::Whole { file: BufWriter::with_capacity(1 << 16, file), temp, path: target })
        }
        // A file that can be written in a directory that cannot (a
        // system's, another user's): written in place, as asked.
        Err(_) if target.is_file() => {
            let file = File::create(&target).with_context(cannot)?;
            Ok(Sink::Direct(BufWriter::new(file)))
        }
        Err(e) => Err(e).with_context(cannot),
    }
}

impl Sink {
    /// Flushes what is written and puts the file in place. Dropped without
    /// this, a file written whole is removed and the path left as it was.
    pub(crate) fn finish(self) -> anyhow::Result<()> {
        match self {
            Sink::Stdout(mut w) => w.flush()?,
            Sink::Direct(mut w) => w.flush()?,
            Sink::Whole { file, temp, path } => {
                let writing = || format!("writing {}", path.display());
                let file = file.into_inner().map_err(|e| e.into_error()).with_context(writing)?;
                drop(file);
                temp.persist(&path).with_context(writing)?;
            }
        }
        Ok(())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout(w) => w.write(buf),
            Sink::Direct(w) => w.write(buf),
            Sink::Whole { file, .. } => file.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.write_all(buf),
            Sink::Direct(w) => w.write_all(buf),
            Sink::Whole { file, .. } => file.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(w) => w.flush(),
            Sink::Direct(w) => w.flush(),
            Sink::Whole { file, .. } => file.flush(),
        }
    }
}
