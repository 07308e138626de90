//! Parallel, deterministic, incremental interning: gives every distinct key an id, numbered in
//! order of first occurrence over all the chunks given so far, whatever the number of threads.
//! An entry is the key and its id, nothing else (12 bytes for an n-gram): document frequencies
//! are counted afterwards from the rows (docs/design.md, "Scale").
//!
//! Each chunk's keys are radix-partitioned by a fixed hash into buckets small enough that each
//! bucket's map stays in cache; buckets are interned in parallel, each in key order; then the
//! keys new in the chunk are numbered by the position of their first occurrence. One big
//! shared map would spend most of its time waiting on cache misses, and could not be filled in
//! parallel without making the ids depend on thread timing. Chunks bound the memory of a pass
//! to the chunk's keys; only the distinct keys are kept between chunks.

use std::hash::{BuildHasher, Hash};

use foldhash::fast::FixedState;
use rayon::prelude::*;

use crate::error::{Error, Result};

mod table;
use table::Table;

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

/// How many keys ahead a bucket pass prefetches table slots, and entries.
const SLOT_AHEAD: usize = 16;
const ENTRY_AHEAD: usize = 8;
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

/// A u64 is kept as its high and low halves: 4-byte alignment makes an [`Entry`] 12 bytes
/// instead of 16, which counts with hundreds of millions of distinct n-grams.
impl InternKey for u64 {
    type Owned = [u32; 2];
    fn to_owned_key(self) -> [u32; 2] {
        [(self >> 32) as u32, self as u32]
    }
    fn is(self, owned: &[u32; 2]) -> bool {
        self == join(*owned)
    }
    fn hash_owned(owned: &[u32; 2], state: &FixedState) -> u64 {
        state.hash_one(join(*owned))
    }
}

/// The u64 of its high and low halves.
#[inline]
pub(crate) fn join([hi, lo]: [u32; 2]) -> u64 {
    (u64::from(hi) << 32) | u64::from(lo)
}

/// A token as the interner keeps it: up to [`INLINE_BYTES`] bytes in place (most words), so
/// that telling whether a text's token is this one reads the entry alone, not a string
/// elsewhere in memory; a longer one boxed.
pub(crate) enum OwnedToken {
    Inline { len: u8, words: [u64; 2] },
    Boxed(Box<str>),
}

/// The longest token kept in place.
const INLINE_BYTES: usize = 16;

/// Bytes `b` (at most [`INLINE_BYTES`]) as two little-endian words, zero-padded. Read with
/// overlapping loads rather than copied byte by byte or through a call to `memcpy`.
#[inline]
fn inline_words(b: &[u8]) -> [u64; 2] {
    let n = b.len();
    debug_assert!(n <= INLINE_BYTES);
    let word = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8 bytes"));
    let half = |s: &[u8]| u64::from(u32::from_le_bytes(s.try_into().expect("4 bytes")));
    match n {
        0 => [0, 0],
        1..=3 => [
            u64::from(b[0])
                | u64::from(b[n / 2]) << (8 * (n / 2))
                | u64::from(b[n - 1]) << (8 * (n - 1)),
            0,
        ],
        4..=7 => [half(&b[..4]) | half(&b[n - 4..]) << (8 * (n - 4)), 0],
        // Bytes 8..n are the high ones of the last eight, shifted down.
        _ => [
            word(&b[..8]),
            word(&b[n - 8..])
                .checked_shr(8 * (INLINE_BYTES - n) as u32)
                .unwrap_or(0),
        ],
    }
}

impl OwnedToken {
    /// The token's bytes: `buf` holds them when they are kept in place.
    fn bytes<'a>(&'a self, buf: &'a mut [u8; INLINE_BYTES]) -> &'a [u8] {
        match self {
            OwnedToken::Inline { len, words } => {
                buf[..8].copy_from_slice(&words[0].to_le_bytes());
                buf[8..].copy_from_slice(&words[1].to_le_bytes());
                &buf[..usize::from(*len)]
            }
            OwnedToken::Boxed(s) => s.as_bytes(),
        }
    }

    pub(crate) fn into_string(self) -> String {
        match self {
            OwnedToken::Boxed(s) => s.into(),
            inline => {
                let mut buf = [0; INLINE_BYTES];
                // Made from a &str, whole.
                String::from_utf8(inline.bytes(&mut buf).to_vec()).expect("a token is UTF-8")
            }
        }
    }
}

