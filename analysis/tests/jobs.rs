//! The replay on two threads gives the profile it gives on one: on every
//! seed of the fuzz corpus (real programs' sessions, hand-built ones and
//! their damaged copies), and on a generated session large enough for many
//! batches to pass between the threads, with blocks freed and reallocated
//! across threads and rounds that arrive out of order.

use std::path::Path;

use pulse_analysis::format::{ChunkEncoder, Metadata, Record, Trailer, Writer};
use pulse_analysis::{LoadOptions, Profile};

/// What reading `data` on `jobs` threads gives: the profile, every field
/// of it, or the error's text.
fn read(data: &[u8], jobs: usize, threads: &[&str]) -> Result<serde_json::Value, String> {
    let opts = LoadOptions::new().jobs(jobs).threads(threads.iter().copied());
    let profile = Profile::read_with(data, &opts).map_err(|e| e.to_string())?;
    Ok(serde_json::to_value(&profile).unwrap())
}

#[test]
fn every_seed_of_the_corpus_reads_the_same_on_two_threads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/commands");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let name = path.display();
        assert_eq!(read(&data, 1, &[]), read(&data, 2, &[]), "{name}");
        seeds += 1;
    }
    assert!(seeds > 20, "{seeds} seeds");
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// About 300 000 events on four threads in rounds of a chunk each, the
/// rounds of odd threads written a round late; blocks freed soon, late,
/// never, and on other threads; reallocations in place and moving; scopes.
fn generated() -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), &Metadata::default()).unwrap();
    let mut enc = ChunkEncoder::new();
    enc.begin(0, 0);
    for site in 1..=40u32 {
        enc.push(&Record::SiteDef { site, frames: vec![0x1000 + u64::from(site), 0x9000] });
    }
    enc.push(&Record::ScopeDef {
        scope: 1,
        name: String::from("step"),
        category: String::new(),
        description: String::new(),
        priority: 0,
    });
    w.write_chunk(&enc).unwrap();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    // Live blocks: (address, size), shared by every thread.
    let mut live: Vec<(u64, u64)> = Vec::new();
    let mut next_addr = 0x10_0000u64;
    let mut ts = 1_000u64;
    let mut late: Vec<(u64, u64, Vec<Record>)> = Vec::new();
    for round in 0..60u64 {
        for thread in 1..=4u64 {
            let mut records = Vec::new();
            if round == 0 {
                records.push(Record::ThreadStart { ts, name: format!("worker-{thread}") });
            }
            for _ in 0..1_250 {
                ts += 1 + rng.below(20);
                match rng.below(10) {
                    0..=3 => {
                        let size = 8 << rng.below(6);
                        next_addr += 64 + rng.below(4) * 16;
                        let site = 1 + rng.below(40) as u32;
                        records.push(Record::Alloc {
                            ts,
                            addr: next_addr,
                            size,
                            align: 8,
                            site,
                            weight: 1,
                        });
                        live.push((next_addr, size));
                    }
                    4..=6 if !live.is_empty() => {
                        // Mostly recent blocks, some old ones.
                        let n = live.len() as u64;
                        let i = if rng.below(4) == 0 {
                            rng.below(n)
                        } else {
                            n - 1 - rng.below(n.min(8))
                        };
                        let (addr, size) = live.swap_remove(i as usize);
                        records.push(Record::Free { ts, addr, size });
                    }
                    7 if !live.is_empty() => {
                        let i = rng.below(live.len() as u64) as usize;
                        let (old_addr, old_size) = live[i];
                        let new_size = old_size * 2;
                        let new_addr = if rng.below(2) == 0 {
                            old_addr
                        } else {
                            next_addr += 4096;
                            next_addr
                        };
                        live[i] = (new_addr, new_size);
                        records.push(Record::Realloc {
                            ts: ts + 3,
                            start_ts: ts,
                            old_addr,
                            old_size,
                            new_addr,
                            new_size,
                            align: 8,
                            site: 1 + rng.below(40) as u32,
                        });
                        ts += 3;
                    }
                    8 => records.push(Record::ScopeEnter { ts, scope: 1 }),
                    _ => records.push(Record::ScopeExit { ts, scope: 1 }),
                }
            }
            if thread % 2 == 1 {
                late.push((thread, round + 1, records));
            } else {
                enc.begin(thread, round);
                for r in &records {
                    enc.push(r);
                }
                w.write_chunk(&enc).unwrap();
            }
        }
        for (thread, round, records) in late.drain(..) {
            enc.begin(thread, round);
            for r in &records {
                enc.push(r);
            }
            w.write_chunk(&enc).unwrap();
        }
    }
    w.finish(Trailer { end_ts: ts + 1, ..Trailer::default() }).unwrap()
}

#[test]
fn a_large_session_reads_the_same_on_two_threads() {
    let data = generated();
    let one = Profile::read_with(&data[..], &LoadOptions::new().jobs(1)).unwrap();
    assert!(one.memory.allocs > 100_000, "{} allocations", one.memory.allocs);
    assert!(one.memory.reallocs > 20_000, "{} reallocations", one.memory.reallocs);
    assert_eq!(read(&data, 2, &[]).unwrap(), serde_json::to_value(&one).unwrap());
    // And with some threads left out, where blocks leave the view.
    let some = &["worker-1", "3"];
    assert_eq!(read(&data, 2, some), read(&data, 1, some));
    // Cut short: what was read before the cut, the same either way.
    let cut = &data[..data.len() * 2 / 3];
    assert_eq!(read(cut, 2, &[]), read(cut, 1, &[]));
}
