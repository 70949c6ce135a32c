//! The HTML report (`pulse_analysis::html`) as a document: every name from
//! the session is text, never markup — each `<` of the page opens one of
//! the page's own elements, with only its own attributes, and the page has
//! one script — and its size stays under `MAX_HTML_BYTES` however large the
//! session, what is left out being said. (`tests/tests/browser.rs` opens
//! these pages in Chromium and clicks through them.)

#[path = "support/names.rs"]
mod names;

use std::collections::BTreeSet;

use names::{hostile, plain, session, shown, PAYLOAD};
use pulse_analysis::format::{
    AllocMode, ChunkEncoder, ClockInfo, Metadata, Record, Trailer, Writer,
};
use pulse_analysis::{Profile, ReportOptions, HTML_ROWS, MAX_HTML_BYTES};

/// The HTML report of `profile` with `opts`.
fn page(profile: &Profile, opts: &ReportOptions) -> String {
    let report = pulse_analysis::report(profile, opts);
    let mut out = Vec::new();
    pulse_analysis::html(profile, &report, &mut out).unwrap();
    String::from_utf8(out).expect("UTF-8")
}

/// The options of `pulse report --html`: [`HTML_ROWS`] rows a table.
fn html_options() -> ReportOptions {
    let mut o = ReportOptions::default();
    o.top = HTML_ROWS;
    o
}

/// The elements the page writes, its own and its SVGs'.
const ELEMENTS: &[&str] = &[
    "!DOCTYPE",
    "html",
    "head",
    "meta",
    "link",
    "title",
    "style",
    "body",
    "header",
    "h1",
    "h2",
    "h3",
    "code",
    "dl",
    "div",
    "dt",
    "dd",
    "small",
    "p",
    "ul",
    "li",
    "strong",
    "nav",
    "a",
    "main",
    "section",
    "input",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "span",
    "br",
    "wbr",
    "q",
    "figure",
    "figcaption",
    "footer",
    "script",
    "svg",
    "g",
    "rect",
    "text",
    "polygon",
    "polyline",
    "line",
    "circle",
];

/// The attributes it writes.
const ATTRIBUTES: &[&str] = &[
    "html",
    "lang",
    "charset",
    "http-equiv",
    "content",
    "name",
    "rel",
    "href",
    "class",
    "id",
    "type",
    "placeholder",
    "aria-label",
    "hidden",
    "tabindex",
    "title",
    "data-v",
    "data-n",
    "data-x",
    "data-w",
    "xmlns",
    "width",
    "height",
    "viewBox",
    "font-family",
    "font-size",
    "fill",
    "x",
    "y",
    "text-anchor",
    "visibility",
    "cursor",
    "rx",
    "points",
    "fill-opacity",
    "stroke",
    "stroke-width",
    "x1",
    "y1",
    "x2",
    "y2",
    "cx",
    "cy",
    "r",
    "dominant-baseline",
];

/// Every tag of `html` as `(name, attributes)`, the contents of `<script>`
/// and `<style>` skipped. Attribute values are quoted and hold no quote
/// (the page escapes them), so a tag ends at the first `>` after its
/// attributes.
fn tags(html: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        let end = rest.find(|c: char| c.is_whitespace() || c == '>' || c == '/').unwrap();
        let end = if end == 0 && rest.starts_with('/') { 0 } else { end };
        if rest.starts_with('/') {
            // A closing tag: its name, nothing else.
            let close = rest.find('>').unwrap();
            let name = &rest[1..close];
            assert!(ELEMENTS.contains(&name), "closing tag {name:?}");
            rest = &rest[close + 1..];
            continue;
        }
        let name = rest[..end].to_owned();
        let mut attrs = Vec::new();
        let mut tag = &rest[end..];
        loop {
            tag = tag.trim_start();
            if let Some(t) = tag.strip_prefix('>').or_else(|| tag.strip_prefix("/>")) {
                rest = t;
                break;
            }
            let stop = tag.find(|c: char| c == '=' || c == '>' || c.is_whitespace()).unwrap();
            attrs.push(tag[..stop].to_owned());
            tag = &tag[stop..];
            if let Some(t) = tag.strip_prefix("=\"") {
                let close = t.find('"').unwrap();
                assert!(!t[..close].contains('<'), "a `<` in {name}'s value {:?}", &t[..close]);
                tag = &t[close + 1..];
            }
        }
        if name == "script" || name == "style" {
            let close = rest.find(&format!("</{name}>")).unwrap();
            rest = &rest[close..];
        }
        out.push((name, attrs));
    }
    out
}

