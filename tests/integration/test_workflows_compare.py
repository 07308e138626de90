"""iterit.workflows.compare: arms through the training code, shared epoch-0 scores, per-epoch
evaluation and resumable arms; a tiny random Llama on CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from iterit.artifacts import COMPARE_ARM_SUMMARY, COMPARE_CSV, COMPARE_JSON, COMPARE_SCORES
from iterit.config import TrainConfig
from iterit.errors import ConfigError
from iterit.workflows.compare import compare
from tests.helpers.tiny_llama import save_tiny_model, tiny_tokenizer
from tests.helpers.tiny_run import tiny_train_config, write_alpaca_jsonl, write_tiny_run_inputs
from tests.helpers.training import real_samples

N = 30


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    samples = real_samples(N, offset=300)
    return write_tiny_run_inputs(tmp_path_factory.mktemp("tiny"), samples), samples


def config(folder, out, **kw) -> TrainConfig:
    return tiny_train_config(
        out, model=str(folder / "model"), data=str(folder / "data.jsonl"), **kw
    )


pytestmark = pytest.mark.slow


def test_arms_rows_compute_and_resume(setup, tmp_path, monkeypatch):
    folder, _samples = setup
    out = tmp_path / "cmp"
    res = compare(config(folder, out), "random,iterit,iterit-static")
    rows = res.rows
    assert {(r["arm"], r["epoch"]) for r in rows} == {
        ("base", 0),
        *((a, e) for a in ("random", "iterit", "iterit-static") for e in (1, 2)),
    }
    assert all(
        r["eval"] == "held-out" and np.isfinite(r["nll"]) and r["n_tokens"] > 0 for r in rows
    )
    assert len({r["n_tokens"] for r in rows}) == 1  # the same evaluation tokens for every arm
    assert (out / COMPARE_SCORES).is_file()  # epoch-0 scores, computed once
    arms = res.arms
    assert set(arms) == {"random/seed-0", "iterit/seed-0", "iterit-static/seed-0"}
    assert arms["random/seed-0"].scoring_forward_tokens == 0
    it, static = arms["iterit/seed-0"], arms["iterit-static/seed-0"]
    assert it.scoring_forward_tokens > static.scoring_forward_tokens > 0
    for a in arms.values():
        assert a.training_forward_tokens > 0 and a.training_seconds > 0
        assert a.evaluating_seconds > 0
    csv_head = (out / COMPARE_CSV).read_text().splitlines()[0]
    assert csv_head.startswith("arm,seed,epoch,eval,nll,n_tokens")
    doc = json.loads((out / COMPARE_JSON).read_text())
    assert len(doc["rows"]) == len(rows) and set(doc["arms"]) == set(arms)
    for arm in arms:
        assert (out / "arms" / arm / COMPARE_ARM_SUMMARY).is_file()
    # one seed: each arm's NLL has an interval over records, each arm a paired difference
    assert {d["arm"] for d in res.summary["differences"]} == {"iterit", "iterit-static"}

    # A finished arm is not run again; the table is rebuilt from the summaries.
    import iterit.workflows.compare as mod

    monkeypatch.setattr(mod, "_run_arm", lambda *a, **k: pytest.fail("arm re-run"))
    again = compare(config(folder, out), "random,iterit,iterit-static")
    assert again.rows == rows


def test_eval_files_and_seeds(setup, tmp_path):
    folder, samples = setup
    write_alpaca_jsonl(tmp_path / "ev.jsonl", samples[:5])
    write_alpaca_jsonl(tmp_path / "ev2.jsonl", samples[5:9])
    res = compare(
        config(folder, tmp_path / "c", epochs=1, budget=8),  # 2 steps: the first is warm-up
        "random,longest",
        seeds="1,2",
        eval_files=[tmp_path / "ev.jsonl", tmp_path / "ev2.jsonl"],
    )
    assert res.settings["n_train"] == N  # no held-out split when evaluation files are given
    # one row per arm, seed, epoch and evaluation set (base: once, no seed)
    assert sorted((r["arm"], r["seed"], r["eval"]) for r in res.rows if r["epoch"] == 1) == [
        (a, s, e) for a in ("longest", "random") for s in (1, 2) for e in ("ev.jsonl", "ev2.jsonl")
    ]
    assert [r["seed"] for r in res.rows if r["arm"] == "base"] == [None, None]
    by = {(r["arm"], r["seed"], r["eval"]): r["nll"] for r in res.rows if r["epoch"] == 1}
    assert by[("random", 1, "ev.jsonl")] != by[("random", 2, "ev.jsonl")]  # seeds differ
    (d1, d2) = res.summary["differences"]
    assert {d1["eval"], d2["eval"]} == {"ev.jsonl", "ev2.jsonl"}
    assert d1["n_seeds"] == 2 and d1["line"].startswith("longest - random at epoch 1 on ev")
    assert {(s["arm"], s["n_seeds"]) for s in res.summary["nll"]} >= {("random", 2), ("base", 1)}
    doc = json.loads((tmp_path / "c" / COMPARE_JSON).read_text())
    assert doc["summary"] == json.loads(json.dumps(res.summary))


def test_stale_state_of_other_settings_is_refused_never_reused(setup, tmp_path):
    """Ctrl-C, change a setting, run again: every reusable artefact (shared scores, base
    evaluation, finished arm) was made with the old settings and must not be reused."""
    folder, samples = setup
    out = tmp_path / "c"
    first = compare(config(folder, out, epochs=1), "iterit-static")
    with pytest.raises(ConfigError, match=r"epochs.*1.*2.*new output folder.*overwrite"):
        compare(config(folder, out, epochs=2), "iterit-static")
    with pytest.raises(ConfigError, match=r"max_length"):
        compare(config(folder, out, epochs=1, max_length=64), "iterit-static")
    other = tmp_path / "other"
    save_tiny_model(other, tiny_tokenizer(samples), seed=7)
    with pytest.raises(ConfigError, match=r"model"):
        cfg = tiny_train_config(out, model=str(other), data=str(folder / "data.jsonl"), epochs=1)
        compare(cfg, "iterit-static")
    assert json.loads((out / COMPARE_JSON).read_text())["rows"] == first.rows
    again = compare(config(folder, out, epochs=2), "iterit-static", overwrite=True)
    assert {(r["arm"], r["epoch"]) for r in again.rows} == {
        ("base", 0),
        ("iterit-static", 1),
        ("iterit-static", 2),
    }
    assert json.loads((out / COMPARE_JSON).read_text())["settings"]["epochs"] == 2
