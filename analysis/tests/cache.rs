//! The replay cache: a profile read back from the cache gives every output
//! byte for byte as the replay did, and an entry is never used for a file
//! that changed, however little, nor when it is damaged.

#[path = "support/names.rs"]
mod names;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use pulse_analysis::{Cache, CacheUse, LoadOptions, Output, Profile, Source, Width};

/// A directory of its own for each test.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cache-tests").join(test);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn load(path: &Path, opts: &LoadOptions, cache: &Cache) -> (Profile, CacheUse) {
    Profile::load_cached(path, opts, cache, &mut |_, _| {}).unwrap()
}

/// Every output of `profile`, each as its bytes.
fn outputs(profile: &Profile, path: &Path) -> Vec<Vec<u8>> {
    Output::every(Width::Fit(100))
        .iter()
        .map(|o| {
            let mut out = Vec::new();
            pulse_analysis::write(o, profile, Source::File(path), &mut out).unwrap();
            out
        })
        .collect()
}

#[test]
fn a_cached_profile_gives_every_output_as_the_replay_did() {
    let dir = scratch("every-output");
    let cache = Cache::new(dir.join("cache"));
    for variant in [0, 1] {
        let path = dir.join(format!("s{variant}.pulse"));
        fs::write(&path, names::session(names::plain, variant)).unwrap();
        let (replayed, first) = load(&path, &LoadOptions::new(), &cache);
        assert_eq!(first, CacheUse::Stored);
        let (cached, second) = load(&path, &LoadOptions::new(), &cache);
        assert_eq!(second, CacheUse::Hit);
        let (a, b) = (outputs(&replayed, &path), outputs(&cached, &path));
        assert_eq!(a.len(), b.len());
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert!(a == b, "output {i} differs from the cache:\n{}", String::from_utf8_lossy(b));
        }
    }
}

#[test]
fn threads_asked_for_have_their_own_entry() {
    let dir = scratch("threads");
    let cache = Cache::new(dir.join("cache"));
    let path = dir.join("s.pulse");
    fs::write(&path, names::session(names::plain, 0)).unwrap();
    let all = LoadOptions::new();
    let one = LoadOptions::new().threads(["1"]);
    assert_eq!(load(&path, &all, &cache).1, CacheUse::Stored);
    assert_eq!(load(&path, &one, &cache).1, CacheUse::Stored);
    let (p, used) = load(&path, &one, &cache);
    assert_eq!(used, CacheUse::Hit);
    assert!(p.selection.is_some());
    assert_eq!(load(&path, &all, &cache).1, CacheUse::Hit);
}

/// The plain session's names, but the host's.
fn other_host(tag: &str) -> String {
    if tag == "host" {
        "HOST".into()
    } else {
        tag.into()
    }
}

#[test]
fn a_changed_file_is_replayed_even_with_its_length_and_time() {
    let dir = scratch("changed");
    let cache = Cache::new(dir.join("cache"));
    let path = dir.join("s.pulse");
    fs::write(&path, names::session(names::plain, 0)).unwrap();
    let (_, used) = load(&path, &LoadOptions::new(), &cache);
    assert_eq!(used, CacheUse::Stored);
    let modified = fs::metadata(&path).unwrap().modified().unwrap();
    // Another session of the same length (another host name as long), the
    // modification time put back as it was.
    let other = names::session(other_host, 0);
    let before = fs::metadata(&path).unwrap().len();
    assert_eq!(other.len() as u64, before, "the two sessions' lengths");
    fs::write(&path, &other).unwrap();
    File::options().append(true).open(&path).unwrap().set_modified(modified).unwrap();
    let (p, used) = load(&path, &LoadOptions::new(), &cache);
    assert_ne!(used, CacheUse::Hit);
    assert_eq!(p.meta.host, "HOST");
    // Now stored for the new content.
    assert_eq!(load(&path, &LoadOptions::new(), &cache).1, CacheUse::Hit);
}

#[test]
fn a_damaged_or_foreign_entry_means_a_replay() {
    let dir = scratch("damaged");
    let cache = Cache::new(dir.join("cache"));
    let path = dir.join("s.pulse");
    fs::write(&path, names::session(names::plain, 0)).unwrap();
    let (replayed, _) = load(&path, &LoadOptions::new(), &cache);
    let entry = fs::read_dir(cache.dir()).unwrap().next().unwrap().unwrap().path();
    let good = fs::read(&entry).unwrap();
    let damages: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("cut", good[..good.len() / 2].to_vec()),
        ("a byte flipped", {
            let mut b = good.clone();
            let last = b.len() - 1;
            b[last] ^= 0x40;
            b
        }),
        ("foreign", b"not an entry at all".to_vec()),
    ];
    for (what, bytes) in damages {
        fs::write(&entry, &bytes).unwrap();
        let (p, used) = load(&path, &LoadOptions::new(), &cache);
        assert_ne!(used, CacheUse::Hit, "{what}");
        assert_eq!(outputs(&p, &path), outputs(&replayed, &path), "{what}");
        assert_eq!(load(&path, &LoadOptions::new(), &cache).1, CacheUse::Hit, "{what}");
    }
}

