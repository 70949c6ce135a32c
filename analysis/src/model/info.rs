//! `pulse info`: what a session file holds, without analysis.

use pulse_format::{Metadata, RecordKind, Trailer};

use crate::model::profile::Profile;

/// The header, metadata and record counts of a session.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Info {
    /// The file's format version.
    pub version: u16,
    /// The session's metadata.
    pub meta: Metadata,
    /// Frames of records.
    pub chunks: u64,
    /// Records by kind, every kind listed.
    pub record_counts: Vec<(RecordKind, u64)>,
    /// The trailer, absent when the file was cut short.
    pub trailer: Option<Trailer>,
    /// The session's length.
    pub duration_ns: u64,
    /// Threads seen.
    pub threads: usize,
    /// Warnings, as in the report.
    pub warnings: Vec<String>,
}

/// The info of `profile`.
pub fn info(profile: &Profile) -> Info {
    Info {
        version: profile.version,
        meta: profile.meta.clone(),
        chunks: profile.chunks,
        record_counts: RecordKind::ALL.iter().map(|k| (*k, profile.count(*k))).collect(),
        trailer: profile.trailer.clone(),
        duration_ns: profile.duration_ns,
        threads: profile.threads.len(),
        warnings: crate::model::report::warnings(profile),
    }
}
