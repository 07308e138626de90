"""torch.distributed helpers, in one place. Every function is a no-op identity when torch is
not installed or no process group with more than one process is running, so callers need no
special case for a single process."""

from __future__ import annotations

import gc
import os
import sys
import warnings
import weakref
from typing import Any

__all__ = [
    "STILL_HELD",
    "all_gather_object",
    "all_reduce_max",
    "barrier",
    "broadcast_object",
    "dist",
    "is_main_process",
    "launched_world_size",
    "rank",
    "shutdown",
    "world_size",
]


def _started() -> Any:
    """``torch.distributed`` when a process group was started (of any size), else None."""
    torch = sys.modules.get("torch")  # never import torch just to learn there is no group
    if torch is None:
        return None
    d = torch.distributed
    return d if d.is_available() and d.is_initialized() else None


def dist() -> Any:
    """``torch.distributed`` when a process group of more than one process is running."""
    d = _started()
    return d if d is not None and d.get_world_size() > 1 else None


def rank() -> int:
    d = dist()
    return d.get_rank() if d is not None else 0


def world_size() -> int:
    d = dist()
    return d.get_world_size() if d is not None else 1


def launched_world_size() -> int:
    """The world size a launcher (torchrun, accelerate launch) announced before the process
    group exists; 1 without a launcher."""
    return max(int(os.environ.get("WORLD_SIZE", "1")), 1)


def is_main_process() -> bool:
    """Rank 0 of the running group, or of the launch when no group exists yet."""
    d = dist()
    if d is not None:
        return d.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank."""
    d = dist()
    if d is None:
        return obj
    box = [obj]
    d.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    d = dist()
    if d is not None:
        d.barrier()


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` for a single process)."""
    d = dist()
    if d is None:
        return [obj]
    out: list[Any] = [None] * d.get_world_size()
    d.all_gather_object(out, obj)
    return out


def all_reduce_max(value: int) -> int:
    """The largest ``value`` over the ranks (``value`` itself for a single process); every
    rank must call it."""
    d = dist()
    if d is None:
        return int(value)
    torch = sys.modules["torch"]  # loaded: a process group is running

    device = torch.device("cpu")
    if "nccl" in str(d.get_backend()).lower() and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    box = torch.tensor([int(value)], dtype=torch.int64, device=device)
    d.all_reduce(box, op=d.ReduceOp.MAX)
    return int(box.item())


#: Start of the warning :func:`shutdown` gives when something still holds the group.
STILL_HELD = "the process group is still held"


def shutdown() -> None:
    """Destroys the default process group, if one was started, as ``torch.distributed`` asks of
    every process before it exits. Call it once the last collective has run on every rank,
    never after an error (the other ranks may still wait in a collective: destroying the group
    could hang), and once the objects that hold the group are released: a model wrapped in
    ``DistributedDataParallel`` (a Trainer's) keeps it alive past this call.

    Why it matters (docs/design.md, "Leaving the process group"): a gloo worker thread drops
    its last reference to a finished collective after the caller has its result, and that drop
    takes the GIL. A thread that reaches for the GIL once the interpreter has begun to finalize
    is ended by Python, through C++ code that may not be unwound: the process aborts (SIGABRT,
    "terminate called without an active exception"), its work done. Only the group's
    destruction, here while the interpreter is whole, joins those threads first; a group still
    held is destroyed in the teardown, the race open. So this collects released objects in
    reference cycles first (a Trainer forms several) and warns when the group outlives it."""
    d = _started()
    if d is None:
        return
    gc.collect()
    alive = weakref.ref(d.group.WORLD)
    d.destroy_process_group()
    if alive() is not None:
        warnings.warn(
            f"{STILL_HELD} by a live object (a model wrapped in DistributedDataParallel, a "
            "Trainer): its worker threads outlive shutdown() and can abort the process as it "
            "exits; release such objects first (train inside a function that returns before "
            "shutdown(), or del the trainer)",
            RuntimeWarning,
            stacklevel=2,
        )
