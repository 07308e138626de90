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

__all__ = [
    "LOGIT_ELEMENTS",
    "MIN_HEAD_TOLERANCE",
    "UNIT_ROUNDOFF",
    "OutputHead",
    "compute_dtype",
    "head_logit_error",
    "head_tolerance",
    "token_nll",
    "unit_roundoff",
]

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


#: Unit roundoff (half the machine epsilon: the largest relative error of one rounding) of the
#: dtypes an output head computes in.
UNIT_ROUNDOFF = {torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11, torch.float32: 2.0**-24}
#: Float32 matrix products on CUDA may run as TF32 (a 10-bit mantissa, like float16).
TF32_ROUNDOFF = 2.0**-11
#: Matrix products accumulate in float32 whatever their inputs (cuBLAS, oneDNN).
ACCUMULATE_ROUNDOFF = 2.0**-24
#: The smallest tolerance of the head check, in nats: below it the check claims nothing.
MIN_HEAD_TOLERANCE = 1e-3


def compute_dtype(weight: torch.Tensor) -> torch.dtype:
    """The dtype a product with ``weight`` runs in: the autocast dtype when autocast is on for
    the weight's device (float32 weights under a Trainer's bfloat16 mixed precision), else the
    weight's own dtype."""
    kind = weight.device.type
    if torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return weight.dtype


def unit_roundoff(dtype: torch.dtype, device_type: str) -> float:
    """The unit roundoff of a product computed in ``dtype`` on ``device_type`` (TF32 counted
    where CUDA may use it for float32)."""
    tf32 = (
        torch.get_float32_matmul_precision() != "highest" or torch.backends.cuda.matmul.allow_tf32
    )
    if dtype == torch.float32 and device_type == "cuda" and tf32:
        return TF32_ROUNDOFF
    return UNIT_ROUNDOFF.get(dtype, UNIT_ROUNDOFF[torch.float16])


def head_tolerance(head: OutputHead, hidden: torch.Tensor) -> float:
    """The largest log-probability difference two correct computations of ``head``'s logits on
    ``hidden`` (positions x hidden size) can show, from the dtype the product runs in
    (docs/ifd.md, "The output-head self-check").

    Each raw logit ``z = h . w`` is rounded once to the compute dtype (relative error ``u``,
    the unit roundoff: 2^-8 for bfloat16) after a length-``d`` float32 accumulation (error at
    most ``gamma_d |h| |w|``, ``gamma_d = d 2^-24 / (1 - d 2^-24)``, by Cauchy-Schwarz). Two
    computations of the same logit (another kernel, another shape) thus differ by at most
    ``2 (u max|z| + gamma_d max|h| max|w|)``; a log-probability ``z_v - logsumexp(z)`` moves by
    at most twice the largest logit difference, whatever the vocabulary size (the logsumexp is a
    softmax-weighted mean of the differences). The scale and division of the head's transforms
    scale the bound; soft-capping only shrinks differences (tanh is 1-Lipschitz)."""
    weight = head.head.weight
    u = unit_roundoff(compute_dtype(weight), weight.device.type)
    h = hidden.float()
    d = h.shape[-1]
    gamma = d * ACCUMULATE_ROUNDOFF / (1 - d * ACCUMULATE_ROUNDOFF)
    with torch.autocast(weight.device.type, enabled=False):  # magnitudes, in float32
        raw = (h @ weight.float().T).abs().max()
        w_norm = weight.float().norm(dim=-1).max()
    h_norm = h.norm(dim=-1).max()
    logit = 2 * (u * raw + gamma * h_norm * w_norm) * head.mul / head.div
    return max(MIN_HEAD_TOLERANCE, float(2 * logit))


def head_logit_error(
    model: Any, decoder: Any, head: OutputHead, ids: list[int], device: Any
) -> tuple[float, float]:
    """``(difference, tolerance)``: the largest log-probability difference between the model's
    own logits and decoder + ``head`` on the probe ``ids``, and the difference
    :func:`head_tolerance` allows for the dtype the head computes in (the autocast dtype under
    mixed precision).  The transforms this detects (soft-capping, scaling the logits) move
    log-probabilities by whole units; bfloat16 rounding moves them by ``4 u max|z|`` at most."""
    x = torch.tensor([ids], device=device)
    ref = model(input_ids=x, use_cache=False).logits[0].float().log_softmax(-1)
    out = decoder(input_ids=x, use_cache=False)
    hidden = out[0] if not hasattr(out, "last_hidden_state") else out.last_hidden_state
    mine = head(hidden[0]).log_softmax(-1)
    return float((ref - mine).abs().max()), head_tolerance(head, hidden[0])
