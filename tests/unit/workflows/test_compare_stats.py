"""iterit.workflows.compare_stats on constructed per-record NLLs: the bootstrap against a plain
loop, intervals that must and must not exclude zero, determinism, and the summary of rows."""

from __future__ import annotations

import numpy as np
import pytest

from iterit.workflows.compare_stats import Interval, bootstrap, summarize, verdict


def reference_bootstrap(values, weights, resamples, seed):
    """The same draws as :func:`bootstrap`, one resample at a time."""
    values = np.atleast_2d(values)
    n_seeds, n_records = values.shape
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, resamples, 250):
        b = min(250, resamples - start)
        seeds = rng.integers(0, n_seeds, size=(b, n_seeds))
        records = rng.integers(0, n_records, size=(b, n_records))
        for i in range(b):
            w = weights[records[i]]
            means = [float(np.dot(values[s, records[i]], w) / w.sum()) for s in seeds[i]]
            out.append(sum(means) / len(means))
    return np.percentile(out, [2.5, 97.5])


def test_bootstrap_equals_a_plain_loop():
    rng = np.random.default_rng(3)
    values, weights = rng.normal(2.0, 0.5, size=(3, 40)), rng.integers(1, 30, size=40)
    iv = bootstrap(values, weights, resamples=600, seed=5)
    low, high = reference_bootstrap(values, weights.astype(float), 600, 5)
    assert iv.low == pytest.approx(low, abs=1e-12) and iv.high == pytest.approx(high, abs=1e-12)
    assert iv.mean == pytest.approx(np.mean(values @ weights / weights.sum()))
    assert (iv.n_seeds, iv.n_records) == (3, 40)
    assert bootstrap(values, weights) == bootstrap(values, weights)  # seeded: deterministic


def test_a_real_difference_excludes_zero_and_noise_does_not():
    rng = np.random.default_rng(0)
    base = rng.normal(2.0, 0.6, size=(3, 200))
    weights = rng.integers(5, 50, size=200)
    better = base - 0.05 + rng.normal(0, 0.02, size=base.shape)  # lower on every record
    iv = bootstrap(better - base, weights)
    assert iv.high < 0 and verdict(iv) == "lower"
    noise = rng.normal(0, 0.3, size=(3, 200))
    noise -= (noise @ weights / weights.sum())[:, None]  # exactly zero mean per seed
    iv = bootstrap(noise, weights)
    assert iv.low < 0 < iv.high and verdict(iv) == "no difference shown"
    assert verdict(Interval(0.1, 0.05, 0.2, 1, 1)) == "higher"


def rows_of(arm, nll, epoch=3):
    return [
        {
            "arm": arm,
            "seed": s,
            "epoch": epoch,
            "eval": "gpt4",
            "nll": float(np.mean(v)),
            "record_nll": [float(x) for x in v],
            "record_tokens": [10] * len(v),
        }
        for s, v in enumerate(nll)
    ]


def test_summary_pairs_each_arm_with_random_by_seed_and_record():
    rng = np.random.default_rng(1)
    random = rng.normal(2.0, 0.5, size=(3, 100))
    iterit = random - 0.02 + rng.normal(0, 0.005, size=random.shape)
    iterit[0, 5] = None  # a record without a score is left out of the pairing
    rows = rows_of("random", random) + rows_of("iterit", iterit)
    rows.append({"arm": "base", "seed": None, "epoch": 0, "eval": "gpt4", "nll": 3.0})
    out = summarize(rows)
    assert {(s["arm"], s["epoch"], s["n_seeds"]) for s in out["nll"]} == {
        ("random", 3, 3),
        ("iterit", 3, 3),
    }
    (d,) = out["differences"]
    assert d["n_records"] == 99 and d["verdict"] == "lower"
    assert d["mean"] == pytest.approx(-0.02, abs=0.002)
    assert d["line"].startswith("iterit - random at epoch 3: -0.02")
    assert d["line"].endswith(": lower")
