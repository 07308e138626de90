//! N-gram extraction and TF-IDF rows (docs/design.md, "TF-IDF").
//!
//! Tokens are interned to `u32` ids in order of first occurrence, and an n-gram of length
//! `n > 1` is interned as the pair (id of its (n-1)-gram prefix, id of its last token), so no
//! string is built per occurrence and the vocabulary is exact (no hashing collisions). Interning
//! runs in parallel ([`crate::intern`]) and numbers ids exactly as a sequential pass would. Columns
//! are numbered by n-gram length, then by first occurrence in document order. Row sums use
//! [`crate::exact_sum`], so the weights do not depend on column order.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::exact_sum::NonNegativeSum;
use crate::intern::intern;
use crate::text::WordChars;

/// The largest n-gram length accepted; longer n-grams are almost always unique per document
/// and only cost memory.
pub const MAX_NGRAM: usize = 16;

/// How a count becomes a weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// scikit-learn's `TfidfVectorizer` defaults: raw counts, smooth idf
    /// `ln((1 + n) / (1 + df)) + 1`, rows L2-normalised.
    Sklearn,
    /// The paper's Eq. 5: `tf = count / total n-gram count of the text`, `idf = ln(n / df)`,
    /// no normalisation.
    Paper,
}

impl std::str::FromStr for Variant {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sklearn" => Ok(Variant::Sklearn),
            "paper" => Ok(Variant::Paper),
            other => Err(Error::InvalidArgument(format!(
                "variant must be 'sklearn' or 'paper', got {other:?}"
            ))),
        }
    }
}

#[derive(Clone, Debug)]
pub struct TfidfOptions {
    /// Inclusive range of n-gram lengths, `1 <= min <= max <= MAX_NGRAM`.
    pub ngram_range: (usize, usize),
    pub variant: Variant,
    /// Keep what is needed to name every column ([`TfidfMatrix::ngram`]); costs memory.
    pub keep_vocabulary: bool,
}

impl Default for TfidfOptions {
    fn default() -> Self {
        Self {
            ngram_range: (1, 3),
            variant: Variant::Sklearn,
            keep_vocabulary: true,
        }
    }
}

/// Names the columns of a [`TfidfMatrix`]: the interned tokens and, for each n-gram length
/// `n >= 2`, the (prefix id, token id) pair of every n-gram id.
#[derive(Clone, Debug)]
pub struct NgramNames {
    tokens: Vec<String>,
    /// `pairs[n - 2][id]` for n-grams of length `n >= 2`.
    pairs: Vec<Vec<(u32, u32)>>,
    /// `column_starts[k]` is the first column of n-grams of length `ngram_range.0 + k`.
    column_starts: Vec<usize>,
    ngram_range: (usize, usize),
    n_cols: usize,
}

impl NgramNames {
    pub fn len(&self) -> usize {
        self.n_cols
    }

    pub fn is_empty(&self) -> bool {
        self.n_cols == 0
    }

    /// The n-gram of column `col`, words joined by one space (as scikit-learn names features).
    pub fn get(&self, col: usize) -> Option<String> {
        if col >= self.n_cols {
            return None;
        }
        let level = self.column_starts.partition_point(|&start| start <= col) - 1;
        let n = self.ngram_range.0 + level;
        let mut id = (col - self.column_starts[level]) as u32;
        let mut words = Vec::with_capacity(n);
        for len in (2..=n).rev() {
            let (prefix, token) = self.pairs[len - 2][id as usize];
            words.push(self.tokens[token as usize].as_str());
            id = prefix;
        }
        words.push(self.tokens[id as usize].as_str());
        words.reverse();
        Some(words.join(" "))
    }

    /// Every column's n-gram, in column order.
    pub fn to_vec(&self) -> Vec<String> {
        (0..self.n_cols)
            .map(|c| self.get(c).expect("column in range"))
            .collect()
    }
}

