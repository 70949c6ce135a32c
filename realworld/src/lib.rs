//! Real programs from crates.io, driven the way their own command lines
//! drive them, for pulse's tests and benchmarks to profile.
//!
//! The work is done by code nobody here wrote: jaq's interpreter
//! (`jaq-core`, `jaq-std`, `jaq-json`), ripgrep's walker and searcher
//! (`ignore`, `grep-searcher`, `grep-regex`) and pulldown-cmark. Each
//! binary of this crate runs the same programs under another global
//! allocator: `real_pulse` (pulse), `real_dhat` (dhat-rs) and
//! `real_system` (the system allocator, for baselines and heaptrack).
//!
//! ```text
//! real_pulse jq N          jq filters over N generated records (single-threaded)
//! real_pulse gen-tree DIR N    writes N source-like files under DIR
//! real_pulse grep DIR THREADS  searches DIR for a regex on THREADS threads
//! real_pulse markdown N    renders a generated document of N sections
//! ```
//!
//! `real_compare` runs `real_pulse` and `real_system` on them and prints
//! their peak resident memory and exit time side by side; `real_report`
//! reads a session as `pulse report` does, for the `peers` bench to time
//! against `heaptrack_print`.
//!
//! Inputs are generated deterministically, so a run's allocations are the
//! same from one run to the next (but for `grep`'s thread interleaving).

use std::fmt::Write as _;
use std::path::Path;

pub mod measure;
use std::sync::atomic::{AtomicU64, Ordering};

/// Runs the program `args[0]` with the rest of `args`; prints its result
/// on stdout. `Err` holds a usage message.
pub fn run(args: &[String]) -> Result<(), String> {
    let num = |i: usize, default: u64| -> Result<u64, String> {
        args.get(i).map_or(Ok(default), |a| a.parse().map_err(|_| format!("not a number: {a}")))
    };
    match args.first().map(String::as_str) {
        Some("jq") => println!("{}", jq(num(1, 20_000)? as usize)?),
        Some("gen-tree") => {
            let dir = args.get(1).ok_or("gen-tree DIR N")?;
            gen_tree(Path::new(dir), num(2, 2_000)? as usize).map_err(|e| e.to_string())?;
        }
        Some("grep") => {
            let dir = args.get(1).ok_or("grep DIR THREADS")?;
            println!("{}", grep(Path::new(dir), num(2, 4)? as usize));
        }
        Some("markdown") => println!("{}", markdown(num(1, 2_000)? as usize)),
        _ => {
            return Err(String::from(
                "usage: jq N | gen-tree DIR N | grep DIR THREADS | markdown N",
            ))
        }
    }
    // For `real_compare`, which times the exit from here.
    if std::env::var_os("REALWORLD_WORK_END").is_some() {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        eprintln!("work-end {}", now.map_or(0, |d| d.as_nanos()));
    }
    Ok(())
}

/// A small deterministic generator (xorshift), so inputs need no files.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn word(&mut self, out: &mut String) {
        const WORDS: [&str; 16] = [
            "alpha", "beta", "gamma", "delta", "market", "order", "quote", "index", "parse",
            "render", "buffer", "stream", "vector", "table", "cache", "thread",
        ];
        out.push_str(WORDS[self.below(16) as usize]);
    }
}

/// The JSON input of `jq`: an array of `n` records with nested arrays.
fn records(n: usize) -> String {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut s = String::from("[");
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        let mut name = String::new();
        rng.word(&mut name);
        let _ = write!(
            s,
            r#"{{"id":{i},"name":"{name}{i}","kind":{},"score":{}.{},"tags":["#,
            rng.below(7),
            rng.below(1000),
            rng.below(100)
        );
        for t in 0..1 + rng.below(5) {
            if t > 0 {
                s.push(',');
            }
            s.push('"');
            rng.word(&mut s);
            s.push('"');
        }
        s.push_str("]}");
    }
    s.push(']');
    s
}

/// The filters `jq` runs, one after another, over the records: selection,
/// object construction, string work, grouping and sorting, paths.
const FILTERS: [&str; 4] = [
    r#"map(select(.kind != 3) | {id, name: (.name | ascii_upcase), tags: (.tags | map(. + "!") | join(","))}) | length"#,
    r#"group_by(.kind) | map({kind: .[0].kind, n: length, best: (max_by(.score) | .name)}) | length"#,
    r#"[.[] | .tags[]] | unique | length"#,
    r#"[paths(type == "string")] | length"#,
];

