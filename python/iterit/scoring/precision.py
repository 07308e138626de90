"""What a model computes in, decided in one place: the weights' dtype, the autocast (mixed
precision) dtype, the Trainer's switches and the line that says why (docs/ifd.md, "Precision
(dtype)"; docs/training.md).

A :class:`Precision` is resolved once from a dtype request (one of
:data:`iterit.config.DTYPES`, ``None`` is ``auto``), a device and, for training, the
Trainer's ``bf16`` switch:

* :func:`scoring_precision`: a model loaded to score: ``auto`` is bfloat16 on CUDA (float16
  where CUDA lacks bfloat16), bfloat16 on a CPU with native bfloat16
  (:func:`iterit.scoring.device.cpu_bf16`), float32 elsewhere; no autocast.
* :func:`training_precision`: the model ``iterit train`` trains: float32 weights unless a dtype
  is named; bfloat16 mixed precision when asked (``bf16``), else by default where CUDA
  supports it, or under ``auto`` on a CPU with native bfloat16 (the CPU autocast).
* :func:`float32_training_precision`: a model trained with float32 weights whatever the
  request (the learning percentage): bfloat16 CPU autocast where the request resolves to
  bfloat16 on a CPU run.
* :func:`args_autocast`: the dtype a Trainer with given ``TrainingArguments`` autocasts to.

Imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from iterit.config import DTYPES
from iterit.errors import ConfigError
from iterit.scoring import device as cpu_check
from iterit.scoring.device import dtype_name
from iterit.utils.optional import requires_extra

with requires_extra("torch"):
    import torch

__all__ = [
    "Precision",
    "args_autocast",
    "float32_training_precision",
    "on_cpu",
    "scoring_precision",
    "training_precision",
]


@dataclass(frozen=True)
class Precision:
    """The weights' dtype, the autocast (mixed precision) dtype (None: no mixing), whether the
    Trainer must be told to run on the CPU, what was asked for and why ``auto`` resolved as it
    did."""

    weights: torch.dtype
    autocast: torch.dtype | None = None
    use_cpu: bool = False
    requested: str = "auto"  #: ``auto`` or the dtype's name
    reason: str = "as asked"

    @property
    def name(self) -> str:
        """The weights' dtype by name (``float32``, ``bfloat16``, ...)."""
        return dtype_name(self.weights)

    @property
    def bf16(self) -> bool:
        """Training mixes precision in bfloat16 (the Trainer's ``bf16``)."""
        return self.autocast == torch.bfloat16

    @property
    def cpu_autocast(self) -> bool:
        """The mixing is the Trainer's bfloat16 on a CPU."""
        return self.bf16 and self.use_cpu

    def trainer_flags(self) -> dict[str, bool]:
        """``bf16`` and ``use_cpu`` for ``TrainingArguments`` (``use_cpu`` under its
        release's name: :func:`iterit.training.compat.cpu_kwargs`)."""
        return {"bf16": self.bf16, "use_cpu": self.use_cpu}

    def describe(self) -> str:
        """The weights' dtype and why, e.g. ``bfloat16 (auto: CPU with native bfloat16)``."""
        if self.requested == "auto":
            return f"{self.name} (auto: {self.reason})"
        return f"{self.name} (as asked)"

    def note(self) -> str:
        """What a trained model computes in, and why, in one line (the model-load message)."""
        if self.requested != "auto":
            return f"weights in {self.requested} (as asked)"
        how = "bfloat16 mixed precision" if self.bf16 else "no mixed precision"
        return f"float32 weights, {how} (auto: {self.reason})"

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, for run logs."""
        return {"dtype": self.name, "requested": self.requested, "reason": self.reason}


def _requested(dtype: torch.dtype | str | None) -> str:
    if isinstance(dtype, torch.dtype):
        return dtype_name(dtype)
    requested = "auto" if dtype is None else str(dtype).lower().removeprefix("torch.")
    if requested not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r} (expected one of: {', '.join(DTYPES)})")
    return requested


def _device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def on_cpu(device: str | torch.device | None) -> bool:
    """The run is on the CPU: ``device`` is a CPU, or ``None`` without CUDA."""
    return _device(device).type == "cpu"


def scoring_precision(
    dtype: torch.dtype | str | None, device: str | torch.device | None = None
) -> Precision:
    """The dtype to run a model in on ``device`` (default: CUDA when available, else CPU).

    ``None`` or ``"auto"``: bfloat16 on CUDA (float16 where bfloat16 is unsupported), bfloat16
    on a CPU with native bfloat16, float32 elsewhere.  A dtype name of
    :data:`iterit.config.DTYPES` or a ``torch.dtype`` is taken as is; anything else is a
    :class:`~iterit.errors.ConfigError`."""
    requested = _requested(dtype)
    dev = _device(device)
    cpu = dev.type == "cpu"
    if isinstance(dtype, torch.dtype):
        return Precision(dtype, None, cpu, requested)
    if requested != "auto":
        return Precision(getattr(torch, requested), None, cpu, requested)
    if dev.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision(torch.bfloat16, None, cpu, "auto", "CUDA")
        return Precision(torch.float16, None, cpu, "auto", "CUDA without bfloat16")
    if cpu:
        check = cpu_check.cpu_bf16()  # looked up on the module: tests fake the detection
        weights = torch.bfloat16 if check.native else torch.float32
        return Precision(weights, None, cpu, "auto", check.describe())
    return Precision(torch.float32, None, cpu, "auto", f"{dev.type} device")


def _explicit_cpu(device: str | torch.device | None) -> bool:
    return device is not None and torch.device(device).type == "cpu"


def training_precision(
    dtype: str | None, device: str | torch.device | None = None, *, bf16: bool | None = None
) -> Precision:
    """The precision ``iterit train`` trains in: the weights in ``dtype`` when one is named,
    else float32; bfloat16 mixed precision when ``bf16`` says so, else (``bf16=None``) where
    CUDA supports it, or under ``auto`` on a CPU with native bfloat16 (the CPU autocast, which
    needs the Trainer's ``use_cpu``; a ``device`` that is a CPU needs it too)."""
    requested = _requested(dtype)
    auto = scoring_precision("auto", device)
    weights = torch.float32 if requested == "auto" else getattr(torch, requested)
    use_cpu = _explicit_cpu(device)
    if bf16 is None:
        bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        if not bf16 and requested == "auto" and on_cpu(device):
            bf16 = scoring_precision("auto", "cpu").weights == torch.bfloat16
            use_cpu = use_cpu or bf16
    return Precision(weights, torch.bfloat16 if bf16 else None, use_cpu, requested, auto.reason)


def float32_training_precision(
    dtype: str | None, device: str | torch.device | None = None
) -> Precision:
    """Float32 weights trained (the learning percentage's small model), mixing precision in
    bfloat16 where ``dtype`` resolves to bfloat16 on the run's device (``auto``: CUDA with
    bfloat16, or a CPU with native bfloat16: the CPU autocast); ``float32`` never mixes."""
    cpu = on_cpu(device)
    resolved = scoring_precision(dtype, "cpu" if cpu else device)
    mixed = resolved.weights == torch.bfloat16
    return Precision(
        torch.float32,
        torch.bfloat16 if mixed else None,
        _explicit_cpu(device) or (mixed and cpu),
        resolved.requested,
        resolved.reason,
    )


def args_autocast(args: Any) -> torch.dtype | None:
    """The dtype a Trainer with ``args`` (``TrainingArguments``) autocasts its forward passes
    to: bfloat16 with ``bf16``, float16 with ``fp16``, None without mixed precision."""
    if getattr(args, "bf16", False):
        return torch.bfloat16
    if getattr(args, "fp16", False):
        return torch.float16
    return None
