//! Parallel, deterministic, incremental interning: gives every distinct key an id, numbered in
//! order of first occurrence over all the chunks given so far, whatever the number of threads,
//! and counts the documents each key occurs in.
//!
//! Each chunk's keys are radix-partitioned by a fixed hash into buckets small enough that each
//! bucket's map stays in cache; buckets are interned in parallel, each in key order; then the
//! keys new in the chunk are numbered by the position of their first occurrence. One big
//! shared map would spend most of its time waiting on cache misses, and could not be filled in
//! parallel without making the ids depend on thread timing. Chunks bound the memory of a pass
//! to the chunk's keys; only the distinct keys are kept between chunks.

use std::hash::{BuildHasher, Hash};

use foldhash::fast::FixedState;
use hashbrown::HashTable;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// A raw view of a slice that parallel tasks write at disjoint indices. Debug builds also
/// record every write, to check that each index is written at most once and in bounds, and
/// that [`filled_in_parallel`] saw every index written before it calls `set_len`.
struct DisjointWrites<T> {
    ptr: *mut T,
    #[cfg(debug_assertions)]
    written: *const std::sync::atomic::AtomicBool,
    #[cfg(debug_assertions)]
    len: usize,
}
// Copy for any T: it is a pointer (derive would ask T: Copy).
impl<T> Clone for DisjointWrites<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for DisjointWrites<T> {}
// SAFETY: every user writes each index from exactly one task, and reads only after the
// parallel section that wrote it has joined.
unsafe impl<T: Send> Send for DisjointWrites<T> {}
unsafe impl<T: Send> Sync for DisjointWrites<T> {}

/// The debug-build record of which indices a [`DisjointWrites`] has written.
#[cfg(debug_assertions)]
type WriteLog = Vec<std::sync::atomic::AtomicBool>;
#[cfg(not(debug_assertions))]
type WriteLog = ();

#[cfg(debug_assertions)]
fn new_write_log(len: usize) -> WriteLog {
    (0..len)
        .map(|_| std::sync::atomic::AtomicBool::new(false))
        .collect()
}
#[cfg(not(debug_assertions))]
fn new_write_log(_len: usize) -> WriteLog {}

impl<T> DisjointWrites<T> {
    fn new(slice: &mut [std::mem::MaybeUninit<T>], _log: &WriteLog) -> Self {
        #[cfg(debug_assertions)]
        debug_assert_eq!(_log.len(), slice.len());
        Self {
            ptr: slice.as_mut_ptr().cast(),
            #[cfg(debug_assertions)]
            written: _log.as_ptr(),
            #[cfg(debug_assertions)]
            len: slice.len(),
        }
    }

    /// # Safety
    /// `i` is in bounds and no other task writes or reads index `i` concurrently.
    #[inline]
    unsafe fn write(self, i: usize, value: T) {
        #[cfg(debug_assertions)]
        {
            debug_assert!(i < self.len, "write at {i} outside 0..{}", self.len);
            // SAFETY: `i` is in bounds of the log, which outlives every write.
            let seen = unsafe { &*self.written.add(i) };
            let again = seen.swap(true, std::sync::atomic::Ordering::Relaxed);
            debug_assert!(!again, "index {i} written twice");
        }
        unsafe { self.ptr.add(i).write(value) }
    }
}

/// A vector of `n` values, each written exactly once by `fill` through [`DisjointWrites`].
fn filled_in_parallel<T: Send>(n: usize, fill: impl FnOnce(DisjointWrites<T>)) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(n);
    let log = new_write_log(n);
    fill(DisjointWrites::new(
        &mut out.spare_capacity_mut()[..n],
        &log,
    ));
    #[cfg(debug_assertions)]
    debug_assert!(
        log.iter()
            .all(|w| w.load(std::sync::atomic::Ordering::Relaxed)),
        "set_len over an index that was never written"
    );
    // SAFETY: callers write every index in 0..n exactly once (checked above in debug builds).
    unsafe { out.set_len(n) };
    out
}

/// An initialised slice seen as possibly uninitialised, to overwrite some of it in parallel.
fn unsafe_as_uninit<T>(slice: &mut [T]) -> &mut [std::mem::MaybeUninit<T>] {
    // SAFETY: MaybeUninit<T> has T's layout, and only initialised values are written back.
    unsafe { &mut *(slice as *mut [T] as *mut [std::mem::MaybeUninit<T>]) }
}

/// Positions per task in the parallel passes over a chunk's keys.
const BLOCK: usize = 1 << 16;
const BUCKET_BITS: u32 = 10;
const N_BUCKETS: usize = 1 << BUCKET_BITS;
/// A fixed seed: bucket assignment (never the ids) depends on it, and runs must be repeatable.
const SEED: u64 = 0x17e2_17c0_4e5e_1ec7;

