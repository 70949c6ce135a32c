//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_STATUSES: &str = "\
Exit status:
  0  success
  1  error (unreadable, corrupt or foreign file; unwritable output)
  2  usage error (unknown flag or command)
  3  partial input: the session was truncated; the report covers what was read
  4  a regression beyond the threshold (pulse diff --fail-on-regression only)
  5  leaks found (pulse leaks only)";

/// Reports from pulse session files.
#[derive(Debug, Parser)]
#[command(name = "pulse", version, about, after_help = EXIT_STATUSES)]
pub(crate) struct Cli {
    /// Colour the output: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    pub(crate) color: Color,
    /// Replay the session even if the cache holds its profile, and keep
    /// nothing there (the cache: PULSE_CACHE_DIR, or $XDG_CACHE_HOME/pulse,
    /// or ~/.cache/pulse; PULSE_CACHE=off turns it off; to clear it, remove
    /// the directory).
    #[arg(long, global = true)]
    pub(crate) no_cache: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `--color` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Color {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// The one-screen answer: recommendations, totals, memory, scopes by
    /// self time, leaks and allocation sites.
    #[command(after_help = concat!("Examples:\n  pulse report run.pulse --top 10 --sort total\n  pulse report run.pulse --thread worker-0\n  pulse report run.pulse --html report.html\n\n", "Exit status: 0 ok, 1 error, 2 usage, 3 truncated input"))]
    Report(ReportArgs),
    /// Time and allocation hotspots in depth: scopes with percentiles,
    /// allocation sites, and with --tree the whole call tree.
    #[command(
        after_help = "Example:\n  pulse hotspots run.pulse --by allocs --tree\n\nExit status: 0 ok, 1 error, 2 usage, 3 truncated input"
    )]
    Hotspots(HotspotsArgs),
    /// Blocks live at the end, by site with full stacks: leaks (still
    /// growing when the session ended) told apart from long-lived caches.
    #[command(
        after_help = "Examples:\n  pulse leaks run.pulse --json > leaks.json\n  pulse leaks run.pulse --strict    # in CI: a run too short to tell fails too\n\nExit status: 0 no leak, 1 error, 2 usage, 3 truncated input, 5 leaks found (with --strict: or undecided)"
    )]
    Leaks(LeaksArgs),
    /// Before and after: the speedup, and each scope's and allocation
    /// site's change classified as improvement, regression or noise.
    #[command(
        after_help = "Examples:\n  pulse diff before.pulse after.pulse --threshold 5% --fail-on-regression\n  pulse diff --before b1.pulse b2.pulse b3.pulse --after a1.pulse a2.pulse a3.pulse --fail-on-regression\n\nWith one session a side, a scope's median must move more than 2× (run-to-run noise) to count, and a site of a program that allocates on several threads more than 25 %; with several sessions a side, a change must exceed the runs' measured spread (widened for fewer than five runs a side). Where every scope moved alike on the same work (a whole run at another pace: within 3×, and with several sessions a side no further than their runs moved among themselves), each is judged at that pace. In a sampled session a site's figures are estimates: a change must be in its bytes, beyond 4 standard deviations of their sampling error, and a site one side's sample missed counts as added or removed only where that sample would have missed the other side's bytes there with a chance of e^-12 at most.\n\nExit status: 0 ok, 1 error, 2 usage, 3 truncated input, 4 regression (with --fail-on-regression)"
    )]
    Diff(DiffArgs),
    /// A flamegraph as SVG: by time, allocated bytes, allocation count, or
    /// bytes live at the end.
    #[command(
        after_help = "Example:\n  pulse flamegraph run.pulse --kind alloc-bytes -o alloc.svg\n\nExit status: 0 ok, 1 error, 2 usage, 3 truncated input"
    )]
    Flamegraph(FlamegraphArgs),
    /// The live heap over time as an SVG chart, the peak marked.
    #[command(
        after_help = "Example:\n  pulse timeline run.pulse -o memory.svg\n\nExit status: 0 ok, 1 error, 2 usage, 3 truncated input"
    )]
    Timeline(TimelineArgs),
    /// Folded stacks (inferno, flamegraph.pl), a Chrome trace (Perfetto),
    /// DHAT's JSON (DHAT's viewer), pprof (Pyroscope, Parca) or the report's JSON.
    #[command(
        after_help = "Examples:\n  pulse export run.pulse --format folded --kind alloc-bytes -o - | inferno-flamegraph > alloc.svg\n  pulse export run.pulse --format chrome -o trace.json\n  pulse export run.pulse --format dhat -o dhat-heap.json\n  pulse export run.pulse --format pprof -o heap.pb.gz\n\nExit status: 0 ok, 1 error, 2 usage, 3 truncated input"
    )]
    Export(ExportArgs),
    /// Several sessions of a program merged into one session file.
    #[command(
        after_help = "Example:\n  pulse merge run1.pulse run2.pulse run3.pulse -o all.pulse\n\nExit status: 0 ok, 1 error, 2 usage"
    )]
    Merge {
        /// The sessions (`-` for standard input).
        #[arg(required = true, value_parser = session)]
        files: Vec<PathBuf>,
        /// The merged session; `-` for standard output.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Shell completions for pulse, on stdout.
    #[command(
        after_help = "Example:\n  pulse completions bash > ~/.local/share/bash-completion/completions/pulse"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The header, metadata, clock calibration, counters opened (and why
    /// others were not), and a count of every record kind.
    #[command(
        after_help = "Example:\n  pulse info run.pulse\n\nExit status: 0 ok, 1 error, 2 usage, 3 truncated input"
    )]
    Info(InfoArgs),
}

