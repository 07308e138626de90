"""The candidate rule, in one place: which complexity values may be selected.

A sample is a candidate when its complexity is finite, > 0 and < ``max_complexity``
(``None``: no upper bound). For IFD the bound is 1: IFD >= 1 means the instruction does not
help predict the response (docs/design.md, "Candidates").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["IFD_MAX", "candidate_mask", "is_candidate"]

#: The upper bound for IFD-like complexities (excluded).
IFD_MAX = 1.0


def candidate_mask(values: Any, max_complexity: float | None = IFD_MAX) -> np.ndarray:
    """Boolean mask of the candidates among ``values`` (any array-like of floats)."""
    c = np.asarray(values, dtype=np.float64)
    mask = np.isfinite(c) & (c > 0)
    if max_complexity is not None:
        mask &= c < max_complexity
    return mask


def is_candidate(value: float, max_complexity: float | None = IFD_MAX) -> bool:
    """The same rule for one value (the pure-Python reference uses it)."""
    c = float(value)
    return math.isfinite(c) and c > 0 and (max_complexity is None or c < max_complexity)
