"""``iterit score``: IFD (or the learning percentage) of every sample, written as a table
(parquet, JSON Lines or CSV)."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from iterit.cli import options
from iterit.data.sample import Sample
from iterit.utils.atomic import atomic_open, atomic_path

__all__ = [
    "SCORE_COLUMNS",
    "compute_ifd",
    "compute_learning_percentage",
    "read_scores",
    "sample_keys",
    "score_command",
    "write_table",
]

SCORE_COLUMNS = ("index", "ifd", "nll_cond", "nll_prior", "n_tokens", "valid", "key")


def sample_keys(samples: Sequence[Sample]) -> list[str]:
    """A short content hash of each sample (prompt turns, instruction, input, response), stored
    with the scores so that a scores file is never applied to different data by mistake."""
    out = []
    for s in samples:
        blob = json.dumps(
            [s.instruction, s.input, s.response, [list(m) for m in s.messages]],
            ensure_ascii=False,
        ).encode("utf-8")
        out.append(hashlib.sha1(blob).hexdigest()[:16])
    return out


def _model_error(e: BaseException) -> click.ClickException:
    text = " ".join(str(e).split())  # one line: library messages often span several
    if len(text) > 400:
        text = text[:400] + " ..."
    return click.ClickException(f"cannot load or run the scoring model: {text}")


def compute_ifd(
    samples: Sequence[Sample],
    *,
    model: str,
    template: str = "alpaca",
    max_length: int = 1024,
    batch_tokens: int | None = None,
    device: str | None = None,
    cache: Path | None = None,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """IFD, nll_cond, nll_prior and n_tokens of every sample (NaN / 0 where not scorable).

    Samples with an empty response are not sent to the model.  With ``cache`` (a folder) the
    scores go through the resumable score cache of :mod:`iterit.scoring.ifd`, so that an interrupted
    run resumes where it stopped."""
    try:
        from iterit.scoring import ifd
    except ImportError as e:
        raise click.ClickException(
            f"IFD scoring needs torch and transformers ({e}); install them with "
            "pip install 'iterit[torch]'"
        ) from None
    n = len(samples)
    out = {
        "ifd": np.full(n, np.nan),
        "nll_cond": np.full(n, np.nan),
        "nll_prior": np.full(n, np.nan),
        "n_tokens": np.zeros(n, dtype=np.int64),
    }
    todo = [i for i, s in enumerate(samples) if s.response.strip()]
    if not todo:
        return out
    with _quiet(not progress):
        return _compute(
            ifd,
            samples,
            todo,
            out,
            model,
            template,
            max_length,
            batch_tokens,
            device,
            cache,
            progress,
        )


@contextlib.contextmanager
def _quiet(enabled: bool) -> Any:
    """With ``--no-progress``, silence the loaders' progress bars too (GGUF de-quantizing)."""
    if not enabled:
        yield
        return
    before = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = before


def _compute(
    ifd: Any,
    samples: Sequence[Sample],
    todo: list[int],
    out: dict[str, np.ndarray],
    model: str,
    template: str,
    max_length: int,
    batch_tokens: int | None,
    device: str | None,
    cache: Path | None,
    progress: bool,
) -> dict[str, np.ndarray]:
    looks_local = model.startswith(("/", "./", "../", "~")) or model.endswith(".gguf")
    if looks_local and not Path(model).expanduser().exists():
        raise click.ClickException(f"--model {model}: no such model file or folder")
    click.echo(f"loading {options.describe_model(model)} ...", err=True)
    t0 = time.perf_counter()
    try:
        mdl, tok = ifd.load_model(
            str(Path(model).expanduser()) if looks_local else model, device=device
        )
    except (OSError, ValueError, RuntimeError, ImportError) as e:
        raise _model_error(e) from None
    click.echo(f"model loaded in {time.perf_counter() - t0:.1f} s", err=True)
    kwargs: dict[str, Any] = {
        "template": template,
        "max_length": max_length,
        "device": device,
        "progress": progress,
    }
    if batch_tokens is not None:
        kwargs["batch_tokens"] = batch_tokens
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        kwargs["cache"] = cache
    scorer = ifd.IFDScorer(mdl, tok, **kwargs)
    res = scorer.score([samples[i] for i in todo])
    stats = getattr(scorer, "last_stats", {}) or {}
    if stats.get("cached"):
        click.echo(f"{stats['cached']} samples' scores read from the cache in {cache}", err=True)
    idx = np.asarray(todo, dtype=np.int64)
    for name in ("ifd", "nll_cond", "nll_prior"):
        out[name][idx] = np.asarray(getattr(res, name), dtype=np.float64)
    out["n_tokens"][idx] = np.asarray(res.n_tokens, dtype=np.int64)
    return out


