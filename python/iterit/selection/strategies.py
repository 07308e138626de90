"""One selection step over a whole dataset: IterIT's epoch-0 selection and its baselines
(docs/design.md, "Pool and iterations"), as configurations of the same machinery.

:func:`select_samples` is what ``iterit select`` and the first epoch of training run.
Strategies (the names are :data:`iterit.config.STRATEGIES`):

``iterit``
    The pool is the ``pool_factor * M`` valid samples with the highest complexity (ties to the
    smaller index); then M are picked from the pool by the greedy complexity x diversity
    selector (:func:`iterit.select`, docs/design.md, "Greedy selection"), diversity measured on
    the response, the instruction, or both (``diversity="none"``: by complexity alone).
``ifd``
    IFD only (Superfiltering-style): the M valid samples with the highest complexity.
``longest``
    The M samples with the longest responses (words, then characters, then smaller index).
``random``
    M samples drawn uniformly without replacement, seeded.

Valid samples: the response is not empty, and, when a complexity is given, it passes the
candidate rule (:func:`iterit.data.candidates.candidate_mask`; docs/design.md, "Candidates").
The samples are a list of :class:`~iterit.data.Sample`, or a file's Arrow columns
(:class:`iterit.data.columns.ColumnarData`: no Python object per record; diversity on the
response only).
A budget larger than the number of valid samples picks them all and reports the shortfall;
nothing is ever padded.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from iterit.config import DIVERSITY, STRATEGIES, SelectionConfig, resolve_budget
from iterit.data.candidates import IFD_MAX, candidate_mask
from iterit.data.columns import ColumnarData
from iterit.data.sample import Sample
from iterit.errors import ConfigError, InvalidInputError, ShortfallWarning

if TYPE_CHECKING:
    from iterit.selection.selector import Progress

__all__ = [
    "SampleSelection",
    "diversity_texts",
    "response_words",
    "select_samples",
    "select_with_config",
]


def response_words(samples: Sequence[Sample] | ColumnarData) -> np.ndarray:
    """Response length in words (whitespace-separated), the paper's length measure."""
    if isinstance(samples, ColumnarData):
        return samples.response_words()
    return np.fromiter((len(s.response.split()) for s in samples), np.int64, len(samples))


def _empty(samples: Sequence[Sample] | ColumnarData) -> np.ndarray:
    if isinstance(samples, ColumnarData):
        return samples.empty
    return np.fromiter((not s.response.strip() for s in samples), bool, len(samples))


def _response_chars(samples: Sequence[Sample] | ColumnarData) -> np.ndarray:
    if isinstance(samples, ColumnarData):
        return samples.response_chars()
    return np.fromiter((len(s.response) for s in samples), np.float64, len(samples))


def _pool_texts(samples: Sequence[Sample] | ColumnarData, pool: np.ndarray, which: str) -> Any:
    """The diversity texts of the pool: a list of ``str``, or, from Arrow columns, the
    responses taken as an Arrow array (the response is the diversity text of a one-turn
    record; the other texts need the record path)."""
    if isinstance(samples, ColumnarData):
        if which != "response":
            raise ConfigError(f"diversity {which!r} needs the records (not Arrow columns)")
        return samples.response.take(pool)
    return diversity_texts([samples[int(i)] for i in pool], which)


def diversity_texts(samples: Sequence[Sample], which: str) -> list[str]:
    """The text whose n-grams measure diversity: the response (every assistant turn of a
    conversation, one per line), the prompt side (instruction and
    input), or both joined by a newline (docs/design.md, "TF-IDF")."""
    if which == "response":
        return [s.assistant_text for s in samples]
    if which == "instruction":
        return [s.prompt_text for s in samples]
    if which == "both":
        return [f"{s.prompt_text}\n{s.response}" for s in samples]
    raise ConfigError(f"unknown diversity text {which!r} (expected response, instruction or both)")


