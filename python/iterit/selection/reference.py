"""Pure-Python IterIT selection, written for clarity rather than speed.

It is the oracle of the tests and the baseline of the benchmarks: :func:`tfidf` and
:func:`select` compute the same numbers as :func:`iterit.tfidf` and :func:`iterit.select`, bit
for bit. Sums use :func:`math.fsum` (correctly rounded, so independent of order), which is what
makes the Rust core's results identical to these.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

from iterit.config import TFIDF_VARIANTS, resolve_budget
from iterit.data.candidates import candidate_mask, is_candidate
from iterit.errors import InvalidInputError
from iterit.selection.text import TOKEN_PATTERN

__all__ = [
    "ReferenceSelection",
    "ngrams",
    "select",
    "select_naive",
    "select_numpy",
    "tfidf",
    "tokens",
]

_TOKEN = re.compile(TOKEN_PATTERN)

Row = dict[str, float]


def tokens(text: str) -> list[str]:
    """scikit-learn's default analyzer: lowercase, then runs of two or more word characters."""
    return _TOKEN.findall(text.lower())


def ngrams(text: str, ngram_range: tuple[int, int] = (1, 3)) -> list[str]:
    """Every n-gram of ``text`` with n in ``ngram_range``, words joined by one space."""
    words = tokens(text)
    lo, hi = ngram_range
    return [
        " ".join(words[i : i + n]) for n in range(lo, hi + 1) for i in range(len(words) - n + 1)
    ]


def tfidf(
    texts: Sequence[str], ngram_range: tuple[int, int] = (1, 3), variant: str = "sklearn"
) -> list[Row]:
    """One ``{n-gram: weight}`` dict per text (docs/design.md, "TF-IDF")."""
    counts = [Counter(ngrams(text, ngram_range)) for text in texts]
    n = len(texts)
    df: Counter[str] = Counter()
    for row in counts:
        df.update(row.keys())
    rows: list[Row] = []
    for row in counts:
        if variant == "sklearn":
            raw = {g: count * (math.log((n + 1) / (df[g] + 1)) + 1) for g, count in row.items()}
            norm = math.sqrt(math.fsum(v * v for v in raw.values()))
            rows.append({g: v / norm for g, v in raw.items()} if norm > 0 else raw)
        elif variant == "paper":
            total = sum(row.values())
            rows.append({g: (count / total) * math.log(n / df[g]) for g, count in row.items()})
        else:
            raise InvalidInputError(f"variant must be one of {TFIDF_VARIANTS}, got {variant!r}")
    return rows


class ReferenceSelection(NamedTuple):
    indices: list[int]
    scores: list[float]
    shortfall: int
    n_candidates: int


def _prepare(rows, complexity, budget, max_complexity):
    """Rows (texts are turned into rows fitted on the candidates only, as :func:`iterit.select`
    does), complexities (1 for all when ``None``), candidate indices and the budget."""
    n = len(rows)
    c = [1.0] * n if complexity is None else [float(x) for x in complexity]
    max_c = None if complexity is None else max_complexity
    candidates = [i for i in range(n) if is_candidate(c[i], max_c)]
    if isinstance(rows[0] if n else {}, str):
        fitted = tfidf([rows[i] for i in candidates])
        full: list[Row] = [{} for _ in range(n)]
        for i, row in zip(candidates, fitted):
            full[i] = row
        rows = full
    return rows, c, candidates, resolve_budget(budget, n)


def _score(row: Row, c: float, alpha: dict[str, float]) -> float:
    return c * math.fsum(alpha.get(g, 1.0) * w for g, w in row.items())


def select_naive(
    rows: Sequence[Row] | Sequence[str],
    complexity,
    budget,
    decay: float = 0.1,
    max_complexity: float | None = 1.0,
) -> ReferenceSelection:
    """The greedy selection of docs/design.md ("Greedy selection") literally: recompute every
    remaining candidate's score at every step. ``rows`` are :func:`tfidf` rows (used as given),
    or texts (turned into rows with the defaults, fitted on the candidates only)."""
    rows, c, left, m = _prepare(rows, complexity, budget, max_complexity)
    n_candidates = len(left)
    alpha: dict[str, float] = {}
    picks, scores = [], []
    while len(picks) < m and left:
        # Largest score, then larger complexity, then smaller index.
        best = max(left, key=lambda i: (_score(rows[i], c[i], alpha), c[i], -i))
        picks.append(best)
        scores.append(_score(rows[best], c[best], alpha))
        left.remove(best)
        for g in rows[best]:
            alpha[g] = alpha.get(g, 1.0) * decay
    return ReferenceSelection(picks, scores, m - len(picks), n_candidates)