def compute_learning_percentage(
    samples: Sequence[Sample],
    *,
    model: str,
    epochs: int = 3,
    template: str = "alpaca",
    max_length: int = 1024,
    batch_tokens: int | None = None,
    device: str | None = None,
    learning_rate: float = 2e-5,
    batch_size: int = 32,
    micro_batch_size: int = 4,
    seed: int = 42,
    progress: bool = True,
) -> Any:
    """Learning percentage of every sample (:mod:`iterit.training.learning_percentage`): ``model`` (a
    small one) is trained on the data for ``epochs`` epochs; returns the ``LPScores``."""
    try:
        from iterit.scoring import ifd
        from iterit.training.learning_percentage import score_learning_percentage
    except ImportError as e:
        raise click.ClickException(
            f"the learning percentage needs torch, transformers and accelerate ({e}); install "
            "them with pip install 'iterit[train]'"
        ) from None
    looks_local = model.startswith(("/", "./", "../", "~")) or model.endswith(".gguf")
    if looks_local and not Path(model).expanduser().exists():
        raise click.ClickException(f"--model {model}: no such model file or folder")
    click.echo(f"loading {options.describe_model(model)} ...", err=True)
    try:
        # float32 weights on the CPU: the trainer places them (and mixes precision on CUDA).
        mdl, tok = ifd.load_model(
            str(Path(model).expanduser()) if looks_local else model,
            device="cpu",
            dtype="float32",
        )
    except (OSError, ValueError, RuntimeError, ImportError) as e:
        raise _model_error(e) from None
    extra: dict[str, Any] = {"report_to": "none", "logging_steps": 10**9}
    if device is not None and str(device).startswith("cpu"):
        extra["use_cpu"] = True
    try:
        return score_learning_percentage(
            samples,
            mdl,
            tok,
            epochs=epochs,
            template=template,
            max_length=max_length,
            batch_tokens=batch_tokens,
            learning_rate=learning_rate,
            batch_size=batch_size,
            micro_batch_size=micro_batch_size,
            seed=seed,
            progress=progress,
            training_args=extra,
        )
    except ValueError as e:
        raise click.ClickException(str(e)) from None


# --------------------------------------------------------------------------------------------
# score tables


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise click.ClickException(
            "parquet files need the 'pyarrow' package: pip install 'iterit[cli]' (or use a "
            ".jsonl or .csv file)"
        ) from None
    return pa, pq


