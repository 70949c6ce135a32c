//! `pulse`: reports from pulse session files.
//!
//! A thin layer over `pulse-analysis`: it parses arguments, calls the
//! library, writes what the library returns, and maps outcomes to exit
//! statuses (see `docs/CLI.md`).
#![forbid(unsafe_code)]

mod args;
mod colour;
mod out;

use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand;
use clap::Parser;
use std::path::Path;

use pulse_analysis::{printable, Form, Output, Source};

use args::{Cli, Command};

/// Exit statuses, as documented in `--help` and `docs/CLI.md`.
mod exit {
    pub(crate) const OK: u8 = 0;
    pub(crate) const ERROR: u8 = 1;
    pub(crate) const USAGE: u8 = 2;
    pub(crate) const PARTIAL: u8 = 3;
    pub(crate) const REGRESSION: u8 = 4;
    pub(crate) const LEAKS: u8 = 5;
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `--help`, `--version`, and help shown for a bare `pulse`: as clap prints them.
        Err(e) if !e.use_stderr() || e.kind() == DisplayHelpOnMissingArgumentOrSubcommand => {
            e.exit()
        }
        Err(e) => {
            eprintln!("pulse: {}", usage_line(&e.to_string()));
            return ExitCode::from(exit::USAGE);
        }
    };
    let cache = if cli.no_cache { None } else { pulse_analysis::Cache::from_env() };
    let _ = CACHE.set(cache);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("pulse: {}", one_line(&e));
            ExitCode::from(exit::ERROR)
        }
    }
}

/// The error and its causes on one line. A cause whose text the message
/// already holds (errors that print their source themselves) is left out.
/// A message may quote the session (a thread's name): its control
/// characters are escaped as the reports escape them.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    printable(&flatten(&line)).into_owned()
}

/// clap's several-line usage error as one line: the problem, then the usage.
fn usage_line(rendered: &str) -> String {
    let mut problem = Vec::new();
    let mut usage = None;
    for l in rendered.lines().map(str::trim) {
        if let Some(u) = l.strip_prefix("Usage:") {
            usage = Some(u.trim().to_owned());
        } else if !(l.is_empty() || l.starts_with("tip:") || l.starts_with("For more information"))
        {
            problem.push(l.strip_prefix("error:").unwrap_or(l).trim());
        }
    }
    let hint = usage.map_or_else(|| String::from("try 'pulse --help'"), |u| format!("usage: {u}"));
    printable(&flatten(&format!("{} ({hint})", problem.join(" ")))).into_owned()
}

