"""``iterit train``'s LoRA options reach TrainConfig (the run itself is replaced: training is
tested in tests/integration/test_real_model_training.py and tests/unit/training/test_lora.py)."""

from __future__ import annotations

import pytest

from tests.helpers.cli import EXAMPLE, fail, run


@pytest.fixture
def captured(monkeypatch):
    pytest.importorskip("torch")
    import iterit.training.run as run_module

    seen = {}

    class Stop(Exception):
        pass

    def fake_train(cfg, samples=None, **kw):
        seen["cfg"] = cfg
        raise Stop

    monkeypatch.setattr(run_module, "train", fake_train)
    return seen, Stop


def _config(tmp_path, captured, *extra):
    seen, stop = captured
    with pytest.raises(stop):
        run("train", "--model", "m", "--data", EXAMPLE, "--output-dir", tmp_path / "o", *extra)
    return seen["cfg"]


def test_lora_options_reach_the_config(tmp_path, captured):
    cfg = _config(
        tmp_path, captured, "--lora", "--lora-r", "8", "--lora-alpha", "16",
        "--lora-dropout", "0.1", "--lora-targets", "q_proj, v_proj", "--merge-lora",
    )  # fmt: skip
    assert (cfg.lora, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout) == (True, 8, 16.0, 0.1)
    assert cfg.lora_targets == ("q_proj", "v_proj") and cfg.merge_lora is True
    cfg = _config(tmp_path, captured, "--lora", "--lora-targets", "all-linear")
    assert cfg.lora_targets == "all-linear"
    cfg = _config(tmp_path, captured)
    assert cfg.lora is False and cfg.lora_targets is None


def test_merge_lora_needs_lora(tmp_path):
    out = fail(
        "train", "--model", "m", "--data", EXAMPLE, "--output-dir", tmp_path / "o", "--merge-lora"
    )
    assert "--merge-lora needs --lora" in out
