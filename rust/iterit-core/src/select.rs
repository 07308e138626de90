//! Greedy selection with decay (docs/design.md, "Greedy selection"), as a lazy greedy over a max-heap of stale upper
//! bounds.
//!
//! `score[i] = c[i] * sum_g alpha[g] * w[i, g]`; after each pick every n-gram of the picked
//! row has its `alpha` multiplied by the decay. Scores never increase (every product shrinks
//! or stays, and a correctly rounded sum is monotone), so a heap entry's score is an upper
//! bound of the sample's current score. Popping the top and re-scoring it only when it is
//! stale picks exactly the samples, in exactly the order, that re-scoring every candidate at
//! every step would, including tie-breaking (larger score, then larger complexity, then smaller
//! index), because sums are correctly rounded and so bit-identical however they are ordered.
//! Two stale rows at the top of the heap are re-scored at once, on two threads where the pool
//! has them ([`PairScorer`]).

use std::sync::atomic::{self, AtomicBool, AtomicU32, AtomicU64, AtomicUsize};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::exact_sum::NonNegativeSum;
use crate::progress::{report, Phase, Progress, Silent};
use crate::tfidf::Weights;

mod heap;
use heap::{Entry, Heap};

/// Integer types a CSR matrix can use for `indptr` and `indices` (numpy/scipy give int32 or
/// int64; the core's own matrices use i64 and i32).
pub trait Index: Copy + Send + Sync {
    fn to_usize(self) -> Option<usize>;
}

macro_rules! impl_index {
    ($($t:ty),*) => {$(
        impl Index for $t {
            #[inline]
            fn to_usize(self) -> Option<usize> {
                usize::try_from(self).ok()
            }
        }
    )*};
}
impl_index!(i32, i64, u32, u64, usize);

/// A borrowed CSR matrix of non-negative weights, one row per sample.
#[derive(Clone, Copy, Debug)]
pub struct CsrRows<'a, P: Index, I: Index> {
    pub n_cols: usize,
    pub indptr: &'a [P],
    pub indices: &'a [I],
    pub data: &'a [f64],
}

impl<P: Index, I: Index> CsrRows<'_, P, I> {
    pub fn n_rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Checks the structure and values; returns whether every row's columns are strictly
    /// increasing (no duplicates), which the selector relies on to decay each n-gram once.
    pub fn validate(&self) -> Result<bool> {
        let bad = |m: String| Err(Error::InvalidInput(m));
        if self.indptr.is_empty() {
            return bad("indptr must have n_rows + 1 entries, got an empty array".into());
        }
        if self.indices.len() != self.data.len() {
            return bad(format!(
                "indices and data differ in length ({} vs {})",
                self.indices.len(),
                self.data.len()
            ));
        }
        let mut prev = 0usize;
        for (i, &p) in self.indptr.iter().enumerate() {
            let Some(p) = p.to_usize() else {
                return bad(format!("indptr[{i}] is negative"));
            };
            if (i == 0 && p != 0) || p < prev {
                return bad(format!(
                    "indptr must start at 0 and never decrease (indptr[{i}] = {p})"
                ));
            }
            prev = p;
        }
        if prev != self.data.len() {
            return bad(format!(
                "indptr ends at {prev} but there are {} stored entries",
                self.data.len()
            ));
        }
        let n_cols = self.n_cols;
        let canonical = (0..self.n_rows())
            .into_par_iter()
            .map(|r| -> Result<bool> {
                let (s, e) = self.row_bounds(r);
                let mut last: Option<usize> = None;
                let mut sorted = true;
                for k in s..e {
                    let c = self.indices[k]
                        .to_usize()
                        .filter(|&c| c < n_cols)
                        .ok_or_else(|| {
                            Error::InvalidInput(format!(
                                "row {r}: column index at position {k} is outside [0, {n_cols})"
                            ))
                        })?;
                    let w = self.data[k];
                    if !(w.is_finite() && w >= 0.0) {
                        return Err(Error::InvalidInput(format!(
                            "row {r}: weight {w} at position {k} is not finite and >= 0"
                        )));
                    }
                    sorted &= last.is_none_or(|l| c > l);
                    last = Some(c);
                }
                Ok(sorted)
            })
            .try_reduce(|| true, |a, b| Ok(a && b))?;
        Ok(canonical)
    }

    #[inline]
    fn row_bounds(&self, r: usize) -> (usize, usize) {
        // Validated: both ends fit in usize.
        (
            self.indptr[r].to_usize().unwrap_or(0),
            self.indptr[r + 1].to_usize().unwrap_or(0),
        )
    }
}

