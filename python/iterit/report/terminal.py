"""Plain-text tables for the terminal: the summary of ``iterit select`` and of a report.
Functions return text; printing is the command line's job."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from iterit.artifacts.names import selection_run_file, selection_sidecars
from iterit.report.model import Report, selection_rows, settings_rows
from iterit.report.turns import assistant_turns, turn_row
from iterit.selection.strategies import response_words

__all__ = ["format_table", "selection_summary", "terminal_summary"]


def format_table(
    rows: Sequence[Sequence[Any]], *, headers: Sequence[str] | None = None, title: str | None = None
) -> str:
    """A plain-text table with aligned columns (numbers right-aligned)."""
    cells = [[str(c) for c in row] for row in rows]
    if headers is not None:
        cells = [[str(h) for h in headers], *cells]
    if not cells:
        return title or ""
    width = max(len(r) for r in cells)
    cells = [r + [""] * (width - len(r)) for r in cells]
    sizes = [max(len(r[j]) for r in cells) for j in range(width)]

    def numeric(s: str) -> bool:
        return bool(re.fullmatch(r"[-+]?[\d.,]+(e[-+]?\d+)?( ?%| s)?", s))

    lines = []
    for k, row in enumerate(cells):
        parts = []
        for j, c in enumerate(row):
            right = headers is not None and k > 0 and j > 0 and numeric(c)
            parts.append(c.rjust(sizes[j]) if right else c.ljust(sizes[j]))
        lines.append("  ".join(parts).rstrip())
        if headers is not None and k == 0:
            lines.append("  ".join("-" * s for s in sizes))
    if title:
        rule = "=" * max(len(title), max(len(x) for x in lines))
        lines = [title, rule, *lines]
    return "\n".join(lines)


def selection_summary(
    meta: dict[str, Any], loaded: Any, selection: Any, scores: dict[str, np.ndarray] | None
) -> str:
    """The summary table of a finished ``iterit select``, as text: ``meta`` is what
    :func:`iterit.workflows.select.select_dataset` wrote, ``selection`` its selection."""
    words = response_words(loaded.samples)
    ifd = None if not scores else scores.get("ifd")
    rows = selection_rows(meta, ifd, words, selection.indices)
    rows += turn_row(assistant_turns(loaded.samples), {"selected": selection.indices})
    rows += settings_rows(meta)
    t = meta.get("total_seconds")
    if t is not None:
        rows.append(("time", f"{t:.1f} s (scoring {meta.get('score_seconds', 0.0):.1f} s)"))
    rows.append(("written", written_line(str(meta.get("output")))))
    return format_table(rows, title=f"iterit select: {meta.get('data')}")


def written_line(out: str) -> str:
    """``OUT (+ OUT.scores.jsonl, ...)``: the selection and every file written beside it."""
    path = Path(out)
    beside = [p.name for p in (*selection_sidecars(path), selection_run_file(path))]
    return f"{out} (+ {', '.join(beside)})"


def terminal_summary(rep: Report) -> str:
    """The report's summary (and epoch table) as plain text."""
    text = format_table(rep.summary, title=rep.title)
    if rep.epochs:
        text += "\n\n" + format_table(rep.epochs, headers=rep.epoch_headers)
    return text
