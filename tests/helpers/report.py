"""Builders for report tests: a training run folder with a selection log."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.helpers.cli import EXAMPLE

PNG = b"\x89PNG\r\n\x1a\n"


def run_dir(tmp_path: Path) -> Path:
    """A 3-epoch run over examples/alpaca_mini.jsonl (97 records, 10 picks per epoch) whose
    configuration names its data."""
    run = tmp_path / "run"
    run.mkdir()
    rng = np.random.default_rng(0)
    picks = [[int(i) for i in rng.choice(96, 10, replace=False)] for _ in range(3)]
    picks[1][:7] = picks[0][:7]
    recs = [
        {
            "epoch": e,
            "strategy": "iterit",
            "diversity": "response",
            "n_samples": 97,
            "pool_size": 30,
            "n_candidates": 28 - e,
            "budget": 10,
            "picks": p,
            "ifd": [float(v) for v in rng.uniform(0.3, 0.99, 10)],
            "score": [1.0] * 10,
            "overlap_prev": None,
            "future_field": [1, 2],
        }
        for e, p in enumerate(picks)
    ]
    (run / "iterit_selection.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    config = {"data": str(EXAMPLE), "data_format": "auto", "fields": None, "epochs": 3}
    (run / "iterit_train_config.json").write_text(json.dumps(config))
    return run
