//! N-gram counts of every text (docs/design.md, "TF-IDF"), a chunk of texts at a time.
//!
//! Tokens are interned to `u32` ids in order of first occurrence, and an n-gram of length
//! `n > 1` is interned as the pair (id of its (n-1)-gram prefix, id of its last token): no
//! string is built per occurrence, and the vocabulary is exact (no hashing collisions). Each
//! chunk's texts are lowercased and tokenised, their n-grams interned ([`crate::intern`]) and
//! turned into rows of (column, count); only the rows and the distinct n-grams (a key and an
//! id each) outlive the chunk. Columns are numbered by n-gram length, then by first occurrence
//! in text order. Document frequencies are counted from the finished rows, where each column
//! appears at most once per row (docs/design.md, "Scale").

use hashbrown::HashMap;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::intern::{Interner, OwnedToken};
use crate::progress::{report, Phase, Progress};
use crate::text::Analyzer;
use crate::tfidf::{NgramNames, TfidfOptions, MAX_NGRAM};

mod shared;
pub use shared::count_shared_ngrams;

/// Texts per chunk: bounds the memory of the per-occurrence arrays of a chunk. The tests use
/// tiny chunks, so that small inputs cross chunk boundaries.
#[cfg(not(test))]
const CHUNK_TEXTS: usize = 1 << 14;
#[cfg(test)]
const CHUNK_TEXTS: usize = 7;
/// Texts per parallel task when rows are built.
const ROW_BLOCK: usize = 256;
/// Counts of this value or more are kept in [`Counts::overflow`].
const BIG_COUNT: u8 = u8::MAX;

/// N-gram counts in CSR form: row `i` holds columns `indices[indptr[i]..indptr[i + 1]]`
/// (strictly increasing), each with its count in the row's text.
#[derive(Clone, Debug)]
pub struct Counts {
    pub n_rows: usize,
    pub n_cols: usize,
    pub indptr: Vec<i64>,
    pub indices: Vec<u32>,
    /// One byte per stored entry; [`BIG_COUNT`] means "look in `overflow`".
    small: Vec<u8>,
    overflow: HashMap<usize, u32>,
    /// Number of texts containing each column's n-gram.
    pub document_frequency: Vec<u32>,
    /// Present when [`TfidfOptions::keep_vocabulary`] was set.
    pub names: Option<NgramNames>,
    /// After [`Counts::share_columns`]: the one column that stands for every column held by a
    /// single row.
    pub solo_column: Option<u32>,
    /// From [`count_shared_ngrams`], per row: how many n-grams of that text only occur in it
    /// once. They are not stored as entries: each would be the solo column with a count of 1
    /// (docs/design.md, "Scale"). Empty otherwise.
    pub solo_once: Vec<u32>,
}

impl Counts {
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// The count of stored entry `k`.
    #[inline]
    pub fn count(&self, k: usize) -> u32 {
        match self.small[k] {
            BIG_COUNT => self.overflow[&k],
            c => u32::from(c),
        }
    }

    /// The n-grams of row `r`'s text only that occur in it once and are not stored (see
    /// [`Counts::solo_once`]).
    #[inline]
    pub fn solo_once(&self, r: usize) -> u32 {
        self.solo_once.get(r).copied().unwrap_or(0)
    }

    #[inline]
    pub fn row_bounds(&self, r: usize) -> (usize, usize) {
        (self.indptr[r] as usize, self.indptr[r + 1] as usize)
    }

