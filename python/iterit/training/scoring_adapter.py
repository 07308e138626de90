"""Scoring during training: :class:`IFDScoreFn` scores samples with
:class:`iterit.scoring.IFDScorer`, and :func:`score_pass` runs any ``score_fn`` on the
model being trained (eval mode and no gradients around it, under the autocast the Trainer
trains it under, then back) and turns what it returns into the planner's
:class:`iterit.training.planner.ScoredPass`."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import numpy as np

from iterit.config import ScoringConfig
from iterit.data.sample import Sample
from iterit.errors import InvalidInputError
from iterit.scoring.results import IFDScores
from iterit.training.planner import ScoredPass
from iterit.utils.optional import requires_extra

with requires_extra("train"):
    import torch

__all__ = [
    "IFDScoreFn",
    "ScoreFn",
    "score_pass",
    "scoring_autocast",
    "uses_training_model",
]

#: ``score_fn(model, samples) -> ifd``: an array, or an object with an ``ifd`` attribute (and
#: optionally ``nll_prior`` and ``stats``), such as ``IFDScores``.
ScoreFn = Callable[[torch.nn.Module, Sequence[Sample]], Any]


@dataclass(eq=False, repr=False)
class IFDScoreFn:
    """Scores samples with :class:`iterit.scoring.IFDScorer` as ``scoring`` says: with the
    model being trained (the callback passes it) or, when ``scorer_model`` is given, with that
    separate (smaller) model, which training never changes, so its epoch-0 scores are reused
    instead of re-scoring.  ``scoring.cache`` (a folder) sends the first call, epoch 0's
    scoring of every sample, through the scorer's resumable score cache; the model is scored
    where it is (``scoring.device`` and ``scoring.dtype`` are the loader's)."""

    tokenizer: Any
    _: KW_ONLY
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    scorer_model: torch.nn.Module | None = None
    scorer_tokenizer: Any = None
    calls: int = field(default=0, init=False)
    #: Tokens run through the model by all calls so far (shared prefixes counted once).
    forward_tokens: int = field(default=0, init=False)

    @property
    def uses_training_model(self) -> bool:
        return self.scorer_model is None

    def __call__(self, model: torch.nn.Module, samples: Sequence[Sample]) -> IFDScores:
        from iterit.scoring import IFDScorer

        m = model if self.scorer_model is None else self.scorer_model
        tok = self.tokenizer if self.scorer_tokenizer is None else self.scorer_tokenizer
        # Only the first call (epoch 0, the model as loaded) can reuse or resume scores; later
        # calls score a model that has changed since.
        cache = self.scoring.cache if self.calls == 0 else None
        self.calls += 1
        config = dataclasses.replace(self.scoring, cache=cache, device=None)
        scores = IFDScorer.from_config(m, tok, config).score(list(samples))
        self.forward_tokens += scores.stats.forward_tokens
        return scores


def uses_training_model(score_fn: Any) -> bool:
    """Whether ``score_fn`` scores with the model being trained (its scores change)."""
    return bool(getattr(score_fn, "uses_training_model", True))


def scoring_autocast(model: torch.nn.Module | None, dtype: torch.dtype | None) -> Any:
    """The context to score ``model`` in while it trains with ``dtype`` mixed precision (the
    :class:`iterit.scoring.precision.Precision`'s ``autocast``; None: no mixing).  Scoring the
    model being trained computes as its training steps do: under mixed precision that is the
    Trainer's autocast (on CUDA several times faster than float32, and the selection judges
    the model training runs)."""
    if model is None or dtype is None:
        return contextlib.nullcontext()
    param = next(model.parameters(), None)
    if param is None or param.dtype != torch.float32:
        return contextlib.nullcontext()  # weights already in a low precision: nothing to mix
    return torch.autocast(device_type=param.device.type, dtype=dtype)


def _run(
    score_fn: ScoreFn,
    model: torch.nn.Module | None,
    samples: list[Sample],
    autocast: torch.dtype | None,
) -> Any:
    was_training = None if model is None else model.training
    mixed = scoring_autocast(model if uses_training_model(score_fn) else None, autocast)
    try:
        if model is not None:
            model.eval()
        with torch.no_grad(), mixed:
            return score_fn(model, samples)  # type: ignore[arg-type]
    finally:
        if model is not None and was_training is not None:
            model.train(was_training)


def score_pass(
    score_fn: ScoreFn,
    model: torch.nn.Module | None,
    samples: Sequence[Sample],
    *,
    autocast: torch.dtype | None = None,
) -> ScoredPass:
    """Score ``samples`` with ``score_fn`` and the model being trained; ``autocast`` (see
    :func:`iterit.scoring.precision.args_autocast`) is the dtype training mixes float32
    weights down to."""
    samples = list(samples)
    out = _run(score_fn, model, samples, autocast)
    ifd = np.asarray(getattr(out, "ifd", out), dtype=np.float64).reshape(-1)
    if ifd.shape[0] != len(samples):
        raise InvalidInputError(
            f"score_fn returned {ifd.shape[0]} scores for {len(samples)} samples"
        )
    # IFDScores carry nll_prior, which in-loop losses need to be put on IFD's scale, and the
    # forward passes the scoring took.
    prior = getattr(out, "nll_prior", None)
    if prior is not None:
        prior = np.asarray(prior, dtype=np.float64).reshape(-1)
        prior = prior if prior.shape[0] == len(samples) else None
    forward = {}
    if isinstance(out, IFDScores):
        forward = {"forward_calls": out.stats.forward_calls, "sequences": out.stats.sequences}
    return ScoredPass(ifd=ifd, nll_prior=prior, forward=forward)
