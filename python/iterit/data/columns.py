"""Large JSON Lines and parquet files as Arrow columns: only the fields a selection reads, and
the picked records written back by position (docs/design.md, "Scale").

:func:`read_columns` reads the text fields of an ``alpaca`` or ``prompt-completion`` file (the
format detected from its first record, as :func:`iterit.data.load` does) with pyarrow's JSON or
parquet reader: no Python object per record. It answers ``None`` wherever the record path of
:mod:`iterit.data.readers` must decide instead: another file type or format, a null or a value
of another type, a line that is not JSON. That path then reads the file and, for bad input,
raises the usual :class:`~iterit.errors.DataError` naming the file, line and field; so this one
never judges input on its own and cannot disagree with it.

:func:`write_picked` writes the records at given positions: for JSON Lines, only the picked
lines are parsed, and written as :meth:`iterit.data.LoadedData.write` writes them (the same
bytes); for parquet, the input table's rows are taken (the same table).
"""

from __future__ import annotations

import functools
import json
import mmap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iterit.data.files import detect_file_type, import_pyarrow, output_file_type
from iterit.data.formats import detect_format
from iterit.data.writers import parquet_table, write_json_records, write_parquet_table
from iterit.errors import DataError
from iterit.utils.atomic import check_output

__all__ = ["ColumnarData", "read_columns", "write_picked"]

