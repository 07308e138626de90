"""iterit.training.eval_callback: one row per epoch and evaluation set, rewritten whole after
every epoch, read back on resume (a re-evaluated epoch replaces its rows).  The NLL itself is
iterit.scoring.evaluate's (tested there and in the compare runs); here it is a stand-in."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("transformers")

import iterit.scoring.evaluate as evaluate
from iterit.data.sample import Sample
from iterit.training.eval_callback import EvalCallback

SETS = {"a": [Sample("x", "y")], "b": [Sample("p", "q"), Sample("r", "s")]}


@pytest.fixture
def fake_nll(monkeypatch):
    calls = []

    def eval_nll(model, tokenizer, samples, **settings):
        calls.append((model, len(samples), settings))
        n = len(samples)
        return SimpleNamespace(
            nll=float(model) + n,
            n_tokens=10 * n,
            n_samples=n,
            seconds=0.123456,
            forward_tokens=7,
            record_nll=(float(model) + n,) * n,
            record_tokens=(10,) * n,
        )

    monkeypatch.setattr(evaluate, "eval_nll", eval_nll)
    return calls


def test_rows_per_epoch_and_set_with_the_scoring_settings(tmp_path, fake_nll):
    cb = EvalCallback(SETS, "tok", template="plain", max_length=64, path=tmp_path / "e.jsonl")
    rows = cb.evaluate(1.0, epoch=1)
    assert rows == [
        {"epoch": 1, "eval": "a", "nll": 2.0, "n_tokens": 10, "n_samples": 1, "seconds": 0.1235,
         "forward_tokens": 7, "record_nll": [2.0], "record_tokens": [10]},
        {"epoch": 1, "eval": "b", "nll": 3.0, "n_tokens": 20, "n_samples": 2, "seconds": 0.1235,
         "forward_tokens": 7, "record_nll": [3.0, 3.0], "record_tokens": [10, 10]},
    ]  # fmt: skip
    assert fake_nll[0][2] == {
        "template": "plain",
        "max_length": 64,
        "batch_tokens": None,
        "turns": "all",
    }
    on_disk = [json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert on_disk == rows


def test_a_resumed_run_keeps_earlier_epochs_and_replaces_a_repeated_one(tmp_path, fake_nll):
    path = tmp_path / "e.jsonl"
    first = EvalCallback(SETS, "tok", path=path)
    first.evaluate(1.0, epoch=1)
    first.evaluate(1.0, epoch=2)
    resumed = EvalCallback(SETS, "tok", path=path)
    assert resumed.rows == first.rows
    resumed.evaluate(5.0, epoch=2)  # epoch 2 evaluated again after resuming from epoch 1
    on_disk = [json.loads(x) for x in path.read_text().splitlines()]
    assert [(r["epoch"], r["eval"], r["nll"]) for r in on_disk] == [
        (1, "a", 2.0),
        (1, "b", 3.0),
        (2, "a", 6.0),
        (2, "b", 7.0),
    ]


def test_on_epoch_end_restores_the_training_mode(fake_nll):
    class Model:
        training = True

        def __float__(self):
            return 0.0

        def train(self, mode=True):
            self.training = mode

    cb = EvalCallback(SETS, "tok")
    model = Model()
    cb.on_epoch_end(None, SimpleNamespace(epoch=2.9999), None, model=model)
    assert [r["epoch"] for r in cb.rows] == [3, 3] and model.training
    cb.on_epoch_end(None, SimpleNamespace(epoch=4.0), None, model=None)
    assert len(cb.rows) == 2  # no model: nothing to evaluate


@pytest.mark.parametrize("turns", ["all", "last"])
def test_conversations_are_evaluated_on_the_runs_turns(turns):
    """A conversation's evaluation NLL covers the assistant turns the run trains (``turns``),
    as computed by hand; the two choices differ."""
    from tests.helpers.conversations import chat_tokenizer, conversations, nll_by_hand
    from tests.helpers.word_llama import make_model

    tok = chat_tokenizer()
    convs = [s for s in conversations(6, seed=2) if s.n_turns > 1]
    model = make_model(len(tok)).eval()
    cb = EvalCallback({"chat": convs}, tok, template="chat", max_length=200, turns=turns)
    (row,) = cb.evaluate(model, epoch=1)
    want = [nll_by_hand(model, tok, s, turns) for s in convs]
    np.testing.assert_allclose(row["record_nll"], want, rtol=1e-5)
    other = "last" if turns == "all" else "all"
    assert not np.allclose(want, [nll_by_hand(model, tok, s, other) for s in convs])