/// A key as a chunk gives it (`K`) and as the interner keeps it (`Owned`).
pub(crate) trait InternKey: Copy + Eq + Hash + Send + Sync {
    type Owned: Send + Sync;
    fn to_owned_key(self) -> Self::Owned;
    fn is(self, owned: &Self::Owned) -> bool;
    fn hash_owned(owned: &Self::Owned, state: &FixedState) -> u64;
}

impl InternKey for u64 {
    type Owned = u64;
    fn to_owned_key(self) -> u64 {
        self
    }
    fn is(self, owned: &u64) -> bool {
        self == *owned
    }
    fn hash_owned(owned: &u64, state: &FixedState) -> u64 {
        state.hash_one(owned)
    }
}

impl InternKey for &str {
    type Owned = Box<str>;
    fn to_owned_key(self) -> Box<str> {
        self.into()
    }
    fn is(self, owned: &Box<str>) -> bool {
        self == &**owned
    }
    fn hash_owned(owned: &Box<str>, state: &FixedState) -> u64 {
        state.hash_one(&**owned)
    }
}

/// The distinct keys whose hash falls in one bucket, by local index.
struct Bucket<O> {
    table: HashTable<u32>,
    keys: Vec<O>,
    ids: Vec<u32>,
    df: Vec<u32>,
    last_doc: Vec<u32>,
}

impl<O> Default for Bucket<O> {
    fn default() -> Self {
        Self {
            table: HashTable::new(),
            keys: Vec::new(),
            ids: Vec::new(),
            df: Vec::new(),
            last_doc: Vec::new(),
        }
    }
}

/// What one bucket did with one chunk: the local index of each of its positions, and the
/// positions where keys new to the interner first occur (with their local index).
struct BucketPass {
    locals: Vec<u32>,
    firsts: Vec<(u32, u32)>,
}

/// Ids by first occurrence, kept across chunks (see the module documentation).
pub(crate) struct Interner<O> {
    buckets: Vec<Bucket<O>>,
    len: usize,
    state: FixedState,
}

/// The distinct keys and their document frequencies, both by id.
pub(crate) struct Interned<O> {
    pub keys: Option<Vec<O>>,
    pub df: Vec<u32>,
}

impl<O: Send + Sync> Interner<O> {
    pub fn new() -> Self {
        Self {
            buckets: (0..N_BUCKETS).map(|_| Bucket::default()).collect(),
            len: 0,
            state: FixedState::with_seed(SEED),
        }
    }

    /// Ids of `keys` (`ids[i]` for `keys[i]`); `keys[i]` occurs in document `docs[i]`, where
    /// documents never decrease along a chunk nor from one chunk to the next.
    pub fn intern<K: InternKey<Owned = O>>(
        &mut self,
        keys: &[K],
        docs: &[u32],
    ) -> Result<Vec<u32>> {
        let n = keys.len();
        debug_assert_eq!(docs.len(), n);
        if n > u32::MAX as usize {
            return Err(Error::Capacity(format!(
                "more than {} n-gram occurrences in one chunk",
                u32::MAX
            )));
        }
        let (order, starts, grouped_keys, grouped_hashes) = self.group(keys);
        let passes = self.bucket_passes(&order, &starts, &grouped_keys, &grouped_hashes, docs);
        drop(grouped_keys);
        drop(grouped_hashes);
        let base = self.len;
        let n_new = self.number_new(&passes, n)?;
        self.len = base + n_new;
        let buckets = &self.buckets;
        Ok(filled_in_parallel(n, |ids_out| {
            passes.par_iter().enumerate().for_each(|(b, pass)| {
                let ids = &buckets[b].ids;
                for (&p, &local) in order[starts[b]..starts[b + 1]].iter().zip(&pass.locals) {
                    // SAFETY: every position belongs to exactly one bucket.
                    unsafe { ids_out.write(p as usize, ids[local as usize]) };
                }
            });
        }))
    }

