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

from iterit.artifacts.epoch_records import EpochRecord, RunSummary
from iterit.artifacts.names import SELECTION_LOG, SELECTION_SUMMARY, TRAIN_CONFIG
from iterit.data.files import read_jsonl_records
from iterit.errors import DataError
from iterit.utils.atomic import atomic_write_text

__all__ = [
    "read_selection_log",
    "read_selection_log_lines",
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


def write_selection_log(path: PathLike, records: Iterable[EpochRecord]) -> None:
    """One JSON line per epoch record, in the given order."""
    text = "".join(json.dumps(r.to_json()) + "\n" for r in records)
    atomic_write_text(Path(path), text, overwrite=True)


def read_selection_log_lines(path: PathLike) -> tuple[list[dict[str, Any]], list[int]]:
    """The JSON objects of a selection log and their line numbers, in file order (blank lines
    skipped); a line that is not a JSON object raises :class:`DataError` naming the file and
    line."""
    path = Path(path)
    return read_jsonl_records(path, _read_text(path))


def read_selection_log(path: PathLike) -> list[EpochRecord]:
    """The epoch records of a selection log, in file order (blank lines skipped); a line that
    is not an epoch record raises :class:`DataError` naming the file and line."""
    objs, lines = read_selection_log_lines(path)
    records = []
    for obj, line in zip(objs, lines, strict=True):
        try:
            records.append(EpochRecord.from_json(obj))
        except DataError as e:
            raise DataError(str(e), path=path, line=line, field=e.field) from None
    return records


def _write_json(path: PathLike, obj: Mapping[str, Any]) -> None:
    atomic_write_text(Path(path), json.dumps(obj, indent=2, default=str) + "\n", overwrite=True)


def _read_text(path: PathLike) -> str:
    """A run file's text; one not in UTF-8 is a DataError naming the file and the byte."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text (byte {e.start})", path=path) from None


def _read_json(path: PathLike) -> dict[str, Any]:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise DataError(f"not a JSON file ({e.msg})", path=path, line=e.lineno) from None


def write_summary(path: PathLike, summary: RunSummary) -> None:
    """The run summary: per-epoch timings and the scoring and training counts."""
    _write_json(path, summary.to_json())


def read_summary(path: PathLike) -> RunSummary:
    obj = _read_json(path)  # its errors name the file already
    try:
        return RunSummary.from_json(obj)
    except DataError as e:
        raise DataError(str(e), path=path, field=e.field) from None


def write_train_config(path: PathLike, config: Mapping[str, Any]) -> None:
    """The resolved training configuration with the run's derived counts."""
    _write_json(path, config)


def read_train_config(path: PathLike) -> dict[str, Any]:
    return _read_json(path)
