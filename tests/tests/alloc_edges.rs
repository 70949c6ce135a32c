//! The allocator's awkward moments, with pulse as the real global allocator
//! wrapping a failing inner allocator: failed allocations pass through and
//! are counted; allocations and frees in thread-local destructors, in a
//! panic hook that allocates, and after the session stopped are neither
//! lost nor double-counted, and nothing deadlocks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;

use pulse_tests::{check, temp_session};

/// The system allocator, except that it refuses every request of exactly
/// `REFUSED` bytes: a deterministic out-of-memory.
struct Refusing;

const REFUSED: usize = 12_345;

// SAFETY: forwards to `System` unchanged, or returns null, which `GlobalAlloc`
// allows for any request.
unsafe impl GlobalAlloc for Refusing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() == REFUSED {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller upholds `alloc`'s contract, forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: pulse::Alloc<Refusing> = pulse::Alloc::new(Refusing);

thread_local! {
    /// Dropped during the thread's teardown: allocates and frees then.
    static TEARDOWN: RefCell<Teardown> = const { RefCell::new(Teardown(Vec::new())) };
}

struct Teardown(Vec<Box<[u8]>>);

impl Drop for Teardown {
    fn drop(&mut self) {
        // Frees blocks allocated while the thread ran, and allocates anew.
        self.0.clear();
        let late = vec![9u8; 777];
        std::hint::black_box(late);
    }
}

fn main() {
    let path = temp_session("alloc_edges");
    let session = pulse::Session::builder().output(&path).start().expect("start");

    // A failed allocation: the program sees the null, pulse counts it.
    let layout = Layout::from_size_align(REFUSED, 8).unwrap();
    // SAFETY: `layout` has a non-zero size.
    let p = unsafe { std::alloc::alloc(layout) };
    check(p.is_null(), "the inner allocator's refusal reaches the program");

    // Thread-local destructors that free and allocate at thread exit.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                TEARDOWN.with(|d| {
                    d.borrow_mut()
                        .0
                        .extend((0..10).map(|i| vec![t as u8; 100 + i].into_boxed_slice()))
                });
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }

    // A panic hook that allocates, on a thread that panics while others allocate.
    std::panic::set_hook(Box::new(|info| {
        let msg = format!("hook saw: {info}");
        std::hint::black_box(msg);
    }));
    let busy: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                for i in 0..20_000usize {
                    std::hint::black_box(vec![1u8; 16 + i % 64]);
                }
            })
        })
        .collect();
    for _ in 0..5 {
        let r = std::thread::spawn(|| panic!("deliberate")).join();
        check(r.is_err(), "the panic propagated");
    }
    for b in busy {
        b.join().expect("busy thread");
    }
    let _ = std::panic::take_hook();

    // A block that outlives the session: freed after it stopped.
    let survivor = vec![5u8; 4096];
    let before_stop = pulse::heap_stats().totals;
    let path = session.finish().expect("finish");
    drop(survivor);

    let p = pulse_analysis::Profile::load(&path).expect("load");
    let m = &p.memory;
    check(m.failed == 1, format!("one failed allocation, got {}", m.failed));
    let t = p.trailer.as_ref().expect("trailer");
    for (key, replayed) in
        [("allocs", m.allocs), ("frees", m.frees), ("bytes_allocated", m.bytes_allocated)]
    {
        check(
            t.extra(key) == Some(replayed),
            format!("{key}: counted {:?}, in the file {replayed}", t.extra(key)),
        );
    }
    check(p.anomalies.reused_live_addresses == 0, format!("{:?}", p.anomalies));
    // The teardown allocations of 777 bytes (one per thread) are in the file.
    let late = p.sites.values().filter(|s| s.max_size == 777).map(|s| s.allocs).sum::<u64>();
    check(late == 4, format!("teardown allocations recorded: {late}"));
    // The survivor is live at the end of the session; its free came after.
    check(m.live_bytes_at_end >= 4096, format!("live at end {}", m.live_bytes_at_end));
    // In process, the free after the stop did not count twice or at all.
    let after = pulse::heap_stats().totals;
    check(
        after == before_stop || after.frees >= before_stop.frees,
        "counters stay sane after the stop",
    );
    println!("alloc_edges: ok");
}
