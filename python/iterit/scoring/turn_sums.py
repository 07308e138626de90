"""Per-turn NLL sums of a conversation while a chunk is scored (docs/design.md, "IFD",
conversations): the conditional row of a sample scores every assistant turn in one sequence and
returns one sum per turn; each prior row scores one turn after the start token alone."""

from __future__ import annotations

import numpy as np

from iterit.scoring.batching import ScoredSequence
from iterit.scoring.cache import TimedFlush
from iterit.scoring.encoding import EncodedSamples

__all__ = ["TurnSums"]


class TurnSums:
    """Summed NLL of every turn of every sample of a chunk, in both passes: a conditional row
    returns one sum per scored range (turn), a prior row one sum for its turn."""

    def __init__(self, enc: EncodedSamples, chunk: list[int]):
        self.enc = enc
        self.cond = {j: np.zeros(max(1, len(enc.segments[j]))) for j in chunk}
        self.prior = {j: np.zeros(max(1, len(enc.priors[j]))) for j in chunk}

    def add(self, batch: list[ScoredSequence], nll: np.ndarray) -> None:
        pos = 0
        for q in batch:
            n = len(q.scored)
            if q.sample >= 0:  # synced mode's dummy rows have none
                if q.kind == 0:
                    self.cond[q.sample][:n] = nll[pos : pos + n]
                else:
                    self.prior[q.sample][q.turn] = nll[pos]
            pos += n

    def into(self, sums: np.ndarray, where: dict[int, int], flush: TimedFlush | None) -> None:
        """The per-sample totals into ``sums[kind, position]``; per-turn means to ``flush``."""
        for j, i in where.items():
            sums[0, i], sums[1, i] = self.cond[j].sum(), self.prior[j].sum()
            if flush is not None and flush.turns is not None:
                flush.turns[j] = self.means(j)

    def means(self, j: int) -> tuple[tuple[float, float], ...]:
        """A conversation's per-turn mean NLLs (empty for a one-turn sample)."""
        segs, priors = self.enc.segments[j], self.enc.priors[j]
        if len(segs) < 2:
            return ()
        return tuple(
            (float(c / (b - a)), float(p / (len(prior) - 1)))
            for (a, b), prior, c, p in zip(segs, priors, self.cond[j], self.prior[j], strict=True)
        )
