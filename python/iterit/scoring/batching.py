"""Packing scored sequences into forward batches: prefix groups, batches under a token budget,
and the padded arrays of one batch.  numpy only (the scorer turns the arrays into tensors)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BatchArrays",
    "ScoredSequence",
    "balanced_shards",
    "batch_arrays",
    "plan_batches",
    "prefix_groups",
    "take_batch",
]


@dataclass
class ScoredSequence:
    """One pass of one sample: its token ids and where the scored tokens start."""

    sample: int  # position in the list being scored
    kind: int  # 0 = conditional, 1 = prior
    ids: list[int]
    offset: int  # index of the first scored token
    prefix: int = 0  # leading tokens whose keys/values come from a shared prefix cache
    group: int = -1  # prefix group (-1: none)
    #: Scored token ranges when not all of ``ids[offset:]`` (a conversation's assistant turns):
    #: each range's NLL is summed on its own.  ``turn``: a prior pass's turn.
    segments: tuple[tuple[int, int], ...] = ()
    turn: int = 0

    @property
    def scored(self) -> tuple[tuple[int, int], ...]:
        """The scored token ranges (one output slot each)."""
        return self.segments or ((self.offset, len(self.ids)),)

    @property
    def n_in(self) -> int:  # the last token is only a target, never an input
        return len(self.ids) - 1

    @property
    def width(self) -> int:  # tokens this sequence adds to its forward batch
        return self.n_in - self.prefix


def _common_prefix(members: list[ScoredSequence], start: int) -> int:
    """Length of the token run all ``members`` share (at least ``start``), never reaching a
    position whose hidden state is scored (``offset - 1``)."""
    first = members[0].ids
    n = min(q.offset - 1 for q in members)
    for q in members[1:]:
        ids, j = q.ids, start
        while j < n and ids[j] == first[j]:
            j += 1
        n = j
        if n <= start:
            return start
    return n


def prefix_groups(
    seqs: list[ScoredSequence], *, min_members: int = 8, min_prefix: int = 4, min_gain: int = 8
) -> list[tuple[int, list[ScoredSequence]]]:
    """Partition sequences into groups sharing a leading token run (the template's preamble:
    the Alpaca header, a chat template's system prompt).  Returns ``(prefix length, members)``;
    a prefix never reaches a position whose hidden state is scored (``offset - 1``)."""
    groups: list[tuple[int, list[ScoredSequence]]] = []

    def visit(members: list[ScoredSequence], start: int) -> None:
        common = _common_prefix(members, start)
        split: dict[int, list[ScoredSequence]] = {}
        stay: list[ScoredSequence] = []
        for q in members:
            if q.offset - 1 > common:
                split.setdefault(q.ids[common], []).append(q)
            else:
                stay.append(q)
        for sub in split.values():
            if len(sub) >= min_members and _common_prefix(sub, common + 1) - common >= min_gain:
                visit(sub, common + 1)
            else:
                stay.extend(sub)
        if stay:
            groups.append((common if common >= min_prefix else 0, stay))

    if seqs:
        visit(seqs, 0)
    return groups


def take_batch(
    seqs: list[ScoredSequence], pos: int, budget: int, pad_slack: float
) -> list[ScoredSequence]:
    """The rows from ``pos`` on that go into one forward batch: same prefix group, padded size
    within ``budget`` tokens, padding within ``pad_slack`` of the padded size (or a few tokens,
    for very short rows).  ``seqs`` is sorted longest first within a group."""
    head = seqs[pos]
    width = head.width  # the first row is the longest
    end, real = pos + 1, width
    while end < len(seqs) and seqs[end].group == head.group:
        rows, real_next = end - pos + 1, real + seqs[end].width
        padded = rows * width
        if padded > budget or padded - real_next > max(pad_slack * padded, 16):
            break
        end, real = end + 1, real_next
    return seqs[pos:end]


@dataclass
class BatchArrays:
    """Padded inputs of a batch's rows (after the shared prefix, if any) and the (row, column)
    of every hidden state that predicts a scored token, with that token; ``slots``: the output
    slot each scored token adds to (one per scored range, rows in order)."""

    input_ids: np.ndarray
    attention_mask: np.ndarray | None  # None: no padding and no prefix
    position_ids: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    targets: np.ndarray
    slots: np.ndarray | None = None
    n_slots: int = 0


def batch_arrays(batch: list[ScoredSequence], *, pad: int, left: bool) -> BatchArrays:
    """The arrays of one batch, padded with ``pad`` on the left (``left``) or the right."""
    rows, width, pre = len(batch), batch[0].width, batch[0].prefix
    ids = np.full((rows, width), pad, dtype=np.int64)
    mask = np.zeros((rows, pre + width), dtype=np.int64)
    mask[:, :pre] = 1
    pos = np.zeros((rows, width), dtype=np.int64)
    g_row, g_col, target, slot = [], [], [], []
    for r, q in enumerate(batch):
        n = q.width
        c0 = width - n if left else 0
        ids[r, c0 : c0 + n] = q.ids[pre : q.n_in]
        mask[r, pre + c0 : pre + c0 + n] = 1
        pos[r, c0 : c0 + n] = np.arange(pre, q.n_in)
        # token t (t >= offset) is predicted by the hidden state of input position t - 1
        for a, b in q.scored:
            g_row.append(np.full(b - a, r))
            g_col.append(np.arange(c0 + a - 1 - pre, c0 + b - 1 - pre))
            target.append(q.ids[a:b])
            slot.append(np.full(b - a, len(slot)))
    full = pre == 0 and all(q.width == width for q in batch)
    return BatchArrays(
        input_ids=ids,
        attention_mask=None if full else mask,
        position_ids=pos,
        rows=np.concatenate(g_row),
        cols=np.concatenate(g_col),
        targets=np.concatenate(target).astype(np.int64),
        slots=np.concatenate(slot),
        n_slots=len(slot),
    )


def balanced_shards(costs: list[int], world: int) -> list[list[int]]:
    """Positions ``0..len(costs)-1`` dealt to ``world`` shards with near-equal total cost:
    longest first, each to the shard with the least cost so far (ties: the lowest shard), so
    every rank gets the same deterministic plan.  Each shard lists its positions longest first.
    """
    shards: list[list[int]] = [[] for _ in range(max(1, world))]
    load = [0] * len(shards)
    for j in sorted(range(len(costs)), key=lambda j: (-costs[j], j)):
        r = min(range(len(shards)), key=lambda r: (load[r], r))
        shards[r].append(j)
        load[r] += costs[j]
    return shards


def plan_batches(
    seqs: list[ScoredSequence], budget: int, pad_slack: float
) -> list[list[ScoredSequence]]:
    """All of ``seqs`` cut into forward batches by :func:`take_batch`, in order."""
    out, pos = [], 0
    while pos < len(seqs):
        batch = take_batch(seqs, pos, budget, pad_slack)
        out.append(batch)
        pos += len(batch)
    return out
