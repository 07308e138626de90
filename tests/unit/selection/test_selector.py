"""iterit.tfidf and iterit.select against scikit-learn and the pure-Python reference."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import scipy.sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

import iterit
from iterit.data.candidates import is_candidate
from iterit.selection import reference
from tests.helpers.text_strategies import any_text

SMALL_WORDS = st.sampled_from(["aa", "bb", "cc", "dd", "Aa", "éé", "x", "ΟΔΟΣ", "", " ", ".", "\n"])
# Few distinct words: repeated n-grams, duplicate texts and exact ties are common.
small_text = st.lists(SMALL_WORDS, max_size=8).map(" ".join)
texts_strategy = st.lists(st.one_of(small_text, any_text), min_size=1, max_size=12)
complexity_value = st.sampled_from(
    [0.5, 0.5, 0.25, 0.9, 0.99, 1.0, 1.5, 0.0, -0.2, math.nan, math.inf, 0.7, 0.3333333333333333]
)


def rows_of(m: iterit.TfidfMatrix) -> list[dict[str, float]]:
    vocab = m.vocabulary()
    return [
        {
            vocab[j]: float(m.data[k])
            for k, j in zip(
                range(m.indptr[i], m.indptr[i + 1]), m.indices[m.indptr[i] : m.indptr[i + 1]]
            )
        }
        for i in range(m.shape[0])
    ]


def sklearn_rows(texts: list[str], ngram_range=(1, 3)) -> list[dict[str, float]] | None:
    vec = TfidfVectorizer(ngram_range=ngram_range)
    try:
        x = vec.fit_transform(texts).tocsr()
    except ValueError:  # empty vocabulary
        return None
    names = vec.get_feature_names_out()
    return [{names[j]: x[i, j] for j in x[i].indices} for i in range(x.shape[0])]


def assert_rows_close(got, want, tol=1e-12) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        for key in g:
            assert abs(g[key] - w[key]) <= tol, (key, g[key], w[key])


# ---------------------------------------------------------------- tfidf


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts_strategy, st.sampled_from([(1, 1), (1, 2), (1, 3), (2, 3)]))
def test_tfidf_equals_sklearn(texts: list[str], ngram_range) -> None:
    m = iterit.tfidf(texts, ngram_range=ngram_range)
    want = sklearn_rows(texts, ngram_range)
    if want is None:
        assert m.shape == (len(texts), 0) and m.nnz == 0
        return
    assert_rows_close(rows_of(m), want)
    assert m.shape == (len(texts), len(set().union(*want)))


@settings(max_examples=200, deadline=None)
@given(texts_strategy, st.sampled_from(["sklearn", "paper"]))
def test_tfidf_equals_reference_bit_for_bit(texts: list[str], variant: str) -> None:
    got = rows_of(iterit.tfidf(texts, variant=variant))
    want = reference.tfidf(texts, variant=variant)
    assert got == want  # exact float equality, key for key


def test_tfidf_paper_variant_by_hand() -> None:
    m = iterit.tfidf(["aa aa bb", "bb cc"], ngram_range=(1, 1), variant="paper")
    r = rows_of(m)
    assert r[0] == {"aa": (2 / 3) * math.log(2 / 1), "bb": (1 / 3) * math.log(2 / 2)}
    assert r[1] == {"bb": 0.0, "cc": 0.5 * math.log(2)}


def test_tfidf_matrix_api() -> None:
    m = iterit.tfidf(["The cat sat.", "the dog", ""])
    assert m.indptr.dtype == np.int64 and m.indices.dtype == np.int32
    assert m.data.dtype == np.float64 and m.shape[0] == 3 and m.indptr[-1] == m.nnz
    assert m.vocabulary()[:2] == ["the", "cat"]
    s = m.to_scipy()
    assert s.shape == m.shape and np.allclose(
        np.asarray(s.multiply(s).sum(axis=1)).ravel(), [1, 1, 0]
    )
    assert "TfidfMatrix(shape=(3," in repr(m)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"ngram_range": (0, 2)}, iterit.InvalidInputError),
        ({"ngram_range": (3, 2)}, iterit.InvalidInputError),
        ({"ngram_range": (1, 99)}, iterit.InvalidInputError),
        ({"ngram_range": "13"}, iterit.InvalidTypeError),
        ({"variant": "bm25"}, iterit.InvalidInputError),
        ({"n_threads": 0}, iterit.InvalidInputError),
    ],
)
def test_tfidf_rejects_bad_arguments(kwargs, error) -> None:
    with pytest.raises(error):
        iterit.tfidf(["aa bb"], **kwargs)


# ---------------------------------------------------------------- select


@st.composite
def selection_inputs(draw):
    texts = draw(texts_strategy)
    complexity = draw(
        st.one_of(st.none(), st.lists(complexity_value, min_size=len(texts), max_size=len(texts)))
    )
    budget = draw(st.integers(min_value=1, max_value=len(texts) + 3))
    decay = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9]))
    return texts, complexity, budget, decay


def _quiet_select(*args, **kw):
    """iterit.select with its shortfall warning silenced (the tests compare the shortfall)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", iterit.ShortfallWarning)
        return iterit.select(*args, **kw)


