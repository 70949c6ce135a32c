//! The report's call tree on real sessions (the examples, run as
//! processes): no node vanishes without a trace, and a node that took a
//! share of the session's time is shown however many threads were busy.

use std::path::Path;
use std::process::Command;

use pulse_analysis::{report, Profile, ReportOptions};
use pulse_tests::temp_session;

fn run(bin: &str, args: &[&str]) -> Profile {
    let name = Path::new(bin).file_name().unwrap().to_string_lossy().into_owned();
    let path = temp_session(&name);
    let out = Command::new(bin).args(args).env("PULSE_OUT", &path).output().unwrap();
    assert!(out.status.success(), "{bin}: {}", String::from_utf8_lossy(&out.stderr));
    Profile::load(&path).unwrap()
}

/// Every node of the call tree is a row or counted in its parent's
/// `omitted` (or the report's, for the outermost), its time with it; every
/// node of 1 % of the session's duration or more is a row.
fn check(name: &str, p: &Profile) {
    let r = report(p, &ReportOptions::default());
    let nodes = &p.call_tree.nodes;
    // The rows' totals and their omissions add up, level by level, to the tree's.
    let roots: u64 = p.call_tree.roots().iter().map(|&n| nodes[n].total_ns).sum();
    let shown: u64 = r.tree.iter().filter(|t| t.depth == 0).map(|t| t.total_ns).sum();
    let hidden = r.tree_omitted.map_or(0, |o| o.total_ns);
    assert_eq!(shown + hidden, roots, "{name}: outermost scopes");
    let rows = p.call_tree.roots().len();
    let counted =
        r.tree.iter().filter(|t| t.depth == 0).count() + r.tree_omitted.map_or(0, |o| o.count);
    assert_eq!(counted, rows, "{name}");
    for (i, row) in r.tree.iter().enumerate() {
        let below: Vec<_> = r.tree[i + 1..]
            .iter()
            .take_while(|t| t.depth > row.depth)
            .filter(|t| t.depth == row.depth + 1)
            .collect();
        let children: u64 =
            below.iter().map(|t| t.total_ns).sum::<u64>() + row.omitted.map_or(0, |o| o.total_ns);
        // A node's children take no longer than it (each is inside it).
        assert!(children <= row.total_ns, "{name}: {} {children} > {}", row.name, row.total_ns);
    }
    let floor = p.duration_ns / 100;
    for n in nodes {
        if n.total_ns >= floor && n.parent.is_some() {
            let scope = p.display_name(n.scope);
            assert!(
                r.tree.iter().any(|t| t.name == scope),
                "{name}: {scope} ({} ns, {:.1} % of the session) is not in the tree",
                n.total_ns,
                100.0 * n.total_ns as f64 / p.duration_ns as f64
            );
        }
    }
}

#[test]
fn the_tours_call_tree_hides_nothing_silently() {
    let p = run(env!("CARGO_BIN_EXE_tour"), &["20000"]);
    check("tour", &p);
    let r = report(&p, &ReportOptions::default());
    assert!(r.tree.iter().any(|t| t.name == "Data::BuildIndex"), "{:#?}", r.tree);
}

#[test]
fn the_threads_call_tree_hides_nothing_silently() {
    let p = run(env!("CARGO_BIN_EXE_threads"), &["150"]);
    check("threads", &p);
}
