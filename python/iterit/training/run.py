"""Fine-tune a causal LM with IterIT's per-epoch re-selection: what ``iterit train`` runs.

:func:`train` loads the data (:mod:`iterit.data`) and the model, tokenises every sample once
(response-only loss, the scorer's prompt format), builds an
:class:`iterit.training.trainers.IterITTrainer` (or ``IterITSFTTrainer``) with
:func:`build_trainer` and trains.  Defaults are the paper's (docs/design.md, "Pool and
iterations"): 3 epochs, M = 5% of the samples per epoch, pool factor 3, decay 0.1, learning rate
2e-5, cosine schedule with 3% warm-up over all epochs, effective batch 32 (per-device batch x
gradient accumulation x processes).

The switches are fields of :class:`iterit.config.TrainConfig`: ``iterate=False`` (no
iteration: the epoch-0 selection every epoch), ``diversity="none"`` (IFD only), ``diversity``
on the ``instruction``, the ``response`` or ``both``, ``scorer_model`` (a separate, smaller
scorer; training never changes it, so its epoch-0 scores are reused), and the static baselines
``strategy="random"`` / ``"longest"``.  Epoch 0 scores every sample, or reads the scores of a
file written by ``iterit score`` (``scores=``).

Runs unchanged under ``accelerate launch`` and ``torchrun`` (see ``docs/training.md``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from iterit.artifacts.epoch_records import RunSummary
from iterit.artifacts.run_files import selection_log_path, train_config_path, write_train_config
from iterit.config import TrainConfig
from iterit.data.sample import Sample, as_sample
from iterit.errors import ConfigError
from iterit.training import compat
from iterit.training.callback import IterITCallback
from iterit.training.datasets import ResponseOnlyCollator, TokenizedSamples, sft_dataset
from iterit.training.planner import InitialScores
from iterit.training.scoring_adapter import IFDScoreFn
from iterit.training.state import check_run_settings, resolve_checkpoint, run_settings
from iterit.training.trainers import IterITTrainer, iterit_trainer_class
from iterit.utils.atomic import run_folder_lock
from iterit.utils.distributed import launched_world_size
from iterit.utils.optional import missing_package, package_hint

if TYPE_CHECKING:  # pragma: no cover
    from iterit.scoring.model import LoadedModel
    from iterit.scoring.precision import Precision

__all__ = [
    "TrainResult",
    "build_trainer",
    "gradient_accumulation",
    "load_training_model",
    "precision",
    "seed_everything",
    "train",
    "training_arguments",
    "training_device",
]


@dataclass
class TrainResult:
    """What :func:`train` returns: where things went and what happened."""

    output_dir: Path
    selection_log: Path
    summary: RunSummary
    train_output: Any
    trainer: Any = field(repr=False)
    callback: IterITCallback = field(repr=False)


def gradient_accumulation(batch_size: int, micro_batch_size: int, world_size: int) -> int:
    """Accumulation steps so that micro x accumulation x processes == the effective batch;
    a clear error when it does not divide."""
    per_step = micro_batch_size * world_size
    if batch_size % per_step:
        raise ConfigError(
            f"effective batch {batch_size} is not a multiple of micro batch {micro_batch_size} x "
            f"{world_size} process(es); choose sizes that divide it"
        )
    return batch_size // per_step


def _args_class(cfg: TrainConfig) -> type:
    if cfg.trainer == "trl":
        return compat.sft_classes()[1]
    from transformers import TrainingArguments

    return TrainingArguments


def training_arguments(cfg: TrainConfig, accum: int | None = None) -> Any:
    """The ``TrainingArguments`` (``SFTConfig`` for the TRL trainer) :class:`TrainConfig`
    describes; ``accum`` defaults to the gradient accumulation of the launched processes."""
    if accum is None:
        accum = gradient_accumulation(cfg.batch_size, cfg.micro_batch_size, launched_world_size())
    flags = precision(cfg).trainer_flags()
    cls = _args_class(cfg)
    kwargs: dict[str, Any] = {
        "output_dir": str(cfg.output_dir),
        "per_device_train_batch_size": cfg.micro_batch_size,
        "gradient_accumulation_steps": accum,
        "num_train_epochs": cfg.epochs,
        "learning_rate": cfg.learning_rate,
        "lr_scheduler_type": cfg.lr_scheduler,
        **compat.warmup_kwargs(cls, cfg.warmup_ratio),
        "weight_decay": cfg.weight_decay,
        "max_grad_norm": cfg.max_grad_norm,
        "bf16": flags["bf16"],
        "logging_steps": cfg.logging_steps,
        "save_strategy": cfg.save_strategy,
        "seed": cfg.seed,
        "report_to": cfg.report_to,
        "disable_tqdm": not cfg.progress,
        **compat.checkpointing_kwargs(cls, cfg.gradient_checkpointing),
    }
    if cfg.save_steps is not None:
        kwargs["save_steps"] = cfg.save_steps
    if cfg.save_total_limit is not None:
        kwargs["save_total_limit"] = cfg.save_total_limit
    if cfg.deepspeed is not None:
        _require_deepspeed(cfg.deepspeed)
        kwargs["deepspeed"] = cfg.deepspeed
    if flags["use_cpu"]:
        kwargs.update(compat.cpu_kwargs(cls))  # the Trainer's bf16 on a CPU needs use_cpu
    if cfg.trainer == "trl":
        kwargs.update(packing=False, max_length=cfg.max_length)
    kwargs.update(cfg.training_args)
    try:
        return cls(**kwargs)
    except ValueError as e:  # transformers' and TRL's checks of the combination
        raise ConfigError(f"the training settings are refused: {e}") from None


def precision(cfg: TrainConfig) -> Precision:
    """What :func:`train` with ``cfg`` computes in: the weights' dtype, the Trainer's mixed
    precision and why (:func:`iterit.scoring.precision.training_precision`)."""
    from iterit.scoring.precision import training_precision

    return training_precision(cfg.dtype, cfg.device, bf16=cfg.bf16)


def load_training_model(cfg: TrainConfig, *, placed: bool = False) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of ``cfg.model`` loaded as :func:`train` loads it (on the CPU:
    the Trainer places it); ``placed``: on the device training runs on, as the Trainer would
    place it, for work done with the initial model outside the Trainer (scoring, evaluating)."""
    if cfg.model is None:
        raise ConfigError("give the model to train: config.model or model=")
    loaded = _load(cfg.model, cfg)
    model, tok = loaded.model, loaded.tokenizer
    return (model.to(training_device(cfg)), tok) if placed else (model, tok)


