"""Loading instruction-tuning data from files (see :mod:`iterit.data.files` for the file types
and :mod:`iterit.data.formats` for the record formats) as :class:`LoadedData`.

Every problem is a :class:`~iterit.errors.DataError` naming the file, record, line and field.
Empty responses are not an error: they are loaded, flagged in :attr:`LoadedData.empty` and kept
out of selection by the callers.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iterit.data.files import (
    FILE_TYPES,
    detect_file_type,
    import_pyarrow,
    open_bytes,
    output_file_type,
    read_jsonl_records,
)
from iterit.data.formats import json_type, samples_from_records
from iterit.data.sample import Sample
from iterit.data.writers import write_hf, write_json_records, write_parquet
from iterit.errors import ConfigError, DataError
from iterit.utils.atomic import check_output
from iterit.utils.optional import require
from iterit.utils.progress import progress_bar

__all__ = ["LoadedData", "load", "load_samples"]


#: Files smaller than this are read without a progress bar (it would only flash).
PROGRESS_MIN_BYTES = 16 << 20


def _read_bytes(fh: Any, path: Path, progress: bool) -> bytes:
    """The whole stream, in blocks, with a byte count bar for a large file (no total for a
    gzipped one: its text is longer than the file)."""
    size = path.stat().st_size
    shown = progress and size >= PROGRESS_MIN_BYTES
    total = None if path.suffix.lower() == ".gz" else size
    with progress_bar(desc="reading", total=total, enabled=shown, unit="B", scale=True) as bar:
        blocks = []
        for block in iter(lambda: fh.read(1 << 23), b""):
            blocks.append(block)
            bar.update(len(block))
    return b"".join(blocks)


def _read_text(path: Path, progress: bool = False) -> str:
    try:
        with open_bytes(path) as fh:
            raw = _read_bytes(fh, path, progress)
    except FileNotFoundError:
        raise DataError("no such file", path=path) from None
    except (OSError, EOFError, zlib.error) as e:  # zlib.error: damaged gzip data
        raise DataError(f"cannot read the file: {e}", path=path) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"not valid UTF-8 text (byte offset {e.start})", path=path, line=line
        ) from None


def _read_json(path: Path, text: str) -> tuple[list[Any], list[int] | None, str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data" and text.lstrip().startswith("{"):
            records, lines = read_jsonl_records(path, text)  # JSON Lines in a .json file
            return records, lines, "jsonl"
        raise DataError(
            f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=e.lineno
        ) from None
    if isinstance(value, dict):
        return [value], None, "jsonl"  # a single record: a one-line JSON Lines file
    if not isinstance(value, list):
        raise DataError(f"expected a JSON array of records, got {json_type(value)}", path=path)
    for i, rec in enumerate(value):
        if not isinstance(rec, dict):
            raise DataError(f"expected a JSON object, got {json_type(rec)}", path=path, record=i)
    return value, None, "json"


def _sample_record(s: Sample) -> dict[str, Any]:
    return {"instruction": s.instruction, "input": s.input, "output": s.response}


@dataclass
class LoadedData:
    """Records read from one file, normalised to samples, able to write a subset back in the
    file's own format.  ``samples[i]`` is record ``i``; indices are 0-based."""

    samples: list[Sample]
    format: str
    fields: dict[str, str]
    file_type: str
    path: Path | None = None
    lines: list[int] | None = None
    _records: list[dict[str, Any]] | None = field(default=None, repr=False)
    _table: Any = field(default=None, repr=False)  # pyarrow.Table (parquet)
    _hf: Any = field(default=None, repr=False)  # datasets.Dataset (saved to disk)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]

    @property
    def empty(self) -> np.ndarray:
        """Boolean mask of records whose response is empty or whitespace (never selected)."""
        return np.fromiter((not s.response.strip() for s in self.samples), bool, len(self.samples))

    @property
    def n_empty(self) -> int:
        """The number of records whose response is empty (never selected)."""
        return int(self.empty.sum())

    def records(self, indices: Sequence[int] | np.ndarray | None = None) -> list[dict[str, Any]]:
        """The original records (all, or the given indices in that order)."""
        if self._records is None:
            if self._table is not None:
                self._records = self._table.to_pylist()
            elif self._hf is not None:
                self._records = self._hf.to_list()
            else:
                self._records = [_sample_record(s) for s in self.samples]
        if indices is None:
            return list(self._records)
        return [self._records[int(i)] for i in indices]

    def write(
        self,
        indices: Sequence[int] | np.ndarray,
        out: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        file_type: str | None = None,
        progress: bool = False,
    ) -> Path:
        """Write the records at ``indices`` (in that order) to ``out``, atomically, in the
        input's file type unless ``out``'s extension (or ``file_type``) names another.
        ``progress``: a bar while many JSON Lines records are written."""
        out = Path(out)
        kind = file_type or output_file_type(out, self.file_type)
        idx = np.asarray(indices, dtype=np.int64)
        if kind == "hf":
            return write_hf(self, idx, out, overwrite=overwrite)
        check_output(out, overwrite=overwrite)
        if kind == "parquet":
            return write_parquet(self, idx, out, overwrite=overwrite)
        return write_json_records(
            self.records(idx), out, kind=kind, overwrite=overwrite, progress=progress
        )


