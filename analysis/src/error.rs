//! Why a session could not be analyzed.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// An error from loading or analyzing a session. `Display` gives one line
/// that names the file and the problem.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or read.
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The path names a directory.
    IsDirectory(PathBuf),
    /// The bytes are not a readable session.
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: pulse_format::Error,
    },
    /// No thread of the session matched the ones asked for.
    NoSuchThread {
        /// The file.
        path: PathBuf,
        /// What was asked for.
        wanted: String,
        /// The session's threads, `#id name` each.
        threads: Vec<String>,
    },
    /// Writing an output failed ([`crate::write`]).
    Write(io::Error),
    /// A session given to a merge was recorded in another allocation mode
    /// than an earlier one (or sampled at another interval).
    DifferentModes {
        /// The session.
        path: PathBuf,
        /// Its mode, and the earlier session's, in words.
        modes: (String, String),
    },
    /// No scope of the session has the category asked for.
    NoSuchCategory {
        /// The file.
        path: PathBuf,
        /// What was asked for.
        wanted: String,
        /// The session's categories.
        categories: Vec<String>,
    },
}

/// `path: no KIND matches WANTED; its KINDS are A, B`: what a filter that
/// matches nothing says, naming what would have matched.
fn no_match(
    f: &mut fmt::Formatter<'_>,
    path: &std::path::Path,
    (kind, kinds): (&str, &str),
    wanted: &str,
    have: &[String],
) -> fmt::Result {
    // The names are the session's: shown as text is, so that the message
    // stays one line whatever they hold.
    let wanted = match wanted.is_empty() {
        true => "an empty name".into(),
        false => crate::write::text::printable(wanted),
    };
    if have.is_empty() {
        return write!(f, "{}: no {kind} matches {wanted}; the session has none", path.display());
    }
    let have = crate::write::text::printable(&have.join(", ")).into_owned();
    write!(f, "{}: no {kind} matches {wanted}; its {kinds} are {have}", path.display())
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::IsDirectory(path) => {
                write!(f, "{}: is a directory, not a session file", path.display())
            }
            Error::Format { path, source } => write!(f, "{}: {source}", path.display()),
            Error::NoSuchThread { path, wanted, threads } => {
                no_match(f, path, ("thread", "threads"), wanted, threads)
            }
            Error::NoSuchCategory { path, wanted, categories } => {
                no_match(f, path, ("category", "categories"), wanted, categories)
            }
            Error::DifferentModes { path, modes: (mode, first) } => write!(
                f,
                "{}: recorded in {mode}, an earlier session in {first}: sessions of different allocation modes do not merge (a sampled session's sites are estimates weighed by its interval, a counting one's totals only in its trailer)",
                path.display()
            ),
            Error::Write(source) => write!(f, "{source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Format { source, .. } => Some(source),
            Error::Write(source) => Some(source),
            Error::IsDirectory(_)
            | Error::NoSuchThread { .. }
            | Error::NoSuchCategory { .. }
            | Error::DifferentModes { .. } => None,
        }
    }
}
