//! `pulse`: reports from pulse session files.
//!
//! A thin layer over `pulse-analysis`: it parses arguments, calls the
//! library, writes what the library returns, and maps outcomes to exit
//! statuses (see `docs/CLI.md`).
#![forbid(unsafe_code)]

mod args;

use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// Exit statuses, as documented in `--help` and `docs/CLI.md`.
mod exit {
    pub(crate) const OK: u8 = 0;
    pub(crate) const ERROR: u8 = 1;
    pub(crate) const PARTIAL: u8 = 3;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("pulse: {e:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let stdout = io::stdout();
    let mut out: Box<dyn Write> = if stdout.is_terminal() {
        Box::new(stdout.lock())
    } else {
        Box::new(BufWriter::new(stdout.lock()))
    };
    let code = match cli.command {
        Command::Report(a) => {
            let profile = pulse_analysis::Profile::load(&a.file)?;
            let report = pulse_analysis::report(&profile, &a.options());
            report.render(&mut out)?;
            partial(&profile)
        }
        Command::Info(a) => {
            let profile = pulse_analysis::Profile::load(&a.file)?;
            pulse_analysis::info(&profile).render(&mut out)?;
            partial(&profile)
        }
    };
    out.flush()?;
    Ok(code)
}

/// A truncated session is reported (with a warning in the output) but exits
/// with its own status, so scripts notice.
fn partial(p: &pulse_analysis::Profile) -> u8 {
    if let Some(t) = &p.truncated {
        eprintln!("pulse: warning: {t}");
        exit::PARTIAL
    } else {
        exit::OK
    }
}