    /// Renumbers the columns for selection, where only the columns several rows share have a
    /// state worth keeping (docs/design.md, "Scale"). Afterwards the columns held by two rows
    /// or more are numbered `0..n_shared` in their old order, every column held by one row is
    /// [`Counts::solo_column`] (`n_shared`), and `document_frequency` has `n_shared + 1`
    /// entries, the last one 1. Rows stay in the same order but are no longer sorted, and a
    /// row may hold the solo column many times; the vocabulary is dropped.
    ///
    /// Why: a column in one row only is never decayed before its row is picked, so its weight
    /// is a function of its count and its row alone. In a large corpus most distinct n-grams
    /// are such (87% of the columns of the 1M-text benchmark corpus, 29% of the entries), and
    /// the selector's per-column state shrinks by as much: the state it reads at random for
    /// every entry of every row it scores then mostly fits in the cache.
    pub fn share_columns(&mut self) {
        if self.solo_column.is_some() {
            return;
        }
        let mut shared_df: Vec<u32> = self
            .document_frequency
            .iter()
            .copied()
            .filter(|&df| df >= 2)
            .collect();
        // Columns in one row only take the number after the last shared column.
        let solo = shared_df.len() as u32;
        shared_df.push(1);
        let mut next_shared = 0u32;
        let dense: Vec<u32> = self
            .document_frequency
            .iter()
            .map(|&df| {
                if df < 2 {
                    return solo;
                }
                next_shared += 1;
                next_shared - 1
            })
            .collect();
        self.indices
            .par_iter_mut()
            .for_each(|c| *c = dense[*c as usize]);
        self.document_frequency = shared_df;
        self.solo_column = Some(solo);
        self.names = None;
    }
}

/// Per-text arrays of ids, flattened: text `d` owns `ids[offsets[d]..offsets[d + 1]]`.
struct Ragged {
    offsets: Vec<usize>,
    ids: Vec<u32>,
}

impl Ragged {
    fn doc(&self, d: usize) -> &[u32] {
        &self.ids[self.offsets[d]..self.offsets[d + 1]]
    }
}

/// Splits `data` into consecutive mutable pieces `offsets[d]..offsets[d + 1]`.
pub(crate) fn split_by_offsets<'a, T>(
    mut data: &'a mut [T],
    offsets: &[usize],
) -> Vec<&'a mut [T]> {
    let mut pieces = Vec::with_capacity(offsets.len().saturating_sub(1));
    for w in offsets.windows(2) {
        let (head, tail) = data.split_at_mut(w[1] - w[0]);
        pieces.push(head);
        data = tail;
    }
    pieces
}

/// The interners of every n-gram length, kept across chunks.
struct Vocabulary {
    tokens: Interner<OwnedToken>,
    /// `pairs[n - 2]` interns the n-grams of length `n >= 2` as (prefix id, token id).
    pairs: Vec<Interner<[u32; 2]>>,
}

impl Vocabulary {
    fn new(max_n: usize) -> Self {
        Self {
            tokens: Interner::new(),
            pairs: (2..=max_n).map(|_| Interner::new()).collect(),
        }
    }

    /// Ids of the n-grams of every length up to `max_n`, `levels[n - 1]`, of `texts`.
    fn chunk(&mut self, texts: &[&str], analyzer: &Analyzer, max_n: usize) -> Result<Vec<Ragged>> {
        let mut levels = vec![self.token_ids(texts, analyzer)?];
        for n in 2..=max_n {
            let next = next_level(&levels[0], &levels[n - 2], n);
            let ids = self.pairs[n - 2].intern(&next.ids_as_keys)?;
            levels.push(Ragged {
                offsets: next.offsets,
                ids,
            });
        }
        Ok(levels)
    }

    /// The token ids of each of `texts`, lowercased and tokenised.
    fn token_ids(&mut self, texts: &[&str], analyzer: &Analyzer) -> Result<Ragged> {
        let lowered: Vec<_> = texts.par_iter().map(|t| analyzer.lowered(t)).collect();
        // Tokens of a block of texts in one vector (not one per text), with each text's count.
        let blocks: Vec<(Vec<&str>, Vec<usize>)> = lowered
            .par_chunks(ROW_BLOCK)
            .map(|block| {
                let mut tokens = Vec::new();
                let mut lens = Vec::with_capacity(block.len());
                for t in block {
                    let before = tokens.len();
                    analyzer.words.for_each_token(t, |token| tokens.push(token));
                    lens.push(tokens.len() - before);
                }
                (tokens, lens)
            })
            .collect();
        let mut offsets = Vec::with_capacity(texts.len() + 1);
        offsets.push(0);
        for len in blocks.iter().flat_map(|(_, lens)| lens) {
            offsets.push(offsets.last().copied().unwrap_or(0) + len);
        }
        let ids = {
            let mut flat: Vec<&str> = Vec::with_capacity(offsets.last().copied().unwrap_or(0));
            for (tokens, _) in blocks {
                flat.extend_from_slice(&tokens);
            }
            self.tokens.intern(&flat)?
        };
        drop(lowered);
        Ok(Ragged { offsets, ids })
    }
}

