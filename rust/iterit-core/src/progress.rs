//! Phase progress, reported to whoever called the core (the Python binding turns it into
//! calls of a Python callback).

use crate::error::{Error, Result};

/// The phases of a selection from texts, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Texts being collected from the caller (the binding reports it).
    Reading,
    /// Lowercasing, tokens and n-gram ids, a chunk of texts at a time.
    Ngrams,
    /// Document frequencies, idf and row norms (and weights, when they are stored).
    Tfidf,
    /// Picks made by the greedy selector.
    Greedy,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Reading => "reading",
            Phase::Ngrams => "n-grams",
            Phase::Tfidf => "TF-IDF",
            Phase::Greedy => "greedy",
        }
    }
}

/// Receives `(phase, done, total)`, with `done` and `total` in the phase's own units (texts,
/// or picks for [`Phase::Greedy`]); returns `false` to stop the work with
/// [`Error::Cancelled`]. Called from one thread at a time, never from inside parallel work.
pub trait Progress: Sync {
    fn report(&self, phase: Phase, done: u64, total: u64) -> bool;
}

impl<F: Fn(Phase, u64, u64) -> bool + Sync> Progress for F {
    fn report(&self, phase: Phase, done: u64, total: u64) -> bool {
        self(phase, done, total)
    }
}

/// No reporting.
pub struct Silent;

impl Progress for Silent {
    fn report(&self, _: Phase, _: u64, _: u64) -> bool {
        true
    }
}

/// Reports to `p`; its refusal becomes [`Error::Cancelled`].
pub fn report(p: &dyn Progress, phase: Phase, done: usize, total: usize) -> Result<()> {
    if p.report(phase, done as u64, total as u64) {
        Ok(())
    } else {
        Err(Error::Cancelled)
    }
}
