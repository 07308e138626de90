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
    assert arms["random"].scoring_forward_tokens == 0
    assert arms["iterit"].scoring_forward_tokens > arms["iterit-static"].scoring_forward_tokens > 0
    for a in arms.values():
        assert a.training_forward_tokens > 0 and a.training_seconds > 0
        assert a.evaluating_seconds > 0
    csv_head = (out / COMPARE_CSV).read_text().splitlines()[0]
    assert csv_head.startswith("arm,epoch,eval,nll,n_tokens")
    doc = json.loads((out / COMPARE_JSON).read_text())
    assert len(doc["rows"]) == len(rows) and set(doc["arms"]) == set(arms)
    for arm in arms:
        assert (out / "arms" / arm / COMPARE_ARM_SUMMARY).is_file()

    # A finished arm is not run again; the table is rebuilt from the summaries.
    import iterit.workflows.compare as mod

    monkeypatch.setattr(mod, "_run_arm", lambda *a, **k: pytest.fail("arm re-run"))
    again = compare(config(folder, out), "random,iterit,iterit-static")
    assert again.rows == rows


def test_eval_files_and_identical_start(setup, tmp_path):
    folder, samples = setup
    write_alpaca_jsonl(tmp_path / "ev.jsonl", samples[:5])
    res = compare(
        config(folder, tmp_path / "c", epochs=1), "random", eval_files=[tmp_path / "ev.jsonl"]
    )
    assert {r["eval"] for r in res.rows} == {"ev.jsonl"}
    assert res.settings["n_train"] == N  # no held-out split when evaluation files are given


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
        compare(config(folder, out, epochs=1, model=str(other)), "iterit-static")
    assert json.loads((out / COMPARE_JSON).read_text())["rows"] == first.rows
    again = compare(config(folder, out, epochs=2), "iterit-static", overwrite=True)
    assert {(r["arm"], r["epoch"]) for r in again.rows} == {
        ("base", 0),
        ("iterit-static", 1),
        ("iterit-static", 2),
    }
    assert json.loads((out / COMPARE_JSON).read_text())["settings"]["epochs"] == 2