def select(
    rows: Sequence[Row] | Sequence[str],
    complexity,
    budget,
    decay: float = 0.1,
    max_complexity: float | None = 1.0,
) -> ReferenceSelection:
    """The same picks as :func:`select_naive`, with a heap of stale upper bounds (lazy greedy):
    scores only fall as weights decay, so a popped score that is still current is the maximum."""
    rows, c, candidates, m = _prepare(rows, complexity, budget, max_complexity)
    alpha: dict[str, float] = {}
    # heapq is a min-heap: store negated keys; ties: larger c, then smaller index.
    heap = [(-_score(rows[i], c[i], alpha), -c[i], i, 0) for i in candidates]
    heapq.heapify(heap)
    picks, scores = [], []
    while len(picks) < m and heap:
        neg_score, _, i, stamp = heapq.heappop(heap)
        score = -neg_score
        if stamp != len(picks):
            fresh = _score(rows[i], c[i], alpha)
            if fresh != score:
                heapq.heappush(heap, (-fresh, -c[i], i, len(picks)))
                continue
        picks.append(i)
        scores.append(score)
        for g in rows[i]:
            alpha[g] = alpha.get(g, 1.0) * decay
    return ReferenceSelection(picks, scores, m - len(picks), len(candidates))


def select_numpy(
    matrix, complexity, budget, decay: float = 0.1, max_complexity: float | None = 1.0
) -> ReferenceSelection:
    """What a numpy user would write: recompute every score as ``X @ alpha`` at every step.

    ``matrix`` is a scipy sparse matrix (e.g. from scikit-learn's ``TfidfVectorizer``), used as
    given, or a list of texts: then scikit-learn's ``TfidfVectorizer(ngram_range=(1, 3))`` is
    fitted on the candidates only, as :func:`iterit.select` does. Its sums are not correctly
    rounded, so on exact ties it may differ from :func:`select`; on real data with real-valued
    complexities the picks agree.
    """
    import numpy as np

    n = matrix.shape[0] if hasattr(matrix, "tocsr") else len(matrix)
    c = np.ones(n) if complexity is None else np.asarray(complexity, dtype=np.float64)
    valid = candidate_mask(c, None if complexity is None else max_complexity)
    x = matrix.tocsr() if hasattr(matrix, "tocsr") else _fit_on_candidates(matrix, valid)
    n_cols = x.shape[1]
    n_candidates = int(np.count_nonzero(valid))
    m = resolve_budget(budget, n)
    alpha = np.ones(n_cols)
    picks: list[int] = []
    scores: list[float] = []
    while len(picks) < m and valid.any():
        score = np.where(valid, c * (x @ alpha), -np.inf)
        best_score = score.max()
        tied = np.flatnonzero(score == best_score)
        best = int(tied[np.argmax(c[tied])])  # larger complexity, then the smaller index
        picks.append(best)
        scores.append(float(best_score))
        valid[best] = False
        alpha[x.indices[x.indptr[best] : x.indptr[best + 1]]] *= decay
    return ReferenceSelection(picks, scores, m - len(picks), n_candidates)


def _fit_on_candidates(texts: Sequence[str], valid):
    """scikit-learn TF-IDF rows fitted on the candidate texts; other rows are empty."""
    import numpy as np
    import scipy.sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    kept = np.flatnonzero(valid)
    try:
        fitted = TfidfVectorizer(ngram_range=(1, 3)).fit_transform([texts[i] for i in kept])
    except ValueError:  # no candidate, or no n-gram in any of them: every row is empty
        fitted = scipy.sparse.csr_matrix((len(kept), 0))
    # Row i of the result is row position[i] of a matrix with one more, empty, row at the end.
    position = np.full(len(texts), len(kept), dtype=np.int64)
    position[kept] = np.arange(len(kept))
    padded = scipy.sparse.vstack([fitted, scipy.sparse.csr_matrix((1, fitted.shape[1]))])
    return padded.tocsr()[position]
