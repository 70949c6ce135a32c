//! The same job written twice, and `pulse diff` on the two sessions.
//!
//! The job: the most frequent words of a corpus of support tickets. The
//! first version is what gets written under a deadline: a `String` per word,
//! a key cloned per count, and a hand-rolled insertion sort of every distinct
//! word. The second borrows the words from the text, lower-cases into one
//! reused buffer, allocates a key only for a word it has not seen, and
//! selects the top words instead of sorting them all. Each version runs in
//! its own process with its own session, as two builds of a program would:
//!
//!     cargo run --release --example before_after             # both, then the diff
//!     cargo run --release --example before_after -- before   # one version, one session
//!
//! `pulse diff BEFORE AFTER --fail-on-regression` passes; swapped, it fails.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use pulse_examples::{session_path, Rng};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

/// The job's steps; both versions time the same ones.
#[derive(pulse::Operation)]
enum Job {
    #[category(name = "WordCount", description = "Counting the words of a corpus")]
    Tokenize,
    #[category(name = "WordCount")]
    Count,
    #[category(name = "WordCount")]
    Rank,
}

/// Words listed in the result.
const TOP: usize = 20;

/// A corpus of `docs` tickets over a vocabulary of a few thousand words,
/// drawn with a skew (a few words are very common), capitalised at the start
/// of each sentence.
fn corpus(docs: usize) -> Vec<String> {
    let mut rng = Rng::new(2024);
    let syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "qua", "pri", "sto"];
    let vocabulary: Vec<String> = (0..3000)
        .map(|i| {
            let mut w = String::new();
            let mut n = i + 1;
            while n > 0 {
                w.push_str(syllables[n % syllables.len()]);
                n /= syllables.len();
            }
            w
        })
        .collect();
    (0..docs)
        .map(|_| {
            let mut doc = String::new();
            for s in 0..8 {
                for w in 0..12 {
                    // The product of two uniform draws: small ranks are common.
                    let rank = (rng.below(3000) * rng.below(3000) / 3000) as usize;
                    let word = &vocabulary[rank];
                    if w == 0 {
                        doc.push_str(&word[..1].to_uppercase());
                        doc.push_str(&word[1..]);
                    } else {
                        doc.push(' ');
                        doc.push_str(word);
                    }
                }
                doc.push_str(if s % 3 == 2 { "? " } else { ". " });
            }
            doc
        })
        .collect()
}

/// Before: a `String` per word, a clone per count, an insertion sort.
fn before(docs: &[String]) -> Vec<(String, usize)> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for doc in docs {
        let words: Vec<String> = pulse::profile!(Job::Tokenize, {
            doc.split_whitespace()
                .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
                .collect()
        });
        pulse::profile!(Job::Count, {
            for word in &words {
                *counts.entry(word.clone()).or_insert(0) += 1;
            }
        });
    }
    pulse::profile!(Job::Rank, {
        let mut ranked: Vec<(String, usize)> =
            counts.iter().map(|(w, n)| (w.clone(), *n)).collect();
        // Insertion sort, most frequent first, ties by word.
        for i in 1..ranked.len() {
            let mut j = i;
            while j > 0
                && (ranked[j].1 > ranked[j - 1].1
                    || (ranked[j].1 == ranked[j - 1].1 && ranked[j].0 < ranked[j - 1].0))
            {
                ranked.swap(j, j - 1);
                j -= 1;
            }
        }
        ranked.truncate(TOP);
        ranked
    })
}

/// After: words borrowed from the text, one reused buffer, a key allocated
/// only for a new word, the top words selected rather than all sorted.
fn after(docs: &[String]) -> Vec<(String, usize)> {
    let mut counts: HashMap<String, usize> = HashMap::with_capacity(4096);
    let mut words: Vec<&str> = Vec::with_capacity(128);
    let mut lower = String::with_capacity(32);
    for doc in docs {
        pulse::profile!(Job::Tokenize, {
            words.clear();
            words.extend(
                doc.split_whitespace().map(|w| w.trim_matches(|c: char| !c.is_alphanumeric())),
            );
        });
        pulse::profile!(Job::Count, {
            for word in &words {
                lower.clear();
                lower.push_str(word);
                lower.make_ascii_lowercase();
                match counts.get_mut(lower.as_str()) {
                    Some(n) => *n += 1,
                    None => {
                        counts.insert(lower.clone(), 1);
                    }
                }
            }
        });
    }
    pulse::profile!(Job::Rank, {
        let mut ranked: Vec<(&String, usize)> = counts.iter().map(|(w, n)| (w, *n)).collect();
        let order = |a: &(&String, usize), b: &(&String, usize)| b.1.cmp(&a.1).then(a.0.cmp(b.0));
        if ranked.len() > TOP {
            ranked.select_nth_unstable_by(TOP, order);
            ranked.truncate(TOP);
        }
        ranked.sort_unstable_by(order);
        ranked.into_iter().map(|(w, n)| (w.clone(), n)).collect()
    })
}

/// Runs one version in this process, writing its session.
fn run(version: &str, docs: usize) -> Result<(), Box<dyn std::error::Error>> {
    // The input is not part of the job: made before the session starts (unless
    // `PULSE_OUT` started one when the program loaded), freed after it ends.
    let corpus = corpus(docs);
    let path = session_path(&format!("before_after-{version}"));
    let session = pulse::Session::builder().output(&path).start()?;
    let top = if version == "before" { before(&corpus) } else { after(&corpus) };
    let words: Vec<String> = top.iter().take(5).map(|(w, n)| format!("{w} ({n})")).collect();
    println!("{version}: top words {}", words.join(", "));
    drop((top, words));
    session.finish()?;
    drop(corpus);
    Ok(())
}

/// Runs both versions as child processes, then prints the diff and the
/// regression gate's verdict both ways.
fn both(docs: usize) -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let mut paths = Vec::new();
    for version in ["before", "after"] {
        // Without `PULSE_OUT` the child starts its session in code, after
        // building its input, and writes it where `session_path` says.
        let status = Command::new(&exe)
            .args([version, &docs.to_string()])
            .env_remove(pulse::ENV_OUT)
            .status()?;
        let path = Path::new("target").join("pulse").join(format!("before_after-{version}.pulse"));
        if !status.success() {
            return Err(format!("the {version} version failed: {status}").into());
        }
        paths.push(path);
    }
    let load = |p: &Path| pulse_analysis::Profile::load(p);
    let (b, a) = (load(&paths[0])?, load(&paths[1])?);
    let opts = pulse_analysis::DiffOptions::default();
    let d = pulse_analysis::diff(&b, &a, &opts);
    println!();
    d.render_width(&mut std::io::stdout().lock(), 10, pulse_analysis::Width::default())?;
    let back = pulse_analysis::diff(&a, &b, &opts);
    println!();
    println!(
        "regression gate: before → after {}, after → before {}",
        if d.regressions == 0 { "passes" } else { "FAILS" },
        if back.regressions == 0 { "passes" } else { "FAILS" }
    );
    println!(
        "Same from the command line:  cargo run --release -p pulse-cli -- diff {} {} --fail-on-regression",
        paths[0].display(),
        paths[1].display()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let version = args.next();
    let docs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4000);
    match version.as_deref() {
        Some(v @ ("before" | "after")) => run(v, docs),
        None | Some("both") => both(docs),
        Some(other) => Err(format!("unknown version {other}: before, after or both").into()),
    }
}
