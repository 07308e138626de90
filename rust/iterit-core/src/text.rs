//! Tokenisation: maximal runs of two or more word characters (scikit-learn's default
//! `(?u)\b\w\w+\b`). What a word character is comes from the caller as code-point ranges:
//! the Python binding passes Python's own `\w` (`str.isalnum()` or `_`), because Rust's
//! character classes follow a different Unicode version and different definitions.
//! Lowercasing is also the caller's job (Python's `str.lower`, final sigma included).

use crate::error::{Error, Result};

const N_CODE_POINTS: usize = 0x11_0000;

/// A set of word characters, one bit per Unicode code point.
#[derive(Clone)]
pub struct WordChars {
    bits: Vec<u64>,
}

impl std::fmt::Debug for WordChars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n: u32 = self.bits.iter().map(|w| w.count_ones()).sum();
        write!(f, "WordChars({n} code points)")
    }
}

impl WordChars {
    /// From half-open code-point ranges `[start, end)`.
    pub fn from_ranges(ranges: &[(u32, u32)]) -> Result<Self> {
        let mut bits = vec![0u64; N_CODE_POINTS / 64];
        for &(start, end) in ranges {
            if start > end || end as usize > N_CODE_POINTS {
                return Err(Error::InvalidInput(format!(
                    "word-character range [{start:#x}, {end:#x}) is not inside [0, 0x110000)"
                )));
            }
            for cp in start..end {
                bits[cp as usize / 64] |= 1 << (cp % 64);
            }
        }
        Ok(Self { bits })
    }

    /// ASCII letters, digits and `_`: the same as Python's `\w` on ASCII text.
    pub fn ascii() -> Self {
        Self::from_ranges(&[(0x30, 0x3a), (0x41, 0x5b), (0x5f, 0x60), (0x61, 0x7b)])
            .expect("static ranges are valid")
    }

    #[inline]
    pub fn contains(&self, ch: char) -> bool {
        let cp = ch as usize;
        (self.bits[cp / 64] >> (cp % 64)) & 1 == 1
    }

    /// Calls `emit` with every token of `text`, in order.
    #[inline]
    pub fn for_each_token<'t>(&self, text: &'t str, mut emit: impl FnMut(&'t str)) {
        let mut start = 0usize;
        let mut run_chars = 0usize;
        for (i, ch) in text.char_indices() {
            if self.contains(ch) {
                if run_chars == 0 {
                    start = i;
                }
                run_chars += 1;
            } else {
                if run_chars >= 2 {
                    emit(&text[start..i]);
                }
                run_chars = 0;
            }
        }
        if run_chars >= 2 {
            emit(&text[start..]);
        }
    }

    /// The tokens of `text` as a vector (convenience for tests and small inputs).
    pub fn tokens<'t>(&self, text: &'t str) -> Vec<&'t str> {
        // About one token per six bytes of English text; a guess that saves most regrowth.
        let mut out = Vec::with_capacity(text.len() / 6);
        self.for_each_token(text, |t| out.push(t));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_two_or_more_word_characters() {
        let w = WordChars::ascii();
        assert_eq!(w.tokens("a bb, c_d 9 x9 --- e"), vec!["bb", "c_d", "x9"]);
        assert_eq!(w.tokens(""), Vec::<&str>::new());
        assert_eq!(w.tokens("ab"), vec!["ab"]);
        assert_eq!(w.tokens("ab!"), vec!["ab"]);
    }

    #[test]
    fn non_ascii_follows_the_table() {
        let mut ranges = vec![(0x30, 0x3a), (0x41, 0x5b), (0x5f, 0x60), (0x61, 0x7b)];
        ranges.push((0xe9, 0xea)); // é
        let w = WordChars::from_ranges(&ranges).unwrap();
        assert_eq!(w.tokens("café au lait"), vec!["café", "au", "lait"]);
        assert_eq!(WordChars::ascii().tokens("café au"), vec!["caf", "au"]);
    }

    #[test]
    fn rejects_out_of_range() {
        assert!(WordChars::from_ranges(&[(0x10, 0x110001)]).is_err());
        assert!(WordChars::from_ranges(&[(5, 4)]).is_err());
    }
}
