"""Tokens are defined by Python: the word-character table and lowercasing come from the running
interpreter, whatever Unicode version Rust's own tables follow."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import iterit
from iterit.errors import InvalidTypeError
from iterit.selection.text import TOKEN_PATTERN, lowercase_texts, word_char_ranges
from tests.helpers.text_strategies import any_text

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


def test_lowercase_texts_rejects_non_strings_by_position() -> None:
    with pytest.raises(InvalidTypeError, match=r"texts\[2\] is bytes"):
        lowercase_texts(["a", "b", b"c"])
    with pytest.raises(InvalidTypeError, match=r"texts\[0\] is int"):
        lowercase_texts([3])
    with pytest.raises(InvalidTypeError, match="single str"):
        lowercase_texts("not a list")
    assert lowercase_texts(t for t in ["A", "B"]) == ["a", "b"]