def _select_three_ways(texts, complexity, budget, decay):
    """The same selection by the Rust core, the naive reference and the lazy reference."""
    return (
        _quiet_select(texts, complexity, budget, decay=decay),
        reference.select_naive(texts, complexity, budget, decay=decay),
        reference.select(texts, complexity, budget, decay=decay),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(selection_inputs())
def test_select_equals_naive_and_lazy_reference(inputs) -> None:
    texts, complexity, budget, decay = inputs
    got, naive, lazy = _select_three_ways(texts, complexity, budget, decay)
    assert got.indices.tolist() == naive.indices == lazy.indices
    assert got.scores.tolist() == naive.scores == lazy.scores
    assert got.shortfall == naive.shortfall and got.n_candidates == naive.n_candidates
    assert len(set(got.indices.tolist())) == len(got)  # never picked twice
    assert got.n_excluded == len(texts) - got.n_candidates


@st.composite
def mixed_selection_inputs(draw):
    """Inputs whose complexities hold both candidates and excluded values (NaN, inf, <= 0,
    >= 1), the case where fitting TF-IDF on the candidates only matters."""
    texts = draw(st.lists(st.one_of(small_text, any_text), min_size=2, max_size=12))
    n = len(texts)
    valid = draw(st.lists(st.sampled_from([0.5, 0.25, 0.9, 0.99, 0.7]), min_size=1, max_size=n))
    invalid = draw(
        st.lists(
            st.sampled_from([1.0, 1.5, 0.0, -0.2, math.nan, math.inf, -math.inf]),
            min_size=n - len(valid),
            max_size=n - len(valid),
        )
    )
    values = valid + invalid
    if not invalid:
        values[-1] = math.nan
    complexity = draw(st.permutations(values))
    budget = draw(st.integers(min_value=1, max_value=n + 2))
    decay = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9]))
    return texts, complexity, budget, decay


def candidate_matrix(texts, complexity, max_complexity=1.0) -> scipy.sparse.csr_matrix:
    """iterit.tfidf fitted on the candidate texts only, with an empty row for every other."""
    keep = [i for i, c in enumerate(complexity) if is_candidate(c, 1.0)]
    fitted = iterit.tfidf([texts[i] for i in keep]).to_scipy()
    rows = scipy.sparse.lil_matrix((len(texts), fitted.shape[1]))
    for k, i in enumerate(keep):
        rows[i] = fitted[k]
    return rows.tocsr()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_selection_inputs())
def test_mixed_complexities_rust_reference_and_naive_agree(inputs) -> None:
    texts, complexity, budget, decay = inputs
    got, naive, lazy = _select_three_ways(texts, complexity, budget, decay)
    on_candidates = _quiet_select(candidate_matrix(texts, complexity), complexity, budget)
    assert got.indices.tolist() == naive.indices == lazy.indices
    assert got.scores.tobytes() == np.array(naive.scores).tobytes()
    assert naive.scores == lazy.scores
    assert got.shortfall == naive.shortfall == lazy.shortfall
    assert got.n_candidates == naive.n_candidates == sum(is_candidate(c) for c in complexity)
    assert got.n_excluded == len(texts) - got.n_candidates
    if decay == 0.1:  # the default, which candidate_matrix's selection used
        assert on_candidates.indices.tolist() == got.indices.tolist()
        assert on_candidates.scores.tobytes() == got.scores.tobytes()