def training_device(cfg: TrainConfig) -> str:
    """The device the Trainer trains on: ``cfg.device``, else this process's CUDA device when
    there is one (``LOCAL_RANK`` under a launcher), else the CPU."""
    import torch

    if cfg.device is not None:
        return str(cfg.device)
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return "cpu"


def _load(
    name: str, cfg: TrainConfig, device: str | None = None, *, trains: bool = True
) -> LoadedModel:
    """The model to train (``trains``: float32 weights unless a dtype is named, mixed precision
    comes from the Trainer's switches) or a separate scorer (``cfg.dtype``, ``auto`` resolved
    per device)."""
    from iterit.scoring import load_model

    dtype = cfg.dtype if cfg.dtype not in (None, "auto") or not trains else "float32"
    return load_model(
        name,
        device=device or "cpu",  # the trainer places the training model (one device per rank)
        dtype=dtype,
        trust_remote_code=cfg.trust_remote_code,
        model_cache=cfg.model_cache,
    )


def seed_everything(args: Any) -> None:
    """Seed Python, numpy and torch from ``args.seed`` (``full_determinism``: with
    deterministic kernels too) before anything random is built: the LoRA adapter's initial
    weights come from the global generator before the Trainer seeds it (docs/training.md,
    "LoRA")."""
    import transformers

    if getattr(args, "full_determinism", False):
        transformers.enable_full_determinism(args.seed)
    else:
        transformers.set_seed(args.seed)


