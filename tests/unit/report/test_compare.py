"""iterit.report.compare: the terminal table and the HTML page show the rows per seed, the
summary over seeds with its intervals, and the same verdict lines."""

from __future__ import annotations

import numpy as np
import pytest

from iterit.artifacts.compare_files import ArmSummary
from iterit.report.compare import compare_table, verdict_lines
from iterit.workflows.compare_stats import summarize


def full_rows():
    rng = np.random.default_rng(2)
    random = rng.normal(2.0, 0.4, size=(2, 50))
    rows = [{"arm": "base", "seed": None, "epoch": 0, "eval": "gpt4", "nll": 2.5, "n_tokens": 500}]
    for arm, values in (("random", random), ("iterit", random - 0.1)):
        for seed, v in zip((1, 2), values, strict=True):
            rows.append(
                {
                    "arm": arm,
                    "seed": seed,
                    "epoch": 1,
                    "eval": "gpt4",
                    "nll": float(v.mean()),
                    "n_tokens": 500,
                    "record_nll": v.tolist(),
                    "record_tokens": [10] * 50,
                }
            )
    return rows


def arms():
    names = [(a, s) for a in ("random", "iterit") for s in (1, 2)]
    return {f"{a}/seed-{s}": ArmSummary(arm=a, seed=s) for a, s in names}


def test_the_table_shows_every_seed_the_intervals_and_the_verdict():
    rows = full_rows()
    summary = summarize(rows)
    (line,) = verdict_lines(summary)
    assert line == summary["differences"][0]["line"]
    assert line.startswith("iterit - random at epoch 1: -0.100 nats [") and line.endswith("lower")
    text = compare_table(rows, arms(), summary)
    assert line in text and "mean NLL over seeds" in text
    assert text.count("iterit ") >= 3  # two seed rows and the summary row
    assert ": lower" not in compare_table(rows, arms())  # no summary: no verdicts


def test_the_page_shows_the_same_verdicts():
    pytest.importorskip("matplotlib")
    from iterit.report.compare import compare_html

    rows = full_rows()
    summary = summarize(rows)
    page = compare_html(rows, arms(), {"seeds": [1, 2]}, summary)
    assert verdict_lines(summary)[0] in page and "Over seeds" in page and "<img" in page