impl InternKey for &str {
    type Owned = OwnedToken;
    fn to_owned_key(self) -> OwnedToken {
        if self.len() <= INLINE_BYTES {
            OwnedToken::Inline {
                len: self.len() as u8,
                words: inline_words(self.as_bytes()),
            }
        } else {
            OwnedToken::Boxed(self.into())
        }
    }
    #[inline]
    fn is(self, owned: &OwnedToken) -> bool {
        match owned {
            OwnedToken::Inline { len, words } => {
                self.len() == usize::from(*len) && inline_words(self.as_bytes()) == *words
            }
            OwnedToken::Boxed(s) => self == &**s,
        }
    }
    fn hash_owned(owned: &OwnedToken, state: &FixedState) -> u64 {
        let mut buf = [0; INLINE_BYTES];
        // The hash of the &str it was made from: str hashes its bytes and a terminator.
        let bytes = owned.bytes(&mut buf);
        state.hash_one(std::str::from_utf8(bytes).expect("a token is UTF-8"))
    }
}

/// One distinct key and its id (or, while the chunk that first saw it is interned,
/// [`PENDING`] plus its first position in that chunk). A lookup of a key seen before only
/// reads its entry.
struct Entry<O> {
    key: O,
    id: u32,
}

/// Marks an id not numbered yet; the rest of the value is a position in the chunk.
const PENDING: u32 = 1 << 31;
/// The share of keys seen before from which a chunk is first looked up where it lies
/// ([`Interner::known`]), and only its new keys are grouped by bucket: where most keys are
/// new, looking them all up first costs more than it saves.
const KNOWN_FIRST: f64 = 0.75;
/// A key not seen in an earlier chunk (see [`Interner::known`]).
const UNKNOWN: u32 = u32::MAX;

/// The distinct keys whose hash falls in one bucket, by local index.
struct Bucket<O> {
    table: Table,
    entries: Vec<Entry<O>>,
}

impl<O> Default for Bucket<O> {
    fn default() -> Self {
        Self {
            table: Table::default(),
            entries: Vec::new(),
        }
    }
}

/// What one bucket did with one chunk: the id of each of its positions (or [`PENDING`] plus
/// the first position of a key new in the chunk), and the keys new in the chunk (their first
/// position and local index).
struct BucketPass {
    ids: Vec<u32>,
    firsts: Vec<(u32, u32)>,
}

/// A chunk's occurrences in bucket order (see [`Interner::group`]).
struct Grouped<K> {
    order: Vec<u32>,
    starts: Vec<usize>,
    keys: Vec<K>,
    hashes: Vec<u64>,
}

/// Ids by first occurrence, kept across chunks (see the module documentation).
pub(crate) struct Interner<O> {
    buckets: Vec<Bucket<O>>,
    len: usize,
    state: FixedState,
    /// The share of the previous chunk's keys seen in earlier chunks: it decides how the next
    /// chunk is interned (which never changes the ids, only the time taken).
    known_share: f64,
}

/// The number of distinct keys, and the keys by id when asked for.
pub(crate) struct Interned<O> {
    pub len: usize,
    pub keys: Option<Vec<O>>,
}

impl<O: Send + Sync> Interner<O> {
    pub fn new() -> Self {
        Self {
            buckets: (0..N_BUCKETS).map(|_| Bucket::default()).collect(),
            len: 0,
            state: FixedState::with_seed(SEED),
            known_share: 0.0,
        }
    }

