//! Correctly rounded summation of float64 values: Shewchuk's algorithm with the final
//! half-even correction, as CPython's `math.fsum` implements it. The result is the exact sum
//! rounded once, so it does not depend on the order of the terms; the pure-Python reference
//! uses `math.fsum` and gets bit-identical numbers.

/// Accumulates finite values exactly; [`ExactSum::value`] rounds once at the end.
#[derive(Debug, Default, Clone)]
pub struct ExactSum {
    partials: Vec<f64>,
}

impl ExactSum {
    pub fn new() -> Self {
        Self {
            partials: Vec::with_capacity(4),
        }
    }

    pub fn clear(&mut self) {
        self.partials.clear();
    }

    /// Adds one finite term (non-finite terms are the caller's job to exclude).
    #[inline]
    pub fn add(&mut self, mut x: f64) {
        let mut i = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        self.partials.truncate(i);
        if x != 0.0 {
            self.partials.push(x);
        }
    }

    /// The exact sum of the terms added so far, correctly rounded to float64.
    pub fn value(&self) -> f64 {
        let p = &self.partials;
        let mut n = p.len();
        if n == 0 {
            return 0.0;
        }
        n -= 1;
        let mut hi = p[n];
        let mut lo = 0.0;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = p[n];
            hi = x + y;
            let yr = hi - x;
            lo = y - yr;
            if lo != 0.0 {
                break;
            }
        }
        // Half-even rounding across several partials (CPython's comment: sum([1e-16, 1, 1e16])
        // must round the last digit up).
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            let yr = x - hi;
            if y == yr {
                hi = x;
            }
        }
        hi
    }
}

/// The correctly rounded sum of `terms`.
pub fn exact_sum(terms: impl IntoIterator<Item = f64>) -> f64 {
    let mut acc = ExactSum::new();
    for t in terms {
        acc.add(t);
    }
    acc.value()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classic_cases() {
        assert_eq!(exact_sum([0.1; 10]), 1.0);
        assert_eq!(
            exact_sum([1e100, 1.0, -1e100, 1e-100, 1e50, -1.0, -1e50]),
            1e-100
        );
        assert_eq!(exact_sum([1e-16, 1.0, 1e16]), 10000000000000002.0);
        assert_eq!(exact_sum([]), 0.0);
    }

    proptest! {
        #[test]
        fn order_does_not_matter(mut v in prop::collection::vec(0.0f64..1e6, 0..40), seed in any::<u64>()) {
            let a = exact_sum(v.iter().copied());
            // A deterministic shuffle driven by the seed.
            let mut s = seed | 1;
            for i in (1..v.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                v.swap(i, (s % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(a.to_bits(), exact_sum(v.iter().copied()).to_bits());
        }

        #[test]
        fn matches_wide_integer_sum_for_integers(v in prop::collection::vec(0u32..1_000_000, 0..50)) {
            let exact: u64 = v.iter().map(|&x| x as u64).sum();
            prop_assert_eq!(exact_sum(v.iter().map(|&x| x as f64)), exact as f64);
        }
    }
}
