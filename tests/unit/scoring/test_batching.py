"""Packing scored sequences into forward batches (numpy only, no model)."""

from __future__ import annotations

import numpy as np

from iterit.scoring.batching import ScoredSequence, batch_arrays, prefix_groups, take_batch


def test_prefix_groups_share_the_preamble_but_never_a_scored_position():
    header = list(range(100, 120))  # a 20-token template header
    seqs = [ScoredSequence(i, 0, [*header, 200 + i, 300, 301, 302], 21) for i in range(10)]
    groups = prefix_groups(seqs)
    assert len(groups) == 1
    prefix, members = groups[0]
    assert prefix == 20 and len(members) == 10
    assert all(prefix <= q.offset - 1 for q in members)
    few = prefix_groups(seqs[:3])  # too few members to share: one group without a prefix
    assert few == [(20, seqs[:3])] or few[0][0] in (0, 20)


def test_take_batch_respects_budget_group_and_padding():
    seqs = [ScoredSequence(i, 1, [1] * n, 1) for i, n in enumerate([11, 11, 11, 6, 6])]
    assert len(take_batch(seqs, 0, budget=30, pad_slack=0.05)) == 3  # 3 x 10 tokens
    assert len(take_batch(seqs, 0, budget=20, pad_slack=0.05)) == 2
    assert len(take_batch(seqs, 0, budget=1, pad_slack=0.05)) == 1  # the head always goes
    seqs[1].group = 5
    assert len(take_batch(seqs, 0, budget=100, pad_slack=0.05)) == 1


def test_batch_arrays_pad_positions_and_targets():
    a = ScoredSequence(0, 0, [1, 2, 3, 4, 5], 3)
    b = ScoredSequence(1, 1, [1, 7, 8], 1)
    for left in (False, True):
        arr = batch_arrays([a, b], pad=0, left=left)
        assert arr.input_ids.shape == (2, 4)
        row_b = arr.input_ids[1]
        assert list(row_b[2:] if left else row_b[:2]) == [1, 7]
        assert arr.attention_mask is not None and arr.attention_mask.sum() == 6
        np.testing.assert_array_equal(arr.targets, [4, 5, 7, 8])
        np.testing.assert_array_equal(arr.rows, [0, 0, 1, 1])
        # the hidden state at column c predicts the token after it
        for r, c, t in zip(arr.rows, arr.cols, arr.targets, strict=True):
            seq = (a, b)[r]
            pos = arr.position_ids[r, c]
            assert seq.ids[pos + 1] == t
    full = batch_arrays([a], pad=0, left=False)
    assert full.attention_mask is None
