//! pprof: a gzipped `profile.proto`, as Go's pprof, Pyroscope and Parca
//! read it, so fleets of processes profiled with pulse can be aggregated in
//! existing continuous-profiling systems.
//!
//! One profile holds both kinds of sample, with five sample types: the four
//! conventional heap ones (`alloc_objects`, `alloc_space`, `inuse_objects`,
//! `inuse_space`, "in use" meaning live at the end) for each allocation
//! stack, and `time` (nanoseconds of self time) for each scope path of the
//! call tree, whose frames are the scopes. The default sample type is
//! `alloc_space`; `period_type` is `space/bytes` with period 1.

use std::collections::BTreeMap;
use std::io::{self, Write};

use flate2::write::GzEncoder;
use prost::Message;

use crate::model::profile::Profile;

/// `profile.proto`'s messages, the fields pulse writes.
#[allow(missing_docs, unreachable_pub)]
pub mod proto {
    /// A profile.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Profile {
        #[prost(message, repeated, tag = "1")]
        pub sample_type: Vec<ValueType>,
        #[prost(message, repeated, tag = "2")]
        pub sample: Vec<Sample>,
        #[prost(message, repeated, tag = "4")]
        pub location: Vec<Location>,
        #[prost(message, repeated, tag = "5")]
        pub function: Vec<Function>,
        #[prost(string, repeated, tag = "6")]
        pub string_table: Vec<String>,
        #[prost(int64, tag = "9")]
        pub time_nanos: i64,
        #[prost(int64, tag = "10")]
        pub duration_nanos: i64,
        #[prost(message, optional, tag = "11")]
        pub period_type: Option<ValueType>,
        #[prost(int64, tag = "12")]
        pub period: i64,
        #[prost(int64, tag = "14")]
        pub default_sample_type: i64,
    }

    /// A sample type: indices into the string table.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueType {
        #[prost(int64, tag = "1")]
        pub r#type: i64,
        #[prost(int64, tag = "2")]
        pub unit: i64,
    }

    /// One stack and its values, one per sample type.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(uint64, repeated, tag = "1")]
        pub location_id: Vec<u64>,
        #[prost(int64, repeated, tag = "2")]
        pub value: Vec<i64>,
    }

    /// A frame's location.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Location {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(message, repeated, tag = "4")]
        pub line: Vec<Line>,
    }

    /// A source line of a location.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Line {
        #[prost(uint64, tag = "1")]
        pub function_id: u64,
        #[prost(int64, tag = "2")]
        pub line: i64,
    }

    /// A function.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Function {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(int64, tag = "2")]
        pub name: i64,
        #[prost(int64, tag = "3")]
        pub system_name: i64,
        #[prost(int64, tag = "4")]
        pub filename: i64,
    }
}

#[derive(Default)]
struct Builder {
    strings: Vec<String>,
    string_ids: BTreeMap<String, i64>,
    functions: BTreeMap<(String, String), u64>,
    locations: BTreeMap<(u64, i64), u64>,
    profile: proto::Profile,
}

impl Builder {
    fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.string_ids.get(s) {
            return i;
        }
        let i = self.strings.len() as i64;
        self.strings.push(s.to_owned());
        self.string_ids.insert(s.to_owned(), i);
        i
    }

    fn location(&mut self, function: &str, file: &str, line: u32) -> u64 {
        let key = (function.to_owned(), file.to_owned());
        let next = self.functions.len() as u64 + 1;
        let fid = *self.functions.entry(key).or_insert(next);
        if fid == next {
            let (name, filename) = (self.string(function), self.string(file));
            self.profile.function.push(proto::Function {
                id: fid,
                name,
                system_name: name,
                filename,
            });
        }
        let next = self.locations.len() as u64 + 1;
        let lid = *self.locations.entry((fid, i64::from(line))).or_insert(next);
        if lid == next {
            self.profile.location.push(proto::Location {
                id: lid,
                line: vec![proto::Line { function_id: fid, line: i64::from(line) }],
            });
        }
        lid
    }
}

/// Writes `profile` as a gzipped pprof `profile.proto`.
pub fn pprof(profile: &Profile, out: &mut dyn Write) -> io::Result<()> {
    let mut b = Builder::default();
    b.string("");
    let types = [
        ("alloc_objects", "count"),
        ("alloc_space", "bytes"),
        ("inuse_objects", "count"),
        ("inuse_space", "bytes"),
        ("time", "nanoseconds"),
    ];
    for (t, u) in types {
        let vt = proto::ValueType { r#type: b.string(t), unit: b.string(u) };
        b.profile.sample_type.push(vt);
    }
    for (id, s) in &profile.sites {
        let stack = profile.symbols.user_stack(*id);
        let mut ids: Vec<u64> =
            stack.iter().map(|f| b.location(&f.function, &f.file, f.line)).collect();
        if ids.is_empty() {
            ids.push(b.location("(no stack)", "", 0));
        }
        let value = vec![
            s.allocs.saturating_add(s.reallocs) as i64,
            s.bytes as i64,
            s.live_blocks_at_end as i64,
            s.live_bytes_at_end as i64,
            0,
        ];
        b.profile.sample.push(proto::Sample { location_id: ids, value });
    }
    let nodes = &profile.call_tree.nodes;
    // Each scope's location once: a path repeats its ancestors' names, and a
    // name may be long.
    let mut scopes: BTreeMap<u32, u64> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate().skip(1) {
        if n.self_ns == 0 {
            continue;
        }
        // Innermost first, as pprof wants.
        let mut ids = Vec::new();
        let mut at = Some(i);
        while let Some(j) = at.filter(|&j| j != 0) {
            let scope = nodes[j].scope;
            let id = match scopes.get(&scope) {
                Some(&id) => id,
                None => {
                    let id = b.location(&profile.display_name(scope), "", 0);
                    scopes.insert(scope, id);
                    id
                }
            };
            ids.push(id);
            at = nodes[j].parent;
        }
        b.profile
            .sample
            .push(proto::Sample { location_id: ids, value: vec![0, 0, 0, 0, n.self_ns as i64] });
    }
    let period_type = proto::ValueType { r#type: b.string("space"), unit: b.string("bytes") };
    b.profile.period_type = Some(period_type);
    b.profile.period = 1;
    b.profile.default_sample_type = b.string("alloc_space");
    b.profile.time_nanos = profile.meta.start_unix_ns as i64;
    b.profile.duration_nanos = profile.duration_ns as i64;
    b.profile.string_table = std::mem::take(&mut b.strings);
    let mut gz = GzEncoder::new(out, flate2::Compression::default());
    gz.write_all(&b.profile.encode_to_vec())?;
    gz.finish()?;
    Ok(())
}
