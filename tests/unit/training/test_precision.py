"""Training precision follows the dtype choice: under ``auto`` on a CPU with native bfloat16 the
Trainer mixes precision in bfloat16 (its ``bf16`` switch with ``use_cpu``), float32 weights
stay; elsewhere, or with a dtype named, nothing changes."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch

from iterit.config import TrainConfig
from iterit.errors import ConfigError
from iterit.scoring import device as dev
from iterit.training.run import training_arguments


@pytest.fixture
def native_cpu(monkeypatch):
    """This process sees a CPU with native bfloat16, and no CUDA."""
    check = dev.CpuBf16(True, ("amx_bf16",), True, "AVX512")
    monkeypatch.setattr(dev, "cpu_bf16", lambda refresh=False: check)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _args(tmp_path, **kw):
    cfg = TrainConfig(output_dir=str(tmp_path), batch_size=4, micro_batch_size=4, **kw)
    return training_arguments(cfg, accum=1)


def test_auto_mixes_bf16_on_a_native_cpu(tmp_path, native_cpu):
    for dtype in (None, "auto"):
        args = _args(tmp_path, dtype=dtype)
        assert args.bf16 and args.use_cpu
    assert not _args(tmp_path, dtype="float32").bf16  # a dtype named: no mixing
    assert not _args(tmp_path, dtype="auto", bf16=False).bf16  # --no-bf16 wins


def test_no_mixing_without_native_bf16(tmp_path, monkeypatch):
    check = dev.CpuBf16(False, (), False, "AVX2")
    monkeypatch.setattr(dev, "cpu_bf16", lambda refresh=False: check)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not _args(tmp_path, dtype="auto").bf16


def test_unknown_dtype_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown dtype 'int8'"):
        TrainConfig(dtype="int8")


def test_precision_note_says_what_and_why(native_cpu):
    from iterit.training.run import precision_note

    note = precision_note(TrainConfig(dtype="auto"))
    assert note.startswith("float32 weights, bfloat16 mixed precision")
    assert "CPU with native bfloat16 (amx_bf16)" in note
    assert precision_note(TrainConfig(dtype="bfloat16")) == "weights in bfloat16 (as asked)"
