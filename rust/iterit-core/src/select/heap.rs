//! The lazy greedy's max-heap of upper bounds (docs/design.md, "Greedy selection").
//!
//! A row's entry is 16 bytes (its bound, its row, when the bound was computed), its complexity
//! read from the caller's array only to break ties of bounds; the heap is 4-ary. Against
//! `std`'s binary heap of 32-byte entries, a sift moves through half as many levels, and each
//! level's children share one or two cache lines: the greedy's thread spends its time between
//! two rows' scores in these sifts, over a heap of up to a million candidates and more.

use std::cmp::Ordering;

/// A candidate row and an upper bound of its score.
#[derive(Clone, Copy, Debug)]
pub(super) struct Entry {
    pub score: f64,
    pub row: u32,
    /// Number of picks made when `score` was computed.
    pub stamp: u32,
}

const ARITY: usize = 4;

/// Entries ordered by score, then complexity (larger first), then row (smaller first): the
/// greedy's order, a total one, so that the picks never depend on how the heap is laid out.
pub(super) struct Heap<'a> {
    items: Vec<Entry>,
    complexity: Option<&'a [f64]>,
}

impl<'a> Heap<'a> {
    /// A heap of `items`; `complexity` by row (`None`: 1 for every row).
    pub fn new(items: Vec<Entry>, complexity: Option<&'a [f64]>) -> Self {
        let mut heap = Self { items, complexity };
        for i in (0..heap.items.len().div_ceil(ARITY)).rev() {
            heap.sift_down(i);
        }
        heap
    }

    /// Row `row`'s complexity.
    #[inline]
    pub fn complexity(&self, row: u32) -> f64 {
        super::complexity_of(self.complexity, row as usize)
    }

    /// Whether `a` comes out before `b`.
    #[inline]
    fn above(&self, a: &Entry, b: &Entry) -> bool {
        match a.score.total_cmp(&b.score) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => match self.complexity(a.row).total_cmp(&self.complexity(b.row)) {
                Ordering::Greater => true,
                Ordering::Less => false,
                Ordering::Equal => a.row < b.row,
            },
        }
    }

    pub fn peek(&self) -> Option<&Entry> {
        self.items.first()
    }

    pub fn pop(&mut self) -> Option<Entry> {
        let last = self.items.pop()?;
        if self.items.is_empty() {
            return Some(last);
        }
        let top = std::mem::replace(&mut self.items[0], last);
        self.sift_down(0);
        Some(top)
    }

    pub fn push(&mut self, e: Entry) {
        self.items.push(e);
        let mut i = self.items.len() - 1;
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if !self.above(&e, &self.items[parent]) {
                break;
            }
            self.items[i] = self.items[parent];
            i = parent;
        }
        self.items[i] = e;
    }

    /// Replaces the top entry (there is one) by `e`.
    pub fn replace_top(&mut self, e: Entry) {
        self.items[0] = e;
        self.sift_down(0);
    }

    /// Moves the entry at `i` down to its place (a hole moves down, the entry is written once).
    fn sift_down(&mut self, mut i: usize) {
        let n = self.items.len();
        let e = self.items[i];
        loop {
            let first = ARITY * i + 1;
            if first >= n {
                break;
            }
            let mut best = first;
            for c in first + 1..(first + ARITY).min(n) {
                if self.above(&self.items[c], &self.items[best]) {
                    best = c;
                }
            }
            if !self.above(&self.items[best], &e) {
                break;
            }
            self.items[i] = self.items[best];
            i = best;
        }
        self.items[i] = e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Pops in the order of sorting by (score, complexity, smaller row), whatever pushes,
        /// pops and replacements of the top come between, ties of scores and complexities
        /// included.
        #[test]
        fn pops_in_the_greedys_order(
            initial in prop::collection::vec((0u8..4, 0u32..50), 0..60),
            ops in prop::collection::vec((0u8..3, 0u8..4, 0u32..50), 0..80),
            complexities in prop::collection::vec(0u8..3, 50),
            with_complexity: bool,
        ) {
            let c: Vec<f64> = complexities.iter().map(|&x| f64::from(x)).collect();
            let complexity = with_complexity.then_some(&c[..]);
            let c_of = |row: u32| complexity.map_or(1.0, |c| c[row as usize]);
            // The model: a list kept sorted, best last.
            let key = |e: &Entry| (e.score, c_of(e.row), std::cmp::Reverse(e.row));
            let sort = |v: &mut Vec<Entry>| v.sort_by(|a, b| key(a).partial_cmp(&key(b)).unwrap());
            let entry = |(s, row): (u8, u32)| Entry { score: f64::from(s), row, stamp: 0 };
            let mut model: Vec<Entry> = initial.iter().map(|&x| entry(x)).collect();
            sort(&mut model);
            let mut heap = Heap::new(initial.iter().map(|&x| entry(x)).collect(), complexity);
            for (op, s, row) in ops {
                match op {
                    0 => {
                        heap.push(entry((s, row)));
                        model.push(entry((s, row)));
                        sort(&mut model);
                    }
                    1 => {
                        let got = heap.pop().map(|e| (e.score, e.row));
                        prop_assert_eq!(got, model.pop().map(|e| (e.score, e.row)));
                    }
                    _ if !model.is_empty() => {
                        heap.replace_top(entry((s, row)));
                        model.pop();
                        model.push(entry((s, row)));
                        sort(&mut model);
                    }
                    _ => {}
                }
                prop_assert_eq!(heap.peek().map(|e| (e.score, e.row)), model.last().map(|e| (e.score, e.row)));
            }
            while let Some(e) = heap.pop() {
                prop_assert_eq!(Some((e.score, e.row)), model.pop().map(|e| (e.score, e.row)));
            }
            prop_assert!(model.is_empty());
        }
    }
}
