//! Parallel, deterministic interning: gives every distinct key an id, numbered in order of
//! first occurrence, whatever the number of threads.
//!
//! Keys are radix-partitioned by a fixed hash into buckets small enough that each bucket's
//! map stays in cache; buckets are interned in parallel, each in key order; then ids are
//! renumbered by the position of each key's first occurrence. One big shared map would spend
//! most of its time waiting on cache misses, and could not be filled in parallel without
//! making the ids depend on thread timing.

use std::hash::{BuildHasher, Hash};

use foldhash::fast::FixedState;
use hashbrown::HashTable;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// A raw view of a slice that parallel tasks write at disjoint indices. Debug builds also
/// record every write, to check that each index is written at most once and in bounds, and
/// that [`filled_in_parallel`] saw every index written before it calls `set_len`.
#[derive(Clone, Copy)]
struct DisjointWrites<T> {
    ptr: *mut T,
    #[cfg(debug_assertions)]
    written: *const std::sync::atomic::AtomicBool,
    #[cfg(debug_assertions)]
    len: usize,
}
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
    drop(log);
    // SAFETY: callers write every index in 0..n exactly once (checked above in debug builds).
    unsafe { out.set_len(n) };
    out
}

/// An initialised slice seen as possibly uninitialised, to overwrite some of it in parallel.
fn unsafe_as_uninit<T>(slice: &mut [T]) -> &mut [std::mem::MaybeUninit<T>] {
    // SAFETY: MaybeUninit<T> has T's layout, and only initialised values are written back.
    unsafe { &mut *(slice as *mut [T] as *mut [std::mem::MaybeUninit<T>]) }
}

/// Positions per task in the parallel passes over all keys.
const BLOCK: usize = 1 << 16;
const BUCKET_BITS: u32 = 8;
const N_BUCKETS: usize = 1 << BUCKET_BITS;
/// A fixed seed: bucket assignment (never the ids) depends on it, and runs must be repeatable.
const SEED: u64 = 0x17e2_17c0_4e5e_1ec7;

