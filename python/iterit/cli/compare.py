"""``iterit compare``: train one model per selection arm through the code of ``iterit train``
and compare them on held-out NLL after every epoch (docs/compare.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from iterit.artifacts.names import (
    COMPARE_ARMS_DIR,
    COMPARE_CSV,
    COMPARE_HTML,
    COMPARE_JSON,
    COMPARE_SCORES,
)
from iterit.cli import options
from iterit.cli.params import choice
from iterit.cli.train_config import missing_training, run_inputs_options, train_config
from iterit.config import COMPARE_ARMS, DATA_FORMATS

__all__ = ["compare_command"]


@click.command("compare")
@run_inputs_options(
    f"Comparison folder: {COMPARE_CSV}, {COMPARE_JSON}, {COMPARE_HTML}, {COMPARE_SCORES} and "
    f"each arm's training run per seed under {COMPARE_ARMS_DIR}/<arm>/seed-<seed>/."
)
@click.option(
    "--arms",
    default="random,iterit,iterit-static",
    show_default=True,
    help=f"Comma-separated arms among: {', '.join(COMPARE_ARMS)}.",
)
@click.option(
    "--eval",
    "eval_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Evaluation file (instruction/response data, any format iterit reads, each file's "
    "own format detected); repeatable. Default: a deterministic held-out split of --data (see "
    "--held-out). References written by a stronger model make the NLL more meaningful "
    "(docs/compare.md).",
)
@click.option(
    "--eval-format",
    type=choice(["auto", *DATA_FORMATS]),
    default="auto",
    show_default=True,
    help="Record format of every --eval file (auto: detected per file).",
)
@click.option(
    "--seeds",
    default=None,
    metavar="S1,S2,...",
    help="Run every arm once per seed (the same seeds for every arm) and report each arm's "
    "mean NLL with a 95% interval and its paired difference to random with a verdict. "
    "Default: --seed alone.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    default=False,
    help="Start the folder again: remove the scores, epoch-0 evaluation and arms an earlier "
    "run left there (without it, work made with other settings is refused, never reused).",
)
@click.option(
    "--held-out",
    type=options.FiniteFloatRange(min=0.0, max=1.0, min_open=True, max_open=True),
    default=0.1,
    show_default=True,
    help="Share of --data held out for evaluation when no --eval is given (chosen by each "
    "record's content hash, so the split does not depend on the order of the data).",
)
@options.selection_options
@options.training_options()
@options.schedule_options
@click.option(
    "--save-strategy",
    type=choice(["epoch", "no"]),
    default="epoch",
    show_default=True,
    help="epoch: checkpoint every epoch, so an interrupted arm resumes.",
)
@options.training_seed_option()
@click.option(
    "--lm-eval",
    "lm_eval_tasks",
    default=None,
    metavar="TASKS",
    help="Also run lm-evaluation-harness (comma-separated tasks) on each arm's final model; "
    "needs the lm_eval package.",
)
@options.progress_option
def compare_command(**params: Any) -> None:
    """Which selection trains the better model?  Train one model per arm on --data (same
    weights, seed, budget, schedule and effective batch) and report the mean NLL of the
    reference responses of the evaluation data after every epoch.

    \b
    Example:
      iterit compare --model HuggingFaceTB/SmolLM2-135M --data alpaca.jsonl \\
        --eval alpaca_gpt4_sample_999.json --arms random,iterit,iterit-static \\
        --seeds 1,2,3 --budget 0.05 --epochs 3 --output-dir cmp/
    """
    t0 = time.perf_counter()
    tasks = params.pop("lm_eval_tasks")
    if tasks:
        from iterit.workflows.lm_eval import require_lm_eval

        require_lm_eval()
    loaded = options.load_data(
        params["data"], params["data_format"], params["fields"], params["split"]
    )
    model = params["model"] or options.default_model()
    cfg = train_config(params, model, loaded.format, names=("save_strategy",))
    try:
        from iterit.report.compare import compare_table, write_compare_html
        from iterit.workflows.compare import compare
    except ImportError as e:
        raise missing_training("iterit compare", e) from None
    result = compare(
        cfg,
        params["arms"],
        seeds=params["seeds"],
        eval_files=params["eval_files"],
        eval_format=params["eval_format"].lower(),
        held_out=params["held_out"],
        overwrite=params["overwrite"],
        log=options.info,
    )
    html = write_compare_html(
        result.output_dir, result.rows, result.arms, result.settings, result.summary
    )
    click.echo(compare_table(result.rows, result.arms, result.summary))
    if tasks:
        from iterit.workflows.compare import arm_dir
        from iterit.workflows.lm_eval import run_lm_eval

        for label, arm in result.arms.items():
            folder = arm_dir(result.output_dir, arm.arm, arm.seed)
            res = run_lm_eval(folder, tasks, device=cfg.device)
            click.echo(f"lm-eval {label}: {res}")
    click.echo(f"written {result.output_dir} ({html.name}) in {time.perf_counter() - t0:.1f} s")
