//! A session whose every name is chosen by a function: the same session
//! with plain names (`plain`) and with names that carry what a hostile
//! session could put in them (`hostile`): control characters, terminal
//! escape sequences, a newline that would forge a table row, markup and
//! script, XML specials, quotes and `;`. Used by `analysis/tests/names.rs`
//! (every renderer and export in process) and `report-cli/tests/names.rs`
//! (the `pulse` binary on the file).
//!
//! The two sessions differ only in their names, so every text output of
//! the hostile one must have as many lines as the plain one's.
#![allow(dead_code, unreachable_pub)]

use pulse_analysis::format::{
    AllocMode, ChunkEncoder, ClockInfo, ClockSource, CounterInfo, Metadata, Record, Trailer, Writer,
};
use pulse_analysis::FoldedKind;

/// What each hostile name carries after its tag: clear screen, a window
/// title, an OSC 8 link, NUL, CR LF with the start of a forged row, BEL,
/// the one-character CSI (U+009B), DEL, a right-to-left override, a
/// noncharacter XML refuses, a closing script tag and a script, an SVG
/// `onload`, an entity, both quotes, a tab and two `;`.
pub const PAYLOAD: &str = concat!(
    "\x1b[2J\x1b]0;pwned\x07\x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\",
    "\0nul\r\n  forged 1 2 3 4\x07\u{9b}31m\x7f\u{202e}\u{fffe}",
    "</script><script>alert(1)</script><svg onload=alert(2)>&amp;\"dq\" 'sq'\t; [T; N]",
);

/// A name as it is: the plain session.
pub fn plain(tag: &str) -> String {
    tag.to_owned()
}

/// A name with [`PAYLOAD`] after it: the hostile session.
pub fn hostile(tag: &str) -> String {
    format!("{tag}{PAYLOAD}")
}

/// A function whose name holds `;` in both sessions, as Rust's do.
pub const GRID: &str = "app::Grid<[u8; 4]>::fill";

const LEAF: u64 = 0x10;
const MIDDLE: u64 = 0x20;
const OUTER: u64 = 0x30;
const FILL: u64 = 0x40;
const BIG: u64 = 0x50;

/// The functions of the symbols, by address, and their files' tags.
fn functions(name: fn(&str) -> String) -> [(u64, String, String); 5] {
    [
        (LEAF, name("app::leaf"), name("leaf")),
        (MIDDLE, name("app::middle"), name("middle")),
        (OUTER, name("app::outer"), name("outer")),
        (FILL, name(GRID), name("grid")),
        (BIG, name("app::big"), name("big")),
    ]
}

fn function(name: fn(&str) -> String, addr: u64) -> String {
    functions(name).into_iter().find(|f| f.0 == addr).unwrap().1
}

/// The program's path: under a `target` directory, so that the project's
/// root is `/work/evil`.
pub fn program(name: fn(&str) -> String) -> String {
    format!("/work/evil/target/debug/{}", name("prog"))
}

