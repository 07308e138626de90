"""Finding and reading what a report shows: a training run's selection log and the data
file its configuration names.  Readers are lenient (a report reads logs of older runs too)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from iterit.artifacts import run_files
from iterit.artifacts.epoch_records import EpochRecord
from iterit.artifacts.names import RUN_LOG_NAMES
from iterit.errors import DataError

__all__ = ["find_run_data", "find_run_log", "read_selection_log"]


def read_selection_log(path: str | Path) -> list[EpochRecord]:
    """The per-epoch records of a training run's selection log, one per epoch (the last line
    wins when an epoch appears twice, as after a resume), sorted by epoch.  Unknown fields are
    ignored; lines without ``epoch`` and a ``picks`` list are skipped."""
    by_epoch: dict[int, EpochRecord] = {}
    objs, lines = run_files.read_selection_log_lines(path)
    for obj, line in zip(objs, lines, strict=True):
        if "epoch" in obj and isinstance(obj.get("picks"), list):
            try:
                rec = EpochRecord.from_json(obj)
            except DataError as e:
                raise DataError(str(e), path=path, line=line, field=e.field) from None
            by_epoch[rec.epoch] = rec
    if not by_epoch:
        raise DataError("no epoch records (lines with 'epoch' and 'picks')", path=path)
    return [by_epoch[e] for e in sorted(by_epoch)]


def find_run_log(folder: Path) -> Path | None:
    """The selection log of a training run folder, if there is one."""
    for name in RUN_LOG_NAMES:
        if (folder / name).is_file():
            return folder / name
    for path in sorted(folder.glob("*.jsonl")):
        try:
            with open(path, encoding="utf-8") as f:
                first = next((ln for ln in f if ln.strip()), "")
            rec = json.loads(first) if first else None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(rec, dict) and "epoch" in rec and "picks" in rec:
            return path
    return None


def find_run_data(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The data file a training run names in a JSON file of its folder (such as
    ``iterit_train_config.json``), with its ``data_format``/``fields``/``split``, if any."""
    keys = ("data", "data_path", "data_file", "train_file", "dataset")
    for path in sorted(folder.glob("*.json")):
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        stack = [obj]
        while stack:
            cur = stack.pop()
            if isinstance(cur, dict):
                for k in keys:
                    v = cur.get(k)
                    if isinstance(v, str) and v and Path(v).exists():
                        opts: dict[str, Any] = {}
                        fmt = cur.get("data_format") or cur.get("format")
                        if isinstance(fmt, str):
                            opts["format"] = fmt
                        if isinstance(cur.get("fields"), dict):
                            opts["fields"] = cur["fields"]
                        if isinstance(cur.get("split"), str):
                            opts["split"] = cur["split"]
                        return Path(v), opts
                stack.extend(v for v in cur.values() if isinstance(v, dict))
    return None
