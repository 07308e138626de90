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

__all__ = ["compare_html", "compare_table", "plot_compare", "write_compare_html"]

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
    """Headers and rows: one row per arm and evaluation set, one column per epoch."""
    epochs = sorted({int(r["epoch"]) for r in rows})
    table: dict[tuple[str, str], dict[int, Any]] = {}
    for r in rows:
        table.setdefault((r["arm"], r["eval"]), {})[int(r["epoch"])] = r["nll"]
    tokens = {r["eval"]: r["n_tokens"] for r in rows}
    headers = ["arm", "eval (tokens)", *[f"NLL epoch {e}" for e in epochs]]
    body = [
        [arm, f"{ev} ({tokens[ev]})", *[_nll(by.get(e)) for e in epochs]]
        for (arm, ev), by in table.items()
    ]
    return headers, body


def _compute(arms: Mapping[str, ArmSummary]) -> tuple[list[str], list[list[str]]]:
    headers = ["arm", *[label for _k, label in _COMPUTE]]
    body = []
    for a, s in arms.items():
        compute = s.compute()
        body.append([a, *[_fmt(compute[k]) for k, _l in _COMPUTE]])
    return headers, body


def compare_table(rows: Sequence[Mapping[str, Any]], arms: Mapping[str, ArmSummary]) -> str:
    """The comparison as plain text: held-out NLL per arm and epoch (lower is better; epoch 0
    is the initial model, arm ``base``), then each arm's compute and wall time."""
    h1, b1 = _results(rows)
    h2, b2 = _compute(arms)
    return (
        format_table(b1, headers=h1, title="mean NLL of the reference responses (lower = better)")
        + "\n\n"
        + format_table(b2, headers=h2, title="compute per arm (forward tokens, wall seconds)")
    )


def plot_compare(rows: Sequence[Mapping[str, Any]]) -> dict[str, bytes]:
    """One PNG per evaluation set: NLL against epoch, one line per arm (base at epoch 0 starts
    every line)."""
    plt = _pyplot()
    out = {}
    base = {r["eval"]: r["nll"] for r in rows if r["arm"] == "base"}
    arms = list(dict.fromkeys(r["arm"] for r in rows if r["arm"] != "base"))
    for ev in dict.fromkeys(r["eval"] for r in rows):
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        for k, arm in enumerate(arms):
            pts = sorted(
                (r["epoch"], r["nll"]) for r in rows if r["arm"] == arm and r["eval"] == ev
            )
            if ev in base:
                pts = [(0, base[ev]), *pts]
            color = _EPOCH_COLORS[k % len(_EPOCH_COLORS)]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=arm, color=color)
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean NLL per token")
        ax.set_title(ev)
        ax.legend()
        out[ev] = _png(fig)
    return out


def compare_html(
    rows: Sequence[Mapping[str, Any]],
    arms: Mapping[str, ArmSummary],
    settings: Mapping[str, Any],
) -> str:
    """A self-contained page: the curves, the tables and the settings."""
    h1, b1 = _results(rows)
    h2, b2 = _compute(arms)
    imgs = "".join(
        f'<h2>{html.escape(ev)}</h2><img alt="NLL per epoch on {html.escape(ev)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for ev, png in plot_compare(rows).items()
    )
    keys = ("model", "data", "budget", "epochs", "batch_size", "learning_rate", "seed", "n_train")
    shown = [[k, str(settings.get(k))] for k in keys if k in settings]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>iterit compare</title>"
        f"<style>{_CSS}</style></head><body><h1>iterit compare</h1>"
        "<p class='note'>Mean negative log-likelihood per token of the reference responses "
        "given their instructions, after every epoch (lower is better; epoch 0 is the initial "
        "model).</p>"
        f"{imgs}<h2>NLL</h2>{_table_html(b1, h1)}<h2>Compute</h2>{_table_html(b2, h2)}"
        f"<h2>Settings</h2>{_table_html(shown, ['setting', 'value'])}</body></html>"
    )


def write_compare_html(
    folder: Path,
    rows: Sequence[Mapping[str, Any]],
    arms: Mapping[str, ArmSummary],
    settings: Mapping[str, Any],
) -> Path:
    path = Path(folder) / COMPARE_HTML
    with atomic_open(path, "w", overwrite=True) as f:
        f.write(compare_html(rows, arms, settings))
    return path
