//! Opening the session file: safe to point anywhere.
//!
//! `PULSE_OUT` comes from the environment, which a program passes on to the
//! programs it runs, and a path can name something other than what its user
//! meant. So the output is opened by rules that never harm what is already
//! there:
//!
//! - `%p` in the path is the process id (as in heaptrack's `-o`), so a
//!   program and the pulse-linked programs it runs write one file each;
//! - a symbolic link at the path is never followed to a file
//!   (`O_NOFOLLOW`): another user's link cannot make a program overwrite
//!   its target. A link to a stream is (`/dev/stdout`, `/dev/fd/3`): it is
//!   opened without creating anything, and refused unless it leads to a
//!   FIFO, a socket or a device;
//! - an existing regular file is replaced only if it is empty or a pulse
//!   session (it starts with the format's magic, or a prefix of it): a
//!   mistyped `PULSE_OUT=Cargo.toml` costs a line on stderr, not the file;
//! - a new file is created with mode 0600: a session holds the program's
//!   command line;
//! - the file is opened without blocking (`O_NONBLOCK`), so a FIFO with no
//!   reader cannot stall the program before `main`: such a FIFO is waited
//!   for a short while ([`READER_WAIT`]), then refused;
//! - while a session writes the file it holds an exclusive `flock` on it:
//!   a second process given the same path (a child that inherited
//!   `PULSE_OUT` without `%p`) finds it taken and runs unprofiled, leaving
//!   the first process's file whole.
//!
//! Special files other than FIFOs (`/dev/null`, `/dev/full`, a terminal)
//! are written as they are.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pulse_format::MAGIC;

/// How long opening a FIFO waits for a reader before giving up.
pub(crate) const READER_WAIT: Duration = Duration::from_secs(1);

/// Why the output was not opened. Each reads as one line after the path.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The path is a symbolic link to a file (or a directory).
    Symlink,
    /// An existing file that is not a pulse session.
    NotASession,
    /// A FIFO that nobody read within [`READER_WAIT`].
    NoReader,
    /// Another process holds the file: it is writing a session there.
    Taken,
    /// Anything the system refused (a missing directory, a permission).
    Io(io::Error),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Symlink => {
                f.write_str("it is a symbolic link to a file, which pulse never follows")
            }
            Refusal::NotASession => f.write_str(
                "it exists and is not a pulse session; pulse replaces only its own files \
                 (remove it, or choose another path)",
            ),
            Refusal::NoReader => {
                write!(f, "it is a FIFO that nothing read within {} s", READER_WAIT.as_secs_f64())
            }
            Refusal::Taken => f.write_str(
                "another process is writing a session there \
                 (put %p in the path for one file per process)",
            ),
            Refusal::Io(e) => write!(f, "{e}"),
        }
    }
}

/// The path with every `%p` replaced by `pid` (and `%%` by `%`).
pub(crate) fn expand(path: &Path, pid: u32) -> PathBuf {
    let bytes = path.as_os_str().as_bytes();
    if !bytes.contains(&b'%') {
        return path.to_path_buf();
    }
    let mut out = Vec::with_capacity(bytes.len() + 8);
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'%', Some(b'p')) => {
                out.extend_from_slice(pid.to_string().as_bytes());
                i += 2;
            }
            (b'%', Some(b'%')) => {
                out.push(b'%');
                i += 2;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

/// Opens `path` for a new session by the rules of this module: the file
/// is empty, locked for this process, and ready to write.
pub(crate) fn open(path: &Path) -> Result<File, Refusal> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Refusal::Io(io::Error::from(io::ErrorKind::InvalidInput)))?;
    let flags =
        libc::O_WRONLY | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    let deadline = Instant::now() + READER_WAIT;
    let mut flags = flags;
    let mut through_link = false;
    let fd = loop {
        // SAFETY: `c` is a NUL-terminated path that outlives the call; the
        // mode argument is read because `O_CREAT` is set.
        let fd = unsafe { libc::open(c.as_ptr(), flags, 0o600 as libc::c_uint) };
        if fd >= 0 {
            break fd;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            // `O_NOFOLLOW` on a link: it may lead to a stream (`/dev/stdout`
            // is a link to the process's descriptor), never to a file.
            // Opened again through it, without creating anything; what it
            // leads to is checked below before a byte is written.
            Some(libc::ELOOP) if !through_link => {
                through_link = true;
                flags = libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC;
            }
            // A FIFO with no reader yet: wait a little for one.
            Some(libc::ENXIO) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Some(libc::ENXIO) => return Err(Refusal::NoReader),
            _ => return Err(Refusal::Io(e)),
        }
    };
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let file = unsafe { File::from_raw_fd(fd) };
    let kind = file.metadata().map_err(Refusal::Io)?.file_type();
    if through_link && (kind.is_file() || kind.is_dir()) {
        return Err(Refusal::Symlink);
    }
    if kind.is_file() {
        // SAFETY: `flock` on a descriptor we own; it does not block (`LOCK_NB`).
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Refusal::Taken
            } else {
                Refusal::Io(e)
            });
        }
        if !holds_a_session_or_nothing(&c, &file)? {
            return Err(Refusal::NotASession);
        }
        file.set_len(0).map_err(Refusal::Io)?;
    }
    // Writes from here on block as usual: the collector, not the program,
    // waits on them.
    set_blocking(&file).map_err(Refusal::Io)?;
    Ok(file)
}

/// Whether the regular file open as `file` (write-only, so it cannot be
/// read through) is empty or starts as a session does. It is read through
/// a second descriptor, checked to be the same file.
fn holds_a_session_or_nothing(path: &CString, file: &File) -> Result<bool, Refusal> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: `path` is NUL-terminated and outlives the call.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Refusal::Io(io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let mut reader = unsafe { File::from_raw_fd(fd) };
    let (a, b) = (file.metadata().map_err(Refusal::Io)?, reader.metadata().map_err(Refusal::Io)?);
    if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
        // Replaced between the two opens: treat it as someone else's.
        return Ok(false);
    }
    let mut head = [0u8; MAGIC.len()];
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Refusal::Io(e)),
        }
    }
    Ok(head[..n] == MAGIC[..n])
}

fn set_blocking(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, reading its flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above, writing them back without `O_NONBLOCK`.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_p_is_the_process_id() {
        assert_eq!(expand(Path::new("run-%p.pulse"), 42), Path::new("run-42.pulse"));
        assert_eq!(expand(Path::new("/t/%p/%p"), 7), Path::new("/t/7/7"));
        assert_eq!(expand(Path::new("100%%-%p"), 7), Path::new("100%-7"));
        assert_eq!(expand(Path::new("a%b%"), 7), Path::new("a%b%"));
        assert_eq!(expand(Path::new("plain.pulse"), 7), Path::new("plain.pulse"));
    }
}
