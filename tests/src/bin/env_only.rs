//! A program that only swapped in the allocator: no session code at all.
//! Run with `PULSE_OUT=path` it must still write a complete session, however
//! it ends: `env_only return|exit|panic|spin|burst|child`. `child` runs this
//! program again as a child (which inherits `PULSE_OUT`) and waits for it.

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

fn main() {
    let words: Vec<String> = (0..1000).map(|i| format!("word-{i}")).collect();
    let total: usize = words.iter().map(String::len).sum();
    std::hint::black_box(total);
    match std::env::args().nth(1).as_deref() {
        Some("exit") => std::process::exit(0),
        Some("panic") => panic!("deliberate panic out of main"),
        // Allocates for a few seconds: long enough to be killed mid-run.
        Some("spin") => {
            let t = std::time::Instant::now();
            while t.elapsed() < std::time::Duration::from_secs(5) {
                let v: Vec<String> = (0..100).map(|i| i.to_string()).collect();
                std::hint::black_box(v);
            }
        }
        // A million allocations, then a line on stdout: a session of a few
        // MB, more than a small file size limit lets through.
        Some("burst") => {
            for i in 0..1_000_000u32 {
                std::hint::black_box(i.to_string());
            }
            println!("done");
        }
        Some("child") => {
            let me = std::env::current_exe().expect("own path");
            let status = std::process::Command::new(me).arg("return").status().expect("run child");
            std::hint::black_box(words.len());
            std::process::exit(if status.success() { 0 } else { 3 });
        }
        _ => {}
    }
}
