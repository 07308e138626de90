"""The training signals' arithmetic, torch-free: learning percentage and its complexity
mapping, and the IFD-scale complexity of an in-loop training loss (docs/design.md,
"Signals"; docs/signals.md).

Learning percentage: each sample's response perplexity before training (P0) and after every
epoch of a short fine-tuning (P1..Pn)::

    LP       = (P0 - P1) / (P0 - Pn)      (0 when P0 == Pn)
    LP_proxy = (P0 - P1) / P0             (the one-epoch proxy)
    complexity = 1 / (1 + exp(LP))        strictly decreasing in LP, inside (0, 1)

In-loop loss: ``exp(loss_ema - nll_prior)``, the IFD a sample would have if its conditional
NLL were its smoothed training loss (IFD = exp(nll_cond - nll_prior)).
"""

from __future__ import annotations

import numpy as np

from iterit.errors import InvalidInputError

__all__ = ["ifd_equivalent", "learning_percentage", "lp_complexity"]

_TINY = np.finfo(np.float64).tiny
_BELOW_ONE = np.nextafter(1.0, 0.0)


def learning_percentage(ppl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(LP, LP_proxy)`` from perplexities ``ppl`` of shape ``(n_epochs + 1, N)`` (row 0 = P0,
    before training; row e = after epoch e).  NaN where a perplexity is NaN."""
    p = np.asarray(ppl, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 2:
        raise InvalidInputError(
            f"need perplexities before and after >= 1 epoch, got shape {p.shape}"
        )
    p0, p1, pn = p[0], p[1], p[-1]
    den = p0 - pn
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = np.where(den != 0, (p0 - p1) / np.where(den != 0, den, 1.0), 0.0)
        proxy = (p0 - p1) / p0
    nan = ~(np.isfinite(p0) & np.isfinite(p1) & np.isfinite(pn))
    lp[nan] = np.nan
    proxy[nan] = np.nan
    return lp, proxy


def lp_complexity(lp: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(lp))`` clipped into the open interval (0, 1): larger = harder.  NaN stays
    NaN (never a candidate)."""
    x = np.asarray(lp, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        c = np.exp(-np.logaddexp(0.0, x))
    finite = np.isfinite(c)
    c[finite] = np.clip(c[finite], _TINY, _BELOW_ONE)
    return c


def ifd_equivalent(loss_ema: np.ndarray, nll_prior: np.ndarray) -> np.ndarray:
    """``exp(loss_ema - nll_prior)``: the IFD a sample would have if its conditional NLL were
    the smoothed training loss."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp(np.asarray(loss_ema, np.float64) - np.asarray(nll_prior, np.float64))