/// Every `<` of the page opens one of its own elements with its own
/// attributes (none an event handler); there is one script, and a
/// Content-Security-Policy that names it.
fn assert_only_the_pages_markup(what: &str, html: &str) {
    let tags = tags(html);
    for (name, attrs) in &tags {
        assert!(ELEMENTS.contains(&name.as_str()), "{what}: element {name:?}");
        for a in attrs {
            assert!(ATTRIBUTES.contains(&a.as_str()), "{what}: attribute {a:?} of {name}");
        }
    }
    let scripts = tags.iter().filter(|(n, _)| n == "script").count();
    assert_eq!(scripts, 1, "{what}: scripts");
    assert!(html.contains(r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'sha256-"#));
    assert!(!html.chars().any(|c| c.is_control() && c != '\n'), "{what}: a control character");
}

#[test]
fn names_are_text_and_the_page_its_own_markup() {
    for (what, name) in [("plain", plain as fn(&str) -> String), ("hostile", hostile)] {
        let p = Profile::read(&session(name, 0)[..]).expect("the session reads");
        let html = page(&p, &html_options());
        assert_only_the_pages_markup(what, &html);
        let mut tree = html_options();
        tree.tree_min_share = 0.0;
        assert_only_the_pages_markup(what, &page(&p, &tree));
    }
    // The hostile names are there, escaped: the command line whole; in
    // the tables and frames shortened to fit, their markup as entities.
    let p = Profile::read(&session(hostile, 0)[..]).unwrap();
    let html = page(&p, &html_options());
    let escaped = |s: &str| {
        shown(s)
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    };
    assert!(html.contains(&escaped(&names::program(hostile))), "no escaped program");
    assert!(html.contains(&escaped(&hostile("--arg"))), "no escaped argument");
    // The payload's start, up to its first `/` (after which a table cell
    // allows a line break: `<wbr>`).
    let start: String = escaped(PAYLOAD).chars().take_while(|c| *c != '/').collect();
    let cells = html.matches(&format!("<td>app::<wbr>leaf{start}")).count();
    assert!(cells > 0, "no escaped function name in a table");
    let frames = html.matches(&format!(r#"data-n="app::outer{start}"#)).count();
    assert!(frames > 0, "no escaped function name in a flamegraph");
}

#[test]
fn figures_sort_by_their_values() {
    let p = Profile::read(&session(plain, 0)[..]).unwrap();
    let html = page(&p, &html_options());
    // The 64 MiB block's site: its bytes as shown, and as sorted.
    assert!(html.contains(r#"<td class="n" data-v="67108864">64 MiB</td>"#), "{html}");
    // Each table's rows have as many cells as it has columns.
    for table in html.split("<table class=\"sortable\"").skip(1) {
        let table = &table[..table.find("</table>").unwrap()];
        let columns = table[..table.find("</thead>").unwrap()].matches("</th>").count();
        for row in table.split("<tr>").skip(2) {
            assert_eq!(row.matches("<td").count(), columns, "{row}");
        }
    }
}

// ---------------------------------------------------------------------------
// A large session.

/// A name `len` characters long, all of it what escaping lengthens most.
fn heavy(tag: &str, i: usize, len: usize) -> String {
    let mut name = format!("{tag}{i}::");
    while name.len() < len {
        name.push_str("<\"&'>");
    }
    name
}

/// `sites` allocation sites, each a distinct stack 4 frames deep under its
/// own outermost function (so the flamegraph by bytes has 4 frames per
/// site, each wide enough to draw), every name long and full of markup;
/// `scopes` scopes, each entered once with another inside it; `threads`
/// threads, each allocating; the program and arguments as long.
fn large_session(sites: usize, scopes: usize, threads: usize, name_len: usize) -> Vec<u8> {
    let meta = Metadata {
        writer: "pulse tests".into(),
        program: heavy("/work/huge/target/release/", 0, 4 * name_len),
        args: (0..200).map(|i| heavy("--arg", i, name_len)).collect(),
        pid: 1,
        host: "host".into(),
        start_unix_ns: 1_700_000_000_000_000_000,
        clock: ClockInfo::monotonic(),
        alloc_mode: AllocMode::Full,
        counters: Vec::new(),
        extra: Vec::new(),
    };
    let mut defs = Vec::new();
    for s in 0..scopes {
        defs.push(Record::ScopeDef {
            scope: s as u32 + 1,
            name: heavy("scope", s, name_len),
            category: String::new(),
            description: String::new(),
            priority: 0,
        });
    }
    for s in 0..sites {
        let frames: Vec<u64> = (0..4).map(|f| 0x1000 + 16 * (4 * s + f) as u64).collect();
        for (f, addr) in frames.iter().enumerate() {
            defs.push(Record::Symbol {
                addr: *addr,
                function: heavy(&format!("crate{f}::f"), s, name_len),
                file: format!("/work/huge/src/{}.rs", heavy("file", s, name_len / 4)),
                line: 10 + f as u32,
            });
        }
        defs.push(Record::SiteDef { site: s as u32 + 1, frames });
    }
    let mut w = Writer::new(Vec::new(), &meta).unwrap();
    let mut enc = ChunkEncoder::new();
    enc.begin(0, 0);
    for r in &defs {
        enc.push(r);
    }
    w.write_chunk(&enc).unwrap();
    let mut ts = 1_000;
    for t in 0..threads {
        enc.begin(t as u64 + 1, 0);
        enc.push(&Record::ThreadStart { ts, name: heavy("thread", t, name_len) });
        // This thread's share of the sites and scopes, in turn.
        for s in (t..sites).step_by(threads) {
            ts += 10;
            let addr = 0x10_0000 + 64 * s as u64;
            enc.push(&Record::Alloc {
                ts,
                addr,
                size: 64,
                align: 8,
                site: s as u32 + 1,
                weight: 1,
            });
            if s % 2 == 0 {
                enc.push(&Record::Free { ts: ts + 5, addr, size: 64 });
            }
        }
        for s in (t..scopes).step_by(threads) {
            let (outer, inner) = (s as u32 + 1, ((s * 7 + 1) % scopes) as u32 + 1);
            enc.push(&Record::ScopeEnter { ts: ts + 1, scope: outer });
            enc.push(&Record::ScopeEnter { ts: ts + 2, scope: inner });
            enc.push(&Record::ScopeExit { ts: ts + 6, scope: inner });
            enc.push(&Record::ScopeExit { ts: ts + 10, scope: outer });
            ts += 10;
        }
        w.write_chunk(&enc).unwrap();
    }
    w.finish(Trailer { end_ts: ts + 100, ticks_per_ns: 1.0, ..Trailer::default() }).unwrap()
}

/// Many thousands of sites, scopes and frames, with long names that
/// escaping lengthens most: under [`MAX_HTML_BYTES`] with `pulse report
/// --html`'s options, and with every row and the whole call tree asked
/// for; what is left out said.
#[test]
fn a_large_session_stays_under_the_bound() {
    let bytes = large_session(3000, 3000, 300, 600);
    let p = Profile::read(&bytes[..]).unwrap();
    assert!(p.sites.len() >= 3000 && p.scopes.len() == 3000 && p.threads.len() == 300);
    let mut everything = html_options();
    everything.top = usize::MAX;
    everything.tree_min_share = 0.0;
    for (what, opts) in [("--html", html_options()), ("every row", everything)] {
        let html = page(&p, &opts);
        println!("{what}: {} bytes of HTML (bound {MAX_HTML_BYTES})", html.len());
        assert!(html.len() <= MAX_HTML_BYTES, "{what}: {} bytes", html.len());
        assert_only_the_pages_markup(what, &html);
        // Each table at most HTML_ROWS rows, and the rest counted.
        for table in html.split("<table class=\"sortable\" id=\"").skip(1) {
            let id = &table[..table.find('"').unwrap()];
            let rows = table[..table.find("</table>").unwrap()].matches("<tr>").count() - 1;
            assert!(rows <= HTML_ROWS, "{what}: {id} has {rows} rows");
        }
        let more: BTreeSet<&str> = html
            .match_indices("more rows not shown; see <code>")
            .map(|(at, m)| {
                let rest = &html[at + m.len()..];
                &rest[..rest.find("</code>").unwrap()]
            })
            .collect();
        for command in [
            "pulse report --json --top 3000",
            "pulse leaks --json --top 1500",
            "pulse report --json",
        ] {
            if what == "--html" || command == "pulse report --json" {
                assert!(more.contains(command), "{what}: no {command:?} among {more:?}");
            }
        }
        let cut = html.matches(r#"<p class="more">The "#).count();
        assert_eq!(cut, 3, "{what}: each flamegraph says it is cut");
        assert!(html.contains("widest of its 12001 frames"), "{what}");
    }
}