/// Runs jaq's interpreter over `n` generated records; returns the filters'
/// outputs joined by spaces.
pub fn jq(n: usize) -> Result<String, String> {
    use jaq_core::load::{Arena, File, Loader};
    use jaq_core::{data, unwrap_valr, Compiler, Ctx, Vars};

    let text = records(n);
    let input = jaq_json::read::parse_single(text.as_bytes()).map_err(|e| format!("{e:?}"))?;
    let mut results = Vec::new();
    for code in FILTERS {
        let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
        let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader.load(&arena, File { code, path: () }).map_err(|e| format!("{e:?}"))?;
        let filter =
            Compiler::default().with_funs(funs).compile(modules).map_err(|e| format!("{e:?}"))?;
        let ctx = Ctx::<data::JustLut<jaq_json::Val>>::new(&filter.lut, Vars::new([]));
        for out in filter.id.run((ctx, input.clone())).map(unwrap_valr) {
            let v = out.map_err(|e| format!("{e:?}"))?;
            results.push(v.to_string());
        }
    }
    Ok(results.join(" "))
}

/// Writes `n` source-like text files under `dir`, in nested folders.
pub fn gen_tree(dir: &Path, n: usize) -> std::io::Result<()> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for i in 0..n {
        let sub = dir.join(format!("m{}", i % 37)).join(format!("s{}", i % 11));
        std::fs::create_dir_all(&sub)?;
        let mut text = String::new();
        for l in 0..20 + rng.below(200) {
            let _ = write!(text, "    fn ");
            rng.word(&mut text);
            let _ = writeln!(text, "_{l}(x: u64) -> u64 {{ x * {} }} // {}", rng.below(100), i);
        }
        std::fs::write(sub.join(format!("f{i}.rs")), text)?;
    }
    Ok(())
}

/// Searches every file under `dir` for a regex on `threads` threads, as
/// `rg -j THREADS 'fn (quote|order)_\d+'` does; returns the matching lines.
pub fn grep(dir: &Path, threads: usize) -> u64 {
    use grep_regex::RegexMatcher;
    use grep_searcher::sinks::UTF8;
    use grep_searcher::Searcher;

    let matcher = RegexMatcher::new(r"fn (quote|order)_\d+").expect("a valid pattern");
    let total = AtomicU64::new(0);
    ignore::WalkBuilder::new(dir).threads(threads.max(1)).build_parallel().run(|| {
        let matcher = matcher.clone();
        let total = &total;
        let mut searcher = Searcher::new();
        Box::new(move |entry| {
            let Ok(entry) = entry else { return ignore::WalkState::Continue };
            if entry.file_type().is_some_and(|t| t.is_file()) {
                let mut lines = Vec::new();
                let _ = searcher.search_path(
                    &matcher,
                    entry.path(),
                    UTF8(|n, line| {
                        lines.push(format!("{}:{n}:{line}", entry.path().display()));
                        Ok(true)
                    }),
                );
                total.fetch_add(lines.len() as u64, Ordering::Relaxed);
            }
            ignore::WalkState::Continue
        })
    });
    total.load(Ordering::Relaxed)
}

/// Renders a generated CommonMark document of `n` sections to HTML;
/// returns the HTML's length.
pub fn markdown(n: usize) -> usize {
    let mut rng = Rng(0x5851_f42d_4c95_7f2d);
    let mut doc = String::new();
    for i in 0..n {
        let _ = writeln!(doc, "## Section {i}\n");
        for _ in 0..1 + rng.below(4) {
            for _ in 0..5 + rng.below(30) {
                match rng.below(6) {
                    0 => doc.push('*'),
                    1 => doc.push('`'),
                    2 => doc.push_str("[link](https://example.invalid/"),
                    _ => {}
                }
                rng.word(&mut doc);
                doc.push(' ');
            }
            doc.push_str("\n\n");
        }
        let _ = writeln!(doc, "- item one\n- item **two**\n\n| a | b |\n|---|---|\n| {i} | x |\n");
    }
    let parser = pulldown_cmark::Parser::new_ext(&doc, pulldown_cmark::Options::all());
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, parser);
    html.len()
}