#[derive(Clone, Debug)]
pub struct SelectOptions {
    /// How many samples to pick (>= 1).
    pub budget: usize,
    /// Factor applied to the weight of every n-gram of a picked sample, in [0, 1).
    pub decay: f64,
    /// Candidates need `complexity < max_complexity` (IFD >= 1 means the prompt does not help).
    pub max_complexity: Option<f64>,
}

/// Picked rows in pick order, each with its score at the moment it was picked.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    pub indices: Vec<i64>,
    pub scores: Vec<f64>,
    /// `budget - picked` when fewer candidates than the budget exist, else 0.
    pub shortfall: usize,
    /// Rows with a valid complexity (finite, > 0, < max_complexity).
    pub n_candidates: usize,
    /// Row scores computed, the initial ones included (work done by the lazy greedy).
    pub n_evaluations: u64,
}

/// Row `r`'s complexity; `None` gives every row complexity 1.
#[inline]
fn complexity_of(complexity: Option<&[f64]>, r: usize) -> f64 {
    complexity.map_or(1.0, |c| c[r])
}

/// Whether a complexity makes its sample a candidate.
pub fn is_candidate(c: f64, max_complexity: Option<f64>) -> bool {
    c.is_finite() && c > 0.0 && max_complexity.is_none_or(|m| c < m)
}

/// Sums duplicate columns of each row (scipy's canonical form) so each n-gram decays once.
fn canonicalise<P: Index, I: Index>(
    rows: &CsrRows<'_, P, I>,
) -> (Vec<usize>, Vec<usize>, Vec<f64>) {
    let mut indptr = vec![0usize];
    let mut indices = Vec::with_capacity(rows.data.len());
    let mut data = Vec::with_capacity(rows.data.len());
    for r in 0..rows.n_rows() {
        let (s, e) = rows.row_bounds(r);
        let mut entries: Vec<(usize, f64)> = (s..e)
            .map(|k| (rows.indices[k].to_usize().unwrap_or(0), rows.data[k]))
            .collect();
        entries.sort_by_key(|&(c, _)| c);
        let mut k = 0;
        while k < entries.len() {
            let c = entries[k].0;
            let mut acc = NonNegativeSum::new();
            while k < entries.len() && entries[k].0 == c {
                acc.add(entries[k].1);
                k += 1;
            }
            indices.push(c);
            data.push(acc.value());
        }
        indptr.push(indices.len());
    }
    (indptr, indices, data)
}

fn check_options(opts: &SelectOptions) -> Result<()> {
    if opts.budget == 0 {
        return Err(Error::InvalidArgument("budget must be at least 1".into()));
    }
    if !(opts.decay.is_finite() && (0.0..1.0).contains(&opts.decay)) {
        return Err(Error::InvalidArgument(format!(
            "decay must be in [0, 1), got {}",
            opts.decay
        )));
    }
    if let Some(m) = opts.max_complexity {
        if m.is_nan() || m <= 0.0 {
            return Err(Error::InvalidArgument(format!(
                "max_complexity must be > 0 (or None), got {m}"
            )));
        }
    }
    Ok(())
}

fn check_complexity(complexity: Option<&[f64]>, n_rows: usize) -> Result<()> {
    match complexity {
        Some(c) if c.len() != n_rows => Err(Error::InvalidInput(format!(
            "complexity has {} values for {n_rows} samples",
            c.len()
        ))),
        _ => Ok(()),
    }
}

/// Picks up to `opts.budget` rows (docs/design.md, "Greedy selection"). `complexity = None` gives every row
/// complexity 1 (pure diversity) and ignores `max_complexity`.
pub fn select<P: Index, I: Index>(
    rows: &CsrRows<'_, P, I>,
    complexity: Option<&[f64]>,
    opts: &SelectOptions,
) -> Result<Selection> {
    check_options(opts)?;
    let canonical = rows.validate()?;
    let n_rows = rows.n_rows();
    check_complexity(complexity, n_rows)?;
    if canonical {
        let view = RowView {
            bounds: |r: usize| rows.row_bounds(r),
            col: |k: usize| rows.indices[k].to_usize().unwrap_or(0),
            data: rows.data,
            decays: zeros(rows.n_cols),
        };
        lazy_greedy(&view, n_rows, complexity, opts, &Silent)
    } else {
        let (indptr, indices, data) = canonicalise(rows);
        let view = RowView {
            bounds: |r| (indptr[r], indptr[r + 1]),
            col: |k| indices[k],
            data: &data,
            decays: zeros(rows.n_cols),
        };
        lazy_greedy(&view, n_rows, complexity, opts, &Silent)
    }
}