/// `--thread`: a view of some threads.
#[derive(Debug, Args)]
pub(crate) struct Threads {
    /// Only this thread: its id (`3` or `#3`, as the report lists them) or
    /// its name (every thread of that name). Repeat for several.
    #[arg(long = "thread", value_name = "THREAD")]
    pub(crate) wanted: Vec<String>,
}

impl Threads {
    pub(crate) fn options(&self) -> pulse_analysis::LoadOptions {
        pulse_analysis::LoadOptions::new().threads(self.wanted.iter().cloned())
    }
}

/// `--wide`: whole lines rather than lines that fit the terminal.
#[derive(Debug, Args)]
pub(crate) struct Layout {
    /// Print every line whole: every name in full, every column.
    ///
    /// Without it, lines fit 100 columns (or a narrower terminal): long
    /// names are shortened in the middle with `…`, the columns that do not
    /// fit are left out (a line names them), and long text wraps.
    #[arg(long)]
    pub(crate) wide: bool,
}

impl Layout {
    /// The width text output is fitted to: `columns` unless `--wide`.
    pub(crate) fn width(&self, columns: usize) -> pulse_analysis::Width {
        if self.wide {
            pulse_analysis::Width::Wide
        } else {
            pulse_analysis::Width::Fit(columns)
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The session file (`-` for standard input).
    #[arg(value_parser = session)]
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) threads: Threads,
    /// Rows per table [default: 20, or 200 with --html]; every
    /// recommendation is shown whatever it says.
    #[arg(long, value_name = "TOP", value_parser = parse_top)]
    pub(crate) top: Option<usize>,
    /// The order of the scope table.
    #[arg(long, value_enum, default_value_t = Sort::SelfTime)]
    pub(crate) sort: Sort,
    /// Only the scopes of this category, in the scope table (the call
    /// tree and the recommendations keep every scope).
    #[arg(long)]
    pub(crate) category: Option<String>,
    /// A block freed within this long is short-lived (`10us`, `1ms`, `500ns`).
    #[arg(long, value_name = "DURATION", default_value = "10us", value_parser = parse_duration)]
    pub(crate) short_lived: u64,
    /// Print JSON (every figure of the report; schema: docs/schema/report.schema.json).
    #[arg(long)]
    pub(crate) json: bool,
    /// Write the report as one self-contained HTML page to this file
    /// (`-` for standard output) instead of printing it: sortable,
    /// filterable tables, the flamegraphs and the heap timeline inline;
    /// at most 8 MiB whatever the session.
    #[arg(long, value_name = "PATH", conflicts_with = "json")]
    pub(crate) html: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) layout: Layout,
}

/// `--sort` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Sort {
    /// Self time, most first.
    #[value(name = "self")]
    SelfTime,
    /// Total time, most first.
    Total,
    /// Mean time per entry, most first.
    Mean,
    /// Entries, most first.
    Count,
    /// The operation's priority, highest first.
    Priority,
}

impl ReportArgs {
    pub(crate) fn options(&self) -> pulse_analysis::ReportOptions {
        let mut o = pulse_analysis::ReportOptions::default();
        let rows = if self.html.is_some() {
            pulse_analysis::HTML_ROWS
        } else {
            pulse_analysis::DEFAULT_TOP
        };
        o.top = self.top.unwrap_or(rows);
        o.category = self.category.clone();
        o.recommend.short_lived_ns = self.short_lived;
        o.sort = match self.sort {
            Sort::SelfTime => pulse_analysis::SortBy::SelfTime,
            Sort::Total => pulse_analysis::SortBy::Total,
            Sort::Mean => pulse_analysis::SortBy::Mean,
            Sort::Count => pulse_analysis::SortBy::Count,
            Sort::Priority => pulse_analysis::SortBy::Priority,
        };
        o
    }
}

