"""iterit.selection.overlap: the Jaccard overlap of two selections, against its definition."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from iterit.selection.overlap import jaccard

index_lists = st.lists(st.integers(min_value=-5, max_value=40), max_size=30)


def test_known_values():
    assert jaccard([1, 2, 3], [2, 3, 4]) == pytest.approx(2 / 4)
    assert jaccard([0, 1], [2, 3]) == 0.0
    assert jaccard([5, 6], [6, 5]) == 1.0
    assert jaccard([7], [7, 8, 9]) == pytest.approx(1 / 3)


def test_two_empty_selections_agree_and_one_empty_shares_nothing():
    assert jaccard([], []) == 1.0
    assert jaccard([], [3]) == 0.0
    assert jaccard([3], []) == 0.0


def test_sets_not_lists_repeats_and_order_do_not_count():
    assert jaccard([1, 1, 1, 2], [2, 1]) == 1.0
    assert jaccard([3, 2, 1, 1], [1, 4]) == pytest.approx(1 / 4)


def test_numpy_indices_and_one_shot_iterables():
    a = np.array([4, 1, 9], dtype=np.int64)
    b = np.array([9, 4, 2], dtype=np.int32)
    assert jaccard(a, b) == pytest.approx(2 / 4)
    assert jaccard(iter([1, 2]), (i for i in [2, 3])) == pytest.approx(1 / 3)
    # Indices are compared as integers: a float index equal to an integer is that integer.
    assert jaccard([1.0, 2.0], [1, 2]) == 1.0


def test_returns_a_python_float():
    assert type(jaccard(np.arange(3), np.arange(2))) is float


@given(index_lists, index_lists)
def test_matches_the_definition(a, b):
    sa, sb = set(a), set(b)
    want = 1.0 if not (sa | sb) else len(sa & sb) / len(sa | sb)
    assert jaccard(a, b) == pytest.approx(want)


@given(index_lists, index_lists)
def test_symmetric_bounded_and_one_only_for_equal_sets(a, b):
    j = jaccard(a, b)
    assert j == jaccard(b, a)
    assert 0.0 <= j <= 1.0
    assert (j == 1.0) == (set(a) == set(b))
    assert jaccard(a, a) == 1.0
