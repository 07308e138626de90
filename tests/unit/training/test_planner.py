"""iterit.training.planner: the per-epoch selection policy without a model or torch."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest

from iterit.artifacts.epoch_records import EpochRecord, RunSummary
from iterit.config import SelectionConfig
from iterit.data.sample import Sample
from iterit.errors import ConfigError, ShortfallWarning
from iterit.scoring.signals import ifd_equivalent
from iterit.selection.overlap import jaccard
from iterit.training.planner import InitialScores, ScoredPass, SelectionPlanner

N = 40


def samples(n: int = N) -> list[Sample]:
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "iota",
        "kappa",
        "lambda",
    ]
    return [
        Sample(
            instruction=f"task {i}",
            response=" ".join(words[(i + k) % 11] for k in range(i % 7 + 2)),
        )
        for i in range(n)
    ]


class Scores:
    """IFD per sample from a fixed table, shrunk by ``factor`` after the first call."""

    def __init__(self, n: int = N, factor: float = 1.0) -> None:
        self.base = np.random.default_rng(0).uniform(0.2, 1.2, size=n)
        self.prior = np.random.default_rng(1).uniform(1.0, 3.0, size=n)
        self.factor = factor
        self.calls: list[list[int]] = []

    def __call__(self, indices: np.ndarray) -> ScoredPass:
        idx = [int(i) for i in indices]
        scale = 1.0 if not self.calls else self.factor ** len(self.calls)
        self.calls.append(idx)
        ifd = self.base[idx] * scale
        return ScoredPass(ifd, self.prior[idx], {"forward_calls": 2, "sequences": 2 * len(idx)})


def test_planner_is_torch_free():
    import subprocess

    code = (
        "import sys, iterit.training.planner, iterit.training.state; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_epoch0_scores_all_builds_the_pool_then_rescores_only_the_pool():
    score = Scores(factor=0.9)
    planner = SelectionPlanner(samples(), SelectionConfig(budget=5), seed=0)
    assert planner.mode(0) == "first"
    r0 = planner.plan(0, score)
    planner.records[0] = r0
    assert r0.n_scored == N and r0.pool_size == 15 and len(r0.picks) == 5
    assert r0.score_forward_calls == 2 and r0.complexity_source == "ifd"
    valid = np.flatnonzero(score.base < 1.0)
    top = valid[np.argsort(-score.base[valid], kind="stable")][:15]
    assert sorted(planner.pool.tolist()) == sorted(top.tolist())
    assert planner.mode(1) == "rescore"
    r1 = planner.plan(1, score)
    assert sorted(score.calls[1]) == sorted(planner.pool.tolist())
    assert r1.n_scored == 15 and set(r1.picks) <= set(planner.pool.tolist())
    assert r1.overlap_prev == jaccard(r0.picks, r1.picks)
    assert planner.n_scored == N + 15


@pytest.mark.parametrize(
    "config, static",
    [
        (SelectionConfig(budget=5, iterate=False), False),
        (SelectionConfig(budget=5), True),
        (SelectionConfig(budget=5, strategy="random"), False),
    ],
)
def test_reuse_the_epoch0_selection(config, static):
    score = Scores()
    planner = SelectionPlanner(samples(), config, seed=3, static_scorer=static)
    r0 = planner.plan(0, score)
    planner.records[0] = r0
    assert planner.mode(1) == "reuse"
    r1 = planner.plan(1, score)
    assert r1.picks == r0.picks and r1.n_scored == 0 and not r1.rescored
    assert len(score.calls) == (0 if config.strategy == "random" else 1)
    assert r1.complexity_source == (None if config.strategy == "random" else "reused")


def test_in_loop_uses_the_loss_ema_on_ifd_scale():
    score = Scores()
    planner = SelectionPlanner(samples(), SelectionConfig(budget=5, rescore="in-loop"), seed=0)
    planner.records[0] = planner.plan(0, score)
    pool = planner.pool
    ema = np.full(N, np.nan)
    ema[pool[:4]] = 0.1  # four trained samples, very easy now
    r1 = planner.plan(1, None, lambda idx: ema[idx])
    assert len(score.calls) == 1  # no scoring after epoch 0
    assert r1.complexity_source == "loss-ema" and r1.n_from_loss == 4
    assert r1.score_forward_calls == 0
    for i, v in zip(r1.picks, r1.ifd, strict=True):
        want = ifd_equivalent(0.1, score.prior[i]) if i in pool[:4] else score.base[i]
        assert v == pytest.approx(float(want))


def test_in_loop_needs_nll_prior_with_initial_scores():
    with pytest.raises(ConfigError, match="nll_prior"):
        SelectionPlanner(
            samples(),
            SelectionConfig(budget=5, rescore="in-loop"),
            seed=0,
            initial=np.full(N, 0.5),
        )
    with pytest.raises(ConfigError, match="shape"):
        SelectionPlanner(samples(), SelectionConfig(budget=5), seed=0, initial=[0.5])
    with pytest.raises(ConfigError, match="nll_prior has shape"):
        given = InitialScores(np.full(N, 0.5), nll_prior=np.ones(N - 1))
        SelectionPlanner(
            samples(), SelectionConfig(budget=5, rescore="in-loop"), seed=0, initial=given
        )
    # with its nll_prior, in-loop re-scoring takes the given scores
    given = InitialScores(np.full(N, 0.5), nll_prior=np.ones(N))
    planner = SelectionPlanner(
        samples(), SelectionConfig(budget=5, rescore="in-loop"), seed=0, initial=given
    )
    assert planner.initial_nll_prior.tolist() == [1.0] * N


def test_initial_scores_replace_epoch0_scoring_and_shortfall_warns():
    scores = np.full(N, 1.5)
    scores[[2, 5]] = [0.4, 0.3]
    planner = SelectionPlanner(
        samples(),
        SelectionConfig(budget=4, iterate=False),
        seed=0,
        initial=InitialScores(scores, source="learning-percentage"),
    )
    with pytest.warns(ShortfallWarning, match="only 2 valid"):
        r0 = planner.plan(0, None)
    assert sorted(r0.picks) == [2, 5] and r0.shortfall == 2 and r0.n_scored == 0
    assert r0.complexity_source == "learning-percentage"
    planner.records[0] = r0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShortfallWarning)
        summary = planner.summary({0: {"score_s": 0.0, "select_s": 0.0}})
    assert summary.budget == 4 and summary.n_trained_total == 4


def test_the_record_round_trips_through_json_with_the_log_layout():
    planner = SelectionPlanner(samples(), SelectionConfig(budget=5, rescore="in-loop"), seed=0)
    r0 = planner.plan(0, Scores())
    planner.records[0] = r0
    on_disk = json.loads(json.dumps(r0.to_json()))
    assert EpochRecord.from_json(on_disk) == r0
    # The layout of the selection log: these keys, in this order; in-loop fields only once set.
    assert list(on_disk) == [
        "epoch", "strategy", "diversity", "rescore", "complexity_source", "n_samples",
        "n_scored", "n_valid", "pool_size", "n_candidates", "budget", "shortfall", "rescored",
        "overlap_prev", "score_forward_calls", "score_sequences", "score_seconds",
        "select_seconds", "picks", "ifd", "score",
    ]  # fmt: skip
    ema = np.full(N, np.nan)
    ema[planner.pool[:2]] = 0.1
    r1 = planner.plan(1, None, lambda idx: ema[idx])
    assert list(r1.to_json())[-2:] == ["n_from_loss", "loss_ema"]
    assert EpochRecord.from_json(json.loads(json.dumps(r1.to_json()))) == r1


def test_the_summary_round_trips_through_json():
    planner = SelectionPlanner(samples(), SelectionConfig(budget=5), seed=0)
    planner.records[0] = planner.plan(0, Scores())
    planner.records[1] = planner.plan(1, Scores())
    timings = {0: {"score_s": 1.0, "select_s": 0.5, "epoch_s": 3.0}, 1: {"restored": 1.0}}
    summary = planner.summary(timings)
    doc = json.loads(json.dumps(summary.to_json()))
    assert RunSummary.from_json(doc) == summary
    assert doc["paper_bound_n_plus_aM_epochs_minus_1"] == N + 15 == summary.paper_bound
    assert doc["epochs"][0]["score_s"] == 1.0 and doc["epochs"][1]["restored"] is True
    assert summary.epochs[0].seconds("epoch_s") == 3.0 and summary.epochs[1].seconds("epoch_s") == 0
