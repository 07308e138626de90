//! Lowercasing and tokenisation (docs/design.md, "TF-IDF"): Python's `str.lower`, then maximal
//! runs of two or more word characters (scikit-learn's default `(?u)\b\w\w+\b`).
//!
//! Both follow tables the caller supplies, because Rust's Unicode tables follow another
//! Unicode version and other definitions than the running Python: the Python binding passes
//! its own `\w` (`str.isalnum()` or `_`) as code-point ranges, its own full lowercase mapping
//! of every code point, and the two character sets of the one context-dependent rule
//! `str.lower` applies (Final_Sigma), so that [`Lowercase`] equals `str.lower` exactly.

use std::borrow::Cow;

use crate::error::{Error, Result};

const N_CODE_POINTS: usize = 0x11_0000;

/// A set of code points, one bit each (used for word characters and the Final_Sigma sets).
#[derive(Clone)]
pub struct WordChars {
    bits: Vec<u64>,
}

/// A set of code points; the same structure as [`WordChars`].
pub type CodePoints = WordChars;

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
        let bytes = text.as_bytes();
        let mut start = 0usize;
        let mut run_chars = 0usize;
        let mut i = 0usize;
        while i < bytes.len() {
            // ASCII bytes (most of most texts) are their own code points: no decoding.
            let (word, width) = if bytes[i] < 0x80 {
                (self.contains(char::from(bytes[i])), 1)
            } else {
                let ch = text[i..].chars().next().expect("i is a char boundary");
                (self.contains(ch), ch.len_utf8())
            };
            if word {
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
            i += width;
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

const CAPITAL_SIGMA: char = '\u{3a3}';

/// Python's `str.lower`: the full lowercase mapping of each code point (one to three code
/// points), and for capital sigma the Final_Sigma rule as CPython applies it: `ς` when a cased
/// letter precedes it and none follows, skipping case-ignorable characters both ways; else `σ`.
#[derive(Clone)]
pub struct Lowercase {
    /// Per code point: 0 (maps to itself), else `start << 8 | len` into `to`.
    table: Vec<u32>,
    to: Vec<char>,
    /// Cased and not case-ignorable: the first such character met decides the rule.
    cased: CodePoints,
    case_ignorable: CodePoints,
}

impl std::fmt::Debug for Lowercase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.table.iter().filter(|&&e| e != 0).count();
        write!(f, "Lowercase({n} mapped code points)")
    }
}

impl Lowercase {
    /// `mappings` is flat: code point, number of code points it maps to, those code points;
    /// repeated. Code points not listed map to themselves. `cased` holds the characters that
    /// are cased and not case-ignorable.
    pub fn new(mappings: &[u32], cased: CodePoints, case_ignorable: CodePoints) -> Result<Self> {
        let bad = |m: String| Error::InvalidInput(format!("lowercase table: {m}"));
        let char_of = |cp: u32| {
            char::from_u32(cp).ok_or_else(|| bad(format!("{cp:#x} is not a scalar value")))
        };
        let mut table = vec![0u32; N_CODE_POINTS];
        let mut to = Vec::new();
        let mut k = 0;
        while k < mappings.len() {
            let (from, len) = (
                mappings[k],
                *mappings.get(k + 1).ok_or_else(|| bad("truncated".into()))? as usize,
            );
            let targets = mappings
                .get(k + 2..k + 2 + len)
                .ok_or_else(|| bad("truncated".into()))?;
            char_of(from)?;
            if !(1..=255).contains(&len) || to.len() >= 1 << 24 {
                return Err(bad(format!("mapping of {from:#x} has {len} code points")));
            }
            table[from as usize] = ((to.len() as u32) << 8) | len as u32;
            for &t in targets {
                to.push(char_of(t)?);
            }
            k += 2 + len;
        }
        let lower = Self {
            table,
            to,
            cased,
            case_ignorable,
        };
        // The ASCII fast path below assumes the ASCII mapping every Python has.
        for b in 0u8..128 {
            let (ch, want) = (b as char, b.to_ascii_lowercase() as char);
            if lower.mapped(ch).unwrap_or(&[ch]) != [want] {
                return Err(bad(format!("ASCII {b:#x} does not map to {want:?}")));
            }
        }
        Ok(lower)
    }