/// TF-IDF weights in CSR form: row `i` holds columns `indices[indptr[i]..indptr[i + 1]]`
/// (strictly increasing) with weights `data[..]`.
#[derive(Clone, Debug)]
pub struct TfidfMatrix {
    pub n_rows: usize,
    pub n_cols: usize,
    pub indptr: Vec<i64>,
    pub indices: Vec<i32>,
    pub data: Vec<f64>,
    /// Number of documents containing each column's n-gram.
    pub document_frequency: Vec<u32>,
    /// Present when [`TfidfOptions::keep_vocabulary`] was set.
    pub names: Option<NgramNames>,
}

impl TfidfMatrix {
    pub fn nnz(&self) -> usize {
        self.data.len()
    }

    pub fn rows(&self) -> crate::select::CsrRows<'_, i64, i32> {
        crate::select::CsrRows {
            n_cols: self.n_cols,
            indptr: &self.indptr,
            indices: &self.indices,
            data: &self.data,
        }
    }
}

/// Per-document arrays of ids, flattened: document `d` owns `ids[offsets[d]..offsets[d + 1]]`.
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
fn split_by_offsets<'a, T>(mut data: &'a mut [T], offsets: &[usize]) -> Vec<&'a mut [T]> {
    let mut pieces = Vec::with_capacity(offsets.len().saturating_sub(1));
    for w in offsets.windows(2) {
        let (head, tail) = data.split_at_mut(w[1] - w[0]);
        pieces.push(head);
        data = tail;
    }
    pieces
}

/// Token ids of every document (ids by first occurrence) and the distinct tokens.
fn tokenize<'t>(texts: &[&'t str], words: &WordChars) -> Result<(Ragged, Vec<&'t str>)> {
    let per_doc: Vec<Vec<&'t str>> = texts.par_iter().map(|t| words.tokens(t)).collect();
    let mut offsets = Vec::with_capacity(texts.len() + 1);
    offsets.push(0);
    for doc in &per_doc {
        offsets.push(offsets.last().copied().unwrap_or(0) + doc.len());
    }
    let flat: Vec<&'t str> = per_doc.concat();
    drop(per_doc);
    let (ids, tokens) = intern(&flat)?;
    Ok((Ragged { offsets, ids }, tokens))
}

/// Ids of the n-grams of length `n`, given those of length `n - 1` and the tokens: an n-gram
/// is the pair (its (n-1)-gram prefix, its last token).
fn next_level(tokens: &Ragged, prev: &Ragged, n: usize) -> Result<(Ragged, Vec<(u32, u32)>)> {
    let n_docs = tokens.offsets.len() - 1;
    let mut offsets = Vec::with_capacity(n_docs + 1);
    offsets.push(0usize);
    for d in 0..n_docs {
        let len = (tokens.offsets[d + 1] - tokens.offsets[d]).saturating_sub(n - 1);
        offsets.push(offsets[d] + len);
    }
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
    let (ids, distinct) = intern(&keys)?;
    let pairs = distinct
        .iter()
        .map(|&k| ((k >> 32) as u32, k as u32))
        .collect();
    Ok((Ragged { offsets, ids }, pairs))
}

