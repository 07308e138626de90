"""Scoring during training: :class:`IFDScoreFn` scores samples with
:class:`iterit.scoring.IFDScorer`, and :func:`score_pass` runs any ``score_fn`` on the
model being trained (eval mode and no gradients around it, under the autocast the Trainer
trains it under, then back) and turns what it returns into the planner's
:class:`iterit.training.planner.ScoredPass`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import numpy as np

from iterit.data.sample import Sample
from iterit.errors import InvalidInputError
from iterit.training.planner import ScoredPass
from iterit.utils.optional import requires_extra

with requires_extra("train"):
    import torch

__all__ = [
    "IFDScoreFn",
    "ScoreFn",
    "mixed_precision_dtype",
    "score_pass",
    "scoring_autocast",
    "uses_training_model",
]

#: ``score_fn(model, samples) -> ifd``: an array, or an object with an ``ifd`` attribute (and
#: optionally ``nll_prior`` and ``stats``), such as ``IFDScores``.
ScoreFn = Callable[[torch.nn.Module, Sequence[Sample]], Any]


@dataclass(eq=False, repr=False)
class IFDScoreFn:
    """Scores samples with :class:`iterit.scoring.IFDScorer`: with the model being trained
    (the callback passes it) or, when ``scorer_model`` is given, with that separate (smaller)
    model, which training never changes, so its epoch-0 scores are reused instead of
    re-scoring.  ``cache`` (a folder) sends the first call, epoch 0's scoring of every sample,
    through the scorer's resumable score cache."""

    tokenizer: Any
    _: KW_ONLY
    template: Any = "alpaca"
    max_length: int = 1024
    batch_tokens: int | None = None
    scorer_model: torch.nn.Module | None = None
    scorer_tokenizer: Any = None
    progress: bool = True
    cache: str | os.PathLike[str] | None = None
    variant: str = "iterit"
    calls: int = field(default=0, init=False)
    last: Any = field(default=None, init=False)  # the last IFDScores
    #: Tokens run through the model by all calls so far (shared prefixes counted once).
    forward_tokens: int = field(default=0, init=False)

    @property
    def uses_training_model(self) -> bool:
        return self.scorer_model is None

    def __call__(self, model: torch.nn.Module, samples: Sequence[Sample]) -> np.ndarray:
        from iterit.scoring import IFDScorer

        m = model if self.scorer_model is None else self.scorer_model
        tok = self.tokenizer if self.scorer_tokenizer is None else self.scorer_tokenizer
        # Only the first call (epoch 0, the model as loaded) can reuse or resume scores; later
        # calls score a model that has changed since.
        cache = self.cache if self.calls == 0 else None
        self.calls += 1
        scorer = IFDScorer(
            m,
            tok,
            template=self.template,
            max_length=self.max_length,
            batch_tokens=self.batch_tokens,  # None: the scorer's default
            progress=self.progress,  # the scorer shows it on rank 0 only
            cache=cache,
            variant=self.variant,
        )
        self.last = scorer.score(list(samples))
        stats = self.last.stats
        self.forward_tokens += int(stats.get("real_tokens", 0))
        self.forward_tokens += int(stats.get("prefix_tokens_computed", 0))
        return np.asarray(self.last.ifd, dtype=np.float64)


def uses_training_model(score_fn: Any) -> bool:
    """Whether ``score_fn`` scores with the model being trained (its scores change)."""
    return bool(getattr(score_fn, "uses_training_model", True))


def mixed_precision_dtype(args: Any) -> torch.dtype | None:
    """The dtype a Trainer with ``args`` (``TrainingArguments``) autocasts its forward passes
    to: bfloat16 with ``bf16``, float16 with ``fp16``, None without mixed precision."""
    if getattr(args, "bf16", False):
        return torch.bfloat16
    if getattr(args, "fp16", False):
        return torch.float16
    return None


def scoring_autocast(model: torch.nn.Module | None, dtype: torch.dtype | str | None) -> Any:
    """The context to score ``model`` in while it trains with ``dtype`` mixed precision (a
    ``torch.dtype`` or its name; None: no mixing).  Scoring the model being trained computes
    as its training steps do: under mixed precision that is the Trainer's autocast (on CUDA
    several times faster than float32, and the selection judges the model training runs)."""
    if model is None or dtype is None:
        return contextlib.nullcontext()
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
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
    :func:`mixed_precision_dtype`) is the dtype training mixes float32 weights down to."""
    samples = list(samples)
    out = _run(score_fn, model, samples, autocast)
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