    /// Ids of `keys` (`ids[i]` for `keys[i]`).
    pub fn intern<K: InternKey<Owned = O>>(&mut self, keys: &[K]) -> Result<Vec<u32>> {
        let n = keys.len();
        if n >= PENDING as usize {
            return Err(Error::Capacity(format!(
                "{n} n-gram occurrences in one chunk (at most {})",
                PENDING - 1
            )));
        }
        if self.len == 0 || self.known_share < KNOWN_FIRST {
            // Ids below `before` are of keys seen in earlier chunks.
            let before = self.len as u32;
            let ids = self.intern_new(keys)?;
            let known = ids.par_iter().filter(|&&id| id < before).count();
            self.known_share = known as f64 / n.max(1) as f64;
            return Ok(ids);
        }
        let mut ids = self.known(keys);
        let missing: Vec<u32> = (0..n as u32)
            .into_par_iter()
            .filter(|&p| ids[p as usize] == UNKNOWN)
            .collect();
        self.known_share = (n - missing.len()) as f64 / n.max(1) as f64;
        if missing.is_empty() {
            return Ok(ids);
        }
        // The keys not seen before, in chunk order: numbered by first occurrence among them,
        // which is their first occurrence in the chunk.
        let new_keys: Vec<K> = missing.par_iter().map(|&p| keys[p as usize]).collect();
        let new_ids = self.intern_new(&new_keys)?;
        let log = new_write_log(n);
        let out = DisjointWrites::new(unsafe_as_uninit(&mut ids), &log);
        missing.par_iter().zip(new_ids).for_each(|(&p, id)| unsafe {
            // SAFETY: positions in `missing` are distinct and < n.
            out.write(p as usize, id)
        });
        Ok(ids)
    }

    /// The id of every key seen in an earlier chunk, [`UNKNOWN`] for the others: read-only
    /// lookups, in parallel where they lie. In a large corpus most occurrences are of keys
    /// seen before (all but a few of the words), and these skip the regrouping by bucket.
    fn known<K: InternKey<Owned = O>>(&self, keys: &[K]) -> Vec<u32> {
        let (state, buckets) = (&self.state, &self.buckets);
        let mut ids = vec![UNKNOWN; keys.len()];
        ids.par_chunks_mut(BLOCK)
            .zip(keys.par_chunks(BLOCK))
            .for_each(|(out, ks)| {
                let hashes: Vec<u64> = ks.iter().map(|k| state.hash_one(k)).collect();
                for (j, (&key, &h)) in ks.iter().zip(&hashes).enumerate() {
                    // See `bucket_passes`: the same two stages of prefetching.
                    if let Some(&far) = hashes.get(j + SLOT_AHEAD) {
                        buckets[bucket_of(far)].table.prefetch(table_hash(far));
                    }
                    if let Some(&near) = hashes.get(j + ENTRY_AHEAD) {
                        let b = &buckets[bucket_of(near)];
                        prefetch_entry(&b.table, &b.entries, table_hash(near));
                    }
                    let b = &buckets[bucket_of(h)];
                    let entries = &b.entries;
                    if let Some(l) = b
                        .table
                        .find(table_hash(h), |l| key.is(&entries[l as usize].key))
                    {
                        out[j] = entries[l as usize].id;
                    }
                }
            });
        ids
    }

    /// Ids of `keys`, through the buckets (keys new to the interner, or the first chunk).
    fn intern_new<K: InternKey<Owned = O>>(&mut self, keys: &[K]) -> Result<Vec<u32>> {
        let n = keys.len();
        let grouped = self.group(keys);
        let passes = self.bucket_passes(&grouped)?;
        let Grouped { order, starts, .. } = grouped;
        let mut ids: Vec<u32> = filled_in_parallel(n, |ids_out| {
            passes.par_iter().enumerate().for_each(|(b, pass)| {
                for (&p, &id) in order[starts[b]..starts[b + 1]].iter().zip(&pass.ids) {
                    // SAFETY: every position belongs to exactly one bucket.
                    unsafe { ids_out.write(p as usize, id) };
                }
            });
        });
        drop(order);
        let rank_at = self.number_new(&passes, n)?;
        ids.par_iter_mut().for_each(|id| {
            if *id & PENDING != 0 {
                *id = rank_at[(*id & !PENDING) as usize];
            }
        });
        Ok(ids)
    }

    /// Positions, keys and hashes in bucket order (positions increasing within a
    /// bucket), and where each bucket starts. Blocks of positions are scattered in parallel,
    /// each into slots reserved for it from per-block bucket counts; the buckets' passes then
    /// read memory in order.
    fn group<K: InternKey>(&self, keys: &[K]) -> Grouped<K> {
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
        let (mut order, mut grouped_hashes) = (Vec::new(), Vec::new());
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
                                // SAFETY: slots of different blocks and buckets never
                                // overlap, and together they cover 0..n once.
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
        Grouped {
            order,
            starts,
            keys: grouped_keys,
            hashes: grouped_hashes,
        }
    }

