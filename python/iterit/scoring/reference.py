"""IFD written for clarity (docs/design.md, "IFD"): one sequence per forward pass, full fp32
logits.  The oracle for tests and the baseline for benchmarks; slow on purpose."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from iterit.config import ScoringConfig
from iterit.data.sample import Sample, as_sample
from iterit.data.templates import Template, render_prompt
from iterit.scoring.encoding import EMPTY_RESPONSE, PROMPT_TOO_LONG, eos_token, start_token
from iterit.scoring.model import EvalMode
from iterit.scoring.results import IFDScores, scores_from_nll
from iterit.utils.optional import requires_extra

with requires_extra("torch"):
    import torch

__all__ = ["reference_ifd"]


def _mean_nll(model: Any, seq: list[int], first: int, dev: torch.device) -> float:
    """Mean -log p of ``seq[first:]``, each token given the ones before it."""
    logits = model(torch.tensor([seq], device=dev)).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    # token seq[t] is predicted at position t - 1
    targets = torch.tensor(seq[first:], device=dev)
    picked = logp[first - 1 : len(seq) - 1].gather(1, targets[:, None])[:, 0]
    return float(-picked.double().mean())


def reference_ifd(
    model: Any,
    tokenizer: Any,
    samples: Iterable[Sample | Mapping[str, Any]],
    *,
    template: Template = ScoringConfig.template,
    max_length: int = ScoringConfig.max_length,
    device: str | torch.device | None = None,
) -> IFDScores:
    """IFD of every sample, one sequence per forward pass with full fp32 logits."""
    items = [as_sample(s, i) for i, s in enumerate(samples)]
    start, eos = start_token(tokenizer), eos_token(tokenizer)
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    n = len(items)
    nll_cond, nll_prior = np.full(n, np.nan), np.full(n, np.nan)
    n_tokens = np.zeros(n, dtype=np.int64)
    reasons = np.zeros(n, dtype=np.int8)
    truncated = 0
    with EvalMode(model), torch.inference_mode():
        for i, sample in enumerate(items):
            prompt = render_prompt(template, sample, tokenizer)
            p_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
            p = p_ids if p_ids and p_ids[0] == start else [start, *p_ids]
            r = [*tokenizer(sample.response, add_special_tokens=False)["input_ids"], eos]
            k = min(len(r), max_length - len(p))
            if not sample.response.strip():
                reasons[i] = EMPTY_RESPONSE
                continue
            if k <= 0:
                reasons[i] = PROMPT_TOO_LONG
                continue
            truncated += k < len(r)
            nll_cond[i] = _mean_nll(model, p + r[:k], len(p), dev)
            nll_prior[i] = _mean_nll(model, [start, *r[:k]], 1, dev)
            n_tokens[i] = k
    return scores_from_nll(nll_cond, nll_prior, n_tokens, reasons, n_truncated=truncated)
