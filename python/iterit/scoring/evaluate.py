"""Judge-free evaluation: the mean per-token negative log-likelihood of reference responses
given their instructions (docs/compare.md, "Evaluation").

The tokens are IFD's conditional pass (:mod:`iterit.scoring.encoding`: start token, prompt in
the template, response and end token, truncated to ``max_length``), run by the batched
:class:`iterit.scoring.IFDScorer`; the result is weighted by tokens, so a long response counts
as many tokens as it has.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iterit.config import ScoringConfig
from iterit.data.sample import Sample

__all__ = ["EvalNLL", "eval_nll"]


@dataclass(frozen=True)
class EvalNLL:
    """``nll``: mean -log p per response token over the samples with a score; ``n_tokens``:
    the tokens it covers; ``n_samples``: the samples that have a score; ``seconds``: wall time;
    ``forward_tokens``: tokens run through the model (both IFD passes); ``record_nll`` and
    ``record_tokens``: per sample, its mean NLL (``None`` when it has no score) and its response
    tokens, in the order of the samples (paired comparisons of two models need them)."""

    nll: float
    n_tokens: int
    n_samples: int
    seconds: float
    forward_tokens: int
    record_nll: tuple[float | None, ...] = field(default=(), repr=False)
    record_tokens: tuple[int, ...] = field(default=(), repr=False)


def eval_nll(
    model: Any,
    tokenizer: Any,
    samples: Sequence[Sample],
    *,
    template: Any = ScoringConfig.template,
    max_length: int = ScoringConfig.max_length,
    batch_tokens: int | None = None,
    turns: str = ScoringConfig.turns,
) -> EvalNLL:
    """The token-weighted mean NLL of the responses of ``samples`` given their prompts;
    ``turns``: a conversation's assistant turns evaluated, all (default) or the last (the
    training run's choice, docs/design.md "IFD").

    Runs IFD's batched scorer (its prior pass is computed and not used: evaluation sets are
    small next to training, and the scorer is the one exact batched forward the project has)."""
    from iterit.scoring.scorer import IFDScorer

    t0 = time.perf_counter()
    scorer = IFDScorer(
        model,
        tokenizer,
        template=template,
        max_length=max_length,
        batch_tokens=batch_tokens,  # None: the scorer's default
        turns=turns,
        progress=False,
    )
    scores = scorer.score(list(samples))
    ok = np.isfinite(scores.nll_cond) & (scores.n_tokens > 0)
    k = scores.n_tokens[ok].astype(np.float64)
    total = float(k.sum())
    nll = float(np.dot(scores.nll_cond[ok], k) / total) if total else float("nan")
    forward = scores.stats.forward_tokens
    per_record = tuple(
        float(v) if good else None for v, good in zip(scores.nll_cond, ok, strict=True)
    )
    tokens = tuple(int(k) if good else 0 for k, good in zip(scores.n_tokens, ok, strict=True))
    seconds = time.perf_counter() - t0
    return EvalNLL(nll, int(total), int(ok.sum()), seconds, forward, per_record, tokens)
