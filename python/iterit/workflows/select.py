"""Selecting from a dataset file and writing the selection: what ``iterit select`` does, as a
library function.

:func:`select_dataset` takes loaded data and, optionally, its IFD scores (from
:func:`ifd_scores`: a scores file or a model), picks a budget of records with a strategy of
:mod:`iterit.selection.strategies` and writes the picks in the data's own format plus two
sidecars (:mod:`iterit.artifacts.selection_files`).  Raises only
:class:`~iterit.errors.IteritError` subclasses.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iterit.artifacts.names import selection_sidecars
from iterit.artifacts.selection_files import write_selection_files
from iterit.config import ScoringConfig, SelectionConfig
from iterit.data import LoadedData
from iterit.data.candidates import IFD_MAX
from iterit.data.files import output_file_type
from iterit.errors import ConfigError, DataError
from iterit.selection.strategies import SampleSelection, response_words, select_with_config
from iterit.utils.atomic import refuse_same_file

__all__ = [
    "COMPLEXITY_KINDS",
    "DatasetSelection",
    "complexity_values",
    "ifd_scores",
    "needs_ifd",
    "parse_complexity_kind",
    "score_and_select",
    "select_dataset",
]

#: Where each sample's complexity comes from: IFD, the response length in words, nothing (pure
#: diversity), or ``column:NAME``, a numeric field of the records.
COMPLEXITY_KINDS = ("ifd", "length", "none", "column:NAME")
#: Metadata that depends on the run, not on the inputs: written to ``OUT.run.json`` rather than
#: ``OUT.meta.json``, which stays the same byte for byte for the same inputs and options.
RUN_FIELDS = ("command", "load_seconds", "score_seconds", "select_seconds")


@dataclass
class DatasetSelection:
    """What :func:`select_dataset` did: the selection (indices into the data's records), the
    metadata written to ``OUT.meta.json`` and the run's own to ``OUT.run.json``."""

    selection: SampleSelection
    meta: dict[str, Any]
    #: What was written to ``OUT.run.json`` (:data:`RUN_FIELDS`: command line, timings).
    run: dict[str, Any] = field(default_factory=dict)
    #: The IFD columns the selection used (:func:`score_and_select`), ``None`` without IFD.
    scores: dict[str, np.ndarray] | None = None


def parse_complexity_kind(value: str) -> str:
    """``ifd``, ``length``, ``none`` or ``column:NAME`` (case-insensitive keywords)."""
    v = value.strip()
    if v.lower() in ("ifd", "length", "none"):
        return v.lower()
    if v.lower().startswith("column:") and v[7:].strip():
        return "column:" + v[7:].strip()
    raise ConfigError(f"{value!r}: expected ifd, length, none or column:NAME")


def needs_ifd(
    strategy: str, complexity_kind: str, *, model: str | None, scores_file: Path | None
) -> bool:
    """Whether IFD must be read or computed: the complexity is IFD and the strategy uses it,
    or a scorer or scores file was named explicitly (random and longest need none)."""
    return complexity_kind == "ifd" and (
        strategy in ("iterit", "ifd") or model is not None or scores_file is not None
    )


def ifd_scores(
    loaded: LoadedData,
    *,
    scores_file: Path | None = None,
    model: str | None = None,
    scoring: ScoringConfig | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, np.ndarray]:
    """IFD (and, when scored, ``nll_cond``, ``nll_prior``, ``n_tokens``) of every record: read
    from ``scores_file`` (checked against the data and ``scoring.ifd_variant``), else computed
    with ``model`` as ``scoring`` says; ``log`` receives the scorer's progress messages."""
    cfg = scoring or ScoringConfig()
    if scores_file is not None and model is not None:
        raise ConfigError("give either a scoring model or a scores file, not both")
    if scores_file is not None:
        from iterit.artifacts.score_files import read_scores

        return read_scores(scores_file, loaded.samples, variant=cfg.ifd_variant, turns=cfg.turns)
    if model is None:
        raise ConfigError("IFD needs a scoring model or a scores file")
    from iterit.scoring.api import score_samples

    return score_samples(loaded.samples, model=model, scoring=cfg, log=log).as_dict()


def _provenance(fingerprint: str | None, dtype: str | None) -> dict[str, Any]:
    return {"scores_model_fingerprint": fingerprint or None, "scores_dtype": dtype or None}


def _file_provenance(
    path: Path, model: str | None, allow_other: bool, cfg: ScoringConfig
) -> dict[str, Any]:
    """The model fingerprint and dtype a scores file records; with ``model``, the file must
    hold that model's scores unless ``allow_other`` (docs/faults.md, "Run folders")."""
    from iterit.artifacts.score_files import check_scores_model, read_table, scores_model

    recorded, dtype = scores_model(read_table(Path(path)))
    if model is not None and recorded is not None and not allow_other:
        from iterit.scoring.model import load_model, weights_fingerprint

        loaded = load_model(model, device=cfg.device or "cpu", dtype="float32")
        check_scores_model(Path(path), recorded, weights_fingerprint(loaded.model, dtype))
    return _provenance(recorded, dtype)


def _column(loaded: LoadedData, name: str) -> np.ndarray:
    records = loaded.records()
    out = np.empty(len(records))
    for i, rec in enumerate(records):
        if name not in rec:
            raise DataError(f"missing field {name!r}", path=loaded.path, record=i, field=name)
        v = rec[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise DataError(
                f"field {name!r} must be a number, got {v!r}",
                path=loaded.path,
                record=i,
                field=name,
            )
        out[i] = float(v)
    return out


def complexity_values(
    loaded: LoadedData, kind: str, scores: dict[str, np.ndarray] | None
) -> tuple[np.ndarray | None, float]:
    """Each record's complexity for ``kind`` and the upper bound of the candidate rule (1 for
    IFD; none for a length or a column).  ``None``: no complexity (IFD without scores, or
    ``none``)."""
    if kind == "ifd":
        return (None, math.inf) if scores is None else (scores["ifd"], IFD_MAX)
    if kind == "length":
        return response_words(loaded.samples).astype(np.float64), math.inf
    if kind.startswith("column:"):
        return _column(loaded, kind[7:]), math.inf
    return None, math.inf


def _json_number(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return round(f, 10) if math.isfinite(f) else None
    if isinstance(v, (np.integer, int)):
        return int(v)
    return v


def _statuses(selection: SampleSelection, empty: np.ndarray) -> np.ndarray:
    status = np.full(empty.shape[0], "candidate", dtype=object)
    status[~selection.valid] = "invalid"
    status[empty] = "empty"
    status[selection.pool] = "pool"
    status[selection.indices] = "selected"
    return status


def _record_rows(
    selection: SampleSelection,
    columns: dict[str, np.ndarray],
    words: np.ndarray,
    empty: np.ndarray,
) -> Iterator[dict[str, Any]]:
    """One row per record: the picks first, in pick order, then every other record by index."""
    ranks = selection.ranks
    status = _statuses(selection, empty)
    for i in np.concatenate([selection.indices, np.flatnonzero(ranks < 0)]).tolist():
        row: dict[str, Any] = {
            "index": i,
            "rank": int(ranks[i]) if ranks[i] >= 0 else None,
            "status": status[i],
        }
        for name, values in columns.items():
            row[name] = _json_number(values[i])
        row["response_words"] = int(words[i])
        yield row


def _score_columns(
    selection: SampleSelection,
    complexity: np.ndarray | None,
    scores: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    n = selection.valid.shape[0]
    pick_score, pick_diversity = np.full(n, np.nan), np.full(n, np.nan)
    pick_score[selection.indices] = selection.scores
    pick_diversity[selection.indices] = selection.diversity
    columns = {name: scores.get(name) for name in ("ifd", "nll_cond", "nll_prior", "n_tokens")}
    columns.update(complexity=complexity, diversity=pick_diversity, score=pick_score)
    return {k: v for k, v in columns.items() if v is not None}


def _counts(
    selection: SampleSelection, empty: np.ndarray, ifd: np.ndarray | None
) -> dict[str, Any]:
    counts: dict[str, Any] = {
        "n_records": int(empty.shape[0]),
        "n_empty": int(empty.sum()),
        "n_candidates": selection.n_candidates,
        "pool_size": int(selection.pool.shape[0]),
        "budget": selection.budget,
        "n_selected": int(selection.indices.shape[0]),
        "shortfall": selection.shortfall,
    }
    if ifd is not None:
        finite = np.isfinite(ifd)
        counts["n_scored"] = int(finite.sum())
        counts["n_ifd_nan"] = int((~finite & ~empty).sum())
        counts["n_ifd_ge_1"] = int((finite & (ifd >= IFD_MAX)).sum())
    return counts


def _inputs_meta(loaded: LoadedData, out: Path) -> dict[str, Any]:
    """What was read and what is written: the first entries of ``OUT.meta.json``."""
    scores_path, _ = selection_sidecars(out)
    return {
        "iterit_select": 1,
        "data": str(Path(loaded.path).resolve()) if loaded.path else None,
        "file_type": loaded.file_type,
        "format": loaded.format,
        "fields": loaded.fields,
        "output": str(out.resolve()),
        "scores_file": scores_path.name,
    }


#: The selection settings ``OUT.meta.json`` records, in its order.
META_SETTINGS = ("strategy", "diversity", "decay", "pool_factor", "seed")


def select_dataset(
    loaded: LoadedData,
    out: Path,
    selection: SelectionConfig,
    *,
    complexity_kind: str = "ifd",
    scores: dict[str, np.ndarray] | None = None,
    overwrite: bool = False,
    meta: dict[str, Any] | None = None,
) -> DatasetSelection:
    """Select from ``loaded`` as ``selection`` says (its seed: the random baseline's, ``None``
    for 0) and write ``out`` plus its two sidecars (``OUT.scores.jsonl``, ``OUT.meta.json``).
    ``scores``: IFD and the other scorer columns of every record (needed when
    ``complexity_kind`` is ``ifd`` and the strategy uses it); ``meta``: extra entries for
    ``OUT.meta.json``."""
    t0 = time.perf_counter()
    refuse_same_file(out, [loaded.path])  # even with overwrite: it would destroy the input
    complexity, max_complexity = complexity_values(loaded, complexity_kind, scores)
    settings = {name: getattr(selection, name) for name in META_SETTINGS}
    settings["seed"] = settings["seed"] or 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the shortfall is in the result and the metadata
        picked = select_with_config(
            loaded.samples, selection, complexity, max_complexity=max_complexity
        )
    t_select = time.perf_counter() - t0
    scores = scores or {}
    empty = loaded.empty
    meta_all: dict[str, Any] = {
        **_inputs_meta(loaded, out),
        # The settings, "complexity" second (after "strategy", whose place the merge keeps).
        "strategy": settings["strategy"],
        "complexity": complexity_kind if complexity is not None else "none",
        **settings,
        **_counts(picked, empty, scores.get("ifd")),
        **(meta or {}),
        "select_seconds": round(t_select, 4),
    }
    rows = _record_rows(
        picked,
        _score_columns(picked, complexity, scores),
        response_words(loaded.samples),
        empty,
    )
    return _write_selection(loaded, out, picked, rows, meta_all, overwrite=overwrite)


def _write_selection(
    loaded: LoadedData,
    out: Path,
    selection: SampleSelection,
    rows: Iterator[dict[str, Any]],
    meta_all: dict[str, Any],
    *,
    overwrite: bool,
) -> DatasetSelection:
    """Write the picked records in their format plus the two sidecars, as one set."""
    kind = output_file_type(out, loaded.file_type)

    def write_records(path: Path) -> None:
        # ``path`` is the set's temporary file (already there), or OUT itself for a folder.
        folder = kind == "hf"
        loaded.write(selection.indices, path, overwrite=overwrite or not folder, file_type=kind)

    run = {k: meta_all[k] for k in RUN_FIELDS if k in meta_all}
    reproducible = {k: v for k, v in meta_all.items() if k not in RUN_FIELDS}
    write_selection_files(
        out,
        rows,
        reproducible,
        write_records,
        overwrite=overwrite,
        records_folder=kind == "hf",
        run=run,
    )
    return DatasetSelection(selection, reproducible, run)


def score_and_select(
    loaded: LoadedData,
    out: Path,
    selection: SelectionConfig,
    *,
    complexity_kind: str,
    scores_file: Path | None = None,
    model: str | None = None,
    scoring: ScoringConfig | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
    meta: dict[str, Any] | None = None,
    allow_other_model_scores: bool = False,
) -> DatasetSelection:
    """What ``iterit select`` does after loading: IFD when ``selection``'s strategy and
    ``complexity_kind`` need it (read from ``scores_file``, else scored with ``model``, by default
    :func:`iterit.scoring.embedded_model.default_model`, as ``scoring`` says), then
    :func:`select_dataset` with the other arguments.  Without IFD, ``complexity_kind`` ``ifd``
    becomes ``none``.  With both ``scores_file`` and ``model``, the file must hold ``model``'s
    scores (its recorded fingerprint; ``allow_other_model_scores`` accepts another's); the
    scores' dtype and model fingerprint go to the sidecar meta."""
    cfg = scoring or ScoringConfig()
    t0 = time.perf_counter()
    scores = None
    model_used = None
    provenance: dict[str, Any] = {}
    if needs_ifd(selection.strategy, complexity_kind, model=model, scores_file=scores_file):
        if scores_file is None:
            from iterit.scoring.api import score_samples
            from iterit.scoring.embedded_model import default_model

            model_used = model or default_model()
            scored = score_samples(loaded.samples, model=model_used, scoring=cfg, log=log)
            scores = scored.as_dict()
            provenance = _provenance(scored.model_fingerprint, scored.dtype)
        else:
            provenance = _file_provenance(scores_file, model, allow_other_model_scores, cfg)
            scores = ifd_scores(loaded, scores_file=scores_file, scoring=cfg)
    elif complexity_kind == "ifd":
        complexity_kind = "none"
    meta_all = {
        **provenance,
        "model": model_used,
        "scores_from": str(scores_file) if scores_file else None,
        "template": cfg.template if model_used else None,
        "max_length": cfg.max_length if model_used else None,
        **(meta or {}),
        "score_seconds": round(time.perf_counter() - t0, 4),
    }
    result = select_dataset(
        loaded,
        out,
        selection,
        complexity_kind=complexity_kind,
        scores=scores,
        overwrite=overwrite,
        meta=meta_all,
    )
    result.scores = scores
    return result