@settings(max_examples=60, deadline=None)
@given(selection_inputs())
def test_select_on_matrix_and_scipy_use_the_weights_as_given(inputs) -> None:
    texts, complexity, budget, decay = inputs
    m = iterit.tfidf(texts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", iterit.ShortfallWarning)
        on_matrix = iterit.select(m, complexity, budget, decay=decay)
        on_scipy = iterit.select(m.to_scipy(), complexity, budget, decay=decay)
        sixty_four = scipy.sparse.csr_matrix(
            (m.data, m.indices.astype(np.int64), m.indptr), shape=m.shape
        )
        on_int64 = iterit.select(sixty_four, complexity, budget, decay=decay)
    # A matrix is used as given: here fitted on all texts, whatever their complexity.
    want = reference.select_naive(reference.tfidf(texts), complexity, budget, decay=decay)
    for other in (on_matrix, on_scipy, on_int64):
        assert other.indices.tolist() == want.indices
        assert other.scores.tolist() == want.scores
    if complexity is None or all(is_candidate(c) for c in complexity):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", iterit.ShortfallWarning)
            on_texts = iterit.select(texts, complexity, budget, decay=decay)
        assert on_texts.indices.tolist() == on_matrix.indices.tolist()
        assert on_texts.scores.tolist() == on_matrix.scores.tolist()


def test_tfidf_is_fitted_on_the_candidates_only() -> None:
    # The excluded third text shares "ee" with the first: counted in the idf, it would make
    # "ee" more common and the first text less diverse than the second (the old behaviour).
    texts = ["ee aa", "aa bb", "ee"]
    c = [0.6, 0.6, math.nan]
    old = iterit.select(iterit.tfidf(texts), c, 1)  # idf over all texts
    new = iterit.select(texts, c, 1)
    assert old.indices.tolist() == [1]
    assert new.indices.tolist() == [0]  # the two candidates are symmetric: a tie, index 0
    alone = iterit.select(texts[:2], c[:2], 1)
    assert new.scores.tobytes() == alone.scores.tobytes()
    assert reference.select(texts, c, 1).indices == [0]
    assert reference.select_naive(texts, c, 1).indices == [0]
    assert reference.select_numpy(texts, c, 1).indices == [0]
    assert reference.select(reference.tfidf(texts), c, 1).indices == [1]  # rows as given
    assert (new.n_candidates, new.n_excluded) == (2, 1)


def test_select_paper_variant_and_ngram_range_reach_the_core() -> None:
    texts = ["aa bb cc", "aa bb dd", "ee ff", "aa"]
    c = [0.5, 0.6, 0.7, 0.8]
    for variant in ("sklearn", "paper"):
        for ngram_range in ((1, 1), (1, 2), (2, 3)):
            got = iterit.select(texts, c, 3, ngram_range=ngram_range, variant=variant)
            rows = reference.tfidf(texts, ngram_range=ngram_range, variant=variant)
            want = reference.select_naive(rows, c, 3)
            assert got.indices.tolist() == want.indices and got.scores.tolist() == want.scores


def test_ties_duplicates_and_empty_texts() -> None:
    texts = ["same words here", "same words here", "", "other text", "!!"]
    s = iterit.select(texts, None, 5, decay=0.0)
    # Duplicates tie: smaller index first; the duplicate's score falls to 0 after the first pick.
    assert s.indices.tolist() == [0, 3, 1, 2, 4]
    assert s.scores[2:].tolist() == [0.0, 0.0, 0.0]


def test_invalid_complexities_are_excluded_and_counted() -> None:
    texts = ["aa bb", "cc dd", "ee ff", "gg hh", "ii jj", "kk ll"]
    c = [math.nan, 1.0, 1.7, 0.0, -1.0, 0.4]
    with pytest.warns(iterit.ShortfallWarning, match="only 1 valid candidates"):
        s = iterit.select(texts, c, 3)
    assert s.indices.tolist() == [5]
    assert (s.shortfall, s.n_candidates, s.n_excluded, s.budget) == (2, 1, 5, 3)
    s = iterit.select(texts, c, 2, max_complexity=None)
    assert s.indices.tolist() == [2, 1]


def test_budget_fraction_and_count() -> None:
    texts = [f"word{i} shared" for i in range(40)]
    assert len(iterit.select(texts, None, 0.05)) == 2
    assert len(iterit.select(texts, None, 0.5)) == 20
    assert len(iterit.select(texts, None, np.int64(7))) == 7
    assert iterit.resolve_budget(0.05, 20678) == 1034
    assert iterit.resolve_budget(0.001, 10) == 1


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((["aa", 3], None, 1), {}, iterit.InvalidTypeError, r"texts\[1\] is int"),
        ((["aa", "bb"], [0.5], 1), {}, iterit.InvalidInputError, "1 values for 2 samples"),
        ((["aa", "bb"], ["x", "y"], 1), {}, iterit.InvalidTypeError, "complexity"),
        ((["aa", "bb"], "0.5", 1), {}, iterit.InvalidTypeError, "complexity"),
        ((["aa", "bb"], [[0.5, 0.5]], 1), {}, iterit.InvalidInputError, "one-dimensional"),
        ((["aa"], None, 0), {}, iterit.InvalidInputError, "at least 1"),
        ((["aa"], None, -3), {}, iterit.InvalidInputError, "at least 1"),
        ((["aa"], None, 1.5), {}, iterit.InvalidInputError, "fraction"),
        ((["aa"], None, 0.0), {}, iterit.InvalidInputError, "fraction"),
        ((["aa"], None, True), {}, iterit.InvalidTypeError, "budget"),
        ((["aa"], None, "5"), {}, iterit.InvalidTypeError, "budget"),
        ((["aa"], None, 1), {"decay": 1.0}, iterit.InvalidInputError, r"decay must be in \[0, 1\)"),
        ((["aa"], None, 1), {"decay": -0.1}, iterit.InvalidInputError, "decay"),
        ((["aa"], None, 1), {"decay": math.nan}, iterit.InvalidInputError, "decay"),
        ((["aa"], None, 1), {"decay": "0.1"}, iterit.InvalidTypeError, "decay"),
        ((["aa"], [0.5], 1), {"max_complexity": 0.0}, iterit.InvalidInputError, "max_complexity"),
        ((["aa"], None, 1), {"n_threads": -1}, iterit.InvalidInputError, "n_threads"),
    ],
)
def test_select_rejects_bad_input(args, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        iterit.select(*args, **kwargs)


def test_errors_are_typed_and_value_errors() -> None:
    with pytest.raises(ValueError):
        iterit.select(["aa"], None, 1, decay=2.0)
    with pytest.raises(iterit.IteritError):
        iterit.select(["aa"], None, 1, decay=2.0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: iterit.select(["aa", b"bb"], None, 1),
        lambda: iterit.select(["aa"], None, "1"),
        lambda: iterit.select(["aa"], None, 1, n_threads="2"),
        lambda: iterit.tfidf("one string"),
        lambda: iterit.tfidf(["aa"], ngram_range=(1, "3")),
    ],
)
def test_wrong_types_are_iterit_errors_and_type_errors(call) -> None:
    with pytest.raises(iterit.IteritError):
        call()
    with pytest.raises(TypeError):
        call()
    with pytest.raises(iterit.InvalidTypeError):
        call()