def _load_hf(path: Path, split: str | None) -> Any:
    datasets = require("datasets", "cli", f"reading the dataset saved in the folder {path}")
    if not (path / "dataset_info.json").exists() and not (path / "dataset_dict.json").exists():
        raise DataError(
            "is a folder but not a dataset saved with save_to_disk (no dataset_info.json or "
            "dataset_dict.json)",
            path=path,
        )
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:
        raise DataError(f"cannot load the saved dataset: {e}", path=path) from None
    if isinstance(ds, datasets.DatasetDict):
        names = list(ds)
        if split is None:
            if "train" in ds:
                split = "train"
            elif len(names) == 1:
                split = names[0]
            else:
                raise DataError(
                    f"holds several splits ({', '.join(names)}); choose one (split)", path=path
                )
        if split not in ds:
            raise DataError(f"has no split {split!r} (splits: {', '.join(names)})", path=path)
        ds = ds[split]
    return ds


@dataclass
class _RawFile:
    """What a file holds before its records become samples."""

    records: list[dict[str, Any]]
    kind: str
    lines: list[int] | None = None
    table: Any = None
    hf: Any = None


def _read_file(path: Path, kind: str, split: str | None, progress: bool = False) -> _RawFile:
    if kind in ("json", "jsonl"):
        text = _read_text(path, progress)
        if not text.strip():
            raise DataError("the file is empty (no records)", path=path)
        if kind == "jsonl":
            records, lines = read_jsonl_records(path, text)
            return _RawFile(records, kind, lines)
        records, lines, kind = _read_json(path, text)
        return _RawFile(records, kind, lines)
    if kind == "parquet":
        pa, pq = import_pyarrow(path)
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"cannot read as parquet: {e}", path=path) from None
        return _RawFile(table.to_pylist(), kind, table=table)
    hf = _load_hf(path, split)
    return _RawFile(hf.to_list(), kind, hf=hf)


def load(
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    fields: Mapping[str, str] | Iterable[str] | None = None,
    file_type: str | None = None,
    split: str | None = None,
    progress: bool = False,
) -> LoadedData:
    """Read ``path`` and normalise every record (file types: :mod:`iterit.data.files`; record
    formats and ``fields``: :mod:`iterit.data.formats`; ``split``: the split of a saved
    ``DatasetDict``, default ``train`` or its only split).  ``progress``: a bar while a large
    JSON or JSON Lines file is read."""
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or folder", path=path)
    kind = file_type or detect_file_type(path)
    if kind not in FILE_TYPES:
        raise ConfigError(f"unknown file type {kind!r} (expected one of: {', '.join(FILE_TYPES)})")
    raw = _read_file(path, kind, split, progress)
    if not raw.records:
        raise DataError("the file is empty (no records)", path=path)
    samples, fmt, f = samples_from_records(
        raw.records, format=format, fields=fields, source=path, lines=raw.lines
    )
    data = LoadedData(samples, fmt, f, raw.kind, path, raw.lines, _table=raw.table, _hf=raw.hf)
    if raw.kind in ("json", "jsonl"):
        data._records = raw.records
    return data


def load_samples(path: str | os.PathLike[str], **kwargs: Any) -> list[Sample]:
    """Shortcut: ``load(path, **kwargs).samples``."""
    return load(path, **kwargs).samples
