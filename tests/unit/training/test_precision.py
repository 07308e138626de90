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
    from iterit.training.run import precision

    note = precision(TrainConfig(dtype="auto")).note()
    assert note.startswith("float32 weights, bfloat16 mixed precision")
    assert "CPU with native bfloat16 (amx_bf16)" in note
    assert precision(TrainConfig(dtype="bfloat16")).note() == "weights in bfloat16 (as asked)"
    assert precision(TrainConfig(dtype="float32")).note() == "weights in float32 (as asked)"


@pytest.mark.parametrize(
    ("dtype", "device", "bf16", "weights", "autocast", "use_cpu"),
    [
        (None, None, None, "float32", "bfloat16", True),  # auto on a native CPU: CPU autocast
        ("auto", "cpu", None, "float32", "bfloat16", True),
        ("float32", None, None, "float32", None, False),  # a dtype named: no mixing
        ("bfloat16", "cpu", None, "bfloat16", None, True),  # bf16 weights, device cpu: use_cpu
        ("auto", "cpu", False, "float32", None, True),  # --no-bf16 wins
        ("auto", None, True, "float32", "bfloat16", False),  # --bf16 asked: as given
    ],
)
def test_training_precision_on_a_native_cpu(
    native_cpu, dtype, device, bf16, weights, autocast, use_cpu
):
    """The one value training_arguments, the run log and the model-load line read."""
    from iterit.scoring.precision import training_precision

    p = training_precision(dtype, device, bf16=bf16)
    assert p.name == weights
    assert p.autocast == (None if autocast is None else getattr(torch, autocast))
    assert p.trainer_flags() == {"bf16": autocast == "bfloat16", "use_cpu": use_cpu}


def test_training_precision_on_cuda(monkeypatch):
    from iterit.scoring.precision import training_precision
    from iterit.training.compat import mixed_precision_kwargs

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    p = training_precision(None)
    assert p.bf16 and not p.use_cpu and p.reason == "CUDA"
    assert training_precision("float32").bf16  # float32 weights, CUDA's bf16 by default
    assert mixed_precision_kwargs() == {"bf16": True}
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert not training_precision(None).bf16
    assert mixed_precision_kwargs() == {"bf16": False}


def test_learning_percentage_precision_never_mixes_float32(native_cpu):
    """The learning percentage trains float32 weights: ``float32`` asked stays float32 even
    on a CPU whose ``auto`` would mix."""
    from iterit.scoring.precision import float32_training_precision

    auto = float32_training_precision("auto", "cpu")
    assert auto.cpu_autocast and auto.weights == torch.float32
    pinned = float32_training_precision("float32", "cpu")
    assert pinned.trainer_flags() == {"bf16": False, "use_cpu": True}
    assert not float32_training_precision("float32", None).use_cpu  # the trainer's own choice


def test_run_log_names_the_scorers_dtype():
    from types import SimpleNamespace

    from iterit.scoring.model import LoadedModel
    from iterit.scoring.precision import scoring_precision
    from iterit.training.run import _precision

    args = SimpleNamespace(bf16=True, fp16=False, device="cpu")
    trainer = SimpleNamespace(args=args, model=torch.nn.Linear(2, 2))
    scorer = LoadedModel(None, None, scoring_precision("bfloat16", "cpu"))
    out = _precision(trainer, scorer)
    assert out == {
        "weights": "float32",
        "mixed_precision": "bf16 (CPU autocast)",
        "scorer": {"dtype": "bfloat16", "requested": "bfloat16", "reason": "as asked"},
    }
    assert "scorer" not in _precision(trainer, None)


def test_the_cpu_bf16_option_fakes_the_detection(request):
    """``--cpu-bf16 native`` / ``absent`` (tests/conftest.py) is what the session sees."""
    mode = request.config.getoption("--cpu-bf16")
    if mode == "detect":
        pytest.skip("the session detects this CPU (run with --cpu-bf16=native or absent)")
    assert dev.cpu_bf16().native is (mode == "native")
    assert dev.cpu_bf16(refresh=True).native is (mode == "native")  # a refresh keeps it