/// Whatever a message holds, stderr gets one line per problem.
fn flatten(s: &str) -> String {
    s.split(['\n', '\r']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let stdout = io::stdout();
    let terminal = stdout.is_terminal();
    let color = match cli.color {
        args::Color::Always => true,
        args::Color::Never => false,
        args::Color::Auto => terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let plain: Box<dyn Write> =
        if terminal { Box::new(stdout.lock()) } else { Box::new(BufWriter::new(stdout.lock())) };
    let mut out: Box<dyn Write> = if color { Box::new(colour::Colour::new(plain)) } else { plain };
    let columns = columns(terminal.then(terminal_columns).flatten());
    let code = match cli.command {
        Command::Report(a) => match &a.html {
            Some(path) => html(&a.file, &a.threads, &a.options(), path)?,
            None => {
                let form = form(a.json, a.layout.width(columns));
                report(&a.file, &a.threads, &a.options(), form, &mut out)?
            }
        },
        Command::Hotspots(a) => {
            let form = form(a.json, a.layout.width(columns));
            report(&a.file, &a.threads, &a.options(), form, &mut out)?
        }
        Command::Leaks(a) => {
            let form = form(a.json, a.layout.width(columns));
            let output = Output::Leaks { top: a.top, strict: a.strict, form };
            let profile = load(&a.file, &a.threads)?;
            let outcome = pulse_analysis::write(&output, profile, Source::File(&a.file), &mut out)?;
            match partial(profile) {
                exit::OK if outcome.leaks => exit::LEAKS,
                code => code,
            }
        }
        Command::Diff(a) => {
            let all = args::Threads { wanted: Vec::new() };
            let side = |one: &Option<std::path::PathBuf>, more: &[std::path::PathBuf]| {
                one.iter().chain(more).map(|p| load_owned(p, &all)).collect::<Result<Vec<_>, _>>()
            };
            let before = side(&a.before, &a.before_runs)?;
            let after = side(&a.after, &a.after_runs)?;
            let mut o = pulse_analysis::DiffOptions::default();
            o.threshold = a.threshold;
            o.min_share = a.min_share;
            let d = pulse_analysis::diff_runs(&before, &after, &o);
            for w in &d.warnings {
                eprintln!("pulse: warning: {}", printable(w));
            }
            if a.json {
                pulse_analysis::write_json(&d, &mut out)?;
            } else {
                d.render_width(&mut out, a.top, a.layout.width(columns))?;
            }
            let whole = before.iter().chain(&after).all(|p| partial(p) == exit::OK);
            // Kept to the process's end, as `load` keeps one (see there).
            std::mem::forget((before, after));
            match whole {
                true if a.fail_on_regression && d.regressions > 0 => exit::REGRESSION,
                true => exit::OK,
                false => exit::PARTIAL,
            }
        }
        Command::Flamegraph(a) => {
            to_file(&Output::Flamegraph(a.kind.to_lib()), &a.file, &a.threads, &a.output)?
        }
        Command::Timeline(a) => to_file(&Output::Timeline, &a.file, &a.threads, &a.output)?,
        Command::Export(a) => {
            if matches!(a.format, args::ExportFormat::Chrome) && !a.threads.wanted.is_empty() {
                eprintln!("pulse: --thread does not apply to --format chrome: the trace already has a track per thread");
                return Ok(exit::USAGE);
            }
            if !matches!(a.format, args::ExportFormat::Folded) && a.kind.is_some() {
                eprintln!("pulse: --kind applies to --format folded only: the other formats hold every kind of figure");
                return Ok(exit::USAGE);
            }
            let output = match a.format {
                args::ExportFormat::Folded => {
                    Output::Folded(a.kind.unwrap_or(args::FoldedKind::Time).to_lib())
                }
                args::ExportFormat::Dhat => Output::Dhat,
                args::ExportFormat::Pprof => Output::Pprof,
                args::ExportFormat::Json => Output::Report(Default::default(), Form::Json),
                args::ExportFormat::Chrome => Output::Chrome,
            };
            to_file(&output, &a.file, &a.threads, &a.output)?
        }
        Command::Merge { files, output: path } => {
            // Every input readable before the output is created.
            for f in &files {
                std::fs::File::open(f).with_context(|| format!("{}", f.display()))?;
            }
            let inputs: Vec<&Path> = files.iter().map(|f| f.as_path()).collect();
            let mut sink = out::create(&path, &inputs, "-o", out::Readers::Owner)?;
            let summary = pulse_analysis::merge(&files, &mut sink)
                .with_context(|| format!("merging into {}", path.display()))?;
            sink.finish()?;
            for w in &summary.warnings {
                eprintln!("pulse: warning: {}", printable(w));
            }
            exit::OK
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "pulse", &mut out);
            exit::OK
        }
        Command::Info(a) => {
            let form = form(a.json, a.layout.width(columns));
            let profile = load(&a.file, &args::Threads { wanted: Vec::new() })?;
            pulse_analysis::write(&Output::Info(form), profile, Source::File(&a.file), &mut out)?;
            partial(profile)
        }
    };
    out.flush()?;
    Ok(code)
}

/// Loads a session ([`load_owned`]) and keeps its profile to the process's
/// end, never dropped: freeing its every histogram, name and table one by
/// one (5 % of a later command on a small session, after the answer is
/// written) is work the process's exit does at once.
fn load(
    path: &std::path::Path,
    threads: &args::Threads,
) -> Result<&'static pulse_analysis::Profile, pulse_analysis::Error> {
    Ok(Box::leak(Box::new(load_owned(path, threads)?)))
}

/// Loads a session, with a progress bar on stderr when it is a terminal and
/// the file takes more than a moment to read (over 16 MB).
/// `threads` chooses the threads to keep (all when it names none).
fn load_owned(
    path: &std::path::Path,
    threads: &args::Threads,
) -> Result<pulse_analysis::Profile, pulse_analysis::Error> {
    let mut profile = load_quietly(path, threads)?;
    // Cut short because its program is still writing it: said so, rather
    // than the causes of a file that stays cut (a kill, a full disk).
    if profile.truncated.is_some() && pulse_analysis::being_written(path) {
        profile.truncated = Some(String::from(
            "the session is still being written by its running program: this is what it held when read",
        ));
    }
    // A cut file says so itself (exit status 3); an empty whole one is odd.
    if profile.threads.is_empty() && profile.truncated.is_none() {
        let path = path.display().to_string();
        eprintln!("pulse: warning: {}: the session holds no events", printable(&path));
    }
    Ok(profile)
}

/// Where profiles are kept between commands: none with `--no-cache` or
/// `PULSE_CACHE=off` (see [`pulse_analysis::Cache::from_env`]).
static CACHE: std::sync::OnceLock<Option<pulse_analysis::Cache>> = std::sync::OnceLock::new();

