//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_STATUSES: &str = "\
Exit status:
  0  success
  1  error (unreadable, corrupt or foreign file; unwritable output)
  2  usage error (unknown flag or command)
  3  partial input: the session was truncated; the report covers what was read";

/// Reports from pulse session files.
#[derive(Debug, Parser)]
#[command(name = "pulse", version, about, after_help = EXIT_STATUSES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// The one-screen answer: totals, memory, and scopes by self time.
    #[command(after_help = concat!("Example:\n  pulse report run.pulse --top 10\n\n", "Exit status: 0 ok, 1 error, 2 usage, 3 truncated input"))]
    Report(ReportArgs),
    /// The header, metadata and a count of every record kind.
    #[command(
        after_help = "Example:\n  pulse info run.pulse\n\nExit status: 0 ok, 1 error, 2 usage, 3 truncated input"
    )]
    Info(InfoArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The session file.
    pub(crate) file: PathBuf,
    /// Rows per table.
    #[arg(long, default_value_t = pulse_analysis::DEFAULT_TOP)]
    pub(crate) top: usize,
}

impl ReportArgs {
    pub(crate) fn options(&self) -> pulse_analysis::ReportOptions {
        let mut o = pulse_analysis::ReportOptions::default();
        o.top = self.top;
        o
    }
}

#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    /// The session file.
    pub(crate) file: PathBuf,
}
