//! The IterIT selection core, in plain Rust (no Python types anywhere in this crate).
//!
//! * [`text`]: tokenisation with a caller-supplied word-character table, so that the Python
//!   binding can hand over exactly the `\w` of the running interpreter (docs/design.md, "TF-IDF").
//! * [`tfidf`]: n-gram extraction (token ids, never a string per occurrence) and TF-IDF rows.
//! * [`select`]: the lazy greedy selector with decay (docs/design.md, "Greedy selection").
//! * [`exact_sum`]: a correctly rounded float64 sum, which makes every score independent of
//!   summation order, so that the Rust core, the pure-Python reference and any thread count
//!   give bit-identical scores and therefore identical tie-breaking.
//!
//! Parallel work uses rayon's current thread pool; run a call inside
//! [`with_threads`]`(Some(1), ..)` to switch parallelism off. Results never depend on the
//! number of threads.

pub mod error;
pub mod exact_sum;
pub mod intern;
pub mod select;
pub mod text;
pub mod tfidf;

pub use error::{Error, Result};
pub use select::{select, CsrRows, SelectOptions, Selection};
pub use text::WordChars;
pub use tfidf::{tfidf, NgramNames, TfidfMatrix, TfidfOptions, Variant};

/// Runs `work` on a rayon pool of `threads` threads (`None`: rayon's global pool).
pub fn with_threads<R: Send>(threads: Option<usize>, work: impl FnOnce() -> R + Send) -> Result<R> {
    match threads {
        None => Ok(work()),
        Some(0) => Err(Error::InvalidArgument(
            "n_threads must be at least 1".into(),
        )),
        Some(n) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| Error::Internal(format!("cannot start {n} worker threads: {e}")))?;
            Ok(pool.install(work))
        }
    }
}
