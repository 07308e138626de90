"""iterit.selection.reference, the oracle of the selector tests, checked by hand on small
inputs: its tokenizer and n-grams, both TF-IDF weightings, the greedy selection with decay, the
candidate rule, and the naive, lazy and numpy versions agreeing."""

from __future__ import annotations

import math

import pytest

from iterit.errors import InvalidInputError
from iterit.selection import reference as ref


def test_tokens_are_lowercased_runs_of_two_or_more_word_characters():
    assert ref.tokens("A cat's Hat-trick, 42 x") == ["cat", "hat", "trick", "42"]


def test_ngrams_in_order_of_n_then_position():
    assert ref.ngrams("aa bb cc", (1, 2)) == ["aa", "bb", "cc", "aa bb", "bb cc"]
    assert ref.ngrams("aa bb", (3, 3)) == []


def test_sklearn_tfidf_by_hand():
    rows = ref.tfidf(["aa bb", "aa"], ngram_range=(1, 1))
    idf_bb = math.log(3 / 2) + 1  # smooth idf: ln((n + 1) / (df + 1)) + 1
    norm = math.sqrt(1 + idf_bb**2)  # idf of aa (in both) is 1
    assert rows[0] == pytest.approx({"aa": 1 / norm, "bb": idf_bb / norm})
    assert rows[1] == {"aa": 1.0}


def test_paper_tfidf_by_hand():
    rows = ref.tfidf(["aa bb bb", "aa"], ngram_range=(1, 1), variant="paper")
    # term frequency over the text's n-grams times ln(n / df): aa is in every text
    assert rows[0] == pytest.approx({"aa": 0.0, "bb": (2 / 3) * math.log(2)})
    assert rows[1] == {"aa": 0.0}


def test_unknown_weighting_is_refused():
    with pytest.raises(InvalidInputError, match="variant"):
        ref.tfidf(["aa"], variant="bm25")


ROWS = [{"x": 1.0}, {"x": 0.9}, {"y": 0.5}]


@pytest.mark.parametrize("fn", [ref.select_naive, ref.select])
def test_decay_lets_a_new_ngram_win(fn):
    got = fn(ROWS, [0.5, 0.5, 0.5], 2, decay=0.1)
    # After row 0, x weighs 0.1: row 1 scores 0.5 * 0.09 and row 2 (only y) 0.5 * 0.5.
    assert got.indices == [0, 2] and got.scores == pytest.approx([0.5, 0.25])
    assert (got.shortfall, got.n_candidates) == (0, 3)
    no_decay = fn(ROWS, [0.5, 0.5, 0.5], 2, decay=1.0)
    assert no_decay.indices == [0, 1]


@pytest.mark.parametrize("fn", [ref.select_naive, ref.select])
def test_complexity_scales_and_breaks_ties_and_only_candidates_are_picked(fn):
    rows = [{"a": 1.0}, {"b": 1.0}, {"c": 1.0}, {"d": 1.0}]
    # 0.4 < 0.8 scales row 0 down; complexity 1.0 is not a candidate (IFD >= 1); nan neither.
    got = fn(rows, [0.4, 0.8, 1.0, float("nan")], 4)
    assert got.indices == [1, 0] and got.n_candidates == 2 and got.shortfall == 2
    tie = fn([{"a": 1.0}, {"a": 1.0}], [0.5, 0.5], 1)
    assert tie.indices == [0]  # equal scores and complexities: the smaller index


def test_texts_are_fitted_on_the_candidates_and_all_versions_agree():
    texts = ["the cat sat", "the cat sat down", "dogs bark loudly", "a bird sings", "the dog"]
    c = [0.9, 0.8, 0.7, 1.5, 0.6]
    naive = ref.select_naive(texts, c, 3)
    assert 3 not in naive.indices and naive.n_candidates == 4
    assert ref.select(texts, c, 3) == naive
    pytest.importorskip("sklearn")
    assert ref.select_numpy(texts, c, 3).indices == naive.indices
