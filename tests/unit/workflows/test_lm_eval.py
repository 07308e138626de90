"""iterit.workflows.lm_eval: the optional lm-evaluation-harness hand-off (a clear
MissingDependencyError without it; the call it makes with it, against a stand-in module)."""

from __future__ import annotations

import importlib.util
import sys
from types import SimpleNamespace

import pytest

from iterit.errors import MissingDependencyError
from iterit.workflows import lm_eval


def test_missing_lm_eval_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(MissingDependencyError, match="pip install lm-eval"):
        lm_eval.require_lm_eval()
    with pytest.raises(MissingDependencyError):
        lm_eval.run_lm_eval("model", "hellaswag")


@pytest.fixture
def fake_lm_eval(monkeypatch):
    calls = []

    def simple_evaluate(**kwargs):
        calls.append(kwargs)
        return {"results": {t: {"acc": 0.5} for t in kwargs["tasks"]}, "config": {}}

    module = SimpleNamespace(simple_evaluate=simple_evaluate)
    monkeypatch.setitem(sys.modules, "lm_eval", module)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "lm_eval" else real_find_spec(name, *a),
    )
    return calls


def test_run_lm_eval_passes_the_saved_model_and_the_task_list(tmp_path, fake_lm_eval):
    got = lm_eval.run_lm_eval(tmp_path / "model", " arc_easy, ,hellaswag ", device="cpu")
    assert got == {"arc_easy": {"acc": 0.5}, "hellaswag": {"acc": 0.5}}
    (call,) = fake_lm_eval
    assert call["model"] == "hf" and call["device"] == "cpu"
    assert call["model_args"] == {"pretrained": str(tmp_path / "model")}
    assert call["tasks"] == ["arc_easy", "hellaswag"]


def test_a_comma_in_the_model_path_injects_no_argument(tmp_path, fake_lm_eval):
    model = tmp_path / "run,trust_remote_code=True"
    lm_eval.run_lm_eval(model, "hellaswag")
    (call,) = fake_lm_eval
    assert call["model_args"] == {"pretrained": str(model)}
