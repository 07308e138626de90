"""iterit.training.run and ``iterit train``: the high-level run, its switches (docs/training.md)
and the command line, on a tiny random Llama and real Alpaca records, CPU only."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from iterit.artifacts import SELECTION_LOG, SELECTION_SUMMARY, TRAIN_CONFIG
from iterit.config import TrainConfig
from iterit.training.run import gradient_accumulation, train
from tests.helpers.tiny_llama import save_tiny_model, tiny_model, tiny_tokenizer
from tests.helpers.tiny_run import (
    TINY_RUN_OPTIONS,
    alpaca_record,
    tiny_train_config,
    write_alpaca_jsonl,
)
from tests.helpers.training import read_log, real_samples

N = 40


@pytest.fixture(scope="module")
def data():
    samples = real_samples(N, offset=200)
    return samples, tiny_tokenizer(samples)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, data):
    """The tiny model and its tokenizer saved as a local model folder (what --model takes)."""
    _samples, tok = data
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"), tok, seed=1)


def test_paper_defaults_and_validation():
    cfg = TrainConfig(model="m", data="d.jsonl")
    assert (cfg.epochs, cfg.budget, cfg.pool_factor, cfg.decay) == (3, 0.05, 3.0, 0.1)
    assert (cfg.learning_rate, cfg.lr_scheduler, cfg.warmup_ratio, cfg.batch_size) == (
        2e-5,
        "cosine",
        0.03,
        32,
    )
    assert cfg.diversity == "response" and cfg.iterate
    assert gradient_accumulation(32, 4, 1) == 8
    assert gradient_accumulation(32, 4, 2) == 4
    with pytest.raises(ValueError, match="multiple"):
        gradient_accumulation(32, 3, 1)
    with pytest.raises(ValueError, match="diversity"):
        TrainConfig(diversity="tokens")
    with pytest.raises(ValueError, match="trainer"):
        TrainConfig(trainer="keras")
    with pytest.raises(ValueError, match="budget"):
        TrainConfig(budget=0)


@pytest.mark.slow
def test_train_end_to_end_from_files(tmp_path, data, model_dir):
    samples, _tok = data
    data_file = write_alpaca_jsonl(tmp_path / "data.jsonl", samples)
    out = tmp_path / "run"
    res = train(
        tiny_train_config(out, model=str(model_dir), data=str(data_file), save_strategy="epoch")
    )
    steps = 2 * math.ceil(4 / 4)
    assert res.train_output.global_step == steps
    recs = read_log(out)
    assert [r["epoch"] for r in recs] == [0, 1]
    assert [r["n_scored"] for r in recs] == [N, 12]
    assert all(len(r["picks"]) == 4 for r in recs)
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    saved = json.loads((out / TRAIN_CONFIG).read_text())
    assert saved["budget_count"] == 4 and saved["gradient_accumulation_steps"] == 2
    assert saved["steps_per_epoch"] == 1
    assert json.loads((out / SELECTION_SUMMARY).read_text())["n_scored_total"] == N + 12
    # Every epoch's checkpoint carries the selections so far.
    state = json.loads((out / f"checkpoint-{steps}" / "trainer_state.json").read_text())
    assert [r["picks"] for r in state["stateful_callbacks"]["iterit"]["records"]] == [
        r["picks"] for r in recs
    ]


def _run(tmp_path, data, **kw):
    samples, tok = data
    out = tmp_path / "run"
    res = train(
        tiny_train_config(out, **kw), samples=samples, model=tiny_model(tok, seed=1), tokenizer=tok
    )
    return res, read_log(out)


@pytest.mark.slow
def test_no_iteration_scores_once_and_reuses_the_selection(tmp_path, data):
    res, recs = _run(tmp_path, data, iterate=False, epochs=3)
    assert [r["n_scored"] for r in recs] == [N, 0, 0]
    assert [r["picks"] for r in recs] == [recs[0]["picks"]] * 3
    assert res.summary.n_scored_total == N


@pytest.mark.slow
def test_ifd_only_picks_the_highest_ifd_of_the_pool(tmp_path, data):
    _res, recs = _run(tmp_path, data, diversity="none")
    for r in recs:
        assert r["strategy"] == "ifd" and r["ifd"] == sorted(r["ifd"], reverse=True)
        assert r["score"] == r["ifd"]


@pytest.mark.slow
@pytest.mark.parametrize("diversity", ["instruction", "both"])
def test_diversity_on_instruction_or_both(tmp_path, data, diversity):
    import iterit
    from iterit.selection.strategies import diversity_texts

    samples, _tok = data
    res, recs = _run(tmp_path, data, diversity=diversity, epochs=1)
    (r,) = recs
    assert r["diversity"] == diversity and len(r["picks"]) == 4
    # The picks are the greedy selection over the chosen text of the pool's samples.
    pool, ifd = res.callback.pool, res.callback.pool_scores
    texts = diversity_texts([samples[i] for i in pool], diversity)
    sel = iterit.select(texts, ifd, 4, decay=0.1)
    assert pool[sel.indices].tolist() == r["picks"]
    assert r["score"] == pytest.approx(sel.scores.tolist())


@pytest.mark.slow
def test_separate_scorer_model_is_not_rescored(tmp_path, data, model_dir):
    res, recs = _run(tmp_path, data, scorer_model=str(model_dir))
    assert [r["n_scored"] for r in recs] == [N, 0]
    assert [r["rescored"] for r in recs] == [True, False]
    assert recs[1]["picks"] == recs[0]["picks"]
    assert res.callback.score_fn.scorer_model is not None


@pytest.mark.slow
def test_scores_file_replaces_epoch0_scoring(tmp_path, data):
    rng = np.random.default_rng(5)
    ifd = rng.uniform(0.2, 1.1, size=N)
    scores = tmp_path / "scores.jsonl"
    scores.write_text("".join(json.dumps({"index": i, "ifd": v}) + "\n" for i, v in enumerate(ifd)))
    _res, recs = _run(tmp_path, data, scores=str(scores))
    assert [r["n_scored"] for r in recs] == [0, 12]
    assert recs[0]["ifd"] == pytest.approx(ifd[recs[0]["picks"]].tolist())
    valid = np.flatnonzero(ifd < 1.0)
    pool = set(valid[np.argsort(-ifd[valid], kind="stable")][:12].tolist())
    assert set(recs[1]["picks"]) <= pool


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["random", "longest"])
def test_static_baselines_need_no_scoring(tmp_path, data, strategy):
    samples, _tok = data
    _res, recs = _run(tmp_path, data, strategy=strategy)
    assert [r["n_scored"] for r in recs] == [0, 0]
    assert recs[0]["picks"] == recs[1]["picks"]
    if strategy == "longest":
        words = [len(samples[i].response.split()) for i in recs[0]["picks"]]
        assert min(words) >= sorted((len(s.response.split()) for s in samples), reverse=True)[3]


@pytest.mark.slow
def test_trl_trainer_path(tmp_path, data):
    pytest.importorskip("trl")
    res, recs = _run(tmp_path, data, trainer="trl", epochs=1)
    import trl

    from iterit.training.trainers import IterITSFTTrainer

    assert type(res.trainer) is IterITSFTTrainer and isinstance(res.trainer, trl.SFTTrainer)
    assert res.train_output.global_step == 1 and len(recs[0]["picks"]) == 4


@pytest.mark.slow
def test_cli_train(tmp_path, data, model_dir):
    click_testing = pytest.importorskip("click.testing")
    from iterit.cli import main

    samples, _tok = data
    data_file = tmp_path / "data.json"
    records = [alpaca_record(s) for s in samples]
    data_file.write_text(json.dumps(records))
    out = tmp_path / "run"
    args = [
        "train",
        "--model",
        str(model_dir),
        "--data",
        str(data_file),
        "--output-dir",
        str(out),
        "--budget",
        "10%",
        "--pool-factor",
        "2",
        "--decay",
        "0.2",
        "--diversity",
        "both",
        "--epochs",
        "2",
        "--learning-rate",
        "0.01",
        *TINY_RUN_OPTIONS,
    ]
    runner = click_testing.CliRunner()
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "samples scored" in result.output
    recs = read_log(out)
    assert [len(r["picks"]) for r in recs] == [4, 4]  # 10% of 40
    assert [r["pool_size"] for r in recs] == [8, 8]  # pool factor 2
    saved = json.loads((out / TRAIN_CONFIG).read_text())
    assert (saved["decay"], saved["diversity"], saved["epochs"]) == (0.2, "both", 2)
    # A second run into the same folder is refused unless resumed or overwritten.
    again = runner.invoke(main, args)
    assert again.exit_code != 0 and "previous run" in again.output
    assert (out / SELECTION_LOG).exists()
