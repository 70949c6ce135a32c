//! The replay cache: a session's profile kept after its first replay, so
//! that later commands on the same session read it back instead of
//! replaying the file again.
//!
//! One entry per session file and thread selection, in a directory of its
//! own (see [`Cache::from_env`]). An entry is used only when it was written
//! by this very analyzer (its version and executable) for a session of the
//! same length, modification time and BLAKE3 hash of every byte: the file
//! is hashed again on every use, so that an entry can never stand for a
//! file that changed since, by accident or by design.
//!
//! The directory and its entries are the user's alone (0700, 0600): an
//! entry holds what the session does (the program's command line among
//! it). Pruning removes only files named and shaped as entries. Anything wrong with an entry (missing, foreign,
//! damaged, stale) means a replay, never an error; failing to write one
//! is not an error either.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::Error;
use crate::load::{Counting, LoadOptions};
use crate::model::profile::Profile;

/// What starts an entry; the digit changes with the profile's layout (3:
/// a site's shrinking reallocations; 4: where blocks were grown, by the
/// site that made them), so an older entry is never read as a newer one.
const MAGIC: &[u8; 8] = b"PLSPROF5";

/// Entries kept; past this, the least recently used go.
const MAX_ENTRIES: usize = 64;

/// Bytes of entries kept; past this, the least recently used go.
const MAX_BYTES: u64 = 1 << 30;

/// An entry's name: this many hexadecimal digits of its key's hash, then
/// `.` and [`EXTENSION`].
const NAME_DIGITS: usize = 16;

/// An entry's extension.
const EXTENSION: &str = "profile";

/// The environment variable that names the cache's directory.
pub const ENV_CACHE_DIR: &str = "PULSE_CACHE_DIR";

/// The environment variable that turns the cache off (`off`, `0`, `false`
/// or `no`, in any case).
pub const ENV_CACHE: &str = "PULSE_CACHE";

/// Where replayed profiles are kept between commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    dir: PathBuf,
}

/// What loading through a cache did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// The profile came from the cache.
    Hit,
    /// The session was replayed and its profile stored.
    Stored,
    /// The session was replayed; its profile could not be stored (the
    /// directory is not writable, or the file changed while it was read).
    NotStored,
}

/// What an entry says about the session it was made from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Stamp {
    /// The analyzer that wrote it: its version and its executable.
    build: String,
    /// The session file, by its canonical name.
    path: String,
    /// The threads asked for.
    threads: Vec<String>,
    /// The file's length, modification time and BLAKE3 hash.
    len: u64,
    modified_ns: u128,
    hash: [u8; 32],
}

impl Cache {
    /// A cache in `dir`, created on first store.
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    /// The cache the environment asks for: none with `PULSE_CACHE=off`
    /// (or `0`, `false`, `no`); else in `PULSE_CACHE_DIR`,
    /// `$XDG_CACHE_HOME/pulse` (an absolute one: the XDG specification
    /// says to ignore a relative one) or `$HOME/.cache/pulse`, the first
    /// that is set.
    pub fn from_env() -> Option<Cache> {
        let off = |v: &std::ffi::OsStr| {
            ["off", "0", "false", "no"].iter().any(|o| v.eq_ignore_ascii_case(o))
        };
        if std::env::var_os(ENV_CACHE).is_some_and(|v| off(&v)) {
            return None;
        }
        let set = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let dir = set(ENV_CACHE_DIR)
            .or_else(|| set("XDG_CACHE_HOME").filter(|d| d.is_absolute()).map(|d| d.join("pulse")))
            .or_else(|| set("HOME").map(|d| d.join(".cache").join("pulse")))?;
        Some(Cache::new(dir))
    }

    /// The cache's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry of `path` read with `opts`.
    fn entry(&self, path: &Path, opts: &LoadOptions) -> PathBuf {
        let mut h = blake3::Hasher::new();
        h.update(absolute(path).as_os_str().as_encoded_bytes());
        for t in &opts.threads {
            h.update(b"\0");
            h.update(t.as_bytes());
        }
        let name = &h.finalize().to_hex()[..NAME_DIGITS];
        self.dir.join(format!("{name}.{EXTENSION}"))
    }
}

