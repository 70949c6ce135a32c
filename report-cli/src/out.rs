//! Where a command's `-o` output goes: standard output for `-`; else the
//! file, written whole or not at all where that can be done.
//!
//! A path that is one of the sessions being read is refused before
//! anything is written, however it is spelled (a link, another name of the
//! same file): [`refuse_inputs`], by device and inode, which opens nothing
//! (a FIFO opened to compare would wait for a writer).
//!
//! A regular file (or a path not there yet) is written as a temporary file
//! beside it, synced, and renamed into place once every byte is out: a
//! command that fails half way leaves what was there before. The file
//! keeps the mode it had. Written in place instead: what is not a regular
//! file (a pipe, `/dev/null`), a path through `/dev` or `/proc` (as
//! `/dev/stdout` is, which names an open descriptor, not the file behind
//! it), a file in a directory that cannot take the temporary file, and a
//! file the rename cannot replace (a bind mount, another user's file in a
//! sticky directory).
//!
//! An interrupted command (`SIGINT`, `SIGTERM`, `SIGHUP`) removes the
//! temporary file it was writing, then dies of the signal as it would have
//! (see [`Temporary::create`]); one killed outright leaves it, and the next
//! command to write the same output removes it.

use std::fs::{self, File, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

use anyhow::{bail, Context};

/// Who may read a file written here that was not there before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readers {
    /// As the umask allows, like any file a command creates.
    Usual,
    /// The owner only: a session file, which names the program and its
    /// host, as the runtime writes its sessions.
    Owner,
}

/// An output being written; [`Sink::finish`] puts it in place.
pub(crate) struct Sink {
    to: To,
    /// The path as given, for messages.
    shown: PathBuf,
}

enum To {
    Stdout(BufWriter<io::Stdout>),
    /// Written in place.
    Direct(BufWriter<File>),
    /// A temporary file beside `path`, renamed over it when finished.
    Whole {
        file: BufWriter<File>,
        temp: Temporary,
        path: PathBuf,
    },
}

/// Refuses `path` if it is one of `inputs`, before anything is read or
/// written. `what` names the option, for the message.
pub(crate) fn refuse_inputs(path: &Path, inputs: &[&Path], what: &str) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        return Ok(());
    }
    let Ok(out) = fs::metadata(path) else { return Ok(()) };
    for input in inputs {
        if fs::metadata(input).is_ok_and(|m| (m.dev(), m.ino()) == (out.dev(), out.ino())) {
            bail!(
                "cannot write {}: it is the session {} being read; give {what} another path",
                path.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// The output `path` of a command that reads `inputs` ([`refuse_inputs`]
/// first).
pub(crate) fn create(
    path: &Path,
    inputs: &[&Path],
    what: &str,
    readers: Readers,
) -> anyhow::Result<Sink> {
    let shown = path.to_path_buf();
    if path.as_os_str() == "-" {
        return Ok(Sink { to: To::Stdout(BufWriter::new(io::stdout())), shown });
    }
    refuse_inputs(path, inputs, what)?;
    let cannot = || format!("cannot write {}", path.display());
    let in_place = |target: &Path| -> anyhow::Result<Sink> {
        let file = File::create(target).with_context(cannot)?;
        Ok(Sink { to: To::Direct(BufWriter::new(file)), shown: shown.clone() })
    };
    if path.starts_with("/dev") || path.starts_with("/proc") {
        return in_place(path);
    }
    let target = resolve(path);
    let existing = fs::metadata(&target).ok();
    match &existing {
        Some(m) if !m.is_file() => return in_place(&target),
        // One that cannot be written is refused as it was before.
        Some(_) => drop(File::options().write(true).open(&target).with_context(cannot)?),
        None => {}
    }
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mode = match (&existing, readers) {
        (Some(m), _) => m.permissions().mode() & 0o7777,
        (None, Readers::Usual) => 0o666,
        (None, Readers::Owner) => 0o600,
    };
    let name = target.file_name().map_or_else(Default::default, |n| n.to_string_lossy());
    match Temporary::create(dir, &name, mode) {
        Ok((file, temp)) => {
            if existing.is_some() {
                // As it was, whatever the umask makes of a new file's mode.
                fs::set_permissions(temp.path(), Permissions::from_mode(mode))
                    .with_context(cannot)?;
            }
            let file = BufWriter::with_capacity(1 << 16, file);
            Ok(Sink { to: To::Whole { file, temp, path: target }, shown })
        }
        // A file that can be written in a directory that cannot take the
        // temporary file (a system's, another user's).
        Err(_) if existing.is_some() => in_place(&target),
        Err(e) => Err(e).with_context(cannot),
    }
}

/// The file `path` names, through links, so that a link stays a link (one
/// to a file not there yet included).
fn resolve(path: &Path) -> PathBuf {
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        if let Ok(real) = fs::canonicalize(&path) {
            return real;
        }
        let Ok(next) = fs::read_link(&path) else { break };
        path = match path.parent() {
            Some(dir) if next.is_relative() => dir.join(next),
            _ => next,
        };
    }
    path
}

impl Sink {
    /// Flushes what is written and puts the file in place. Dropped without
    /// this, a temporary file is removed and the path left as it was.
    pub(crate) fn finish(self) -> anyhow::Result<()> {
        let writing = || format!("writing {}", self.shown.display());
        match self.to {
            To::Stdout(mut w) => w.flush().with_context(writing)?,
            To::Direct(mut w) => w.flush().with_context(writing)?,
            To::Whole { file, temp, path } => {
                let file = file.into_inner().map_err(|e| e.into_error()).with_context(writing)?;
                // Errors a file system reports only now (NFS, a quota),
                // before the file takes the old one's place.
                file.sync_all().with_context(writing)?;
                drop(file);
                temp.persist(&path).with_context(writing)?;
            }
        }
        Ok(())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.to {
            To::Stdout(w) => w.write(buf),
            To::Direct(w) => w.write(buf),
            To::Whole { file, .. } => file.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.to {
            To::Stdout(w) => w.write_all(buf),
            To::Direct(w) => w.write_all(buf),
            To::Whole { file, .. } => file.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.to {
            To::Stdout(w) => w.flush(),
            To::Direct(w) => w.flush(),
            To::Whole { file, .. } => file.flush(),
        }
    }
}

/// A temporary file, removed when dropped unless put in place, or when a
/// signal interrupts the command ([`watch_signals`]). A process killed
/// outright leaves it (`.NAME.PID-….pulse-tmp`, beside the output), for the
/// next command that writes there to remove ([`sweep`]).
struct Temporary(Option<PathBuf>);

/// The temporary files being written, for the signal thread to remove.
/// Held across a rename, so that an output is either put in place whole or
/// removed, never both half.
static WRITING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn writing() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    WRITING.lock().unwrap_or_else(|e| e.into_inner())
}

/// From the first temporary file on: a thread that waits for the signals
/// that end a command, removes the files being written, and then lets the
/// signal take its usual course (the process dies of it: a shell sees 130
/// for Ctrl-C). Before that, and for commands that write no file, the
/// signals' dispositions are untouched.
fn watch_signals() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // A signal the command was started ignoring (`nohup`, `&` in a
        // script) stays ignored: watching it would end the command.
        let ignored = ignored_signals();
        let wanted: Vec<i32> = [SIGINT, SIGTERM, SIGHUP]
            .into_iter()
            .filter(|&s| ignored & (1u64 << (s - 1)) == 0)
            .collect();
        let Ok(mut signals) = signal_hook::iterator::Signals::new(wanted) else {
            return;
        };
        let watching =
            std::thread::Builder::new().name(String::from("pulse-signals")).spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    let mut files = writing();
                    for path in files.drain(..) {
                        let _ = fs::remove_file(path);
                    }
                    // Dies here, with the lock held: no file is put in place after.
                    let _ = signal_hook::low_level::emulate_default_handler(signal);
                    std::process::exit(128 + signal);
                }
            });
        drop(watching);
    });
}

