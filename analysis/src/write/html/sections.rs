//! The report's sections as HTML tables, one function a section, in the
//! text report's order: recommendations, memory (and the heap at its
//! peak), scopes, the call tree, counters, threads (and the bytes that
//! crossed between them), what is live at the end, allocation sites.
//! [`present()`] says which the report has, [`write()`] writes one.

use std::io::{self, Write};

use crate::model::history::Trend;
use crate::model::report::{Omitted, Report, SortBy, TreeRow};
use crate::write::text::xml as escape;
use crate::write::units::{Bytes, Nanos};

use super::table::{Cell, Sort, Table};

/// Frames of a leak's stack shown in its row.
const STACK_LINES: usize = 8;

/// A section of the page drawn from the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Recommendations,
    Memory,
    Scopes,
    Tree,
    Counters,
    Threads,
    LiveAtEnd,
    Sites,
}

impl Section {
    /// Its element id: the page's own, for the table of contents.
    pub(super) fn id(self) -> &'static str {
        match self {
            Section::Recommendations => "recommendations",
            Section::Memory => "memory",
            Section::Scopes => "scopes",
            Section::Tree => "tree",
            Section::Counters => "counters",
            Section::Threads => "threads",
            Section::LiveAtEnd => "live-at-end",
            Section::Sites => "sites",
        }
    }

    /// Its heading.
    pub(super) fn title(self) -> &'static str {
        match self {
            Section::Recommendations => "Recommendations",
            Section::Memory => "Memory",
            Section::Scopes => "Scopes",
            Section::Tree => "Call tree",
            Section::Counters => "Counters",
            Section::Threads => "Threads",
            Section::LiveAtEnd => "Live at end",
            Section::Sites => "Allocation sites",
        }
    }
}

/// The sections of `r` on the page, in order: those the report has on
/// ([`Report::sections`]), less those with nothing to show that the text
/// leaves out too (no call tree, no counters, no thread, nothing live at
/// the end).
pub(super) fn present(r: &Report) -> Vec<Section> {
    let s = &r.sections;
    let counters = !(r.counters.rows.is_empty()
        && r.counters.names.is_empty()
        && r.counters.unavailable.is_empty());
    let tree = !r.tree.is_empty() || r.tree_omitted.is_some();
    [
        (s.recommendations, Section::Recommendations),
        (s.memory, Section::Memory),
        (s.scopes, Section::Scopes),
        (s.tree && tree, Section::Tree),
        (s.counters && counters, Section::Counters),
        (s.threads && !r.per_thread.is_empty(), Section::Threads),
        (s.live_at_end && !r.live_at_end.is_empty(), Section::LiveAtEnd),
        (s.sites, Section::Sites),
    ]
    .into_iter()
    .filter_map(|(shown, section)| shown.then_some(section))
    .collect()
}

/// Writes `section` of `r`.
pub(super) fn write(section: Section, r: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, r#"<section id="{}">"#, section.id())?;
    writeln!(out, "<h2>{}</h2>", section.title())?;
    match section {
        Section::Recommendations => recommendations(r, out)?,
        Section::Memory => memory(r, r.at_peak_omitted, out)?,
        Section::Scopes => scopes(r, out)?,
        Section::Tree => tree(r, out)?,
        Section::Counters => counters(r, out)?,
        Section::Threads => threads(r, out)?,
        Section::LiveAtEnd => live_at_end(r, r.live_at_end_omitted, out)?,
        Section::Sites => sites(r, out)?,
    }
    writeln!(out, "</section>")
}

