"""The files of a selection ``OUT`` written by ``iterit select``: beside the selected records,
``OUT.scores.jsonl`` (one JSON row per input record: index, rank, status and scores) and
``OUT.meta.json`` (settings and counts).  Names come from
:func:`iterit.artifacts.names.selection_sidecars`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from iterit.artifacts.names import (
    SELECTION_SIDECAR_SUFFIXES,
    selection_run_file,
    selection_sidecars,
)
from iterit.errors import DataError
from iterit.utils.atomic import atomic_set

__all__ = [
    "read_selection_meta",
    "read_selection_rows",
    "selection_base",
    "write_selection_files",
]


def selection_base(path: str | os.PathLike[str]) -> Path:
    """The selection ``OUT`` that ``path`` (``OUT`` itself or one of its sidecars) belongs to."""
    path = Path(path)
    for suffix in SELECTION_SIDECAR_SUFFIXES:
        if path.name.endswith(suffix):
            return path.with_name(path.name[: -len(suffix)])
    return path


def write_selection_files(
    out: str | os.PathLike[str],
    rows: Iterable[Mapping[str, Any]],
    meta: Mapping[str, Any],
    write_records: Callable[[Path], None],
    *,
    overwrite: bool = False,
    records_folder: bool = False,
    run: Mapping[str, Any] | None = None,
) -> None:
    """Write the selection ``OUT`` as one transaction: the records (``write_records(path)``
    writes them to the temporary ``path`` it is given), ``OUT.scores.jsonl`` (``rows``) and
    ``OUT.meta.json`` (``meta``) are all written and synced, then moved into place together
    (:func:`iterit.utils.atomic.atomic_set`).  On any failure or signal the previous selection
    is left whole, all three files, and nothing partial remains; a second writer to the same
    ``OUT`` meanwhile fails instead of mixing its files with these.

    ``run``: what depends on the run rather than the inputs (command line, timings), written to
    ``OUT.run.json`` in the same transaction, so the other files are reproducible byte for byte.

    ``records_folder``: the records are a folder (a saved dataset), written by
    ``write_records(OUT)`` itself (atomically) just before the sidecars are moved into place."""
    scores_path, meta_path = selection_sidecars(Path(out))
    paths = [scores_path, meta_path, selection_run_file(Path(out))]
    if not records_folder:
        paths.insert(0, Path(out))
    with atomic_set(paths, overwrite=overwrite) as tmps:
        if not records_folder:
            write_records(tmps.pop(0))
        tmp_scores, tmp_meta, tmp_run = tmps
        with open(tmp_scores, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(dict(row)))
                f.write("\n")
        with open(tmp_meta, "w", encoding="utf-8") as f:
            json.dump(dict(meta), f, indent=2)
            f.write("\n")
        with open(tmp_run, "w", encoding="utf-8") as f:
            json.dump(dict(run or {}), f, indent=2)
            f.write("\n")
        if records_folder:
            write_records(Path(out))


def read_selection_meta(out: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings and counts of the selection ``OUT`` (from ``OUT.meta.json``)."""
    _, meta_path = selection_sidecars(Path(out))
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"not a JSON file ({e.msg})", path=meta_path, line=e.lineno) from None
    if not isinstance(meta, dict):
        raise DataError("not a JSON object", path=meta_path)
    return meta


def read_selection_rows(out: str | os.PathLike[str]) -> list[dict[str, Any]]:
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