#: The text fields each supported format reads, by role; the response is the last.
_ROLES = {
    "alpaca": ("instruction", "input", "output"),
    "prompt-completion": ("prompt", "completion"),
}
#: Roles that may be missing or null (an absent ``input``); any other null goes to the record
#: path, which names it.
_OPTIONAL = frozenset({"input"})
#: Bytes of a line the record path skips as blank (``not line.strip()``) that JSON readers also
#: skip or reject: ASCII whitespace as ``str.isspace`` defines it.
_BLANK_BYTES = np.frombuffer(b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f", dtype=np.uint8)
#: Bytes scanned at a time when lines are located.
_BLOCK = 1 << 23


@functools.lru_cache(maxsize=1)
def _python_space() -> str:
    """Every character ``str.isspace`` accepts, as a regular expression class body (RE2's
    ``\\x{...}``, which Arrow's regular expressions read)."""
    return "".join(f"\\x{{{c:x}}}" for c in range(0x110000) if chr(c).isspace())


@dataclass
class ColumnarData:
    """The text fields of a file's records as Arrow columns (``columns[role]``, one value per
    record), and where each record's line starts and ends (JSON Lines)."""

    path: Path
    file_type: str
    format: str
    fields: dict[str, str]
    columns: dict[str, Any]
    n_records: int
    #: JSON Lines: record ``i`` is the line of bytes ``starts[i]:ends[i]``; ``None`` for parquet.
    starts: np.ndarray | None = None
    ends: np.ndarray | None = None
    _words: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return self.n_records

    @property
    def response(self) -> Any:
        """The response of every record (what diversity is measured on by default)."""
        return self.columns[_ROLES[self.format][-1]]

    @property
    def empty(self) -> np.ndarray:
        """Records whose response is empty or whitespace, as ``str.strip`` sees it: no word."""
        return self.response_words() == 0

    @property
    def samples(self) -> ColumnarData:
        """What the selection strategies take in place of a list of samples: these columns."""
        return self

    def response_chars(self) -> np.ndarray:
        """``len(response)`` (code points) of every record, as float64."""
        lengths = _compute().utf8_length(self.response)
        return np.asarray(lengths.to_numpy(zero_copy_only=False), dtype=np.float64)

    def write(
        self,
        indices: np.ndarray,
        out: str | Path,
        *,
        overwrite: bool = False,
        file_type: str | None = None,
        progress: bool = False,
    ) -> Path:
        """:func:`write_picked`, as :meth:`iterit.data.LoadedData.write` is called."""
        if file_type is not None and file_type != output_file_type(Path(out), self.file_type):
            raise DataError(f"cannot write {file_type} here", path=Path(out))
        return write_picked(self, indices, out, overwrite=overwrite, progress=progress)

    def response_words(self) -> np.ndarray:
        """``len(response.split())`` of every record (counted once: the strategies, the
        sidecar and the summary all ask; callers get a read-only array)."""
        if self._words is None:
            pc = _compute()
            words = pc.count_substring_regex(self.response, f"[^{_python_space()}]+")
            self._words = np.asarray(words.to_numpy(zero_copy_only=False), dtype=np.int64)
            self._words.flags.writeable = False
        return self._words


def _compute() -> Any:
    import_pyarrow()
    import pyarrow.compute as pc

    return pc


def _first_record(path: Path, file_type: str) -> Any:
    """The first record, for format detection (``None``: none, or not an object)."""
    if file_type == "parquet":
        _, pq = import_pyarrow(path)
        pf = pq.ParquetFile(path)
        if pf.metadata.num_rows == 0:
            return None
        return next(pf.iter_batches(batch_size=1)).to_pylist()[0]
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                try:
                    return json.loads(line.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    return None
    return None


def read_columns(path: str | Path, fields: dict[str, str] | None = None) -> ColumnarData | None:
    """The text fields of ``path``'s records as Arrow columns, or ``None`` where the record path
    must read the file (see the module documentation)."""
    path = Path(path)
    try:
        file_type = detect_file_type(path)
    except DataError:
        return None
    if file_type not in ("jsonl", "parquet"):
        return None
    first = _first_record(path, file_type)
    if not isinstance(first, dict):
        return None
    try:
        fmt, names = detect_format(first, fields)
    except DataError:
        return None
    if fmt not in _ROLES:
        return None
    roles = _ROLES[fmt]
    table = _read_table(path, file_type, [names[r] for r in roles])
    if table is None:
        return None
    columns = {role: table.column(names[role]) for role in roles}
    for role, column in columns.items():
        if role not in _OPTIONAL and column.null_count:
            return None
    data = ColumnarData(path, file_type, fmt, dict(names), columns, table.num_rows)
    if file_type == "jsonl":
        bounds = _record_lines(path)
        if bounds is None or len(bounds[0]) != table.num_rows:
            return None
        data.starts, data.ends = bounds
    return data


def _read_table(path: Path, file_type: str, names: list[str]) -> Any:
    """The named fields as large strings (absent fields: nulls), or ``None`` when pyarrow cannot
    read them so."""
    pa, pq = import_pyarrow(path)
    schema = pa.schema([(n, pa.large_string()) for n in dict.fromkeys(names)])
    try:
        if file_type == "parquet":
            stored = pq.ParquetFile(path).schema_arrow
            present = set(stored.names)
            text = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
            if any(not any(t(stored.field(n).type) for t in text) for n in present & set(names)):
                return None  # the record path names the field that is not text
            table = pq.read_table(path, columns=[n for n in schema.names if n in present])
            for n in schema.names:
                if n not in present:
                    table = table.append_column(n, pa.nulls(table.num_rows, pa.large_string()))
            return table.select(schema.names).cast(schema)
        import pyarrow.json as pj

        options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
        return pj.read_json(path, parse_options=options).select(schema.names)
    except (pa.ArrowException, ValueError, TypeError, OSError):
        return None


def _record_lines(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Start and end byte offsets of every non-blank line (the records, in order); ``None`` for
    a file starting with a byte-order mark (left to the record path)."""
    with open(path, "rb") as fh:
        if fh.seek(0, 2) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if mm[:3] == b"\xef\xbb\xbf":
                return None
            ends, filled_at = _scan_lines(mm)
    starts = np.concatenate([[0], ends[:-1] + 1])
    keep = np.diff(np.concatenate([[0], filled_at])) > 0
    return starts[keep], ends[keep]


def _scan_lines(buffer: Any) -> tuple[np.ndarray, np.ndarray]:
    """Where each line ends (its newline, or the end of the file) and how many non-blank bytes
    come before that point, a block at a time (no array as long as the file)."""
    size = len(buffer)
    newlines, filled = [], []
    total = 0
    for lo in range(0, size, _BLOCK):
        block = np.frombuffer(buffer, dtype=np.uint8, count=min(_BLOCK, size - lo), offset=lo)
        running = np.cumsum(~np.isin(block, _BLANK_BYTES), dtype=np.int64)
        at = np.flatnonzero(block == 10)
        newlines.append(at + lo)
        filled.append(running[at] + total)
        total += int(running[-1])
        del block  # a view of the map, which must be closed without one
    return np.concatenate([*newlines, [size]]), np.concatenate([*filled, [total]])


def write_picked(
    data: ColumnarData,
    indices: np.ndarray,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """The records at ``indices`` (in that order) written to ``out`` in ``data``'s file type,
    or the one ``out``'s extension names (JSON Lines, JSON or parquet), atomically;
    ``progress``: a bar while many JSON Lines records are written."""
    out = Path(out)
    idx = np.asarray(indices, dtype=np.int64)
    kind = output_file_type(out, data.file_type)
    check_output(out, overwrite=overwrite)
    if data.file_type == "parquet":
        pa, pq = import_pyarrow(out)
        picked = pq.read_table(data.path).take(pa.array(idx, type=pa.int64()))
        if kind == "parquet":
            return write_parquet_table(picked, out, overwrite=overwrite)
        records = picked.to_pylist()
    else:
        records = _picked_lines(data, idx)
        if kind == "parquet":
            return write_parquet_table(parquet_table(records, out), out, overwrite=overwrite)
    if kind not in ("jsonl", "json"):
        raise DataError(f"cannot write {kind} from a {data.file_type} file here", path=out)
    return write_json_records(records, out, kind=kind, overwrite=overwrite, progress=progress)


def _picked_lines(data: ColumnarData, idx: np.ndarray) -> list[dict[str, Any]]:
    """The records at ``idx``, each parsed from its own line only."""
    assert data.starts is not None and data.ends is not None
    with open(data.path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return [json.loads(mm[data.starts[i] : data.ends[i]].decode("utf-8")) for i in idx.tolist()]
