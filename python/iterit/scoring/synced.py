"""Forward passes that every rank makes together: what scoring needs under a sharded model.

Under FSDP (``FullyShardedDataParallel``, ``fully_shard``) or DeepSpeed ZeRO-3 every forward
pass is a collective: each layer gathers its parameters from all ranks.  Ranks that make
different numbers of forward calls stop matching and the job hangs or aborts.  Here every
rank makes the same number of calls: the count is agreed by an all-reduce (max), and a rank
that has run out of work joins the remaining calls with a minimal dummy batch, as
``generate(synced_gpus=True)`` does (docs/training.md, "What works where").

:func:`run_synced` is the loop, for any per-rank list of batches (the scorer's IFD passes,
learning-percentage perplexities, an evaluation); :func:`is_sharded_model` decides when the
scorer needs it.  Imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from iterit.utils.distributed import all_reduce_max
from iterit.utils.optional import requires_extra

with requires_extra("torch"):
    import torch

__all__ = ["forward_accepts", "is_sharded_model", "run_synced", "sharding_kind"]

B = TypeVar("B")
R = TypeVar("R")

_WRAPPER_NAMES = {
    "FullyShardedDataParallel": "fsdp",
    "DeepSpeedEngine": "deepspeed",
}


def _fsdp2_class() -> type | None:
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover - torch before 2.6
        try:
            from torch.distributed._composable.fsdp import FSDPModule
        except ImportError:
            return None
    return FSDPModule


def sharding_kind(model: Any) -> str | None:
    """``"fsdp"`` (FSDP1 wrapper), ``"fsdp2"`` (``fully_shard``), ``"zero3"`` (DeepSpeed
    ZeRO-3 partitioned parameters) or ``None`` for a model whose forward is not a collective
    (plain, DDP, ZeRO-1/2, PEFT around any of these is looked through)."""
    if not isinstance(model, torch.nn.Module):
        return None
    fsdp2 = _fsdp2_class()
    for m in model.modules():
        name = type(m).__name__
        if name == "FullyShardedDataParallel":
            return "fsdp"
        if fsdp2 is not None and isinstance(m, fsdp2):
            return "fsdp2"
    for p in model.parameters():
        if hasattr(p, "ds_id") or hasattr(p, "ds_status"):
            return "zero3"
    inner = getattr(model, "module", None)  # a DeepSpeedEngine around a ZeRO-3 model
    if type(model).__name__ in _WRAPPER_NAMES and isinstance(inner, torch.nn.Module):
        return sharding_kind(inner)
    return None


def is_sharded_model(model: Any) -> bool:
    """Whether ``model``'s forward pass is a collective every rank must join."""
    return sharding_kind(model) is not None


def forward_accepts(model: Any, name: str) -> bool:
    """Whether ``model.forward`` takes keyword ``name`` (e.g. ``logits_to_keep``)."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False
    return name in params


def run_synced(batches: Sequence[B], run: Callable[[B], R], dummy: B) -> tuple[list[R], int]:
    """``[run(b) for b in batches]`` with every rank making the same number of calls.

    The number of calls is the largest ``len(batches)`` over the ranks; a rank with fewer
    batches calls ``run(dummy)`` for the rest and drops the results.  Returns the results of
    this rank's batches and the number of dummy calls it made.  Every rank must call it (with
    its own, possibly empty, ``batches``); ``run`` must make the same collectives for every
    batch (one forward of the root module).
    """
    calls = all_reduce_max(len(batches))
    out = [run(b) for b in batches]
    for _ in range(calls - len(batches)):
        run(dummy)
    return out, calls - len(batches)