/// The keys of the n-grams of length `n`, per text.
struct NextLevel {
    offsets: Vec<usize>,
    ids_as_keys: Vec<u64>,
}

/// Where each text's n-grams of length `n` start among a chunk's, from its tokens.
fn level_offsets(tokens: &Ragged, n: usize) -> Vec<usize> {
    let n_docs = tokens.offsets.len() - 1;
    let mut offsets = Vec::with_capacity(n_docs + 1);
    offsets.push(0usize);
    for d in 0..n_docs {
        let len = (tokens.offsets[d + 1] - tokens.offsets[d]).saturating_sub(n - 1);
        offsets.push(offsets[d] + len);
    }
    offsets
}

/// Keys of the n-grams of length `n`, given the ids of length `n - 1` and the tokens: an
/// n-gram is the pair (its (n-1)-gram prefix, its last token).
fn next_level(tokens: &Ragged, prev: &Ragged, n: usize) -> NextLevel {
    let offsets = level_offsets(tokens, n);
    let n_docs = offsets.len() - 1;
    let mut keys = vec![0u64; offsets[n_docs]];
    split_by_offsets(&mut keys, &offsets)
        .into_par_iter()
        .enumerate()
        .for_each(|(d, out)| {
            let (toks, prefixes) = (tokens.doc(d), prev.doc(d));
            for (p, key) in out.iter_mut().enumerate() {
                *key = (u64::from(prefixes[p]) << 32) | u64::from(toks[p + n - 1]);
            }
        });
    NextLevel {
        offsets,
        ids_as_keys: keys,
    }
}

/// A block of rows built in parallel.
#[derive(Default)]
struct RowBlock {
    ids: Vec<u32>,
    /// Counts as stored ([`BIG_COUNT`] for a large one), and the large ones by entry.
    small: Vec<u8>,
    big: Vec<(usize, u32)>,
    /// Entries per row, and per row and length.
    lens: Vec<u32>,
    level_lens: Vec<u32>,
    /// Per row: n-grams with an id local to it that occur once, not stored.
    solo_once: Vec<u32>,
}

/// Rows under construction: per text, the (id, count) pairs of each n-gram length in the
/// range, each length's ids increasing. Ids become columns once every length's size is known.
#[derive(Default)]
struct Rows {
    ends: Vec<usize>,
    ids: Vec<u32>,
    small: Vec<u8>,
    overflow: HashMap<usize, u32>,
    /// Entries of each length in each row: `level_lens[row * n_levels + level]`.
    level_lens: Vec<u32>,
    /// See [`Counts::solo_once`].
    solo_once: Vec<u32>,
}

