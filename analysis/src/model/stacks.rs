//! The stacks the flamegraphs and folded exports weigh: one frame model,
//! typed (each frame a name, whole), that every stack writer reads.

use std::collections::{BTreeMap, HashMap};

use crate::model::profile::Profile;

/// What a folded-stack export weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoldedKind {
    /// Self time of each call-tree path, in nanoseconds.
    Time,
    /// Bytes allocated at each allocation stack.
    AllocBytes,
    /// Allocations (and reallocations) at each allocation stack.
    AllocCount,
    /// Bytes still live at the end, by allocation stack.
    Leaks,
}

/// The stacks `kind` weighs, each with its frames' names outermost first:
/// one per call-tree path (its self time) or per allocation stack (user
/// frames only, `(no stack)` where none was captured), the same stack's
/// weights added up, zero weights left out, ordered by their frames.
///
/// The flamegraph is drawn from these, and the folded export writes them:
/// each frame a name whole, whatever it holds.
pub(crate) fn stacks(profile: &Profile, kind: FoldedKind) -> Vec<(Vec<String>, u64)> {
    let mut stacks: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    match kind {
        FoldedKind::Time => {
            let nodes = &profile.call_tree.nodes;
            let to = time_paths(profile);
            // Each scope's name once, whatever the nodes it has.
            let mut names: HashMap<u32, String> = HashMap::new();
            for n in nodes.iter().skip(1) {
                names.entry(n.scope).or_insert_with(|| profile.display_name(n.scope));
            }
            // Each path's self time, and that of the paths beyond the budget
            // within it.
            let mut weights = vec![0u64; nodes.len()];
            for (i, n) in nodes.iter().enumerate().skip(1) {
                if let Some(t) = to[i] {
                    weights[t] = weights[t].saturating_add(n.self_ns);
                }
            }
            for (i, &weight) in weights.iter().enumerate().skip(1) {
                if to[i] != Some(i) {
                    continue;
                }
                let mut path = Vec::new();
                let mut at = Some(i);
                while let Some(j) = at.filter(|&j| j != 0) {
                    path.push(names[&nodes[j].scope].clone());
                    at = nodes[j].parent;
                }
                path.reverse();
                let e = stacks.entry(path).or_default();
                *e = e.saturating_add(weight);
            }
        }
        _ => {
            for (id, s) in &profile.sites {
                let weight = match kind {
                    FoldedKind::AllocBytes => s.bytes,
                    FoldedKind::AllocCount => s.allocs.saturating_add(s.reallocs),
                    _ => s.live_bytes_at_end,
                };
                let mut stack: Vec<String> =
                    profile.symbols.user_stack(*id).into_iter().map(|f| f.function).collect();
                if stack.is_empty() {
                    stack.push(String::from("(no stack)"));
                }
                stack.reverse();
                let e = stacks.entry(stack).or_default();
                *e = e.saturating_add(weight);
            }
        }
    }
    stacks.into_iter().filter(|(_, w)| *w > 0).collect()
}

/// The call-tree paths the folded stacks and the flamegraph by time hold:
/// for each node, the node its self time is drawn in — itself, or the
/// nearest enclosing node within the names' budget (see
/// [`crate::STACK_TEXT_PER_BYTE`]: each path holds the names of every node
/// on it, and a tree of a few thousand nodes 128 deep under a long name
/// would hold gigabytes of them); `None` for the root, and for an
/// outermost scope whose own name is past the budget.
fn time_paths(profile: &Profile) -> Vec<Option<usize>> {
    let nodes = &profile.call_tree.nodes;
    let mut left = crate::model::sites::text_budget(profile.decoded_bytes);
    let mut cost = vec![0u64; nodes.len()];
    let mut to: Vec<Option<usize>> = vec![None; nodes.len()];
    // A node's parent comes before it.
    for (i, n) in nodes.iter().enumerate().skip(1) {
        let parent = n.parent.filter(|&p| p < i).unwrap_or(0);
        let parent_kept = parent == 0 || to[parent] == Some(parent);
        let c = cost[parent]
            .saturating_add(display_len(profile, n.scope))
            .saturating_add(crate::model::sites::FRAME_COST);
        if parent_kept && c <= left {
            left -= c;
            cost[i] = c;
            to[i] = Some(i);
        } else {
            to[i] = to[parent];
        }
    }
    to
}

/// The length of [`Profile::display_name`] of `scope`, without making it.
fn display_len(profile: &Profile, scope: u32) -> u64 {
    let len = match profile.scopes.get(&scope) {
        Some(s) if !s.category.is_empty() => s.category.len() + 2 + s.name.len(),
        Some(s) => s.name.len(),
        None => "scope #".len() + 10,
    };
    len as u64
}

/// How many call-tree nodes the folded stacks and the flamegraph by time
/// leave out for the names' budget (their time is in an enclosing path's),
/// if any.
pub(crate) fn paths_over_budget(profile: &Profile) -> Option<usize> {
    let to = time_paths(profile);
    let n = to.iter().enumerate().skip(1).filter(|(i, t)| **t != Some(*i)).count();
    (n > 0).then_some(n)
}
