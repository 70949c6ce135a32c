//! Writers: one module per output, each reading the model (or, for the
//! Chrome trace, the session's events again) and writing one format; and
//! [`write`], the one dispatch over them that the `pulse` command line and
//! the fuzz targets both call.
//!
//! A new output is a writer module here, a variant of [`Output`] and its
//! line in [`write`] and [`Output::every`].

use std::io::{self, Write};
use std::path::Path;

use crate::error::Error;
use crate::model::profile::Profile;
use crate::model::report::ReportOptions;
use crate::model::stacks::FoldedKind;
use fit::Width;

pub(crate) mod chrome;
pub(crate) mod dhat;
pub(crate) mod diff_text;
pub(crate) mod fit;
pub(crate) mod flamegraph;
pub(crate) mod folded;
pub(crate) mod html;
pub(crate) mod info_text;
pub(crate) mod json;
pub(crate) mod leaks_text;
pub(crate) mod pprof;
pub(crate) mod report_text;
pub(crate) mod table;
pub(crate) mod text;
pub(crate) mod timeline_svg;
pub(crate) mod units;

/// Every output pulse writes from one session: what `pulse report`,
/// `hotspots`, `leaks`, `info`, `flamegraph`, `timeline` and `export`
/// print. (`diff` and `merge` read several sessions.)
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Output {
    /// The report (`pulse report`; `pulse hotspots` is the report with
    /// only its scope sections). `export --format json` is the report with
    /// the default options, as JSON.
    Report(ReportOptions, Form),
    /// `pulse leaks`: at most `top` locations; `strict` counts those too
    /// short to tell as leaks.
    Leaks {
        /// Locations shown.
        top: usize,
        /// Whether undecided locations count as leaks.
        strict: bool,
        /// Text or JSON.
        form: Form,
    },
    /// `pulse info`.
    Info(Form),
    /// `pulse report --html`: the report with these options as one
    /// self-contained page, at most [`crate::MAX_HTML_BYTES`].
    Html(ReportOptions),
    /// `pulse flamegraph`: an SVG.
    Flamegraph(FoldedKind),
    /// `pulse timeline`: an SVG.
    Timeline,
    /// `pulse export --format folded`.
    Folded(FoldedKind),
    /// `pulse export --format dhat`.
    Dhat,
    /// `pulse export --format pprof`.
    Pprof,
    /// `pulse export --format chrome`: the session's events replayed again
    /// from its [`Source`].
    Chrome,
}

/// How a report-like output is written.
#[derive(Debug, Clone, Copy)]
pub enum Form {
    /// Text within a width.
    Text(Width),
    /// JSON (`--json`), as `docs/schema/` describes it.
    Json,
}

/// Where a profile was read from, for the outputs that read the session
/// again ([`Output::Chrome`]).
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A session file.
    File(&'a Path),
    /// A session's bytes.
    Bytes(&'a [u8]),
}

/// What an output found that decides a command's exit status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// [`Output::Leaks`] found a leak.
    pub leaks: bool,
}

const KINDS: [FoldedKind; 4] =
    [FoldedKind::Time, FoldedKind::AllocBytes, FoldedKind::AllocCount, FoldedKind::Leaks];

impl Output {
    /// Every output, each with the command line's default options, both
    /// forms of those that have two, and each kind of those that weigh
    /// stacks: what the fuzz targets run on every input.
    pub fn every(width: Width) -> Vec<Output> {
        let mut all = Vec::new();
        let hotspots = ReportOptions::hotspots();
        for form in [Form::Text(width), Form::Json] {
            all.push(Output::Report(ReportOptions::default(), form));
            all.push(Output::Report(hotspots.clone(), form));
            all.push(Output::Leaks { top: crate::DEFAULT_TOP, strict: false, form });
            all.push(Output::Info(form));
        }
        for kind in KINDS {
            all.push(Output::Flamegraph(kind));
            all.push(Output::Folded(kind));
        }
        let html = ReportOptions { top: html::HTML_ROWS, ..ReportOptions::default() };
        all.push(Output::Html(html));
        all.extend([Output::Timeline, Output::Dhat, Output::Pprof, Output::Chrome]);
        all
    }
}

/// Writes `output` of `profile`, read from `source`, to `out`.
///
/// Errors: [`Error::Write`] when `out` fails; for [`Output::Chrome`],
/// [`Error::Io`] or [`Error::Format`] when the session cannot be read again.
pub fn write(
    output: &Output,
    profile: &Profile,
    source: Source<'_>,
    out: &mut dyn Write,
) -> Result<Outcome, Error> {
    let mut outcome = Outcome::default();
    let written: io::Result<()> = match output {
        Output::Report(opts, form) => {
            let report = crate::model::report::report(profile, opts);
            match form {
                Form::Text(width) => report.render_width(out, *width),
                Form::Json => json::write_json(&report, out),
            }
        }
        Output::Leaks { top, strict, form } => {
            let leaks = crate::model::leaks::leak_report(profile, *top, *strict);
            outcome.leaks = leaks.found;
            match form {
                Form::Text(width) => leaks.render_width(out, *width),
                Form::Json => json::write_json(&leaks.leaks, out),
            }
        }
        Output::Info(form) => {
            let info = crate::model::info::info(profile);
            match form {
                Form::Text(width) => info.render_width(out, *width),
                Form::Json => json::write_json(&info, out),
            }
        }
        Output::Html(opts) => {
            let report = crate::model::report::report(profile, opts);
            html::html(profile, &report, out)
        }
        Output::Flamegraph(kind) => flamegraph::flamegraph(profile, *kind, out),
        Output::Timeline => timeline_svg::timeline_svg(profile, out),
        Output::Folded(kind) => folded::folded(profile, *kind, out),
        Output::Dhat => dhat::dhat(profile, out),
        Output::Pprof => pprof::pprof(profile, out),
        Output::Chrome => return chrome_from(source, out).map(|()| outcome),
    };
    written.map_err(Error::Write)?;
    Ok(outcome)
}

/// [`Output::Chrome`]: the session read again from `source`.
fn chrome_from(source: Source<'_>, out: &mut dyn Write) -> Result<(), Error> {
    let path = |p: &Path| p.to_path_buf();
    let described = match source {
        Source::File(p) => path(p),
        Source::Bytes(_) => Path::new("session").to_path_buf(),
    };
    let result = match source {
        Source::File(p) => {
            let file =
                std::fs::File::open(p).map_err(|source| Error::Io { path: path(p), source })?;
            chrome::chrome_to(io::BufReader::new(file), out)
        }
        Source::Bytes(b) => chrome::chrome_to(b, out),
    };
    result.map_err(|source| Error::Format { path: described, source })?.map_err(Error::Write)
}
