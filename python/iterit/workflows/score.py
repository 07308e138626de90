"""``iterit score`` as a library function: score every sample of a dataset with IFD or with the
learning percentage of a small model trained on it, and write the scores file.

The learning percentage trains a model, so this lives above :mod:`iterit.training`; IFD alone
is :func:`iterit.scoring.api.score_samples`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iterit.artifacts.score_files import (
    ifd_columns,
    require_writable_format,
    sample_keys,
    write_table,
)
from iterit.data.sample import Sample
from iterit.errors import InvalidInputError, IteritError, MissingDependencyError
from iterit.scoring.api import IFDResult, score_samples
from iterit.scoring.default_model import describe_model

__all__ = ["METRICS", "ScoreOutcome", "learning_percentage", "score_to_file"]

#: What ``iterit score`` can measure.
METRICS = ("ifd", "learning-percentage")

Log = Callable[[str], None]


@dataclass
class ScoreOutcome:
    """What :func:`score_to_file` wrote and how the run went.  ``scores`` is the
    :class:`~iterit.scoring.api.IFDResult` or the training layer's ``LPScores``."""

    path: Path
    metric: str
    scores: Any
    columns: dict[str, Any] = field(repr=False)
    seconds: float = 0.0


def learning_percentage(
    samples: Sequence[Sample],
    *,
    model: str,
    epochs: int = 3,
    template: str = "alpaca",
    max_length: int = 1024,
    batch_tokens: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    learning_rate: float = 2e-5,
    batch_size: int = 32,
    micro_batch_size: int = 4,
    seed: int = 42,
    progress: bool = True,
    log: Log | None = None,
) -> Any:
    """Learning percentage of every sample (:mod:`iterit.training.learning_percentage`):
    ``model`` (a small one) is trained on the data for ``epochs`` epochs; returns the
    ``LPScores``.  The weights stay float32; where ``dtype`` (``None``: ``auto``) resolves to
    bfloat16 on a CPU run, training mixes precision in bfloat16 (CPU autocast)."""
    try:
        from iterit.scoring.device import cpu_bf16_autocast
        from iterit.scoring.model import load_scoring_model
        from iterit.training.learning_percentage import score_learning_percentage
    except ImportError as e:
        raise MissingDependencyError(
            f"the learning percentage needs torch, transformers and accelerate ({e}); install "
            "them with pip install 'iterit[train]'"
        ) from None
    if log is not None:
        log(f"loading {describe_model(model)} ...")
    # float32 weights on the CPU: the trainer places them (and mixes precision on CUDA).
    mdl, tok = load_scoring_model(model, device="cpu", dtype="float32")
    extra: dict[str, Any] = {"report_to": "none", "logging_steps": 10**9}
    if device is not None and str(device).startswith("cpu"):
        extra["use_cpu"] = True
    if cpu_bf16_autocast(dtype, device):
        extra.update(bf16=True, use_cpu=True)
        if log is not None:
            log("training in bfloat16 mixed precision on the CPU")
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
        if isinstance(e, IteritError):
            raise
        raise InvalidInputError(str(e)) from None


def score_to_file(
    samples: Sequence[Sample],
    out: str | os.PathLike[str],
    *,
    metric: str = "ifd",
    model: str,
    cache: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    log: Log | None = None,
    **settings: Any,
) -> ScoreOutcome:
    """Score ``samples`` with ``metric`` (``"ifd"`` or ``"learning-percentage"``) and write the
    scores file ``out`` (parquet, JSON Lines, JSON or CSV by its extension).

    ``settings`` go to :func:`iterit.scoring.api.score_samples` (IFD: ``template``,
    ``max_length``, ``batch_tokens``, ``device``, ``progress``) or to
    :func:`learning_percentage` (those and the training settings); ``cache`` is the IFD score
    cache folder."""
    t0 = time.perf_counter()
    out = Path(out)
    metric = metric.lower()
    if metric not in METRICS:
        raise InvalidInputError(
            f"unknown metric {metric!r} (expected one of: {', '.join(METRICS)})"
        )
    require_writable_format(out)  # fail now, not after scoring
    scores: IFDResult | Any
    if metric == "learning-percentage":
        from iterit.training.learning_percentage import lp_columns

        settings.pop("ifd_variant", None)  # the learning percentage is not IFD
        scores = learning_percentage(samples, model=model, log=log, **settings)
        columns = lp_columns(scores, sample_keys(samples))
    else:
        scores = score_samples(samples, model=model, cache=cache, log=log, **settings)
        columns = ifd_columns(
            scores.as_dict(),
            samples,
            dtype=scores.dtype or None,
            variant=settings.get("ifd_variant", "iterit"),
        )
    write_table(out, columns, overwrite=overwrite)
    return ScoreOutcome(out, metric, scores, columns, time.perf_counter() - t0)