/// Loads a session through the cache, if there is one.
fn load_from(
    path: &std::path::Path,
    opts: &pulse_analysis::LoadOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<pulse_analysis::Profile, pulse_analysis::Error> {
    match CACHE.get().and_then(Option::as_ref) {
        Some(cache) => Ok(pulse_analysis::Profile::load_cached(path, opts, cache, progress)?.0),
        None => pulse_analysis::Profile::load_with(path, opts, progress),
    }
}

fn load_quietly(
    path: &std::path::Path,
    threads: &args::Threads,
) -> Result<pulse_analysis::Profile, pulse_analysis::Error> {
    let opts = threads.options();
    let big = std::fs::metadata(path).map_or(0, |m| m.len()) > 16 << 20;
    if !(big && io::stderr().is_terminal()) {
        return load_from(path, &opts, &mut |_, _| {});
    }
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "reading {msg} {wide_bar} {bytes}/{total_bytes} {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(path.display().to_string());
    let result = load_from(path, &opts, &mut |read, total| {
        bar.set_length(total);
        bar.set_position(read);
    });
    bar.finish_and_clear();
    result
}

/// The least width text output is fitted to, however narrow the terminal:
/// below it a report's tables cannot show their figures.
const MIN_COLUMNS: usize = 60;

/// The columns text output fits: [`pulse_analysis::DEFAULT_WIDTH`] (100),
/// or the terminal's width where stdout is a terminal narrower than that
/// (but not under [`MIN_COLUMNS`]). A wider terminal still gets 100: lines
/// longer than that are hard to read, and `--wide` shows everything.
fn columns(terminal: Option<usize>) -> usize {
    let most = pulse_analysis::DEFAULT_WIDTH;
    terminal.filter(|&c| c > 0).map_or(most, |c| c.clamp(MIN_COLUMNS, most))
}

/// The width of the terminal stdout is, if it tells.
fn terminal_columns() -> Option<usize> {
    console::Term::stdout().size_checked().map(|(_, columns)| usize::from(columns))
}

/// JSON (`--json`), or text of `width`.
fn form(json: bool, width: pulse_analysis::Width) -> Form {
    if json {
        Form::Json
    } else {
        Form::Text(width)
    }
}

/// `pulse report` and `pulse hotspots`: the report with these options.
fn report(
    file: &Path,
    threads: &args::Threads,
    opts: &pulse_analysis::ReportOptions,
    form: Form,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let profile = load(file, threads)?;
    if let Some(c) = &opts.category {
        profile.check_category(file, c)?;
    }
    pulse_analysis::write(&Output::Report(opts.clone(), form), profile, Source::File(file), out)?;
    Ok(partial(profile))
}

/// `pulse report --html PATH`: the report with these options as a page,
/// written to `path` once the session has been read.
fn html(
    file: &Path,
    threads: &args::Threads,
    opts: &pulse_analysis::ReportOptions,
    path: &Path,
) -> anyhow::Result<u8> {
    out::refuse_inputs(path, &[file], "--html")?;
    let profile = load(file, threads)?;
    if let Some(c) = &opts.category {
        profile.check_category(file, c)?;
    }
    write_file(&Output::Html(opts.clone()), profile, file, (path, "--html"))
}

/// An output of the session in `file` written to `path` (`-`: stdout).
fn to_file(
    output: &Output,
    file: &Path,
    threads: &args::Threads,
    path: &Path,
) -> anyhow::Result<u8> {
    out::refuse_inputs(path, &[file], "-o")?;
    let profile = load(file, threads)?;
    write_file(output, profile, file, (path, "-o"))
}

/// An output of `profile`, read from `file`, written to `path` (`-`:
/// stdout), given as `what` (`-o`, `--html`), which is created only now
/// that the session has been read.
fn write_file(
    output: &Output,
    profile: &pulse_analysis::Profile,
    file: &Path,
    (path, what): (&Path, &str),
) -> anyhow::Result<u8> {
    let mut sink = out::create(path, &[file], what, out::Readers::Usual)?;
    let writing = || format!("writing {}", path.display());
    match pulse_analysis::write(output, profile, Source::File(file), &mut sink) {
        Err(pulse_analysis::Error::Write(e)) => {
            return Err(anyhow::Error::from(e).context(writing()))
        }
        Err(e) => return Err(e.into()),
        Ok(_) => sink.finish()?,
    }
    Ok(partial(profile))
}

/// A truncated session is reported (with a warning in the output) but exits
/// with its own status, so scripts notice.
fn partial(p: &pulse_analysis::Profile) -> u8 {
    if let Some(t) = &p.truncated {
        eprintln!("pulse: warning: {}", printable(t));
        exit::PARTIAL
    } else {
        exit::OK
    }
}

#[cfg(test)]
mod tests {
    use super::columns;

    #[test]
    fn text_fits_100_columns_or_a_narrower_terminal() {
        assert_eq!(columns(None), 100, "not a terminal");
        assert_eq!(columns(Some(80)), 80);
        assert_eq!(columns(Some(250)), 100, "a wide terminal");
        assert_eq!(columns(Some(20)), 60, "a very narrow one");
        assert_eq!(columns(Some(0)), 100, "a terminal that does not say");
    }
}