    /// Positions, keys and hashes in bucket order (positions increasing within a bucket), and
    /// where each bucket starts. Blocks of positions are scattered in parallel, each into
    /// slots reserved for it from per-block bucket counts.
    fn group<K: InternKey>(&self, keys: &[K]) -> (Vec<u32>, Vec<usize>, Vec<K>, Vec<u64>) {
        let n = keys.len();
        let state = &self.state;
        let hashes: Vec<u64> = keys.par_iter().map(|k| state.hash_one(k)).collect();
        let histograms: Vec<[usize; N_BUCKETS]> = hashes
            .par_chunks(BLOCK)
            .map(|block| {
                let mut h = [0usize; N_BUCKETS];
                for &x in block {
                    h[bucket_of(x)] += 1;
                }
                h
            })
            .collect();
        let mut starts = vec![0usize; N_BUCKETS + 1];
        let mut block_slots = vec![[0usize; N_BUCKETS]; histograms.len()];
        let mut next = 0usize;
        for b in 0..N_BUCKETS {
            starts[b] = next;
            for (slots, h) in block_slots.iter_mut().zip(&histograms) {
                slots[b] = next;
                next += h[b];
            }
        }
        starts[N_BUCKETS] = next;
        let mut order: Vec<u32> = Vec::new();
        let mut grouped_hashes: Vec<u64> = Vec::new();
        let grouped_keys: Vec<K> = filled_in_parallel(n, |keys_out| {
            order = filled_in_parallel(n, |order_out| {
                grouped_hashes = filled_in_parallel(n, |hashes_out| {
                    hashes
                        .par_chunks(BLOCK)
                        .zip(keys.par_chunks(BLOCK))
                        .zip(block_slots)
                        .enumerate()
                        .for_each(|(block, ((hs, ks), mut slots))| {
                            for (j, (&h, &k)) in hs.iter().zip(ks).enumerate() {
                                let slot = &mut slots[bucket_of(h)];
                                // SAFETY: slots of different blocks and buckets never overlap,
                                // and together they cover 0..n once.
                                unsafe {
                                    order_out.write(*slot, (block * BLOCK + j) as u32);
                                    hashes_out.write(*slot, h);
                                    keys_out.write(*slot, k);
                                }
                                *slot += 1;
                            }
                        });
                });
            });
        });
        (order, starts, grouped_keys, grouped_hashes)
    }

    /// Each bucket's keys looked up (new ones added), in parallel over buckets.
    fn bucket_passes<K: InternKey<Owned = O>>(
        &mut self,
        order: &[u32],
        starts: &[usize],
        keys: &[K],
        hashes: &[u64],
        docs: &[u32],
    ) -> Vec<BucketPass> {
        let state = &self.state;
        self.buckets
            .par_iter_mut()
            .enumerate()
            .map(|(b, bucket)| {
                let range = starts[b]..starts[b + 1];
                let mut pass = BucketPass {
                    locals: Vec::with_capacity(range.len()),
                    firsts: Vec::new(),
                };
                let Bucket {
                    table,
                    keys: distinct,
                    ids,
                    df,
                    last_doc,
                } = bucket;
                for ((&p, &key), &h) in order[range.clone()]
                    .iter()
                    .zip(&keys[range.clone()])
                    .zip(&hashes[range])
                {
                    let local = match table.find(h, |&l| key.is(&distinct[l as usize])) {
                        Some(&l) => l,
                        None => {
                            let l = distinct.len() as u32;
                            distinct.push(key.to_owned_key());
                            ids.push(u32::MAX);
                            df.push(0);
                            last_doc.push(u32::MAX);
                            pass.firsts.push((p, l));
                            table.insert_unique(h, l, |&l| {
                                K::hash_owned(&distinct[l as usize], state)
                            });
                            l
                        }
                    };
                    let doc = docs[p as usize];
                    let l = local as usize;
                    if last_doc[l] != doc {
                        last_doc[l] = doc;
                        df[l] += 1;
                    }
                    pass.locals.push(local);
                }
                pass
            })
            .collect()
    }

    /// Numbers the keys new in this chunk by the position of their first occurrence, after
    /// the ids already given; returns how many there were.
    fn number_new(&mut self, passes: &[BucketPass], n: usize) -> Result<usize> {
        // Mark each new key's first position, then rank the marks in position order.
        let mut rank_at = vec![u32::MAX; n];
        {
            let log = new_write_log(n);
            let marks = DisjointWrites::new(unsafe_as_uninit(&mut rank_at), &log);
            passes.par_iter().for_each(|pass| {
                for &(p, _) in &pass.firsts {
                    // SAFETY: a position is the first occurrence of one key only.
                    unsafe { marks.write(p as usize, 0) };
                }
            });
        }
        let per_block: Vec<usize> = rank_at
            .par_chunks(BLOCK)
            .map(|c| c.iter().filter(|&&m| m != u32::MAX).count())
            .collect();
        let n_new: usize = per_block.iter().sum();
        if self.len + n_new > u32::MAX as usize {
            return Err(Error::Capacity(format!(
                "more than {} distinct n-grams of one length",
                u32::MAX
            )));
        }
        let base = self.len as u32;
        let mut block_first = Vec::with_capacity(per_block.len());
        let mut total = 0usize;
        for count in &per_block {
            block_first.push(total);
            total += count;
        }
        rank_at
            .par_chunks_mut(BLOCK)
            .zip(block_first)
            .for_each(|(marks, mut rank)| {
                for m in marks.iter_mut().filter(|m| **m != u32::MAX) {
                    *m = base + rank as u32;
                    rank += 1;
                }
            });
        self.buckets
            .par_iter_mut()
            .zip(passes)
            .for_each(|(bucket, pass)| {
                for &(p, local) in &pass.firsts {
                    bucket.ids[local as usize] = rank_at[p as usize];
                }
            });
        Ok(n_new)
    }

