"""Settings shared by the library and the command line, in one place: the choice lists, the
defaults (the paper's) and the validated configuration dataclasses. Torch-free, so the command
line can build its options from it without importing a model library."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from iterit.errors import ConfigError, InvalidInputError, InvalidTypeError

__all__ = [
    "DATA_FORMATS",
    "DIVERSITY",
    "LR_SCHEDULERS",
    "RESCORE",
    "STRATEGIES",
    "TEMPLATES",
    "TFIDF_VARIANTS",
    "TRAINERS",
    "SelectionConfig",
    "resolve_budget",
]

#: ``iterit``: IFD x decayed diversity (the method); ``ifd``: IFD only; ``random`` and
#: ``longest``: the static baselines (no scoring).
STRATEGIES = ("iterit", "ifd", "random", "longest")
#: The text whose n-grams measure diversity, or ``none`` (IFD only).
DIVERSITY = ("response", "instruction", "both", "none")
#: How epochs after the first get their complexity.
RESCORE = ("ifd", "in-loop")
#: Prompt templates by name (a callable is accepted too).
TEMPLATES = ("alpaca", "plain", "chat")
#: TF-IDF weightings: scikit-learn's, or the paper's Eq. 5.
TFIDF_VARIANTS = ("sklearn", "paper")
#: Record formats of input data.
DATA_FORMATS = ("alpaca", "sharegpt", "messages", "prompt-completion")
#: Trainer classes ``iterit train`` can build.
TRAINERS = ("transformers", "trl")
#: Learning-rate schedules offered by the command line.
LR_SCHEDULERS = (
    "cosine",
    "linear",
    "constant",
    "constant_with_warmup",
    "cosine_with_restarts",
    "polynomial",
)


def resolve_budget(budget: int | float, n: int) -> int:
    """A count ``>= 1`` as is, or a fraction in ``(0, 1)`` of ``n`` samples, rounded half up
    (at least 1)."""
    if isinstance(budget, bool) or not isinstance(budget, (numbers.Integral, numbers.Real)):
        raise InvalidTypeError(
            f"budget must be an int or a float fraction, got {type(budget).__name__}"
        )
    if isinstance(budget, numbers.Integral):
        if budget < 1:
            raise InvalidInputError(f"budget must be at least 1, got {budget}")
        return int(budget)
    fraction = float(budget)
    if not 0.0 < fraction < 1.0:
        raise InvalidInputError(
            f"a float budget is a fraction of the samples and must be in (0, 1), got {budget!r};"
            " pass an int for a count"
        )
    return max(1, math.floor(fraction * n + 0.5))


@dataclass
class SelectionConfig:
    """What to select each epoch (DESIGN 3.4-3.6; defaults are the paper's).

    ``budget``: M per epoch, a count or a fraction of all samples.  ``pool_factor``: a, the pool
    kept after epoch 0 is the ``floor(a * M)`` valid samples with the highest IFD.  ``decay``: b.
    ``diversity``: the text whose n-grams measure diversity (``response``, ``instruction``,
    ``both``) or ``none`` (IFD only, Superfiltering-style, still iterated over the pool).
    ``strategy``: ``iterit`` (the default), ``ifd`` (= ``iterit`` with ``diversity="none"``), or
    the static baselines ``random`` and ``longest`` (no scoring at all).  ``iterate=False`` reuses
    the epoch-0 selection every epoch (the "without iteration" ablation).  ``seed`` seeds the
    per-epoch shuffle of the selection (and the ``random`` baseline); ``None`` takes the
    trainer's ``args.seed``.

    ``rescore``: how epochs after the first get their complexity.  ``"ifd"`` (the default, the
    paper's): re-score the pool with IFD using the model being trained.  ``"in-loop"`` (LEAD,
    :mod:`iterit.training.inloop`): no scoring after epoch 0; each pool sample already trained gets
    ``exp(loss_ema - nll_prior)`` (its smoothed training loss on IFD's scale, ``nll_prior`` from
    epoch 0), the others keep their epoch-0 IFD.  ``loss_ema``: the weight the history keeps
    at each epoch's EMA update, ``ema = loss_ema * ema + (1 - loss_ema) * loss``.
    """

    budget: int | float = 0.05
    pool_factor: float = 3.0
    decay: float = 0.1
    diversity: str = "response"
    strategy: str = "iterit"
    iterate: bool = True
    ngram_range: tuple[int, int] = (1, 3)
    variant: str = "sklearn"
    max_complexity: float = 1.0
    seed: int | None = None
    rescore: str = "ifd"
    loss_ema: float = 0.5

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"unknown strategy {self.strategy!r} (expected one of: {', '.join(STRATEGIES)})"
            )
        if self.strategy == "ifd":
            self.strategy, self.diversity = "iterit", "none"
        if self.diversity not in DIVERSITY:
            raise ConfigError(
                f"unknown diversity {self.diversity!r} (expected one of: {', '.join(DIVERSITY)})"
            )
        resolve_budget(self.budget, 1)  # a count >= 1 or a fraction in (0, 1)
        if not 0.0 <= self.decay < 1.0:
            raise ConfigError(f"decay must be in [0, 1), got {self.decay}")
        if not self.pool_factor >= 1.0:
            raise ConfigError(f"pool factor must be at least 1, got {self.pool_factor}")
        self.ngram_range = (int(self.ngram_range[0]), int(self.ngram_range[1]))
        if self.rescore not in RESCORE:
            raise ConfigError(
                f"unknown rescore {self.rescore!r} (expected one of: {', '.join(RESCORE)})"
            )
        if not 0.0 <= self.loss_ema < 1.0:
            raise ConfigError(f"the loss EMA coefficient must be in [0, 1), got {self.loss_ema}")

    @property
    def needs_scores(self) -> bool:
        return self.strategy == "iterit"

    @property
    def in_loop(self) -> bool:
        """Later epochs take the complexity from the training losses (no re-scoring)."""
        return self.rescore == "in-loop" and self.needs_scores and self.iterate
