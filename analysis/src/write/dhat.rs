//! DHAT's JSON (`dhat-heap.json`), which DHAT's viewer opens, for users
//! of dhat-rs.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use crate::model::profile::Profile;

/// Writes `profile` as DHAT's JSON (`dhat-heap.json`), which DHAT's viewer
/// (`dh_view.html`) opens, as it opens dhat-rs's: one program point per
/// distinct stack, with its totals, its own peak, its share of the global
/// peak and what was live at the end; times in microseconds.
///
/// The viewer refuses a file in which two program points have the same
/// frames, and sites whose stacks differ only in frames the report leaves
/// out (the allocator's plumbing, two addresses on one line) display the
/// same: they are one program point, their totals summed. The peak of such
/// a point (`mb`, `mbk`) is the largest of its sites' own peaks, as for a
/// report row that gathers several stacks: the sites' peaks may fall at
/// different times, so their sum would overstate it.
pub fn dhat(profile: &Profile, out: &mut dyn Write) -> io::Result<()> {
    let root = crate::model::sites::project_root(&profile.meta.program);
    let mut ftbl: Vec<String> = vec![String::from("[root]")];
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let us = |ticks: u64| (ticks as f64 / profile.ticks_per_ns / 1000.0) as u64;
    // Program points by their frames, in the order their first site comes.
    let mut points: Vec<(Vec<usize>, [u64; 9])> = Vec::new();
    let mut by_frames: HashMap<Vec<usize>, usize> = HashMap::new();
    for (id, s) in &profile.sites {
        let mut fs = Vec::new();
        for f in profile.symbols.user_stack(*id) {
            let name = f.display(&root);
            let next = ftbl.len();
            let i = *index.entry(name.clone()).or_insert(next);
            if i == next {
                ftbl.push(name);
            }
            fs.push(i);
        }
        let k = *by_frames.entry(fs.clone()).or_insert_with(|| {
            points.push((fs, [0; 9]));
            points.len() - 1
        });
        let t = &mut points[k].1;
        let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        add(&mut t[0], s.bytes);
        add(&mut t[1], s.allocs.saturating_add(s.reallocs));
        add(&mut t[2], us(s.lifetimes.sum()));
        t[3] = t[3].max(s.peak_live_bytes);
        t[4] = t[4].max(s.peak_live_blocks);
        add(&mut t[5], s.bytes_at_peak);
        add(&mut t[6], s.blocks_at_peak);
        add(&mut t[7], s.live_bytes_at_end);
        add(&mut t[8], s.live_blocks_at_end);
    }
    let pps: Vec<_> = points
        .into_iter()
        .map(|(fs, t)| {
            serde_json::json!({
                "tb": t[0], "tbk": t[1], "tl": t[2], "mb": t[3], "mbk": t[4],
                "gb": t[5], "gbk": t[6], "eb": t[7], "ebk": t[8], "fs": fs,
            })
        })
        .collect();
    let mut cmd = profile.meta.program.clone();
    for a in &profile.meta.args {
        cmd.push(' ');
        cmd.push_str(a);
    }
    let doc = serde_json::json!({
        "dhatFileVersion": 2,
        "mode": "rust-heap",
        "verb": "Allocated",
        "bklt": true,
        "bkacc": false,
        "tu": "µs",
        "Mtu": "s",
        "tuth": 10,
        "cmd": cmd,
        "pid": profile.meta.pid,
        "tg": profile.memory.peak_at_ns / 1000,
        "te": profile.duration_ns / 1000,
        "pps": pps,
        "ftbl": ftbl,
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}