/// A line of the page's own text under a heading.
fn note(out: &mut dyn Write, text: &str) -> io::Result<()> {
    writeln!(out, r#"<p class="note">{}</p>"#, escape(text))
}

/// What to change, most at stake first.
fn recommendations(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    if r.recommendations.is_empty() {
        note(out, "None: nothing in this session stands out.")?;
        return Ok(());
    }
    let mut t = Table::new(
        "t-recommendations",
        "recommendations",
        &[
            ("#", Sort::Number),
            ("severity", Sort::Rank),
            ("kind", Sort::Text),
            ("where", Sort::Text),
            ("at stake", Sort::Number),
            ("evidence", Sort::Text),
            ("fix", Sort::Text),
        ],
    );
    t.rows(r.recommendations.iter().enumerate(), |(i, rec)| {
        vec![
            Cell::count(i as u64 + 1),
            Cell::rank(rec.severity as u64, rec.severity.name()),
            Cell::text(rec.category.name()),
            Cell::location(&rec.location),
            Cell::share(rec.stake),
            Cell::prose(&rec.evidence),
            Cell::prose(&rec.fix),
        ]
    });
    t.write(out)
}

/// Allocation totals, and the heap at its peak by site (of which the
/// report's `--top` left `at_peak_omitted` out).
fn memory(r: &Report, at_peak_omitted: usize, out: &mut dyn Write) -> io::Result<()> {
    let m = &r.memory;
    let mut t = Table::new(
        "t-memory",
        "memory totals",
        &[("", Sort::Text), ("blocks", Sort::Number), ("bytes", Sort::Number)],
    );
    t.row(vec![Cell::text("allocated"), Cell::count(m.allocs), Cell::bytes(m.bytes_allocated)]);
    t.row(vec![Cell::text("freed"), Cell::count(m.frees), Cell::bytes(m.bytes_freed)]);
    t.row(vec![Cell::text("reallocated"), Cell::count(m.reallocs), Cell::empty()]);
    if !m.counted_only {
        let peak = format!("peak live (at {})", Nanos(m.peak_at_ns));
        t.row(vec![Cell::text(&peak), Cell::count(m.peak_blocks), Cell::bytes(m.peak_bytes)]);
    }
    t.row(vec![
        Cell::text("live at end"),
        Cell::count(m.live_blocks_at_end),
        Cell::bytes(m.live_bytes_at_end),
    ]);
    if m.failed > 0 {
        t.row(vec![Cell::text("failed allocations"), Cell::count(m.failed), Cell::empty()]);
    }
    t.write(out)?;
    if !r.at_peak.is_empty() && m.peak_bytes > 0 {
        writeln!(
            out,
            "<h3>The heap at its peak ({} at {})</h3>",
            Bytes(m.peak_bytes),
            escape(&Nanos(m.peak_at_ns).to_string())
        )?;
        let mut t = Table::new(
            "t-at-peak",
            "the heap at its peak",
            &[
                ("function", Sort::Text),
                ("at", Sort::Text),
                ("bytes", Sort::Number),
                ("share", Sort::Number),
            ],
        )
        .by_top(at_peak_omitted);
        t.rows(&r.at_peak, |s| {
            vec![
                Cell::name(&s.function),
                Cell::path(&s.place),
                Cell::bytes(s.bytes_at_peak),
                Cell::share(s.bytes_at_peak as f64 / m.peak_bytes as f64),
            ]
        });
        t.write(out)?;
    }
    Ok(())
}

/// Scopes with their percentiles and the allocations inside them.
fn scopes(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    let by = match r.sorted_by {
        SortBy::SelfTime => "self time",
        SortBy::Total => "total time",
        SortBy::Mean => "mean time",
        SortBy::Count => "count",
        SortBy::Priority => "priority",
    };
    if r.scopes.is_empty() {
        note(out, "No scopes recorded.")?;
        return Ok(());
    }
    let asynchronous = r.scopes.iter().any(|s| s.time.runs > 0);
    let per_entry = match asynchronous {
        true => "Times are per entry unless said; an async operation's count, times and percentiles are its polls', and its wall/run the mean time from first poll to completion, waiting included.",
        false => "Times are per entry unless said.",
    };
    note(out, &format!("The report's order: by {by}. {per_entry}"))?;
    let mut columns = vec![
        ("scope", Sort::Text),
        ("count", Sort::Number),
        ("self", Sort::Number),
        ("total", Sort::Number),
        ("mean", Sort::Number),
        ("p50", Sort::Number),
        ("p99", Sort::Number),
        ("p99.9", Sort::Number),
        ("max", Sort::Number),
        ("allocs", Sort::Number),
        ("bytes", Sort::Number),
        ("peak live", Sort::Number),
        ("live at end", Sort::Number),
    ];
    if asynchronous {
        columns.push(("wall/run (async)", Sort::Number));
        columns.push(("runs", Sort::Number));
    }
    let mut t = Table::new("t-scopes", "scopes", &columns).by_top(r.scopes_omitted);
    t.rows(&r.scopes, |s| {
        let name = if s.category.is_empty() {
            s.name.clone()
        } else {
            format!("{}::{}", s.category, s.name)
        };
        let st = &s.time;
        let mut row = vec![
            Cell::name(&name),
            Cell::count(st.count),
            Cell::ns(st.self_ns),
            Cell::ns(st.total_ns),
            Cell::ns(st.mean_ns),
            Cell::ns(st.p50_ns),
            Cell::ns(st.p99_ns),
            Cell::ns(st.p999_ns),
            Cell::ns(st.max_ns),
            Cell::count(st.allocs),
            Cell::bytes(st.bytes),
            Cell::bytes(s.memory.peak_live_bytes),
            Cell::bytes(s.memory.live_bytes_at_end),
        ];
        if asynchronous {
            row.push(st.wall_ns.checked_div(st.runs).map_or_else(Cell::empty, Cell::ns));
            row.push(Cell::count(st.runs));
        }
        row
    });
    t.write(out)
}

/// A line of the call tree: a scope on its path, or the children of one
/// left out below the cut.
enum TreeLine<'a> {
    Node(&'a TreeRow),
    More(usize, Omitted),
}

/// The call tree's lines in the text report's order: each parent's `… N
/// more` after its last shown descendant, the outermost ones last.
fn tree_lines(r: &Report) -> Vec<TreeLine<'_>> {
    let mut lines = Vec::with_capacity(r.tree.len());
    let mut pending: Vec<(usize, Omitted)> = Vec::new();
    for row in &r.tree {
        while pending.last().is_some_and(|(depth, _)| *depth > row.depth) {
            if let Some((depth, o)) = pending.pop() {
                lines.push(TreeLine::More(depth, o));
            }
        }
        if let Some(o) = row.omitted {
            pending.push((row.depth + 1, o));
        }
        lines.push(TreeLine::Node(row));
    }
    while let Some((depth, o)) = pending.pop() {
        lines.push(TreeLine::More(depth, o));
    }
    if let Some(o) = r.tree_omitted {
        lines.push(TreeLine::More(0, o));
    }
    lines
}

