"""What ``iterit compare`` found: a terminal table, per-epoch curves and an HTML page
(docs/compare.md)."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from iterit.artifacts.compare_files import ArmSummary
from iterit.artifacts.names import COMPARE_HTML
from iterit.report.html import _CSS, _table_html
from iterit.report.plots import _EPOCH_COLORS, _png, _pyplot
from iterit.report.terminal import format_table
from iterit.utils.atomic import atomic_open

__all__ = [
    "compare_html",
    "compare_table",
    "plot_compare",
    "verdict_lines",
    "write_compare_html",
]

_COMPUTE = (
    ("scoring_forward_tokens", "scoring tok"),
    ("training_forward_tokens", "training tok"),
    ("scoring_seconds", "scoring s"),
    ("selecting_seconds", "selecting s"),
    ("training_seconds", "training s"),
    ("evaluating_seconds", "evaluating s"),
)


def _nll(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4f}"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def _results(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows: one row per arm, seed and evaluation set, one column per epoch."""
    epochs = sorted({int(r["epoch"]) for r in rows})
    table: dict[tuple[str, Any, str], dict[int, Any]] = {}
    for r in rows:
        table.setdefault((r["arm"], r.get("seed"), r["eval"]), {})[int(r["epoch"])] = r["nll"]
    tokens = {r["eval"]: r["n_tokens"] for r in rows}
    headers = ["arm", "seed", "eval (tokens)", *[f"NLL epoch {e}" for e in epochs]]
    body = [
        [arm, "-" if seed is None else str(seed), f"{ev} ({tokens[ev]})"]
        + [_nll(by.get(e)) for e in epochs]
        for (arm, seed, ev), by in table.items()
    ]
    return headers, body


def _summary(summary: Mapping[str, Any] | None) -> tuple[list[str], list[list[str]]]:
    """Headers and rows: per arm, evaluation set and epoch the mean NLL over seeds with its
    95% bootstrap interval (over records and seeds), and the paired difference to random."""
    summary = summary or {}
    diffs = {(d["arm"], d["eval"], d["epoch"]): d for d in summary.get("differences", [])}
    headers = ["arm", "eval", "epoch", "seeds", "mean NLL [95%]", "- random [95%]", "verdict"]
    body = []
    for s in summary.get("nll", []):
        d = diffs.get((s["arm"], s["eval"], s["epoch"]))
        body.append(
            [s["arm"], s["eval"], str(s["epoch"]), str(s["n_seeds"]), _interval(s)]
            + ([_interval(d), d["verdict"]] if d else ["-", "-"])
        )
    return headers, body


def _interval(s: Mapping[str, Any]) -> str:
    return f"{s['mean']:.4f} [{s['low']:.4f}, {s['high']:.4f}]"


def verdict_lines(summary: Mapping[str, Any] | None) -> list[str]:
    """One line per arm (other than random), epoch and evaluation set: its paired difference
    to random with the interval and the verdict."""
    return [d["line"] for d in (summary or {}).get("differences", [])]


def _compute(arms: Mapping[str, ArmSummary]) -> tuple[list[str], list[list[str]]]:
    headers = ["arm", *[label for _k, label in _COMPUTE]]
    body = []
    for a, s in arms.items():
        compute = s.compute()
        body.append([a, *[_fmt(compute[k]) for k, _l in _COMPUTE]])
    return headers, body


def compare_table(
    rows: Sequence[Mapping[str, Any]],
    arms: Mapping[str, ArmSummary],
    summary: Mapping[str, Any] | None = None,
) -> str:
    """The comparison as plain text: held-out NLL per arm, seed and epoch (lower is better;
    epoch 0 is the initial model, arm ``base``), the summary over seeds with its intervals and
    verdicts, then each arm's compute and wall time."""
    h1, b1 = _results(rows)
    h2, b2 = _compute(arms)
    h3, b3 = _summary(summary)
    title = "mean NLL over seeds, 95% bootstrap intervals over records and seeds"
    parts = [
        format_table(b1, headers=h1, title="mean NLL of the reference responses (lower = better)")
    ]
    if b3:
        parts.append(format_table(b3, headers=h3, title=title))
    lines = verdict_lines(summary)
    if lines:
        parts.append("\n".join(lines))
    parts.append(
        format_table(b2, headers=h2, title="compute per arm (forward tokens, wall seconds)")
    )
    return "\n\n".join(parts)


