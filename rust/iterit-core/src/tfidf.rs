//! TF-IDF weights from n-gram counts (docs/design.md, "TF-IDF").
//!
//! [`crate::ngrams`] counts the n-grams; this module turns counts into weights. A weight is a
//! pure function of the count, the column's document frequency and the row's norm (or total),
//! so [`Weights`] recomputes it whenever it is needed instead of storing a float64 per stored
//! entry; [`tfidf`] stores them for callers that want the matrix. Row sums use
//! [`crate::exact_sum`], so the weights do not depend on column order.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::exact_sum::NonNegativeSum;
use crate::ngrams::{count_ngrams, split_by_offsets, Counts};
use crate::progress::{report, Phase, Progress, Silent};
use crate::text::Analyzer;

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
    /// Keep what is needed to name every column ([`NgramNames`]); costs memory.
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

/// Names the columns of a matrix: the interned tokens and, for each n-gram length `n >= 2`,
/// the (prefix id, token id) pair of every n-gram id. Text is only built when asked for.
#[derive(Clone, Debug)]
pub struct NgramNames {
    pub(crate) tokens: Vec<String>,
    /// `pairs[n - 2][id]` for n-grams of length `n >= 2`.
    pub(crate) pairs: Vec<Vec<(u32, u32)>>,
    /// `column_starts[k]` is the first column of n-grams of length `ngram_range.0 + k`.
    pub(crate) column_starts: Vec<usize>,
    pub(crate) ngram_range: (usize, usize),
    pub(crate) n_cols: usize,
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

/// The idf of a document frequency `df` among `n` documents.
fn idf(variant: Variant, n: f64, df: u32) -> f64 {
    match variant {
        Variant::Sklearn => ((n + 1.0) / (f64::from(df) + 1.0)).ln() + 1.0,
        Variant::Paper => (n / f64::from(df)).ln(),
    }
}

/// The TF-IDF weights of [`Counts`], recomputed on demand, bit for bit what [`tfidf`] stores.
pub struct Weights<'a> {
    pub counts: &'a Counts,
    variant: Variant,
    /// idf depends on a column through its document frequency only: `idfs` holds the idf of
    /// each document frequency that occurs, and `idf_number[column]` the place of the
    /// column's. Scoring an entry then reads one 4-byte value at random and a table that
    /// stays in the cache, not an idf per document frequency up to the number of rows.
    idfs: Vec<f64>,
    idf_number: Vec<u32>,
    /// The idf of a document frequency of 1 (see [`Counts::solo_once`]).
    idf_once: f64,
    /// Per row: the L2 norm of its unnormalised weights (sklearn), or its total count (paper).
    scale: Vec<f64>,
    /// Per row: the (correctly rounded) sum of its weights.
    sums: Vec<f64>,
}

impl<'a> Weights<'a> {
    /// Computes each row's norm (or total) and weight sum, in one pass over its entries.
    pub fn new(counts: &'a Counts, variant: Variant) -> Self {
        let n = counts.n_rows as f64;
        let df = &counts.document_frequency;
        let mut number_of_df = vec![u32::MAX; df.iter().max().map_or(0, |&m| m as usize + 1)];
        let mut idfs = Vec::new();
        for &d in df {
            if number_of_df[d as usize] == u32::MAX {
                number_of_df[d as usize] = idfs.len() as u32;
                idfs.push(idf(variant, n, d));
            }
        }
        let idf_number = df.par_iter().map(|&d| number_of_df[d as usize]).collect();
        let mut w = Self {
            counts,
            variant,
            idfs,
            idf_number,
            idf_once: idf(variant, n, 1),
            scale: Vec::new(),
            sums: Vec::new(),
        };
        let (scale, sums): (Vec<f64>, Vec<f64>) = (0..counts.n_rows)
            .into_par_iter()
            .map_init(
                || (NonNegativeSum::new(), Vec::new()),
                |(acc, idfs), r| w.row_scale_and_sum(r, acc, idfs),
            )
            .unzip();
        w.scale = scale;
        w.sums = sums;
        w
    }