@dataclass
class SampleSelection:
    """The outcome of :func:`select_samples`.  Index arrays point into the full sample list."""

    indices: np.ndarray  # int64, picks in pick order
    scores: np.ndarray  # each pick's score when picked (iterit: complexity x diversity)
    diversity: np.ndarray  # each pick's diversity when picked (NaN where not applicable)
    complexity: np.ndarray | None  # float64[N], as given
    valid: np.ndarray  # bool[N]: could be picked
    pool: np.ndarray  # int64, the candidate pool (iterit), sorted by complexity
    budget: int
    strategy: str
    shortfall: int = 0
    n_candidates: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def ranks(self) -> np.ndarray:
        """int64[N]: pick rank (0 = first pick) of every sample, -1 when not picked."""
        ranks = np.full(self.valid.shape[0], -1, dtype=np.int64)
        ranks[self.indices] = np.arange(self.indices.shape[0])
        return ranks


@dataclass
class _Picks:
    """What one strategy picked: indices, scores and diversities (aligned), and the pool."""

    indices: np.ndarray
    scores: np.ndarray
    diversity: np.ndarray
    pool: np.ndarray


def _top(idx: np.ndarray, key: np.ndarray, k: int) -> np.ndarray:
    # Highest key first, ties to the smaller index (idx is ascending): a stable sort on -key.
    order = np.argsort(-key[idx], kind="stable")
    return idx[order[:k]]


def _check_settings(strategy: str, diversity: str, decay: float, pool_factor: float | None):
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"unknown strategy {strategy!r} (expected one of: {', '.join(STRATEGIES)})"
        )
    if diversity not in DIVERSITY:
        raise ConfigError(
            f"unknown diversity {diversity!r} (expected one of: {', '.join(DIVERSITY)})"
        )
    if not 0.0 <= decay < 1.0:
        raise ConfigError(f"decay must be in [0, 1), got {decay}")
    if pool_factor is not None and not (pool_factor >= 1.0):
        raise ConfigError(
            f"pool factor must be at least 1 (or None for no pool), got {pool_factor}"
        )


def _valid_samples(
    samples: Sequence[Sample] | ColumnarData, complexity: np.ndarray | None, max_complexity: float
) -> np.ndarray:
    """bool[N]: a non-empty response and, given a complexity, a candidate."""
    valid = ~_empty(samples)
    if complexity is not None:
        valid &= candidate_mask(complexity, max_complexity)
    return valid


def _by_complexity(
    idx: np.ndarray, complexity: np.ndarray, m: int, pool_factor: float | None, keep_pool: bool
) -> _Picks:
    picks = _top(idx, complexity, m)
    pool = picks
    if keep_pool and pool_factor is not None:
        pool = _top(idx, complexity, math.floor(pool_factor * m))
    return _Picks(picks, complexity[picks], np.full(picks.shape[0], np.nan), pool)


def _longest(samples: Sequence[Sample] | ColumnarData, idx: np.ndarray, m: int) -> _Picks:
    words = response_words(samples).astype(np.float64)
    chars = _response_chars(samples)
    order = np.lexsort((idx, -chars[idx], -words[idx]))
    picks = idx[order[:m]]
    return _Picks(picks, words[picks], np.full(picks.shape[0], np.nan), picks)


def _random(idx: np.ndarray, m: int, seed: int) -> _Picks:
    picks = np.random.default_rng(seed).permutation(idx)[:m].astype(np.int64)
    nan = np.full(picks.shape[0], np.nan)
    return _Picks(picks, nan, nan.copy(), picks)


def _complexity_times_diversity(
    samples: Sequence[Sample] | ColumnarData,
    idx: np.ndarray,
    complexity: np.ndarray | None,
    m: int,
    pool_factor: float | None,
    diversity: str,
    **greedy: Any,
) -> _Picks:
    """The method: the pool by complexity, then the greedy selector on the pool's texts
    (``greedy``: :func:`iterit.selection.selector.select`'s decay, n-gram range, TF-IDF
    variant and progress)."""
    from iterit.selection.selector import select

    if complexity is None or pool_factor is None:
        pool = idx
    else:
        pool = _top(idx, complexity, math.floor(pool_factor * m))
    if pool.shape[0] == 0:
        nan = np.full(0, np.nan)
        return _Picks(pool, nan, nan, pool)
    texts = _pool_texts(samples, pool, diversity)
    # Every pool sample is a candidate, so TF-IDF is fitted on exactly the pool.
    sel = select(
        texts,
        None if complexity is None else complexity[pool],
        min(m, pool.shape[0]),
        max_complexity=None,
        **greedy,
    )
    picks = pool[np.asarray(sel.indices, dtype=np.int64)]
    scores = np.asarray(sel.scores, dtype=np.float64)
    div = scores / complexity[picks] if complexity is not None else scores.copy()
    return _Picks(picks, scores, div, pool)


