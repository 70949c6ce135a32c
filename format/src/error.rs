//! Why a session file could not be read.

use std::fmt;
use std::io;

/// An error from reading a session file. Every variant says what is wrong
/// in one line and, where it helps, what to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The underlying reader failed.
    Io(io::Error),
    /// The file has no bytes at all.
    Empty,
    /// The file does not start with the pulse magic bytes.
    NotASession,
    /// The file is of a format version this reader does not know.
    NewerVersion {
        /// The version the file declares.
        found: u16,
        /// The newest version this reader reads.
        supported: u16,
    },
    /// The file ends in the middle of something.
    Truncated {
        /// Where the incomplete part starts.
        offset: u64,
        /// What was being read.
        what: &'static str,
    },
    /// A checksum does not match: the bytes were changed after writing.
    Checksum {
        /// Where the damaged frame starts.
        offset: u64,
    },
    /// The bytes are present and checksummed but do not decode.
    Corrupt {
        /// Where the damaged frame starts.
        offset: u64,
        /// What is wrong.
        what: String,
    },
}

impl Error {
    /// Whether everything before the error was read whole: the file was cut
    /// short (a crash, a kill) rather than damaged.
    pub fn is_truncation(&self) -> bool {
        matches!(self, Error::Truncated { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Empty => f.write_str("the file is empty: not a pulse session"),
            Error::NotASession => f.write_str("not a pulse session file (it does not start with the pulse magic bytes)"),
            Error::NewerVersion { found, supported } => write!(
                f,
                "session file is format v{found} but this reader reads up to v{supported}; upgrade pulse"
            ),
            Error::Truncated { offset, what } => {
                // `offset` is where the part cut short starts, not the cut.
                match what.starts_with("inside ") {
                    true => write!(f, "the session is truncated {what}, which starts at byte {offset}"),
                    false => write!(f, "the session is truncated ({what}, at byte {offset})"),
                }?;
                f.write_str(": its program was killed, could not write the rest (a full disk, a file size limit), or is still running")
            }
            Error::Checksum { offset } => {
                write!(f, "checksum mismatch in the frame at byte {offset}: the file is corrupt")
            }
            Error::Corrupt { offset, what } => write!(f, "corrupt frame at byte {offset}: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}
