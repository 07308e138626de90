"""The comparison table of ``iterit compare``: one row per arm, epoch and evaluation set
(columns :data:`COMPARE_COLUMNS` first), as CSV and as JSON with the per-arm compute."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from iterit.utils.atomic import atomic_open

__all__ = ["COMPARE_COLUMNS", "read_compare_json", "write_compare_csv", "write_compare_json"]

#: The columns every comparison row has, in order (more may follow).
COMPARE_COLUMNS = ("arm", "epoch", "eval", "nll", "n_tokens")


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def write_compare_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """The rows as CSV: :data:`COMPARE_COLUMNS`, then any further keys in first-seen order."""
    names = list(COMPARE_COLUMNS)
    for row in rows:
        names += [k for k in row if k not in names]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if _clean(row.get(k)) is None else row.get(k) for k in names})
    with atomic_open(path, "w", overwrite=True) as f:
        f.write(buf.getvalue())
    return Path(path)


def write_compare_json(
    path: Path, rows: Sequence[Mapping[str, Any]], arms: Mapping[str, Any], settings: Any
) -> Path:
    """``{"rows": [...], "arms": {arm: compute and timings}, "settings": {...}}``."""
    doc = {
        "rows": [{k: _clean(v) for k, v in r.items()} for r in rows],
        "arms": arms,
        "settings": settings,
    }
    with atomic_open(path, "w", overwrite=True) as f:
        json.dump(doc, f, indent=1, default=str)
        f.write("\n")
    return Path(path)


def read_compare_json(path: Path) -> dict[str, Any]:
    with Path(path).open(encoding="utf-8") as f:
        return json.load(f)
