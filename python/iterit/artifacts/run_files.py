"""The files of a training run folder: the selection log (one JSON line per epoch), the run
summary and the resolved training configuration.  Their names come from
:mod:`iterit.artifacts.names`; every write is atomic and replaces the previous file (a resumed
run rewrites its log to match its restored state)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from iterit.artifacts.names import SELECTION_LOG, SELECTION_SUMMARY, TRAIN_CONFIG
from iterit.data.files import read_jsonl_records
from iterit.errors import DataError
from iterit.utils.atomic import atomic_write_text

__all__ = [
    "read_selection_log",
    "read_summary",
    "read_train_config",
    "selection_log_path",
    "summary_path",
    "train_config_path",
    "write_selection_log",
    "write_summary",
    "write_train_config",
]

PathLike = str | os.PathLike[str]


def selection_log_path(run_dir: PathLike) -> Path:
    return Path(run_dir) / SELECTION_LOG


def summary_path(run_dir: PathLike) -> Path:
    return Path(run_dir) / SELECTION_SUMMARY


def train_config_path(run_dir: PathLike) -> Path:
    return Path(run_dir) / TRAIN_CONFIG


def write_selection_log(path: PathLike, records: Iterable[Mapping[str, Any]]) -> None:
    """One JSON line per epoch record, in the given order."""
    text = "".join(json.dumps(dict(r)) + "\n" for r in records)
    atomic_write_text(Path(path), text, overwrite=True)


def read_selection_log(path: PathLike) -> list[dict[str, Any]]:
    """The epoch records of a selection log, in file order (blank lines skipped); a line that
    is not a JSON object raises :class:`DataError` naming the file and line."""
    path = Path(path)
    records, _ = read_jsonl_records(path, path.read_text(encoding="utf-8"))
    return records


def _write_json(path: PathLike, obj: Mapping[str, Any]) -> None:
    atomic_write_text(Path(path), json.dumps(obj, indent=2, default=str) + "\n", overwrite=True)


def _read_json(path: PathLike) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"not a JSON file ({e.msg})", path=path, line=e.lineno) from None


def write_summary(path: PathLike, summary: Mapping[str, Any]) -> None:
    """The run summary: per-epoch timings and the scoring and training counts."""
    _write_json(path, summary)


def read_summary(path: PathLike) -> dict[str, Any]:
    return _read_json(path)


def write_train_config(path: PathLike, config: Mapping[str, Any]) -> None:
    """The resolved training configuration with the run's derived counts."""
    _write_json(path, config)


def read_train_config(path: PathLike) -> dict[str, Any]:
    return _read_json(path)
