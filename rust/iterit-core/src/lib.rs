//! The IterIT selection core, in plain Rust (no Python types anywhere in this crate).
//!
//! * [`text`]: lowercasing and tokenisation with caller-supplied tables, so that the Python
//!   binding can hand over exactly the `str.lower` and `\w` of the running interpreter
//!   (docs/design.md, "TF-IDF").
//! * [`ngrams`]: n-gram counts (token ids, never a string per occurrence), a chunk at a time;
//!   for selection, without interning the n-grams of one text ([`count_shared_ngrams`]).
//! * [`tfidf`]: TF-IDF weights from counts, recomputed on demand or stored.
//! * [`progress`]: phase progress reported to the caller.
//! * [`select`]: the lazy greedy selector with decay (docs/design.md, "Greedy selection").
//!
//! Internal modules (not public API): `exact_sum`, a correctly rounded float64 sum, which
//! makes every score independent of summation order, so that the Rust core, the pure-Python
//! reference and any thread count give bit-identical scores and therefore identical
//! tie-breaking; `intern`, the parallel deterministic interner behind the n-gram ids; and
//! `memory`, which hands the interner's freed memory back to the system.
//!
//! Parallel work uses rayon's current thread pool; run a call inside
//! [`with_threads`]`(Some(1), ..)` to switch parallelism off. Results never depend on the
//! number of threads.

pub mod error;
mod exact_sum;
mod intern;
mod memory;
pub mod ngrams;
pub mod progress;
pub mod select;
pub mod text;
pub mod tfidf;

pub use error::{Error, Result};
pub use ngrams::{count_ngrams, count_shared_ngrams, Counts};
pub use progress::{Phase, Progress, Silent};
pub use select::{select, select_counts, CsrRows, SelectOptions, Selection};
pub use text::{Analyzer, CodePoints, Lowercase, WordChars};
pub use tfidf::{
    tfidf, tfidf_with_progress, NgramNames, TfidfMatrix, TfidfOptions, Variant, Weights,
};

/// Worker pools by thread count, built once per process: building a pool starts its threads,
/// which would otherwise be paid (and the threads torn down) on every call.
static POOLS: std::sync::Mutex<Vec<(usize, std::sync::Arc<rayon::ThreadPool>)>> =
    std::sync::Mutex::new(Vec::new());

fn pool(n: usize) -> Result<std::sync::Arc<rayon::ThreadPool>> {
    // A panic elsewhere while the lock was held cannot leave the list half-updated.
    let mut pools = POOLS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, p)) = pools.iter().find(|(k, _)| *k == n) {
        return Ok(p.clone());
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map_err(|e| Error::Internal(format!("cannot start {n} worker threads: {e}")))?;
    let p = std::sync::Arc::new(p);
    pools.push((n, p.clone()));
    Ok(p)
}

/// Runs `work` on a rayon pool of `threads` threads (`None`: rayon's global pool). The pool of
/// each thread count is built on first use and kept for the life of the process.
pub fn with_threads<R: Send>(threads: Option<usize>, work: impl FnOnce() -> R + Send) -> Result<R> {
    match threads {
        None => Ok(work()),
        Some(0) => Err(Error::InvalidArgument(
            "n_threads must be at least 1".into(),
        )),
        Some(n) => Ok(pool(n)?.install(work)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_pool_per_thread_count() {
        let a = super::pool(2).unwrap();
        let b = super::pool(2).unwrap();
        let c = super::pool(3).unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &b));
        assert!(!std::sync::Arc::ptr_eq(&a, &c));
        assert_eq!(
            super::with_threads(Some(3), rayon::current_num_threads).unwrap(),
            3
        );
        assert!(super::with_threads(Some(0), || ()).is_err());
    }
}
