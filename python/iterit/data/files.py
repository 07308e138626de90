"""File types: which reader a path needs, the JSON Lines loop, and the optional pyarrow import.

File types (by extension, else by content): JSON arrays (``.json``), JSON Lines (``.jsonl``,
``.ndjson``), either optionally gzipped (``.gz``), parquet (``.parquet``, ``.pq``) and Hugging
Face datasets saved to disk with ``Dataset.save_to_disk`` (a folder).
"""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path
from typing import Any

from iterit.data.formats import json_type
from iterit.errors import DataError
from iterit.utils.optional import require

__all__ = [
    "FILE_TYPES",
    "detect_file_type",
    "import_pyarrow",
    "open_bytes",
    "output_file_type",
    "read_jsonl_records",
    "strip_gz",
]

FILE_TYPES = ("json", "jsonl", "parquet", "hf")

_SUFFIXES = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def strip_gz(path: Path) -> tuple[Path, bool]:
    """``path`` without a ``.gz`` suffix, and whether it had one."""
    if path.suffix.lower() == ".gz":
        return path.with_suffix(""), True
    return path, False


def open_bytes(path: Path) -> io.BufferedIOBase:
    """``path`` opened for reading bytes, decompressed when it ends in ``.gz``."""
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def detect_file_type(path: str | os.PathLike[str]) -> str:
    """``json``, ``jsonl``, ``parquet`` or ``hf`` (a dataset folder), from the name or content."""
    path = Path(path)
    if path.is_dir():
        return "hf"
    base, _gz = strip_gz(path)
    kind = _SUFFIXES.get(base.suffix.lower())
    if kind is not None:
        return kind
    # Sniff the content.
    try:
        with open_bytes(path) as fh:
            head = fh.read(4096)
    except OSError as e:
        raise DataError(f"cannot read the file: {e.strerror or e}", path=path) from None
    if head[:4] == b"PAR1":
        return "parquet"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] == b"[":
        return "json"
    if text[:1] == b"{":
        return "jsonl"
    if not text:
        raise DataError("the file is empty (no records)", path=path)
    raise DataError(
        "cannot tell the file type; expected .json (array), .jsonl, .parquet or a folder "
        "saved with datasets' save_to_disk",
        path=path,
    )


def output_file_type(out: str | os.PathLike[str], input_type: str) -> str:
    """The file type to write ``out`` in: its extension's, else the input's."""
    base, _gz = strip_gz(Path(out))
    return _SUFFIXES.get(base.suffix.lower(), input_type)


def read_jsonl_records(
    path: Path, text: str, *, error: type[DataError] = DataError
) -> tuple[list[dict[str, Any]], list[int]]:
    """The JSON objects of a JSON Lines text and the 1-based line of each; blank lines are
    skipped.  A line that is not a JSON object raises ``error`` naming the file and line."""
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    # Split on "\n" only: str.splitlines would also split inside strings holding U+0085 or
    # U+2028, which JSON writes unescaped.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise error(
                f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=lineno
            ) from None
        if not isinstance(rec, dict):
            raise error(
                f"expected a JSON object per line, got {json_type(rec)}",
                path=path,
                record=len(records),
                line=lineno,
            )
        records.append(rec)
        lines.append(lineno)
    return records, lines


def import_pyarrow(path: str | os.PathLike[str] | None = None) -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, or a :class:`MissingDependencyError` naming ``path``
    that says how to install them."""
    purpose = "reading or writing parquet" + ("" if path is None else f" ({path})")
    return require("pyarrow", "cli", purpose), require("pyarrow.parquet", "cli", purpose)
