//! Counts for selection, where only the n-grams of two texts or more need an id
//! (docs/design.md, "Scale").
//!
//! The greedy keeps every n-gram of one text only in one column ([`Counts::share_columns`]),
//! so such n-grams never need to be told apart across texts, only within their own text (for
//! their counts). Yet they are most of the distinct n-grams of a large corpus (87% of the
//! 1M-text benchmark corpus), and interning them exactly is most of the interner's work and
//! memory. So the texts are read twice:
//!
//! 1. Tokens are interned (exactly, as always) and kept; each n-gram of length 2 or more marks
//!    its hash in a bit set of "seen" and, when already seen, in one of "seen again".
//! 2. An n-gram gets an interned id only if its prefix has one and its hash is marked "seen
//!    again" (the bit is read only when the prefix has one); any other n-gram gets an id local
//!    to its text ([`LOCAL`] set), numbered by the first occurrence of its exact key within
//!    the text, and counts towards the solo column; one that occurs once in its text is not
//!    stored at all, only counted in [`Counts::solo_once`].
//!
//! No n-gram of two texts is missed: both texts marked its hash, and its prefix, in both texts
//! too, has an id by the same argument (tokens always have one). Hashes only err the other way:
//! an n-gram of one text whose hash collides with another's is interned like a shared one,
//! and [`Counts::share_columns`] still finds its document frequency of 1 from the rows. So the
//! counts equal [`super::count_ngrams`]' after `share_columns`, up to the numbering of shared
//! columns and the solo entries of count 1 kept as a number per row, on which no weight or
//! pick depends.

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use super::{
    assemble, check_input, level_offsets, split_by_offsets, Counts, Ragged, Rows, Vocabulary,
    CHUNK_TEXTS,
};
use crate::error::Result;
use crate::progress::{report, Phase, Progress};
use crate::text::Analyzer;
use crate::tfidf::TfidfOptions;

/// Marks an id local to one text (the rest is its number within the text's n-grams of that
/// length). Interned ids stay below it ([`crate::intern`] refuses more).
pub(crate) const LOCAL: u32 = 1 << 31;
/// A position whose n-gram is interned once the chunk's keys are collected.
const TO_INTERN: u32 = u32::MAX;
/// Bits of the "seen" set per n-gram occurrence expected (rounded up to a power of two): at
/// least 4, so that a collision interns at most about a fifth of the n-grams of one text (a
/// tenth on the 1M benchmark corpus, whose n-grams repeat; its two sets take 128 MiB). Fewer
/// bits or more were no faster there (1, 2, 8 tried).
const BITS_PER_OCCURRENCE: f64 = 4.0;
/// The tests use tiny sets, so that hashes collide often.
const MIN_BITS_LOG2: u32 = if cfg!(test) { 6 } else { 12 };
/// How many n-grams ahead marking and reading prefetch the bit set's words (32 took 0.15 s
/// less than 16 on the 1M benchmark corpus).
const MARK_AHEAD: usize = 32;
/// N-grams per task when the bit set is read.
const BLOCK: usize = 1 << 14;

