"""IterIT inside the Hugging Face stack: per-epoch re-scoring and re-selection for
``transformers.Trainer`` and ``trl.SFTTrainer``, without copying their training loop.

How it fits (DESIGN 3.5):

* The trainer's ``train_dataset`` holds *every* sample, tokenised once (prompt tokens masked out
  of the labels, so the loss is on the response only; the prompt format is the one the IFD scorer
  uses).  :func:`encode_samples` / :class:`TokenizedSamples` build it for ``Trainer``,
  :func:`sft_dataset` for ``SFTTrainer``.
* :func:`attach` gives the trainer an :class:`IterITSampler`: a sampler of fixed length M (the
  per-epoch budget) whose index list is replaced before each epoch.  Because its length never
  changes, the trainer's step count and its learning-rate schedule, which spans all epochs, stay
  right.
* :class:`IterITCallback` runs at ``on_epoch_begin``, before the trainer builds the epoch's
  iterator: epoch 0 scores every sample (or takes scores read from a file), keeps the pool of the
  ``pool_factor * M`` valid samples with the highest IFD and selects M from it; later epochs
  re-score only the pool with the current model (eval mode, then back to train mode) and select
  again.  Under ``torch.distributed`` the scorer shards the work and gathers the scores; rank 0
  selects and broadcasts, so every rank trains on the identical selection in the identical order.
* Each epoch's selection is appended to ``<output_dir>/iterit_selection.jsonl`` as it happens and
  stored in the trainer state (``trainer_state.json``, key ``"iterit"``) that every checkpoint
  saves, so resuming from a checkpoint continues with the same selections.

Example::

    trainer = Trainer(model=model, args=args, train_dataset=TokenizedSamples(samples, tok),
                      data_collator=ResponseOnlyCollator(tok.pad_token_id),
                      processing_class=tok)
    callback = attach(trainer, samples, SelectionConfig(budget=0.05))
    trainer.train()
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from iterit.config import SelectionConfig
from iterit.data.sample import Sample, as_sample
from iterit.errors import ShortfallWarning
from iterit.selection.strategies import choose, resolve_budget
from iterit.utils.atomic import atomic_write_text

__all__ = [
    "LOG_NAME",
    "STATE_KEY",
    "SUMMARY_NAME",
    "IFDScoreFn",
    "IterITCallback",
    "IterITSampler",
    "ResponseOnlyCollator",
    "SelectionConfig",
    "TokenizedSamples",
    "attach",
    "encode_sample",
    "encode_samples",
    "jaccard",
    "sft_dataset",
]

logger = logging.getLogger(__name__)

LOG_NAME = "iterit_selection.jsonl"
SUMMARY_NAME = "iterit_summary.json"
STATE_KEY = "iterit"
_STATE_VERSION = 1

ScoreFn = Callable[[torch.nn.Module, Sequence[Sample]], Any]


# --------------------------------------------------------------------------------------------
# Configuration


# --------------------------------------------------------------------------------------------
# Tokenisation: the training sequence is the IFD conditional sequence (DESIGN 3.2)


def encode_samples(
    samples: Sequence[Sample | dict],
    tokenizer: Any,
    *,
    template: Any = "alpaca",
    max_length: int = 1024,
) -> list[dict[str, list[int]]]:
    """Training rows: ``input_ids`` = ``p + r[:k]`` and ``labels`` = ``[-100] * len(p) + r[:k]``.

    This is the IFD scorer's own conditional sequence (DESIGN 3.2, built by the same code in
    :mod:`iterit.scoring.ifd`), so training and scoring agree on the prompt format, the start and end
    tokens and the truncation to ``max_length``; the loss covers the response tokens only.  A
    sample without a valid score (empty response, or a prompt that leaves no room within
    ``max_length``) gets a one-token row with no label: it is never selected.
    """
    from iterit.scoring.ifd import encode_for_scoring, start_token

    items = [as_sample(s, i) for i, s in enumerate(samples)]
    enc = encode_for_scoring(tokenizer, items, template, int(max_length))
    start = start_token(tokenizer)
    rows = []
    for ids, offset in zip(enc.cond, enc.cond_offset, strict=True):
        if not ids:
            rows.append({"input_ids": [start], "labels": [-100]})
            continue
        rows.append({"input_ids": list(ids), "labels": [-100] * offset + list(ids[offset:])})
    return rows


def encode_sample(
    sample: Sample | dict, tokenizer: Any, *, template: Any = "alpaca", max_length: int = 1024
) -> dict[str, list[int]]:
    """:func:`encode_samples` of one sample."""
    return encode_samples([sample], tokenizer, template=template, max_length=max_length)[0]


class TokenizedSamples(torch.utils.data.Dataset):
    """Every sample tokenised once for ``transformers.Trainer`` (row i is sample i)."""

    def __init__(
        self,
        samples: Sequence[Sample | dict],
        tokenizer: Any,
        *,
        template: Any = "alpaca",
        max_length: int = 1024,
    ) -> None:
        self.rows = encode_samples(samples, tokenizer, template=template, max_length=max_length)
        #: Add ``iterit_index`` (the row's sample index) to every item; :func:`attach` turns it
        #: on for in-loop re-scoring, which needs to know which sample each loss belongs to.
        self.with_index = False

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if self.with_index:
            return {**self.rows[i], "iterit_index": int(i)}
        return self.rows[i]


def sft_dataset(
    samples: Sequence[Sample | dict],
    tokenizer: Any,
    *,
    template: Any = "alpaca",
    max_length: int = 1024,
) -> Any:
    """A pre-tokenised ``datasets.Dataset`` for ``trl.SFTTrainer``: ``input_ids``, ``labels``
    (prompt masked) and ``iterit_index`` (the sample's position), which :func:`attach` uses to
    find each sample's row even if the trainer's preparation drops or reorders rows."""
    import datasets

    rows = encode_samples(samples, tokenizer, template=template, max_length=max_length)
    return datasets.Dataset.from_dict(
        {
            "input_ids": [r["input_ids"] for r in rows],
            "labels": [r["labels"] for r in rows],
            "iterit_index": list(range(len(rows))),
        }
    )


class ResponseOnlyCollator:
    """Pads ``input_ids`` (with ``pad_token_id``) and ``labels`` (with -100) to the longest row
    of the batch and adds the ``attention_mask``; labels already carry -100 on prompt tokens."""

    def __init__(
        self,
        pad_token_id: int,
        *,
        pad_to_multiple_of: int | None = None,
        padding_side: str = "right",
    ) -> None:
        if pad_token_id is None:
            raise ValueError(
                "pad_token_id is None: set tokenizer.pad_token (e.g. to the EOS token)"
            )
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        self.pad_token_id = int(pad_token_id)
        self.pad_to_multiple_of = pad_to_multiple_of
        self.padding_side = padding_side

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        n = len(features)
        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((n, width), -100, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for row, f in enumerate(features):
            ids = torch.as_tensor(f["input_ids"], dtype=torch.long)
            lab = torch.as_tensor(f.get("labels", f["input_ids"]), dtype=torch.long)
            L = ids.shape[0]
            sl = slice(0, L) if self.padding_side == "right" else slice(width - L, width)
            input_ids[row, sl] = ids
            labels[row, sl] = lab
            mask[row, sl] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


# --------------------------------------------------------------------------------------------
# Sampler


class IterITSampler(torch.utils.data.Sampler[int]):
    """A sampler of fixed length ``num_samples`` (M) over the tokenised dataset whose index list
    is replaced before each epoch by :meth:`set_selection`.

    Each epoch yields the current selection in a shuffled order seeded by ``(seed, epoch)`` (the
    paper's Algorithm 1 samples batches at random), the same on every rank, so that accelerate's
    batch sharding gives each rank its own part and ``skip_first_batches`` on resume skips
    exactly the batches already trained.  When fewer than M samples could be selected, the
    selection is repeated (in further shuffled rounds) to keep the epoch at M samples, and the
    shortfall is recorded in the selection log; nothing is padded silently.

    ``rows`` maps sample index to dataset row (identity by default).
    """

    def __init__(self, num_samples: int, *, rows: np.ndarray | None = None, seed: int = 0) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}")
        self.num_samples = int(num_samples)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.seed = int(seed)
        self.epoch = 0
        self.selection: np.ndarray | None = None  # sample indices, pick order

    def set_selection(self, indices: Sequence[int] | np.ndarray, epoch: int) -> None:
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1 or idx.shape[0] == 0:
            raise ValueError("the selection is empty: no valid sample to train on")
        if self.rows is not None:
            if idx.min() < 0 or idx.max() >= self.rows.shape[0]:
                raise IndexError("a selected sample index is out of range of the dataset")
            if (self.rows[idx] < 0).any():
                missing = idx[self.rows[idx] < 0][:5].tolist()
                raise ValueError(
                    f"selected samples {missing} have no row in the training dataset (dropped by "
                    "the trainer's preparation?)"
                )
        self.selection = idx
        self.epoch = int(epoch)

    def set_epoch(self, epoch: int) -> None:
        # The callback already set the epoch with the selection; keep accelerate/Trainer calls
        # harmless (they pass the same number).
        self.epoch = int(epoch)

    def order(self) -> np.ndarray:
        """Dataset rows of this epoch, in the order they are yielded."""
        if self.selection is None:
            raise RuntimeError(
                "IterITSampler has no selection yet: the IterIT callback selects at epoch begin "
                "(was the trainer set up with iterit.training.hf.attach?)"
            )
        rng = np.random.default_rng([self.seed, self.epoch])
        sel = self.selection
        rounds = -(-self.num_samples // sel.shape[0])
        order = np.concatenate([sel[rng.permutation(sel.shape[0])] for _ in range(rounds)])
        order = order[: self.num_samples]
        return order if self.rows is None else self.rows[order]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())

    def __len__(self) -> int:
        return self.num_samples


# --------------------------------------------------------------------------------------------
# Scoring


class IFDScoreFn:
    """Scores samples with :class:`iterit.scoring.ifd.IFDScorer`: with the model being trained (the
    callback passes it) or, when ``scorer_model`` is given, with that separate (smaller) model,
    which training never changes, so its epoch-0 scores are reused instead of re-scoring.
    ``cache`` (a folder) sends the first call, epoch 0's scoring of every sample, through the
    scorer's resumable score cache."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        template: Any = "alpaca",
        max_length: int = 1024,
        batch_tokens: int | None = None,
        scorer_model: torch.nn.Module | None = None,
        scorer_tokenizer: Any = None,
        progress: bool = True,
        cache: str | os.PathLike[str] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.template = template
        self.max_length = max_length
        self.batch_tokens = batch_tokens
        self.scorer_model = scorer_model
        self.scorer_tokenizer = scorer_tokenizer
        self.progress = progress
        self.cache = cache
        self.calls = 0
        self.last: Any = None  # the last IFDScores

    @property
    def uses_training_model(self) -> bool:
        return self.scorer_model is None

    def __call__(self, model: torch.nn.Module, samples: Sequence[Sample]) -> np.ndarray:
        from iterit.scoring.ifd import IFDScorer

        m = model if self.scorer_model is None else self.scorer_model
        tok = self.tokenizer if self.scorer_tokenizer is None else self.scorer_tokenizer
        kwargs: dict[str, Any] = {"template": self.template, "max_length": self.max_length}
        if self.batch_tokens is not None:
            kwargs["batch_tokens"] = self.batch_tokens
        if self.cache is not None and self.calls == 0:
            # Only the first call (epoch 0, the model as loaded) can reuse or resume scores;
            # later calls score a model that has changed since.
            kwargs["cache"] = self.cache
        self.calls += 1
        progress = self.progress and _rank() == 0
        self.last = IFDScorer(m, tok, progress=progress, **kwargs).score(list(samples))
        return np.asarray(self.last.ifd, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Distributed helpers


def _dist() -> Any:
    d = torch.distributed
    if d.is_available() and d.is_initialized() and d.get_world_size() > 1:
        return d
    return None


def _rank() -> int:
    d = _dist()
    return d.get_rank() if d is not None else 0


def _broadcast(obj: Any) -> Any:
    """``obj`` of rank 0 on every rank (identity without torch.distributed)."""
    d = _dist()
    if d is None:
        return obj
    box = [obj]
    d.broadcast_object_list(box, src=0)
    return box[0]


def _quiet_choose(*args: Any, **kwargs: Any) -> Any:
    # The callback reports a shortfall once, in its own words (the epoch repeats its picks).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShortfallWarning)
        return choose(*args, **kwargs)


def jaccard(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> float:
    """|a & b| / |a | b| of two index sets (1.0 for two empty sets)."""
    sa, sb = {int(x) for x in a}, {int(x) for x in b}
    union = len(sa | sb)
    return 1.0 if union == 0 else len(sa & sb) / union


def _floats(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]


# --------------------------------------------------------------------------------------------
# The callback


class IterITCallback(TrainerCallback):
    """Re-scores and re-selects before every epoch (see the module docstring).

    ``score_fn(model, samples) -> ifd`` returns one IFD per sample (an array, or an object with
    an ``ifd`` attribute such as ``IFDScores``); the callback switches the model to eval mode
    around it and back.  A ``score_fn`` with ``uses_training_model = False`` scores with a model
    training does not change, so its epoch-0 scores are reused rather than recomputed.
    ``initial_scores`` (float64[N]) replaces the epoch-0 scoring of every sample.

    After training, ``records`` holds one dict per epoch (the lines of the selection log) and
    ``summary()`` the per-epoch timings and scoring/training counts.
    """

    def __init__(
        self,
        samples: Sequence[Sample | dict],
        sampler: IterITSampler,
        config: SelectionConfig | None = None,
        *,
        score_fn: ScoreFn | None = None,
        initial_scores: np.ndarray | Sequence[float] | None = None,
        initial_nll_prior: np.ndarray | Sequence[float] | None = None,
        initial_source: str = "ifd",
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.samples = [as_sample(s, i) for i, s in enumerate(samples)]
        #: What ``initial_scores`` measure (logged as the epoch-0 ``complexity_source``).
        self.initial_source = initial_source
        self.sampler = sampler
        self.config = config or SelectionConfig()
        n = len(self.samples)
        self.budget = resolve_budget(self.config.budget, n)
        if self.budget != sampler.num_samples:
            raise ValueError(
                f"the sampler yields {sampler.num_samples} samples per epoch but the budget is "
                f"{self.budget}"
            )
        if self.config.needs_scores and score_fn is None:
            if initial_scores is None:
                raise ValueError("IterIT needs a score_fn (e.g. IFDScoreFn) or initial scores")
            if self.config.iterate and not self.config.in_loop:
                raise ValueError(
                    "later epochs re-score the pool with the model being trained: give a "
                    "score_fn (e.g. IFDScoreFn), or iterate=False to reuse the epoch-0 selection"
                )
        self.score_fn = score_fn
        self.initial_scores = None
        if initial_scores is not None:
            self.initial_scores = np.asarray(initial_scores, dtype=np.float64)
            if self.initial_scores.shape != (n,):
                raise ValueError(
                    f"initial_scores has shape {self.initial_scores.shape}, need ({n},)"
                )
        self.initial_nll_prior = None
        if initial_nll_prior is not None:
            self.initial_nll_prior = np.asarray(initial_nll_prior, dtype=np.float64)
            if self.initial_nll_prior.shape != (n,):
                raise ValueError(
                    f"initial_nll_prior has shape {self.initial_nll_prior.shape}, need ({n},)"
                )
        if (
            self.config.in_loop
            and self.initial_scores is not None
            and self.initial_nll_prior is None
        ):
            raise ValueError(
                "in-loop re-scoring puts the training loss on IFD's scale with each sample's "
                "nll_prior from epoch 0: give it with the initial scores (a scores file from "
                "`iterit score` has an nll_prior column), or let epoch 0 score here"
            )
        #: The in-loop loss recorder (:mod:`iterit.training.inloop`); :func:`attach` installs it.
        self.losses: Any = None
        if self.config.in_loop:
            from iterit.training.inloop import InLoopLosses

            self.losses = InLoopLosses(self.config.loss_ema)
        self.log_path = None if log_path is None else Path(log_path)
        self._reset()

    # -- state -------------------------------------------------------------------------------

    def _reset(self) -> None:
        self.records: dict[int, dict[str, Any]] = {}
        self.pool: np.ndarray | None = None
        self.pool_scores: np.ndarray | None = None  # epoch-0 IFD of the pool (static reuse)
        self.pool_nll_prior: np.ndarray | None = None  # epoch-0 nll_prior of the pool (in-loop)
        self._last_prior: np.ndarray | None = None
        self._partial_epoch: int | None = None
        if self.losses is not None:
            self.losses.reset()
        self.timings: dict[int, dict[str, float]] = {}
        self.n_scored = 0
        self._epoch: int | None = None
        self._epoch_start = 0.0
        self._forward: dict[str, int] = {}

    def _fingerprint(self) -> dict[str, Any]:
        cfg = asdict(self.config)
        cfg.pop("seed")
        cfg["ngram_range"] = list(cfg["ngram_range"])
        return {
            "n_samples": len(self.samples),
            "budget_count": self.budget,
            "seed": self.sampler.seed,
            **cfg,
        }

    def export_state(self, *, mid_epoch: bool = False) -> dict[str, Any]:
        """What a checkpoint needs to continue with the same selections (JSON-able).

        With in-loop re-scoring, also the loss EMA and, for a checkpoint in the middle of an
        epoch (``mid_epoch``), the losses recorded so far in that epoch (gathered from every
        rank: a collective call under torch.distributed)."""
        out = {
            "version": _STATE_VERSION,
            "fingerprint": self._fingerprint(),
            "pool": None if self.pool is None else self.pool.tolist(),
            "pool_scores": None if self.pool_scores is None else _floats(self.pool_scores),
            "records": [self.records[e] for e in sorted(self.records)],
        }
        if self.losses is not None:
            out["pool_nll_prior"] = (
                None if self.pool_nll_prior is None else _floats(self.pool_nll_prior)
            )
            inloop = self.losses.export_state(with_partial=mid_epoch)
            inloop["partial_epoch"] = self._epoch if mid_epoch else None
            out["inloop"] = inloop
        return out

    def load_state(self, saved: dict[str, Any]) -> None:
        if saved.get("version") != _STATE_VERSION:
            raise ValueError(f"unsupported IterIT state version {saved.get('version')!r}")
        mine, theirs = self._fingerprint(), saved.get("fingerprint", {})
        # Checkpoints from before a setting existed were made with its default.
        defaults = {"rescore": "ifd", "loss_ema": 0.5}
        theirs = {**{k: v for k, v in defaults.items() if k not in theirs}, **theirs}
        diff = {k: (theirs.get(k), v) for k, v in mine.items() if theirs.get(k) != v}
        if diff:
            detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"the checkpoint's IterIT selection was made differently ({detail})")
        self.pool = None if saved["pool"] is None else np.asarray(saved["pool"], dtype=np.int64)
        ps = saved.get("pool_scores")
        self.pool_scores = (
            None if ps is None else np.array([np.nan if v is None else v for v in ps], np.float64)
        )
        self.records = {int(r["epoch"]): r for r in saved["records"]}
        if self.losses is not None:
            pp = saved.get("pool_nll_prior")
            self.pool_nll_prior = (
                None
                if pp is None
                else np.array([np.nan if v is None else v for v in pp], np.float64)
            )
            inloop = saved.get("inloop") or {}
            self.losses.load_state(inloop)
            self._partial_epoch = inloop.get("partial_epoch")

    # -- events ------------------------------------------------------------------------------

    def on_train_begin(self, args, state, control, **kwargs):
        self._reset()
        if self.log_path is None:
            self.log_path = Path(args.output_dir) / LOG_NAME
        saved = (state.stateful_callbacks or {}).get(STATE_KEY)
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
        epoch = self._epoch_index(args, state, train_dataloader)
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
            self.sampler.set_selection(self.records[epoch]["picks"], epoch)
            self.timings[epoch] = {"score_s": 0.0, "select_s": 0.0, "restored": 1.0}
            return
        record = self._select(epoch, model)
        record["global_step"] = int(state.global_step)
        record = _broadcast(record)
        self.records[epoch] = record
        self.sampler.set_selection(record["picks"], epoch)
        self.timings[epoch] = {
            "score_s": record["score_seconds"],
            "select_s": record["select_seconds"],
        }
        if state.stateful_callbacks is not None:
            state.stateful_callbacks[STATE_KEY] = self.export_state()
        if state.is_world_process_zero:
            self._write_log()
        logger.info(
            "IterIT epoch %d: %d picks from %d candidates (pool %s), overlap with previous %s",
            epoch,
            len(record["picks"]),
            record["n_candidates"],
            record["pool_size"],
            record["overlap_prev"],
        )

    def on_step_end(self, args, state, control, **kwargs):
        # A checkpoint in the middle of an epoch keeps the losses recorded so far in it.  Every
        # rank gets here with the same control, so the gather inside is collective.
        if self.losses is not None and control.should_save:
            if state.stateful_callbacks is not None:
                state.stateful_callbacks[STATE_KEY] = self.export_state(mid_epoch=True)
            else:
                self.losses.gather()

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.losses is not None and self._epoch is not None:
            self._finish_losses(self._epoch, state)
        if self._epoch is not None and self._epoch in self.timings:
            t = self.timings[self._epoch]
            t["epoch_s"] = time.perf_counter() - self._epoch_start
            t["train_s"] = t["epoch_s"] - t["score_s"] - t["select_s"]

    def _finish_losses(self, epoch: int, state: Any) -> None:
        """Gather the epoch's in-loop losses, update the EMA, record them with the epoch."""
        losses = self.losses.end_epoch(epoch)
        record = self.records.get(epoch)
        if record is not None:
            record["n_loss_recorded"] = len(losses)
            record["train_loss"] = [
                None if int(i) not in losses else float(losses[int(i)]) for i in record["picks"]
            ]
        if state.stateful_callbacks is not None:
            state.stateful_callbacks[STATE_KEY] = self.export_state()
        if state.is_world_process_zero:
            self._write_log()

    def on_train_end(self, args, state, control, **kwargs):
        if self.losses is not None:
            self.losses.detach_model()
        if state.is_world_process_zero and self.log_path is not None:
            path = self.log_path.parent / SUMMARY_NAME
            if path.parent.is_dir():
                atomic_write_text(path, json.dumps(self.summary(), indent=2) + "\n", overwrite=True)

    # -- selection ---------------------------------------------------------------------------

    def _epoch_index(self, args, state, train_dataloader) -> int:
        # The Trainer's own arithmetic: epochs_trained = global_step // num_update_steps_per_epoch.
        try:
            n_batches = len(train_dataloader)
        except TypeError:
            return math.floor(state.epoch + 1e-9)
        accum = max(int(args.gradient_accumulation_steps), 1)
        steps_per_epoch = max(n_batches // accum + int(n_batches % accum > 0), 1)
        return int(state.global_step // steps_per_epoch)

    def _score(self, model: torch.nn.Module | None, indices: np.ndarray) -> np.ndarray:
        samples = [self.samples[int(i)] for i in indices]
        was_training = None if model is None else model.training
        try:
            if model is not None:
                model.eval()
            with torch.no_grad():
                out = self.score_fn(model, samples)  # type: ignore[misc]
        finally:
            if model is not None and was_training is not None:
                model.train(was_training)
        ifd = np.asarray(getattr(out, "ifd", out), dtype=np.float64).reshape(-1)
        if ifd.shape[0] != len(samples):
            raise ValueError(f"score_fn returned {ifd.shape[0]} scores for {len(samples)} samples")
        self.n_scored += len(samples)
        # IFDScores (returned, or kept by IFDScoreFn) carry nll_prior, which in-loop re-scoring
        # needs to put training losses on IFD's scale.
        prior = getattr(out, "nll_prior", None)
        if prior is None:
            prior = getattr(getattr(self.score_fn, "last", None), "nll_prior", None)
        self._last_prior = None
        if prior is not None:
            prior = np.asarray(prior, dtype=np.float64).reshape(-1)
            self._last_prior = prior if prior.shape[0] == len(samples) else None
        # IFDScores (returned, or kept by IFDScoreFn) say how many forward passes it took.
        stats = getattr(out, "stats", None) or getattr(
            getattr(self.score_fn, "last", None), "stats", None
        )
        self._forward = (
            {k: int(stats[k]) for k in ("forward_calls", "sequences") if k in stats}
            if stats
            else {}
        )
        return ifd

    def _static_scorer(self) -> bool:
        return not getattr(self.score_fn, "uses_training_model", True)

    def _select(self, epoch: int, model: torch.nn.Module | None) -> dict[str, Any]:
        cfg, n, m = self.config, len(self.samples), self.budget
        t0 = time.perf_counter()
        score_s = 0.0
        scored = 0
        rescored = False
        first = epoch == 0 or (self.pool is None and not self.records)
        in_loop = cfg.in_loop and not first
        reuse = not first and (
            not cfg.iterate
            or not cfg.needs_scores
            or (self._static_scorer() and not in_loop)
            or self.pool is None
        )
        extra: dict[str, Any] = {}
        if reuse:
            base = self.records[min(self.records)]
            picks = np.asarray(base["picks"], dtype=np.int64)
            pool_size, n_cand, n_valid = base["pool_size"], base["n_candidates"], base["n_valid"]
            ifd_p, score_p, shortfall = base["ifd"], base["score"], base["shortfall"]
        elif first:
            scores = None
            prior = None
            if cfg.needs_scores:
                if self.initial_scores is not None:
                    scores, prior = self.initial_scores, self.initial_nll_prior
                else:
                    before = self.n_scored
                    scores = self._score(model, np.arange(n))
                    prior = self._last_prior
                    scored = self.n_scored - before
                    rescored = True
                score_s = time.perf_counter() - t0
                if cfg.in_loop and prior is None:
                    raise ValueError(
                        "in-loop re-scoring needs each sample's nll_prior from epoch 0's scoring "
                        "(the score_fn returned IFD alone): use IFDScoreFn, or return IFDScores"
                    )
            choice = None
            if _rank() == 0:
                choice = _quiet_choose(
                    self.samples,
                    m,
                    strategy=cfg.strategy,
                    complexity=scores,
                    max_complexity=cfg.max_complexity,
                    diversity=cfg.diversity,
                    decay=cfg.decay,
                    pool_factor=cfg.pool_factor,
                    seed=self.sampler.seed,
                    ngram_range=cfg.ngram_range,
                    variant=cfg.variant,
                )
            self.pool = _broadcast(None if choice is None else choice.pool)
            self.pool_scores = None if scores is None else scores[self.pool]
            self.pool_nll_prior = None if prior is None else prior[self.pool]
            if choice is not None:
                picks = choice.indices
                pool_size = int(choice.pool.shape[0])
                n_valid = int(choice.valid.sum())
                n_cand = pool_size  # the pool holds valid samples only
                ifd_p = _floats(scores[picks]) if scores is not None else None
                score_p = _floats(choice.scores)
                shortfall = int(choice.shortfall)
        else:
            pool = self.pool
            if in_loop:
                scores, ema = self._in_loop_complexity(pool)
                extra["n_from_loss"] = int(np.isfinite(ema).sum())
                self._forward = {"forward_calls": 0, "sequences": 0}  # no scoring pass
            else:
                scores = self._score(model, pool)
                ema = None
                scored, rescored = pool.shape[0], True
            score_s = time.perf_counter() - t0
            if _rank() == 0:
                sub = [self.samples[int(i)] for i in pool]
                choice = _quiet_choose(
                    sub,
                    m,
                    strategy="iterit",
                    complexity=scores,
                    max_complexity=cfg.max_complexity,
                    diversity=cfg.diversity,
                    decay=cfg.decay,
                    pool_factor=None,
                    ngram_range=cfg.ngram_range,
                    variant=cfg.variant,
                )
                picks = pool[choice.indices]
                pool_size = int(pool.shape[0])
                n_valid = n_cand = int(choice.valid.sum())
                ifd_p = _floats(scores[choice.indices])
                if ema is not None:
                    extra["loss_ema"] = _floats(ema[choice.indices])
                score_p = _floats(choice.scores)
                shortfall = int(choice.shortfall)
        select_s = time.perf_counter() - t0 - score_s
        forward = self._forward if rescored or in_loop else {}
        self._forward = {}
        if _rank() != 0:
            return {}  # replaced by rank 0's record in the broadcast
        if shortfall:
            warnings.warn(
                f"IterIT epoch {epoch}: only {len(picks)} valid candidates for a budget of {m}; "
                "the epoch repeats them to keep its length",
                ShortfallWarning,
                stacklevel=2,
            )
        prev = self.records.get(epoch - 1)
        return {
            "epoch": int(epoch),
            "strategy": cfg.strategy if cfg.diversity != "none" else "ifd",
            "diversity": cfg.diversity,
            "rescore": cfg.rescore if cfg.needs_scores else None,
            "complexity_source": self._source(first, reuse, in_loop),
            "n_samples": n,
            "n_scored": int(scored),
            "n_valid": int(n_valid),
            "pool_size": int(pool_size),
            "n_candidates": int(n_cand),
            "budget": int(m),
            "shortfall": int(shortfall),
            "rescored": bool(rescored),
            "overlap_prev": None if prev is None else jaccard(prev["picks"], picks),
            "score_forward_calls": forward.get("forward_calls"),
            "score_sequences": forward.get("sequences"),
            "score_seconds": float(score_s),
            "select_seconds": float(select_s),
            "picks": [int(i) for i in picks],
            "ifd": ifd_p,
            "score": score_p,
            **extra,
        }

    def _source(self, first: bool, reuse: bool, in_loop: bool) -> str | None:
        """Where the epoch's complexity came from: ``ifd`` (scored), ``loss-ema`` (in-loop),
        the initial scores' kind (a scores file), ``reused`` or None (no complexity)."""
        if not self.config.needs_scores:
            return None
        if in_loop:
            return "loss-ema"
        if reuse:
            return "reused"
        if first and self.initial_scores is not None:
            return self.initial_source
        return "ifd"

    def _in_loop_complexity(self, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Complexity of the pool on IFD's scale without scoring: ``exp(loss_ema - nll_prior)``
        for samples trained so far, their epoch-0 IFD for the others.  Returns it and the EMA
        (NaN where not trained yet)."""
        from iterit.training.inloop import ifd_equivalent

        if self.pool_nll_prior is None or self.pool_scores is None:
            raise RuntimeError("in-loop re-scoring has no epoch-0 IFD / nll_prior of the pool")
        ema = self.losses.ema_array(pool)
        trained = np.isfinite(ema)
        scores = np.where(trained, ifd_equivalent(ema, self.pool_nll_prior), self.pool_scores)
        return scores, ema

    # -- outputs -----------------------------------------------------------------------------

    def _write_log(self) -> None:
        """The selection log, one JSON line per epoch selected so far (rewritten atomically, so
        a resumed run's log matches its restored state)."""
        if self.log_path is None or not self.log_path.parent.is_dir():
            return
        text = "".join(json.dumps(self.records[e]) + "\n" for e in sorted(self.records))
        atomic_write_text(self.log_path, text, overwrite=True)

    def summary(self) -> dict[str, Any]:
        """Per-epoch timings (scoring, selecting, training, whole epoch) and the scoring work
        against the paper's O(N + a*M*(epochs-1))."""
        epochs = []
        for e in sorted(self.records):
            r, t = self.records[e], self.timings.get(e, {})
            epochs.append(
                {
                    "epoch": e,
                    "n_scored": r["n_scored"],
                    "n_trained": self.sampler.num_samples,
                    "pool_size": r["pool_size"],
                    "overlap_prev": r["overlap_prev"],
                    "score_forward_calls": r.get("score_forward_calls"),
                    **{k: v for k, v in t.items() if k != "restored"},
                    "restored": bool(t.get("restored", 0.0)),
                }
            )
        n_epochs = len(self.records)
        pool = 0 if self.pool is None else int(self.pool.shape[0])
        return {
            "n_samples": len(self.samples),
            "budget": self.budget,
            "rescore": self.config.rescore if self.config.needs_scores else None,
            "pool_size": pool,
            "epochs": epochs,
            "n_scored_total": int(sum(r["n_scored"] for r in self.records.values())),
            "paper_bound_n_plus_aM_epochs_minus_1": len(self.samples) + pool * max(n_epochs - 1, 0),
            "n_trained_total": self.sampler.num_samples * n_epochs,
        }


# --------------------------------------------------------------------------------------------
# Wiring into a trainer


def _rows_for(train_dataset: Any, n: int) -> np.ndarray | None:
    names = getattr(train_dataset, "column_names", None) or []
    if "iterit_index" in names:
        index = np.asarray(train_dataset["iterit_index"], dtype=np.int64)
        rows = np.full(n, -1, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= n):
            raise ValueError("the training dataset's iterit_index is out of range of the samples")
        rows[index] = np.arange(index.shape[0])
        return rows
    if len(train_dataset) != n:
        raise ValueError(
            f"the training dataset has {len(train_dataset)} rows for {n} samples: give it one row "
            "per sample in the same order (TokenizedSamples), or an 'iterit_index' column "
            "(sft_dataset)"
        )
    return None


def attach(
    trainer: Any,
    samples: Sequence[Sample | dict],
    config: SelectionConfig | None = None,
    *,
    score_fn: ScoreFn | None = None,
    initial_scores: np.ndarray | Sequence[float] | None = None,
    initial_nll_prior: np.ndarray | Sequence[float] | None = None,
    initial_source: str = "ifd",
    tokenizer: Any = None,
    template: Any = "alpaca",
    max_length: int = 1024,
    batch_tokens: int | None = None,
    progress: bool = True,
    log_path: str | os.PathLike[str] | None = None,
) -> IterITCallback:
    """Add IterIT to an existing ``transformers.Trainer`` (or any subclass: ``trl.SFTTrainer``).

    The trainer's ``train_dataset`` must hold every sample, tokenised (:class:`TokenizedSamples`
    or :func:`sft_dataset`).  The trainer gets an :class:`IterITSampler` of M samples per epoch
    (its ``_get_train_sampler`` is replaced on this instance only) and an
    :class:`IterITCallback`, returned and also kept as ``trainer.iterit``.  Without a
    ``score_fn``, IFD is computed by :class:`IFDScoreFn` with the trainer's model and tokenizer,
    the given ``template`` and ``max_length`` (use the ones the dataset was tokenised with).

    With ``config.rescore == "in-loop"`` the trainer also records each trained sample's loss
    from its training forward pass (:mod:`iterit.training.inloop`): the dataset must be
    :class:`TokenizedSamples` (its items then carry their sample index) or have an
    ``iterit_index`` column (:func:`sft_dataset`); ``initial_nll_prior`` goes with
    ``initial_scores`` (the epoch-0 ``nll_prior`` of every sample).
    """
    config = config or SelectionConfig()
    if getattr(trainer.args, "packing", False):
        raise ValueError("IterIT selects samples, not packed blocks: set packing=False")
    strategy = getattr(trainer.args, "train_sampling_strategy", "random")
    if strategy not in ("random", "sequential"):
        warnings.warn(
            f"train_sampling_strategy={strategy!r} is ignored: IterIT's sampler decides the order",
            stacklevel=2,
        )
    if trainer.train_dataset is None:
        raise ValueError("the trainer has no train_dataset")
    samples = [as_sample(s, i) for i, s in enumerate(samples)]
    n = len(samples)
    rows = _rows_for(trainer.train_dataset, n)
    seed = trainer.args.seed if config.seed is None else config.seed
    sampler = IterITSampler(resolve_budget(config.budget, n), rows=rows, seed=seed)
    if score_fn is None and config.needs_scores:
        # Epoch 0 (unless scores are given) and the later epochs score with the trained model.
        tokenizer = tokenizer if tokenizer is not None else trainer.processing_class
        if tokenizer is None:
            raise ValueError(
                "IFD scoring needs the tokenizer: pass tokenizer=... or give the trainer a "
                "processing_class"
            )
        score_fn = IFDScoreFn(
            tokenizer,
            template=template,
            max_length=max_length,
            batch_tokens=batch_tokens,
            progress=progress,
        )
    if config.in_loop:
        names = getattr(trainer.train_dataset, "column_names", None) or []
        if isinstance(trainer.train_dataset, TokenizedSamples):
            trainer.train_dataset.with_index = True
        elif "iterit_index" not in names:
            raise ValueError(
                "in-loop re-scoring needs each training row's sample index: train on "
                "TokenizedSamples, or a dataset with an 'iterit_index' column (sft_dataset)"
            )
    callback = IterITCallback(
        samples,
        sampler,
        config,
        score_fn=score_fn,
        initial_scores=initial_scores,
        initial_nll_prior=initial_nll_prior,
        initial_source=initial_source,
        log_path=log_path,
    )
    if callback.losses is not None:
        callback.losses.install(trainer)

    def _get_train_sampler(train_dataset: Any = None) -> IterITSampler:
        return sampler

    trainer._get_train_sampler = _get_train_sampler
    trainer.add_callback(callback)
    trainer.iterit = callback
    return callback
