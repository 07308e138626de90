"""Which samples each epoch trains on: the per-epoch selection policy, torch-free
(docs/design.md, "Pool and iterations").

Epoch 0 takes every sample's complexity (scored, or given), keeps the pool of the
``pool_factor * M`` valid samples with the highest complexity and selects M from it with the
configured strategy (:func:`iterit.selection.strategies.select_with_config`).  A later epoch
either

* reuses the epoch-0 selection (``iterate=False``, a static baseline, or a separate scorer
  that training does not change), or
* re-scores the pool with the model being trained (``rescore="ifd"``), or
* takes the pool's complexity from the in-loop training losses (``rescore="in-loop"``):
  ``exp(loss_ema - nll_prior)`` for samples trained so far, their epoch-0 IFD for the others,

and selects M from the pool again.  Under torch.distributed every rank scores (the scorer
shards the work), rank 0 selects; the caller broadcasts rank 0's record.

The planner never touches a model: the caller passes a ``score`` function (sample indices ->
:class:`ScoredPass`) and, for in-loop, a ``loss_ema`` function (sample indices -> EMA, NaN
where not trained yet).  Each :meth:`SelectionPlanner.plan` returns the epoch's
:class:`~iterit.artifacts.epoch_records.EpochRecord`, one line of the selection log.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iterit.artifacts.epoch_records import EpochRecord, EpochSummary, RunSummary
from iterit.config import SelectionConfig, resolve_budget
from iterit.data.sample import Sample
from iterit.errors import ConfigError, InternalError, ShortfallWarning
from iterit.scoring.signals import ifd_equivalent
from iterit.selection.overlap import jaccard
from iterit.selection.strategies import select_with_config
from iterit.utils.distributed import broadcast_object, rank

__all__ = ["InitialScores", "LossEMA", "ScorePool", "ScoredPass", "SelectionPlanner", "floats"]


@dataclass(frozen=True)
class InitialScores:
    """Epoch 0's complexity given instead of scored: ``complexity`` (one float per sample; NaN:
    no valid score), ``nll_prior`` (each sample's ``nll_prior`` from the same scoring, which
    in-loop re-scoring needs to put training losses on IFD's scale) and ``source``, what the
    complexity measures (``ifd``, ``learning-percentage``, ...; logged as epoch 0's
    ``complexity_source``)."""

    complexity: np.ndarray | Sequence[float]
    nll_prior: np.ndarray | Sequence[float] | None = None
    source: str = "ifd"

    @classmethod
    def of(cls, value: InitialScores | np.ndarray | Sequence[float] | None) -> InitialScores | None:
        """``value`` as InitialScores: a plain array is IFD without ``nll_prior``."""
        return value if value is None or isinstance(value, cls) else cls(value)


@dataclass
class ScoredPass:
    """One scoring pass over some samples: their IFD, their ``nll_prior`` when the scorer gives
    it (in-loop losses need it), and the scorer's work (``forward_calls``, ``sequences``)."""

    ifd: np.ndarray
    nll_prior: np.ndarray | None = None
    forward: dict[str, int] = field(default_factory=dict)


#: Scores the samples at the given indices with the current model.
ScorePool = Callable[[np.ndarray], ScoredPass]
#: The in-loop loss EMA of the samples at the given indices (NaN: not trained yet).
LossEMA = Callable[[np.ndarray], np.ndarray]


def floats(values: np.ndarray) -> list[float | None]:
    """JSON-able floats: None where a value is not finite."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]


def _quiet_choose(
    samples: Sequence[Sample],
    budget: int,
    config: SelectionConfig,
    complexity: np.ndarray | None,
    **settings: Any,
) -> Any:
    """:func:`select_with_config` of ``budget`` samples; ``settings``: the strategy, pool
    factor and seed of this choice."""
    # The planner reports a shortfall once, in its own words (the epoch repeats its picks).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShortfallWarning)
        return select_with_config(samples, config, complexity, budget=budget, **settings)


@dataclass
class _Picks:
    """Rank 0's selection of an epoch and the counts the record reports."""

    picks: np.ndarray
    pool_size: int
    n_candidates: int
    n_valid: int
    ifd: list[float | None] | None
    score: list[float | None]
    shortfall: int
    n_from_loss: int | None = None  # in-loop: picks whose complexity came from their loss
    loss_ema: list[float | None] | None = None


@dataclass
class _Work:
    """The scoring an epoch did: samples scored, whether the model scored, forward passes."""

    n_scored: int = 0
    rescored: bool = False
    forward: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class SelectionPlanner:
    """Decides each epoch's selection and keeps what later epochs and checkpoints need: the
    pool, its epoch-0 scores and ``nll_prior``, and the record of every epoch selected so far.

    ``static_scorer``: the scores come from a model training does not change (a separate
    scorer), so later epochs reuse the epoch-0 selection instead of re-scoring.
    ``initial`` (:class:`InitialScores`, or one IFD per sample) replaces the epoch-0 scoring.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        config: SelectionConfig,
        *,
        seed: int,
        initial: InitialScores | np.ndarray | Sequence[float] | None = None,
        static_scorer: bool = False,
    ) -> None:
        self.samples = list(samples)
        self.config = config
        self.seed = int(seed)
        self.budget = resolve_budget(config.budget, len(self.samples))
        self.static_scorer = bool(static_scorer)
        given = InitialScores.of(initial)
        self.initial_source = "ifd" if given is None else given.source
        self.initial_scores = self._per_sample("initial scores", given and given.complexity)
        self.initial_nll_prior = self._per_sample("initial nll_prior", given and given.nll_prior)
        if config.in_loop and self.initial_scores is not None and self.initial_nll_prior is None:
            raise ConfigError(
                "in-loop re-scoring puts the training loss on IFD's scale with each sample's "
                "nll_prior from epoch 0: give it with the initial scores (a scores file from "
                "`iterit score` has an nll_prior column), or let epoch 0 score here"
            )
        self.reset()

    def _per_sample(self, name: str, values: Any) -> np.ndarray | None:
        if values is None:
            return None
        arr = np.asarray(values, dtype=np.float64)
        n = len(self.samples)
        if arr.shape != (n,):
            raise ConfigError(f"{name} has shape {arr.shape}, need ({n},)")
        return arr

    def reset(self) -> None:
        """Forget every selection (a new training run)."""
        self.records: dict[int, EpochRecord] = {}
        self.pool: np.ndarray | None = None
        self.pool_scores: np.ndarray | None = None  # epoch-0 complexity of the pool
        self.pool_nll_prior: np.ndarray | None = None  # epoch-0 nll_prior of the pool (in-loop)
        self.n_scored = 0

    # -- the policy ----------------------------------------------------------------------------

    def mode(self, epoch: int) -> str:
        """How ``epoch`` gets its selection: ``first`` (score or take every sample's complexity,
        build the pool), ``reuse`` (the epoch-0 selection), ``in-loop`` or ``rescore``."""
        cfg = self.config
        if epoch == 0 or (self.pool is None and not self.records):
            return "first"
        in_loop = cfg.in_loop
        if (
            not cfg.iterate
            or not cfg.needs_scores
            or (self.static_scorer and not in_loop)
            or self.pool is None
        ):
            return "reuse"
        return "in-loop" if in_loop else "rescore"

    def plan(
        self, epoch: int, score: ScorePool | None = None, loss_ema: LossEMA | None = None
    ) -> EpochRecord | None:
        """Select ``epoch``'s samples; returns its record on rank 0 (None on other ranks, to
        be replaced by rank 0's).  ``score`` is called on every rank (it may be collective)."""
        t0 = time.perf_counter()
        mode = self.mode(epoch)
        if mode == "reuse":
            picks, work = self._reuse(), _Work()
        elif mode == "first":
            picks, work = self._first(score, t0)
        else:
            picks, work = self._again(mode, score, loss_ema, t0)
        select_s = time.perf_counter() - t0 - work.seconds
        if rank() != 0 or picks is None:
            return None  # replaced by rank 0's record in the broadcast
        if picks.shortfall:
            warnings.warn(
                f"IterIT epoch {epoch}: only {len(picks.picks)} valid candidates for a budget of "
                f"{self.budget}; the epoch repeats them to keep its length",
                ShortfallWarning,
                stacklevel=3,
            )
        return self._record(epoch, mode, picks, work, select_s)

    def _reuse(self) -> _Picks:
        base = self.records[min(self.records)]
        return _Picks(
            picks=np.asarray(base.picks, dtype=np.int64),
            pool_size=int(base.pool_size or 0),
            n_candidates=int(base.n_candidates or 0),
            n_valid=int(base.n_valid or 0),
            ifd=base.ifd,
            score=list(base.score or []),
            shortfall=int(base.shortfall or 0),
        )

    def _first_scores(self, score: ScorePool | None, t0: float) -> tuple[Any, Any, _Work]:
        """Every sample's complexity and nll_prior for epoch 0: given, or scored now."""
        if not self.config.needs_scores:
            return None, None, _Work()
        if self.initial_scores is not None:
            scores, prior, work = self.initial_scores, self.initial_nll_prior, _Work()
        else:
            if score is None:
                raise ConfigError("IterIT needs a score_fn (e.g. IFDScoreFn) or initial scores")
            scored = score(np.arange(len(self.samples)))
            self.n_scored += len(self.samples)
            scores, prior = scored.ifd, scored.nll_prior
            work = _Work(len(self.samples), True, scored.forward)
        work.seconds = time.perf_counter() - t0
        if self.config.in_loop and prior is None:
            raise ConfigError(
                "in-loop re-scoring needs each sample's nll_prior from epoch 0's scoring "
                "(the score_fn returned IFD alone): use IFDScoreFn, or return IFDScores"
            )
        return scores, prior, work

    def _first(self, score: ScorePool | None, t0: float) -> tuple[_Picks | None, _Work]:
        cfg = self.config
        scores, prior, work = self._first_scores(score, t0)
        choice = None
        if rank() == 0:
            choice = _quiet_choose(
                self.samples,
                self.budget,
                cfg,
                scores,
                strategy=cfg.strategy,
                pool_factor=cfg.pool_factor,
                seed=self.seed,
            )
        self.pool = broadcast_object(None if choice is None else choice.pool)
        self.pool_scores = None if scores is None else scores[self.pool]
        self.pool_nll_prior = None if prior is None else prior[self.pool]
        if choice is None:
            return None, work
        pool_size = int(choice.pool.shape[0])
        picks = _Picks(
            picks=choice.indices,
            pool_size=pool_size,
            n_candidates=pool_size,  # the pool holds valid samples only
            n_valid=int(choice.valid.sum()),
            ifd=floats(scores[choice.indices]) if scores is not None else None,
            score=floats(choice.scores),
            shortfall=int(choice.shortfall),
        )
        return picks, work

    def _again(
        self, mode: str, score: ScorePool | None, loss_ema: LossEMA | None, t0: float
    ) -> tuple[_Picks | None, _Work]:
        """A later epoch: the pool's complexity (re-scored or in-loop), then select from it."""
        pool = self.pool
        assert pool is not None  # mode() returns "reuse" without a pool
        ema = None
        if mode == "in-loop":
            scores, ema = self._in_loop_complexity(pool, loss_ema)
            work = _Work(forward={"forward_calls": 0, "sequences": 0})  # no scoring pass
        else:
            if score is None:
                raise ConfigError(
                    "later epochs re-score the pool with the model being trained: give a "
                    "score_fn (e.g. IFDScoreFn), or iterate=False to reuse the epoch-0 selection"
                )
            scored = score(pool)
            self.n_scored += int(pool.shape[0])
            scores = scored.ifd
            work = _Work(int(pool.shape[0]), True, scored.forward)
        work.seconds = time.perf_counter() - t0
        if rank() != 0:
            return None, work
        return self._choose_from_pool(pool, scores, ema), work

    def _choose_from_pool(
        self, pool: np.ndarray, scores: np.ndarray, ema: np.ndarray | None
    ) -> _Picks:
        samples = [self.samples[int(i)] for i in pool]
        choice = _quiet_choose(
            samples, self.budget, self.config, scores, strategy="iterit", pool_factor=None
        )
        n_valid = int(choice.valid.sum())
        return _Picks(
            picks=pool[choice.indices],
            pool_size=int(pool.shape[0]),
            n_candidates=n_valid,
            n_valid=n_valid,
            ifd=floats(scores[choice.indices]),
            score=floats(choice.scores),
            shortfall=int(choice.shortfall),
            n_from_loss=None if ema is None else int(np.isfinite(ema).sum()),
            loss_ema=None if ema is None else floats(ema[choice.indices]),
        )

    def _in_loop_complexity(
        self, pool: np.ndarray, loss_ema: LossEMA | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Complexity of the pool on IFD's scale without scoring: ``exp(loss_ema - nll_prior)``
        for samples trained so far, their epoch-0 IFD for the others.  Returns it and the EMA
        (NaN where not trained yet)."""
        if self.pool_nll_prior is None or self.pool_scores is None or loss_ema is None:
            raise InternalError("in-loop re-scoring has no epoch-0 IFD / nll_prior of the pool")
        ema = np.asarray(loss_ema(pool), dtype=np.float64)
        trained = np.isfinite(ema)
        scores = np.where(trained, ifd_equivalent(ema, self.pool_nll_prior), self.pool_scores)
        return scores, ema

    # -- the record ------------------------------------------------------------------------------

    def complexity_source(self, mode: str) -> str | None:
        """Where the epoch's complexity came from: ``ifd`` (scored), ``loss-ema`` (in-loop),
        the initial scores' kind (a scores file), ``reused`` or None (no complexity)."""
        if not self.config.needs_scores:
            return None
        if mode == "in-loop":
            return "loss-ema"
        if mode == "reuse":
            return "reused"
        if mode == "first" and self.initial_scores is not None:
            return self.initial_source
        return "ifd"

    def _record(
        self, epoch: int, mode: str, picks: _Picks, work: _Work, select_s: float
    ) -> EpochRecord:
        cfg = self.config
        prev = self.records.get(epoch - 1)
        forward = work.forward if work.rescored or mode == "in-loop" else {}
        return EpochRecord(
            epoch=int(epoch),
            strategy=cfg.strategy if cfg.diversity != "none" else "ifd",
            diversity=cfg.diversity,
            rescore=cfg.rescore if cfg.needs_scores else None,
            complexity_source=self.complexity_source(mode),
            n_samples=len(self.samples),
            n_scored=int(work.n_scored),
            n_valid=int(picks.n_valid),
            pool_size=int(picks.pool_size),
            n_candidates=int(picks.n_candidates),
            budget=int(self.budget),
            shortfall=int(picks.shortfall),
            rescored=bool(work.rescored),
            overlap_prev=None if prev is None else jaccard(prev.picks, picks.picks),
            score_forward_calls=forward.get("forward_calls"),
            score_sequences=forward.get("sequences"),
            score_seconds=float(work.seconds),
            select_seconds=float(select_s),
            picks=[int(i) for i in picks.picks],
            ifd=picks.ifd,
            score=picks.score,
            n_from_loss=picks.n_from_loss,
            loss_ema=picks.loss_ema,
        )

    def summary(self, timings: dict[int, dict[str, float]]) -> RunSummary:
        """Per-epoch timings (scoring, selecting, training, whole epoch) and the scoring work
        against the method's O(N + a*M*(epochs-1))."""
        epochs = []
        for e in sorted(self.records):
            r, t = self.records[e], timings.get(e, {})
            epochs.append(
                EpochSummary(
                    epoch=e,
                    n_scored=r.n_scored,
                    n_trained=self.budget,
                    pool_size=r.pool_size,
                    overlap_prev=r.overlap_prev,
                    score_forward_calls=r.score_forward_calls,
                    timings={k: v for k, v in t.items() if k != "restored"},
                    restored=bool(t.get("restored", 0.0)),
                )
            )
        n_epochs = len(self.records)
        pool = 0 if self.pool is None else int(self.pool.shape[0])
        return RunSummary(
            n_samples=len(self.samples),
            budget=self.budget,
            rescore=self.config.rescore if self.config.needs_scores else None,
            pool_size=pool,
            epochs=epochs,
            n_scored_total=int(sum(r.n_scored or 0 for r in self.records.values())),
            paper_bound=len(self.samples) + pool * max(n_epochs - 1, 0),
            n_trained_total=self.budget * n_epochs,
        )
