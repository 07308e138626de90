"""Writing records back in the input's file type (or the one the output's extension names),
always atomically: a reader sees the old file, no file, or the whole new file."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from iterit.data.files import import_pyarrow
from iterit.errors import DataError
from iterit.utils.atomic import atomic_dir, atomic_open, atomic_path
from iterit.utils.optional import require
from iterit.utils.progress import progress as iter_progress

if TYPE_CHECKING:  # pragma: no cover
    from iterit.data.readers import LoadedData

__all__ = [
    "parquet_table",
    "write_hf",
    "write_json_records",
    "write_parquet",
    "write_parquet_table",
]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    return str(value)


#: Fewer records than this are written without a progress bar.
PROGRESS_MIN_RECORDS = 100_000


def write_json_records(
    records: Sequence[dict[str, Any]],
    out: Path,
    *,
    kind: str,
    overwrite: bool,
    progress: bool = False,
) -> Path:
    """``records`` as JSON Lines (``kind="jsonl"``) or a JSON array, gzipped when ``out`` ends
    in ``.gz``; values JSON lacks (numpy scalars, dates, bytes) are converted.  ``progress``: a
    bar while many JSON Lines records are written."""
    gz = out.suffix.lower() == ".gz"
    with atomic_open(out, "wb", overwrite=overwrite) as raw:
        fh: Any = gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) if gz else raw
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="\n")
        if kind == "jsonl":
            shown = progress and len(records) >= PROGRESS_MIN_RECORDS
            for rec in iter_progress(records, desc="writing", enabled=shown, unit="rec"):
                text.write(json.dumps(rec, ensure_ascii=False, default=_json_default))
                text.write("\n")
        else:
            json.dump(records, text, ensure_ascii=False, indent=2, default=_json_default)
            text.write("\n")
        text.flush()
        text.detach()
        if gz:
            fh.close()
    return out


def parquet_table(records: list[dict[str, Any]], out: Path) -> Any:
    """``records`` as an Arrow table for ``out``; a :class:`DataError` naming ``out`` when
    their values do not make one."""
    pa, _ = import_pyarrow(out)
    try:
        return pa.Table.from_pylist(records)
    except (pa.ArrowException, TypeError, ValueError) as e:
        raise DataError(f"cannot write these records as parquet: {e}", path=out) from e


def write_parquet_table(table: Any, out: Path, *, overwrite: bool) -> Path:
    """An Arrow table written to ``out`` as parquet, atomically."""
    _, pq = import_pyarrow(out)
    with atomic_path(out, overwrite=overwrite) as tmp:
        pq.write_table(table, tmp)
    return out


def write_parquet(data: LoadedData, idx: np.ndarray, out: Path, *, overwrite: bool) -> Path:
    """The records at ``idx`` as parquet, keeping the input table's schema when it has one."""
    pa, _ = import_pyarrow(out)
    if data._table is not None:
        table = data._table.take(pa.array(idx, type=pa.int64()))
    elif data._hf is not None:
        table = data._hf.select(idx.tolist()).flatten_indices().data.table
    else:
        table = parquet_table(data.records(idx), out)
    return write_parquet_table(table, out, overwrite=overwrite)


def write_hf(data: LoadedData, idx: np.ndarray, out: Path, *, overwrite: bool) -> Path:
    """The records at ``idx`` as a dataset folder (``Dataset.save_to_disk``)."""
    datasets = require("datasets", "cli", f"writing a saved dataset ({out})")
    ds = data._hf.select(idx.tolist()) if data._hf is not None else None
    if ds is None:
        ds = datasets.Dataset.from_list(data.records(idx))
    with atomic_dir(out, overwrite=overwrite) as tmp:
        ds.save_to_disk(str(tmp))
    return out
