//! In-process heap queries: what the program has allocated so far, and what
//! one block of code allocated.

use pulse_alloc::Totals;

/// Measures what the calling thread allocates between [`AllocMeter::start`]
/// and [`AllocMeter::read`]: allocations, frees, bytes, and the net change
/// of live bytes. Counts only while a session records (any mode but `off`).
///
/// ```no_run
/// let meter = pulse::AllocMeter::start();
/// let v: Vec<u64> = Vec::with_capacity(100);
/// let d = meter.read();
/// assert_eq!((d.allocs, d.bytes_allocated), (1, 800));
/// # drop(v);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AllocMeter {
    start: Totals,
}

impl AllocMeter {
    /// Starts measuring on the calling thread. Never allocates.
    pub fn start() -> Self {
        AllocMeter { start: pulse_alloc::thread_totals() }
    }

    /// What the calling thread counted since [`AllocMeter::start`]. Read it on
    /// the thread that started it.
    pub fn read(&self) -> Totals {
        pulse_alloc::thread_totals().since(self.start)
    }
}

/// The program's heap so far: exact totals across every thread, and each
/// running thread's own figures with its peak. Counts only while a session
/// records (any mode but `off`).
pub fn heap_stats() -> pulse_alloc::HeapStats {
    pulse_alloc::heap_stats()
}