/// The file's one name, however it was spelled (relative, `./`, through
/// links), so that each spelling finds the same entry.
fn absolute(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// This analyzer: its version and its executable's length and modification
/// time, so that a rebuilt analyzer never reads what another build wrote.
fn build() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let m = fs::metadata(exe).ok()?;
    Some(format!("{} {} {}", env!("CARGO_PKG_VERSION"), m.len(), nanos(m.modified().ok()?)))
}

fn nanos(t: SystemTime) -> u128 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

impl Profile {
    /// [`Profile::load_with`] through `cache`: the profile stored by an
    /// earlier load of the same, unchanged file with the same options, or
    /// else a replay, whose profile is then stored. The file is read whole
    /// either way (hashed, or replayed).
    pub fn load_cached(
        path: impl AsRef<Path>,
        opts: &LoadOptions,
        cache: &Cache,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(Profile, CacheUse), Error> {
        let path = path.as_ref();
        let Some(build) = build() else {
            return Ok((Profile::load_with(path, opts, progress)?, CacheUse::NotStored));
        };
        let io_error = |source| Error::Io { path: path.to_path_buf(), source };
        let file = super::open(path)?;
        let before = file.metadata().map_err(io_error)?;
        let stamp = Stamp {
            build,
            path: absolute(path).to_string_lossy().into_owned(),
            threads: opts.threads.clone(),
            len: before.len(),
            modified_ns: before.modified().map_or(0, nanos),
            hash: [0; 32],
        };
        let entry = cache.entry(path, opts);
        // A file is read as far as it went when opened (see
        // `Profile::load_with`); a pipe, or a file of /proc that says 0, to
        // its end.
        let limit = if before.is_file() && stamp.len > 0 { stamp.len } else { u64::MAX };
        let mut reading = Counting {
            inner: file.take(limit),
            read: 0,
            total: stamp.len,
            hash: Some(Box::default()),
            progress,
        };
        if let Some((stored, payload)) = read_entry(&entry) {
            if stored == (Stamp { hash: stored.hash, ..stamp.clone() }) {
                io::copy(&mut reading, &mut io::sink()).map_err(io_error)?;
                if reading.hash.as_ref().map(|h| *h.finalize().as_bytes()) == Some(stored.hash) {
                    let decoded = postcard::from_bytes::<Profile>(&payload).ok();
                    if let Some(profile) = decoded.filter(consistent) {
                        // Recently used: the last to be pruned.
                        let _ = File::options()
                            .append(true)
                            .open(&entry)
                            .and_then(|f| f.set_modified(SystemTime::now()));
                        return Ok((profile, CacheUse::Hit));
                    }
                }
                // Stale or damaged: replayed from the start.
                reading.inner = super::open(path)?.take(limit);
                (reading.hash, reading.read) = (Some(Box::default()), 0);
            }
        }
        let mut buffered = BufReader::with_capacity(1 << 20, reading);
        let profile = Profile::replay_file(path, opts, &mut buffered)?;
        let mut reading = buffered.into_inner();
        // What the replay left unread (past the trailer) is hashed too.
        io::copy(&mut reading, &mut io::sink()).map_err(io_error)?;
        let hash = reading.hash.map_or([0; 32], |h| *h.finalize().as_bytes());
        let stamp = Stamp { hash, ..stamp };
        // A session still being written changes under the cache's check:
        // read as it is now, kept nowhere. Only a file without its trailer
        // can be one, and only for such a file is that asked: the answer
        // reads `/proc/locks`, which takes the kernel's lock of every file
        // lock (an RCU grace period, 12 ms here).
        let unchanged = reading.read == stamp.len
            && fs::metadata(path).is_ok_and(|m| {
                m.len() == stamp.len && m.modified().map_or(0, nanos) == stamp.modified_ns
            })
            && !(profile.truncated.is_some() && super::being_written(path));
        let used = match unchanged && write_entry(cache, &entry, &stamp, &profile).is_ok() {
            true => CacheUse::Stored,
            false => CacheUse::NotStored,
        };
        Ok((profile, used))
    }
}

/// Whether a profile read back from an entry holds together where the
/// writers index into it (a histogram's buckets, the call tree's links, the
/// timeline's aligned series): an entry whose checksum holds was written by
/// pulse, but one forged to match must still not make a command panic.
fn consistent(p: &Profile) -> bool {
    let nodes = p.call_tree.nodes.len();
    let tree = p
        .call_tree
        .nodes
        .iter()
        .all(|n| n.parent.is_none_or(|i| i < nodes) && n.children.iter().all(|&c| c < nodes));
    let t = &p.timeline;
    let points = t.live_bytes.len();
    let aligned = |v: &Vec<u64>| v.is_empty() || v.len() == points;
    let timeline = aligned(&t.end_bytes)
        && aligned(&t.other_bytes)
        && t.sites.iter().all(|s| aligned(&s.bytes))
        && t.threads.values().all(aligned);
    let sites = p.sites.values().all(|s| s.lifetimes.is_consistent());
    tree && timeline && sites
}

/// An entry's stamp and payload, if it is whole and pulse's: a regular
/// file (a FIFO in its place would block the read) of at most the cache's
/// size.
fn read_entry(entry: &Path) -> Option<(Stamp, Vec<u8>)> {
    let meta = fs::metadata(entry).ok()?;
    if !meta.is_file() || meta.len() > MAX_BYTES {
        return None;
    }
    let mut bytes = Vec::new();
    File::open(entry).ok()?.take(MAX_BYTES).read_to_end(&mut bytes).ok()?;
    let rest = bytes.strip_prefix(MAGIC)?;
    let (len, rest) = split_u32(rest)?;
    let (stamp, rest) = rest.split_at_checked(len as usize)?;
    let stamp: Stamp = postcard::from_bytes(stamp).ok()?;
    let (crc, payload) = split_u32(rest)?;
    (crc32fast::hash(payload) == crc).then(|| (stamp, payload.to_vec()))
}

fn split_u32(b: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = b.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*head), rest))
}