impl Rows {
    /// Appends the rows of one chunk (`levels` are the chunk's ids of the lengths in range).
    fn append(&mut self, levels: &[Ragged]) {
        let n_docs = levels[0].offsets.len() - 1;
        let blocks: Vec<RowBlock> = (0..n_docs)
            .into_par_iter()
            .step_by(ROW_BLOCK)
            .map(|start| {
                let mut b = RowBlock::default();
                let mut scratch = Vec::new();
                let mut local_counts: Vec<u32> = Vec::new();
                for d in start..(start + ROW_BLOCK).min(n_docs) {
                    let before = b.ids.len();
                    let mut solo_once = 0;
                    for level in levels {
                        let level_start = b.ids.len();
                        let mut entry = |id: u32, run: usize| {
                            if run >= usize::from(BIG_COUNT) {
                                b.big.push((b.ids.len(), run as u32));
                                b.small.push(BIG_COUNT);
                            } else {
                                b.small.push(run as u8);
                            }
                            b.ids.push(id);
                        };
                        // Ids local to the text (shared::LOCAL set) are numbered 0, 1, ... by
                        // first occurrence: counted by number, not sorted. They come after
                        // the interned ids, in number order, as a sort would put them.
                        scratch.clear();
                        local_counts.clear();
                        for &id in level.doc(d) {
                            if id & shared::LOCAL == 0 {
                                scratch.push(id);
                            } else {
                                let number = (id & !shared::LOCAL) as usize;
                                if number >= local_counts.len() {
                                    local_counts.resize(number + 1, 0);
                                }
                                local_counts[number] += 1;
                            }
                        }
                        scratch.sort_unstable();
                        let mut k = 0;
                        while k < scratch.len() {
                            let id = scratch[k];
                            let run = scratch[k..].iter().take_while(|&&x| x == id).count();
                            k += run;
                            entry(id, run);
                        }
                        for (number, &run) in local_counts.iter().enumerate() {
                            if run == 1 {
                                solo_once += 1;
                            } else {
                                entry(shared::LOCAL | number as u32, run as usize);
                            }
                        }
                        b.level_lens.push((b.ids.len() - level_start) as u32);
                    }
                    b.lens.push((b.ids.len() - before) as u32);
                    b.solo_once.push(solo_once);
                }
                b
            })
            .collect();
        // Copied into place in parallel: the arrays hold every chunk's entries.
        let old = self.ids.len();
        let mut bounds = vec![0usize];
        for b in &blocks {
            bounds.push(bounds.last().copied().unwrap_or(0) + b.ids.len());
        }
        let new = old + bounds.last().copied().unwrap_or(0);
        self.ids.resize(new, 0);
        self.small.resize(new, 0);
        split_by_offsets(&mut self.ids[old..], &bounds)
            .into_par_iter()
            .zip(split_by_offsets(&mut self.small[old..], &bounds))
            .zip(&blocks)
            .for_each(|((ids, small), b)| {
                ids.copy_from_slice(&b.ids);
                small.copy_from_slice(&b.small);
            });
        for (b, base) in blocks.iter().zip(bounds) {
            for &(j, c) in &b.big {
                self.overflow.insert(old + base + j, c);
            }
            let mut end = self.ends.last().copied().unwrap_or(0);
            for &len in &b.lens {
                end += len as usize;
                self.ends.push(end);
            }
            self.level_lens.extend_from_slice(&b.level_lens);
            self.solo_once.extend_from_slice(&b.solo_once);
        }
    }

    fn reserve(&mut self, entries: usize) {
        let more = entries.saturating_sub(self.ids.len());
        self.ids.reserve_exact(more);
        self.small.reserve_exact(more);
    }

    /// After the first chunk: sizes the row arrays for `n_docs` rows (plus a tenth), so that
    /// they do not grow by doubling: that slack would be the largest allocation of all.
    fn reserve_after_first(&mut self, first_docs: usize, n_docs: usize) {
        if first_docs < n_docs {
            let expected = self.ids.len() as f64 * n_docs as f64 / first_docs as f64 * 1.1;
            self.reserve(expected as usize);
        }
    }

    /// Turns each length's ids into columns (`starts[level]` plus the id), in place; an id
    /// of an n-gram of one text only ([`shared::LOCAL`] set) becomes column `solo`.
    fn number_columns(&mut self, starts: &[usize], solo: u32) {
        let n_levels = starts.len();
        let n_rows = self.ends.len();
        let block_starts: Vec<usize> = (0..n_rows).step_by(ROW_BLOCK).collect();
        let mut offsets: Vec<usize> = block_starts
            .iter()
            .map(|&r| if r == 0 { 0 } else { self.ends[r - 1] })
            .collect();
        offsets.push(self.ids.len());
        let level_lens = &self.level_lens;
        split_by_offsets(&mut self.ids, &offsets)
            .into_par_iter()
            .zip(block_starts)
            .for_each(|(ids, first_row)| {
                let mut k = 0;
                for r in first_row..(first_row + ROW_BLOCK).min(n_rows) {
                    for (level, start) in starts.iter().enumerate() {
                        for _ in 0..level_lens[r * n_levels + level] {
                            ids[k] = if ids[k] & shared::LOCAL == 0 {
                                ids[k] + *start as u32
                            } else {
                                solo
                            };
                            k += 1;
                        }
                    }
                }
            });
    }
}

