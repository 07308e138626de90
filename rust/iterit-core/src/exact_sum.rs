//! Correctly rounded summation of float64 values: the exact sum rounded once, so it does not
//! depend on the order of the terms, and the pure-Python reference (`math.fsum`) gets
//! bit-identical numbers.
//!
//! [`NonNegativeSum`] is what the core uses: O(1) per term whatever the spread of magnitudes.
//! [`ExactSum`] is Shewchuk's algorithm with the final half-even correction, as CPython's
//! `math.fsum` implements it, for any signs; the tests use it as the oracle of the former.

/// Accumulates finite values exactly; [`ExactSum::value`] rounds once at the end. Only the
/// tests use it (the oracle of [`NonNegativeSum`]).
#[cfg(test)]
#[derive(Debug, Default, Clone)]
pub struct ExactSum {
    partials: Vec<f64>,
}

#[cfg(test)]
impl ExactSum {
    pub fn new() -> Self {
        Self {
            partials: Vec::with_capacity(4),
        }
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

/// The correctly rounded sum of `terms` (Shewchuk's algorithm; any signs).
#[cfg(test)]
pub fn exact_sum(terms: impl IntoIterator<Item = f64>) -> f64 {
    let mut acc = ExactSum::new();
    for t in terms {
        acc.add(t);
    }
    acc.value()
}

/// A finite `x >= 0` as `mantissa * 2^(shift - 1074)`; `None` for zero.
#[inline]
fn integer_and_shift(x: f64) -> Option<(u64, u32)> {
    let bits = x.to_bits();
    let biased = (bits >> 52) as u32 & 0x7ff;
    let fraction = bits & ((1 << 52) - 1);
    if biased == 0 {
        (fraction != 0).then_some((fraction, 0))
    } else {
        Some((fraction | (1 << 52), biased - 1))
    }
}

const CHUNK_BITS: u32 = 32;
const CHUNK_MASK: u64 = (1 << CHUNK_BITS) - 1;
/// Bit 0 of the accumulator has the value 2^-1074 (the smallest subnormal); finite doubles
/// reach bit 2097, and 68 chunks of 32 bits leave room for the carries of 2^32 more terms.
const N_CHUNKS: usize = 68;
/// Adds after which carries are propagated, so that no chunk can overflow its u64.
const ADDS_BEFORE_CARRY: u32 = 1 << 30;

/// Exact accumulator of finite non-negative doubles with O(1) additions: a 2176-bit
/// fixed-point number kept in 32-bit chunks (each in a u64, so carries wait). The value is the
/// exact sum rounded once, half to even, so it equals [`ExactSum`] and Python's `math.fsum`
/// bit for bit, and it costs the same whatever the spread of magnitudes. Shewchuk's partials,
/// by contrast, grow with the spread, which the decayed weights of a long selection make wide.
#[derive(Clone, Debug)]
pub struct NonNegativeSum {
    chunks: [u64; N_CHUNKS],
    /// Chunks `lo..hi` may be non-zero.
    lo: usize,
    hi: usize,
    adds: u32,
}

impl Default for NonNegativeSum {
    fn default() -> Self {
        Self::new()
    }
}

impl NonNegativeSum {
    pub fn new() -> Self {
        Self {
            chunks: [0; N_CHUNKS],
            lo: N_CHUNKS,
            hi: 0,
            adds: 0,
        }
    }

    pub fn clear(&mut self) {
        if self.lo < self.hi {
            self.chunks[self.lo..self.hi].fill(0);
        }
        self.lo = N_CHUNKS;
        self.hi = 0;
        self.adds = 0;
    }

    /// Adds a finite `x >= 0` (anything else is a caller bug; debug builds check it).
    #[inline]
    pub fn add(&mut self, x: f64) {
        debug_assert!(x.is_finite() && x >= 0.0, "NonNegativeSum::add({x})");
        let Some((mantissa, shift)) = integer_and_shift(x) else {
            return;
        };
        let chunk = (shift / CHUNK_BITS) as usize;
        let wide = u128::from(mantissa) << (shift % CHUNK_BITS);
        self.chunks[chunk] += (wide as u64) & CHUNK_MASK;
        self.chunks[chunk + 1] += ((wide >> 32) as u64) & CHUNK_MASK;
        self.chunks[chunk + 2] += (wide >> 64) as u64;
        self.added(chunk, chunk + 3);
    }

    /// Adds `times` terms equal to a finite `x >= 0`, exactly as `times` calls of
    /// [`NonNegativeSum::add`] would, in the time of one.
    #[inline]
    pub fn add_times(&mut self, x: f64, times: u32) {
        debug_assert!(x.is_finite() && x >= 0.0, "NonNegativeSum::add_times({x})");
        let Some((mantissa, shift)) = integer_and_shift(x).filter(|_| times > 0) else {
            return;
        };
        let chunk = (shift / CHUNK_BITS) as usize;
        // Under 2^(53 + 32 + 31) bits: four chunks hold it (the last one at index 66 at most),
        // and each chunk grows by under 2^32, as with any add, so the carries can wait.
        let wide = (u128::from(mantissa) * u128::from(times)) << (shift % CHUNK_BITS);
        self.chunks[chunk] += (wide as u64) & CHUNK_MASK;
        self.chunks[chunk + 1] += ((wide >> 32) as u64) & CHUNK_MASK;
        self.chunks[chunk + 2] += ((wide >> 64) as u64) & CHUNK_MASK;
        self.chunks[chunk + 3] += (wide >> 96) as u64;
        self.added(chunk, chunk + 4);
    }

    /// Records an add to chunks `lo..hi`, and propagates the carries when they might
    /// otherwise overflow.
    #[inline]
    fn added(&mut self, lo: usize, hi: usize) {
        self.lo = self.lo.min(lo);
        self.hi = self.hi.max(hi);
        self.adds += 1;
        if self.adds == ADDS_BEFORE_CARRY {
            self.carry();
        }
    }

    /// Moves every chunk's overflow into the next chunk; afterwards each chunk is < 2^32.
    fn carry(&mut self) {
        let mut carry = 0u64;
        let mut i = self.lo.min(self.hi);
        while i < self.hi || (carry != 0 && i < N_CHUNKS) {
            let v = self.chunks[i] + carry;
            self.chunks[i] = v & CHUNK_MASK;
            carry = v >> CHUNK_BITS;
            i += 1;
        }
        self.hi = self.hi.max(i);
        self.adds = 0;
    }

    /// The exact sum, correctly rounded (half to even) to a double.
    pub fn value(&mut self) -> f64 {
        if self.lo >= self.hi {
            return 0.0;
        }
        self.carry();
        let Some(top_chunk) = (self.lo..self.hi).rev().find(|&i| self.chunks[i] != 0) else {
            return 0.0;
        };
        // Global index of the highest set bit.
        let top = top_chunk as u32 * CHUNK_BITS + (63 - self.chunks[top_chunk].leading_zeros());
        if top < 53 {
            // Below 2^53 quanta of 2^-1074 every value is a double: the sum is exact.
            let k = self.chunks[0] | (self.chunks[1] << 32);
            return k as f64 * f64::from_bits(1); // 2^-1074
        }
        // Significand: bits top-52 ..= top; then the round bit and the sticky bits below it.
        // The 54 bits from the round bit up lie within three consecutive chunks.
        let low = top - 52;
        let first = ((low - 1) / CHUNK_BITS) as usize;
        let mut window = 0u128;
        for i in (first..(first + 3).min(N_CHUNKS)).rev() {
            window = (window << CHUNK_BITS) | u128::from(self.chunks[i]);
        }
        let window_shift = low - 1 - first as u32 * CHUNK_BITS;
        let with_round = (window >> window_shift) as u64; // mantissa bits, then the round bit
        let mut mantissa = with_round >> 1;
        let round = with_round & 1 == 1;
        let sticky = (window & ((1u128 << window_shift) - 1)) != 0
            || self.chunks[self.lo.min(first)..first]
                .iter()
                .any(|&c| c != 0);
        let mut exponent = top; // value = mantissa * 2^(exponent - 52 - 1074)
        if round && (sticky || mantissa & 1 == 1) {
            mantissa += 1;
            if mantissa == 1 << 53 {
                mantissa >>= 1;
                exponent += 1;
            }
        }
        let biased = u64::from(exponent) - 51; // top >= 53 gives a normal number
        if biased >= 0x7ff {
            return f64::INFINITY;
        }
        f64::from_bits((biased << 52) | (mantissa & ((1 << 52) - 1)))
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn superaccumulator_edge_cases() {
        let cases: Vec<Vec<f64>> = vec![
            vec![],
            vec![0.0, 0.0],
            vec![f64::from_bits(1); 3],
            vec![f64::MAX, f64::MAX],
            vec![f64::MAX],
            vec![1.0, 2f64.powi(-53)],
            vec![1.0, 2f64.powi(-53), 2f64.powi(-1074)],
            vec![1.0 + f64::EPSILON, 2f64.powi(-53)],
            vec![0.1; 1000],
            vec![f64::MIN_POSITIVE, f64::MIN_POSITIVE / 3.0, 1e-300, 1e300],
        ];
        for v in cases {
            let mut acc = NonNegativeSum::new();
            v.iter().for_each(|&x| acc.add(x));
            let want = if v.len() == 2 && v[0] == f64::MAX {
                f64::INFINITY
            } else {
                exact_sum(v.iter().copied())
            };
            assert_eq!(acc.value().to_bits(), want.to_bits(), "{v:?}");
        }
    }

    /// A total past the largest double rounds to infinity, as round-to-nearest does; one
    /// just below it stays finite.
    #[test]
    fn an_overflowing_total_is_infinite() {
        let mut acc = NonNegativeSum::new();
        acc.add(2.034902010133241e307);
        acc.add(1.5942029338489918e308);
        assert_eq!(acc.value(), f64::INFINITY);
        acc.clear();
        acc.add(f64::MAX / 2.0);
        acc.add(f64::MAX / 2.0);
        assert_eq!(acc.value(), f64::MAX);
    }

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
        fn superaccumulator_equals_shewchuk(
            v in prop::collection::vec(
                prop_oneof![
                    0.0f64..1.0,
                    (0.0f64..1.0, -1074i32..1023).prop_map(|(m, e)| m * 2f64.powi(e)),
                    any::<u64>().prop_map(|b| f64::from_bits(b & 0x7fef_ffff_ffff_ffff)),
                    (0u64..1 << 52).prop_map(f64::from_bits),
                    Just(f64::MIN_POSITIVE),
                    Just(1.0),
                ],
                0..60,
            )
        ) {
            // Two of the largest doubles can sum past f64::MAX: the superaccumulator then
            // rounds to infinity (see `an_overflowing_total_is_infinite`), where Shewchuk's
            // partials give NaN. Only finite totals are compared (the float sum bounds the
            // exact one within a factor 1 + 60 ulps).
            prop_assume!(v.iter().sum::<f64>() < f64::MAX / 2.0);
            let mut acc = NonNegativeSum::new();
            for &x in &v {
                acc.add(x);
            }
            let want = exact_sum(v.iter().copied());
            prop_assert_eq!(acc.value().to_bits(), want.to_bits(), "{:?}", v);
            // Reusable after clear().
            acc.clear();
            acc.add(0.5);
            prop_assert_eq!(acc.value(), 0.5);
        }

        #[test]
        fn adding_times_equals_adding_each(
            terms in prop::collection::vec(
                (
                    prop_oneof![
                        0.0f64..1.0,
                        (0.0f64..1.0, -1074i32..990).prop_map(|(m, e)| m * 2f64.powi(e)),
                        (0u64..1 << 52).prop_map(f64::from_bits),
                        Just(f64::MIN_POSITIVE),
                    ],
                    prop_oneof![0u32..5, Just(u32::MAX), any::<u32>()],
                ),
                0..12,
            )
        ) {
            let mut once = NonNegativeSum::new();
            let mut exact = ExactSum::new();
            for &(x, times) in &terms {
                once.add_times(x, times);
                // times copies of x, exactly: the product rounded, and its rounding error
                // (exact by fma: the product's low bits sit within 32 bits of x's last bit).
                // Exponents stay below 990 so that the product is finite.
                let big = x * f64::from(times);
                let small = x.mul_add(f64::from(times), -big);
                exact.add(big);
                exact.add(small);
            }
            prop_assert_eq!(once.value().to_bits(), exact.value().to_bits(), "{:?}", terms);
        }

        #[test]
        fn adding_a_few_times_equals_adding_each(
            terms in prop::collection::vec((0.0f64..1e6, 0u32..20), 0..12)
        ) {
            let (mut once, mut each) = (NonNegativeSum::new(), NonNegativeSum::new());
            for &(x, times) in &terms {
                once.add_times(x, times);
                for _ in 0..times {
                    each.add(x);
                }
            }
            prop_assert_eq!(once.value().to_bits(), each.value().to_bits());
        }

        #[test]
        fn matches_wide_integer_sum_for_integers(v in prop::collection::vec(0u32..1_000_000, 0..50)) {
            let exact: u64 = v.iter().map(|&x| x as u64).sum();
            prop_assert_eq!(exact_sum(v.iter().map(|&x| x as f64)), exact as f64);
        }
    }
}
