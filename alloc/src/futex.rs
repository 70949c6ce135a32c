//! Sleeping on a 32-bit word until it changes, and waking its sleepers:
//! Linux's futex, private to the process. Neither allocates nor takes a
//! lock, and each is one system call: async-signal-safe.

use std::sync::atomic::AtomicU32;

/// Sleeps while `word` holds `seen`, for `timeout_ns` at most (less where
/// a signal or a spurious wake-up ends it: the caller looks again). Returns
/// at once if `word` no longer holds `seen`.
pub fn wait(word: &AtomicU32, seen: u32, timeout_ns: u64) {
    let timeout = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: FUTEX_WAIT on a live, aligned 32-bit word (borrowed for the
    // call), with a timespec that outlives it; the kernel reads the word
    // and writes nothing of ours.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            seen,
            &timeout as *const libc::timespec,
        );
    }
}

/// Wakes every thread sleeping on `word`.
pub fn wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a live, aligned 32-bit word; the kernel
    // neither reads nor writes memory of ours.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}