/// The session with every name made by `name`. `variant` 1 is a later
/// run of another program: more allocations at the first site and a
/// slower query, for `diff` to have rows.
pub fn session(name: fn(&str) -> String, variant: u64) -> Vec<u8> {
    let meta = Metadata {
        writer: name("writer"),
        program: if variant == 0 { program(name) } else { format!("{}2", program(name)) },
        args: vec![name("--arg"), name("second")],
        pid: 4242,
        host: name("host"),
        start_unix_ns: 1_700_000_000_000_000_000,
        clock: ClockInfo {
            source: ClockSource::Tsc,
            ticks_per_ns: 1.0,
            calibration: name("calibration"),
        },
        alloc_mode: AllocMode::Full,
        counters: vec![
            CounterInfo { name: name("cycles"), available: true, reason: name("perf") },
            CounterInfo { name: name("instructions"), available: false, reason: name("denied") },
        ],
        extra: vec![(name("key"), name("value"))],
    };
    let mut defs = vec![
        Record::ScopeDef {
            scope: 1,
            name: name("parse"),
            category: name("Input"),
            description: name("description"),
            priority: 0,
        },
        Record::ScopeDef {
            scope: 2,
            name: name("query"),
            category: String::new(),
            description: String::new(),
            priority: 0,
        },
        Record::SiteDef { site: 1, frames: vec![LEAF, MIDDLE, OUTER] },
        Record::SiteDef { site: 2, frames: vec![FILL, OUTER] },
        Record::SiteDef { site: 3, frames: vec![BIG, OUTER] },
    ];
    for (i, (addr, function, file)) in functions(name).into_iter().enumerate() {
        defs.push(Record::Symbol {
            addr,
            function,
            file: format!("/work/evil/src/{file}.rs"),
            line: 10 * (i as u32 + 1),
        });
    }
    let alloc = |ts, addr, size, site| Record::Alloc { ts, addr, size, align: 8, site, weight: 1 };
    let free = |ts, addr, size| Record::Free { ts, addr, size };
    let (enter, exit) =
        (|ts, scope| Record::ScopeEnter { ts, scope }, |ts, scope| Record::ScopeExit { ts, scope });
    // Every later event on the main thread comes `query` later.
    let query = if variant == 0 { 1000 } else { 20_000_000 };
    let mut main = vec![
        Record::ThreadStart { ts: 1000, name: name("main") },
        enter(1000, 1),
        Record::Counters { ts: 1000, scope: 1, values: vec![0] },
    ];
    for i in 0..1 + 99 * variant {
        main.push(alloc(1100 + i, 0xa000 + 0x100 * i, 64, 1));
        main.push(free(1100 + i, 0xa000 + 0x100 * i, 64));
    }
    main.extend([
        enter(2000, 2),
        alloc(2100, 0xb000, 16, 2),
        exit(2000 + query, 2),
        Record::Counters { ts: 200_000 + query, scope: 1, values: vec![9000] },
        exit(210_000 + query, 1),
        alloc(250_000 + query, 0xc000, 64 << 20, 3),
        free(260_000 + query, 0xc000, 64 << 20),
    ]);
    // Blocks that pile up at one line until the end: a leak.
    for k in 1..=20 {
        main.push(alloc(k * 100_000 + 300_000 + query, 0x10_0000 + 0x100 * k, 16, 2));
    }
    main.push(free(2_500_000 + query, 0xe000, 32));
    let worker = vec![
        Record::ThreadStart { ts: 1500, name: name("worker") },
        enter(1500, 2),
        alloc(1600, 0xe000, 32, 2),
        exit(1500 + query * 2 / 5, 2),
    ];
    let mut w = Writer::new(Vec::new(), &meta).unwrap();
    let mut enc = ChunkEncoder::new();
    for (thread, round, records) in [(0, 0, defs), (2, 0, worker), (1, 0, main)] {
        enc.begin(thread, round);
        for r in &records {
            enc.push(r);
        }
        w.write_chunk(&enc).unwrap();
    }
    w.finish(Trailer {
        end_ts: 3_000_000 + query,
        end_unix_ns: 1_700_000_000_003_000_000,
        ticks_per_ns: 1.0,
        extra: vec![(name("own_bytes"), 5)],
        notes: vec![(String::from("counters"), name("stopped"))],
        ..Trailer::default()
    })
    .unwrap()
}

/// The stacks `kind` weighs in the session, each frame's name as the
/// session has it, outermost first.
pub fn stacks(name: fn(&str) -> String, kind: FoldedKind) -> Vec<Vec<String>> {
    let f = |addr| function(name, addr);
    let parse = format!("{}::{}", name("Input"), name("parse"));
    match kind {
        FoldedKind::Time => {
            vec![vec![parse.clone()], vec![parse, name("query")], vec![name("query")]]
        }
        FoldedKind::AllocBytes | FoldedKind::AllocCount => vec![
            vec![f(OUTER), f(MIDDLE), f(LEAF)],
            vec![f(OUTER), f(FILL)],
            vec![f(OUTER), f(BIG)],
        ],
        FoldedKind::Leaks => vec![vec![f(OUTER), f(FILL)]],
    }
}

/// `name` as text output shows it: each control character (C0, DEL, C1),
/// line or paragraph separator, bidirectional control and U+FFFE/U+FFFF as
/// `\u{…}`, its code point in hexadecimal. Written out here rather than
/// taken from `pulse_analysis::printable`, so that the tests state what
/// the documentation promises.
pub fn shown(name: &str) -> String {
    name.chars()
        .map(|c| if unsafe_char(c) { format!("\\u{{{:x}}}", u32::from(c)) } else { c.to_string() })
        .collect()
}

/// What must never reach a terminal as itself.
pub fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{fffe}'
                | '\u{ffff}'
        )
}

/// Text a terminal may be shown: no character [`unsafe_char`] picks but
/// the newlines that end its lines.
#[track_caller]
pub fn assert_terminal_safe(what: &str, text: &str) {
    if let Some((i, c)) = text.char_indices().find(|(_, c)| *c != '\n' && unsafe_char(*c)) {
        let from = text[..i].rfind('\n').map_or(0, |n| n + 1);
        panic!("{what}: {c:?} at byte {i}, in the line {:?}", &text[from..]);
    }
}