def _initial_scores(
    cfg: TrainConfig, samples: Sequence[Sample], scoring_model: Any = None
) -> InitialScores | None:
    """Epoch-0 complexity, nll_prior (or None) and what the complexity is, from ``cfg.scores``
    (None without a scores file).

    The complexity is the file's ``complexity`` column when it has one (the learning-percentage
    file of ``iterit score --metric learning-percentage``), else its ``ifd`` column.  Scores of
    another model than ``scoring_model`` (the one later epochs score with) are refused unless
    ``cfg.allow_other_model_scores``."""
    if cfg.scores is None:
        return None
    from iterit.artifacts.score_files import (
        check_scores_model,
        complexity_column,
        complexity_kind,
        read_scores,
        read_table,
        scores_model,
    )

    path = Path(cfg.scores)
    cols = read_table(path)
    recorded, dtype = scores_model(cols)
    if recorded is not None and scoring_model is not None and not cfg.allow_other_model_scores:
        from iterit.scoring.model import weights_fingerprint

        check_scores_model(path, recorded, weights_fingerprint(scoring_model, dtype))
    column = complexity_column(cols)
    ifd = column == "ifd"
    scores = read_scores(
        path,
        samples,
        column=column,
        variant=cfg.ifd_variant if ifd else None,
        turns=cfg.turns if ifd else None,
    )
    if column == "ifd":
        return InitialScores(scores["ifd"], scores.get("nll_prior"), "ifd")
    # A complexity that is not IFD has no nll_prior to put in-loop losses on its scale.
    return InitialScores(scores[column], None, complexity_kind(cols))


def _score_fn(cfg: TrainConfig, tokenizer: Any, scorer: LoadedModel | None) -> IFDScoreFn:
    """IFD with the model being trained, or with a separate scorer."""
    s_model, s_tok = (scorer.model, scorer.tokenizer) if scorer is not None else (None, None)
    if s_tok is not None and s_tok.pad_token_id is None:
        s_tok.pad_token = s_tok.eos_token
    return IFDScoreFn(tokenizer, scoring=cfg.scoring, scorer_model=s_model, scorer_tokenizer=s_tok)


def _peft_config(cfg: TrainConfig) -> Any:
    """The ``peft.LoraConfig`` of ``cfg`` (None without LoRA)."""
    if not cfg.lora:
        return None
    from iterit.training.lora import lora_config

    return lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_targets)


def build_trainer(
    cfg: TrainConfig,
    samples: Sequence[Sample | dict],
    model: Any,
    tokenizer: Any,
    *,
    args: Any = None,
    scorer: LoadedModel | None = None,
    score_fn: Any = None,
    initial_scores: InitialScores | np.ndarray | None = None,
    callbacks: Sequence[Any] = (),
) -> tuple[Any, IterITCallback]:
    """An :class:`IterITTrainer` (or ``IterITSFTTrainer``) for the given model and samples.

    ``args`` defaults to the arguments :class:`TrainConfig` describes; ``scorer`` is an
    optional separate scorer (:class:`iterit.scoring.model.LoadedModel`); ``score_fn``
    overrides the scoring altogether (see :class:`iterit.training.callback.IterITCallback`)."""
    samples = [as_sample(s, i) for i, s in enumerate(samples)]
    selection = cfg.selection()
    if args is None:
        args = training_arguments(cfg)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # padding only; pads never carry a label
    if score_fn is None and selection.needs_scores:
        score_fn = _score_fn(cfg, tokenizer, scorer)
    seed_everything(args)  # the adapter the trainer builds takes its initial weights from it
    scoring = cfg.scoring
    common: dict[str, Any] = {
        "model": model,
        "args": args,
        "processing_class": tokenizer,
        "callbacks": list(callbacks) or None,
        "samples": samples,
        "selection_config": selection,
        "score_fn": score_fn,
        "initial_scores": initial_scores,
        "scoring_config": scoring,
        "peft_config": _peft_config(cfg),
    }
    if cfg.trainer == "trl":
        trainer_class = iterit_trainer_class(compat.sft_classes()[0])
        trainer = trainer_class(train_dataset=sft_dataset(samples, tokenizer, scoring), **common)
    else:
        trainer = IterITTrainer(
            train_dataset=TokenizedSamples(samples, tokenizer, scoring),
            data_collator=ResponseOnlyCollator(tokenizer.pad_token_id),
            **common,
        )
    return trainer, trainer.iterit


def _samples(cfg: TrainConfig, samples: Sequence[Sample | dict] | None) -> list[Sample]:
    if samples is None:
        if cfg.data is None:
            raise ConfigError("give the training data: config.data (a file) or samples=")
        from iterit.data import load

        samples = load(cfg.data, format=cfg.data_format, fields=cfg.fields, split=cfg.split).samples
    items = [as_sample(s, i) for i, s in enumerate(samples)]
    if not items:
        raise ConfigError("no samples to train on")
    return items