#[derive(Debug, Args)]
pub(crate) struct HotspotsArgs {
    /// The session file (`-` for standard input).
    #[arg(value_parser = session)]
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) threads: Threads,
    /// Order scopes by total or self time, or sites by allocations, bytes
    /// or their own peak of live bytes.
    #[arg(long, value_enum, default_value_t = By::Self_)]
    pub(crate) by: By,
    /// Show the whole call tree.
    #[arg(long)]
    pub(crate) tree: bool,
    /// A block freed within this long is short-lived (`10us`, `1ms`, `500ns`).
    #[arg(long, value_name = "DURATION", default_value = "10us", value_parser = parse_duration)]
    pub(crate) short_lived: u64,
    /// Rows per table.
    #[arg(long, default_value_t = pulse_analysis::DEFAULT_TOP, value_parser = parse_top)]
    pub(crate) top: usize,
    /// Print JSON (the report's, every figure; schema: docs/schema/hotspots.schema.json).
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) layout: Layout,
}

/// `--by` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum By {
    /// Scopes by total time.
    Time,
    /// Scopes by self time.
    #[value(name = "self")]
    Self_,
    /// Sites by allocations.
    Allocs,
    /// Sites by bytes.
    Bytes,
    /// Sites by their own peak of live bytes.
    Peak,
}

impl HotspotsArgs {
    pub(crate) fn options(&self) -> pulse_analysis::ReportOptions {
        let mut o = pulse_analysis::ReportOptions::hotspots();
        o.top = self.top;
        o.sort = if self.by == By::Time {
            pulse_analysis::SortBy::Total
        } else {
            pulse_analysis::SortBy::SelfTime
        };
        o.recommend.short_lived_ns = self.short_lived;
        o.sites_by_allocs = self.by == By::Allocs;
        o.sites_by_peak = self.by == By::Peak;
        if self.tree {
            o.tree_min_share = 0.0;
        }
        o.sections.tree = self.tree;
        o
    }
}

#[derive(Debug, Args)]
pub(crate) struct LeaksArgs {
    /// The session file (`-` for standard input).
    #[arg(value_parser = session)]
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) threads: Threads,
    /// Sites to list.
    #[arg(long, default_value_t = pulse_analysis::DEFAULT_TOP, value_parser = parse_top)]
    pub(crate) top: usize,
    /// Print JSON (an array of sites; schema: docs/schema/leaks.schema.json).
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) layout: Layout,
    /// Count a site whose blocks were live only near the end of a run too
    /// short to tell a leak from a cache as a leak (exit status 5): for CI.
    #[arg(long)]
    pub(crate) strict: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The session before the change (or give several with --before).
    #[arg(required_unless_present = "before_runs", value_parser = session)]
    pub(crate) before: Option<PathBuf>,
    /// The session after it (or give several with --after).
    #[arg(required_unless_present = "after_runs", value_parser = session)]
    pub(crate) after: Option<PathBuf>,
    /// Sessions of runs before the change: with several a side, the
    /// run-to-run noise is measured rather than assumed, so smaller changes
    /// are caught.
    #[arg(long = "before", value_name = "FILE", num_args = 1.., action = clap::ArgAction::Append, value_parser = session)]
    pub(crate) before_runs: Vec<PathBuf>,
    /// Sessions of runs after it.
    #[arg(long = "after", value_name = "FILE", num_args = 1.., action = clap::ArgAction::Append, value_parser = session)]
    pub(crate) after_runs: Vec<PathBuf>,
    /// The smallest change that counts: `5%` or `0.05`.
    #[arg(long, default_value = "5%", value_parser = parse_share)]
    pub(crate) threshold: f64,
    /// The least share of the session a change must move to count: of its
    /// duration for a scope's total time, of its allocations or bytes for a
    /// site's.
    #[arg(long, default_value = "1%", value_parser = parse_part)]
    pub(crate) min_share: f64,
    /// Exit with status 4 when anything regressed beyond the threshold.
    #[arg(long)]
    pub(crate) fail_on_regression: bool,
    /// Rows per table.
    #[arg(long, default_value_t = pulse_analysis::DEFAULT_TOP, value_parser = parse_top)]
    pub(crate) top: usize,
    /// Print JSON (every scope and site; schema: docs/schema/diff.schema.json).
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) layout: Layout,
}

