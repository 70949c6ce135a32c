//! A session written through pulse-format's writer from records made in a
//! test: its definitions in a chunk of their own, then thread 1's events.

use pulse_analysis::format::{
    AllocMode, ChunkEncoder, ClockInfo, Metadata, Record, Trailer, Writer,
};

/// The file of a session of `program` (the monotonic clock, every
/// allocation tracked): `defs`, then `events` on thread 1, then a trailer.
pub(crate) fn session(program: &str, defs: &[Record], events: &[Record]) -> Vec<u8> {
    let meta = Metadata {
        program: String::from(program),
        clock: ClockInfo::monotonic(),
        alloc_mode: AllocMode::Full,
        ..Metadata::default()
    };
    let mut w = Writer::new(Vec::new(), &meta).unwrap();
    let mut enc = ChunkEncoder::new();
    enc.begin(0, 0);
    for r in defs {
        enc.push(r);
    }
    w.write_chunk(&enc).unwrap();
    enc.begin(1, 0);
    for r in events {
        enc.push(r);
    }
    w.write_chunk(&enc).unwrap();
    w.finish(Trailer::default()).unwrap()
}

/// A scope definition for each of `names`, with ids from 0 in order.
#[allow(dead_code)] // Not every test that writes sessions defines scopes.
pub(crate) fn scope_defs(names: &[&str]) -> Vec<Record> {
    names
        .iter()
        .enumerate()
        .map(|(j, name)| Record::ScopeDef {
            scope: j as u32,
            name: String::from(*name),
            category: String::new(),
            description: String::new(),
            priority: 0,
        })
        .collect()
}