    /// Each bucket's keys looked up (new ones added), in parallel over buckets.
    fn bucket_passes<K: InternKey<Owned = O>>(
        &mut self,
        g: &Grouped<K>,
    ) -> Result<Vec<BucketPass>> {
        let state = &self.state;
        let Grouped {
            order,
            starts,
            keys,
            hashes,
        } = g;
        self.buckets
            .par_iter_mut()
            .enumerate()
            .map(|(b, bucket)| {
                let range = starts[b]..starts[b + 1];
                let mut pass = BucketPass {
                    ids: Vec::with_capacity(range.len()),
                    firsts: Vec::new(),
                };
                let Bucket { table, entries } = bucket;
                let ahead = &hashes[range.clone()];
                for (j, ((&p, &key), &h)) in order[range.clone()]
                    .iter()
                    .zip(&keys[range.clone()])
                    .zip(ahead)
                    .enumerate()
                {
                    // Two stages of prefetching: the table slot of a key far ahead, then the
                    // entry named by the (by now loaded) slot of a key nearer ahead. A lookup
                    // is two dependent reads at random places in memory otherwise.
                    if let Some(&far) = ahead.get(j + SLOT_AHEAD) {
                        table.prefetch(table_hash(far));
                    }
                    if let Some(&near) = ahead.get(j + ENTRY_AHEAD) {
                        prefetch_entry(table, entries, table_hash(near));
                    }
                    let h = table_hash(h);
                    let id = match table.find(h, |l| key.is(&entries[l as usize].key)) {
                        Some(l) => entries[l as usize].id,
                        None => {
                            let l = entries.len() as u32;
                            table.insert(h, l, |l| {
                                table_hash(K::hash_owned(&entries[l as usize].key, state))
                            })?;
                            if entries.len() == entries.capacity() {
                                // Grow by a quarter, not double: the slack of a thousand
                                // buckets' vectors would be a third of all their memory.
                                entries.reserve_exact((entries.len() / 4).max(64));
                            }
                            entries.push(Entry {
                                key: key.to_owned_key(),
                                id: PENDING | p,
                            });
                            pass.firsts.push((p, l));
                            PENDING | p
                        }
                    };
                    pass.ids.push(id);
                }
                Ok(pass)
            })
            .collect()
    }

    /// Numbers the keys new in this chunk by the position of their first occurrence, after
    /// the ids already given: returns each such position's id (other positions: unused).
    fn number_new(&mut self, passes: &[BucketPass], n: usize) -> Result<Vec<u32>> {
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
        if self.len + n_new >= PENDING as usize {
            return Err(Error::Capacity(format!(
                "more than {} distinct n-grams of one length",
                PENDING - 1
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
                    bucket.entries[local as usize].id = rank_at[p as usize];
                }
            });
        self.len += n_new;
        Ok(rank_at)
    }

    /// The number of distinct keys, and the keys by id when `keep_keys`.
    pub fn finish(self, keep_keys: bool) -> Interned<O> {
        let n = self.len;
        let buckets = self.buckets;
        let keys = keep_keys.then(|| {
            filled_in_parallel(n, |keys_out| {
                buckets.into_par_iter().for_each(|b| {
                    // The table goes first: only the keys are kept.
                    drop(b.table);
                    for e in b.entries {
                        // SAFETY: ids are distinct and cover 0..n.
                        unsafe { keys_out.write(e.id as usize, e.key) };
                    }
                });
            })
        });
        Interned { len: n, keys }
    }
}

/// Prefetches the entry a lookup of table hash `h` most likely compares (the one its first
/// slot names), once that slot is in the cache.
#[inline(always)]
fn prefetch_entry<O>(table: &Table, entries: &[Entry<O>], h: u64) {
    if let Some(e) = table.likely(h).and_then(|l| entries.get(l as usize)) {
        crate::memory::prefetch(e);
    }
}

#[inline]
fn bucket_of(h: u64) -> usize {
    (h >> (64 - BUCKET_BITS)) as usize
}

/// The hash a bucket's table sees. The table starts its probe from the hash's top bits, and
/// the top [`BUCKET_BITS`] are the same for every key of a bucket (they chose it): rotated to
/// the bottom, they give way to bits that spread the keys over the slots.
#[inline]
fn table_hash(h: u64) -> u64 {
    h.rotate_left(BUCKET_BITS)
}

#[cfg(test)]
mod tests;
