"""The CPU check behind ``auto`` precision, and a model's dtype by name.

``auto`` is bfloat16 on CUDA (float16 where CUDA lacks bfloat16), bfloat16 on a CPU that
multiplies bfloat16 natively, and float32 everywhere else.  "Natively" is detected, not
guessed, in two steps that must both agree:

* the hardware: Linux reports the instruction-set extensions in ``/proc/cpuinfo``;
  ``avx512_bf16`` (AVX512-BF16 dot products) or ``amx_bf16`` (AMX tiles) on x86-64, ``bf16``
  (the Armv8.6 BF16 extension) on Arm;
* torch's own kernels: ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` (oneDNN can run
  bfloat16 on this CPU).

Either one alone is not enough: oneDNN also says yes on AVX-512 CPUs without the BF16
extension, where bfloat16 matrix products are converted to float32 and run no faster, and a
CPU flag is useless if the installed torch has no kernel for it.  On a CPU with AVX2 only,
bfloat16 matrix products are several times slower than float32.  Other systems (macOS, Windows,
no ``/proc/cpuinfo``) get float32.  What a model then runs and trains in is decided by
:mod:`iterit.scoring.precision`.  Imports torch.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iterit.utils.optional import requires_extra

with requires_extra("torch"):
    import torch

__all__ = [
    "CPU_BF16_FLAGS",
    "CpuBf16",
    "cpu_bf16",
    "cpu_flags",
    "dtype_name",
    "model_dtype_name",
]

#: ``/proc/cpuinfo`` flags that mean native bfloat16 arithmetic (x86-64, then Arm).
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")

_CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: Path = _CPUINFO) -> frozenset[str]:
    """The flags of the first CPU in ``cpuinfo`` (x86 ``flags``, Arm ``Features``); empty
    where the file does not exist or cannot be read (not Linux)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


def _torch_cpu_bf16() -> bool:
    """torch's oneDNN kernels run bfloat16 on this CPU."""
    try:
        return bool(
            torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    except (AttributeError, RuntimeError):  # a torch build without the check
        return False


@dataclass(frozen=True)
class CpuBf16:
    """Whether this CPU multiplies bfloat16 natively, and what the checks saw."""

    native: bool
    flags: tuple[str, ...]  #: the bfloat16 flags the CPU reports (of :data:`CPU_BF16_FLAGS`)
    torch_kernels: bool  #: torch's oneDNN says it runs bfloat16 here
    capability: str  #: ``torch.backends.cpu.get_cpu_capability()`` (the vector unit torch uses)

    def describe(self) -> str:
        """One line for messages and logs."""
        if self.native:
            return f"CPU with native bfloat16 ({', '.join(self.flags)})"
        if not self.flags:
            return f"CPU without native bfloat16 ({self.capability}, no bfloat16 flag)"
        return f"CPU flags {', '.join(self.flags)} but no bfloat16 kernels in this torch"


_CACHED: CpuBf16 | None = None


def cpu_bf16(*, refresh: bool = False) -> CpuBf16:
    """The native-bfloat16 check of this CPU (computed once per process)."""
    global _CACHED
    if _CACHED is None or refresh:
        found = cpu_flags(_CPUINFO) if platform.system() == "Linux" else frozenset()
        flags = tuple(f for f in CPU_BF16_FLAGS if f in found)
        kernels = _torch_cpu_bf16()
        try:
            capability = str(torch.backends.cpu.get_cpu_capability())
        except (AttributeError, RuntimeError):  # pragma: no cover
            capability = "unknown"
        _CACHED = CpuBf16(bool(flags) and kernels, flags, kernels, capability)
    return _CACHED


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")


def model_dtype_name(model: Any) -> str:
    """The dtype a model computes in: its input embeddings' (else its first floating
    parameter's), by name; ``float32`` for a model without floating parameters."""
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    weight = getattr(emb, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.is_floating_point():
        return dtype_name(weight.dtype)
    for p in model.parameters():
        if p.is_floating_point():
            return dtype_name(p.dtype)
    return "float32"
