"""The files of ``iterit compare``: the comparison table (one row per arm, seed, epoch and
evaluation set, columns :data:`COMPARE_COLUMNS` first) as CSV and as JSON with the per-arm
compute and the summary over seeds, and each arm's :class:`ArmSummary` (``compare_arm.json`` in
the arm's seed folder)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from iterit.errors import DataError
from iterit.utils.atomic import atomic_open

__all__ = [
    "COMPARE_COLUMNS",
    "ArmSummary",
    "read_arm_summary",
    "read_compare_json",
    "write_arm_summary",
    "write_compare_csv",
    "write_compare_json",
]

#: The columns every comparison row has, in order (more may follow).
COMPARE_COLUMNS = ("arm", "seed", "epoch", "eval", "nll", "n_tokens")


@dataclass(kw_only=True)
class ArmSummary:
    """One arm of a comparison with one seed: its selection settings, its wall time by phase
    (seconds; the shared epoch-0 scoring counted in ``scoring_seconds`` of the arms that use
    it), its forward tokens by phase and its evaluation rows (one per epoch and evaluation set,
    with the per-record NLLs)."""

    arm: str
    seed: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    epoch0_scoring_seconds: float = 0.0
    scoring_seconds: float = 0.0
    selecting_seconds: float = 0.0
    evaluating_seconds: float = 0.0
    training_seconds: float = 0.0
    scoring_forward_tokens: int = 0
    training_forward_tokens: int = 0
    evaluating_forward_tokens: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)

    def compute(self) -> dict[str, float]:
        """The time and forward tokens by phase (every field but the arm, settings and rows)."""
        out = asdict(self)
        for name in ("arm", "seed", "settings", "rows"):
            out.pop(name)
        return out

    def to_json(self, *, rows: bool = True) -> dict[str, Any]:
        """The JSON object (``rows=False``: without the evaluation rows, as ``compare.json``
        lists the arms)."""
        out = asdict(self)
        if not rows:
            out.pop("rows")
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ArmSummary:
        try:
            return cls(**obj)
        except TypeError as e:
            raise DataError(f"not an arm summary ({e})") from None


def write_arm_summary(path: Path, summary: ArmSummary) -> Path:
    with atomic_open(path, "w", overwrite=True) as f:
        json.dump(summary.to_json(), f, indent=1, default=str)
    return Path(path)


def read_arm_summary(path: Path) -> ArmSummary:
    try:
        return ArmSummary.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    except json.JSONDecodeError as e:
        raise DataError(f"not a JSON file ({e.msg})", path=path, line=e.lineno) from None
    except DataError as e:
        raise DataError(str(e), path=path) from None


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
    path: Path,
    rows: Sequence[Mapping[str, Any]],
    arms: Mapping[str, ArmSummary],
    settings: Any,
    summary: Mapping[str, Any] | None = None,
) -> Path:
    """``{"rows": [...], "arms": {arm: compute and timings}, "settings": {...}, "summary":
    {...}}`` (``summary``: mean NLL per arm and epoch with intervals, paired differences)."""
    doc = {
        "rows": [{k: _clean(v) for k, v in r.items()} for r in rows],
        "arms": {name: s.to_json(rows=False) for name, s in arms.items()},
        "settings": settings,
        "summary": dict(summary or {}),
    }
    with atomic_open(path, "w", overwrite=True) as f:
        json.dump(doc, f, indent=1, default=str)
        f.write("\n")
    return Path(path)


def read_compare_json(path: Path) -> dict[str, Any]:
    with Path(path).open(encoding="utf-8") as f:
        return json.load(f)