def select_samples(
    samples: Sequence[Sample] | ColumnarData,
    budget: int | float,
    *,
    strategy: str = "iterit",
    complexity: np.ndarray | Sequence[float] | None = None,
    max_complexity: float = IFD_MAX,
    diversity: str = "response",
    decay: float = 0.1,
    pool_factor: float | None = 3.0,
    seed: int = 0,
    ngram_range: tuple[int, int] = (1, 3),
    variant: str = "sklearn",
    progress: Progress | None = None,
) -> SampleSelection:
    """Select ``budget`` samples from ``samples`` with ``strategy`` (see the module docstring).
    ``progress``: called as TF-IDF and the greedy advance
    (:data:`~iterit.selection.selector.Progress`).

    Raises :class:`~iterit.errors.ConfigError` for settings out of range or not among their
    choices, :class:`~iterit.errors.InvalidInputError` for inputs it cannot use."""
    n = len(samples)
    if n == 0:
        raise InvalidInputError("no samples to select from")
    _check_settings(strategy, diversity, decay, pool_factor)
    m = resolve_budget(budget, n)
    c = None
    if complexity is not None:
        c = np.asarray(complexity, dtype=np.float64)
        if c.shape != (n,):
            raise InvalidInputError(f"complexity has shape {c.shape}, expected ({n},)")
    valid = _valid_samples(samples, c, max_complexity)
    idx = np.flatnonzero(valid).astype(np.int64)

    if strategy == "ifd" or (strategy == "iterit" and diversity == "none"):
        if c is None:
            raise ConfigError(f"strategy {strategy!r} needs a complexity (IFD scores)")
        picked = _by_complexity(idx, c, m, pool_factor, keep_pool=strategy == "iterit")
    elif strategy == "longest":
        picked = _longest(samples, idx, m)
    elif strategy == "random":
        picked = _random(idx, m, seed)
    else:
        greedy = {"ngram_range": ngram_range, "variant": variant, "progress": progress}
        picked = _complexity_times_diversity(
            samples, idx, c, m, pool_factor, diversity, decay=decay, **greedy
        )
    picks = np.asarray(picked.indices, dtype=np.int64)
    if picks.shape[0] < m:
        warnings.warn(
            f"only {picks.shape[0]} valid samples for a budget of {m}: all of them were picked "
            f"(shortfall {m - picks.shape[0]})",
            ShortfallWarning,
            stacklevel=2,
        )
    return SampleSelection(
        indices=picks,
        scores=np.asarray(picked.scores, dtype=np.float64),
        diversity=np.asarray(picked.diversity, dtype=np.float64),
        complexity=c,
        valid=valid,
        pool=np.asarray(picked.pool, dtype=np.int64),
        budget=m,
        strategy=strategy,
        shortfall=m - int(picks.shape[0]),
        n_candidates=int(idx.shape[0]),
    )


def select_with_config(
    samples: Sequence[Sample] | ColumnarData,
    config: SelectionConfig,
    complexity: np.ndarray | Sequence[float] | None = None,
    **overrides: Any,
) -> SampleSelection:
    """:func:`select_samples` with ``config``'s settings (its budget, strategy, diversity,
    decay, pool factor, seed (``None``: 0), n-gram range, TF-IDF variant and complexity
    cap); ``overrides``: any of :func:`select_samples`' keywords instead (``budget`` too, and
    ``pool_factor=None``: no pool)."""
    settings: dict[str, Any] = {
        "budget": config.budget,
        "strategy": config.strategy,
        "max_complexity": config.max_complexity,
        "diversity": config.diversity,
        "decay": config.decay,
        "pool_factor": config.pool_factor,
        "seed": 0 if config.seed is None else config.seed,
        "ngram_range": tuple(config.ngram_range),
        "variant": config.variant,
        **overrides,
    }
    budget = settings.pop("budget")
    return select_samples(samples, budget, complexity=complexity, **settings)
