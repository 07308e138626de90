//! Memory: handing freed memory back to the operating system, and prefetching
//! (docs/design.md, "Scale").
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

/// `n` values made by `make`, written in parallel into memory just allocated.
///
/// For a large array that is read before it is written (a bit set tested before it is set):
/// `vec![0; n]` or a `collect` of zeros asks for zeroed memory, which is mapped lazily, and
/// the first access of each page faults. When that access is a read, the kernel maps a shared
/// page of zeros, and the write that follows faults again and flushes that page from every
/// core's TLB (an interrupt to the other cores per page; on a virtual machine, a trip through
/// the hypervisor each). Here every page is first touched by a write: one fault each, no flush.
pub(crate) fn filled_by_writes<T: Send>(n: usize, make: impl Fn() -> T + Sync + Send) -> Vec<T> {
    use rayon::prelude::*;
    let mut values = Vec::with_capacity(n);
    (0..n)
        .into_par_iter()
        .with_min_len(1 << 12)
        .map(|_| make())
        .collect_into_vec(&mut values);
    values
}

/// Asks the CPU to start loading `x` into the cache: a hint, with no effect on any value.
/// The core's hot loops read arrays larger than the cache at random positions known some
/// steps ahead; out-of-order execution alone keeps too few of those reads in flight.
#[inline(always)]
pub(crate) fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch of a valid reference's address; SSE is part of x86_64.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (x as *const T).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// How many entries ahead a pass over a row asks for the column state it will read (32 took
/// 0.1 s less than 16 in the greedy on the 1M benchmark corpus).
const AHEAD: usize = 32;

/// Prefetches `table[indices[k + AHEAD]]`, the state of the column a pass over `indices` will
/// read [`AHEAD`] steps after entry `k` (nothing past the end).
#[inline(always)]
pub(crate) fn prefetch_ahead<T>(table: &[T], indices: &[u32], k: usize) {
    if let Some(&ahead) = indices.get(k + AHEAD) {
        prefetch(&table[ahead as usize]);
    }
}
