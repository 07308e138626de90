"""Fine-tune a causal LM with IterIT's per-epoch re-selection: what ``iterit train`` runs.

:func:`train` loads the data (:mod:`iterit.data`) and the model, tokenises every sample once
(response-only loss, the scorer's prompt format), builds a ``transformers.Trainer`` (or a
``trl.SFTTrainer``), adds IterIT to it with :func:`iterit.training.hf.attach` and trains.  Defaults are
the paper's (Sec. 3.4, DESIGN 3.5): 3 epochs, M = 5% of the samples per epoch, pool factor 3,
decay 0.1, learning rate 2e-5, cosine schedule with 3% warm-up over all epochs, effective batch
32 (per-device batch x gradient accumulation x processes).

The switches of DESIGN 3.6 are fields of :class:`TrainConfig`: ``iterate=False`` (no
iteration: the epoch-0 selection every epoch), ``diversity="none"`` (IFD only), ``diversity``
on the ``instruction``, the ``response`` or ``both``, ``scorer_model`` (a separate, smaller
scorer; training never changes it, so its epoch-0 scores are reused), and the static baselines
``strategy="random"`` / ``"longest"``.  Epoch 0 scores every sample, or reads the scores of a
file written by ``iterit score`` (``scores=``).

Runs unchanged under ``accelerate launch`` and ``torchrun`` (see ``docs/training.md``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iterit.data.sample import Sample, as_sample
from iterit.training.hf import (
    LOG_NAME,
    IFDScoreFn,
    IterITCallback,
    ResponseOnlyCollator,
    SelectionConfig,
    TokenizedSamples,
    attach,
    sft_dataset,
)
from iterit.utils.atomic import atomic_write_text

__all__ = [
    "CONFIG_NAME",
    "TrainConfig",
    "TrainResult",
    "build_trainer",
    "gradient_accumulation",
    "train",
]

logger = logging.getLogger(__name__)

CONFIG_NAME = "iterit_train_config.json"
TRAINERS = ("transformers", "trl")


@dataclass
class TrainConfig:
    """Everything ``iterit train`` takes; the defaults are the paper's.

    Selection (per epoch, DESIGN 3.4-3.6): ``budget`` (M: a count or a fraction of the
    samples), ``pool_factor``, ``decay``, ``diversity`` (``response``, ``instruction``,
    ``both``, ``none`` = IFD only), ``strategy`` (``iterit``, ``ifd``, ``random``,
    ``longest``), ``iterate`` (False: no re-selection), ``scorer_model`` (a separate scorer),
    ``scores`` (epoch-0 IFD from a file), ``template`` and ``max_length`` (shared by scoring and
    training), ``batch_tokens`` (scoring batch budget), ``score_cache`` (a folder: epoch 0's
    scoring of every sample goes through the resumable cache of :mod:`iterit.scoring.ifd`),
    ``rescore`` (``ifd``: re-score the pool with IFD before every later epoch, the paper's;
    ``in-loop``: take the later epochs' complexity from the training losses, no re-scoring;
    see ``docs/signals.md``) and ``loss_ema`` (the in-loop loss EMA's history weight).

    Training: ``epochs``, ``learning_rate``, ``lr_scheduler``, ``warmup_ratio``, ``batch_size``
    (effective: ``micro_batch_size`` x gradient accumulation x processes), ``micro_batch_size``
    (per device), ``weight_decay``, ``max_grad_norm``, ``dtype`` of the loaded weights
    (default float32), ``bf16`` (mixed precision; default: on when CUDA supports it),
    ``gradient_checkpointing``, ``seed``, checkpointing (``save_strategy``, ``save_steps``,
    ``save_total_limit``), ``resume_from_checkpoint`` (a path, or True for the last one in
    ``output_dir``), ``trainer`` (``transformers`` or ``trl``), ``deepspeed`` (a config file),
    ``training_args`` (any further ``TrainingArguments`` / ``SFTConfig`` fields).
    """

    model: str | None = None
    data: str | os.PathLike[str] | None = None
    output_dir: str | os.PathLike[str] = "iterit-output"
    # data
    data_format: str = "auto"
    fields: dict[str, str] | None = None
    split: str | None = None
    # selection
    budget: int | float = 0.05
    pool_factor: float = 3.0
    decay: float = 0.1
    diversity: str = "response"
    strategy: str = "iterit"
    iterate: bool = True
    scorer_model: str | None = None
    scores: str | os.PathLike[str] | None = None
    template: str = "alpaca"
    max_length: int = 1024
    batch_tokens: int | None = None
    score_cache: str | os.PathLike[str] | None = None
    ngram_range: tuple[int, int] = (1, 3)
    rescore: str = "ifd"
    loss_ema: float = 0.5
    # training
    epochs: int = 3
    learning_rate: float = 2e-5
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    batch_size: int = 32
    micro_batch_size: int = 4
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    dtype: str | None = None
    bf16: bool | None = None
    gradient_checkpointing: bool = False
    seed: int = 42
    save_strategy: str = "epoch"
    save_steps: int | None = None
    save_total_limit: int | None = None
    logging_steps: int = 10
    resume_from_checkpoint: str | bool | None = None
    trainer: str = "transformers"
    deepspeed: str | None = None
    device: str | None = None
    report_to: str = "none"
    progress: bool = True
    trust_remote_code: bool = False
    training_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.trainer not in TRAINERS:
            raise ValueError(f"unknown trainer {self.trainer!r} (expected one of {TRAINERS})")
        for name in ("epochs", "batch_size", "micro_batch_size", "max_length"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        self.selection()  # validates budget, decay, pool factor, diversity, strategy

    def selection(self) -> SelectionConfig:
        return SelectionConfig(
            budget=self.budget,
            pool_factor=self.pool_factor,
            decay=self.decay,
            diversity=self.diversity,
            strategy=self.strategy,
            iterate=self.iterate,
            ngram_range=tuple(self.ngram_range),
            seed=self.seed,
            rescore=self.rescore,
            loss_ema=self.loss_ema,
        )

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for k, v in out.items():
            if isinstance(v, os.PathLike):
                out[k] = os.fspath(v)
        return out


@dataclass
class TrainResult:
    """What :func:`train` returns: where things went and what happened."""

    output_dir: Path
    selection_log: Path
    summary: dict[str, Any]
    train_output: Any
    trainer: Any = field(repr=False)
    callback: IterITCallback = field(repr=False)


def _world_size() -> int:
    # Set by torchrun and accelerate launch before the process starts.
    return max(int(os.environ.get("WORLD_SIZE", "1")), 1)


def gradient_accumulation(batch_size: int, micro_batch_size: int, world_size: int) -> int:
    """Accumulation steps so that micro x accumulation x processes == the effective batch;
    a clear error when it does not divide."""
    per_step = micro_batch_size * world_size
    if batch_size % per_step:
        raise ValueError(
            f"effective batch {batch_size} is not a multiple of micro batch {micro_batch_size} x "
            f"{world_size} process(es); choose sizes that divide it"
        )
    return batch_size // per_step


def _training_args(cfg: TrainConfig, out: Path, accum: int) -> Any:
    import torch

    bf16 = cfg.bf16
    if bf16 is None:
        bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    kwargs: dict[str, Any] = {
        "output_dir": str(out),
        "per_device_train_batch_size": cfg.micro_batch_size,
        "gradient_accumulation_steps": accum,
        "num_train_epochs": cfg.epochs,
        "learning_rate": cfg.learning_rate,
        "lr_scheduler_type": cfg.lr_scheduler,
        "warmup_steps": cfg.warmup_ratio,  # a float in [0, 1) is a ratio of all steps
        "weight_decay": cfg.weight_decay,
        "max_grad_norm": cfg.max_grad_norm,
        "bf16": bf16,
        "logging_steps": cfg.logging_steps,
        "save_strategy": cfg.save_strategy,
        "seed": cfg.seed,
        "report_to": cfg.report_to,
        "disable_tqdm": not cfg.progress,
    }
    if cfg.save_steps is not None:
        kwargs["save_steps"] = cfg.save_steps
    if cfg.save_total_limit is not None:
        kwargs["save_total_limit"] = cfg.save_total_limit
    if cfg.deepspeed is not None:
        kwargs["deepspeed"] = cfg.deepspeed
    if cfg.device is not None and str(cfg.device).startswith("cpu"):
        kwargs["use_cpu"] = True
    if cfg.trainer == "trl":
        from trl import SFTConfig as cls

        kwargs.update(packing=False, max_length=cfg.max_length)
    else:
        from transformers import TrainingArguments as cls
    # transformers 5 renamed gradient checkpointing to activation checkpointing.
    names = {f.name for f in dataclasses.fields(cls)}
    ckpt = (
        "activation_checkpointing"
        if "activation_checkpointing" in names
        else "gradient_checkpointing"
    )
    kwargs[ckpt] = cfg.gradient_checkpointing
    kwargs.update(cfg.training_args)
    return cls(**kwargs)


def _load(name: str, cfg: TrainConfig, device: str | None = None) -> tuple[Any, Any]:
    from iterit.scoring.ifd import load_model

    model, tok = load_model(
        name,
        device=device or "cpu",  # the trainer places the training model (one device per rank)
        dtype=cfg.dtype or "float32",
        trust_remote_code=cfg.trust_remote_code,
    )
    return model, tok


def _initial_scores(
    cfg: TrainConfig, samples: Sequence[Sample]
) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """Epoch-0 complexity, nll_prior (or None) and what the complexity is, from ``cfg.scores``.

    The complexity is the file's ``complexity`` column when it has one (the learning-percentage
    file of ``iterit score --metric learning-percentage``), else its ``ifd`` column."""
    if cfg.scores is None:
        return None, None, "ifd"
    from iterit.cli.score import read_scores, read_table

    try:
        import click

        error: tuple[type[BaseException], ...] = (click.ClickException,)
    except ImportError:  # pragma: no cover - click comes with the train extra
        error = ()
    try:
        path = Path(cfg.scores)
        cols = read_table(path)
        column = "complexity" if "complexity" in cols else "ifd"
        scores = read_scores(path, samples, column=column)
    except error as e:
        raise ValueError(e.format_message()) from None
    if column == "ifd":
        return scores["ifd"], scores.get("nll_prior"), "ifd"
    # A complexity that is not IFD has no nll_prior to put in-loop losses on its scale.
    kind = "learning-percentage" if "lp" in cols else "complexity"
    return scores[column], None, kind


def build_trainer(
    cfg: TrainConfig,
    samples: Sequence[Sample | dict],
    model: Any,
    tokenizer: Any,
    *,
    args: Any = None,
    scorer: tuple[Any, Any] | None = None,
    score_fn: Any = None,
    initial_scores: np.ndarray | None = None,
    initial_nll_prior: np.ndarray | None = None,
    initial_source: str = "ifd",
    callbacks: Sequence[Any] = (),
) -> tuple[Any, IterITCallback]:
    """A ``Trainer`` (or ``SFTTrainer``) with IterIT attached, for the given model and samples.

    ``args`` defaults to the arguments :class:`TrainConfig` describes; ``scorer`` is an
    optional ``(model, tokenizer)`` of a separate scorer; ``score_fn`` overrides the scoring
    altogether (see :class:`iterit.training.hf.IterITCallback`)."""
    samples = [as_sample(s, i) for i, s in enumerate(samples)]
    out = Path(cfg.output_dir)
    if args is None:
        accum = gradient_accumulation(cfg.batch_size, cfg.micro_batch_size, _world_size())
        args = _training_args(cfg, out, accum)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # padding only; pads never carry a label
    if score_fn is None and cfg.selection().needs_scores:
        if scorer is not None:
            s_model, s_tok = scorer
            if s_tok.pad_token_id is None:
                s_tok.pad_token = s_tok.eos_token
            score_fn = IFDScoreFn(
                tokenizer,
                template=cfg.template,
                max_length=cfg.max_length,
                batch_tokens=cfg.batch_tokens,
                scorer_model=s_model,
                scorer_tokenizer=s_tok,
                progress=cfg.progress,
                cache=cfg.score_cache,
            )
        else:
            score_fn = IFDScoreFn(
                tokenizer,
                template=cfg.template,
                max_length=cfg.max_length,
                batch_tokens=cfg.batch_tokens,
                progress=cfg.progress,
                cache=cfg.score_cache,
            )
    if cfg.trainer == "trl":
        from trl import SFTTrainer

        dataset = sft_dataset(samples, tokenizer, template=cfg.template, max_length=cfg.max_length)
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=list(callbacks) or None,
        )
    else:
        from transformers import Trainer

        dataset = TokenizedSamples(
            samples, tokenizer, template=cfg.template, max_length=cfg.max_length
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=ResponseOnlyCollator(tokenizer.pad_token_id),
            processing_class=tokenizer,
            callbacks=list(callbacks) or None,
        )
    callback = attach(
        trainer,
        samples,
        cfg.selection(),
        score_fn=score_fn,
        initial_scores=initial_scores,
        initial_nll_prior=initial_nll_prior,
        initial_source=initial_source,
        tokenizer=tokenizer,
        template=cfg.template,
        max_length=cfg.max_length,
        batch_tokens=cfg.batch_tokens,
    )
    return trainer, callback


def train(
    config: TrainConfig | None = None,
    *,
    samples: Sequence[Sample | dict] | None = None,
    model: Any = None,
    tokenizer: Any = None,
    callbacks: Sequence[Any] = (),
    **overrides: Any,
) -> TrainResult:
    """Fine-tune with IterIT (see the module docstring).

    ``config`` (or keyword ``overrides`` of its fields) says what to do; ``samples``,
    ``model`` and ``tokenizer`` replace loading ``config.data`` and ``config.model``.  The
    fine-tuned model and tokenizer are saved to ``output_dir`` with the selection log
    (``iterit_selection.jsonl``), a summary of timings and scoring work
    (``iterit_summary.json``) and the configuration (``iterit_train_config.json``).
    """
    cfg = (
        dataclasses.replace(config, **overrides) if config is not None else TrainConfig(**overrides)
    )
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if samples is None:
        if cfg.data is None:
            raise ValueError("give the training data: config.data (a file) or samples=")
        from iterit.data import load

        samples = load(cfg.data, format=cfg.data_format, fields=cfg.fields, split=cfg.split).samples
    samples = [as_sample(s, i) for i, s in enumerate(samples)]
    if not samples:
        raise ValueError("no samples to train on")

    # TrainingArguments first: under DeepSpeed ZeRO-3 they must exist before the model loads.
    accum = gradient_accumulation(cfg.batch_size, cfg.micro_batch_size, _world_size())
    args = _training_args(cfg, out, accum)
    if model is None:
        if cfg.model is None:
            raise ValueError("give the model to train: config.model or model=")
        model, loaded_tok = _load(cfg.model, cfg)
        tokenizer = tokenizer or loaded_tok
    if tokenizer is None:
        raise ValueError("give the tokenizer with the model")
    scorer = None
    if cfg.scorer_model is not None and cfg.selection().needs_scores:
        scorer = _load(cfg.scorer_model, cfg, device=str(args.device))
    initial, initial_prior, initial_source = _initial_scores(cfg, samples)

    trainer, callback = build_trainer(
        cfg,
        samples,
        model,
        tokenizer,
        args=args,
        scorer=scorer,
        initial_scores=initial,
        initial_nll_prior=initial_prior,
        initial_source=initial_source,
        callbacks=callbacks,
    )
    resume = cfg.resume_from_checkpoint
    output = trainer.train(resume_from_checkpoint=resume or None)
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        atomic_write_text(
            out / CONFIG_NAME,
            json.dumps(
                {
                    **cfg.to_json(),
                    "n_samples": len(samples),
                    "budget_count": callback.budget,
                    "gradient_accumulation_steps": accum,
                    "world_size": _world_size(),
                    "steps_per_epoch": math.ceil(trainer.state.max_steps / max(cfg.epochs, 1)),
                    "global_step": trainer.state.global_step,
                },
                indent=2,
                default=str,
            )
            + "\n",
            overwrite=True,
        )
    return TrainResult(
        output_dir=out,
        selection_log=callback.log_path or out / LOG_NAME,
        summary=callback.summary(),
        train_output=output,
        trainer=trainer,
        callback=callback,
    )
