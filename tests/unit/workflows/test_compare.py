"""iterit.workflows.compare without training (the arm runs are in
tests/integration/test_workflows_compare.py): the held-out split, the arm list, the evaluation
files' formats and the checks made before any work."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import iterit.training.run as run_mod
from iterit.errors import ConfigError, DataError
from iterit.workflows.compare import _eval_sets, compare, held_out_split, parse_arms
from tests.helpers.tiny_run import tiny_train_config, write_alpaca_jsonl
from tests.helpers.training import real_samples


def test_held_out_split_is_deterministic_and_order_free():
    samples = real_samples(30, offset=300)
    train, held = held_out_split(samples, 0.2)
    assert held and len(train) + len(held) == len(samples)
    assert {s.response for s in train}.isdisjoint({s.response for s in held})
    _train2, held2 = held_out_split(samples[::-1], 0.2)
    assert {s.response for s in held} == {s.response for s in held2}


def test_parse_arms():
    assert parse_arms("random, iterit,random") == ["random", "iterit"]
    with pytest.raises(ConfigError, match="unknown arm"):
        parse_arms("random,best")


def test_each_eval_file_is_read_in_its_own_format(tmp_path):
    samples = real_samples(4, offset=300)
    msgs = tmp_path / "chat.jsonl"
    msgs.write_text(
        "".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": s.instruction},
                        {"role": "assistant", "content": s.response},
                    ]
                }
            )
            + "\n"
            for s in samples
        )
    )
    alpaca = write_alpaca_jsonl(tmp_path / "a.jsonl", samples)
    # The training data is Alpaca: its detected format must not be forced on the eval files.
    cfg = tiny_train_config(tmp_path / "o", model="m", data=str(alpaca), data_format="alpaca")
    _train, sets = _eval_sets(cfg, samples, [msgs, alpaca], 0.1)
    assert [len(v) for v in sets.values()] == [4, 4]
    assert [s.response for s in sets["chat.jsonl"]] == [s.response for s in samples]


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model fails the test: the checks must come before any work."""
    monkeypatch.setattr(run_mod, "load_training_model", lambda *a, **k: pytest.fail("loaded"))


def test_a_budget_above_the_data_is_refused_before_any_work(tmp_path, no_model):
    data = write_alpaca_jsonl(tmp_path / "d.jsonl", real_samples(12, offset=300))
    cfg = tiny_train_config(tmp_path / "o", model="m", data=str(data), budget=50)
    with pytest.raises(ConfigError, match=r"budget 50 .* 1[01] training samples"):
        compare(cfg, "random,iterit")
    assert not (tmp_path / "o" / "arms").exists()


def test_data_whose_every_response_is_empty_is_refused_before_loading_a_model(tmp_path, no_model):
    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join(json.dumps({"instruction": f"q{i}", "output": " "}) + "\n" for i in range(20))
    )
    cfg = tiny_train_config(tmp_path / "o", model="m", data=str(data))
    with pytest.raises(DataError, match="every response is empty"):
        compare(cfg, "random")


def test_fewer_ifd_candidates_than_the_budget_cap_every_arm_alike(tmp_path):
    from iterit.artifacts.score_files import ifd_columns, write_table
    from iterit.workflows.compare import _cap_to_candidates

    samples = real_samples(10, offset=300)
    ifd = [0.5, 0.7, 1.2, float("nan"), 0.9, 1.5, 2.0, 1.1, 1.0, 0.2]  # 4 candidates
    cols = {"ifd": ifd, "nll_cond": [1.0] * 10, "nll_prior": [1.0] * 10, "n_tokens": [5] * 10}
    path = tmp_path / "scores.jsonl"
    write_table(path, ifd_columns(cols, samples, variant="iterit"), overwrite=True)
    said = []
    cfg = tiny_train_config(tmp_path, model="m", data="d", budget=6)
    capped = _cap_to_candidates(cfg, samples, path, said.append)
    assert capped.budget == 4 and "capped at 4" in said[0] and "fewer than the 6" in said[0]
    assert _cap_to_candidates(capped, samples, path, said.append) is capped  # within: as is
    assert _cap_to_candidates(cfg, samples, None, said.append) is cfg  # no IFD arm
    none = ifd_columns({**cols, "ifd": [1.5] * 10}, samples, variant="iterit")
    write_table(path, none, overwrite=True)
    with pytest.raises(DataError, match="no training sample is an IFD candidate"):
        _cap_to_candidates(cfg, samples, path, said.append)
