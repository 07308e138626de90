"""Learning percentage through the command line: score, then select and train."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from iterit.artifacts import SELECTION_LOG
from tests.helpers.tiny_llama import tiny_tokenizer
from tests.helpers.tiny_run import write_tiny_run_inputs
from tests.helpers.training import real_samples

pytestmark = pytest.mark.slow

N = 16


MAX_LEN = 128


@pytest.fixture(scope="module")
def data():
    samples = real_samples(N, offset=400)
    return samples, tiny_tokenizer(samples)


def test_cli_score_learning_percentage_then_select_and_train(tmp_path, data):
    click_testing = pytest.importorskip("click.testing")
    from iterit.cli import main

    samples, tok = data
    inputs = write_tiny_run_inputs(tmp_path, samples, tok, seed=3)
    model_dir, data_file = inputs / "model", inputs / "data.jsonl"
    runner = click_testing.CliRunner()
    scores = tmp_path / "lp.jsonl"
    common = ["--model", str(model_dir), "--max-length", str(MAX_LEN), "--device", "cpu"]
    res = runner.invoke(
        main,
        [
            "score",
            str(data_file),
            "--metric",
            "learning-percentage",
            *common,
            "--epochs",
            "2",
            "--learning-rate",
            "0.01",
            "--batch-size",
            "8",
            "--micro-batch-size",
            "4",
            "--out",
            str(scores),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "learning-percentage" in res.output
    rows = [json.loads(line) for line in scores.read_text().splitlines()]
    assert len(rows) == N
    assert {"complexity", "lp", "lp_proxy", "ppl_0", "ppl_1", "ppl_2", "key"} <= set(rows[0])
    c = np.array([r["complexity"] for r in rows])
    lp = np.array([r["lp"] for r in rows])
    np.testing.assert_allclose(c, 1 / (1 + np.exp(lp)), rtol=1e-12)

    # iterit select --scores: IFD-only selection by this file = the lowest LP first.
    out = tmp_path / "sel.jsonl"
    res = runner.invoke(
        main,
        ["select", str(data_file), "--scores", str(scores), "--budget", "4"]
        + ["--diversity", "none", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    side = [json.loads(line) for line in (tmp_path / "sel.jsonl.scores.jsonl").open()]
    picked = [r["index"] for r in sorted(side, key=lambda r: (r["rank"] is None, r["rank"] or 0))]
    assert picked[:4] == np.argsort(lp, kind="stable")[:4].tolist()

    # iterit train --scores: epoch 0 selects by the LP complexity, logged as such.
    run = tmp_path / "run"
    res = runner.invoke(
        main,
        ["train", *common, "--data", str(data_file), "--output-dir", str(run)]
        + ["--scores", str(scores), "--budget", "4", "--epochs", "1", "--batch-size", "4"]
        + ["--micro-batch-size", "2", "--no-cache", "--save-strategy", "no", "--no-progress"],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    (rec,) = [json.loads(line) for line in (run / SELECTION_LOG).read_text().splitlines()]
    assert rec["complexity_source"] == "learning-percentage" and rec["n_scored"] == 0
    np.testing.assert_allclose(rec["ifd"], c[rec["picks"]])
