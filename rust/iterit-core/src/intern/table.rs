//! The index of one interner bucket: a linear-probing table of `u32` slots, each holding a
//! local entry index and ten bits of the key's hash as a tag (docs/design.md, "Scale").
//!
//! A general hash table would keep a control byte beside each 4-byte slot and double its size
//! when it fills, so that at some corpus sizes every bucket sits half empty: about 10 bytes per
//! distinct n-gram. Here a slot is 4 bytes and the table grows by half, between 58% and 87.5%
//! full: about 5.5 bytes. The tag rules out almost every slot whose entry is not the key
//! without reading the entry.

use crate::error::{Error, Result};

/// Bits of a slot that hold the local index; the other ten hold the tag.
const LOCAL_BITS: u32 = 22;
const LOCAL_MASK: u32 = (1 << LOCAL_BITS) - 1;
/// A free slot. Its local part is one past the largest local index a bucket may hold.
const EMPTY: u32 = u32::MAX;
/// The most entries one bucket may hold.
pub(crate) const MAX_LOCAL: u32 = LOCAL_MASK;
const MIN_SLOTS: usize = 64;

#[derive(Default)]
pub(crate) struct Table {
    slots: Vec<u32>,
    len: usize,
}

/// Where a hash's probe starts among `n` slots (its top bits), and its tag (its low ten bits,
/// independent of the start).
#[inline]
fn start_and_tag(h: u64, n: usize) -> (usize, u32) {
    let start = ((u128::from(h) * n as u128) >> 64) as usize;
    (start, (h as u32) >> LOCAL_BITS << LOCAL_BITS)
}

impl Table {
    /// The local index of the entry for which `is(local)` holds among those of hash `h`.
    #[inline]
    pub fn find(&self, h: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let (mut i, tag) = start_and_tag(h, n);
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            if s & !LOCAL_MASK == tag && is(s & LOCAL_MASK) {
                return Some(s & LOCAL_MASK);
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    /// Starts loading the slot where the probe of `h` begins (see [`crate::memory::prefetch`]).
    #[inline]
    pub fn prefetch(&self, h: u64) {
        let n = self.slots.len();
        if n > 0 {
            crate::memory::prefetch(&self.slots[start_and_tag(h, n).0]);
        }
    }

    /// The local index in the first slot of `h`'s probe when its tag matches: most likely the
    /// entry `find` will compare, so that a caller can prefetch it.
    #[inline]
    pub fn likely(&self, h: u64) -> Option<u32> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let (i, tag) = start_and_tag(h, n);
        let s = self.slots[i];
        (s != EMPTY && s & !LOCAL_MASK == tag).then_some(s & LOCAL_MASK)
    }

    /// Adds local index `local` under hash `h`; locals are added in order, 0 first (`local`
    /// is the number of locals added before it). `hash_of(l)` gives the hash of any local
    /// index already present, to move them when the table grows.
    pub fn insert(&mut self, h: u64, local: u32, hash_of: impl Fn(u32) -> u64) -> Result<()> {
        if local >= MAX_LOCAL {
            return Err(Error::Capacity(format!(
                "more than {MAX_LOCAL} distinct n-grams in one interner bucket"
            )));
        }
        debug_assert_eq!(local as usize, self.len, "locals are added in order");
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.grow(&hash_of);
        }
        place(&mut self.slots, h, local);
        self.len += 1;
        Ok(())
    }

    fn grow(&mut self, hash_of: &impl Fn(u32) -> u64) {
        let n = (self.slots.len() + self.slots.len() / 2).max(MIN_SLOTS);
        let mut slots = vec![EMPTY; n];
        // The table holds local indices 0..len (every one added, none removed). Visiting
        // them in that order reads the caller's entries front to back, where visiting the
        // slots would read them at random.
        for local in 0..self.len as u32 {
            place(&mut slots, hash_of(local), local);
        }
        self.slots = slots;
    }
}

/// Writes `local` into the first free slot of `h`'s probe.
#[inline]
fn place(slots: &mut [u32], h: u64, local: u32) {
    let n = slots.len();
    let (mut i, tag) = start_and_tag(h, n);
    while slots[i] != EMPTY {
        i += 1;
        if i == n {
            i = 0;
        }
    }
    slots[i] = tag | local;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_it_holds_across_growth() {
        let mut t = Table::default();
        let hash = |l: u32| (u64::from(l) ^ 0x9e37_79b9).wrapping_mul(0x2545_f491_4f6c_dd1d);
        for l in 0..10_000u32 {
            assert_eq!(t.find(hash(l), |x| x == l), None);
            t.insert(hash(l), l, hash).unwrap();
            assert!(t.slots.len() * 7 >= t.len * 8);
        }
        for l in 0..10_000u32 {
            assert_eq!(t.find(hash(l), |x| x == l), Some(l));
        }
        // Equal hashes are told apart by the entries themselves.
        let mut same = Table::default();
        for l in 0..100u32 {
            same.insert(42, l, |_| 42).unwrap();
        }
        assert_eq!(same.find(42, |x| x == 77), Some(77));
        assert_eq!(same.find(42, |x| x == 100), None);
        assert!(matches!(
            same.insert(1, MAX_LOCAL, |_| 42),
            Err(Error::Capacity(_))
        ));
    }
}
