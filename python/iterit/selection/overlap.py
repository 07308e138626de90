"""How much two selections agree: the Jaccard overlap of their index sets (the paper's Table 5;
the ``overlap_prev`` of each epoch record and the report's overlap matrix)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["jaccard"]


def jaccard(a: Iterable[int], b: Iterable[int]) -> float:
    """|a & b| / |a | b| of two index sets (1.0 for two empty sets)."""
    sa, sb = {int(x) for x in a}, {int(x) for x in b}
    union = len(sa | sb)
    return 1.0 if union == 0 else len(sa & sb) / union