/// Counts of the n-grams of `texts` with lengths in `opts.ngram_range` (see the module
/// documentation); `progress` hears [`Phase::Ngrams`] after every chunk.
pub fn count_ngrams(
    texts: &[&str],
    analyzer: &Analyzer,
    opts: &TfidfOptions,
    progress: &dyn Progress,
) -> Result<Counts> {
    let (min_n, max_n) = check_input(opts, texts.len())?;
    let n_docs = texts.len();
    let mut vocabulary = Vocabulary::new(max_n);
    let mut rows = Rows::default();
    report(progress, Phase::Ngrams, 0, n_docs)?;
    for first in (0..n_docs).step_by(CHUNK_TEXTS) {
        let end = (first + CHUNK_TEXTS).min(n_docs);
        let levels = vocabulary.chunk(&texts[first..end], analyzer, max_n)?;
        rows.append(&levels[min_n - 1..]);
        if first == 0 {
            rows.reserve_after_first(end, n_docs);
        }
        report(progress, Phase::Ngrams, end, n_docs)?;
    }

    assemble(vocabulary, rows, n_docs, opts, false)
}

/// The n-gram lengths of `opts` once checked, and a check of the number of texts.
fn check_input(opts: &TfidfOptions, n_docs: usize) -> Result<(usize, usize)> {
    let (min_n, max_n) = opts.ngram_range;
    if min_n < 1 || min_n > max_n || max_n > MAX_NGRAM {
        return Err(Error::InvalidArgument(format!(
            "ngram_range must satisfy 1 <= min <= max <= {MAX_NGRAM}, got ({min_n}, {max_n})"
        )));
    }
    if n_docs > u32::MAX as usize {
        return Err(Error::Capacity(format!("more than {} texts", u32::MAX)));
    }
    Ok((min_n, max_n))
}

/// Each task counts the lowest-numbered columns in an array of its own: at least this many,
/// and as many as [`PRIVATE_BYTES`] holds for all the tasks together (every column on a few
/// cores). The tests use a few columns and tiny tasks, so that small inputs take both ways and
/// several tasks.
const PRIVATE_COLUMNS: usize = if cfg!(test) { 3 } else { 1 << 15 };
const PRIVATE_BYTES: usize = if cfg!(test) { 12 } else { 128 << 20 };
/// Entries per task when document frequencies are counted, at least.
const DF_TASK: usize = if cfg!(test) { 5 } else { 1 << 20 };