    fn row_scale_and_sum(
        &self,
        r: usize,
        acc: &mut NonNegativeSum,
        idfs: &mut Vec<f64>,
    ) -> (f64, f64) {
        let (s, e) = self.counts.row_bounds(r);
        idfs.clear();
        idfs.extend((s..e).map(|k| {
            // Document frequencies are read at random (see crate::memory::prefetch).
            let counts = self.counts;
            crate::memory::prefetch_ahead(&self.idf_number, &counts.indices, k);
            self.idf_of(k)
        }));
        // N-grams of this text only, once each, not stored: count 1, document frequency 1.
        let once = self.counts.solo_once(r);
        let scale = match self.variant {
            Variant::Sklearn => {
                acc.clear();
                for (k, idf) in (s..e).zip(idfs.iter()) {
                    let w = f64::from(self.counts.count(k)) * idf;
                    acc.add(w * w);
                }
                if once > 0 {
                    acc.add_times(self.idf_once * self.idf_once, once);
                }
                acc.value().sqrt()
            }
            Variant::Paper => {
                let stored: u64 = (s..e).map(|k| u64::from(self.counts.count(k))).sum();
                (stored + u64::from(once)) as f64
            }
        };
        acc.clear();
        for (k, &idf) in (s..e).zip(idfs.iter()) {
            acc.add(self.weight_from(self.counts.count(k), idf, scale));
        }
        self.add_unstored(r, scale, acc);
        (scale, acc.value())
    }

    #[inline]
    fn idf_of(&self, k: usize) -> f64 {
        let col = self.counts.indices[k] as usize;
        self.idfs[self.idf_number[col] as usize]
    }

    /// The place of column `col`'s idf among [`Weights::idf_numbered`]'s.
    #[inline]
    pub fn idf_number(&self, col: usize) -> u32 {
        self.idf_number[col]
    }

    /// The idf numbered `i` (see [`Weights::idf_number`]).
    #[inline]
    pub fn idf_numbered(&self, i: u32) -> f64 {
        self.idfs[i as usize]
    }

    /// Adds to `acc` the weights of row `r`'s n-grams that are not stored (see
    /// [`Counts::solo_once`]): never decayed, so the same in every diversity of the row.
    #[inline]
    pub(crate) fn add_unstored(&self, r: usize, scale: f64, acc: &mut NonNegativeSum) {
        let once = self.counts.solo_once(r);
        if once > 0 {
            acc.add_times(self.weight_from(1, self.idf_once, scale), once);
        }
    }

    /// A weight from its count, idf and row scale: the one formula of both variants.
    #[inline]
    pub fn weight_from(&self, count: u32, idf: f64, scale: f64) -> f64 {
        let count = f64::from(count);
        match self.variant {
            Variant::Sklearn => {
                let w = count * idf;
                if scale > 0.0 {
                    w / scale
                } else {
                    w
                }
            }
            Variant::Paper => (count / scale) * idf,
        }
    }

    /// The weight of stored entry `k` of row `r`.
    #[inline]
    pub fn weight(&self, r: usize, k: usize) -> f64 {
        self.weight_from(self.counts.count(k), self.idf_of(k), self.scale[r])
    }

    /// Row `r`'s norm (sklearn) or total count (paper).
    #[inline]
    pub fn scale(&self, r: usize) -> f64 {
        self.scale[r]
    }

    /// The sum of row `r`'s weights (its diversity before any decay).
    #[inline]
    pub fn sum(&self, r: usize) -> f64 {
        self.sums[r]
    }
}

/// TF-IDF rows of `texts` (lowercased and tokenised by `analyzer`, see [`crate::text`]).
pub fn tfidf(texts: &[&str], analyzer: &Analyzer, opts: &TfidfOptions) -> Result<TfidfMatrix> {
    tfidf_with_progress(texts, analyzer, opts, &Silent)
}