/// Writes an entry whole or not at all (a file of its own, renamed into
/// place), then prunes the cache.
fn write_entry(cache: &Cache, entry: &Path, stamp: &Stamp, profile: &Profile) -> io::Result<()> {
    let invalid = |e: postcard::Error| io::Error::new(io::ErrorKind::InvalidData, e);
    let payload = postcard::to_stdvec(profile).map_err(invalid)?;
    let stamp = postcard::to_stdvec(stamp).map_err(invalid)?;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(&cache.dir)?;
    let tmp = entry.with_extension(format!("tmp{}", std::process::id()));
    // One left by a process of this id that was killed while writing.
    let _ = fs::remove_file(&tmp);
    let written = (|| {
        let mut f = File::options().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(&(stamp.len() as u32).to_le_bytes())?;
        f.write_all(&stamp)?;
        f.write_all(&crc32fast::hash(&payload).to_le_bytes())?;
        f.write_all(&payload)?;
        f.sync_all()?;
        fs::rename(&tmp, entry)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    prune(&cache.dir);
    Ok(())
}

/// Removes the least recently used entries past [`MAX_ENTRIES`] or
/// [`MAX_BYTES`]. Only entries: a directory named by `PULSE_CACHE_DIR` may
/// hold the user's own files, `.profile` ones among them.
fn prune(dir: &Path) {
    let Ok(read) = fs::read_dir(dir) else { return };
    let mut entries: Vec<(SystemTime, u64, PathBuf)> = read
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            // An earlier version's entry can never be used: gone, rather
            // than kept with what it holds until it is the oldest.
            if entry_magic(&path)? != *MAGIC {
                let _ = fs::remove_file(&path);
                return None;
            }
            let m = e.metadata().ok()?;
            Some((m.modified().ok()?, m.len(), path))
        })
        .collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut bytes = 0u64;
    for (i, (_, len, path)) in entries.iter().enumerate() {
        bytes += len;
        if i >= MAX_ENTRIES || bytes > MAX_BYTES {
            let _ = fs::remove_file(path);
        }
    }
}

/// The magic `path` starts with if it is a cache entry: named as
/// [`Cache::entry`] names one, a regular file (not a link), starting with
/// an entry's magic of this version or an earlier one (`PLSPROF` and a
/// digit).
fn entry_magic(path: &Path) -> Option<[u8; 8]> {
    let named = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        n.strip_suffix(EXTENSION).and_then(|stem| stem.strip_suffix('.')).is_some_and(|hex| {
            hex.len() == NAME_DIGITS && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
    });
    let mut magic = [0; 8];
    let entry = named
        && fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
        && File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok()
        && magic.starts_with(&MAGIC[..7])
        && magic[7].is_ascii_digit();
    entry.then_some(magic)
}
