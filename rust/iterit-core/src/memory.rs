//! Handing freed memory back to the operating system (docs/design.md, "Scale").
//!
//! The interner frees a million small tables and vectors at once when counting ends, most of
//! them allocated by worker threads in glibc's per-thread arenas. glibc keeps such memory for
//! reuse, but what is allocated next (document frequencies, the greedy's column state) is
//! large enough to be mapped afresh, so the freed memory would stay resident beside it and
//! raise the peak by the size of the whole vocabulary. `malloc_trim` returns the free pages of
//! every arena. Other platforms and allocators release differently; there it does nothing.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn give_back_freed() {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim only releases free memory; it takes no pointer and cannot fail.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn give_back_freed() {}
