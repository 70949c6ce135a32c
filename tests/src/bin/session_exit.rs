//! A program that starts a session in code and ends in one of several ways:
//! `session_exit OUT return|exit|panic|thread-panic`.

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

fn main() {
    let mut args = std::env::args().skip(1);
    let out = args.next().expect("usage: session_exit OUT MODE");
    let mode = args.next().unwrap_or_default();
    let _session = pulse::Session::builder().output(out).start().expect("start session");
    {
        pulse::scope!("work");
        let v: Vec<u64> = (0..10_000).collect();
        std::hint::black_box(v);
    }
    pulse::scope!("ending");
    match mode.as_str() {
        "exit" => std::process::exit(3),
        "panic" => panic!("deliberate panic out of main"),
        "thread-panic" => {
            // A panic on another thread while this one allocates.
            let h = std::thread::spawn(|| panic!("deliberate panic on a thread"));
            let v: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
            std::hint::black_box(v);
            assert!(h.join().is_err());
        }
        _ => {}
    }
}
