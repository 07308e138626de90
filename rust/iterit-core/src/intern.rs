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

const BUCKET_BITS: u32 = 8;
const N_BUCKETS: usize = 1 << BUCKET_BITS;
/// A fixed seed: bucket assignment (never the ids) depends on it, and runs must be repeatable.
const SEED: u64 = 0x17e2_17c0_4e5e_1ec7;

/// Ids of `keys` (`ids[i]` for `keys[i]`) and the distinct keys by id.
pub fn intern<K: Copy + Eq + Hash + Send + Sync>(keys: &[K]) -> Result<(Vec<u32>, Vec<K>)> {
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

    // Positions grouped by bucket, in increasing order within each bucket.
    let mut starts = vec![0usize; N_BUCKETS + 1];
    for &h in &hashes {
        starts[bucket_of(h) + 1] += 1;
    }
    for b in 0..N_BUCKETS {
        starts[b + 1] += starts[b];
    }
    // Keys, hashes and positions copied into bucket order, so that each bucket reads
    // contiguous memory (gathering them in place would touch a cache line per key).
    let mut order = vec![0u32; n];
    let mut grouped_keys: Vec<K> = Vec::with_capacity(n);
    let mut grouped_hashes = vec![0u64; n];
    {
        let spare = &mut grouped_keys.spare_capacity_mut()[..n];
        let mut fill = starts.clone();
        for (i, (&h, &k)) in hashes.iter().zip(keys).enumerate() {
            let slot = &mut fill[bucket_of(h)];
            order[*slot] = i as u32;
            grouped_hashes[*slot] = h;
            spare[*slot].write(k);
            *slot += 1;
        }
    }
    // SAFETY: the counting sort above wrote each of the n slots exactly once.
    unsafe { grouped_keys.set_len(n) };
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
    // Mark each key's first position, then number keys in one streaming pass over positions.
    let mut first_at = vec![u32::MAX; n];
    for (b, bucket) in buckets.iter().enumerate() {
        for (local, &p) in bucket.first_positions.iter().enumerate() {
            first_at[p as usize] = (bucket_offsets[b] + local) as u32;
        }
    }
    let mut new_id = vec![0u32; n_distinct];
    let mut distinct = Vec::with_capacity(n_distinct);
    for (p, &old) in first_at.iter().enumerate() {
        if old != u32::MAX {
            new_id[old as usize] = distinct.len() as u32;
            distinct.push(keys[p]);
        }
    }
    drop(first_at);

    let mut ids = vec![0u32; n];
    for (b, bucket) in buckets.iter().enumerate() {
        let offset = bucket_offsets[b];
        for (&p, &local) in order[starts[b]..starts[b + 1]]
            .iter()
            .zip(&bucket.local_ids)
        {
            ids[p as usize] = new_id[offset + local as usize];
        }
    }
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
        let keys: Vec<u64> = (0..100_000u64)
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