def _clean(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_table(
    path: Path, columns: dict[str, Sequence[Any] | np.ndarray], *, overwrite: bool = False
) -> Path:
    """Write equal-length columns atomically: parquet (``.parquet``/``.pq``), JSON Lines
    (``.jsonl``), a JSON array (``.json``) or CSV (``.csv``); NaN becomes null."""
    suffix = path.suffix.lower()
    names = list(columns)
    n = len(next(iter(columns.values()))) if columns else 0
    if suffix in (".parquet", ".pq"):
        pa, pq = _pyarrow()
        arrays = {}
        for name, col in columns.items():
            arr = np.asarray(col)
            if arr.dtype.kind == "f":
                arrays[name] = pa.array(arr, mask=~np.isfinite(arr))
            elif arr.dtype.kind in "iub":
                arrays[name] = pa.array(arr)
            else:
                arrays[name] = pa.array([_clean(v) for v in col])
        with atomic_path(path, overwrite=overwrite) as tmp:
            pq.write_table(pa.table(arrays), tmp)
        return path
    rows = ({name: _clean(columns[name][i]) for name in names} for i in range(n))
    with atomic_open(path, "w", overwrite=overwrite, newline="") as f:
        if suffix == ".csv":
            writer = csv.DictWriter(f, fieldnames=names, lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "" if v is None else v for k, v in row.items()})
        elif suffix == ".json":
            json.dump(list(rows), f, ensure_ascii=False)
            f.write("\n")
        else:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False))
                f.write("\n")
    return path


