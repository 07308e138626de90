"""Scores files: one row per record (``index``, the scores, ``valid``, ``key``) as parquet,
JSON Lines, a JSON array or CSV, chosen by the file's extension.

``key`` is each sample's content key (:func:`iterit.data.keys.content_key`), so a scores file is
never applied to different data by mistake.  Every problem reading one is a
:class:`~iterit.errors.ScoresFileError` naming the file, row and column.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from iterit.data.candidates import IFD_MAX, candidate_mask
from iterit.data.files import import_pyarrow, read_jsonl_records
from iterit.data.keys import content_keys
from iterit.data.sample import Sample
from iterit.errors import MissingDependencyError, ScoresFileError
from iterit.utils.atomic import atomic_open, atomic_path

__all__ = [
    "MODEL_COLUMN",
    "OTHER_MODEL_HINT",
    "PARQUET_SUFFIXES",
    "SCORE_COLUMNS",
    "check_scores_model",
    "complexity_column",
    "complexity_kind",
    "ifd_columns",
    "read_scores",
    "read_table",
    "require_writable_format",
    "sample_keys",
    "scores_model",
    "write_table",
]

#: The columns of an IFD scores file, in order.
SCORE_COLUMNS = ("index", "ifd", "nll_cond", "nll_prior", "n_tokens", "valid", "key")
#: Extensions written and read as parquet (anything else: JSON Lines, ``.json``, ``.csv``).
PARQUET_SUFFIXES = (".parquet", ".pq")


def sample_keys(samples: Sequence[Sample]) -> list[str]:
    """The content key of each sample, stored with its scores."""
    return content_keys(samples)


def ifd_columns(
    scores: Mapping[str, np.ndarray],
    samples: Sequence[Sample],
    *,
    dtype: str | None = None,
    variant: str = "iterit",
    turns: str | None = None,
    ifd_turns: Sequence[Sequence[float]] | None = None,
    model_fingerprint: str | None = None,
) -> dict[str, Any]:
    """The columns of an IFD scores file (:data:`SCORE_COLUMNS`, in order) from ``ifd``,
    ``nll_cond``, ``nll_prior`` and ``n_tokens`` aligned with ``samples``; ``valid`` is the
    candidate rule (docs/design.md, "Candidates").  With ``dtype`` (what the model ran in:
    ``float32``, ``bfloat16``, ...) a last column ``dtype`` records it on every row.  An IFD
    variant other than the default ``iterit`` is recorded in a column ``ifd_variant`` (a file
    without it holds ``iterit`` scores, as every file written before variants existed).
    ``turns`` (which assistant turns of a conversation were scored) is recorded in a column
    ``turns``, and ``ifd_turns`` (each sample's per-turn IFD) in a list column ``ifd_turns``
    (docs/design.md, "IFD", conversations).  With ``model_fingerprint`` (the scoring
    weights', :func:`iterit.scoring.model.weights_fingerprint`) a column :data:`MODEL_COLUMN`
    records it, so that scores of another model are refused (:func:`check_scores_model`)."""
    ifd = np.asarray(scores["ifd"], dtype=np.float64)
    columns: dict[str, Any] = {
        "index": np.arange(len(samples), dtype=np.int64),
        "ifd": ifd,
        "nll_cond": np.asarray(scores["nll_cond"], dtype=np.float64),
        "nll_prior": np.asarray(scores["nll_prior"], dtype=np.float64),
        "n_tokens": np.asarray(scores["n_tokens"], dtype=np.int64),
        "valid": candidate_mask(ifd, IFD_MAX),
        "key": sample_keys(samples),
    }
    if dtype:
        columns["dtype"] = [dtype] * len(samples)
    if variant != "iterit":
        columns[VARIANT_COLUMN] = [variant] * len(samples)
    if turns is not None:
        columns[TURNS_COLUMN] = [turns] * len(samples)
    if ifd_turns is not None:
        columns["ifd_turns"] = [[float(v) for v in t] for t in ifd_turns]
    if model_fingerprint:
        columns[MODEL_COLUMN] = [model_fingerprint] * len(samples)
    return columns


#: The column of a scores file that records the fingerprint of the model that scored.
MODEL_COLUMN = "model_fingerprint"
#: How a "scores of another model" message ends; the command line names its own flag.
OTHER_MODEL_HINT = "(pass allow_other_model_scores=True to use them knowingly)"


def scores_model(cols: Mapping[str, list[Any]]) -> tuple[str | None, str | None]:
    """``(fingerprint, dtype)`` of the model that wrote a scores file's columns (None for a
    file written before fingerprints were kept, or by another tool)."""
    found = {str(v) for v in cols.get(MODEL_COLUMN) or []}
    dtypes = {str(v) for v in cols.get("dtype") or []}
    return (
        found.pop() if len(found) == 1 else None,
        dtypes.pop() if len(dtypes) == 1 else None,
    )


def check_scores_model(path: Path, recorded: str | None, actual: str) -> None:
    """Refuse a scores file whose model fingerprint (``recorded``) is not ``actual``, that of
    the model this run scores with; a file that records none is taken as it is."""
    if recorded is not None and recorded != actual:
        raise ScoresFileError(
            f"holds scores of another model (fingerprint {recorded}, this run's model is "
            f"{actual}); score the data again with this model {OTHER_MODEL_HINT}",
            path=path,
            field=MODEL_COLUMN,
        )


#: The column of a scores file that records which assistant turns were scored (a file without
#: it was scored on the last turn only, as every file written before conversations were).
TURNS_COLUMN = "turns"


def check_scores_turns(
    path: Path, cols: Mapping[str, list[Any]], turns: str, samples: Sequence[Sample]
) -> None:
    """Refuse a scores file scored with other ``turns`` than asked when the data holds
    conversations with several assistant turns (their scores differ; one-turn data scores
    the same either way)."""
    found = set(cols.get(TURNS_COLUMN) or ["last"])
    if found != {turns} and any(s.n_turns > 1 for s in samples):
        raise ScoresFileError(
            f"holds scores of turns={', '.join(sorted(map(str, found)))}, not {turns}; score "
            "the data again with that choice of turns, or use the file's",
            path=path,
            field=TURNS_COLUMN,
        )


#: The column of a scores file that records a non-default IFD variant.
VARIANT_COLUMN = "ifd_variant"


def check_scores_variant(path: Path, cols: Mapping[str, list[Any]], variant: str) -> None:
    """Refuse a scores file whose IFD variant is not ``variant`` (mixing variants would compare
    numbers that count different tokens)."""
    found = set(cols.get(VARIANT_COLUMN) or ["iterit"])
    if found != {variant}:
        raise ScoresFileError(
            f"holds IFD scores of variant {', '.join(sorted(map(str, found)))}, not {variant}; "
            "score the data again with that variant, or use the file's variant",
            path=path,
            field=VARIANT_COLUMN,
        )


def _pyarrow(path: Path) -> tuple[Any, Any]:
    try:
        return import_pyarrow(path)
    except MissingDependencyError as e:
        raise MissingDependencyError(f"{e}; or use a .jsonl or .csv file") from e


def require_writable_format(path: Path) -> None:
    """Check, before any work, that ``path``'s format can be written (pyarrow for parquet)."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        _pyarrow(path)


def _clean(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _write_parquet(path: Path, columns: dict[str, Any], overwrite: bool) -> None:
    pa, pq = _pyarrow(path)
    arrays = {}
    for name, col in columns.items():
        if isinstance(col, list) and col and isinstance(col[0], list):  # per-turn values
            arrays[name] = pa.array([_clean(v) for v in col], type=pa.list_(pa.float64()))
            continue
        arr = np.asarray(col)
        if arr.dtype.kind == "f":
            arrays[name] = pa.array(arr, mask=~np.isfinite(arr))
        elif arr.dtype.kind in "iub":
            arrays[name] = pa.array(arr)
        else:
            arrays[name] = pa.array([_clean(v) for v in col])
    with atomic_path(path, overwrite=overwrite) as tmp:
        pq.write_table(pa.table(arrays), tmp)


def write_table(
    path: Path, columns: dict[str, Sequence[Any] | np.ndarray], *, overwrite: bool = False
) -> Path:
    """Write equal-length columns atomically: parquet (``.parquet``/``.pq``), JSON Lines
    (``.jsonl``), a JSON array (``.json``) or CSV (``.csv``); NaN becomes null."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        _write_parquet(path, columns, overwrite)
        return path
    names = list(columns)
    n = len(next(iter(columns.values()))) if columns else 0
    rows = ({name: _clean(columns[name][i]) for name in names} for i in range(n))
    with atomic_open(path, "w", overwrite=overwrite, newline="") as f:
        if suffix == ".csv":
            writer = csv.DictWriter(f, fieldnames=names, lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "" if v is None else v for k, v in row.items()})
        elif suffix == ".json":
            json.dump(list(rows), f, ensure_ascii=False)
            f.write("\n")
        else:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False))
                f.write("\n")
    return path


def _read_rows(path: Path, suffix: str) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ScoresFileError(f"cannot read: {e}", path=path) from None
    if suffix == ".csv":
        return list(csv.DictReader(io.StringIO(text)))
    if text.lstrip().startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ScoresFileError(f"invalid JSON: {e.msg}", path=path, line=e.lineno) from None
    return read_jsonl_records(path, text, error=ScoresFileError)[0]


def read_table(path: Path) -> dict[str, list[Any]]:
    """Read a table written by :func:`write_table` (or any parquet / JSON Lines / JSON array /
    CSV file of records) as columns."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        _pa, pq = _pyarrow(path)
        try:
            return pq.read_table(path).to_pydict()
        except Exception as e:
            raise ScoresFileError(f"cannot read as parquet: {e}", path=path) from None
    cols: dict[str, list[Any]] = {}
    for i, row in enumerate(_read_rows(path, suffix)):
        if not isinstance(row, dict):
            raise ScoresFileError(f"row {i}: expected an object", path=path)
        for k in row:
            cols.setdefault(k, [None] * i)
        for k, col in cols.items():
            col.append(row.get(k))
    return cols


def _floats(path: Path, name: str, values: list[Any]) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None or v == "":
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise ScoresFileError(
                f"row {i}: column {name!r} is not a number: {v!r}", path=path, field=name
            ) from None
    return out


def _row_index(path: Path, cols: dict[str, list[Any]], column: str, n: int) -> np.ndarray:
    """The record each row scores: the ``index`` column, else the row order; every record
    must have a row."""
    if "index" in cols:
        try:
            index = np.asarray([int(v) for v in cols["index"]], dtype=np.int64)
        except (TypeError, ValueError):
            raise ScoresFileError(
                "column 'index' must hold integers", path=path, field="index"
            ) from None
        bad = (index < 0) | (index >= n)
        if bad.any():
            raise ScoresFileError(
                f"row {int(np.flatnonzero(bad)[0])}: index {int(index[bad][0])} is out of "
                f"range for data with {n} records",
                path=path,
                field="index",
            )
    else:
        rows = len(cols[column])
        if rows != n:
            raise ScoresFileError(
                f"{rows} rows but the data has {n} records (add an 'index' column)", path=path
            )
        index = np.arange(n, dtype=np.int64)
    missing = np.ones(n, dtype=bool)
    missing[index] = False
    if missing.any():
        raise ScoresFileError(
            f"no score for record {int(np.flatnonzero(missing)[0])} "
            f"({int(missing.sum())} records missing); was it scored on other data?",
            path=path,
        )
    return index


def _check_keys(
    path: Path, index: np.ndarray, stored: list[Any], samples: Sequence[Sample]
) -> None:
    keys = sample_keys(samples)
    for row, (i, k) in enumerate(zip(index.tolist(), stored, strict=True)):
        if k is not None and k != keys[i]:
            raise ScoresFileError(
                f"row {row} (record {i}) was scored on different text than the data holds; "
                "score this data again",
                path=path,
                field="key",
            )


def complexity_column(columns: Collection[str]) -> str:
    """The column a scores file's complexity is in: ``complexity`` when the file has one (a
    learning-percentage scores file), else ``ifd``."""
    return "complexity" if "complexity" in columns else "ifd"


def complexity_kind(columns: Collection[str]) -> str:
    """What a scores file's complexity measures (an epoch record's ``complexity_source``):
    ``ifd``, ``learning-percentage`` (a file with an ``lp`` column) or ``complexity``."""
    if complexity_column(columns) == "ifd":
        return "ifd"
    return "learning-percentage" if "lp" in columns else "complexity"


def read_scores(
    path: Path,
    samples: Sequence[Sample],
    *,
    column: str | None = None,
    variant: str | None = None,
    turns: str | None = None,
) -> dict[str, np.ndarray]:
    """Scores for ``samples`` from a scores file (or any table with an ``ifd`` column, aligned
    by its ``index`` column or else by row order).  When the file has a ``key`` column it must
    match the samples (the same data).

    The complexity is ``column``; by default the file's ``complexity`` column when it has one
    (a learning-percentage scores file), else its ``ifd`` column.  A column other than ``ifd``
    is also returned under ``"ifd"`` (what the selector reads as complexity).  With ``variant``
    the file's IFD must be of that variant (:func:`check_scores_variant`), with ``turns`` of
    that choice of turns (:func:`check_scores_turns`)."""
    path = Path(path)
    cols = read_table(path)
    if variant is not None and "ifd" in cols:
        check_scores_variant(path, cols, variant)
    if turns is not None and "ifd" in cols:
        check_scores_turns(path, cols, turns, samples)
    if column is None:
        column = complexity_column(cols)
    n = len(samples)
    if column not in cols:
        raise ScoresFileError(
            f"no {column!r} column (columns: {', '.join(cols) or 'none'})", path=path, field=column
        )
    index = _row_index(path, cols, column, n)
    if "key" in cols:
        _check_keys(path, index, cols["key"], samples)
    out: dict[str, np.ndarray] = {}
    for name in ("ifd", "nll_cond", "nll_prior", column):
        if name in cols:
            arr = np.full(n, np.nan)
            arr[index] = _floats(path, name, cols[name])
            out[name] = arr
    if "n_tokens" in cols:
        arr = np.zeros(n, dtype=np.int64)
        arr[index] = np.nan_to_num(_floats(path, "n_tokens", cols["n_tokens"])).astype(np.int64)
        out["n_tokens"] = arr
    if column != "ifd":
        out["ifd"] = out[column]
    return out