    /// The code points `ch` maps to, or `None` when it maps to itself.
    #[inline]
    fn mapped(&self, ch: char) -> Option<&[char]> {
        let e = self.table[ch as usize];
        (e != 0).then(|| {
            let start = (e >> 8) as usize;
            &self.to[start..start + (e & 0xff) as usize]
        })
    }

    /// `text` lowercased; borrowed when nothing changes.
    pub fn apply<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if text.is_ascii() {
            if !text.bytes().any(|b| b.is_ascii_uppercase()) {
                return Cow::Borrowed(text);
            }
            return Cow::Owned(text.to_ascii_lowercase());
        }
        let mut out = String::with_capacity(text.len());
        for (i, ch) in text.char_indices() {
            if ch == CAPITAL_SIGMA {
                out.push(self.sigma(text, i));
                continue;
            }
            match self.mapped(ch) {
                None => out.push(ch),
                Some(to) => out.extend(to),
            }
        }
        if out == text {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(out)
        }
    }

    /// CPython's `handle_capital_sigma` for the sigma at byte `i` of `text`.
    fn sigma(&self, text: &str, i: usize) -> char {
        let not_ignorable = |c: &char| !self.case_ignorable.contains(*c);
        let before = text[..i].chars().rev().find(not_ignorable);
        let after = text[i + CAPITAL_SIGMA.len_utf8()..]
            .chars()
            .find(not_ignorable);
        let final_sigma = before.is_some_and(|c| self.cased.contains(c))
            && !after.is_some_and(|c| self.cased.contains(c));
        if final_sigma {
            '\u{3c2}'
        } else {
            '\u{3c3}'
        }
    }
}

/// Everything that turns a text into tokens: the lowercasing (none: texts are taken as they
/// are) and the word characters.
#[derive(Clone, Debug)]
pub struct Analyzer {
    pub lowercase: Option<Lowercase>,
    pub words: WordChars,
}

impl Analyzer {
    /// ASCII word characters and no lowercasing (tests and the core-only example).
    pub fn ascii() -> Self {
        Self {
            lowercase: None,
            words: WordChars::ascii(),
        }
    }

    #[inline]
    pub fn lowered<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match &self.lowercase {
            Some(l) => l.apply(text),
            None => Cow::Borrowed(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greek() -> Lowercase {
        // A (0x41) .. Z and capital sigma; 'a' cased; U+0307 case-ignorable; I-dot maps to two.
        let mut m = vec![];
        for c in 0x41u32..0x5b {
            m.extend([c, 1, c + 0x20]);
        }
        m.extend([0x3a3, 1, 0x3c3, 0x130, 2, 0x69, 0x307]);
        let cased =
            CodePoints::from_ranges(&[(0x41, 0x5b), (0x61, 0x7b), (0x3a3, 0x3a4), (0x3c3, 0x3c4)])
                .unwrap();
        let ignorable = CodePoints::from_ranges(&[(0x27, 0x28), (0x307, 0x308)]).unwrap();
        Lowercase::new(&m, cased, ignorable).unwrap()
    }

    #[test]
    fn lowercase_follows_the_table_and_final_sigma() {
        let l = greek();
        assert_eq!(l.apply("ABC def"), "abc def");
        assert!(matches!(l.apply("abc"), Cow::Borrowed(_)));
        assert_eq!(l.apply("\u{130}x"), "i\u{307}x");
        assert_eq!(l.apply("AΣ"), "aς");
        assert_eq!(l.apply("Σ"), "σ");
        assert_eq!(l.apply("AΣA"), "aσa");
        assert_eq!(l.apply("A'Σ'"), "a'ς'");
        assert_eq!(l.apply("A'Σ'A"), "a'σ'a");
        assert_eq!(l.apply("A Σ"), "a σ");
        assert!(Lowercase::new(&[0x41, 1], CodePoints::ascii(), CodePoints::ascii()).is_err());
    }

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