def _write_config(
    cfg: TrainConfig,
    trainer: Any,
    n_samples: int,
    budget: int,
    accum: int,
    scorer: LoadedModel | None,
) -> None:
    write_train_config(
        train_config_path(cfg.output_dir),
        {
            **cfg.to_json(),
            "n_samples": n_samples,
            "budget_count": budget,
            "gradient_accumulation_steps": accum,
            "world_size": launched_world_size(),
            "steps_per_epoch": math.ceil(trainer.state.max_steps / max(cfg.epochs, 1)),
            "global_step": trainer.state.global_step,
            "precision": _precision(trainer, scorer),
        },
    )


def _precision(trainer: Any, scorer: LoadedModel | None) -> dict[str, Any]:
    """What the run computed in (run log): the trained weights' dtype, the Trainer's mixed
    precision, and the separate scorer's dtype with why it was chosen."""
    from iterit.scoring.device import dtype_name, model_dtype_name
    from iterit.scoring.precision import args_autocast

    args = trainer.args
    autocast = args_autocast(args)
    mixed = "none" if autocast is None else {"bfloat16": "bf16"}.get(dtype_name(autocast), "fp16")
    out: dict[str, Any] = {"weights": model_dtype_name(trainer.model), "mixed_precision": mixed}
    if mixed != "none" and str(args.device).startswith("cpu"):
        out["mixed_precision"] += " (CPU autocast)"
    if scorer is not None:
        out["scorer"] = scorer.precision.as_dict()
    return out


def _require_deepspeed(config_file: Any) -> None:
    """A DeepSpeed config needs the deepspeed package: say so in one line, before any work."""
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        raise missing_package(
            "deepspeed", package_hint("deepspeed"), f"the DeepSpeed config {str(config_file)!r}"
        )


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
    (``iterit_summary.json``) and the configuration (``iterit_train_config.json``); the names
    are :mod:`iterit.artifacts.names'.  The output folder is locked for the whole run
    (:func:`iterit.utils.atomic.run_folder_lock`): a second run into it fails at once.
    """
    cfg = (
        dataclasses.replace(config, **overrides) if config is not None else TrainConfig(**overrides)
    )
    with run_folder_lock(cfg.output_dir):
        return _train(cfg, samples, model, tokenizer, callbacks)


def _train(
    cfg: TrainConfig,
    samples: Sequence[Sample | dict] | None,
    model: Any,
    tokenizer: Any,
    callbacks: Sequence[Any],
) -> TrainResult:
    out = Path(cfg.output_dir)
    samples = _samples(cfg, samples)

    # TrainingArguments first: under DeepSpeed ZeRO-3 they must exist before the model loads.
    accum = gradient_accumulation(cfg.batch_size, cfg.micro_batch_size, launched_world_size())
    args = training_arguments(cfg, accum)
    seed_everything(args)
    if model is None:
        if cfg.model is None:
            raise ConfigError("give the model to train: config.model or model=")
        loaded = _load(cfg.model, cfg)
        model, tokenizer = loaded.model, tokenizer or loaded.tokenizer
    if tokenizer is None:
        raise ConfigError("give the tokenizer with the model")
    scorer = None
    if cfg.scorer_model is not None and cfg.selection().needs_scores:
        scorer = _load(cfg.scorer_model, cfg, device=str(args.device), trains=False)
    settings = run_settings(cfg, samples, model, scorer)
    # Incomplete checkpoints (killed while being written) are skipped, naming each one; one
    # made with other settings or inputs is refused before anything of it is loaded.
    resume = resolve_checkpoint(out, cfg.resume_from_checkpoint)
    if resume is not None:
        check_run_settings(resume, settings)
    initial = _initial_scores(cfg, samples, model if scorer is None else scorer.model)

    trainer, callback = build_trainer(
        cfg,
        samples,
        model,
        tokenizer,
        args=args,
        scorer=scorer,
        initial_scores=initial,
        callbacks=callbacks,
    )
    callback.run_settings = settings
    output = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(out))  # with LoRA: the adapter, as peft saves it
    if cfg.merge_lora and trainer.is_world_process_zero():
        from iterit.artifacts.names import MERGED_MODEL_DIR
        from iterit.training.lora import merge_and_save

        merge_and_save(trainer.model, tokenizer, out / MERGED_MODEL_DIR)
    if trainer.is_world_process_zero():
        _write_config(cfg, trainer, len(samples), callback.budget, accum, scorer)
    return TrainResult(
        output_dir=out,
        selection_log=callback.log_path or selection_log_path(out),
        summary=callback.summary(),
        train_output=output,
        trainer=trainer,
        callback=callback,
    )
