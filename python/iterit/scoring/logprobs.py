"""Per-token negative log-likelihood from hidden states or logits, a few rows at a time.

Only the rows that predict scored tokens are projected to the vocabulary, in float32, so the
logits held at once stay under :data:`LOGIT_ELEMENTS`.  Imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from iterit.utils.optional import requires_extra

with requires_extra("torch"):
    import torch

__all__ = ["LOGIT_ELEMENTS", "OutputHead", "head_logit_error", "token_nll"]

#: fp32 logits held at once (rows x vocab x 4 bytes <= 256 MiB).
LOGIT_ELEMENTS = 1 << 26


def token_nll(
    rows: torch.Tensor, targets: torch.Tensor, project: Any = None, vocab: int | None = None
) -> np.ndarray:
    """``-log softmax(logits)[target]`` of every row (float32, on the CPU as numpy).

    ``rows`` are logits, or hidden states when ``project`` (hidden -> float32 logits) is given,
    with ``vocab`` the width of its output."""
    width = int(vocab) if project is not None and vocab else int(rows.shape[-1])
    step = max(1, LOGIT_ELEMENTS // max(1, width))
    parts = []
    for a in range(0, rows.shape[0], step):
        x = rows[a : a + step]
        logits = project(x) if project is not None else x.float()
        lse = torch.logsumexp(logits, dim=-1)
        picked = logits.gather(1, targets[a : a + step, None])[:, 0]
        parts.append((lse - picked).cpu())
    return torch.cat(parts).numpy() if parts else np.zeros(0, dtype=np.float32)


class OutputHead:
    """A causal LM's output projection plus the transforms known architectures apply after it
    (Cohere's ``logit_scale``, Granite's ``logits_scaling``, Gemma's soft-capping)."""

    def __init__(self, head: Any, config: Any):
        self.head = head
        mul = getattr(config, "logit_scale", None)
        div = getattr(config, "logits_scaling", None)
        cap = getattr(config, "final_logit_softcapping", None)
        self.mul = float(mul) if mul else 1.0
        self.div = float(div) if div else 1.0
        self.cap = float(cap) if cap else None
        out_features = getattr(head, "out_features", None)
        self.vocab = int(out_features or head.weight.shape[0])

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        """Float32 logits of ``hidden``."""
        logits = self.head(hidden).float()
        if self.mul != 1.0:
            logits = logits * self.mul
        if self.div != 1.0:
            logits = logits / self.div
        if self.cap is not None:
            logits = torch.tanh(logits / self.cap) * self.cap
        return logits

    def nll(self, hidden: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
        """:func:`token_nll` of hidden states through this head."""
        return token_nll(hidden, targets, project=self, vocab=self.vocab)


def head_logit_error(
    model: Any, decoder: Any, head: OutputHead, ids: list[int], device: Any
) -> tuple[float, float]:
    """``(difference, tolerance)``: the largest log-probability difference between the model's
    own logits and decoder + ``head`` on the probe ``ids``, and the difference allowed for the
    model's dtype.  16-bit logits differ by an ulp or so between kernels; the transforms this
    detects (soft-capping, scaling) move log-probabilities by whole units."""
    x = torch.tensor([ids], device=device)
    ref = model(input_ids=x, use_cache=False).logits[0].float().log_softmax(-1)
    out = decoder(input_ids=x, use_cache=False)
    hidden = out[0] if not hasattr(out, "last_hidden_state") else out.last_hidden_state
    mine = head(hidden[0]).log_softmax(-1)
    tol = 1e-3 if hidden.dtype == torch.float32 else 0.5
    return float((ref - mine).abs().max()), tol
