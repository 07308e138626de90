"""iterit.training.state: a checkpoint's IterIT state round-trips through JSON and is refused,
naming the difference, when it was made with other settings.  Torch-free."""

from __future__ import annotations

import json

import numpy as np
import pytest

from iterit.config import SelectionConfig
from iterit.data.sample import Sample
from iterit.errors import CheckpointError
from iterit.training.planner import ScoredPass, SelectionPlanner
from iterit.training.state import export_state, fingerprint, load_state

N = 30


def planner(**kw) -> SelectionPlanner:
    items = [
        Sample(instruction=f"q{i}", response=f"answer number {i} " * (i % 4 + 1)) for i in range(N)
    ]
    return SelectionPlanner(items, SelectionConfig(**{"budget": 4, **kw}), seed=7)


def ran_one_epoch() -> SelectionPlanner:
    p = planner()
    ifd = np.linspace(0.1, 1.3, N)
    p.records[0] = p.plan(0, lambda idx: ScoredPass(ifd[idx]))
    return p


def test_export_then_load_restores_pool_scores_and_records():
    p = ran_one_epoch()
    saved = json.loads(json.dumps(export_state(p)))
    assert saved["fingerprint"] == fingerprint(p)
    q = planner()
    assert load_state(q, saved) is None
    assert q.pool.tolist() == p.pool.tolist()
    np.testing.assert_array_equal(q.pool_scores, p.pool_scores)
    assert q.records == p.records


def test_other_settings_are_refused_naming_the_difference():
    saved = json.loads(json.dumps(export_state(ran_one_epoch())))
    with pytest.raises(CheckpointError, match=r"budget_count: checkpoint 4 vs now 5"):
        load_state(planner(budget=5), saved)
    with pytest.raises(CheckpointError, match="decay"):
        load_state(planner(decay=0.2), saved)
    with pytest.raises(CheckpointError, match="version"):
        load_state(planner(), {**saved, "version": 99})


def test_settings_added_later_default_in_old_checkpoints():
    saved = json.loads(json.dumps(export_state(ran_one_epoch())))
    for key in ("rescore", "loss_ema"):
        del saved["fingerprint"][key]
    load_state(planner(), saved)  # made with the defaults: accepted
