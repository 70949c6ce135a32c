//! Blocks still live when the session ended, by allocation site, told
//! apart: a site whose live count was still climbing is a leak; one that
//! filled early and held is a long-lived cache.

use crate::history::{trend, Trend};
use crate::profile::Profile;
use crate::sites::{project_root, Frame};

/// One allocation site's blocks live at the end.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Leak {
    /// The site (one distinct stack).
    pub site: u32,
    /// The innermost frame in the program's own code.
    pub function: String,
    /// Its `file:line`.
    pub place: String,
    /// The stack with pulse's and the runtime's frames trimmed, innermost first.
    pub stack: Vec<String>,
    /// Blocks live at the end.
    pub blocks: u64,
    /// Their bytes.
    pub bytes: u64,
    /// How the site's live count moved over the session.
    pub trend: Trend,
    /// The site's live blocks at evenly spaced moments, the end last.
    pub history: Vec<u32>,
}

impl Leak {
    /// Whether this is a leak rather than a long-lived cache.
    pub fn is_leak(&self) -> bool {
        self.trend == Trend::Growing
    }
}

/// Every site with blocks live at the end, most bytes first.
pub fn leaks(profile: &Profile) -> Vec<Leak> {
    let root = project_root(&profile.meta.program);
    let mut out: Vec<Leak> = profile
        .sites
        .iter()
        .filter(|(_, s)| s.live_blocks_at_end > 0)
        .map(|(&site, s)| {
            let history = profile.site_history.get(&site).cloned().unwrap_or_default();
            let at = profile.symbols.location(site).unwrap_or_else(|| Frame {
                function: if site == 0 {
                    "(no stack captured)".into()
                } else {
                    format!("site #{site}")
                },
                file: String::new(),
                line: 0,
            });
            Leak {
                site,
                function: at.function.clone(),
                place: if at.file.is_empty() { String::new() } else { at.place(&root) },
                stack: profile.symbols.user_stack(site).iter().map(|f| f.display(&root)).collect(),
                blocks: s.live_blocks_at_end,
                bytes: s.live_bytes_at_end,
                trend: trend(&history),
                history,
            }
        })
        .collect();
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.site.cmp(&b.site)));
    out
}