/// Mixes a 64-bit value (splitmix64's finaliser): every input bit moves every output bit.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hash of a token, and of an n-gram from its prefix's hash and its last token.
#[inline]
fn token_hash(token: u32) -> u64 {
    mix(u64::from(token) ^ 0x6a09_e667_f3bc_c908)
}
#[inline]
fn extend_hash(prefix: u64, token: u32) -> u64 {
    mix(prefix ^ u64::from(token).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The two bit sets, a word of each side by side (one cache line holds both).
struct Seen {
    words: Vec<[AtomicU64; 2]>,
    shift: u32,
}

impl Seen {
    /// Room for about `occurrences` n-gram occurrences (see [`BITS_PER_OCCURRENCE`]).
    fn new(occurrences: f64, bits_per_occurrence: f64) -> Self {
        let bits = (occurrences * bits_per_occurrence).max(1.0).log2().ceil() as u32;
        let bits = bits.clamp(MIN_BITS_LOG2, 63);
        Self {
            // Read before written: see crate::memory::filled_by_writes.
            words: crate::memory::filled_by_writes(1usize << (bits - 6), || {
                [AtomicU64::new(0), AtomicU64::new(0)]
            }),
            shift: 64 - bits,
        }
    }

    #[inline]
    fn at(&self, h: u64) -> (&[AtomicU64; 2], u64) {
        let bit = h >> self.shift;
        (&self.words[(bit >> 6) as usize], 1 << (bit & 63))
    }

    #[inline]
    fn prefetch(&self, h: u64) {
        crate::memory::prefetch(self.at(h).0);
    }

    /// Marks one occurrence. The sets end the same whatever the order of the marks: a mark
    /// that finds its bit seen sets it in "seen again", and of two marks racing on one bit,
    /// the atomic `fetch_or` makes one of them find it seen. Most occurrences are of n-grams
    /// marked twice already, which a plain read tells, without a locked instruction.
    #[inline]
    fn mark(&self, h: u64) {
        let ([seen, again], bit) = self.at(h);
        if again.load(Ordering::Relaxed) & bit != 0 {
            return;
        }
        if seen.load(Ordering::Relaxed) & bit != 0
            || seen.fetch_or(bit, Ordering::Relaxed) & bit != 0
        {
            again.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// Whether the hash was marked twice or more (read after every mark).
    #[inline]
    fn again(&self, h: u64) -> bool {
        let ([_, again], bit) = self.at(h);
        again.load(Ordering::Relaxed) & bit != 0
    }
}

/// Numbers the distinct keys of one text by first occurrence: a small open-addressing table,
/// cleared from text to text. It gives the n-grams of one text their local ids in a few
/// nanoseconds each, where sorting them to number them took about twice as long. (Rows are
/// still built by sorting their interned ids: the greedy scores rows whose columns increase
/// faster, by 0.4 s of 3 on the 1M benchmark corpus, than rows in the order of their text.)
#[derive(Default)]
struct FirstOccurrence {
    /// Per slot: 0 for free, else the key's number plus one.
    slots: Vec<u32>,
    /// Keys by number.
    keys: Vec<u64>,
    shift: u32,
}

impl FirstOccurrence {
    /// Starts a text of at most `n` keys.
    fn clear(&mut self, n: usize) {
        // At most half full, so that probes stay short.
        let bits = (2 * n).next_power_of_two().trailing_zeros().max(4);
        self.slots.clear();
        self.slots.resize(1 << bits, 0);
        self.shift = 64 - bits;
        self.keys.clear();
    }

    /// The number of `key` among the text's distinct keys, in order of first occurrence.
    #[inline]
    fn number(&mut self, key: u64) -> u32 {
        let mask = self.slots.len() - 1;
        let mut i = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize;
        loop {
            let s = self.slots[i];
            if s == 0 {
                let number = self.keys.len() as u32;
                self.keys.push(key);
                self.slots[i] = number + 1;
                return number;
            }
            if self.keys[(s - 1) as usize] == key {
                return s - 1;
            }
            i = (i + 1) & mask;
        }
    }
}

/// Marks the hashes of every n-gram of length 2 to `max_n` of each text of `tokens`.
fn mark_chunk(tokens: &Ragged, max_n: usize, seen: &Seen) {
    let n_docs = tokens.offsets.len() - 1;
    (0..n_docs).into_par_iter().with_min_len(64).for_each_init(
        || (Vec::new(), Vec::new()),
        |(level, all), d| {
            let toks = tokens.doc(d);
            level.clear();
            level.extend(toks.iter().map(|&t| token_hash(t)));
            all.clear();
            for n in 2..=max_n.min(toks.len()) {
                // The n-gram at p: the (n-1)-gram at p and token p + n - 1.
                level.pop();
                for (p, h) in level.iter_mut().enumerate() {
                    *h = extend_hash(*h, toks[p + n - 1]);
                }
                all.extend_from_slice(level);
            }
            for (k, &h) in all.iter().enumerate() {
                if let Some(&ahead) = all.get(k + MARK_AHEAD) {
                    seen.prefetch(ahead);
                }
                seen.mark(h);
            }
        },
    );
}

/// The ids of the n-grams of length `n` of a chunk, from those of length `n - 1` (`prev`, whose
/// hashes `hashes` holds on entry, and this length's on return): interned ids for the n-grams
/// that may be shared, local ids for the others.
fn next_level(
    vocabulary: &mut Vocabulary,
    tokens: &Ragged,
    prev: &Ragged,
    hashes: &mut Vec<u64>,
    n: usize,
    seen: &Seen,
) -> Result<Ragged> {
    let offsets = level_offsets(tokens, n);
    let n_docs = offsets.len() - 1;
    let total = offsets[n_docs];
    let mut next_hashes = vec![0u64; total];
    // Whether the n-gram may be shared: on entry, whether its prefix has an interned id (an
    // n-gram whose prefix is of one text is of one text too), then also whether its hash is
    // marked "seen again".
    let mut again = vec![n == 2; total];
    split_by_offsets(&mut next_hashes, &offsets)
        .into_par_iter()
        .zip(split_by_offsets(&mut again, &offsets))
        .enumerate()
        .for_each(|(d, (out, again))| {
            let toks = tokens.doc(d);
            let prefix_hashes = &hashes[prev.offsets[d]..prev.offsets[d + 1]];
            for (p, h) in out.iter_mut().enumerate() {
                *h = extend_hash(prefix_hashes[p], toks[p + n - 1]);
            }
            if n > 2 {
                for (a, &prefix) in again.iter_mut().zip(prev.doc(d)) {
                    *a = prefix & LOCAL == 0;
                }
            }
        });
    // The bit set is read at random (see crate::memory::prefetch): in one pass over the
    // chunk, so that the reads ahead cross the boundaries of (mostly short) texts.
    again
        .par_chunks_mut(BLOCK)
        .zip(next_hashes.par_chunks(BLOCK))
        .for_each(|(again, hashes)| {
            for k in 0..again.len() {
                if again.get(k + MARK_AHEAD) == Some(&true) {
                    seen.prefetch(hashes[k + MARK_AHEAD]);
                }
                if again[k] {
                    again[k] = seen.again(hashes[k]);
                }
            }
        });
    *hashes = next_hashes;
    let mut ids = vec![0u32; total];
    // Per text: the ids (local, or TO_INTERN), and how many keys to intern.
    let to_intern: Vec<usize> = split_by_offsets(&mut ids, &offsets)
        .into_par_iter()
        .enumerate()
        .map_init(FirstOccurrence::default, |local, (d, out)| {
            let (toks, prefixes) = (tokens.doc(d), prev.doc(d));
            let again = &again[offsets[d]..offsets[d + 1]];
            local.clear(out.len());
            let mut n_intern = 0;
            for p in 0..out.len() {
                let (token, prefix) = (toks[p + n - 1], prefixes[p]);
                out[p] = if again[p] {
                    n_intern += 1;
                    TO_INTERN
                } else {
                    // Exact within the text: the prefix's id (interned or local) and the token.
                    LOCAL | local.number((u64::from(prefix) << 32) | u64::from(token))
                };
            }
            n_intern
        })
        .collect();
    drop(again);
    // The keys to intern, in text order.
    let mut key_offsets = Vec::with_capacity(n_docs + 1);
    key_offsets.push(0usize);
    for (d, k) in to_intern.iter().enumerate() {
        key_offsets.push(key_offsets[d] + k);
    }
    let mut keys = vec![0u64; key_offsets[n_docs]];
    split_by_offsets(&mut keys, &key_offsets)
        .into_par_iter()
        .enumerate()
        .for_each(|(d, keys)| {
            let (toks, prefixes) = (tokens.doc(d), prev.doc(d));
            let out = &ids[offsets[d]..offsets[d + 1]];
            let positions = (0..out.len()).filter(|&p| out[p] == TO_INTERN);
            for (key, p) in keys.iter_mut().zip(positions) {
                *key = (u64::from(prefixes[p]) << 32) | u64::from(toks[p + n - 1]);
            }
        });
    let interned = vocabulary.pairs[n - 2].intern(&keys)?;
    drop(keys);
    split_by_offsets(&mut ids, &offsets)
        .into_par_iter()
        .enumerate()
        .for_each(|(d, out)| {
            let mut next = interned[key_offsets[d]..key_offsets[d + 1]].iter();
            for id in out.iter_mut().filter(|id| **id == TO_INTERN) {
                *id = *next.next().expect("one interned id per key");
            }
        });
    Ok(Ragged { offsets, ids })
}

/// Counts of the n-grams of `texts` with lengths in `opts.ngram_range`, columns shared as
/// [`Counts::share_columns`] leaves them, without interning n-grams of one text (see the
/// module documentation). Same weights and picks as [`super::count_ngrams`] then
/// `share_columns`, less time and memory; no vocabulary. `progress` hears [`Phase::Ngrams`]
/// after every chunk of each pass (half the texts' worth per pass).
pub fn count_shared_ngrams(
    texts: &[&str],
    analyzer: &Analyzer,
    opts: &TfidfOptions,
    progress: &dyn Progress,
) -> Result<Counts> {
    count_with_bits(texts, analyzer, opts, progress, BITS_PER_OCCURRENCE)
}

fn count_with_bits(
    texts: &[&str],
    analyzer: &Analyzer,
    opts: &TfidfOptions,
    progress: &dyn Progress,
    bits_per_occurrence: f64,
) -> Result<Counts> {
    let (min_n, max_n) = check_input(opts, texts.len())?;
    let n_docs = texts.len();
    let mut vocabulary = Vocabulary::new(max_n);
    report(progress, Phase::Ngrams, 0, n_docs)?;
    // Pass 1: tokens, kept, and the n-grams' hashes marked.
    let mut chunks = Vec::with_capacity(n_docs.div_ceil(CHUNK_TEXTS));
    let mut seen: Option<Seen> = None;
    for first in (0..n_docs).step_by(CHUNK_TEXTS) {
        let end = (first + CHUNK_TEXTS).min(n_docs);
        let tokens = vocabulary.token_ids(&texts[first..end], analyzer)?;
        if max_n >= 2 {
            let seen = seen.get_or_insert_with(|| {
                // Sized from the first chunk's n-grams, for all the texts.
                let occurrences: usize = (0..end - first)
                    .map(|d| {
                        let len = tokens.offsets[d + 1] - tokens.offsets[d];
                        (2..=max_n)
                            .map(|n| len.saturating_sub(n - 1))
                            .sum::<usize>()
                    })
                    .sum();
                let expected = occurrences as f64 * n_docs as f64 / (end - first) as f64;
                Seen::new(expected, bits_per_occurrence)
            });
            mark_chunk(&tokens, max_n, seen);
        }
        chunks.push(tokens);
        report(progress, Phase::Ngrams, end / 2, n_docs)?;
    }
    // Pass 2: ids of the n-grams that may be shared, local ids for the others, and the rows.
    let mut rows = Rows::default();
    let mut first = 0;
    for tokens in chunks {
        let n_chunk = tokens.offsets.len() - 1;
        let mut hashes: Vec<u64> = tokens.ids.iter().map(|&t| token_hash(t)).collect();
        let mut levels = vec![tokens];
        for n in 2..=max_n {
            let seen = seen.as_ref().expect("marked in pass 1");
            let next = next_level(
                &mut vocabulary,
                &levels[0],
                &levels[n - 2],
                &mut hashes,
                n,
                seen,
            )?;
            levels.push(next);
        }
        rows.append(&levels[min_n - 1..]);
        if first == 0 {
            rows.reserve_after_first(n_chunk, n_docs);
        }
        first += n_chunk;
        report(progress, Phase::Ngrams, (n_docs + first) / 2, n_docs)?;
    }
    drop(seen);
    assemble(vocabulary, rows, n_docs, opts, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;
    use crate::tfidf::{Variant, Weights};
    use proptest::prelude::prop_oneof;

    /// Per row, its entries as (document frequency, count), sorted: what weights depend on
    /// (the n-grams of one text that occur once in it included).
    fn entries(c: &Counts) -> Vec<Vec<(u32, u32)>> {
        (0..c.n_rows)
            .map(|r| {
                let (s, e) = c.row_bounds(r);
                let mut row: Vec<(u32, u32)> = (s..e)
                    .map(|k| (c.document_frequency[c.indices[k] as usize], c.count(k)))
                    .collect();
                // N-grams of one text, once each, not stored.
                row.extend((0..c.solo_once(r)).map(|_| (1, 1)));
                row.sort_unstable();
                row
            })
            .collect()
    }

    proptest::proptest! {
        /// Numbers by first occurrence, whatever the keys (few distinct or all distinct) and
        /// however the table's size changes from text to text.
        #[test]
        fn first_occurrence_numbers_as_a_list_would(
            texts in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![0u64..5, proptest::num::u64::ANY], 0..80),
                1..6,
            ),
        ) {
            let mut table = FirstOccurrence::default();
            for keys in &texts {
                table.clear(keys.len());
                let mut seen: Vec<u64> = Vec::new();
                for &k in keys {
                    let expected = seen.iter().position(|&s| s == k).unwrap_or_else(|| {
                        seen.push(k);
                        seen.len() - 1
                    });
                    proptest::prop_assert_eq!(table.number(k), expected as u32);
                }
            }
        }

        /// Counting without interning the n-grams of one text gives the entries, weights and
        /// picks of counting everything and then sharing the columns, whether hashes collide
        /// all the time (a tiny bit set) or seldom.
        #[test]
        fn same_entries_weights_and_picks_as_sharing_afterwards(
            texts in proptest::collection::vec(
                "((aa|bb|cc|dd|q[a-z]{2}) ){0,14}(aa|bb|q[a-z])?", 1..40),
            min_n in 1usize..4,
            extra_n in 0usize..3,
            tiny_bits: bool,
            sklearn: bool,
            budget in 1usize..12,
            decay in 0.0f64..0.9,
        ) {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let variant = if sklearn { Variant::Sklearn } else { Variant::Paper };
            let opts = TfidfOptions {
                ngram_range: (min_n, min_n + extra_n),
                variant,
                keep_vocabulary: false,
            };
            let analyzer = Analyzer::ascii();
            let mut all = super::super::count_ngrams(&refs, &analyzer, &opts, &Silent).unwrap();
            all.share_columns();
            let bits = if tiny_bits { 0.01 } else { BITS_PER_OCCURRENCE };
            let shared = count_with_bits(&refs, &analyzer, &opts, &Silent, bits).unwrap();
            proptest::prop_assert_eq!(entries(&shared), entries(&all));
            proptest::prop_assert_eq!(shared.solo_column, Some(shared.document_frequency.len() as u32 - 1));
            let (w_all, w_shared) = (Weights::new(&all, variant), Weights::new(&shared, variant));
            for r in 0..refs.len() {
                proptest::prop_assert_eq!(w_all.sum(r).to_bits(), w_shared.sum(r).to_bits());
                proptest::prop_assert_eq!(w_all.scale(r).to_bits(), w_shared.scale(r).to_bits());
            }
            let c: Vec<f64> = (0..refs.len()).map(|i| (i % 4) as f64 * 0.3 + 0.1).collect();
            let select = crate::SelectOptions { budget, decay, max_complexity: None };
            proptest::prop_assert_eq!(
                crate::select_counts(&w_all, Some(&c), &select, &Silent).unwrap(),
                crate::select_counts(&w_shared, Some(&c), &select, &Silent).unwrap()
            );
        }
    }

    #[test]
    fn thread_count_does_not_change_the_counts() {
        let texts: Vec<String> = (0..500)
            .map(|i| {
                format!(
                    "w{} w{} common w{} tail{} only{i}",
                    i % 7,
                    i % 11,
                    i % 5,
                    i % 3
                )
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let opts = TfidfOptions::default();
        let run = |threads| {
            crate::with_threads(Some(threads), || {
                count_shared_ngrams(&refs, &Analyzer::ascii(), &opts, &Silent)
            })
            .unwrap()
            .unwrap()
        };
        let (one, four) = (run(1), run(4));
        assert_eq!(one.indices, four.indices);
        assert_eq!(one.document_frequency, four.document_frequency);
        assert_eq!(entries(&one), entries(&four));
        assert_eq!(one.solo_once, four.solo_once);
        // Each text's "only{i}" and every n-gram holding it are of one text: the token is
        // interned (every token is) and so stored in the solo column; the longer ones, not.
        let solo = one.solo_column.unwrap();
        let (s, e) = one.row_bounds(0);
        assert_eq!(one.indices[s..e].iter().filter(|&&c| c == solo).count(), 1);
        assert_eq!(one.solo_once(0), 2);
    }
}
