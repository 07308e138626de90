"""``iterit report``: an HTML page with plots of a selection or of a training run."""

from __future__ import annotations

from pathlib import Path

import click

from iterit.artifacts.names import REPORT_HTML, REPORT_SUMMARY
from iterit.cli import options
from iterit.utils.optional import require

__all__ = ["report_command"]


@click.command("report")
@click.argument(
    "source", type=click.Path(exists=True, path_type=Path), metavar="RUN_DIR_OR_SELECTION"
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Folder to write {REPORT_HTML}, its PNG plots and {REPORT_SUMMARY} into.",
)
@click.option(
    "--data",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="A training run's data (response lengths, n-grams), when the run does not name it.",
)
@options.data_options
@options.scores_file_option(
    "IFD of every record (from `iterit score`), for a training run's IFD distribution."
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many n-grams of each length to list.",
)
@options.overwrite_option
@options.progress_option
def report_command(
    source: Path,
    out: Path,
    data: Path | None,
    data_format: str,
    fields: dict[str, str],
    split: str | None,
    scores_file: Path | None,
    top: int,
    overwrite: bool,
    progress: bool,
) -> None:
    """Write a self-contained HTML report of RUN_DIR_OR_SELECTION to --out.

    RUN_DIR_OR_SELECTION is a file written by `iterit select` (its .scores.jsonl and .meta.json
    sidecars next to it) or the output folder of `iterit train` (its iterit_selection.jsonl).
    Shows the IFD distribution with the IFD >= 1 cut, response lengths of the selection against
    all records (the paper's Fig. 3), the Jaccard overlap between epochs (the paper's Table 5)
    and the selection's most frequent n-grams; prints a summary table.
    """
    from iterit.report import build_report, terminal_summary, write_report

    require("matplotlib", "cli", "iterit report")

    if out.exists() and not overwrite:
        raise click.ClickException(f"{str(out)!r} already exists (pass --overwrite)")
    if out.exists() and not out.is_dir():
        raise click.ClickException(f"{str(out)!r} is a file, not a folder")
    if scores_file is not None and data is None:
        raise click.UsageError("--scores needs --data (to check the scores against it)")
    loaded = options.load_data(data, data_format, fields, split) if data is not None else None
    scores = None
    if scores_file is not None:
        from iterit.workflows.select import ifd_scores

        scores = ifd_scores(loaded, scores_file=scores_file)["ifd"]
    rep = build_report(source, data=loaded, scores=scores, top=top)
    path = write_report(rep, out, overwrite=overwrite, progress=progress)
    click.echo(terminal_summary(rep))
    click.echo(f"\nreport: {path}")