def plot_compare(rows: Sequence[Mapping[str, Any]]) -> dict[str, bytes]:
    """One PNG per evaluation set: NLL against epoch, one line per arm (base at epoch 0 starts
    every line)."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    out = {}
    base = {r["eval"]: r["nll"] for r in rows if r["arm"] == "base"}
    arms = list(dict.fromkeys(r["arm"] for r in rows if r["arm"] != "base"))
    for ev in dict.fromkeys(r["eval"] for r in rows):
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        for k, arm in enumerate(arms):
            pts = _seed_means([r for r in rows if r["arm"] == arm and r["eval"] == ev])
            if ev in base:
                pts = [(0, base[ev]), *pts]
            color = _EPOCH_COLORS[k % len(_EPOCH_COLORS)]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=arm, color=color)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean NLL per token")
        ax.set_title(ev)
        ax.legend()
        out[ev] = _png(fig)
    return out


def _seed_means(rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, float]]:
    """``(epoch, NLL)`` points, the NLL averaged over the seeds that have one."""
    by: dict[int, list[float]] = {}
    for r in rows:
        if r["nll"] is not None and math.isfinite(r["nll"]):
            by.setdefault(int(r["epoch"]), []).append(float(r["nll"]))
    return sorted((e, sum(v) / len(v)) for e, v in by.items())


def compare_html(
    rows: Sequence[Mapping[str, Any]],
    arms: Mapping[str, ArmSummary],
    settings: Mapping[str, Any],
    summary: Mapping[str, Any] | None = None,
) -> str:
    """A self-contained page: the curves (mean over seeds), the tables, the summary over seeds
    with its verdicts and the settings."""
    h1, b1 = _results(rows)
    h2, b2 = _compute(arms)
    h3, b3 = _summary(summary)
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in verdict_lines(summary))
    over_seeds = (
        "<h2>Over seeds</h2><p class='note'>Mean NLL over seeds with a 95% bootstrap interval "
        "(records and seeds resampled); the paired difference to random uses the same seed "
        f"and the same records.</p>{_table_html(b3, h3)}<ul>{lines}</ul>"
        if b3
        else ""
    )
    imgs = "".join(
        f'<h2>{html.escape(ev)}</h2><img alt="NLL per epoch on {html.escape(ev)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for ev, png in plot_compare(rows).items()
    )
    keys = ("model", "data", "budget", "epochs", "batch_size", "learning_rate", "seeds", "n_train")
    shown = [[k, str(settings.get(k))] for k in keys if k in settings]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>iterit compare</title>"
        f"<style>{_CSS}</style></head><body><h1>iterit compare</h1>"
        "<p class='note'>Mean negative log-likelihood per token of the reference responses "
        "given their instructions, after every epoch (lower is better; epoch 0 is the initial "
        "model).</p>"
        f"{imgs}{over_seeds}<h2>NLL</h2>{_table_html(b1, h1)}"
        f"<h2>Compute</h2>{_table_html(b2, h2)}"
        f"<h2>Settings</h2>{_table_html(shown, ['setting', 'value'])}</body></html>"
    )


def write_compare_html(
    folder: Path,
    rows: Sequence[Mapping[str, Any]],
    arms: Mapping[str, ArmSummary],
    settings: Mapping[str, Any],
    summary: Mapping[str, Any] | None = None,
) -> Path:
    """Write :func:`compare_html` to ``folder/compare.html`` atomically; returns its path."""
    path = Path(folder) / COMPARE_HTML
    with atomic_open(path, "w", overwrite=True) as f:
        f.write(compare_html(rows, arms, settings, summary))
    return path