    /// The document frequency of every id, and the keys by id when `keep_keys`.
    pub fn finish(self, keep_keys: bool) -> Interned<O> {
        let n = self.len;
        let buckets = self.buckets;
        let df = filled_in_parallel(n, |df_out| {
            buckets.par_iter().for_each(|b| {
                for (&id, &d) in b.ids.iter().zip(&b.df) {
                    // SAFETY: ids are distinct and cover 0..n.
                    unsafe { df_out.write(id as usize, d) };
                }
            });
        });
        let keys = keep_keys.then(|| {
            let mut buckets = buckets;
            filled_in_parallel(n, |keys_out| {
                buckets.par_iter_mut().for_each(|b| {
                    for (&id, key) in b.ids.iter().zip(b.keys.drain(..)) {
                        // SAFETY: as above.
                        unsafe { keys_out.write(id as usize, key) };
                    }
                });
            })
        });
        Interned { keys, df }
    }
}

#[inline]
fn bucket_of(h: u64) -> usize {
    (h >> (64 - BUCKET_BITS)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Ids by first occurrence and document frequencies, the obvious way.
    fn sequential<K: Copy + Eq + Hash>(keys: &[K], docs: &[u32]) -> (Vec<u32>, Vec<K>, Vec<u32>) {
        let mut map = std::collections::HashMap::new();
        let mut distinct = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut df = Vec::new();
        let ids = keys
            .iter()
            .zip(docs)
            .map(|(&k, &d)| {
                let id = *map.entry(k).or_insert_with(|| {
                    distinct.push(k);
                    df.push(0);
                    distinct.len() as u32 - 1
                });
                if seen.insert((id, d)) {
                    df[id as usize] += 1;
                }
                id
            })
            .collect();
        (ids, distinct, df)
    }

    /// The interner fed `keys` in chunks cut at `cuts`.
    fn chunked<K: InternKey>(
        keys: &[K],
        docs: &[u32],
        cuts: &[usize],
    ) -> (Vec<u32>, Interned<K::Owned>) {
        let mut interner = Interner::new();
        let mut ids = Vec::new();
        let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(keys.len())).collect();
        bounds.sort_unstable();
        bounds.insert(0, 0);
        bounds.push(keys.len());
        for w in bounds.windows(2) {
            ids.extend(
                interner
                    .intern(&keys[w[0]..w[1]], &docs[w[0]..w[1]])
                    .unwrap(),
            );
        }
        (ids, interner.finish(true))
    }

    fn docs_of(n: usize, per_doc: usize) -> Vec<u32> {
        (0..n).map(|i| (i / per_doc.max(1)) as u32).collect()
    }

    proptest! {
        #[test]
        fn equals_sequential_first_occurrence(
            keys in prop::collection::vec(0u64..50, 0..400),
            per_doc in 1usize..7,
            cuts in prop::collection::vec(0usize..400, 0..4),
        ) {
            let docs = docs_of(keys.len(), per_doc);
            let (ids, interned) = chunked(&keys, &docs, &cuts);
            let (want_ids, want_keys, want_df) = sequential(&keys, &docs);
            prop_assert_eq!(ids, want_ids);
            prop_assert_eq!(interned.keys.unwrap(), want_keys);
            prop_assert_eq!(interned.df, want_df);
        }

        #[test]
        fn strings_too(keys in prop::collection::vec("[a-c]{0,3}", 0..200), cuts in prop::collection::vec(0usize..200, 0..3)) {
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let docs = docs_of(refs.len(), 3);
            let (ids, interned) = chunked(&refs, &docs, &cuts);
            let (want_ids, want_keys, want_df) = sequential(&refs, &docs);
            prop_assert_eq!(ids, want_ids);
            let got: Vec<&str> = interned.keys.as_ref().unwrap().iter().map(|k| &**k).collect();
            prop_assert_eq!(got, want_keys);
            prop_assert_eq!(interned.df, want_df);
        }
    }

    #[test]
    fn independent_of_threads() {
        let keys: Vec<u64> = (0..300_000u64)
            .map(|i| (i * 2_654_435_761) % 7_919)
            .collect();
        let docs = docs_of(keys.len(), 5);
        let cuts = [100_000, 250_000];
        let run = |t| {
            crate::with_threads(Some(t), || {
                let (ids, i) = chunked(&keys, &docs, &cuts);
                (ids, i.keys, i.df)
            })
            .unwrap()
        };
        let one = run(1);
        assert_eq!(one, run(4));
        let (ids, distinct, df) = sequential(&keys, &docs);
        assert_eq!(one, (ids, Some(distinct), df));
    }
}