/// The call tree, depth first, heaviest child first.
fn tree(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    note(
        out,
        "Depth first, the heaviest child first; sorting a column flattens the tree, filtering keeps the rows that match.",
    )?;
    let mut t = Table::new(
        "t-tree",
        "the call tree",
        &[
            ("scope", Sort::Text),
            ("count", Sort::Number),
            ("total", Sort::Number),
            ("self", Sort::Number),
            ("recursion levels", Sort::Number),
        ],
    );
    t.rows(tree_lines(r), |line| match line {
        TreeLine::Node(row) => vec![
            Cell::indented(row.depth, &row.name),
            Cell::count(row.count),
            Cell::ns(row.total_ns),
            Cell::ns(row.self_ns),
            Cell::count(row.recursion as u64),
        ],
        TreeLine::More(depth, o) => vec![
            Cell::indented(depth, &format!("… {} more", o.count)),
            Cell::empty(),
            Cell::ns(o.total_ns),
            Cell::empty(),
            Cell::empty(),
        ],
    });
    t.write(out)
}

/// Counters per scope (mean per entry) and their ratios, or why there are
/// none.
fn counters(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    let c = &r.counters;
    if !c.unavailable.is_empty() {
        let names: Vec<&str> = c.unavailable.iter().map(|(n, _)| n.as_str()).collect();
        let what = if c.names.is_empty() { "None could be opened" } else { "Unavailable here" };
        let text = format!("{what}: {} ({})", names.join(", "), c.unavailable[0].1);
        writeln!(out, r#"<p class="note">{}</p>"#, Cell::prose(&text).html())?;
    }
    if c.rows.is_empty() {
        note(out, "No scope read them (use scope!(\"name\", counters)).")?;
        return Ok(());
    }
    let mut ratios: Vec<&str> = Vec::new();
    for (n, _) in c.rows.iter().flat_map(|r| &r.ratios) {
        if !ratios.contains(n) {
            ratios.push(n);
        }
    }
    let mut columns = vec![("scope", Sort::Text), ("entries", Sort::Number)];
    columns.extend(c.names.iter().map(|n| (n.as_str(), Sort::Number)));
    columns.extend(ratios.iter().map(|n| (*n, Sort::Number)));
    let mut t = Table::new("t-counters", "counters", &columns);
    t.rows(&c.rows, |row| {
        let mut cells = vec![Cell::name(&row.name), Cell::count(row.entries)];
        cells.extend(c.names.iter().enumerate().map(|(i, n)| {
            let v = row.per_entry.get(i).copied().unwrap_or(0.0);
            if n == "task-clock" {
                Cell::number(v, Nanos(v as u64))
            } else {
                Cell::number(v, format!("{v:.1}"))
            }
        }));
        cells.extend(ratios.iter().map(|n| {
            row.ratios
                .iter()
                .find(|(k, _)| k == n)
                .map_or_else(Cell::empty, |(_, v)| Cell::number(*v, format!("{v:.2}")))
        }));
        cells
    });
    t.write(out)
}

/// Each thread's time inside scopes and live set, and the bytes allocated
/// on one thread and freed on another.
fn threads(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    note(
        out,
        "Time inside each thread's outermost scopes; live sets count the blocks each allocated, wherever freed.",
    )?;
    let mut t = Table::new(
        "t-threads",
        "threads",
        &[
            ("id", Sort::Number),
            ("thread", Sort::Text),
            ("scoped time", Sort::Number),
            ("allocated", Sort::Number),
            ("peak live", Sort::Number),
            ("live at end", Sort::Number),
            ("blocks at end", Sort::Number),
            ("events", Sort::Number),
        ],
    );
    t.rows(&r.per_thread, |th| {
        vec![
            Cell::count(th.id),
            Cell::name(&th.name),
            Cell::ns(th.scoped_ns),
            Cell::bytes(th.bytes_allocated),
            Cell::bytes(th.peak_live_bytes),
            Cell::bytes(th.live_bytes_at_end),
            Cell::count(th.live_blocks_at_end),
            Cell::count(th.events),
        ]
    });
    t.write(out)?;
    if !r.flows.is_empty() {
        writeln!(out, "<h3>Freed on another thread</h3>")?;
        let mut t = Table::new(
            "t-flows",
            "blocks freed on another thread",
            &[
                ("allocated on", Sort::Number),
                ("freed on", Sort::Number),
                ("blocks", Sort::Number),
                ("bytes", Sort::Number),
            ],
        );
        t.rows(&r.flows, |f| {
            vec![
                Cell::number(f.from as f64, format!("#{}", f.from)),
                Cell::number(f.to as f64, format!("#{}", f.to)),
                Cell::count(f.blocks),
                Cell::bytes(f.bytes),
            ]
        });
        t.write(out)?;
    }
    Ok(())
}

/// Sites with blocks live at the end: leak, cache, or too little history
/// (of which the report's `--top` left `omitted` out).
fn live_at_end(r: &Report, omitted: usize, out: &mut dyn Write) -> io::Result<()> {
    let legend = crate::model::leaks::legend(r.cut || r.live_at_end.iter().any(|l| l.at_cut));
    let mut legend = format!("{legend}.");
    legend[..1].make_ascii_uppercase();
    note(out, &legend)?;
    let mut t = Table::new(
        "t-live-at-end",
        "blocks live at the end",
        &[
            ("function", Sort::Text),
            ("at", Sort::Text),
            ("blocks", Sort::Number),
            ("bytes", Sort::Number),
            ("verdict", Sort::Rank),
            ("other stacks", Sort::Number),
            ("stack (innermost first)", Sort::Text),
        ],
    )
    .by_top(omitted)
    .lister("pulse leaks --json");
    t.rows(&r.live_at_end, |l| {
        let rank = match l.trend {
            Trend::Growing => 2,
            Trend::Flat => 1,
            Trend::Unknown => 0,
        };
        let verdict = Cell::rank(rank, l.verdict());
        vec![
            Cell::name(&l.function),
            Cell::path(&l.place),
            Cell::count(l.blocks),
            Cell::bytes(l.bytes),
            verdict,
            Cell::count(l.other_stacks),
            Cell::lines(l.stack.iter(), STACK_LINES),
        ]
    });
    t.write(out)
}

/// Allocation sites by the user's line, with sizes and lifetimes.
fn sites(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    let by = if r.sites_by_peak {
        "their own peak of live bytes"
    } else if r.sites_by_allocs {
        "allocations"
    } else {
        "bytes"
    };
    if r.sites.is_empty() {
        note(out, "No allocations recorded.")?;
        return Ok(());
    }
    note(
        out,
        &format!(
            "The report's order: by {by}. Lifetimes are those of the freed blocks; short-lived: freed within {}.",
            Nanos(r.short_lived_ns)
        ),
    )?;
    let callers = r.sites.iter().any(|s| !s.called_from.is_empty());
    let mut columns = vec![
        ("function", Sort::Text),
        ("at", Sort::Text),
        ("allocs", Sort::Number),
        ("bytes", Sort::Number),
        ("mean", Sort::Number),
        ("largest", Sort::Number),
        ("reallocs", Sort::Number),
        ("lifetime p50", Sort::Number),
        ("lifetime p99", Sort::Number),
        ("short-lived", Sort::Number),
        ("temporary", Sort::Number),
        ("live at end", Sort::Number),
        ("own peak", Sort::Number),
        ("at the peak", Sort::Number),
        ("stacks", Sort::Number),
    ];
    if callers {
        columns.push(("called from", Sort::Text));
    }
    let mut t = Table::new("t-sites", "allocation sites", &columns).by_top(r.sites_omitted);
    t.rows(&r.sites, |s| {
        let freed = s.freed > 0;
        let lifetime = |ns| if freed { Cell::ns(ns) } else { Cell::empty() };
        let short =
            if freed { Cell::share(s.short_lived as f64 / s.freed as f64) } else { Cell::empty() };
        let mut row = vec![
            Cell::name(&s.function),
            Cell::path(&s.place),
            Cell::count(s.allocs),
            Cell::bytes(s.bytes),
            Cell::bytes(s.mean_size),
            Cell::bytes(s.max_size),
            Cell::count(s.reallocs),
            lifetime(s.lifetime_p50_ns),
            lifetime(s.lifetime_p99_ns),
            short,
            Cell::count(s.temporary),
            Cell::bytes(s.live_bytes_at_end),
            if s.peak_live_exact {
                Cell::bytes(s.peak_live_bytes)
            } else {
                Cell::number(s.peak_live_bytes as f64, format!("≥{}", Bytes(s.peak_live_bytes)))
            },
            Cell::bytes(s.bytes_at_peak),
            Cell::count(s.stacks as u64),
        ];
        if callers {
            row.push(Cell::location(&s.called_from));
        }
        row
    });
    t.write(out)
}
