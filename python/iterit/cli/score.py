"""``iterit score``: parse the options, call :func:`iterit.workflows.score.score_to_file`,
print a summary."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from iterit.cli import options
from iterit.cli.model_options import model_options
from iterit.cli.params import choice
from iterit.config import SCORE_METRICS

__all__ = ["score_command"]


@click.command("score")
@options.data_argument
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Scores file: .parquet (default), .jsonl, .json or .csv.",
)
@options.data_options
@model_options
@click.option(
    "--metric",
    type=choice(SCORE_METRICS),
    default=SCORE_METRICS[0],
    show_default=True,
    help="ifd: instruction-following difficulty with --model as is. learning-percentage: "
    "train --model (a small one) on the data for --epochs and measure how much of each "
    "sample's perplexity drop happens in the first epoch (low = hard; with --epochs 1 the "
    "one-epoch proxy); see docs/signals.md.",
)
@options.training_options(prefix="learning-percentage: ")
@options.training_seed_option("learning-percentage: training seed.")
@options.overwrite_option
@options.progress_option
def score_command(
    data: Path,
    out: Path,
    data_format: str,
    fields: dict[str, str],
    split: str | None,
    model: str | None,
    cache: Path | None,
    no_cache: bool,
    metric: str,
    overwrite: bool,
    **settings: Any,
) -> None:
    """Score every sample of DATA with IFD (instruction-following difficulty), or with the
    learning percentage of a small model trained on it (--metric learning-percentage).

    IFD writes one row per record: index, ifd, nll_cond, nll_prior, n_tokens (the scored
    response tokens), valid (finite IFD in (0, 1), a selection candidate) and key (a hash of
    the text).  Scores are cached as they are computed: run the same command again after an
    interruption and it resumes where it stopped.  The learning percentage writes index,
    complexity (1 / (1 + exp(lp)): larger = harder, what selection uses), lp, lp_proxy,
    ppl_0..ppl_EPOCHS, n_tokens, valid and key.  Use either file with `iterit select DATA
    --scores FILE` or `iterit train --scores FILE`.
    """
    from iterit.workflows.score import LPTraining, score_to_file

    t0 = time.perf_counter()
    options.check_outputs([out], overwrite)
    loaded = options.load_data(data, data_format, fields, split)
    lp = metric.lower() == "learning-percentage"
    scoring = options.scoring_config(settings, None if lp else options.score_cache(cache, no_cache))
    # The training settings apply to the learning percentage only.
    names = ("epochs", "learning_rate", "batch_size", "micro_batch_size", "seed")
    training = LPTraining(**{name: settings[name] for name in names})
    outcome = score_to_file(
        loaded.samples,
        out,
        metric=metric,
        model=model or options.default_model(),
        scoring=scoring,
        training=training if lp else None,
        overwrite=overwrite,
        log=options.info,
    )
    rows = _lp_rows(outcome) if lp else _ifd_rows(outcome, loaded.n_empty)
    rows += [("total time", f"{time.perf_counter() - t0:.1f} s"), ("written", str(out))]
    title = "iterit score --metric learning-percentage" if lp else "iterit score"
    from iterit.report import format_table

    click.echo(format_table(rows, title=f"{title}: {data}"))
    sys.stdout.flush()


def _ifd_rows(outcome: Any, n_empty: int) -> list[tuple[str, str]]:
    ifd = outcome.scores.ifd
    finite = np.isfinite(ifd)
    valid = outcome.columns["valid"]
    return [
        ("records", f"{len(ifd)}"),
        ("empty responses (not scored)", f"{n_empty}"),
        ("no valid score (NaN)", f"{int((~finite).sum()) - n_empty}"),
        ("IFD >= 1 (not candidates)", f"{int((finite & (ifd >= 1)).sum())}"),
        ("candidates (IFD < 1)", f"{int(valid.sum())}"),
        ("mean IFD (finite)", f"{float(np.mean(ifd[finite])):.4f}" if finite.any() else "-"),
        ("scoring time", f"{outcome.scores.score_seconds:.1f} s"),
    ]


def _lp_rows(outcome: Any) -> list[tuple[str, str]]:
    res = outcome.scores
    lp = res.lp
    finite = np.isfinite(lp)
    passes = ", ".join(str(p.get("forward_calls")) for p in res.passes)
    signal = "lp" if res.signal == "lp" else "lp_proxy"
    return [
        ("records", f"{len(lp)}"),
        ("no perplexity (NaN)", f"{int((~finite).sum())}"),
        ("candidates", f"{int(np.count_nonzero(outcome.columns['valid']))}"),
        ("epochs trained", f"{res.epochs}"),
        ("complexity from", f"1 / (1 + exp({signal}))"),
        ("mean LP (finite)", f"{float(np.mean(lp[finite])):.4f}" if finite.any() else "-"),
        ("median P0 -> Pn", _ppl_change(res.ppl)),
        ("forward passes per perplexity pass", passes),
        ("training + scoring time", f"{outcome.seconds:.1f} s"),
    ]


def _ppl_change(ppl: np.ndarray) -> str:
    first, last = ppl[0], ppl[-1]
    ok = np.isfinite(first) & np.isfinite(last)
    if not ok.any():
        return "-"
    return f"{float(np.median(first[ok])):.4g} -> {float(np.median(last[ok])):.4g}"
