"""Arrow columns in (iterit.selection.text.as_texts and the selector): every layout gives the
numbers of the same texts as a list of str; nulls and non-strings are refused by position; the
phases are reported to a progress callback, whose exception stops the work."""

from __future__ import annotations

import numpy as np
import pytest

import iterit
from iterit.errors import InvalidInputError, InvalidTypeError

# The selector alone needs numpy only; Arrow columns come from pyarrow when it is installed.
pa = pytest.importorskip("pyarrow")

TEXTS = [
    "The cat sat on the mat",
    "ΟΔΟΣ ΟΔΟΣ. Straße İstanbul",
    "",
    "the dog sat on the log, the cat saw",
    "a",
    "MAT mat Mat",
    "ΣΑΣ όρος Σ'",
    "cat dog cat dog bird",
]
COMPLEXITY = [0.5, 0.9, 0.3, 0.7, 0.2, 0.95, 0.4, 1.5]


def layouts() -> dict[str, object]:
    plain = pa.array(TEXTS, type=pa.string())
    padded = pa.array(["x y", *TEXTS, "z w"], type=pa.string()).slice(1, len(TEXTS))
    return {
        "string": plain,
        "large_string": pa.array(TEXTS, type=pa.large_string()),
        "string_view": pa.array(TEXTS, type=pa.string_view()),
        "sliced": padded,
        "chunked": pa.chunked_array([TEXTS[:3], TEXTS[3:5], [], TEXTS[5:]], type=pa.string()),
        "chunked_large": pa.chunked_array([TEXTS[:4], TEXTS[4:]], type=pa.large_string()),
    }


def rows(m: iterit.TfidfMatrix) -> list[dict[str, float]]:
    vocab = m.vocabulary()
    return [
        {vocab[j]: float(m.data[k]) for k, j in enumerate(m.indices) if lo <= k < hi}
        for lo, hi in zip(m.indptr[:-1], m.indptr[1:])
    ]


@pytest.mark.parametrize("layout", sorted(layouts()))
def test_every_layout_equals_the_list_of_str(layout: str) -> None:
    column = layouts()[layout]
    want = iterit.tfidf(TEXTS)
    got = iterit.tfidf(column)
    assert got.shape == want.shape
    assert rows(got) == rows(want)
    assert got.vocabulary() == want.vocabulary()
    picked = iterit.select(column, COMPLEXITY, 4)
    expected = iterit.select(TEXTS, COMPLEXITY, 4)
    assert picked.indices.tolist() == expected.indices.tolist()
    assert picked.scores.tolist() == expected.scores.tolist()


def test_polars_series_is_read_through_the_capsule() -> None:
    pl = pytest.importorskip("polars")
    series = pl.Series(TEXTS)
    assert iterit.select(series, COMPLEXITY, 4).indices.tolist() == (
        iterit.select(TEXTS, COMPLEXITY, 4).indices.tolist()
    )


def test_nulls_are_refused_by_position_across_chunks() -> None:
    with pytest.raises(InvalidInputError, match=r"texts\[4\] is null"):
        iterit.select(pa.chunked_array([["a", "b", "c"], ["d", None]]), None, 1)
    with pytest.raises(InvalidInputError, match=r"texts\[1\] is null"):
        iterit.tfidf(pa.array(["aa", None], type=pa.large_string()))
    # A sliced array whose nulls lie outside the slice has none.
    ok = pa.array([None, "aa bb", "bb"]).slice(1)
    assert iterit.tfidf(ok).shape == (2, 3)


def test_other_arrow_types_are_type_errors() -> None:
    with pytest.raises(InvalidTypeError, match='got format "l"'):
        iterit.tfidf(pa.array([1, 2]))
    with pytest.raises(InvalidTypeError, match="dictionary-encoded"):
        iterit.tfidf(pa.array(["a", "b", "a"]).dictionary_encode())


def test_progress_reports_each_phase_in_order() -> None:
    seen: list[tuple[str, int, int]] = []
    sel = iterit.select(pa.array(TEXTS), COMPLEXITY, 3, progress=lambda *event: seen.append(event))
    phases = [p for p, _, _ in seen]
    order = ["reading", "n-grams", "TF-IDF", "greedy"]
    assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == order
    assert ("reading", 8, 8) in seen
    n_candidates = sel.n_candidates
    assert ("n-grams", n_candidates, n_candidates) in seen
    assert seen[-1] == ("greedy", 3, 3)
    events = []
    iterit.tfidf(TEXTS, progress=lambda *event: events.append(event))
    assert events[-1] == ("TF-IDF", len(TEXTS), len(TEXTS))


def test_an_exception_in_the_progress_callback_stops_the_work() -> None:
    class Stop(Exception):
        pass

    def stop_at_greedy(phase: str, done: int, total: int) -> None:
        if phase == "greedy":
            raise Stop(phase)

    with pytest.raises(Stop):
        iterit.select(TEXTS, COMPLEXITY, 3, progress=stop_at_greedy)
    with pytest.raises(Stop):
        iterit.tfidf(TEXTS, progress=lambda p, d, t: (_ for _ in ()).throw(Stop(p)))


def test_large_arrow_column_matches_list_in_chunks() -> None:
    # Several of the core's chunks of texts, with texts repeated across chunk boundaries.
    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(300)])
    texts = [" ".join(rng.choice(words, size=rng.integers(0, 12))) for _ in range(70_000)]
    complexity = rng.uniform(0.0, 1.2, size=len(texts))
    column = pa.chunked_array([texts[:30_000], texts[30_000:]], type=pa.large_string())
    a = iterit.select(column, complexity, 500)
    b = iterit.select(texts, complexity, 500)
    assert a.indices.tolist() == b.indices.tolist()
    assert a.scores.tolist() == b.scores.tolist()