/// Ids of `keys` (`ids[i]` for `keys[i]`) and the distinct keys by id.
pub(crate) fn intern<K: Copy + Eq + Hash + Send + Sync>(keys: &[K]) -> Result<(Vec<u32>, Vec<K>)> {
    let n = keys.len();
    if n > u32::MAX as usize {
        return Err(Error::Capacity(format!(
            "more than {} n-gram occurrences of one length",
            u32::MAX
        )));
    }
    let state = FixedState::with_seed(SEED);
    let hashes: Vec<u64> = keys.par_iter().map(|k| state.hash_one(k)).collect();
    let bucket_of = |h: u64| (h >> (64 - BUCKET_BITS)) as usize;

    // Keys, hashes and positions copied into bucket order (positions increasing within a
    // bucket), so that each bucket reads contiguous memory. Blocks of positions are scattered
    // in parallel, each into slots reserved for it from per-block bucket counts.
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
                            // SAFETY: slots of different blocks and buckets never overlap, and
                            // together they cover 0..n once.
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
    drop(hashes);

    // Each bucket: local ids by first occurrence, and the first position of each distinct key.
    struct Bucket<K> {
        local_ids: Vec<u32>,
        first_positions: Vec<u32>,
        distinct: Vec<K>,
    }
    let buckets: Vec<Bucket<K>> = (0..N_BUCKETS)
        .into_par_iter()
        .map(|b| {
            let range = starts[b]..starts[b + 1];
            let (positions, bucket_keys, bucket_hashes) = (
                &order[range.clone()],
                &grouped_keys[range.clone()],
                &grouped_hashes[range],
            );
            let mut table: HashTable<u32> = HashTable::with_capacity(positions.len());
            let mut out = Bucket {
                local_ids: Vec::with_capacity(positions.len()),
                first_positions: Vec::new(),
                distinct: Vec::new(),
            };
            let mut distinct_hashes: Vec<u64> = Vec::new();
            for ((&p, &key), &h) in positions.iter().zip(bucket_keys).zip(bucket_hashes) {
                let distinct = &mut out.distinct;
                let id = match table.find(h, |&id| distinct[id as usize] == key) {
                    Some(&id) => id,
                    None => {
                        let id = distinct.len() as u32;
                        distinct.push(key);
                        distinct_hashes.push(h);
                        out.first_positions.push(p);
                        table.insert_unique(h, id, |&id| distinct_hashes[id as usize]);
                        id
                    }
                };
                out.local_ids.push(id);
            }
            out
        })
        .collect();
    drop(grouped_keys);
    drop(grouped_hashes);

    // Renumber by first occurrence.
    let mut bucket_offsets = Vec::with_capacity(N_BUCKETS + 1);
    bucket_offsets.push(0usize);
    for b in &buckets {
        bucket_offsets.push(bucket_offsets.last().copied().unwrap_or(0) + b.distinct.len());
    }
    let n_distinct = bucket_offsets[N_BUCKETS];
    // Mark each key's first position, then number keys in order of those positions.
    let mut first_at = vec![u32::MAX; n];
    {
        let log = new_write_log(n);
        let marks = DisjointWrites::new(unsafe_as_uninit(&mut first_at), &log);
        buckets.par_iter().enumerate().for_each(|(b, bucket)| {
            for (local, &p) in bucket.first_positions.iter().enumerate() {
                // SAFETY: a position is the first occurrence of one key only.
                unsafe { marks.write(p as usize, (bucket_offsets[b] + local) as u32) };
            }
        });
    }
    let firsts_per_block: Vec<usize> = first_at
        .par_chunks(BLOCK)
        .map(|c| c.iter().filter(|&&o| o != u32::MAX).count())
        .collect();
    let mut block_rank = Vec::with_capacity(firsts_per_block.len());
    let mut total = 0usize;
    for count in &firsts_per_block {
        block_rank.push(total);
        total += count;
    }
    let mut new_id: Vec<u32> = Vec::new();
    let distinct: Vec<K> = filled_in_parallel(n_distinct, |distinct_out| {
        new_id = filled_in_parallel(n_distinct, |new_id_out| {
            first_at
                .par_chunks(BLOCK)
                .zip(block_rank)
                .enumerate()
                .for_each(|(block, (marks, mut rank))| {
                    for (j, &old) in marks.iter().enumerate() {
                        if old != u32::MAX {
                            // SAFETY: ranks are distinct across blocks; each old id is marked once.
                            unsafe {
                                new_id_out.write(old as usize, rank as u32);
                                distinct_out.write(rank, keys[block * BLOCK + j]);
                            }
                            rank += 1;
                        }
                    }
                });
        });
    });
    drop(first_at);

    let ids: Vec<u32> = filled_in_parallel(n, |ids_out| {
        buckets.par_iter().enumerate().for_each(|(b, bucket)| {
            let offset = bucket_offsets[b];
            for (&p, &local) in order[starts[b]..starts[b + 1]]
                .iter()
                .zip(&bucket.local_ids)
            {
                // SAFETY: every position belongs to exactly one bucket.
                unsafe { ids_out.write(p as usize, new_id[offset + local as usize]) };
            }
        });
    });
    Ok((ids, distinct))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sequential<K: Copy + Eq + Hash>(keys: &[K]) -> (Vec<u32>, Vec<K>) {
        let mut map = std::collections::HashMap::new();
        let mut distinct = Vec::new();
        let ids = keys
            .iter()
            .map(|&k| {
                *map.entry(k).or_insert_with(|| {
                    distinct.push(k);
                    distinct.len() as u32 - 1
                })
            })
            .collect();
        (ids, distinct)
    }

    proptest! {
        #[test]
        fn equals_sequential_first_occurrence(keys in prop::collection::vec(0u64..50, 0..400)) {
            prop_assert_eq!(intern(&keys).unwrap(), sequential(&keys));
        }

        #[test]
        fn strings_too(keys in prop::collection::vec("[a-c]{0,3}", 0..200)) {
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            prop_assert_eq!(intern(&refs).unwrap(), sequential(&refs));
        }
    }

    #[test]
    fn independent_of_threads() {
        let keys: Vec<u64> = (0..300_000u64)
            .map(|i| (i * 2_654_435_761) % 7_919)
            .collect();
        let one = crate::with_threads(Some(1), || intern(&keys))
            .unwrap()
            .unwrap();
        let four = crate::with_threads(Some(4), || intern(&keys))
            .unwrap()
            .unwrap();
        assert_eq!(one, four);
        assert_eq!(one, sequential(&keys));
    }
}
