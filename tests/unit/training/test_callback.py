"""iterit.training.callback: the per-epoch scoring and selection inside a tiny
CPU training run, with a pluggable scorer."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from iterit.config import SelectionConfig
from iterit.errors import ShortfallWarning
from tests.helpers.training import make_trainer, read_log


class CountingScores:
    """A scorer whose IFD depends on a per-call offset; records what it was asked to score."""

    def __init__(self, n, change: bool):
        rng = np.random.default_rng(0)
        self.base = rng.uniform(0.3, 1.2, size=n)
        self.change = change
        self.calls: list[list[int]] = []
        self.modes: list[bool] = []
        self.index: dict[int, int] = {}

    def __call__(self, model, samples):
        self.modes.append(model.training)
        idx = [self.index[id(s)] for s in samples]
        self.calls.append(idx)
        out = self.base[idx].copy()
        if self.change and len(self.calls) > 1:
            rng = np.random.default_rng(len(self.calls))
            out = out * rng.uniform(0.6, 1.0, size=len(idx))
        return out


@pytest.mark.slow
@pytest.mark.parametrize("change", [False, True])
def test_scores_all_once_then_only_the_pool(tmp_path, data, change):
    samples, tok = data
    fake = CountingScores(len(samples), change)
    trainer, cb = make_trainer(tmp_path, samples, tok, SelectionConfig(budget=6), score_fn=fake)
    fake.index = {id(s): i for i, s in enumerate(cb.samples)}
    trainer.train()
    recs = read_log(tmp_path)
    assert [r["epoch"] for r in recs] == [0, 1, 2]
    pool = sorted(cb.pool.tolist())
    assert len(pool) == recs[0]["pool_size"] == 18  # a * M
    # Epoch 0 scored every sample, later epochs only the pool, in eval mode.
    assert fake.calls[0] == list(range(len(samples)))
    assert [sorted(c) for c in fake.calls[1:]] == [pool, pool]
    assert fake.modes == [False, False, False]
    assert trainer.model.training  # back in train mode
    assert [r["n_scored"] for r in recs] == [len(samples), 18, 18]
    assert cb.summary().n_scored_total == len(samples) + 2 * 18
    # The pool is the highest-IFD valid samples; the picks come from it.
    valid = np.flatnonzero(fake.base < 1.0)
    assert set(pool) == set(valid[np.argsort(-fake.base[valid], kind="stable")][:18].tolist())
    for r in recs:
        assert len(r["picks"]) == 6 and set(r["picks"]) <= set(pool)
        assert len(r["ifd"]) == len(r["score"]) == 6
    overlaps = [r["overlap_prev"] for r in recs[1:]]
    if change:
        assert min(overlaps) < 1.0  # scores changed, so did the selection
    else:
        assert overlaps == [1.0, 1.0]  # same scores, same selection


@pytest.mark.slow
def test_no_iteration_and_static_scorer_reuse_epoch0(tmp_path, data):
    samples, tok = data
    fake = CountingScores(len(samples), change=True)
    trainer, cb = make_trainer(
        tmp_path, samples, tok, SelectionConfig(budget=6, iterate=False), score_fn=fake
    )
    fake.index = {id(s): i for i, s in enumerate(cb.samples)}
    trainer.train()
    recs = read_log(tmp_path)
    assert len(fake.calls) == 1
    assert [r["picks"] for r in recs] == [recs[0]["picks"]] * 3
    assert [r["rescored"] for r in recs] == [True, False, False]


@pytest.mark.slow
def test_shortfall_is_reported_and_the_epoch_keeps_its_length(tmp_path, data):

    samples, tok = data
    fake = CountingScores(len(samples), change=False)
    fake.base[:] = 1.5  # invalid (IFD >= 1) ...
    fake.base[[3, 7, 11]] = [0.5, 0.6, 0.7]  # ... except three samples
    trainer, cb = make_trainer(
        tmp_path, samples, tok, SelectionConfig(budget=6), score_fn=fake, num_train_epochs=1
    )
    fake.index = {id(s): i for i, s in enumerate(cb.samples)}
    with pytest.warns(ShortfallWarning, match="only 3 valid"):
        out = trainer.train()
    (r,) = read_log(tmp_path)
    assert sorted(r["picks"]) == [3, 7, 11] and r["shortfall"] == 3 and r["pool_size"] == 3
    assert out.global_step == math.ceil(6 / 4)  # still M samples in the epoch
    assert sorted(cb.sampler.order().tolist()) == [3, 3, 7, 7, 11, 11]
