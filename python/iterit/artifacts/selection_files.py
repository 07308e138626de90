"""The files of a selection ``OUT`` written by ``iterit select``: beside the selected records,
``OUT.scores.jsonl`` (one JSON row per input record: index, rank, status and scores) and
``OUT.meta.json`` (settings and counts).  Names come from
:func:`iterit.artifacts.names.selection_sidecars`."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from iterit.artifacts.names import selection_sidecars
from iterit.errors import DataError
from iterit.utils.atomic import atomic_open

__all__ = [
    "read_selection_meta",
    "read_selection_rows",
    "selection_base",
    "write_selection_files",
]

PathLike = str | os.PathLike[str]
SIDECAR_SUFFIXES = (".scores.jsonl", ".meta.json")


def selection_base(path: PathLike) -> Path:
    """The selection ``OUT`` that ``path`` (``OUT`` itself or one of its sidecars) belongs to."""
    path = Path(path)
    for suffix in SIDECAR_SUFFIXES:
        if path.name.endswith(suffix):
            return path.with_name(path.name[: -len(suffix)])
    return path


def write_selection_files(
    out: PathLike,
    rows: Iterable[Mapping[str, Any]],
    meta: Mapping[str, Any],
    write_records: Callable[[], None],
    *,
    overwrite: bool = False,
) -> None:
    """Write ``OUT.scores.jsonl`` (``rows``), ``OUT.meta.json`` (``meta``), then the records
    (``write_records`` writes ``OUT``).  Each file is atomic; when any of them fails or is
    interrupted, the ones already written are removed too, so no incomplete set is left
    behind.  The records come last: when ``OUT`` exists, its sidecars are complete."""
    scores_path, meta_path = selection_sidecars(Path(out))
    written: list[Path] = []
    try:
        with atomic_open(scores_path, "w", overwrite=overwrite) as f:
            for row in rows:
                f.write(json.dumps(dict(row)))
                f.write("\n")
        written.append(scores_path)
        with atomic_open(meta_path, "w", overwrite=overwrite) as f:
            json.dump(dict(meta), f, indent=2)
            f.write("\n")
        written.append(meta_path)
        write_records()
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise


def read_selection_meta(out: PathLike) -> dict[str, Any]:
    """The settings and counts of the selection ``OUT`` (from ``OUT.meta.json``)."""
    _, meta_path = selection_sidecars(Path(out))
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"not a JSON file ({e.msg})", path=meta_path, line=e.lineno) from None
    if not isinstance(meta, dict):
        raise DataError("not a JSON object", path=meta_path)
    return meta


def read_selection_rows(out: PathLike) -> list[dict[str, Any]]:
    """The per-record rows of the selection ``OUT`` (from ``OUT.scores.jsonl``)."""
    scores_path, _ = selection_sidecars(Path(out))
    rows = []
    for line_no, line in enumerate(scores_path.read_text(encoding="utf-8").split("\n"), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(f"invalid JSON: {e.msg}", path=scores_path, line=line_no) from None
    return rows
