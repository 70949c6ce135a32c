//! The model: what a session says, as values — the replayed [`Profile`]
//! and what is computed from it (the report, a diff, leaks, information,
//! recommendations, the heap's timeline). Data only: the writers in
//! `write/` turn these into text, JSON, SVG and the export formats.
//!
//! [`Profile`]: profile::Profile

pub(crate) mod diff;
pub(crate) mod history;
pub(crate) mod info;
pub(crate) mod leaks;
pub(crate) mod profile;
pub(crate) mod recommend;
pub(crate) mod report;
pub(crate) mod sites;
pub(crate) mod stacks;
pub(crate) mod timeline;
