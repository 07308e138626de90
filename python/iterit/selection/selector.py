"""The fast, exact IterIT selector: TF-IDF over n-grams and greedy selection with decay
(docs/design.md, "TF-IDF" and "Greedy selection"), computed by the Rust core with the GIL
released."""

from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from iterit import _iterit
from iterit.config import TFIDF_VARIANTS, resolve_budget
from iterit.errors import (
    InvalidInputError,
    InvalidTypeError,
    IteritError,
    ShortfallWarning,
)
from iterit.selection.text import analyzer, as_texts
from iterit.utils.optional import require_package

if TYPE_CHECKING:
    import scipy.sparse

__all__ = ["Progress", "Selection", "TfidfMatrix", "resolve_budget", "select", "tfidf"]

#: ``progress(phase, done, total)``: called by the core as each phase advances. Phases, in
#: order: ``"reading"``, ``"n-grams"`` (texts done), ``"TF-IDF"`` (texts), ``"greedy"``
#: (picks). An exception it raises stops the work and is raised to the caller.
Progress = Callable[[str, int, int], object]


def _default_threads(n_threads: int | None) -> int | None:
    if n_threads is not None:
        if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
            raise InvalidTypeError(
                f"n_threads must be an int or None, got {type(n_threads).__name__}"
            )
        if n_threads < 1:
            raise InvalidInputError(f"n_threads must be at least 1, got {n_threads}")
        return int(n_threads)
    env = os.environ.get("ITERIT_NUM_THREADS")
    return int(env) if env else None


def _check_ngram_range(ngram_range: Any) -> tuple[int, int]:
    try:
        lo, hi = ngram_range
    except (TypeError, ValueError):
        raise InvalidTypeError(
            f"ngram_range must be a pair (min_n, max_n), got {ngram_range!r}"
        ) from None
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise InvalidTypeError(f"ngram_range must hold two ints, got {ngram_range!r}")
    if not 1 <= lo <= hi:
        raise InvalidInputError(
            f"ngram_range must satisfy 1 <= min_n <= max_n, got {ngram_range!r}"
        )
    return int(lo), int(hi)


def _check_variant(variant: str) -> str:
    if variant not in TFIDF_VARIANTS:
        raise InvalidInputError(f"variant must be one of {TFIDF_VARIANTS}, got {variant!r}")
    return variant


class TfidfMatrix:
    """TF-IDF weights of a list of texts as CSR arrays, one row per text (docs/design.md, "TF-IDF").

    ``indptr`` (int64), ``indices`` (int32, strictly increasing within each row) and ``data``
    (float64) follow scipy's CSR layout. Columns are numbered by n-gram length, then by first
    occurrence; :meth:`vocabulary` names them. The numbers equal scikit-learn's
    ``TfidfVectorizer(ngram_range=...)`` (``variant="sklearn"``) up to column order.
    """

    __slots__ = (
        "_names",
        "data",
        "document_frequency",
        "indices",
        "indptr",
        "ngram_range",
        "shape",
        "variant",
    )

    def __init__(
        self,
        indptr: np.ndarray,
        indices: np.ndarray,
        data: np.ndarray,
        shape: tuple[int, int],
        *,
        document_frequency: np.ndarray | None = None,
        ngram_range: tuple[int, int] = (1, 3),
        variant: str = "sklearn",
        names: Any = None,
    ) -> None:
        self.indptr = indptr
        self.indices = indices
        self.data = data
        self.shape = shape
        self.document_frequency = document_frequency
        self.ngram_range = ngram_range
        self.variant = variant
        self._names = names

    @property
    def nnz(self) -> int:
        """The number of stored (non-zero) weights."""
        return int(self.data.shape[0])

    def vocabulary(self) -> list[str]:
        """Column id to n-gram (words joined by one space, as scikit-learn names features)."""
        if self._names is None:
            raise InvalidInputError("this matrix was built without its vocabulary")
        return self._names.to_list()

    def to_scipy(self) -> scipy.sparse.csr_matrix:
        """The same matrix as ``scipy.sparse.csr_matrix`` (needs scipy; shares the arrays)."""
        sparse = require_package("scipy.sparse", "scipy", "to_scipy()")
        return sparse.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)

    def __repr__(self) -> str:
        return (
            f"TfidfMatrix(shape={self.shape}, nnz={self.nnz}, ngram_range={self.ngram_range},"
            f" variant={self.variant!r})"
        )