/// [`tfidf`], reporting its phases to `progress`.
pub fn tfidf_with_progress(
    texts: &[&str],
    analyzer: &Analyzer,
    opts: &TfidfOptions,
    progress: &dyn Progress,
) -> Result<TfidfMatrix> {
    let mut counts = count_ngrams(texts, analyzer, opts, progress)?;
    if counts.n_cols > i32::MAX as usize {
        return Err(Error::Capacity(format!(
            "{} distinct n-grams exceed the {} columns a CSR matrix with int32 indices holds",
            counts.n_cols,
            i32::MAX
        )));
    }
    report(progress, Phase::Tfidf, 0, counts.n_rows)?;
    let weights = Weights::new(&counts, opts.variant);
    let mut data = vec![0.0f64; counts.nnz()];
    let offsets: Vec<usize> = counts.indptr.iter().map(|&p| p as usize).collect();
    split_by_offsets(&mut data, &offsets)
        .into_par_iter()
        .enumerate()
        .for_each(|(r, out)| {
            for (j, w) in out.iter_mut().enumerate() {
                *w = weights.weight(r, offsets[r] + j);
            }
        });
    drop(weights);
    report(progress, Phase::Tfidf, counts.n_rows, counts.n_rows)?;
    // Columns fit in i32 (checked above): the same values, reinterpreted in place.
    let indices: Vec<i32> = std::mem::take(&mut counts.indices)
        .into_iter()
        .map(|c| c as i32)
        .collect();
    Ok(TfidfMatrix {
        n_rows: counts.n_rows,
        n_cols: counts.n_cols,
        indptr: counts.indptr,
        indices,
        data,
        document_frequency: counts.document_frequency,
        names: counts.names,
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
        tfidf(texts, &Analyzer::ascii(), &opts).unwrap()
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
                tfidf(&["aa"], &Analyzer::ascii(), &opts),
                Err(Error::InvalidArgument(_))
            ));
        }
    }

    #[test]
    fn large_counts_and_recomputed_weights_match_the_stored_ones() {
        let long = "aa ".repeat(300) + "bb";
        let texts = [long.as_str(), "aa cc", "bb cc dd", "", "dd"];
        for variant in [Variant::Sklearn, Variant::Paper] {
            let opts = TfidfOptions {
                ngram_range: (1, 2),
                variant,
                keep_vocabulary: false,
            };
            let m = tfidf(&texts, &Analyzer::ascii(), &opts).unwrap();
            let counts = count_ngrams(&texts, &Analyzer::ascii(), &opts, &Silent).unwrap();
            assert_eq!(counts.count(0), 300);
            assert_eq!(counts.count(1), 1);
            let w = Weights::new(&counts, variant);
            for r in 0..texts.len() {
                let (s, e) = counts.row_bounds(r);
                for k in s..e {
                    assert_eq!(w.weight(r, k).to_bits(), m.data[k].to_bits());
                }
            }
            let select = crate::SelectOptions {
                budget: 3,
                decay: 0.1,
                max_complexity: None,
            };
            assert_eq!(
                crate::select(&m.rows(), None, &select).unwrap(),
                crate::select_counts(&w, None, &select, &Silent).unwrap()
            );
        }
    }

    proptest::proptest! {
        /// Shared columns (`Counts::share_columns`) change what the selector keeps per
        /// column, never a weight or a pick: the same selection as on the stored weights.
        #[test]
        fn shared_columns_select_as_the_stored_weights(
            texts in proptest::collection::vec("(aa|bb|cc|dd|ee)( (aa|bb|cc|dd|ee)){0,12}|", 1..40),
            budget in 1usize..12,
            decay in 0.0f64..0.9,
            sklearn: bool,
            complexity_seed: u64,
        ) {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let variant = if sklearn { Variant::Sklearn } else { Variant::Paper };
            let opts = TfidfOptions { ngram_range: (1, 3), variant, keep_vocabulary: false };
            let m = tfidf(&refs, &Analyzer::ascii(), &opts).unwrap();
            let mut counts = count_ngrams(&refs, &Analyzer::ascii(), &opts, &Silent).unwrap();
            let before = counts.document_frequency.clone();
            counts.share_columns();
            let solo = counts.solo_column.unwrap();
            let n_shared = before.iter().filter(|&&df| df >= 2).count();
            proptest::prop_assert_eq!(solo as usize, n_shared);
            proptest::prop_assert_eq!(counts.document_frequency.len(), n_shared + 1);
            for (k, &c) in counts.indices.iter().enumerate() {
                let df_then = before[m.indices[k] as usize];
                proptest::prop_assert_eq!(counts.document_frequency[c as usize], df_then);
                proptest::prop_assert_eq!(c == solo, df_then == 1);
            }
            let c: Vec<f64> = (0..refs.len() as u64)
                .map(|i| ((i ^ complexity_seed) % 5) as f64 * 0.25)
                .collect();
            let select = crate::SelectOptions { budget, decay, max_complexity: Some(0.9) };
            let w = Weights::new(&counts, variant);
            proptest::prop_assert_eq!(
                crate::select(&m.rows(), Some(&c), &select).unwrap(),
                crate::select_counts(&w, Some(&c), &select, &Silent).unwrap()
            );
        }
    }

    #[test]
    fn thread_count_does_not_change_anything() {
        let texts: Vec<String> = (0..300)
            .map(|i| format!("w{} w{} common w{} tail{}", i % 7, i % 11, i % 5, i % 3))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let opts = TfidfOptions::default();
        let one = crate::with_threads(Some(1), || tfidf(&refs, &Analyzer::ascii(), &opts))
            .unwrap()
            .unwrap();
        let four = crate::with_threads(Some(4), || tfidf(&refs, &Analyzer::ascii(), &opts))
            .unwrap()
            .unwrap();
        assert_eq!(one.indices, four.indices);
        assert_eq!(
            one.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            four.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
}