/// [`select`] on TF-IDF weights recomputed from n-gram counts (no float64 per stored entry),
/// reporting [`Phase::Greedy`] to `progress`.
pub fn select_counts(
    weights: &Weights<'_>,
    complexity: Option<&[f64]>,
    opts: &SelectOptions,
    progress: &dyn Progress,
) -> Result<Selection> {
    check_options(opts)?;
    let counts = weights.counts;
    check_complexity(complexity, counts.n_rows)?;
    let columns = (0..counts.document_frequency.len())
        .into_par_iter()
        .map(|c| [AtomicU32::new(weights.idf_number(c)), AtomicU32::new(0)])
        .collect();
    let view = CountRows { weights, columns };
    lazy_greedy(&view, counts.n_rows, complexity, opts, progress)
}

/// Rows of non-negative weights and the decay state of their columns, whatever stores them.
/// A column decayed `k` times has `alpha = alpha_by_decays[k]`. The state is atomic so that a
/// second thread may score rows while the greedy's thread owns the heap ([`PairScorer`]); it is
/// only changed while no row is being scored, so relaxed loads and stores (plain moves on
/// x86-64 and ARM) suffice, the hand-over between the threads ordering them.
trait Rows: Sync {
    /// The row's diversity before any decay (every alpha is 1): its weights' sum.
    fn initial_diversity(&self, r: usize, acc: &mut NonNegativeSum) -> f64;
    fn diversity(&self, r: usize, alpha_by_decays: &[f64], acc: &mut NonNegativeSum) -> f64;
    /// Decays every column of row `r` once more.
    fn decay(&self, r: usize);
}

fn zeros(n: usize) -> Vec<AtomicU32> {
    (0..n).map(|_| AtomicU32::new(0)).collect()
}

/// One more decay of a column (only the greedy's thread writes, while no row is scored).
#[inline]
fn add_decay(decays: &AtomicU32) {
    decays.store(
        decays.load(atomic::Ordering::Relaxed) + 1,
        atomic::Ordering::Relaxed,
    );
}

/// Row access independent of the index types, resolved at compile time.
struct RowView<'a, B, C> {
    bounds: B,
    col: C,
    data: &'a [f64],
    decays: Vec<AtomicU32>,
}

impl<B: Fn(usize) -> (usize, usize) + Sync, C: Fn(usize) -> usize + Sync> Rows
    for RowView<'_, B, C>
{
    #[inline]
    fn initial_diversity(&self, r: usize, acc: &mut NonNegativeSum) -> f64 {
        let (s, e) = (self.bounds)(r);
        acc.clear();
        for &w in &self.data[s..e] {
            acc.add(w);
        }
        acc.value()
    }

    #[inline]
    fn diversity(&self, r: usize, alpha_by_decays: &[f64], acc: &mut NonNegativeSum) -> f64 {
        let (s, e) = (self.bounds)(r);
        acc.clear();
        for k in s..e {
            let decays = self.decays[(self.col)(k)].load(atomic::Ordering::Relaxed);
            acc.add(alpha_by_decays[decays as usize] * self.data[k]);
        }
        acc.value()
    }

    fn decay(&self, r: usize) {
        let (s, e) = (self.bounds)(r);
        for k in s..e {
            add_decay(&self.decays[(self.col)(k)]);
        }
    }
}

/// Weights recomputed from counts; each column's idf (by its place in a small table) and decay
/// count sit side by side, so that scoring an entry reads one place in the column arrays.
struct CountRows<'a> {
    weights: &'a Weights<'a>,
    /// `[place of its idf (Weights::idf_number), times decayed]` per column.
    columns: Vec<[AtomicU32; 2]>,
}

impl Rows for CountRows<'_> {
    #[inline]
    fn initial_diversity(&self, r: usize, _: &mut NonNegativeSum) -> f64 {
        self.weights.sum(r)
    }

    #[inline]
    fn diversity(&self, r: usize, alpha_by_decays: &[f64], acc: &mut NonNegativeSum) -> f64 {
        let counts = self.weights.counts;
        let (s, e) = counts.row_bounds(r);
        let scale = self.weights.scale(r);
        acc.clear();
        for k in s..e {
            // Column states are read at random (see crate::memory::prefetch).
            crate::memory::prefetch_ahead(&self.columns, &counts.indices, k);
            let [idf, decays] = &self.columns[counts.indices[k] as usize];
            let (idf, decays) = (
                idf.load(atomic::Ordering::Relaxed),
                decays.load(atomic::Ordering::Relaxed),
            );
            let w =
                self.weights
                    .weight_from(counts.count(k), self.weights.idf_numbered(idf), scale);
            acc.add(alpha_by_decays[decays as usize] * w);
        }
        self.weights.add_unstored(r, scale, acc);
        acc.value()
    }

    fn decay(&self, r: usize) {
        let counts = self.weights.counts;
        let (s, e) = counts.row_bounds(r);
        for &c in &counts.indices[s..e] {
            // The solo column stands for n-grams of one row each: the picked row's, never
            // scored again. It stays undecayed for the rows that share it (`share_columns`).
            if Some(c) != counts.solo_column {
                add_decay(&self.columns[c as usize][1]);
            }
        }
    }
}