def _read_texts(texts: Any, progress: Progress | None) -> _iterit.Texts:
    if progress is not None:
        progress("reading", 0, 0)
    read = as_texts(texts)
    if progress is not None:
        progress("reading", len(read), len(read))
    return read


def tfidf(
    texts: Iterable[str] | Any,
    *,
    ngram_range: tuple[int, int] = (1, 3),
    variant: str = "sklearn",
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> TfidfMatrix:
    """TF-IDF rows of ``texts`` over word n-grams (docs/design.md, "TF-IDF").

    ``texts``: a list (or any iterable) of ``str``, or an Arrow string column (anything with
    ``__arrow_c_stream__`` or ``__arrow_c_array__``: pyarrow arrays and chunked arrays, polars
    Series, ...), read in place. ``variant="sklearn"`` gives scikit-learn's
    ``TfidfVectorizer`` numbers (raw counts, smooth idf, L2-normalised rows);
    ``variant="paper"`` gives the paper's Eq. 5 (``count / total`` times ``ln(n / df)``,
    unnormalised). A text without tokens gets an empty row. ``progress``: see
    :data:`Progress`.
    """
    lo, hi = _check_ngram_range(ngram_range)
    variant = _check_variant(variant)
    read = _read_texts(texts, progress)
    indptr, indices, data, df, n_cols, names = _call_core(
        _iterit.tfidf,
        read,
        analyzer(),
        (lo, hi),
        variant,
        True,
        _default_threads(n_threads),
        progress,
    )
    return TfidfMatrix(
        indptr,
        indices,
        data,
        (len(read), n_cols),
        document_frequency=df,
        ngram_range=(lo, hi),
        variant=variant,
        names=names,
    )


@dataclass(frozen=True)
class Selection:
    """The result of :func:`select`.

    ``indices``: picked samples in pick order (int64). ``scores``: each pick's score
    (complexity times decayed diversity) at the moment it was picked. ``shortfall``: how many
    fewer than ``budget`` were picked because too few valid candidates exist.
    ``n_candidates``: samples with a valid complexity; ``n_excluded``: the others (NaN,
    infinite, <= 0 or >= ``max_complexity``). ``n_evaluations``: row scores computed by the
    lazy greedy, initial ones included.
    """

    indices: np.ndarray
    scores: np.ndarray
    budget: int
    shortfall: int
    n_candidates: int
    n_excluded: int
    n_evaluations: int

    def __len__(self) -> int:
        return int(self.indices.shape[0])


def _complexity_array(complexity: Any, n: int) -> np.ndarray | None:
    if complexity is None:
        return None
    if isinstance(complexity, (str, bytes, dict)):
        raise InvalidTypeError(
            f"complexity must be a sequence of numbers, got {type(complexity).__name__}"
        )
    try:
        c = np.asarray(complexity, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError(f"complexity must be a sequence of numbers: {exc}") from None
    if c.ndim != 1:
        raise InvalidInputError(f"complexity must be one-dimensional, got shape {c.shape}")
    if c.shape[0] != n:
        raise InvalidInputError(f"complexity has {c.shape[0]} values for {n} samples")
    return np.ascontiguousarray(c)


def _is_sparse_matrix(obj: Any) -> bool:
    return isinstance(obj, TfidfMatrix) or (hasattr(obj, "tocsr") and hasattr(obj, "shape"))


def _call_core(function: Any, *args: Any) -> Any:
    """Call the compiled core; a wrong type it rejects becomes an :class:`InvalidTypeError`,
    so that every error of the selector is an :class:`IteritError`."""
    try:
        return function(*args)
    except TypeError as exc:
        if isinstance(exc, IteritError):
            raise
        raise InvalidTypeError(str(exc)) from exc


def _select_on_matrix(
    matrix: Any, complexity: Any, budget: int | float, decay: float, max_c: float | None, threads
) -> tuple[tuple, int, int]:
    if isinstance(matrix, TfidfMatrix):
        indptr, indices, data, (n, n_cols) = (
            matrix.indptr,
            matrix.indices,
            matrix.data,
            matrix.shape,
        )
    else:
        csr = matrix.tocsr()
        indptr, indices = csr.indptr, csr.indices
        data = np.ascontiguousarray(csr.data, dtype=np.float64)
        n, n_cols = csr.shape
    c = _complexity_array(complexity, n)
    m_budget = resolve_budget(budget, n)
    raw = _call_core(
        _iterit.select_csr,
        np.ascontiguousarray(indptr),
        np.ascontiguousarray(indices),
        data,
        int(n_cols),
        c,
        m_budget,
        float(decay),
        max_c,
        threads,
    )
    return raw, m_budget, n


def _select_on_texts(
    texts: Any,
    complexity: Any,
    budget: int | float,
    decay: float,
    max_c: float | None,
    threads: int | None,
    ngram_range: Any,
    variant: str,
    progress: Progress | None,
) -> tuple[tuple, int, int]:
    lo, hi = _check_ngram_range(ngram_range)
    variant = _check_variant(variant)
    read = _read_texts(texts, progress)
    n = len(read)
    c = _complexity_array(complexity, n)
    m_budget = resolve_budget(budget, n)
    # The core fits TF-IDF on the candidates only (docs/design.md, "TF-IDF") and gives picks
    # as positions in the input.
    raw = _call_core(
        _iterit.select_texts,
        read,
        analyzer(),
        (lo, hi),
        variant,
        c,
        m_budget,
        float(decay),
        max_c,
        threads,
        progress,
    )
    return raw, m_budget, n


def select(
    texts_or_matrix: Sequence[str] | TfidfMatrix | Any,
    complexity: Any,
    budget: int | float,
    *,
    decay: float = 0.1,
    ngram_range: tuple[int, int] = (1, 3),
    variant: str = "sklearn",
    max_complexity: float | None = 1.0,
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> Selection:
    """Greedily pick ``budget`` samples that are complex and diverse (docs/design.md, "Greedy
    selection").

    ``texts_or_matrix``: the texts to diversify over (usually the responses: a list of ``str``
    or an Arrow string column, as :func:`tfidf` takes them), or a :class:`TfidfMatrix` / scipy
    sparse matrix of non-negative weights, one row per sample.
    ``complexity``: one number per sample (IFD); candidates are the samples whose complexity is
    finite, > 0 and < ``max_complexity`` (``None``: no upper bound). ``complexity=None`` gives
    every sample complexity 1 (pure diversity) and ignores ``max_complexity``.
    ``budget``: an int count or a float fraction in (0, 1) of all samples. ``decay``: factor in
    [0, 1) applied to the weight of every n-gram of each picked sample.

    Given texts, TF-IDF is fitted on the candidates only, as the method does; the other texts
    play no part. Given a matrix, its weights are used as they are: whoever fitted it chose
    which texts its idf counts (fit it on the candidates to get the method's numbers). Either
    way ``indices`` point into the full input.

    Fewer candidates than the budget: all are picked, ``shortfall`` says how many are missing,
    and a :class:`~iterit.errors.ShortfallWarning` is issued. Results do not depend on
    ``n_threads`` (default: all cores, or ``ITERIT_NUM_THREADS``). ``progress``: see
    :data:`Progress` (texts only; a matrix goes straight to the greedy). Every error raised is an
    :class:`~iterit.errors.IteritError` (wrong types: :class:`~iterit.errors.InvalidTypeError`,
    also a ``TypeError``; bad values: :class:`~iterit.errors.InvalidInputError`, also a
    ``ValueError``).
    """
    if isinstance(decay, bool) or not isinstance(decay, numbers.Real):
        raise InvalidTypeError(f"decay must be a float, got {type(decay).__name__}")
    if max_complexity is not None and (
        isinstance(max_complexity, bool) or not isinstance(max_complexity, numbers.Real)
    ):
        raise InvalidTypeError(
            f"max_complexity must be a float or None, got {type(max_complexity).__name__}"
        )
    threads = _default_threads(n_threads)
    max_c = None if max_complexity is None else float(max_complexity)
    if _is_sparse_matrix(texts_or_matrix):
        raw, m_budget, n = _select_on_matrix(
            texts_or_matrix, complexity, budget, decay, max_c, threads
        )
    else:
        raw, m_budget, n = _select_on_texts(
            texts_or_matrix,
            complexity,
            budget,
            decay,
            max_c,
            threads,
            ngram_range,
            variant,
            progress,
        )
    indices, scores, shortfall, n_candidates, n_evaluations = raw
    if shortfall:
        warnings.warn(
            f"only {n_candidates} valid candidates for a budget of {m_budget}: all were picked,"
            f" {shortfall} short",
            ShortfallWarning,
            stacklevel=2,
        )
    return Selection(
        indices=np.asarray(indices, dtype=np.int64),
        scores=scores,
        budget=m_budget,
        shortfall=shortfall,
        n_candidates=n_candidates,
        n_excluded=n - n_candidates,
        n_evaluations=n_evaluations,
    )
