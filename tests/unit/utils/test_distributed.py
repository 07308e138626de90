"""iterit.utils.distributed: with no process group (or no torch) every helper is the
single-process identity, and a launcher's environment decides rank 0 before a group exists.
Two-process behaviour is exercised by the gloo tests in tests/integration."""

from __future__ import annotations

import gc
import os
import sys
import warnings

import pytest

from iterit.utils import distributed as d


def test_without_torch_loaded_nothing_imports_it(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert d.dist() is None
    assert "torch" not in sys.modules  # asking must not load torch
    assert (d.rank(), d.world_size()) == (0, 1)


def test_single_process_helpers_are_identities(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.delenv("RANK", raising=False)
    assert d.dist() is None  # torch loaded, but no process group
    obj = {"a": [1, 2]}
    assert d.broadcast_object(obj) is obj
    assert d.all_gather_object(obj) == [obj]
    assert d.all_reduce_max(7) == 7 and isinstance(d.all_reduce_max(True), int)
    d.barrier()
    assert d.is_main_process()


class _FakeGroup:
    """A running two-process group, as torch.distributed reports it, seen from ``rank``."""

    def __init__(self, rank: int):
        self._rank = rank
        self.calls: list[str] = []

    def is_available(self):
        return True

    def is_initialized(self):
        return True

    def get_world_size(self):
        return 2

    def get_rank(self):
        return self._rank

    def broadcast_object_list(self, box, src=0):
        self.calls.append(f"broadcast from {src}")
        box[0] = "rank 0's"

    def all_gather_object(self, out, obj):
        out[:] = [obj, "other"]

    def barrier(self):
        self.calls.append("barrier")


@pytest.fixture
def group(monkeypatch):
    torch = pytest.importorskip("torch")
    fake = _FakeGroup(rank=1)
    monkeypatch.setattr(torch, "distributed", fake)
    return fake


def test_a_running_group_is_used(group):
    assert d.dist() is group and (d.rank(), d.world_size()) == (1, 2)
    assert not d.is_main_process()
    assert d.broadcast_object("mine") == "rank 0's" and group.calls == ["broadcast from 0"]
    assert d.all_gather_object("mine") == ["mine", "other"]
    d.barrier()
    assert group.calls[-1] == "barrier"


@pytest.mark.parametrize(
    ("env", "size", "main"),
    [
        ({}, 1, True),
        ({"WORLD_SIZE": "4", "RANK": "0"}, 4, True),
        ({"WORLD_SIZE": "4", "RANK": "3"}, 4, False),
        ({"WORLD_SIZE": "0"}, 1, True),
    ],
)
def test_a_launchers_environment_before_the_group_exists(monkeypatch, env, size, main):
    for name in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert d.launched_world_size() == size and d.is_main_process() is main


@pytest.fixture
def gloo_group(tmp_path):
    """A one-process gloo group; destroyed afterwards if the test left it running."""
    torch = pytest.importorskip("torch")
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    yield torch.distributed
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def test_shutdown_is_a_no_op_without_a_group():
    pytest.importorskip("torch")
    d.shutdown()  # no group: nothing to do


def test_shutdown_leaves_a_running_group(gloo_group):
    assert gloo_group.is_initialized()
    d.shutdown()
    assert not gloo_group.is_initialized()


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


needs_proc = pytest.mark.skipif(
    not os.path.isdir("/proc/self/task"), reason="counting a process's threads needs Linux's /proc"
)


class _Cycle:
    """An object in a reference cycle: only the cycle collector frees it."""

    def __init__(self, group):
        self.group, self.me = group, self


@needs_proc
def test_shutdown_joins_the_groups_threads_once_released_holders_are_collected(gloo_group):
    # A released holder in a reference cycle (as a Trainer's DDP model is) would keep the group,
    # and gloo's worker threads with it, alive until the interpreter's teardown: the race that
    # aborts a finished process. shutdown() collects it first, so the group is destroyed here.
    holder = _Cycle(gloo_group.group.WORLD)
    del holder
    running = _threads()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no STILL_HELD warning
        d.shutdown()
    assert not gloo_group.is_initialized()
    assert _threads() < running  # the worker threads were joined


@needs_proc
def test_shutdown_warns_when_a_live_object_still_holds_the_group(gloo_group):
    holder = [gloo_group.group.WORLD]  # a live DDP model does the same
    running = _threads()
    with pytest.warns(RuntimeWarning, match=d.STILL_HELD):
        d.shutdown()
    assert not gloo_group.is_initialized()
    assert _threads() == running  # what the warning is about: the threads live on
    del holder
    gc.collect()
    assert _threads() < running  # gone with their group