/// TF-IDF rows of `texts` (already lowercased by the caller, see [`crate::text`]).
pub fn tfidf(texts: &[&str], words: &WordChars, opts: &TfidfOptions) -> Result<TfidfMatrix> {
    let (min_n, max_n) = opts.ngram_range;
    if min_n < 1 || min_n > max_n || max_n > MAX_NGRAM {
        return Err(Error::InvalidArgument(format!(
            "ngram_range must satisfy 1 <= min <= max <= {MAX_NGRAM}, got ({min_n}, {max_n})"
        )));
    }
    let n_docs = texts.len();
    let (token_ids, tokens) = tokenize(texts, words)?;

    // levels[n - 1] holds the ids of the n-grams of length n; levels[0] are the tokens.
    let mut levels: Vec<Ragged> = Vec::with_capacity(max_n);
    let mut level_sizes = vec![tokens.len()];
    let mut pairs_by_level = Vec::new();
    levels.push(token_ids);
    for n in 2..=max_n {
        let (level, pairs) = next_level(&levels[0], &levels[n - 2], n)?;
        level_sizes.push(pairs.len());
        levels.push(level);
        pairs_by_level.push(pairs);
    }

    let mut column_starts = Vec::with_capacity(max_n - min_n + 1);
    let mut n_cols = 0usize;
    for size in &level_sizes[min_n - 1..] {
        column_starts.push(n_cols);
        n_cols += size;
    }
    if n_cols > i32::MAX as usize {
        return Err(Error::Capacity(format!(
            "{n_cols} distinct n-grams exceed the {} columns a CSR matrix with int32 indices holds",
            i32::MAX
        )));
    }

    // Sorted (column, count) pairs of every document, built in parallel a block of documents
    // at a time so that only one block exists twice (as per-document vectors and flattened).
    const BLOCK: usize = 1 << 16;
    let row_of = |d: usize| {
        let total: usize = levels[min_n - 1..].iter().map(|l| l.doc(d).len()).sum();
        let mut cols: Vec<i32> = Vec::with_capacity(total);
        for (k, level) in levels[min_n - 1..].iter().enumerate() {
            let start = column_starts[k] as i32;
            cols.extend(level.doc(d).iter().map(|&id| start + id as i32));
        }
        cols.sort_unstable();
        let mut row: Vec<(i32, u32)> = Vec::with_capacity(cols.len());
        for c in cols {
            match row.last_mut() {
                Some((last, count)) if *last == c => *count += 1,
                _ => row.push((c, 1)),
            }
        }
        row
    };
    let mut indptr = Vec::with_capacity(n_docs + 1);
    indptr.push(0i64);
    // Every n-gram occurrence adds at most one stored entry: an upper bound, so no regrowth.
    let occurrences: usize = levels[min_n - 1..].iter().map(|l| l.ids.len()).sum();
    let mut indices: Vec<i32> = Vec::with_capacity(occurrences);
    let mut counts: Vec<u32> = Vec::with_capacity(occurrences);
    let mut document_frequency = vec![0u32; n_cols];
    for block_start in (0..n_docs).step_by(BLOCK) {
        let block_end = (block_start + BLOCK).min(n_docs);
        let rows: Vec<Vec<(i32, u32)>> = (block_start..block_end)
            .into_par_iter()
            .map(row_of)
            .collect();
        for row in &rows {
            for &(c, count) in row {
                indices.push(c);
                counts.push(count);
                document_frequency[c as usize] += 1;
            }
            indptr.push(indices.len() as i64);
        }
    }
    drop(levels);
    indices.shrink_to_fit();
    counts.shrink_to_fit();
    let nnz = indices.len();

    let n = n_docs as f64;
    let idf: Vec<f64> = document_frequency
        .par_iter()
        .map(|&df| match opts.variant {
            Variant::Sklearn => ((n + 1.0) / (f64::from(df) + 1.0)).ln() + 1.0,
            Variant::Paper => (n / f64::from(df)).ln(),
        })
        .collect();

    let mut data = vec![0.0f64; nnz];
    let row_offsets: Vec<usize> = indptr.iter().map(|&p| p as usize).collect();
    split_by_offsets(&mut data, &row_offsets)
        .into_par_iter()
        .enumerate()
        .for_each_init(NonNegativeSum::new, |acc, (d, out)| {
            let (start, end) = (row_offsets[d], row_offsets[d + 1]);
            let cols = &indices[start..end];
            let cnts = &counts[start..end];
            match opts.variant {
                Variant::Sklearn => {
                    acc.clear();
                    for ((w, &c), &count) in out.iter_mut().zip(cols).zip(cnts) {
                        *w = f64::from(count) * idf[c as usize];
                        acc.add(*w * *w);
                    }
                    let norm = acc.value().sqrt();
                    if norm > 0.0 {
                        for w in out.iter_mut() {
                            *w /= norm;
                        }
                    }
                }
                Variant::Paper => {
                    let total: u64 = cnts.iter().map(|&c| u64::from(c)).sum();
                    for ((w, &c), &count) in out.iter_mut().zip(cols).zip(cnts) {
                        *w = (f64::from(count) / total as f64) * idf[c as usize];
                    }
                }
            }
        });

    let names = opts.keep_vocabulary.then(|| NgramNames {
        tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
        pairs: pairs_by_level,
        column_starts,
        ngram_range: opts.ngram_range,
        n_cols,
    });
    Ok(TfidfMatrix {
        n_rows: n_docs,
        n_cols,
        indptr,
        indices,
        data,
        document_frequency,
        names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(texts: &[&str], range: (usize, usize), variant: Variant) -> TfidfMatrix {
        let opts = TfidfOptions {
            ngram_range: range,
            variant,
            keep_vocabulary: true,
        };
        tfidf(texts, &WordChars::ascii(), &opts).unwrap()
    }

    fn row(m: &TfidfMatrix, i: usize) -> Vec<(String, f64)> {
        let (s, e) = (m.indptr[i] as usize, m.indptr[i + 1] as usize);
        let mut r: Vec<_> = (s..e)
            .map(|k| {
                (
                    m.names
                        .as_ref()
                        .unwrap()
                        .get(m.indices[k] as usize)
                        .unwrap(),
                    m.data[k],
                )
            })
            .collect();
        r.sort_by(|a, b| a.0.cmp(&b.0));
        r
    }

    #[test]
    fn vocabulary_names_every_ngram() {
        let m = run(&["aa bb cc", "bb cc dd"], (1, 3), Variant::Sklearn);
        let mut v = m.names.as_ref().unwrap().to_vec();
        v.sort();
        let expected = [
            "aa", "aa bb", "aa bb cc", "bb", "bb cc", "bb cc dd", "cc", "cc dd", "dd",
        ];
        assert_eq!(v, expected);
        assert_eq!(m.document_frequency.iter().sum::<u32>(), 12);
    }

    #[test]
    fn sklearn_weights_by_hand() {
        // Two documents, unigrams only: "aa aa bb" and "bb".
        let m = run(&["aa aa bb", "bb"], (1, 1), Variant::Sklearn);
        let idf_aa = (3.0f64 / 2.0).ln() + 1.0;
        let idf_bb = 1.0;
        let (va, vb) = (2.0 * idf_aa, idf_bb);
        let norm = (va * va + vb * vb).sqrt();
        let r = row(&m, 0);
        assert!((r[0].1 - va / norm).abs() < 1e-15);
        assert!((r[1].1 - vb / norm).abs() < 1e-15);
        assert_eq!(row(&m, 1), vec![("bb".to_string(), 1.0)]);
    }

    #[test]
    fn paper_weights_by_hand() {
        let m = run(&["aa aa bb", "bb"], (1, 1), Variant::Paper);
        let r = row(&m, 0);
        assert_eq!(r[0].1, (2.0 / 3.0) * 2.0f64.ln());
        assert_eq!(r[1].1, 0.0);
    }

    #[test]
    fn empty_and_short_documents() {
        let m = run(&["", "a", "aa", "aa bb"], (2, 3), Variant::Sklearn);
        assert_eq!(m.indptr, vec![0, 0, 0, 0, 1]);
        assert_eq!(m.names.as_ref().unwrap().to_vec(), vec!["aa bb"]);
        let none = run(&[], (1, 3), Variant::Sklearn);
        assert_eq!(
            (none.n_rows, none.n_cols, none.indptr.clone()),
            (0, 0, vec![0])
        );
    }

    #[test]
    fn rejects_bad_ngram_ranges() {
        for range in [(0, 1), (2, 1), (1, MAX_NGRAM + 1)] {
            let opts = TfidfOptions {
                ngram_range: range,
                ..Default::default()
            };
            assert!(matches!(
                tfidf(&["aa"], &WordChars::ascii(), &opts),
                Err(Error::InvalidArgument(_))
            ));
        }
    }

    #[test]
    fn thread_count_does_not_change_anything() {
        let texts: Vec<String> = (0..300)
            .map(|i| format!("w{} w{} common w{} tail{}", i % 7, i % 11, i % 5, i % 3))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let opts = TfidfOptions::default();
        let one = crate::with_threads(Some(1), || tfidf(&refs, &WordChars::ascii(), &opts))
            .unwrap()
            .unwrap();
        let four = crate::with_threads(Some(4), || tfidf(&refs, &WordChars::ascii(), &opts))
            .unwrap()
            .unwrap();
        assert_eq!(one.indices, four.indices);
        assert_eq!(
            one.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            four.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
}
