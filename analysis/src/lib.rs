//! Offline analysis of pulse session files.
//!
//! A library first: [`Profile::load`] replays a session file, and each
//! report is a value built from the profile — [`report`], [`info`] — with a
//! `render` method that writes it as text, whole, and `render_width` that
//! fits it to a [`Width`] (what the `pulse` command line prints: 100
//! columns); [`html()`] writes a report as one self-contained HTML page,
//! with the profile's flamegraphs and heap timeline. Every output of one
//! session goes through [`write()`], the dispatch over [`Output`] that the
//! `pulse` command line (a thin layer over these calls) and the fuzz
//! targets share.
//!
//! A session's names (functions, files, scopes, threads, the program and
//! its arguments, metadata) are untrusted text: the text renderers show
//! them through [`printable`], which escapes control characters, and the
//! SVG and folded outputs keep them from breaking their formats.
//!
//! ```no_run
//! let profile = pulse_analysis::Profile::load("run.pulse")?;
//! let report = pulse_analysis::report(&profile, &Default::default());
//! println!("peak live bytes: {}", report.memory.peak_bytes);
//! report.render(&mut std::io::stdout())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod load;
mod model;
mod write;

pub use error::Error;
pub use load::cache::{Cache, CacheUse, ENV_CACHE, ENV_CACHE_DIR};
pub use load::merge::{merge, merge_bytes, MergeSummary};
pub use load::{being_written, LoadOptions};
pub use model::diff::{
    diff, diff_runs, Diff, DiffOptions, ScopeChange, SiteChange, Verdict, FEW_ENTRIES_FLOOR_NS,
    PACE_BAND, PACE_LIMIT, RERUN_NOISE_ALLOCS, RERUN_NOISE_TIME, SAMPLED_TO_TELL, SAMPLING_SIGMAS,
};
pub use model::history::{trend, Trend};
pub use model::info::{info, Info};
pub use model::leaks::{leak_report, leaks, Leak, LeakReport};
pub use model::profile::{
    Anomalies, Growth, MemoryTotals, Profile, ScopeInfo, ScopeMemory, Selection, SiteStats,
    ThreadFlow, ThreadInfo, MAX_SCOPE_NAME,
};
pub use model::stacks::FoldedKind;
pub use pulse_format as format;
pub use write::chrome::chrome;
pub use write::dhat::dhat;
pub use write::fit::{shorten, wrap, Shorten, Width, DEFAULT_WIDTH};
pub use write::flamegraph::flamegraph;
pub use write::folded::{folded, FOLDED_SEMICOLON};
pub use write::html::{html, HTML_ROWS, MAX_HTML_BYTES};
pub use write::json::write_json;
pub use write::pprof::{pprof, proto as pprof_proto};
pub use write::{write, Form, Outcome, Output, Source};

/// For the replay bench's breakdown of where the time goes; not an API.
#[doc(hidden)]
pub mod bench {
    /// The replay — read, decode, merge in timestamp order — into a
    /// visitor that only counts: `Profile::load` without the profile.
    pub fn merge_only(input: impl std::io::Read) -> Result<u64, pulse_format::Error> {
        crate::load::replay::merge_only(input)
    }
}
pub use model::recommend::{recommend, Category, RecommendOptions, Recommendation, Severity};
pub use model::report::{
    report, CounterRow, Counters, Omitted, Overhead, Report, ReportOptions, ScopeRow, Sections,
    SiteRow, SortBy, TreeRow, DEFAULT_TOP,
};
pub use model::sites::{
    Frame, FrameKind, Site, Symbols, FRAME_COST, MAX_INLINED_FRAMES, MAX_STACK_FRAMES,
    PULSE_SOURCES_KEY, STACK_DEPTH_KEY, STACK_TEXT_BASE, STACK_TEXT_PER_BYTE,
};
pub use model::timeline::{Timeline, TimelineSite, POINTS, TOP_SITES};
pub use pulse_format::{CallNode, CallTree, ScopeTime};
pub use write::text::{json_printable, printable};
pub use write::timeline_svg::timeline_svg;
pub use write::units::{Bytes, Count, Nanos};