/// The signals this process ignores, as a mask (bit `n - 1` for signal
/// `n`), read from `/proc/self/status`; none where that cannot be read.
fn ignored_signals() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .unwrap_or(0)
}

/// Removes what earlier commands killed outright left beside `name` in
/// `dir`: temporary files named for it whose process is no longer running
/// and that nothing has written for a minute (a process of another PID
/// namespace sharing the directory is not in this `/proc`, but a live
/// writer's file keeps changing). A file whose process cannot be told (no
/// `/proc`) stays.
fn sweep(dir: &Path, name: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else { continue };
        let Some(rest) = rest.strip_suffix(".pulse-tmp") else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let alone = entry.file_type().is_ok_and(|t| t.is_file());
        let still = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() >= 60));
        let gone = pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists();
        if alone && still && gone {
            let _ = fs::remove_file(entry.path());
        }
    }
}

impl Temporary {
    /// A new file in `dir` named after `name`, created exclusively (never
    /// through a link, never over another file) with `mode`.
    fn create(dir: &Path, name: &str, mode: u32) -> io::Result<(File, Temporary)> {
        sweep(dir, name);
        watch_signals();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for attempt in 0u32.. {
            let path =
                dir.join(format!(".{name}.{}-{stamp:x}-{attempt}.pulse-tmp", std::process::id()));
            let mut files = writing();
            match File::options().write(true).create_new(true).mode(mode).open(&path) {
                Ok(file) => {
                    files.push(path.clone());
                    return Ok((file, Temporary(Some(path))));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns by its hundredth attempt")
    }

    fn path(&self) -> &Path {
        self.0.as_deref().expect("a temporary file not yet put in place")
    }

    /// Puts the file at `path`: renamed there, or where the rename cannot
    /// replace what is there, copied into it.
    fn persist(mut self, path: &Path) -> io::Result<()> {
        let temp = self.0.take().expect("a temporary file is put in place once");
        let mut files = writing();
        files.retain(|p| *p != temp);
        if fs::rename(&temp, path).is_ok() {
            return Ok(());
        }
        let copied = (|| {
            let mut from = File::open(&temp)?;
            let mut to = File::create(path)?;
            io::copy(&mut from, &mut to)?;
            to.sync_all()
        })();
        let _ = fs::remove_file(&temp);
        copied
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            writing().retain(|p| *p != path);
            let _ = fs::remove_file(path);
        }
    }
}
