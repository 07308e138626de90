"""``iterit train``: fine-tune with IterIT's per-epoch re-selection (docs/training.md).

Parses the options into an :class:`iterit.config.TrainConfig` and calls
:func:`iterit.training.run.train`; library errors reach the central ``Error:`` handler."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import click

from iterit.artifacts.epoch_records import RunSummary
from iterit.artifacts.names import SELECTION_LOG, SELECTION_SUMMARY
from iterit.cli import options
from iterit.cli.params import FRACTION, choice, config_option
from iterit.cli.train_config import missing_training, run_inputs_options, train_config
from iterit.config import (
    RESCORE,
    SAVE_STRATEGIES,
    STRATEGIES,
    TRAINERS,
    SelectionConfig,
    TrainConfig,
)
from iterit.errors import ConfigError

__all__ = ["train_command"]


def _resume_value(value: str | None) -> str | bool | None:
    if value is None:
        return None
    return True if value == "last" else value


@click.command("train")
@run_inputs_options(
    f"Run folder: checkpoints, the selection log ({SELECTION_LOG}), the summary "
    "and the fine-tuned model."
)
@options.selection_options
@config_option(
    SelectionConfig,
    "strategy",
    choice(STRATEGIES),
    help="iterit: re-score the pool each epoch, select complex and diverse samples; ifd: the "
    "same by IFD alone (= --diversity none); random / longest: static baselines, no scoring.",
)
@click.option(
    "--iterate/--no-iteration",
    default=True,
    show_default=True,
    help="Re-score and re-select before every epoch, or reuse the epoch-0 selection.",
)
@click.option(
    "--scorer-model",
    default=None,
    metavar="MODEL",
    help="Score IFD with this separate (smaller) model instead of the model being trained; "
    "its epoch-0 scores are reused (it does not train).",
)
@options.scores_file_option(
    "Epoch-0 complexity of every sample from `iterit score` (instead of scoring it here): "
    "its 'complexity' column if it has one (learning percentage), else its 'ifd' column."
)
@config_option(
    SelectionConfig,
    "rescore",
    choice(RESCORE),
    help="How epochs after the first get their complexity. ifd: re-score the pool with the "
    "model being trained; in-loop: no re-scoring, each trained sample's training loss "
    "(smoothed across epochs) on IFD's scale, exp(loss_ema - nll_prior); pool samples not "
    "trained yet keep their epoch-0 IFD (docs/signals.md).",
)
@config_option(
    SelectionConfig,
    "loss_ema",
    FRACTION,
    help="In-loop loss smoothing: ema = BETA * ema + (1 - BETA) * this epoch's loss.",
)
@options.training_options()
@options.schedule_options
@config_option(
    TrainConfig, "weight_decay", options.FiniteFloatRange(min=0.0), help="AdamW weight decay."
)
@click.option(
    "--bf16/--no-bf16",
    default=None,
    help="bf16 mixed precision (default: on when CUDA supports it, and on a CPU with native "
    "bfloat16 under --dtype auto).",
)
@click.option("--gradient-checkpointing", is_flag=True, default=False)
@click.option(
    "--trainer",
    "trainer_kind",
    type=choice(TRAINERS),
    default=TrainConfig.trainer,
    show_default=True,
    help="transformers.Trainer or trl.SFTTrainer (both: response-only loss).",
)
@config_option(
    TrainConfig,
    "save_strategy",
    choice(SAVE_STRATEGIES),
    help="When checkpoints are written: every epoch, every --save-steps steps, or never.",
)
@click.option("--save-steps", type=click.IntRange(min=1), default=None)
@click.option("--save-total-limit", type=click.IntRange(min=1), default=None)
@config_option(
    TrainConfig, "logging_steps", click.IntRange(min=1), help="Steps between loss log lines."
)
@click.option(
    "--resume",
    is_flag=False,
    flag_value="last",
    default=None,
    metavar="[CHECKPOINT]",
    help="Resume from a checkpoint folder, or (no value) from the last one in --output-dir; "
    "the selections already made are restored, not recomputed.",
)
@click.option(
    "--deepspeed",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="DeepSpeed config file (JSON), passed to the trainer.",
)
@click.option(
    "--report-to", default="none", show_default=True, help="Trainer logging integrations."
)
@options.training_seed_option()
@click.option(
    "--allow-other-model-scores",
    is_flag=True,
    default=False,
    help="Use --scores written with another model than the one scoring this run (refused "
    "by default: the file records the model's fingerprint).",
)
@click.option("--trust-remote-code", is_flag=True, default=False)
@options.lora_options
@options.overwrite_option
@options.progress_option
def train_command(**params: Any) -> None:
    """Fine-tune MODEL on --data with IterIT: before every epoch, re-score the candidate pool
    with the model being trained and select a budget of complex, diverse samples.

    Epoch 0 scores every sample (or reads --scores) and keeps the pool of pool-factor x budget
    valid samples with the highest IFD; later epochs re-score only the pool (or, with
    --rescore in-loop, take its complexity from the training losses).  Defaults are the
    paper's: 3 epochs, 5% per epoch, pool factor 3, decay 0.1, learning rate 2e-5, cosine with
    3% warm-up, effective batch 32.  The loss covers response tokens only, and the prompt
    format is the scoring template.  Run it under `accelerate launch` or `torchrun` for
    several GPUs (see docs/training.md).

    \b
    Example:
      iterit train --model HuggingFaceTB/SmolLM2-135M --data alpaca.jsonl --output-dir run/
    """
    t0 = time.perf_counter()
    output_dir: Path = params["output_dir"]
    _check_output(params)
    loaded = options.load_data(
        params["data"], params["data_format"], params["fields"], params["split"]
    )
    model_name = params["model"] or options.default_model()
    if params["model"] is None:
        options.info(f"no --model given: training {options.describe_model(model_name)}")
    cfg = _train_config(params, model_name, loaded.format)
    try:
        from iterit.training.run import precision, train
    except ImportError as e:
        raise missing_training("training", e) from None
    options.info(f"training {precision(cfg).note()}")
    try:
        result = train(cfg, samples=loaded.samples)
    except ConfigError as e:  # the library names the settings; the command line, its flags
        raise ConfigError(_LORA_SETTING.sub(_as_flag, str(e))) from None
    if not result.trainer.is_world_process_zero():
        return
    _print_summary(result.summary, output_dir, time.perf_counter() - t0)


_LORA_SETTING = re.compile(r"\blora_(?:targets|r|alpha|dropout)\b")


def _as_flag(match: re.Match[str]) -> str:
    return "--" + match.group(0).replace("_", "-")


def _check_output(params: dict[str, Any]) -> None:
    """Usage errors the options alone reveal: a steps schedule without steps, a previous run
    in the output folder.  A missing output folder is created, parents included."""
    output_dir: Path = params["output_dir"]
    if params["merge_lora"] and not params["lora"]:
        raise click.UsageError("--merge-lora needs --lora")
    if params["save_strategy"] == "steps" and params["save_steps"] is None:
        raise click.UsageError("--save-strategy steps needs --save-steps")
    if (
        params["resume"] is None
        and not params["overwrite"]
        and output_dir.is_dir()
        and (output_dir / SELECTION_LOG).exists()
    ):
        raise click.UsageError(
            f"{output_dir} holds a previous run ({SELECTION_LOG}); resume it with --resume, or "
            "pass --overwrite to start over there"
        )


#: Options passed to TrainConfig under their own names, as given, besides the shared ones.
_SAME_NAME = (
    "iterate",
    "scorer_model",
    "loss_ema",
    "weight_decay",
    "bf16",
    "gradient_checkpointing",
    "save_steps",
    "save_total_limit",
    "logging_steps",
    "deepspeed",
    "report_to",
    "trust_remote_code",
    "lora",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "merge_lora",
    "allow_other_model_scores",
)


def _train_config(params: dict[str, Any], model_name: str, data_format: str) -> TrainConfig:
    p = params
    return train_config(
        p,
        model_name,
        data_format,
        names=_SAME_NAME,
        choices=("strategy", "rescore", "save_strategy"),
        scores=str(p["scores_file"]) if p["scores_file"] else None,
        resume_from_checkpoint=_resume_value(p["resume"]),
        trainer=p["trainer_kind"].lower(),
        lora_targets=_lora_targets(p["lora_targets"]),
    )


def _lora_targets(value: str | None) -> tuple[str, ...] | str | None:
    if value is None:
        return None
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    if not names:
        raise click.BadParameter("give at least one module name", param_hint="--lora-targets")
    return names[0] if names == ("all-linear",) else names


def _print_summary(summary: RunSummary, out: Path, seconds: float) -> None:
    echo = click.echo
    echo(
        f"trained {len(summary.epochs)} epoch(s) on {summary.budget} of "
        f"{summary.n_samples} samples per epoch (pool {summary.pool_size}) "
        f"in {seconds:.1f} s"
    )
    for e in summary.epochs:
        parts = [f"epoch {e.epoch}: scored {e.n_scored}"]
        if e.score_forward_calls is not None:
            parts.append(f"{e.score_forward_calls} scoring forward passes")
        if e.overlap_prev is not None:
            parts.append(f"overlap with previous {e.overlap_prev:.2f}")
        if e.seconds("epoch_s"):
            share = (e.seconds("score_s") + e.seconds("select_s")) / e.seconds("epoch_s")
            parts.append(f"{e.seconds('epoch_s'):.1f} s, {100 * share:.0f}% scoring and selecting")
        if e.restored:
            parts.append("selection restored from the checkpoint")
        echo("  " + ", ".join(parts))
    echo(
        f"samples scored: {summary.n_scored_total} "
        f"(N + a*M*(epochs-1) = {summary.paper_bound}); "
        f"samples trained: {summary.n_trained_total}"
    )
    echo(f"model, {SELECTION_LOG} and {SELECTION_SUMMARY} in {out}")
