"""The report's plots as PNG bytes (matplotlib's Agg backend: nothing needs a display)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from iterit.report.model import Report

__all__ = ["plot_ifd", "plot_lengths", "plot_ngrams", "plot_overlap"]

_COLORS = {"all": "#9aa3ad", "selected": "#d1495b", "longest": "#edae49"}
_EPOCH_COLORS = ["#d1495b", "#00798c", "#30638e", "#edae49", "#66a182", "#8d96a3", "#003d5b"]


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
