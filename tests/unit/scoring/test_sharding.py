"""iterit.scoring.sharding: identical samples scored once, each rank's share balanced by
tokens, and the gather that puts every rank's shard back with the counters summed (ranks
simulated by replacing ``all_gather_object``)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from iterit.scoring import sharding
from iterit.scoring.encoding import EncodedSamples
from iterit.scoring.results import SUMMED_STATS, ScoringStats
from iterit.utils import distributed


def encoded(cond_lens: list[int], prior_lens: list[int]) -> EncodedSamples:
    n = len(cond_lens)
    return EncodedSamples(
        cond=[[1] * k for k in cond_lens],
        cond_offset=[0] * n,
        priors=[[[1] * k] for k in prior_lens],  # one turn each
        reason=np.zeros(n, dtype=np.int64),
        truncated=np.zeros(n, dtype=bool),
    )


# ------------------------------------------------------------------------------------ Partial


def test_an_empty_partial_has_no_scores_yet():
    p = sharding.Partial.empty(3)
    assert np.isnan(p.nll_cond).all() and np.isnan(p.nll_prior).all()
    assert p.n_tokens.dtype == np.int64 and p.n_tokens.tolist() == [0, 0, 0]
    p.set(1, 0.5, 1.5, 7)
    assert p.nll_cond[1] == 0.5 and p.nll_prior[1] == 1.5 and p.n_tokens[1] == 7
    assert np.isnan(p.nll_cond[[0, 2]]).all()  # the others untouched
    assert len(sharding.Partial.empty(0).nll_cond) == 0


def test_new_stats_count_samples_and_ranks():
    s = sharding.new_stats(12, 4)
    assert s == ScoringStats(samples=12, world_size=4)


# --------------------------------------------------------------------------- first_occurrences


def test_identical_samples_point_at_their_first_occurrence():
    owner, unique = sharding.first_occurrences(["a", "b", "a", "c", "b", "a"])
    assert owner.tolist() == [0, 1, 0, 3, 1, 0]
    assert unique.tolist() == [0, 1, 3]
    assert owner.dtype == np.int64


def test_no_samples_and_all_distinct():
    owner, unique = sharding.first_occurrences([])
    assert owner.tolist() == [] and unique.tolist() == []
    owner, unique = sharding.first_occurrences(["x", "y", "z"])
    assert owner.tolist() == unique.tolist() == [0, 1, 2]


@given(st.lists(st.sampled_from("abcde"), max_size=40))
def test_first_occurrences_against_a_loop(keys):
    owner, unique = sharding.first_occurrences(keys)
    for i, k in enumerate(keys):
        assert owner[i] == keys.index(k)
    assert unique.tolist() == sorted({keys.index(k) for k in keys})


# ------------------------------------------------------------------------------ shard_for_rank


def test_one_rank_takes_everything_in_order():
    todo = [4, 0, 2]
    enc = encoded([1] * 5, [1] * 5)
    assert sharding.shard_for_rank(todo, enc, 0, 1) == [4, 0, 2]
    assert sharding.shard_for_rank(todo, enc, 0, 0) == [4, 0, 2]


def test_shares_are_balanced_by_both_passes():
    # Costs (cond + prior): 0 -> 10, 1 -> 9, 2 -> 6, 3 -> 5 (the prior pass decides 2 vs 3).
    enc = encoded([5, 8, 1, 4], [5, 1, 5, 1])
    shares = [sharding.shard_for_rank([0, 1, 2, 3], enc, r, 2) for r in range(2)]
    assert shares == [[0, 3], [1, 2]]  # 15 and 15 tokens, longest first


@given(
    st.lists(st.integers(min_value=1, max_value=50), min_size=0, max_size=30),
    st.integers(min_value=2, max_value=5),
    st.randoms(use_true_random=False),
)
def test_the_shares_partition_the_work_and_are_near_equal(lens, world, rnd):
    enc = encoded(lens, [1] * len(lens))
    todo = [j for j in range(len(lens)) if rnd.random() < 0.8]
    shares = [sharding.shard_for_rank(todo, enc, r, world) for r in range(world)]
    flat = [j for s in shares for j in s]
    assert sorted(flat) == sorted(todo) and len(flat) == len(set(flat))
    cost = [sum(lens[j] + 1 for j in s) for s in shares]
    biggest = max((lens[j] + 1 for j in todo), default=0)
    assert max(cost) - min(cost) <= biggest  # greedy longest-first bound
    # Deterministic: every rank computes the same plan.
    assert shares == [sharding.shard_for_rank(todo, enc, r, world) for r in range(world)]


# ------------------------------------------------------------------------------- gather_shards


def filled(n: int, mine: list[int], base: float) -> sharding.Partial:
    p = sharding.Partial.empty(n)
    for j in mine:
        p.set(j, base + j, base + 10 * j, j + 1)
    return p


def test_one_process_gets_its_own_scores_back_as_a_copy():
    found = filled(4, [0, 2], 0.0)
    stats = ScoringStats(samples=4, forward_calls=3, sequences=4, real_tokens=40, scored=2)
    out = sharding.gather_shards([0, 2], found, stats)
    np.testing.assert_array_equal(out.nll_cond, found.nll_cond)
    np.testing.assert_array_equal(out.n_tokens, found.n_tokens)
    out.nll_cond[0] = 99.0
    assert found.nll_cond[0] == 0.0  # not aliased
    assert (stats.forward_calls, stats.sequences, stats.real_tokens) == (3, 4, 40)


def test_every_ranks_shard_lands_at_its_indices_and_counters_are_summed(monkeypatch):
    n = 6
    ranks = {0: [0, 3], 1: [1, 4, 5], 2: []}
    found = {r: filled(n, mine, 100.0 * r) for r, mine in ranks.items()}
    # Cached scores are already in every rank's Partial (index 2 here); shards add the rest.
    for p in found.values():
        p.set(2, -1.0, -2.0, 9)
    stats = {
        r: ScoringStats(
            samples=n,
            world_size=3,
            scored=len(m),
            **{k: (r + 1) * (i + 1) for i, k in enumerate(SUMMED_STATS)},
        )
        for r, m in ranks.items()
    }
    payloads = []

    def gather(obj):
        payloads.append(obj)
        return [
            (
                np.asarray(ranks[r], dtype=np.int64),
                found[r].nll_cond[ranks[r]],
                found[r].nll_prior[ranks[r]],
                found[r].n_tokens[ranks[r]],
                [found[r].turns[j] for j in ranks[r]],
                stats[r].summed(),
            )
            for r in ranks
        ]

    monkeypatch.setattr(distributed, "all_gather_object", gather)
    me = stats[1]
    out = sharding.gather_shards(ranks[1], found[1], me)
    assert len(payloads) == 1 and payloads[0][0].tolist() == ranks[1]  # what this rank sent
    assert out.nll_cond.tolist() == [0.0, 101.0, -1.0, 3.0, 104.0, 105.0]
    assert out.nll_prior.tolist() == [0.0, 110.0, -2.0, 30.0, 140.0, 150.0]
    assert out.n_tokens.tolist() == [1, 2, 9, 4, 5, 6]
    for i, k in enumerate(SUMMED_STATS):
        assert getattr(me, k) == (1 + 2 + 3) * (i + 1), k
    assert me.scored == 3  # this rank's own count: not a summed counter


def test_a_payload_is_plain_data(monkeypatch):
    # all_gather_object pickles the payload inside torch: arrays, a dict of ints, nothing else.
    seen = []

    def gather(obj):
        seen.append(obj)
        return [obj]

    monkeypatch.setattr(distributed, "all_gather_object", gather)
    sharding.gather_shards([1], filled(2, [1], 0.0), ScoringStats(forward_calls=2))
    idx, cond, prior, k, turns, counters = seen[0]
    assert all(isinstance(a, np.ndarray) for a in (idx, cond, prior, k))
    assert isinstance(turns, list) and all(isinstance(t, tuple) for t in turns)
    assert set(counters) == {*SUMMED_STATS, "scored"}
    assert all(type(v) is int for v in counters.values())
