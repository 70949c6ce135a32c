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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::IsDirectory(path) => {
                write!(f, "{}: is a directory, not a session file", path.display())
            }
            Error::Format { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Format { source, .. } => Some(source),
            Error::IsDirectory(_) => None,
        }
    }
}
