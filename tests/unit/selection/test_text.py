"""Tokens are defined by Python: the word-character table and the lowercasing tables come from
the running interpreter, whatever Unicode version Rust's own tables follow, and the core's
lowercasing equals ``str.lower`` on every code point and in every Final_Sigma context."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import iterit
from iterit import _iterit
from iterit.errors import InvalidInputError, InvalidTypeError
from iterit.selection.text import TOKEN_PATTERN, analyzer, as_texts, word_char_ranges
from tests.helpers.text_strategies import any_text

SIGMA = "\u03a3"
EVERY_CHARACTER = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]


def core_lower(texts: list[str]) -> list[str]:
    return analyzer().lowercase(_iterit.Texts(texts))


# Characters where Rust's and Python's notions differ, or where lowercasing is contextual.


def test_word_char_table_is_pythons_w() -> None:
    ranges = word_char_ranges().reshape(-1, 2)
    is_word = np.zeros(0x110000, dtype=bool)
    for start, end in ranges:
        is_word[start:end] = True
    sample = list(range(0, 0x3000)) + list(range(0x10000, 0x10500)) + [0x1F600, 0x20000, 0xE0100]
    for cp in sample:
        if 0xD800 <= cp < 0xE000:
            continue
        assert is_word[cp] == bool(re.match(r"\w", chr(cp))), hex(cp)


@given(st.characters())
def test_word_char_table_on_any_character(ch: str) -> None:
    cp = ord(ch)
    ranges = word_char_ranges().reshape(-1, 2)
    inside = bool(((ranges[:, 0] <= cp) & (cp < ranges[:, 1])).any())
    assert inside == (ch.isalnum() or ch == "_")


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_unigrams_are_pythons_tokens(text: str) -> None:
    expected = re.findall(TOKEN_PATTERN, text.lower())
    m = iterit.tfidf([text], ngram_range=(1, 1))
    assert sorted(m.vocabulary()) == sorted(set(expected))
    # df is 1 per distinct token; the number of distinct columns is the number of distinct tokens.
    assert m.shape == (1, len(set(expected)))


def test_final_sigma_follows_python_lowercasing() -> None:
    assert iterit.tfidf(["ΟΔΟΣ ΟΔΟΣ."], ngram_range=(1, 1)).vocabulary() == ["οδος"]


def test_core_lowercase_equals_str_lower_on_every_code_point() -> None:
    assert core_lower(EVERY_CHARACTER) == [c.lower() for c in EVERY_CHARACTER]


@pytest.mark.parametrize(
    "pattern",
    [
        "{c}" + SIGMA,
        "A{c}" + SIGMA,
        "A" + SIGMA + "{c}",
        "A{c}" + SIGMA + "{c}",
        SIGMA + "{c}" + SIGMA,
        "{c}{c}" + SIGMA + "{c}{c}A",
    ],
)
def test_core_lowercase_equals_str_lower_around_every_sigma(pattern: str) -> None:
    # Pieces separated by a newline, which the Final_Sigma rule never looks across; long texts
    # so that a pattern over the whole Unicode range is a few hundred strings.
    pieces = [pattern.format(c=c) for c in EVERY_CHARACTER]
    texts = ["\n".join(pieces[i : i + 4096]) for i in range(0, len(pieces), 4096)]
    assert core_lower(texts) == [t.lower() for t in texts]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(any_text, st.sampled_from([SIGMA, "\u0345", "'", ".", "A"])), max_size=8))
def test_core_lowercase_equals_str_lower_on_any_text(parts: list[str]) -> None:
    text = "".join(parts)
    assert core_lower([text]) == [text.lower()]


def test_as_texts_rejects_non_strings_and_nulls_by_position() -> None:
    with pytest.raises(InvalidTypeError, match=r"texts\[2\] is bytes"):
        as_texts(["a", "b", b"c"])
    with pytest.raises(InvalidTypeError, match=r"texts\[0\] is int"):
        as_texts([3])
    with pytest.raises(InvalidTypeError, match="single str"):
        as_texts("not a list")
    with pytest.raises(InvalidInputError, match=r"texts\[1\] cannot be encoded"):
        as_texts(["a", "\ud800"])
    assert len(as_texts(t for t in ["A", "B"])) == 2
    assert core_lower(["A", "B"]) == ["a", "b"]
