"""Scoring during training: :class:`IFDScoreFn` scores samples with
:class:`iterit.scoring.IFDScorer`, and :func:`score_pass` runs any ``score_fn`` on the
model being trained (eval mode and no gradients around it, then back) and turns what it
returns into the planner's :class:`iterit.training.planner.ScoredPass`."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from iterit.data.sample import Sample
from iterit.errors import InvalidInputError
from iterit.training.planner import ScoredPass
from iterit.utils.distributed import rank
from iterit.utils.optional import requires_extra

with requires_extra("train"):
    import torch

__all__ = ["IFDScoreFn", "ScoreFn", "score_pass", "uses_training_model"]

#: ``score_fn(model, samples) -> ifd``: an array, or an object with an ``ifd`` attribute (and
#: optionally ``nll_prior`` and ``stats``), such as ``IFDScores``.
ScoreFn = Callable[[torch.nn.Module, Sequence[Sample]], Any]


class IFDScoreFn:
    """Scores samples with :class:`iterit.scoring.IFDScorer`: with the model being trained
    (the callback passes it) or, when ``scorer_model`` is given, with that separate (smaller)
    model, which training never changes, so its epoch-0 scores are reused instead of
    re-scoring.  ``cache`` (a folder) sends the first call, epoch 0's scoring of every sample,
    through the scorer's resumable score cache."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        template: Any = "alpaca",
        max_length: int = 1024,
        batch_tokens: int | None = None,
        scorer_model: torch.nn.Module | None = None,
        scorer_tokenizer: Any = None,
        progress: bool = True,
        cache: str | os.PathLike[str] | None = None,
        variant: str = "iterit",
    ) -> None:
        self.tokenizer = tokenizer
        self.variant = variant
        self.template = template
        self.max_length = max_length
        self.batch_tokens = batch_tokens
        self.scorer_model = scorer_model
        self.scorer_tokenizer = scorer_tokenizer
        self.progress = progress
        self.cache = cache
        self.calls = 0
        self.last: Any = None  # the last IFDScores
        #: Tokens run through the model by all calls so far (shared prefixes counted once).
        self.forward_tokens = 0

    @property
    def uses_training_model(self) -> bool:
        return self.scorer_model is None

    def __call__(self, model: torch.nn.Module, samples: Sequence[Sample]) -> np.ndarray:
        from iterit.scoring import IFDScorer

        m = model if self.scorer_model is None else self.scorer_model
        tok = self.tokenizer if self.scorer_tokenizer is None else self.scorer_tokenizer
        kwargs: dict[str, Any] = {
            "template": self.template,
            "max_length": self.max_length,
            "variant": self.variant,
        }
        if self.batch_tokens is not None:
            kwargs["batch_tokens"] = self.batch_tokens
        if self.cache is not None and self.calls == 0:
            # Only the first call (epoch 0, the model as loaded) can reuse or resume scores;
            # later calls score a model that has changed since.
            kwargs["cache"] = self.cache
        self.calls += 1
        progress = self.progress and rank() == 0
        self.last = IFDScorer(m, tok, progress=progress, **kwargs).score(list(samples))
        stats = self.last.stats
        self.forward_tokens += int(stats.get("real_tokens", 0))
        self.forward_tokens += int(stats.get("prefix_tokens_computed", 0))
        return np.asarray(self.last.ifd, dtype=np.float64)


def uses_training_model(score_fn: Any) -> bool:
    """Whether ``score_fn`` scores with the model being trained (its scores change)."""
    return bool(getattr(score_fn, "uses_training_model", True))


def _run(score_fn: ScoreFn, model: torch.nn.Module | None, samples: list[Sample]) -> Any:
    was_training = None if model is None else model.training
    try:
        if model is not None:
            model.eval()
        with torch.no_grad():
            return score_fn(model, samples)  # type: ignore[arg-type]
    finally:
        if model is not None and was_training is not None:
            model.train(was_training)


def score_pass(
    score_fn: ScoreFn, model: torch.nn.Module | None, samples: Sequence[Sample]
) -> ScoredPass:
    """Score ``samples`` with ``score_fn`` and the model being trained."""
    samples = list(samples)
    out = _run(score_fn, model, samples)
    ifd = np.asarray(getattr(out, "ifd", out), dtype=np.float64).reshape(-1)
    if ifd.shape[0] != len(samples):
        raise InvalidInputError(
            f"score_fn returned {ifd.shape[0]} scores for {len(samples)} samples"
        )
    # IFDScores (returned, or kept by IFDScoreFn) carry nll_prior, which in-loop losses need to
    # be put on IFD's scale, and the forward passes the scoring took.
    last = getattr(score_fn, "last", None)
    prior = getattr(out, "nll_prior", None)
    if prior is None:
        prior = getattr(last, "nll_prior", None)
    if prior is not None:
        prior = np.asarray(prior, dtype=np.float64).reshape(-1)
        prior = prior if prior.shape[0] == len(samples) else None
    stats = getattr(out, "stats", None) or getattr(last, "stats", None)
    forward = (
        {k: int(stats[k]) for k in ("forward_calls", "sequences") if k in stats} if stats else {}
    )
    return ScoredPass(ifd=ifd, nll_prior=prior, forward=forward)