#[test]
fn a_file_being_written_is_not_stored() {
    // The file's modification time moves while it is read (a program still
    // writing it): what was replayed is not kept.
    let dir = scratch("growing");
    let cache = Cache::new(dir.join("cache"));
    let path = dir.join("s.pulse");
    fs::write(&path, names::session(names::plain, 0)).unwrap();
    let touch = || {
        let later = SystemTime::now() + Duration::from_secs(5);
        File::options().append(true).open(&path).unwrap().set_modified(later).unwrap();
    };
    let mut touched = false;
    let (_, used) = Profile::load_cached(&path, &LoadOptions::new(), &cache, &mut |_, _| {
        if !touched {
            touched = true;
            touch();
        }
    })
    .unwrap();
    assert_eq!(used, CacheUse::NotStored);
    assert!(fs::read_dir(cache.dir()).map_or(true, |mut d| d.next().is_none()));
}

#[test]
fn a_file_without_its_trailer_is_stored_unless_a_program_holds_it() {
    // Cut inside its last frame: a killed program's file, or one still
    // being written. Locked as a running session's file is, it is kept
    // nowhere; let go, it is a file like any other.
    let dir = scratch("held");
    let cache = Cache::new(dir.join("cache"));
    let path = dir.join("s.pulse");
    let bytes = names::session(names::plain, 0);
    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let mut writer = std::process::Command::new("flock")
        .args(["-x", "-o", path.to_str().unwrap(), "sleep", "30"])
        .spawn()
        .expect("flock(1), of util-linux");
    let t = std::time::Instant::now();
    while !pulse_analysis::being_written(&path) {
        assert!(t.elapsed().as_secs() < 30, "flock never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (p, used) = load(&path, &LoadOptions::new(), &cache);
    assert!(p.truncated.is_some());
    assert_eq!(used, CacheUse::NotStored);
    let _ = writer.kill();
    let _ = writer.wait();
    assert_eq!(load(&path, &LoadOptions::new(), &cache).1, CacheUse::Stored);
    assert_eq!(load(&path, &LoadOptions::new(), &cache).1, CacheUse::Hit);
}

#[test]
fn an_unwritable_cache_only_costs_the_replay() {
    let dir = scratch("unwritable");
    let path = dir.join("s.pulse");
    fs::write(&path, names::session(names::plain, 0)).unwrap();
    // A file where the cache's directory would be.
    fs::write(dir.join("cache"), b"").unwrap();
    let cache = Cache::new(dir.join("cache"));
    let (_, used) = load(&path, &LoadOptions::new(), &cache);
    assert_eq!(used, CacheUse::NotStored);
}

#[test]
fn every_spelling_of_a_path_finds_the_same_entry() {
    let dir = scratch("spellings");
    let cache = Cache::new(dir.join("cache"));
    let path = dir.join("s.pulse");
    fs::write(&path, names::session(names::plain, 0)).unwrap();
    assert_eq!(load(&path, &LoadOptions::new(), &cache).1, CacheUse::Stored);
    let dotted = dir.join(".").join("s.pulse");
    let link = dir.join("link.pulse");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    for spelling in [dotted, link, path.clone()] {
        assert_eq!(load(&spelling, &LoadOptions::new(), &cache).1, CacheUse::Hit, "{spelling:?}");
    }
}

#[test]
fn a_fifo_in_place_of_an_entry_does_not_block() {
    let dir = scratch("fifo");
    let cache = Cache::new(dir.join("cache"));
    let path = dir.join("s.pulse");
    fs::write(&path, names::session(names::plain, 0)).unwrap();
    load(&path, &LoadOptions::new(), &cache);
    let entry = fs::read_dir(cache.dir()).unwrap().next().unwrap().unwrap().path();
    fs::remove_file(&entry).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&entry).status().unwrap();
    assert!(made.success());
    // Nothing writes the FIFO: reading it would wait for ever.
    let (_, used) = load(&path, &LoadOptions::new(), &cache);
    assert_ne!(used, CacheUse::Hit);
}

/// `bytes` with its last four bytes set so that its CRC-32 is `target`:
/// the CRC of a fixed prefix is affine in the bytes that follow, so the
/// four are the solution of 32 linear equations over GF(2).
fn forge_crc32(bytes: &mut [u8], target: u32) {
    let n = bytes.len() - 4;
    let crc_with = |x: u32, bytes: &mut [u8]| {
        bytes[n..].copy_from_slice(&x.to_le_bytes());
        crc32fast::hash(bytes)
    };
    let base = crc_with(0, bytes);
    // Each row: the effect of one bit of the four bytes, and that bit.
    let mut rows: Vec<(u32, u32)> =
        (0..32).map(|i| (crc_with(1 << i, bytes) ^ base, 1 << i)).collect();
    let mut want = target ^ base;
    let mut x = 0;
    for bit in 0..32 {
        let pivot = (bit..32).find(|&r| rows[r].0 >> bit & 1 == 1).expect("an invertible map");
        rows.swap(bit, pivot);
        let (effect, input) = rows[bit];
        for (r, row) in rows.iter_mut().enumerate() {
            if r != bit && row.0 >> bit & 1 == 1 {
                (row.0, row.1) = (row.0 ^ effect, row.1 ^ input);
            }
        }
    }
    for (bit, (_, input)) in rows.iter().enumerate() {
        if want >> bit & 1 == 1 {
            x ^= input;
            want ^= 1 << bit;
        }
    }
    assert_eq!(crc_with(x, bytes), target);
}

#[test]
fn a_file_forged_to_an_entry_s_crc_is_replayed() {
    // Another session of the same length, its last bytes set so that the
    // whole file has the CRC-32 of the first, and its modification time
    // put back: only a cryptographic hash tells the two apart.
    let dir = scratch("forged");
    let cache = Cache::new(dir.join("cache"));
    let path = dir.join("s.pulse");
    let first = names::session(names::plain, 0);
    fs::write(&path, &first).unwrap();
    assert_eq!(load(&path, &LoadOptions::new(), &cache).1, CacheUse::Stored);
    let modified = fs::metadata(&path).unwrap().modified().unwrap();
    let mut forged = names::session(other_host, 0);
    assert_eq!(forged.len(), first.len());
    forge_crc32(&mut forged, crc32fast::hash(&first));
    assert_ne!(forged, first);
    fs::write(&path, &forged).unwrap();
    File::options().append(true).open(&path).unwrap().set_modified(modified).unwrap();
    let read = Profile::load_cached(&path, &LoadOptions::new(), &cache, &mut |_, _| {});
    assert!(!matches!(read, Ok((_, CacheUse::Hit))), "the entry of another file was used");
}

#[test]
fn the_cache_is_private_and_prunes_only_its_entries() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("private");
    let cache = Cache::new(dir.join("cache"));
    // The user's own files in the directory the cache is told to use:
    // one with the extension, one named as an entry is but not one.
    fs::create_dir_all(cache.dir()).unwrap();
    let old = SystemTime::now() - Duration::from_secs(86_400);
    let theirs = ["work.profile", "0123456789abcdef.profile", "notes.txt"];
    for name in theirs {
        let path = cache.dir().join(name);
        fs::write(&path, b"mine").unwrap();
        File::options().append(true).open(&path).unwrap().set_modified(old).unwrap();
    }
    // An entry of an earlier version, which can never be used, holding
    // what its session did: removed at the next store, however recent.
    let earlier = cache.dir().join("fedcba9876543210.profile");
    fs::write(&earlier, b"PLSPROF1 and what the session held").unwrap();
    let first = dir.join("first.pulse");
    fs::write(&first, names::session(names::plain, 0)).unwrap();
    assert_eq!(load(&first, &LoadOptions::new(), &cache).1, CacheUse::Stored);
    assert!(!earlier.exists());
    // More sessions than the cache keeps entries for.
    for i in 0..70 {
        let path = dir.join(format!("s{i}.pulse"));
        fs::write(&path, names::session(names::plain, 0)).unwrap();
        assert_eq!(load(&path, &LoadOptions::new(), &cache).1, CacheUse::Stored);
    }
    for name in theirs {
        assert_eq!(fs::read(cache.dir().join(name)).unwrap(), b"mine", "{name}");
    }
    let entries: Vec<_> = fs::read_dir(cache.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !theirs.iter().any(|t| p.ends_with(t)))
        .collect();
    assert_eq!(entries.len(), 64, "{entries:?}");
    for entry in &entries {
        let mode = fs::metadata(entry).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{entry:?}");
    }
    // A directory the cache makes is its owner's alone.
    let made = Cache::new(dir.join("made").join("cache"));
    load(&dir.join("s0.pulse"), &LoadOptions::new(), &made);
    let mode = fs::metadata(made.dir()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}