def read_table(path: Path) -> dict[str, list[Any]]:
    """Read a table written by :func:`write_table` (or any parquet / JSON Lines / JSON array /
    CSV file of records) as columns."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        _pa, pq = _pyarrow()
        try:
            return pq.read_table(path).to_pydict()
        except Exception as e:
            raise click.ClickException(f"{path}: cannot read as parquet: {e}") from None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise click.ClickException(f"{path}: cannot read: {e}") from None
    rows: list[dict[str, Any]]
    if suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
    elif text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise click.ClickException(f"{path}: line {e.lineno}: invalid JSON: {e.msg}") from None
    else:
        rows = []
        for lineno, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise click.ClickException(
                        f"{path}: line {lineno}: invalid JSON: {e.msg}"
                    ) from None
    cols: dict[str, list[Any]] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise click.ClickException(f"{path}: row {i}: expected an object")
        for k in row:
            cols.setdefault(k, [None] * i)
        for k, col in cols.items():
            col.append(row.get(k))
    return cols


def _floats(path: Path, name: str, values: list[Any]) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None or v == "":
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise click.ClickException(
                f"{path}: row {i}: column {name!r} is not a number: {v!r}"
            ) from None
    return out


def read_scores(
    path: Path, samples: Sequence[Sample], *, column: str | None = None
) -> dict[str, np.ndarray]:
    """Scores for ``samples`` from a file ``iterit score`` wrote (or any table with an ``ifd``
    column, aligned by its ``index`` column or else by row order).  When the file has a ``key``
    column it must match the samples (the same data).

    The complexity is ``column``; by default the file's ``complexity`` column when it has one
    (``iterit score --metric learning-percentage``), else its ``ifd`` column.  A column other
    than ``ifd`` is also returned under ``"ifd"`` (what the selector reads as complexity)."""
    cols = read_table(path)
    if column is None:
        column = "complexity" if "complexity" in cols else "ifd"
    n = len(samples)
    if column not in cols:
        raise click.ClickException(
            f"{path}: no {column!r} column (columns: {', '.join(cols) or 'none'})"
        )
    rows = len(cols[column])
    if "index" in cols:
        try:
            index = np.asarray([int(v) for v in cols["index"]], dtype=np.int64)
        except (TypeError, ValueError):
            raise click.ClickException(f"{path}: column 'index' must hold integers") from None
        bad = (index < 0) | (index >= n)
        if bad.any():
            raise click.ClickException(
                f"{path}: row {int(np.flatnonzero(bad)[0])}: index {int(index[bad][0])} is out of "
                f"range for data with {n} records"
            )
    else:
        if rows != n:
            raise click.ClickException(
                f"{path}: {rows} rows but the data has {n} records (add an 'index' column)"
            )
        index = np.arange(n, dtype=np.int64)
    missing = np.ones(n, dtype=bool)
    missing[index] = False
    if missing.any():
        raise click.ClickException(
            f"{path}: no score for record {int(np.flatnonzero(missing)[0])} "
            f"({int(missing.sum())} records missing); was it scored on other data?"
        )
    if "key" in cols:
        keys = sample_keys(samples)
        for row, (i, k) in enumerate(zip(index.tolist(), cols["key"], strict=True)):
            if k is not None and k != keys[i]:
                raise click.ClickException(
                    f"{path}: row {row} (record {i}) was scored on different text than the data "
                    "holds; score this data again (iterit score)"
                )
    out: dict[str, np.ndarray] = {}
    for name in ("ifd", "nll_cond", "nll_prior", column):
        if name in cols:
            arr = np.full(n, np.nan)
            arr[index] = _floats(path, name, cols[name])
            out[name] = arr
    if "n_tokens" in cols:
        arr = np.zeros(n, dtype=np.int64)
        arr[index] = np.nan_to_num(_floats(path, "n_tokens", cols["n_tokens"])).astype(np.int64)
        out["n_tokens"] = arr
    if column != "ifd":
        out["ifd"] = out[column]
    return out


# --------------------------------------------------------------------------------------------
# the command


@click.command("score")
@options.data_argument
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Scores file: .parquet (default), .jsonl, .json or .csv.",
)
@options.data_options
@options.model_options
@click.option(
    "--metric",
    type=click.Choice(["ifd", "learning-percentage"], case_sensitive=False),
    default="ifd",
    show_default=True,
    help="ifd: instruction-following difficulty with --model as is. learning-percentage: "
    "train --model (a small one) on the data for --epochs and measure how much of each "
    "sample's perplexity drop happens in the first epoch (low = hard; with --epochs 1 the "
    "one-epoch proxy); see docs/signals.md.",
)
@options.training_options(prefix="learning-percentage: ")
@click.option(
    "--seed", type=int, default=42, show_default=True, help="learning-percentage: training seed."
)
@options.overwrite_option
@options.progress_option
def score_command(
    data: Path,
    out: Path,
    data_format: str,
    fields: dict[str, str],
    split: str | None,
    model: str | None,
    template: str,
    max_length: int,
    batch_tokens: int | None,
    device: str | None,
    cache: Path | None,
    no_cache: bool,
    metric: str,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    micro_batch_size: int,
    seed: int,
    overwrite: bool,
    progress: bool,
) -> None:
    """Score every sample of DATA with IFD (instruction-following difficulty), or with the
    learning percentage of a small model trained on it (--metric learning-percentage).

    IFD writes one row per record: index, ifd, nll_cond, nll_prior, n_tokens (the scored
    response tokens), valid (finite IFD < 1, a selection candidate) and key (a hash of the
    text).  Scores are cached as they are computed: run the same command again after an
    interruption and it resumes where it stopped.  The learning percentage writes index,
    complexity (1 / (1 + exp(lp)): larger = harder, what selection uses), lp, lp_proxy,
    ppl_0..ppl_EPOCHS, n_tokens, valid and key.  Use either file with `iterit select DATA
    --scores FILE` or `iterit train --scores FILE`.
    """
    t0 = time.perf_counter()
    options.check_outputs([out], overwrite)
    if out.suffix.lower() in (".parquet", ".pq"):
        _pyarrow()  # fail now, not after scoring
    loaded = options.load_data(data, data_format, fields, split)
    model = model or options.default_model()
    if metric.lower() == "learning-percentage":
        _score_learning_percentage(
            loaded,
            data=data,
            out=out,
            model=model,
            epochs=epochs,
            template=template,
            max_length=max_length,
            batch_tokens=batch_tokens,
            device=device,
            learning_rate=learning_rate,
            batch_size=batch_size,
            micro_batch_size=micro_batch_size,
            seed=seed,
            overwrite=overwrite,
            progress=progress,
            t0=t0,
        )
        return
    cache_dir = None if no_cache else (cache or options.default_cache_dir())
    t1 = time.perf_counter()
    scores = compute_ifd(
        loaded.samples,
        model=model,
        template=template,
        max_length=max_length,
        batch_tokens=batch_tokens,
        device=device,
        cache=cache_dir,
        progress=progress,
    )
    t_score = time.perf_counter() - t1
    ifd_arr = scores["ifd"]
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(ifd_arr) & (ifd_arr > 0) & (ifd_arr < 1.0)
    n = len(loaded)
    write_table(
        out,
        {
            "index": np.arange(n, dtype=np.int64),
            "ifd": ifd_arr,
            "nll_cond": scores["nll_cond"],
            "nll_prior": scores["nll_prior"],
            "n_tokens": scores["n_tokens"],
            "valid": valid,
            "key": sample_keys(loaded.samples),
        },
        overwrite=overwrite,
    )
    from iterit.report import format_table

    finite = np.isfinite(ifd_arr)
    n_empty = loaded.n_empty
    rows = [
        ("records", f"{n}"),
        ("empty responses (not scored)", f"{n_empty}"),
        ("no valid score (NaN)", f"{int((~finite).sum()) - n_empty}"),
        ("IFD >= 1 (not candidates)", f"{int((finite & (ifd_arr >= 1)).sum())}"),
        ("candidates (IFD < 1)", f"{int(valid.sum())}"),
        ("mean IFD (finite)", f"{float(np.mean(ifd_arr[finite])):.4f}" if finite.any() else "-"),
        ("scoring time", f"{t_score:.1f} s"),
        ("total time", f"{time.perf_counter() - t0:.1f} s"),
        ("written", str(out)),
    ]
    click.echo(format_table(rows, title=f"iterit score: {data}"))
    sys.stdout.flush()


def _score_learning_percentage(
    loaded: Any,
    *,
    data: Path,
    out: Path,
    model: str,
    epochs: int,
    template: str,
    max_length: int,
    batch_tokens: int | None,
    device: str | None,
    learning_rate: float,
    batch_size: int,
    micro_batch_size: int,
    seed: int,
    overwrite: bool,
    progress: bool,
    t0: float,
) -> None:
    from iterit.report import format_table
    from iterit.training.learning_percentage import lp_columns

    t1 = time.perf_counter()
    res = compute_learning_percentage(
        loaded.samples,
        model=model,
        epochs=epochs,
        template=template,
        max_length=max_length,
        batch_tokens=batch_tokens,
        device=device,
        learning_rate=learning_rate,
        batch_size=batch_size,
        micro_batch_size=micro_batch_size,
        seed=seed,
        progress=progress,
    )
    t_score = time.perf_counter() - t1
    cols = lp_columns(res, sample_keys(loaded.samples))
    write_table(out, cols, overwrite=overwrite)
    lp = res.lp
    finite = np.isfinite(lp)
    passes = ", ".join(str(p.get("forward_calls")) for p in res.passes)
    rows = [
        ("records", f"{len(loaded)}"),
        ("no perplexity (NaN)", f"{int((~finite).sum())}"),
        ("candidates", f"{int(np.count_nonzero(cols['valid']))}"),
        ("epochs trained", f"{res.epochs}"),
        ("complexity from", "1 / (1 + exp(" + ("lp" if res.signal == "lp" else "lp_proxy") + "))"),
        ("mean LP (finite)", f"{float(np.mean(lp[finite])):.4f}" if finite.any() else "-"),
        ("median P0 -> Pn", _ppl_change(res.ppl)),
        ("forward passes per perplexity pass", passes),
        ("training + scoring time", f"{t_score:.1f} s"),
        ("total time", f"{time.perf_counter() - t0:.1f} s"),
        ("written", str(out)),
    ]
    click.echo(format_table(rows, title=f"iterit score --metric learning-percentage: {data}"))
    sys.stdout.flush()


def _ppl_change(ppl: np.ndarray) -> str:
    first, last = ppl[0], ppl[-1]
    ok = np.isfinite(first) & np.isfinite(last)
    if not ok.any():
        return "-"
    return f"{float(np.median(first[ok])):.4g} -> {float(np.median(last[ok])):.4g}"
