"""``iterit select`` on a file's Arrow columns (docs/design.md, "Scale"): the selection reads
only the text fields it needs into Arrow (:mod:`iterit.data.columns`) and writes the picked
records by position, without a Python object per record, whenever nothing it was asked for needs
the records themselves. :func:`iterit.workflows.select.select_dataset` takes the columns in
place of the loaded records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from iterit.config import SelectionConfig
from iterit.data.columns import ColumnarData, read_columns

__all__ = ["columns_for_selection"]


def columns_for_selection(
    path: Path,
    selection: SelectionConfig,
    *,
    data_format: str,
    fields: dict[str, Any] | None,
    split: str | None,
    complexity_kind: str,
    ifd: bool,
) -> ColumnarData | None:
    """``path``'s Arrow columns when ``selection`` can run on them, else ``None`` (load the
    records). It cannot when IFD is read or scored (per record, from the samples), when the
    complexity is a field of the records, when diversity is measured on more than the response,
    or for what :func:`~iterit.data.columns.read_columns` leaves to the record path (another
    file type or format, a split, an explicit format, bad values: those the record path
    reports)."""
    if ifd or split is not None or data_format != "auto" or complexity_kind.startswith("column:"):
        return None
    if selection.strategy == "iterit" and selection.diversity not in ("response", "none"):
        return None
    return read_columns(path, fields)