/// The number of rows holding each column: its entries, since a row holds a column at most
/// once. Column `skip` (the solo column, held many times by a row) is not counted.
///
/// Tasks count the lowest-numbered columns in arrays of their own, added up at the end, and
/// the others in shared atomic counters (a sum, so the order does not matter). Columns are
/// numbered by first occurrence, so the first ones are the words every text holds: counting
/// them in shared counters would move their cache lines from core to core with almost every
/// entry. A plain add is also cheaper than an atomic one, wherever the memory allows.
fn document_frequency(columns: &[u32], n_cols: usize, skip: Option<u32>) -> Vec<u32> {
    use std::sync::atomic::{AtomicU32, Ordering};
    let per_task = columns
        .len()
        .div_ceil(rayon::current_num_threads())
        .max(DF_TASK);
    let n_tasks = columns.len().div_ceil(per_task).max(1);
    let private = (PRIVATE_BYTES / 4 / n_tasks)
        .max(PRIVATE_COLUMNS)
        .min(n_cols);
    // Columns `private..n_cols`, by their number less `private`.
    let rest: Vec<AtomicU32> = (private..n_cols).map(|_| AtomicU32::new(0)).collect();
    let heads: Vec<Vec<u32>> = columns
        .par_chunks(per_task)
        .map(|part| {
            let mut head = vec![0u32; private];
            for &c in part.iter().filter(|&&c| Some(c) != skip) {
                match head.get_mut(c as usize) {
                    Some(count) => *count += 1,
                    None => {
                        rest[c as usize - private].fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            head
        })
        .collect();
    let mut df = vec![0u32; private];
    for head in heads {
        for (d, h) in df.iter_mut().zip(head) {
            *d += h;
        }
    }
    df.extend(rest.into_iter().map(AtomicU32::into_inner));
    df
}

/// The counts matrix from the rows and the vocabulary of every chunk: ids become columns
/// (n-gram length first), and the vocabulary is kept when asked for. With `solo_entries`
/// (the rows of [`count_shared_ngrams`]) the n-grams of one text only, which have no id, are
/// one more column, and the columns are shared ([`Counts::share_columns`]).
fn assemble(
    vocabulary: Vocabulary,
    mut rows: Rows,
    n_docs: usize,
    opts: &TfidfOptions,
    solo_entries: bool,
) -> Result<Counts> {
    let (min_n, max_n) = opts.ngram_range;
    let tokens = vocabulary.tokens.finish(opts.keep_vocabulary);
    let pairs: Vec<_> = vocabulary
        .pairs
        .into_iter()
        .map(|p| p.finish(opts.keep_vocabulary))
        .collect();
    crate::memory::give_back_freed();
    let mut sizes = vec![tokens.len];
    sizes.extend(pairs.iter().map(|p| p.len));
    let mut column_starts = Vec::with_capacity(max_n - min_n + 1);
    let mut n_cols = 0usize;
    for size in &sizes[min_n - 1..] {
        column_starts.push(n_cols);
        n_cols += size;
    }
    let solo = solo_entries.then_some(n_cols as u32);
    n_cols += usize::from(solo_entries);
    if n_cols > u32::MAX as usize {
        return Err(Error::Capacity(format!(
            "{n_cols} distinct n-grams exceed {}",
            u32::MAX
        )));
    }
    rows.number_columns(&column_starts, solo.unwrap_or(u32::MAX));
    let mut document_frequency = document_frequency(&rows.ids, n_cols, solo);
    if let Some(solo) = solo {
        // It stands for n-grams of one text each.
        document_frequency[solo as usize] = 1;
    }
    let names = (opts.keep_vocabulary && !solo_entries).then(|| NgramNames {
        tokens: tokens
            .keys
            .unwrap_or_default()
            .into_iter()
            .map(OwnedToken::into_string)
            .collect(),
        pairs: pairs
            .into_iter()
            .map(|p| {
                p.keys
                    .unwrap_or_default()
                    .into_iter()
                    .map(|[prefix, token]| (prefix, token))
                    .collect()
            })
            .collect(),
        column_starts,
        ngram_range: opts.ngram_range,
        n_cols,
    });
    let mut indptr = Vec::with_capacity(n_docs + 1);
    indptr.push(0i64);
    indptr.extend(rows.ends.iter().map(|&e| e as i64));
    let mut counts = Counts {
        n_rows: n_docs,
        n_cols,
        indptr,
        indices: rows.ids,
        small: rows.small,
        overflow: rows.overflow,
        document_frequency,
        names,
        solo_column: None,
        solo_once: if solo_entries {
            rows.solo_once
        } else {
            Vec::new()
        },
    };
    if solo_entries {
        counts.share_columns();
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        /// Counted in shared counters, in each task's own (the lowest columns) or both, and
        /// over one task or several: the plain count, the skipped column at 0.
        #[test]
        fn document_frequency_is_the_plain_count(
            columns in proptest::collection::vec(0u32..9, 0..60),
            skip in proptest::option::of(0u32..9),
            threads in 1usize..4,
        ) {
            let mut plain = vec![0u32; 9];
            for &c in &columns {
                if Some(c) != skip {
                    plain[c as usize] += 1;
                }
            }
            let counted = crate::with_threads(Some(threads), || {
                super::document_frequency(&columns, 9, skip)
            })
            .unwrap();
            proptest::prop_assert_eq!(counted, plain);
        }
    }
}
