//! `sample` mode on a real program (jaq's interpreter, built from crates.io):
//! its per-site estimates add up to the exact totals and agree with what
//! `full` mode records for the same run.
//!
//! The sampler marks a point every `interval` bytes on average (an
//! exponential gap), and an allocation of `s` bytes is sampled when it
//! holds one, with chance `1 − exp(−s / interval)`; weighting each sampled
//! one by the inverse makes a site's sum unbiased, with a relative standard
//! error of about `√(interval / B)` for a site of `B` bytes in blocks much
//! smaller than the interval. The test picks the interval for which a site
//! of 1 % of the bytes has a standard error of 2.5 %, so that 10 % is four
//! of them.

use std::collections::BTreeMap;
use std::process::Command;

use pulse_analysis::Profile;
use pulse_tests::temp_session;

fn jq(mode: &str, sample_bytes: u64) -> Profile {
    let path = temp_session(&format!("jq-{mode}"));
    let out = Command::new(env!("CARGO_BIN_EXE_realworld"))
        .args(["jq", "400"])
        .env("PULSE_OUT", &path)
        .env("PULSE_ALLOC", mode)
        .env("PULSE_SAMPLE_BYTES", sample_bytes.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Profile::load(&path).unwrap()
}

/// Bytes, allocations (with reallocations) and bytes at the peak, by
/// function and line.
fn by_location(p: &Profile) -> BTreeMap<String, (u64, u64, u64)> {
    let mut m: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for (id, s) in &p.sites {
        let key = p.symbols.location(*id).map_or_else(|| format!("site {id}"), |f| f.display(""));
        let e = m.entry(key).or_default();
        e.0 += s.bytes;
        e.1 += s.allocs + s.reallocs;
        e.2 += s.bytes_at_peak;
    }
    m
}

#[test]
fn sampled_estimates_add_up_and_match_full_tracking_within_ten_percent() {
    let full = jq("full", 1);
    let exact = by_location(&full);
    let total = full.memory.bytes_allocated;
    let big: Vec<(&String, u64)> =
        exact.iter().filter(|(_, v)| v.0 * 100 >= total).map(|(k, v)| (k, v.0)).collect();
    assert!(big.len() >= 4, "a few sites above 1 %: {big:?}");
    // √(interval / (total / 100)) = 0.025
    let interval = ((total as f64 / 100.0) * 0.025 * 0.025).max(1.0) as u64;
    let sampled = jq("sample", interval);
    assert_eq!(
        (sampled.memory.allocs, sampled.memory.bytes_allocated),
        (full.memory.allocs, full.memory.bytes_allocated),
        "the totals are exact in both modes"
    );
    assert!(sampled.stacked_events < full.stacked_events / 2, "stacks are a sample");
    // The rows add up to the exact totals (each rounded on its own).
    let rows = sampled.sites.len() as u64;
    let sum_bytes: u64 = sampled.sites.values().map(|s| s.bytes).sum();
    let sum_allocs: u64 = sampled.sites.values().map(|s| s.allocs).sum();
    assert!(sum_bytes.abs_diff(total) <= rows, "{sum_bytes} of {total}");
    assert!(sum_allocs.abs_diff(full.memory.allocs) <= rows, "{sum_allocs}");
    let estimate = by_location(&sampled);
    let mut off = Vec::new();
    for (loc, bytes) in &big {
        let est = estimate.get(*loc).map_or(0, |v| v.0);
        let err = est as f64 / *bytes as f64 - 1.0;
        if err.abs() > 0.10 {
            off.push(format!("{loc}: {bytes} B exact, {est} B estimated ({:+.1} %)", err * 100.0));
        }
    }
    assert!(off.is_empty(), "interval {interval} B:\n{}", off.join("\n"));
    // The heap at its peak: each site's estimated from its sampled blocks
    // live there, the rest of the exact peak left to the unsampled
    // remainder, which had nearly all of it when a site's figures were its
    // sampled blocks' alone.
    assert_eq!(sampled.memory.peak_bytes, full.memory.peak_bytes, "the same program, exactly");
    let peak_sum: u64 = sampled.sites.values().map(|s| s.bytes_at_peak).sum();
    assert_eq!(peak_sum, sampled.memory.peak_bytes, "the estimates add up to the peak");
    let rest = sampled.sites.get(&pulse_format::NO_SITE).map_or(0, |s| s.bytes_at_peak);
    assert!(rest * 5 <= peak_sum, "the estimates leave {rest} B of the peak unexplained");
    let at_peak = |p: &Profile| -> BTreeMap<String, u64> {
        by_location(p).into_iter().map(|(k, v)| (k, v.2)).collect()
    };
    let (exact_peak, estimated_peak) = (at_peak(&full), at_peak(&sampled));
    let peak = full.memory.peak_bytes;
    let mut off = Vec::new();
    let compared: Vec<_> = exact_peak.iter().filter(|(_, &b)| b * 10 >= peak).collect();
    assert!(compared.len() >= 2, "lines with a tenth of the peak: {compared:?}");
    for (loc, &bytes) in compared.iter().copied() {
        let est = estimated_peak.get(loc).copied().unwrap_or(0);
        let err = est as f64 / bytes as f64 - 1.0;
        if err.abs() > 0.15 {
            off.push(format!("{loc}: {bytes} B exact, {est} B estimated ({:+.1} %)", err * 100.0));
        }
    }
    assert!(off.is_empty(), "at the peak of {peak} B, interval {interval} B:\n{}", off.join("\n"));
    // The report says the sites are estimates.
    let warnings = pulse_analysis::report(&sampled, &Default::default()).warnings;
    assert!(
        warnings.iter().any(|w| w.contains("estimates from a byte-weighted sample")),
        "{warnings:?}"
    );
    // The interpreter's short-lived blocks are found in both modes, the
    // sampled counts estimates of the exact ones: each sampled block
    // counted as the blocks it stands for. Added up over the findings: a
    // dependency's line is gathered under the program's line that calls
    // it where its stacks reach that far, which in an unoptimised build,
    // its stacks deeper than the depth kept, a sample's may not.
    let (exact, exact_n) = short_lived(&full);
    let (estimate, estimate_n) = short_lived(&sampled);
    assert!(estimate.iter().all(|r| r.evidence.starts_with("about ")), "{estimate:#?}");
    let at = |recs: &[pulse_analysis::Recommendation]| {
        recs.iter().any(|r| r.location.contains("box_once") || r.evidence.contains("box_once"))
    };
    assert!(at(&exact) && at(&estimate), "the interpreter's busiest line: {estimate:#?}");
    let err = estimate_n as f64 / exact_n as f64 - 1.0;
    assert!(err.abs() <= 0.2, "{exact_n} exact, {estimate_n} estimated:\n{estimate:#?}");
}

/// The short-lived findings, and the blocks they count freed soon, added
/// up: within a millisecond, far from the lifetimes of the interpreter's
/// temporaries (a few µs, in an unoptimised build tens), which the two
/// runs compared here, as separate processes, do not share to the µs.
fn short_lived(p: &Profile) -> (Vec<pulse_analysis::Recommendation>, u64) {
    let mut o = pulse_analysis::RecommendOptions::default();
    o.short_lived_ns = 1_000_000;
    let recs: Vec<_> = pulse_analysis::recommend(p, &o)
        .into_iter()
        .filter(|r| r.category == pulse_analysis::Category::ShortLivedAllocation)
        .collect();
    let count = |r: &pulse_analysis::Recommendation| -> u64 {
        let n = r.evidence.trim_start_matches("about ").split(' ').next().unwrap();
        n.parse().unwrap_or_else(|_| panic!("{r:#?}"))
    };
    let total = recs.iter().map(count).sum();
    assert!(!recs.is_empty(), "a short-lived finding");
    (recs, total)
}

/// Planted program `mode`'s short-lived findings, recorded in `mode` of
/// pulse (`full`, or `sample` one stack per 64 KiB on average).
fn planted_short_lived(mode: &str, alloc: &str) -> Vec<pulse_analysis::Recommendation> {
    let path = temp_session(&format!("planted-{mode}-{alloc}"));
    let out = Command::new(env!("CARGO_BIN_EXE_planted"))
        .arg(mode)
        .env("PULSE_OUT", &path)
        .env("PULSE_ALLOC", alloc)
        .env("PULSE_SAMPLE_BYTES", "65536")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let p = Profile::load(&path).unwrap();
    pulse_analysis::recommend(&p, &Default::default())
        .into_iter()
        .filter(|r| r.category == pulse_analysis::Category::ShortLivedAllocation)
        .collect()
}

#[test]
fn a_line_of_small_and_large_blocks_is_judged_on_its_blocks_not_its_sample() {
    // The sample is mostly the large blocks, one in 64 of the line's: each
    // sampled block counts for the blocks it stands for.
    // One in 64 of 16 KiB, and one in 4 of 1 KiB (then three in four of
    // the blocks freed soon, or one in four).
    for (freed, kept) in [("mixfreed", "mixkept"), ("mixfreed4", "mixkept4")] {
        for alloc in ["full", "sample"] {
            let found = planted_short_lived(freed, alloc);
            assert_eq!(found.len(), 1, "{freed} {alloc}: {found:#?}");
            assert!(found[0].location.starts_with("planted::mixed (tests/src/bin/planted.rs:"));
            let found = planted_short_lived(kept, alloc);
            assert!(found.is_empty(), "{kept} {alloc}: the small blocks live on: {found:#?}");
        }
    }
}
