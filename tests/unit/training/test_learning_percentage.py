"""iterit.training.learning_percentage (issue 6, paper 002): the LP formula, the complexity mapping the
selector takes, a 3-epoch run checked against a hand computation, and the command line.

CPU only: the tiny random Llama and word-level tokenizer of tests/test_hf.py, real Alpaca
records from ../shared/data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from iterit.training.learning_percentage import (  # noqa: E402
    learning_percentage,
    lp_columns,
    lp_complexity,
    score_learning_percentage,
)
from tests.helpers.tiny_llama import tiny_model, tiny_tokenizer  # noqa: E402
from tests.helpers.training import real_samples  # noqa: E402

N = 16
MAX_LEN = 128
TRAIN = {"use_cpu": True, "report_to": "none", "logging_steps": 1000, "disable_tqdm": True}


@pytest.fixture(scope="module")
def data():
    samples = real_samples(N, offset=400)
    return samples, tiny_tokenizer(samples)


def test_formula_zero_denominator_and_nan():
    ppl = np.array(
        [
            [10.0, 10.0, 8.0, np.nan, 5.0],  # P0
            [6.0, 10.0, 9.0, 3.0, 4.0],  # P1
            [5.0, 12.0, 9.5, 2.0, 4.5],  # P2
            [2.0, 10.0, 10.0, 1.0, 4.0],  # P3
        ]
    )
    lp, proxy = learning_percentage(ppl)
    np.testing.assert_allclose(lp[[0, 2, 4]], [4 / 8, -1 / -2, 1 / 1])
    assert lp[1] == 0.0  # P0 == Pn: 0, not a division by zero
    assert math.isnan(lp[3]) and math.isnan(proxy[3])
    np.testing.assert_allclose(proxy[[0, 1, 2, 4]], [0.4, 0.0, -1 / 8, 0.2])
    with pytest.raises(ValueError, match="before and after"):
        learning_percentage(ppl[:1])


def test_complexity_is_decreasing_in_lp_and_always_a_candidate():
    import iterit
    from iterit.data.sample import Sample
    from iterit.selection.strategies import choose

    lp = np.array([-1e6, -3.0, 0.0, 0.5, 1.0, 2.0, 1e6, np.nan])
    c = lp_complexity(lp)
    assert c[2] == 0.5 and abs(c[4] - 1 / (1 + math.e)) < 1e-15
    assert np.all(np.diff(c[:7]) <= 0) and np.all(np.diff(c[1:6]) < 0)
    assert np.all((c[:7] > 0) & (c[:7] < 1))  # valid for max_complexity = 1, even at extremes
    assert math.isnan(c[7])
    # IFD-only selection by this complexity is "lowest LP (hardest) first".
    samples = [Sample(instruction=f"q{i}", response=f"answer {i}") for i in range(7)]
    picks = choose(samples, 4, strategy="ifd", complexity=c[:7]).indices.tolist()
    assert picks == [0, 1, 2, 3]
    sel = iterit.select([s.response for s in samples], c[:7], 7, decay=0.0)
    assert sel.n_candidates == 7


def test_three_epoch_run_matches_a_hand_computation(data):
    """P0..P3 measured by an independent callback (one sequence per forward pass, full logits,
    at the same moments) give the same LP and proxy as the run's batched IFDScorer passes."""
    from iterit.scoring.ifd import reference_ifd

    samples, tok = data
    hand: list[np.ndarray] = []

    class Hand(transformers.TrainerCallback):
        def _measure(self, model):
            ref = reference_ifd(model, tok, samples, max_length=MAX_LEN)
            hand.append(np.exp(ref.nll_cond))

        def on_train_begin(self, args, state, control, model=None, **kw):
            self._measure(model)

        def on_epoch_end(self, args, state, control, model=None, **kw):
            self._measure(model)

    res = score_learning_percentage(
        samples,
        tiny_model(tok, seed=3),
        tok,
        epochs=3,
        max_length=MAX_LEN,
        learning_rate=1e-2,
        batch_size=8,
        micro_batch_size=4,
        seed=0,
        training_args=TRAIN,
        callbacks=[Hand()],
    )
    assert res.ppl.shape == (4, N) and res.epochs == 3 and res.signal == "lp"
    p = np.stack(hand)
    assert np.isfinite(p).all()  # every sample scorable: the run trained on all of them
    np.testing.assert_allclose(res.ppl, p, rtol=1e-4)
    lp_hand = (p[0] - p[1]) / (p[0] - p[3])
    proxy_hand = (p[0] - p[1]) / p[0]
    np.testing.assert_allclose(res.lp, lp_hand, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(res.lp_proxy, proxy_hand, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(res.complexity, 1 / (1 + np.exp(lp_hand)), rtol=1e-3)
    assert (p[-1] < p[0]).mean() > 0.5  # training lowered the perplexity
    # One batched perplexity pass before training and one after each epoch.
    assert [q["epoch"] for q in res.passes] == [0, 1, 2, 3]
    assert [q["global_step"] for q in res.passes] == [0, 2, 4, 6]  # 16 / 8 = 2 steps per epoch
    assert all(q["forward_calls"] > 0 for q in res.passes)
    cols = lp_columns(res, keys=[str(i) for i in range(N)])
    assert list(cols)[:4] == ["index", "complexity", "lp", "lp_proxy"]
    assert [k for k in cols if k.startswith("ppl_")] == ["ppl_0", "ppl_1", "ppl_2", "ppl_3"]
    assert cols["valid"].all()


def test_unscorable_samples_get_nan_and_one_epoch_uses_the_proxy(data):
    from iterit.data.sample import Sample

    samples, tok = data
    items = [*samples[:6], Sample(instruction="x", response="")]
    res = score_learning_percentage(
        items,
        tiny_model(tok, seed=3),
        tok,
        epochs=1,
        max_length=MAX_LEN,
        learning_rate=1e-2,
        batch_size=4,
        micro_batch_size=2,
        training_args=TRAIN,
    )
    assert res.signal == "proxy" and res.ppl.shape == (2, 7)
    assert np.isnan(res.ppl[:, 6]).all() and np.isnan(res.complexity[6])
    np.testing.assert_allclose(res.complexity[:6], lp_complexity(res.lp_proxy[:6]))
    with pytest.raises(ValueError, match="proxy"):
        score_learning_percentage(items, tiny_model(tok), tok, epochs=1, signal="lp")


def test_cli_score_learning_percentage_then_select_and_train(tmp_path, data):
    click_testing = pytest.importorskip("click.testing")
    from iterit.cli import main
    from iterit.training.hf import LOG_NAME

    samples, tok = data
    model_dir = tmp_path / "tiny"
    tiny_model(tok, seed=3).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    data_file = tmp_path / "data.jsonl"
    data_file.write_text(
        "".join(
            json.dumps({"instruction": s.instruction, "input": s.input, "output": s.response})
            + "\n"
            for s in samples
        )
    )
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
    (rec,) = [json.loads(line) for line in (run / LOG_NAME).read_text().splitlines()]
    assert rec["complexity_source"] == "learning-percentage" and rec["n_scored"] == 0
    np.testing.assert_allclose(rec["ifd"], c[rec["picks"]])