/// A session's path: `-` is standard input, read as any stream is (a
/// session need not be a file that can be seeked).
fn session(s: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(if s == "-" { "/dev/stdin" } else { s }))
}

/// A count of rows, 1 or more: with none, a table would print as if
/// nothing had been recorded.
fn parse_top(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err(String::from("0 rows would show nothing: give 1 or more")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a count of rows")),
    }
}

/// `10us`, `10µs`, `1.5ms`, `500ns` or `2s` as nanoseconds.
fn parse_duration(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return Err(format!("{s:?} is not a duration like 10us, 1ms or 500ns")),
    };
    let v: f64 = number.parse().map_err(|_| format!("{s:?} is not a duration like 10us"))?;
    let ns = v * scale;
    if !(0.0..=1e15).contains(&ns) {
        return Err(format!("{s} is out of range"));
    }
    Ok(ns.round() as u64)
}

/// `5%` or `0.05` as 0.05, up to 1000 %. A bare number above 1 is refused
/// rather than read as a multiple (`5` is 500 %, most likely meant as 5 %).
fn parse_share(s: &str) -> Result<f64, String> {
    let (v, scale) = match s.strip_suffix('%') {
        Some(p) => (p, 100.0),
        None => (s, 1.0),
    };
    let v: f64 = v.trim().parse().map_err(|_| format!("{s:?} is not a share like 5% or 0.05"))?;
    if scale == 1.0 && v > 1.0 {
        let percent = (v * 1e6).round() / 1e4;
        return Err(format!("{s} would be {percent}%: write {s}% for {s} percent"));
    }
    if !(0.0..=10.0).contains(&(v / scale)) {
        return Err(format!("{s} is out of range"));
    }
    Ok(v / scale)
}

/// [`parse_share`] of a whole, at most 100 %.
fn parse_part(s: &str) -> Result<f64, String> {
    parse_share(s).and_then(|v| match v <= 1.0 {
        true => Ok(v),
        false => Err(format!("{s} is more than the whole (100%)")),
    })
}

#[derive(Debug, Args)]
pub(crate) struct FlamegraphArgs {
    /// The session file (`-` for standard input).
    #[arg(value_parser = session)]
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) threads: Threads,
    /// What the widths measure.
    #[arg(long, value_enum, default_value_t = FoldedKind::Time)]
    pub(crate) kind: FoldedKind,
    /// Where to write the SVG; `-` for standard output.
    #[arg(short, long)]
    pub(crate) output: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct TimelineArgs {
    /// The session file (`-` for standard input).
    #[arg(value_parser = session)]
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) threads: Threads,
    /// Where to write the SVG; `-` for standard output.
    #[arg(short, long)]
    pub(crate) output: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The session file (`-` for standard input).
    #[arg(value_parser = session)]
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) threads: Threads,
    /// The output format.
    #[arg(long, value_enum)]
    pub(crate) format: ExportFormat,
    /// For folded stacks: what they weigh (default: time).
    #[arg(long, value_enum)]
    pub(crate) kind: Option<FoldedKind>,
    /// Where to write; `-` for standard output.
    #[arg(short, long)]
    pub(crate) output: PathBuf,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    /// `frame;frame weight` lines.
    Folded,
    /// Chrome Trace Event JSON.
    Chrome,
    /// DHAT's JSON (dhat-heap.json), for DHAT's viewer.
    Dhat,
    /// Gzipped pprof profile.proto (Go's pprof, Pyroscope, Parca).
    Pprof,
    /// The whole report as JSON (as `pulse report --json`).
    Json,
}

/// `--kind` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum FoldedKind {
    /// Self time of each scope path, ns.
    Time,
    /// Bytes allocated at each stack.
    AllocBytes,
    /// Allocations at each stack.
    AllocCount,
    /// Bytes live at the end at each stack.
    Leaks,
}

impl FoldedKind {
    pub(crate) fn to_lib(self) -> pulse_analysis::FoldedKind {
        match self {
            FoldedKind::Time => pulse_analysis::FoldedKind::Time,
            FoldedKind::AllocBytes => pulse_analysis::FoldedKind::AllocBytes,
            FoldedKind::AllocCount => pulse_analysis::FoldedKind::AllocCount,
            FoldedKind::Leaks => pulse_analysis::FoldedKind::Leaks,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    /// The session file (`-` for standard input).
    #[arg(value_parser = session)]
    pub(crate) file: PathBuf,
    /// Print JSON (schema: docs/schema/info.schema.json).
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) layout: Layout,
}
