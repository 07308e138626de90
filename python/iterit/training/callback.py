"""The trainer callback: the event glue between a ``transformers.Trainer`` and IterIT.

At ``on_epoch_begin``, before the trainer builds the epoch's iterator, it asks the planner
(:mod:`iterit.training.planner`) for the epoch's selection, broadcasts rank 0's record, hands
the picks to the sampler, stores the state a checkpoint saves (:mod:`iterit.training.state`)
and rewrites the selection log (:mod:`iterit.artifacts.run_files`).  With in-loop losses it
also closes each epoch's loss recording.  The policy itself lives in the planner, the scoring
in :mod:`iterit.training.scoring_adapter`.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from iterit.artifacts.epoch_records import EpochRecord, RunSummary
from iterit.artifacts.names import SELECTION_SUMMARY, TRAINER_STATE_KEY
from iterit.artifacts.run_files import selection_log_path, write_selection_log, write_summary
from iterit.config import SelectionConfig
from iterit.data.sample import Sample, as_sample
from iterit.errors import ConfigError
from iterit.scoring.precision import args_autocast
from iterit.training import state as checkpoint_state
from iterit.training.compat import stateful_callbacks
from iterit.training.planner import InitialScores, ScoredPass, SelectionPlanner
from iterit.training.sampler import IterITSampler
from iterit.training.scoring_adapter import (
    ScoreFn,
    score_pass,
    uses_training_model,
)
from iterit.utils.distributed import broadcast_object
from iterit.utils.optional import requires_extra

with requires_extra("train"):
    from transformers import TrainerCallback

__all__ = ["IterITCallback"]

logger = logging.getLogger(__name__)


class IterITCallback(TrainerCallback):
    """Re-scores and re-selects before every epoch (see the module docstring).

    ``score_fn(model, samples) -> ifd`` returns one IFD per sample (an array, or an object with
    an ``ifd`` attribute such as ``IFDScores``); the model is in eval mode around it.  A
    ``score_fn`` with ``uses_training_model = False`` scores with a model training does not
    change, so its epoch-0 scores are reused rather than recomputed.  ``initial_scores`` (an
    :class:`~iterit.training.planner.InitialScores`, or one IFD per sample) replaces the
    epoch-0 scoring of every sample.

    After training, ``records`` holds one :class:`~iterit.artifacts.epoch_records.EpochRecord`
    per epoch (the lines of the selection log) and ``summary()`` the per-epoch timings and
    scoring/training counts (a :class:`~iterit.artifacts.epoch_records.RunSummary`).
    """

    def __init__(
        self,
        samples: Sequence[Sample | dict],
        sampler: IterITSampler,
        config: SelectionConfig | None = None,
        *,
        score_fn: ScoreFn | None = None,
        initial_scores: InitialScores | np.ndarray | Sequence[float] | None = None,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        config = config or SelectionConfig()
        _check_scoring(config, score_fn, initial_scores)
        self.sampler = sampler
        self.score_fn = score_fn
        self.planner = SelectionPlanner(
            [as_sample(s, i) for i, s in enumerate(samples)],
            config,
            seed=sampler.seed,
            initial=initial_scores,
            static_scorer=score_fn is not None and not uses_training_model(score_fn),
        )
        if self.planner.budget != sampler.num_samples:
            raise ConfigError(
                f"the sampler yields {sampler.num_samples} samples per epoch but the budget is "
                f"{self.planner.budget}"
            )
        #: The in-loop loss recorder (:mod:`iterit.training.inloop`), or None.
        self.losses: Any = None
        if config.in_loop:
            from iterit.training.inloop import InLoopLosses

            self.losses = InLoopLosses(config.loss_ema)
        self.log_path = None if log_path is None else Path(log_path)
        #: The run's settings and inputs saved with each checkpoint (set by
        #: :func:`iterit.training.run.train`; see :func:`iterit.training.state.export_state`).
        self.run_settings: dict[str, Any] | None = None
        self._reset()

    # -- the planner's state, by its usual names ---------------------------------------------------

    @property
    def samples(self) -> list[Sample]:
        return self.planner.samples

    @property
    def config(self) -> SelectionConfig:
        return self.planner.config

    @property
    def budget(self) -> int:
        return self.planner.budget

    @property
    def records(self) -> dict[int, EpochRecord]:
        return self.planner.records

    @property
    def pool(self) -> np.ndarray | None:
        return self.planner.pool

    @property
    def pool_scores(self) -> np.ndarray | None:
        return self.planner.pool_scores

    @property
    def pool_nll_prior(self) -> np.ndarray | None:
        return self.planner.pool_nll_prior

    @property
    def n_scored(self) -> int:
        return self.planner.n_scored

    def _reset(self) -> None:
        self.planner.reset()
        if self.losses is not None:
            self.losses.reset()
        self.timings: dict[int, dict[str, float]] = {}
        self._partial_epoch: int | None = None
        self._epoch: int | None = None
        self._epoch_start = 0.0

    # -- checkpoints ---------------------------------------------------------------------------

    def export_state(self, *, mid_epoch: bool = False) -> dict[str, Any]:
        """What a checkpoint needs to continue with the same selections (JSON-able); with
        ``mid_epoch``, also the in-loop losses recorded so far in the current epoch."""
        partial = self._epoch if mid_epoch else None
        return checkpoint_state.export_state(
            self.planner, self.losses, partial_epoch=partial, settings=self.run_settings
        )

    def load_state(self, saved: dict[str, Any]) -> None:
        self._partial_epoch = checkpoint_state.load_state(self.planner, saved, self.losses)

    def _save_state(self, state: Any, *, mid_epoch: bool = False) -> None:
        store = stateful_callbacks(state)
        if store is not None:
            store[TRAINER_STATE_KEY] = self.export_state(mid_epoch=mid_epoch)
        elif mid_epoch and self.losses is not None:
            self.losses.gather()  # every rank takes part in the collective call

    # -- events --------------------------------------------------------------------------------

    def on_train_begin(self, args, state, control, **kwargs):
        self._reset()
        if self.log_path is None:
            self.log_path = selection_log_path(args.output_dir)
        saved = (stateful_callbacks(state) or {}).get(TRAINER_STATE_KEY)
        if state.global_step > 0:
            if saved is None:
                warnings.warn(
                    "resuming from a checkpoint without IterIT state: the selections of the "
                    "resumed epoch are recomputed with the current model and may differ",
                    stacklevel=2,
                )
            else:
                self.load_state(saved)
                logger.info("IterIT: restored the selections of epochs %s", sorted(self.records))
        if self.losses is not None and kwargs.get("model") is not None:
            self.losses.attach_model(kwargs["model"])
        if state.is_world_process_zero:
            self._write_log()

    def on_epoch_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        epoch = _epoch_index(args, state, train_dataloader)
        if self.losses is not None:
            if self._partial_epoch is not None and self._partial_epoch != epoch:
                # A checkpoint taken after the last step of an epoch, before its end: fold the
                # losses of that epoch in now.
                self._finish_losses(self._partial_epoch, state)
            self._partial_epoch = None
            self.losses.begin_epoch()
        self._epoch = epoch
        self._epoch_start = time.perf_counter()
        if epoch in self.records:  # restored from a checkpoint: same selection, no re-scoring
            self.sampler.set_selection(self.records[epoch].picks, epoch)
            self.timings[epoch] = {"score_s": 0.0, "select_s": 0.0, "restored": 1.0}
            return
        mine = self._plan(epoch, model, args_autocast(args))
        if mine is not None:
            mine.global_step = int(state.global_step)
        # Rank 0's record, sent as its JSON object (plain data across processes).
        record = EpochRecord.from_json(broadcast_object(None if mine is None else mine.to_json()))
        self.records[epoch] = record
        self.sampler.set_selection(record.picks, epoch)
        self.timings[epoch] = {
            "score_s": float(record.score_seconds or 0.0),
            "select_s": float(record.select_seconds or 0.0),
        }
        self._save_state(state)
        if state.is_world_process_zero:
            self._write_log()
        logger.info(
            "IterIT epoch %d: %d picks from %d candidates (pool %s), overlap with previous %s",
            epoch,
            len(record.picks),
            record.n_candidates,
            record.pool_size,
            record.overlap_prev,
        )

    def on_step_end(self, args, state, control, **kwargs):
        # A checkpoint in the middle of an epoch keeps the losses recorded so far in it.  Every
        # rank gets here with the same control, so the gather inside is collective.
        if self.losses is not None and control.should_save:
            self._save_state(state, mid_epoch=True)

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.losses is not None and self._epoch is not None:
            self._finish_losses(self._epoch, state)
        if self._epoch is not None and self._epoch in self.timings:
            t = self.timings[self._epoch]
            t["epoch_s"] = time.perf_counter() - self._epoch_start
            t["train_s"] = t["epoch_s"] - t["score_s"] - t["select_s"]

    def on_train_end(self, args, state, control, **kwargs):
        if self.losses is not None:
            self.losses.detach_model()
        if state.is_world_process_zero and self.log_path is not None:
            path = self.log_path.parent / SELECTION_SUMMARY
            if path.parent.is_dir():
                write_summary(path, self.summary())

    # -- helpers -------------------------------------------------------------------------------

    def _plan(self, epoch: int, model: Any, autocast: Any = None) -> EpochRecord | None:
        def score(indices: np.ndarray) -> ScoredPass:
            picked = [self.samples[int(i)] for i in indices]
            return score_pass(self.score_fn, model, picked, autocast=autocast)

        loss_ema = None if self.losses is None else self.losses.ema_array
        return self.planner.plan(epoch, None if self.score_fn is None else score, loss_ema)

    def _finish_losses(self, epoch: int, state: Any) -> None:
        """Gather the epoch's in-loop losses, update the EMA, record them with the epoch."""
        losses = self.losses.end_epoch(epoch)
        record = self.records.get(epoch)
        if record is not None:
            self.records[epoch] = record.with_losses({int(i): v for i, v in losses.items()})
        self._save_state(state)
        if state.is_world_process_zero:
            self._write_log()

    def _write_log(self) -> None:
        """The selection log, one JSON line per epoch selected so far (rewritten whole, so a
        resumed run's log matches its restored state)."""
        if self.log_path is None or not self.log_path.parent.is_dir():
            return
        write_selection_log(self.log_path, (self.records[e] for e in sorted(self.records)))

    def summary(self) -> RunSummary:
        """Per-epoch timings (scoring, selecting, training, whole epoch) and the scoring work
        against the method's O(N + a*M*(epochs-1))."""
        return self.planner.summary(self.timings)


def _check_scoring(config: SelectionConfig, score_fn: Any, initial_scores: Any) -> None:
    if not config.needs_scores or score_fn is not None:
        return
    if initial_scores is None:
        raise ConfigError("IterIT needs a score_fn (e.g. IFDScoreFn) or initial scores")
    if config.iterate and not config.in_loop:
        raise ConfigError(
            "later epochs re-score the pool with the model being trained: give a "
            "score_fn (e.g. IFDScoreFn), or iterate=False to reuse the epoch-0 selection"
        )


def _epoch_index(args: Any, state: Any, train_dataloader: Any) -> int:
    # The Trainer's own arithmetic: epochs_trained = global_step // num_update_steps_per_epoch.
    try:
        n_batches = len(train_dataloader)
    except TypeError:
        return math.floor(state.epoch + 1e-9)
    accum = max(int(args.gradient_accumulation_steps), 1)
    steps_per_epoch = max(n_batches // accum + int(n_batches % accum > 0), 1)
    return int(state.global_step // steps_per_epoch)
