"""The scorer's bookkeeping across samples and ranks: identical samples scored once, each
rank's share balanced by tokens, partial results filled in as they come (cache, then model),
and the gather that puts every rank's shard back in input order with counters summed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from iterit.scoring.batching import balanced_shards
from iterit.scoring.encoding import EncodedSamples
from iterit.scoring.results import SUMMED_STATS, ScoringStats
from iterit.utils import distributed

__all__ = [
    "Partial",
    "first_occurrences",
    "gather_shards",
    "new_stats",
    "shard_for_rank",
]


@dataclass
class Partial:
    """Scores of the unique samples, filled in as they come (from the cache, then the model)."""

    nll_cond: np.ndarray
    nll_prior: np.ndarray
    n_tokens: np.ndarray
    #: A conversation's per-turn ``(nll_cond, nll_prior)`` (empty for a one-turn sample).
    turns: list[tuple[tuple[float, float], ...]]

    @classmethod
    def empty(cls, n: int) -> Partial:
        return cls(np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, dtype=np.int64), [()] * n)

    def set(self, j: int, c: float, p: float, k: int, turns: Any = ()) -> None:
        self.nll_cond[j], self.nll_prior[j], self.n_tokens[j] = c, p, k
        self.turns[j] = tuple(turns)


def new_stats(n: int, world: int) -> ScoringStats:
    return ScoringStats(samples=n, world_size=world)


def first_occurrences(keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(owner, unique)``: for every item the index of its first identical item, and the
    indices of the first occurrences (identical samples are scored once)."""
    first: dict[str, int] = {}
    owner = np.array([first.setdefault(k, i) for i, k in enumerate(keys)], dtype=np.int64)
    return owner, np.flatnonzero(owner == np.arange(len(keys)))


def shard_for_rank(todo: list[int], enc: EncodedSamples, rank: int, world: int) -> list[int]:
    """This rank's share, balanced by tokens (both passes) over the ranks."""
    if world <= 1:
        return todo
    costs = [enc.cost(j) for j in todo]
    return [todo[i] for i in balanced_shards(costs, world)[rank]]


def gather_shards(mine: list[int], found: Partial, stats: ScoringStats) -> Partial:
    """Every rank's shard of scores, and the counters summed over ranks."""
    idx = np.asarray(mine, dtype=np.int64)
    payload = (
        idx,
        found.nll_cond[idx],
        found.nll_prior[idx],
        found.n_tokens[idx],
        [found.turns[j] for j in mine],
        stats.summed(),
    )
    out = Partial(
        found.nll_cond.copy(), found.nll_prior.copy(), found.n_tokens.copy(), list(found.turns)
    )
    totals = dict.fromkeys(SUMMED_STATS, 0)
    for gi, gc, gp, gk, gt, gs in distributed.all_gather_object(payload):
        out.nll_cond[gi], out.nll_prior[gi], out.n_tokens[gi] = gc, gp, gk
        for j, t in zip(gi, gt, strict=True):
            out.turns[int(j)] = tuple(t)
        for k in SUMMED_STATS:
            totals[k] += gs[k]
    stats.set_summed(totals)
    return out