def test_select_rejects_malformed_matrices() -> None:
    good = scipy.sparse.csr_matrix(np.array([[0.5, 0.0], [0.2, 0.3]]))
    negative = good.copy()
    negative.data[0] = -0.5
    with pytest.raises(iterit.InvalidInputError, match="not finite and >= 0"):
        iterit.select(negative, None, 1)
    bad = iterit.TfidfMatrix(
        np.array([0, 1], dtype=np.int64), np.array([5], dtype=np.int32), np.array([1.0]), (1, 2)
    )
    with pytest.raises(iterit.InvalidInputError, match="outside"):
        iterit.select(bad, None, 1)
    short = iterit.TfidfMatrix(
        np.array([0, 2], dtype=np.int64), np.array([0], dtype=np.int32), np.array([1.0]), (1, 2)
    )
    with pytest.raises(iterit.InvalidInputError):
        iterit.select(short, None, 1)
    floats = iterit.TfidfMatrix(
        np.array([0.0, 1.0]), np.array([0], dtype=np.int32), np.array([1.0]), (1, 2)
    )
    with pytest.raises(iterit.InvalidTypeError, match="indptr"):
        iterit.select(floats, None, 1)


def test_thread_count_does_not_change_results() -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]
    texts = [" ".join(rng.choice(words, size=rng.integers(0, 30))) for _ in range(800)]
    c = rng.uniform(0.05, 1.2, size=len(texts))
    results = [iterit.select(texts, c, 100, n_threads=t) for t in (1, 2, 4)]
    for r in results[1:]:
        assert r.indices.tolist() == results[0].indices.tolist()
        assert r.scores.tobytes() == results[0].scores.tobytes()
    tf = [iterit.tfidf(texts, n_threads=t) for t in (1, 3)]
    assert tf[0].data.tobytes() == tf[1].data.tobytes()
    assert tf[0].indices.tobytes() == tf[1].indices.tobytes()


def test_real_alpaca_responses_match_reference_and_numpy_baseline(alpaca_union_path) -> None:
    with open(alpaca_union_path, encoding="utf-8") as f:
        responses = [json.loads(line)["output"] for _, line in zip(range(1500), f)]
    c = np.random.default_rng(1).uniform(0.0, 1.1, size=len(responses))
    got = iterit.select(responses, c, 0.05)
    lazy = reference.select(responses, c, 0.05)
    numpy_loop = reference.select_numpy(responses, c, 0.05)  # fitted on the candidates
    assert got.indices.tolist() == lazy.indices == numpy_loop.indices
    assert got.scores.tolist() == lazy.scores
    np.testing.assert_allclose(got.scores, numpy_loop.scores, rtol=1e-12)
    assert got.n_evaluations < len(got) * got.n_candidates / 10  # lazy: far fewer than naive
