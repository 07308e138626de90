"""Assistant turns per sample in a report: shown when the data holds conversations with several
assistant turns (docs/design.md, "IFD": every assistant turn is scored and trained), so a
selection that prefers long conversations shows it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["assistant_turns", "data_turns", "turn_row", "turns_cell"]


def assistant_turns(samples: Sequence[Any]) -> np.ndarray | None:
    """Each sample's assistant turns (``Sample.n_turns``; 1 for a one-turn sample); ``None``
    for data read as columns (:class:`iterit.data.columns.ColumnarData`: one-turn formats
    only, so there is no turns row to show)."""
    from iterit.data.columns import ColumnarData

    if isinstance(samples, ColumnarData):
        return None
    return np.asarray([s.n_turns for s in samples], dtype=np.int64)


def turns_cell(turns: np.ndarray) -> str:
    """``mean M, max X`` of some samples' assistant turns (``-`` for none)."""
    if turns.size == 0:
        return "-"
    return f"mean {float(turns.mean()):.2f}, max {int(turns.max())}"


def turn_row(turns: np.ndarray | None, sets: Mapping[str, np.ndarray]) -> list[tuple[str, str]]:
    """The summary row ``assistant turns per sample: all / <set> / ...`` (``sets``: label ->
    picked indices), or no row when no sample has more than one assistant turn."""
    if turns is None or turns.size == 0 or int(turns.max()) < 2:
        return []
    picked = {label: turns[p[p < turns.size]] for label, p in sets.items() if np.asarray(p).size}
    labels = " / ".join(["all", *picked])
    cells = " / ".join([turns_cell(turns), *(turns_cell(t) for t in picked.values())])
    return [(f"assistant turns per sample: {labels}", cells)]


def data_turns(meta: Mapping[str, Any]) -> np.ndarray | None:
    """The assistant turns of every record of the data a selection was made from (its
    ``meta``), or ``None`` when that data is no longer where it was."""
    from pathlib import Path

    from iterit.data import load

    data = meta.get("data")
    # Alpaca records are one turn each: no turns row, so the data file need not be read again.
    if not data or meta.get("format") == "alpaca" or not Path(data).exists():
        return None
    try:
        loaded = load(data, format=meta.get("format", "auto"), fields=meta.get("fields"))
    except (ValueError, OSError):
        return None
    turns = assistant_turns(loaded.samples)
    n = meta.get("n_records")
    return turns if n is None or int(n) == turns.size else None