/// Picks between two progress reports.
const REPORT_EVERY: usize = 1024;
/// Candidates from which a second thread scores rows ([`PairScorer`]): below, a selection
/// takes less time than starting the thread. The tests use it from one candidate on.
const HELPER_MIN_CANDIDATES: usize = if cfg!(test) { 1 } else { 1 << 14 };
/// Spins of a waiting thread between two yields of its time slice.
const SPINS_BEFORE_YIELD: u32 = 1 << 10;

/// Scores rows for the greedy: two stale rows at once, the greedy's thread one and a helper
/// thread the other, when the pool has two threads or more (docs/design.md, "Greedy
/// selection"). Which rows are scored, and so `n_evaluations`, does not depend on the helper
/// or the thread count.
///
/// The threads hand over through atomics, spinning rather than sleeping: a row is scored in
/// microseconds, about the time it takes to wake a sleeping thread.
struct PairScorer<'a, R> {
    view: &'a R,
    alpha_by_decays: &'a [f64],
    helper: Option<&'a Handover>,
}

/// What the greedy's thread and the helper exchange.
#[derive(Default)]
struct Handover {
    /// The row to score plus one; 0 for none.
    row: AtomicUsize,
    /// The helper's result (its bits), valid once `ready`.
    diversity: AtomicU64,
    ready: AtomicBool,
    /// The helper panicked (the greedy's thread then panics too, instead of waiting forever).
    failed: AtomicBool,
    stop: AtomicBool,
}

/// Spins until `done()` holds, yielding the time slice now and then.
fn spin_until(mut done: impl FnMut() -> bool) {
    let mut spins = 0u32;
    while !done() {
        std::hint::spin_loop();
        spins += 1;
        if spins == SPINS_BEFORE_YIELD {
            spins = 0;
            std::thread::yield_now();
        }
    }
}

impl Handover {
    /// The helper thread: scores each row it is handed until told to stop.
    fn serve<R: Rows>(&self, view: &R, alpha_by_decays: &[f64]) {
        let mut acc = NonNegativeSum::new();
        loop {
            let mut row = 0;
            spin_until(|| {
                row = self.row.load(atomic::Ordering::Acquire);
                row != 0 || self.stop.load(atomic::Ordering::Relaxed)
            });
            if row == 0 {
                return;
            }
            self.row.store(0, atomic::Ordering::Relaxed);
            let scored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                view.diversity(row - 1, alpha_by_decays, &mut acc)
            }));
            match scored {
                Ok(d) => self.diversity.store(d.to_bits(), atomic::Ordering::Relaxed),
                Err(_) => self.failed.store(true, atomic::Ordering::Relaxed),
            }
            self.ready.store(true, atomic::Ordering::Release);
            if self.failed.load(atomic::Ordering::Relaxed) {
                return;
            }
        }
    }
}

/// Tells the helper to stop however the greedy ends (an error included), so that the scope
/// that runs it can join it.
struct StopOnDrop<'a>(&'a Handover);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, atomic::Ordering::Relaxed);
    }
}

impl<R: Rows> PairScorer<'_, R> {
    fn one(&self, r: usize, acc: &mut NonNegativeSum) -> f64 {
        self.view.diversity(r, self.alpha_by_decays, acc)
    }

    /// The diversities of rows `a` and `b` in the current state (no decay until it returns).
    fn two(&self, a: usize, b: usize, acc: &mut NonNegativeSum) -> (f64, f64) {
        let Some(h) = self.helper else {
            return (self.one(a, acc), self.one(b, acc));
        };
        h.ready.store(false, atomic::Ordering::Relaxed);
        // Release: the helper sees every decay made before it is handed the row.
        h.row.store(b + 1, atomic::Ordering::Release);
        let da = self.one(a, acc);
        spin_until(|| h.ready.load(atomic::Ordering::Acquire));
        assert!(
            !h.failed.load(atomic::Ordering::Relaxed),
            "the greedy's helper thread panicked"
        );
        (
            da,
            f64::from_bits(h.diversity.load(atomic::Ordering::Relaxed)),
        )
    }
}

