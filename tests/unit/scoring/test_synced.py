"""The synced schedule (every rank the same forward calls), token-balanced shards, sharded
model detection, and synced scoring equal to the usual scoring in one process (left and right
padding, a budget that splits batches, samples longer than the budget)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch

from iterit.scoring import IFDScorer
from iterit.scoring import synced as synced_mod
from iterit.scoring.batching import ScoredSequence, balanced_shards, plan_batches, take_batch
from iterit.scoring.synced import is_sharded_model, run_synced, sharding_kind
from iterit.utils import distributed
from tests.helpers.word_llama import MAX_LEN, assert_same_scores

# ----------------------------------------------------------------------------- shards


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_balanced_shards_partition_and_balance(world):
    costs = [97, 3, 50, 50, 12, 12, 12, 1, 40, 33, 8, 70]
    shards = balanced_shards(costs, world)
    assert len(shards) == world
    assert sorted(j for s in shards for j in s) == list(range(len(costs)))
    loads = [sum(costs[j] for j in s) for s in shards]
    # greedy longest-first: no shard exceeds another by more than the largest item
    assert max(loads) - min(loads) <= max(costs)
    for s in shards:  # longest first within a shard
        assert [costs[j] for j in s] == sorted((costs[j] for j in s), reverse=True)
    assert shards == balanced_shards(costs, world)  # every rank computes the same plan


def test_balanced_shards_more_ranks_than_items():
    assert balanced_shards([5, 2], 4) == [[0], [1], [], []]
    assert balanced_shards([], 2) == [[], []]


def test_plan_batches_is_take_batch_repeated():
    seqs = [ScoredSequence(i, 0, list(range(2 + (17 * i) % 30)), 1) for i in range(20)]
    seqs.sort(key=lambda q: -q.width)
    batches = plan_batches(seqs, 64, 0.05)
    assert [q for b in batches for q in b] == seqs
    pos = 0
    for b in batches:
        assert b == take_batch(seqs, pos, 64, 0.05)
        pos += len(b)
    assert plan_batches([], 64, 0.05) == []


# --------------------------------------------------------------------------- schedule


def test_run_synced_one_process_runs_each_batch_once():
    calls = []
    out, idle = run_synced([1, 2, 3], lambda b: calls.append(b) or b * 10, dummy=0)
    assert out == [10, 20, 30] and idle == 0 and calls == [1, 2, 3]


@pytest.mark.parametrize("mine, most", [([1, 2], 5), ([], 3), ([7], 1)])
def test_run_synced_pads_with_dummy_calls_to_the_agreed_count(monkeypatch, mine, most):
    agreed = []

    def fake_max(n):
        agreed.append(n)
        return max(n, most)

    monkeypatch.setattr(synced_mod, "all_reduce_max", fake_max)
    calls = []
    out, idle = run_synced(mine, lambda b: calls.append(b) or -b, dummy=0)
    assert agreed == [len(mine)]  # one agreement, on this rank's count
    assert out == [-b for b in mine]
    assert len(calls) == max(len(mine), most) and idle == len(calls) - len(mine)
    assert calls == [*mine, *[0] * idle]  # real batches first, then the dummies


def test_all_reduce_max_is_identity_without_a_group():
    assert distributed.all_reduce_max(7) == 7


# -------------------------------------------------------------------------- detection


def test_plain_and_ddp_like_models_are_not_sharded(model):
    assert sharding_kind(model) is None and not is_sharded_model(model)
    assert sharding_kind("not a module") is None


def test_zero3_parameters_are_detected(tok):
    from tests.helpers.word_llama import make_model

    m = make_model(len(tok))
    next(m.parameters()).ds_id = 0  # what DeepSpeed ZeRO-3 puts on partitioned parameters
    assert sharding_kind(m) == "zero3"

    class DeepSpeedEngine(torch.nn.Module):  # the engine wrapping a ZeRO-3 model
        def __init__(self, module):
            super().__init__()
            self.module = module

    assert sharding_kind(DeepSpeedEngine(m)) == "zero3"


@pytest.fixture
def one_process_group(tmp_path):
    import torch.distributed as dist

    if dist.is_initialized():
        pytest.skip("a process group is already running")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_fsdp2_model_is_detected_and_scored_synced(tok, samples, one_process_group):
    from torch.distributed.fsdp import fully_shard

    from tests.helpers.word_llama import make_model

    plain = make_model(len(tok))
    sharded = make_model(len(tok))
    for layer in sharded.model.layers:
        fully_shard(layer)
    fully_shard(sharded)
    assert sharding_kind(sharded) == "fsdp2"
    sc = IFDScorer(sharded, tok, max_length=MAX_LEN, batch_tokens=48, progress=False)
    assert sc.synced
    got = sc.score(samples)
    assert got.stats.synced and not got.stats.prefix_sharing
    want = IFDScorer(plain, tok, max_length=MAX_LEN, batch_tokens=48, progress=False)
    assert_same_scores(got, want.score(samples))


# ---------------------------------------------------------------- synced == usual scoring


@pytest.mark.parametrize("side, budget", [("right", 48), ("left", 48), ("right", 100_000)])
def test_synced_scoring_equals_usual_scoring(model, tok, samples, ref, side, budget):
    tok.padding_side = side
    try:
        sc = IFDScorer(
            model, tok, max_length=MAX_LEN, batch_tokens=budget, progress=False, synced=True
        )
        got = sc.score(samples)
    finally:
        tok.padding_side = "right"
    assert sc.synced and got.stats.idle_calls == 0
    assert_same_scores(got, ref)
    # the same batches as the usual mode without prefix sharing
    usual = IFDScorer(model, tok, max_length=MAX_LEN, batch_tokens=budget, progress=False)
    usual.share_prefix = False
    assert got.stats.forward_calls == usual.score(samples).stats.forward_calls


def test_synced_switch_off_for_a_plain_model(model, tok):
    assert not IFDScorer(model, tok, progress=False).synced
    assert IFDScorer(model, tok, progress=False, synced=True).synced


def test_synced_does_not_leave_inference_tensors(model, tok, samples):
    IFDScorer(model, tok, max_length=MAX_LEN, progress=False, synced=True).score(samples[:3])
    assert not any(p.is_inference() for p in model.parameters())
    assert np.isfinite(sum(float(p.detach().sum()) for p in model.parameters()))
