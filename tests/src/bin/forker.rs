//! A program that forks while its session runs: `forker OUT`.
//!
//! The child allocates blocks of a size the parent never uses, enters
//! scopes (one the parent knows, one new), tries to start a session of its
//! own, and exits through `std::process::exit` (so pulse's exit handler runs
//! in it too). Its exit status says what it saw: 0 when starting a session
//! failed with the forked-child error, 2 otherwise. The parent waits for it,
//! works on, and finishes its session; it prints the child's status.

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

/// The size of every block the child allocates.
const CHILD_SIZE: usize = 4_242;

fn work(tag: u8) -> Vec<Vec<u8>> {
    pulse::scope!("shared");
    (0..1_000).map(|i| vec![tag; 100 + i % 50]).collect()
}

fn main() {
    let out = std::env::args().nth(1).expect("usage: forker OUT");
    let session = pulse::Session::builder().output(&out).start().expect("start");
    let before = work(1);

    // A thread that allocates through the fork, so the collector has
    // events to drain at the moment the child is made.
    let busy = std::thread::spawn(|| {
        for i in 0..200_000usize {
            std::hint::black_box(vec![0u8; 16 + i % 64]);
        }
    });
    // SAFETY: fork has no preconditions; the child below only allocates,
    // enters scopes and exits, never touching the parent's threads.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let kept: Vec<Vec<u8>> = (0..500).map(|i| vec![i as u8; CHILD_SIZE]).collect();
        let shared = work(2);
        {
            pulse::scope!("child-only");
            std::hint::black_box(vec![3u8; CHILD_SIZE]);
        }
        let own = format!("{out}.child");
        let status = match pulse::Session::builder().output(&own).start() {
            Err(pulse::Error::InForkedChild(_)) if !std::path::Path::new(&own).exists() => 0,
            Err(e) => {
                eprintln!("child: unexpected {e}");
                2
            }
            Ok(_) => {
                eprintln!("child: started a session");
                2
            }
        };
        drop((kept, shared));
        std::process::exit(status);
    }
    assert!(pid > 0, "fork failed");
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid place to write.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid");
    busy.join().expect("busy thread");
    let after = work(3);
    drop((before, after));
    session.finish().expect("finish");
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    println!("child exited with {code}");
}