fn lazy_greedy<R: Rows>(
    view: &R,
    n_rows: usize,
    complexity: Option<&[f64]>,
    opts: &SelectOptions,
    progress: &dyn Progress,
) -> Result<Selection> {
    let c_of = |r: usize| complexity_of(complexity, r);
    let max_c = complexity.and(opts.max_complexity);
    if n_rows > u32::MAX as usize {
        return Err(Error::Capacity(format!("more than {} rows", u32::MAX)));
    }
    let initial: Vec<Entry> = (0..n_rows)
        .into_par_iter()
        .filter(|&r| is_candidate(c_of(r), max_c))
        .map_init(NonNegativeSum::new, |acc, r| Entry {
            score: c_of(r) * view.initial_diversity(r, acc),
            row: r as u32,
            stamp: 0,
        })
        .collect();
    let n_candidates = initial.len();
    let heap = Heap::new(initial, complexity);
    let target = opts.budget.min(n_candidates);
    // alpha of a column decayed k times is the k-fold product, rounded after each factor as a
    // running product would be; no column is decayed more often than there are picks.
    let mut alpha_by_decays = Vec::with_capacity(target + 1);
    alpha_by_decays.push(1.0f64);
    for k in 0..target {
        alpha_by_decays.push(alpha_by_decays[k] * opts.decay);
    }
    let wants_helper = rayon::current_num_threads() > 1 && n_candidates >= HELPER_MIN_CANDIDATES;
    let handover = Handover::default();
    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&handover);
        let with_helper = wants_helper && {
            let (alpha_by_decays, handover) = (&alpha_by_decays, &handover);
            // A thread that cannot start (a process limit) leaves the greedy's thread to
            // score both rows: the same work, one thread.
            std::thread::Builder::new()
                .name("iterit-greedy".into())
                .spawn_scoped(scope, move || handover.serve(view, alpha_by_decays))
                .is_ok()
        };
        let scorer = PairScorer {
            view,
            alpha_by_decays: &alpha_by_decays,
            helper: with_helper.then_some(&handover),
        };
        greedy_picks(&scorer, heap, n_candidates, target, opts, progress)
    })
}

/// The lazy greedy's loop over the heap of initial scores (see the module documentation).
fn greedy_picks<R: Rows>(
    scorer: &PairScorer<'_, R>,
    mut heap: Heap<'_>,
    n_candidates: usize,
    target: usize,
    opts: &SelectOptions,
    progress: &dyn Progress,
) -> Result<Selection> {
    let view = scorer.view;
    let mut n_evaluations = n_candidates as u64;
    let mut indices = Vec::with_capacity(target);
    let mut scores = Vec::with_capacity(target);
    let mut acc = NonNegativeSum::new();
    report(progress, Phase::Greedy, 0, target)?;
    while indices.len() < target {
        let Some(top) = heap.pop() else { break };
        let picked = indices.len() as u32;
        let row = top.row as usize;
        let score = if top.stamp == picked {
            top.score
        } else if let Some(&next) = heap.peek().filter(|next| next.stamp != picked) {
            // The next one is stale too, and nearly always needs scoring before the next pick
            // (all but 1.2% of them on the 1M benchmark corpus): both are scored at once and
            // go back with their fresh scores. The picks stay those of scoring one at a time:
            // any upper bounds in the heap give them, and fresh scores are upper bounds.
            // The next one is rescored where it lies (one sift down, instead of a pop and a
            // push).
            let (d_top, d_next) = scorer.two(row, next.row as usize, &mut acc);
            n_evaluations += 2;
            heap.replace_top(Entry {
                score: heap.complexity(next.row) * d_next,
                stamp: picked,
                ..next
            });
            heap.push(Entry {
                score: heap.complexity(top.row) * d_top,
                stamp: picked,
                ..top
            });
            continue;
        } else {
            let fresh = heap.complexity(top.row) * scorer.one(row, &mut acc);
            n_evaluations += 1;
            if fresh != top.score {
                // Still an upper bound for later; equal means it is the maximum right now.
                heap.push(Entry {
                    score: fresh,
                    stamp: picked,
                    ..top
                });
                continue;
            }
            fresh
        };
        indices.push(i64::from(top.row));
        scores.push(score);
        view.decay(row);
        if indices.len() % REPORT_EVERY == 0 {
            report(progress, Phase::Greedy, indices.len(), target)?;
        }
    }
    report(progress, Phase::Greedy, indices.len(), target)?;
    Ok(Selection {
        shortfall: opts.budget - indices.len(),
        indices,
        scores,
        n_candidates,
        n_evaluations,
    })
}

#[cfg(test)]
mod tests;
