"""Whether a difference between arms is real (docs/compare.md, "Seeds and intervals").

Every arm runs once per seed and is evaluated on the same records, so each evaluation row
carries the per-record NLLs (``record_nll``) and response tokens (``record_tokens``).  An arm's
NLL at an epoch is the token-weighted mean over records, averaged over seeds; its 95% interval
is a bootstrap over records and seeds (records and seeds resampled independently, the same
record draws for every seed, as the seeds share the evaluation records).  An arm's difference
to ``random`` is paired: the same seed and the same records, per-record ``arm - random``.

The bootstrap is seeded (:data:`BOOTSTRAP_SEED`), so the same rows give the same intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "REFERENCE_ARM",
    "Interval",
    "bootstrap",
    "summarize",
    "verdict",
]

#: The arm every other arm is compared with.
REFERENCE_ARM = "random"
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
#: Resamples drawn at once (bounds the memory of one step to about chunk x seeds x records).
_CHUNK = 250


@dataclass(frozen=True)
class Interval:
    """``mean``: the statistic on the data as observed; ``low``/``high``: the 2.5% and 97.5%
    bootstrap percentiles; ``n_seeds``, ``n_records``: what it was computed over."""

    mean: float
    low: float
    high: float
    n_seeds: int
    n_records: int


def _statistic(values: np.ndarray, weights: np.ndarray) -> float:
    return float(np.mean(values @ weights / weights.sum()))


def bootstrap(
    values: np.ndarray,
    weights: np.ndarray,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """The mean over seeds of the ``weights``-weighted mean over records of ``values``
    (``seeds x records``), with a 95% percentile interval from ``resamples`` draws of seeds and
    of records, each with replacement."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    weights = np.asarray(weights, dtype=np.float64)
    n_seeds, n_records = values.shape
    rng = np.random.default_rng(seed)
    weighted = values * weights
    stats = []
    for start in range(0, resamples, _CHUNK):
        b = min(_CHUNK, resamples - start)
        seeds = rng.integers(0, n_seeds, size=(b, n_seeds))
        records = rng.integers(0, n_records, size=(b, n_records))
        num = weighted[:, records].sum(axis=-1)  # seeds x b
        den = weights[records].sum(axis=-1)  # b
        per_seed = num / den  # seeds x b: each seed's mean over the drawn records
        stats.append(np.take_along_axis(per_seed.T, seeds, axis=1).mean(axis=1))
    drawn = np.concatenate(stats)
    low, high = np.percentile(drawn, [2.5, 97.5])
    return Interval(_statistic(values, weights), float(low), float(high), n_seeds, n_records)


def verdict(interval: Interval) -> str:
    """``lower`` or ``higher`` when the interval excludes zero, else ``no difference shown``."""
    if interval.high < 0:
        return "lower"
    if interval.low > 0:
        return "higher"
    return "no difference shown"


def _matrix(rows: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    values = np.array(
        [[np.nan if v is None else v for v in r["record_nll"]] for r in rows], dtype=np.float64
    )
    return values, np.asarray(rows[0]["record_tokens"], dtype=np.float64)


def _usable(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.isfinite(values).all(axis=0) & (weights > 0)


def _groups(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, int, str], dict[Any, Any]]:
    out: dict[tuple[str, int, str], dict[Any, Any]] = {}
    for r in rows:
        if r.get("record_nll") is not None:
            out.setdefault((r["arm"], int(r["epoch"]), r["eval"]), {})[r.get("seed")] = r
    return out


def _line(arm: str, epoch: int, ev: str, iv: Interval, several: bool) -> str:
    on = f" on {ev}" if several else ""
    return (
        f"{arm} - {REFERENCE_ARM} at epoch {epoch}{on}: {iv.mean:.3f} nats "
        f"[{iv.low:.3f}, {iv.high:.3f}]: {verdict(iv)}"
    )


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """``{"nll": [...], "differences": [...]}`` of the evaluation rows that carry per-record
    NLLs: per arm, epoch and evaluation set the mean NLL over seeds with its interval, and per
    arm other than :data:`REFERENCE_ARM` its paired difference to it over the seeds both ran,
    with the verdict and its one-line statement (``line``)."""
    groups = _groups(rows)
    several = len({ev for _a, _e, ev in groups}) > 1
    nll, diffs = [], []
    for (arm, epoch, ev), by_seed in groups.items():
        seeds = sorted(by_seed, key=str)
        values, weights = _matrix([by_seed[s] for s in seeds])
        ok = _usable(values, weights)
        if ok.any():
            iv = bootstrap(values[:, ok], weights[ok])
            nll.append({"arm": arm, "epoch": epoch, "eval": ev, **asdict(iv)})
        ref = groups.get((REFERENCE_ARM, epoch, ev), {})
        paired = [s for s in seeds if s in ref]
        if arm in ("base", REFERENCE_ARM) or not paired:
            continue
        a, weights = _matrix([by_seed[s] for s in paired])
        b, _w = _matrix([ref[s] for s in paired])
        ok = _usable(a, weights) & _usable(b, weights)
        if not ok.any():
            continue
        iv = bootstrap(a[:, ok] - b[:, ok], weights[ok])
        diffs.append(
            {
                "arm": arm,
                "reference": REFERENCE_ARM,
                "epoch": epoch,
                "eval": ev,
                **asdict(iv),
                "verdict": verdict(iv),
                "line": _line(arm, epoch, ev, iv, several),
            }
        )
    return {"nll": nll, "differences": diffs}
