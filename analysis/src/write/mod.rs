//! Writers: one module per output, each reading the model (or, for the
//! Chrome trace, the session's events again) and writing one format.

pub(crate) mod export;
pub(crate) mod fit;
pub(crate) mod flamegraph;
pub(crate) mod pprof;
pub(crate) mod report_text;
pub(crate) mod table;
pub(crate) mod text;
pub(crate) mod units;
