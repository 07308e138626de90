"""One selection step over a whole dataset: IterIT's epoch-0 selection and its baselines
(DESIGN 3.5 epoch 0 and 3.6), as configurations of the same machinery.

:func:`choose` is what ``iterit select`` runs.  Strategies:

``iterit``
    The pool is the ``pool_factor * M`` valid samples with the highest complexity (ties to the
    smaller index); then M are picked from the pool by the greedy complexity x diversity
    selector (:func:`iterit.select`, DESIGN 3.4), diversity measured on the response, the
    instruction, or both (``diversity="none"``: by complexity alone).
``ifd``
    IFD only (Superfiltering-style): the M valid samples with the highest complexity.
``longest``
    The M samples with the longest responses (words, then characters, then smaller index).
``random``
    M samples drawn uniformly without replacement, seeded.

Valid samples: the response is not empty, and, when a complexity is given, it is finite,
``> 0`` and ``< max_complexity`` (``1.0`` for IFD: DESIGN 3.2).  A budget larger than the number
of valid samples picks them all and reports the shortfall; nothing is ever padded.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from iterit.data.sample import Sample
from iterit.selection.selector import resolve_budget

__all__ = [
    "DIVERSITY",
    "STRATEGIES",
    "Choice",
    "choose",
    "diversity_texts",
    "resolve_budget",
    "response_words",
]

STRATEGIES = ("iterit", "ifd", "longest", "random")
DIVERSITY = ("response", "instruction", "both", "none")


def response_words(samples: Sequence[Sample]) -> np.ndarray:
    """Response length in words (whitespace-separated), the paper's length measure (Sec. 5.3)."""
    return np.fromiter((len(s.response.split()) for s in samples), np.int64, len(samples))


def diversity_texts(samples: Sequence[Sample], which: str) -> list[str]:
    """The text whose n-grams measure diversity: the response, the prompt side (instruction and
    input), or both joined by a newline (DESIGN 3.3)."""
    if which == "response":
        return [s.response for s in samples]
    if which == "instruction":
        return [s.prompt_text for s in samples]
    if which == "both":
        return [f"{s.prompt_text}\n{s.response}" for s in samples]
    raise ValueError(f"unknown diversity text {which!r} (expected response, instruction or both)")


@dataclass
class Choice:
    """The outcome of :func:`choose`.  Index arrays point into the full record list."""

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
        """int64[N]: pick rank (0 = first pick) of every record, -1 when not picked."""
        ranks = np.full(self.valid.shape[0], -1, dtype=np.int64)
        ranks[self.indices] = np.arange(self.indices.shape[0])
        return ranks


def _top(idx: np.ndarray, key: np.ndarray, k: int) -> np.ndarray:
    # Highest key first, ties to the smaller index (idx is ascending): a stable sort on -key.
    order = np.argsort(-key[idx], kind="stable")
    return idx[order[:k]]


def choose(
    samples: Sequence[Sample],
    budget: int | float,
    *,
    strategy: str = "iterit",
    complexity: np.ndarray | Sequence[float] | None = None,
    max_complexity: float = 1.0,
    diversity: str = "response",
    decay: float = 0.1,
    pool_factor: float | None = 3.0,
    seed: int = 0,
    ngram_range: tuple[int, int] = (1, 3),
    variant: str = "sklearn",
) -> Choice:
    """Select ``budget`` samples from ``samples`` (see the module docstring)."""
    n = len(samples)
    if n == 0:
        raise ValueError("no samples to select from")
    if strategy not in STRATEGIES:
        raise ValueError(
            f"unknown strategy {strategy!r} (expected one of: {', '.join(STRATEGIES)})"
        )
    if diversity not in DIVERSITY:
        raise ValueError(
            f"unknown diversity {diversity!r} (expected one of: {', '.join(DIVERSITY)})"
        )
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay must be in [0, 1), got {decay}")
    if pool_factor is not None and not (pool_factor >= 1.0):
        raise ValueError(f"pool factor must be at least 1 (or None for no pool), got {pool_factor}")
    m = resolve_budget(budget, n)
    valid = np.fromiter((bool(s.response.strip()) for s in samples), bool, n)
    c = None
    if complexity is not None:
        c = np.asarray(complexity, dtype=np.float64)
        if c.shape != (n,):
            raise ValueError(f"complexity has shape {c.shape}, expected ({n},)")
        with np.errstate(invalid="ignore"):
            valid &= np.isfinite(c) & (c > 0) & (c < max_complexity)
    idx = np.flatnonzero(valid).astype(np.int64)
    nan = np.full(0, np.nan)

    if strategy in ("ifd",) or (strategy == "iterit" and diversity == "none"):
        if c is None:
            raise ValueError(f"strategy {strategy!r} needs a complexity (IFD scores)")
        pool = _top(idx, c, m)
        picks, scores, div = pool, c[pool], np.full(pool.shape[0], np.nan)
        if strategy == "iterit" and pool_factor is not None:
            pool = _top(idx, c, math.floor(pool_factor * m))
    elif strategy == "longest":
        words = response_words(samples).astype(np.float64)
        chars = np.fromiter((len(s.response) for s in samples), np.float64, n)
        order = np.lexsort((idx, -chars[idx], -words[idx]))
        picks = idx[order[:m]]
        pool, scores, div = picks, words[picks], np.full(picks.shape[0], np.nan)
    elif strategy == "random":
        rng = np.random.default_rng(seed)
        picks = rng.permutation(idx)[:m].astype(np.int64)
        pool, scores, div = picks, np.full(picks.shape[0], np.nan), np.full(picks.shape[0], np.nan)
    else:  # iterit with diversity
        from iterit.selection.selector import select

        if c is None or pool_factor is None:
            pool = idx
        else:
            pool = _top(idx, c, math.floor(pool_factor * m))
        if pool.shape[0] == 0:
            picks, scores, div = pool, nan, nan
        else:
            texts = diversity_texts([samples[int(i)] for i in pool], diversity)
            sel = select(
                texts,
                None if c is None else c[pool],
                min(m, pool.shape[0]),
                decay=decay,
                ngram_range=ngram_range,
                variant=variant,
                max_complexity=None,
            )
            local = np.asarray(sel.indices, dtype=np.int64)
            picks = pool[local]
            scores = np.asarray(sel.scores, dtype=np.float64)
            div = scores / c[picks] if c is not None else scores.copy()
    picks = np.asarray(picks, dtype=np.int64)
    if picks.shape[0] < m:
        from iterit.errors import ShortfallWarning

        warnings.warn(
            f"only {picks.shape[0]} valid samples for a budget of {m}: all of them were picked "
            f"(shortfall {m - picks.shape[0]})",
            ShortfallWarning,
            stacklevel=2,
        )
    return Choice(
        indices=picks,
        scores=np.asarray(scores, dtype=np.float64),
        diversity=np.asarray(div, dtype=np.float64),
        complexity=c,
        valid=valid,
        pool=np.asarray(pool, dtype=np.int64),
        budget=m,
        strategy=strategy,
        shortfall=m - int(picks.shape[0]),
        n_candidates=int(idx.shape[0]),
    )
