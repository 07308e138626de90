"""iterit.training.lora without training: the adapter configuration, its TrainConfig fields and
the missing-peft hint (training with adapters: tests/integration/test_training_lora.py)."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")


from iterit.config import TrainConfig
from iterit.errors import ConfigError, MissingDependencyError
from iterit.training.lora import LLAMA_TARGETS, lora_config


def _lora(**kw):
    return lora_config(r=4, alpha=8, dropout=0.0, **kw)


def test_lora_config_defaults_suit_llama_models():
    cfg = lora_config()
    assert set(cfg.target_modules) == set(LLAMA_TARGETS)
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout) == (16, 32, 0.05)
    assert cfg.task_type == "CAUSAL_LM"
    assert lora_config(targets="all-linear").target_modules == "all-linear"
    assert set(lora_config(targets=["q_proj"]).target_modules) == {"q_proj"}
    with pytest.raises(ConfigError, match="lora_r"):
        lora_config(r=0)


def test_missing_peft_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(MissingDependencyError, match=r"iterit\[train\]"):
        lora_config()


def test_train_config_lora_fields():
    cfg = TrainConfig(lora=True, lora_r=8, lora_targets=("q_proj", "v_proj"), merge_lora=True)
    assert cfg.to_json()["lora_targets"] == ("q_proj", "v_proj")
    with pytest.raises(ConfigError, match="merge_lora"):
        TrainConfig(merge_lora=True)
    with pytest.raises(ConfigError, match="lora_dropout"):
        TrainConfig(lora=True, lora_dropout=1.0)
