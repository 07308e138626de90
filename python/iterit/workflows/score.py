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
from iterit.config import SCORE_METRICS, LPTraining, ScoringConfig
from iterit.data.sample import Sample
from iterit.errors import InvalidInputError, IteritError
from iterit.scoring.api import score_samples
from iterit.scoring.embedded_model import describe_model
from iterit.scoring.results import IFDScores
from iterit.utils.optional import requires_extra

__all__ = ["METRICS", "LPTraining", "ScoreOutcome", "learning_percentage", "score_to_file"]

#: What ``iterit score`` can measure.
METRICS = SCORE_METRICS

Log = Callable[[str], None]


@dataclass
class ScoreOutcome:
    """What :func:`score_to_file` wrote and how the run went.  ``scores`` is the
    :class:`~iterit.scoring.results.IFDScores` or the training layer's ``LPScores``."""

    path: Path
    metric: str
    scores: Any
    columns: dict[str, Any] = field(repr=False)
    seconds: float = 0.0


def learning_percentage(
    samples: Sequence[Sample],
    *,
    model: str,
    scoring: ScoringConfig | None = None,
    training: LPTraining | None = None,
    log: Log | None = None,
) -> Any:
    """Learning percentage of every sample (:mod:`iterit.training.learning_percentage`):
    ``model`` (a small one) is trained on the data as ``training`` says; returns the
    ``LPScores``.  ``scoring``: the template, max length, batch budget, device, progress and
    dtype (its IFD variant and cache do not apply).  The weights stay float32; where the dtype
    resolves to bfloat16 on a CPU run, training mixes precision in bfloat16 (CPU autocast)."""
    cfg = scoring or ScoringConfig()
    train = training or LPTraining()
    with requires_extra("train"):
        from iterit.scoring.model import load_scoring_model
        from iterit.scoring.precision import float32_training_precision
        from iterit.training.learning_percentage import score_learning_percentage
    if log is not None:
        log(f"loading {describe_model(model)} ...")
    # float32 weights on the CPU: the trainer places them.
    loaded = load_scoring_model(model, device="cpu", dtype="float32", model_cache=cfg.model_cache)
    extra: dict[str, Any] = {"report_to": "none", "logging_steps": 10**9}
    mixed = float32_training_precision(cfg.dtype, cfg.device)
    extra["bf16"] = mixed.bf16  # as resolved here, never the trainer's own default
    if mixed.use_cpu:
        extra["use_cpu"] = True
    if mixed.cpu_autocast and log is not None:
        log("training in bfloat16 mixed precision on the CPU")
    try:
        return score_learning_percentage(
            samples,
            loaded.model,
            loaded.tokenizer,
            scoring=cfg,
            training=train,
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
    scoring: ScoringConfig | None = None,
    training: LPTraining | None = None,
    overwrite: bool = False,
    log: Log | None = None,
) -> ScoreOutcome:
    """Score ``samples`` with ``metric`` (``"ifd"`` or ``"learning-percentage"``) and write the
    scores file ``out`` (parquet, JSON Lines, JSON or CSV by its extension).

    ``scoring``: how IFD scores (:func:`iterit.scoring.api.score_samples`; for the learning
    percentage, its template, lengths, device and dtype); ``training``: how the learning
    percentage trains (:func:`learning_percentage`)."""
    t0 = time.perf_counter()
    out = Path(out)
    cfg = scoring or ScoringConfig()
    metric = metric.lower()
    if metric not in METRICS:
        raise InvalidInputError(
            f"unknown metric {metric!r} (expected one of: {', '.join(METRICS)})"
        )
    require_writable_format(out)  # fail now, not after scoring
    scores: IFDScores | Any
    if metric == "learning-percentage":
        from iterit.training.learning_percentage import lp_columns

        scores = learning_percentage(samples, model=model, scoring=cfg, training=training, log=log)
        columns = lp_columns(scores, sample_keys(samples))
    else:
        scores = score_samples(samples, model=model, scoring=cfg, log=log)
        columns = ifd_columns(
            scores.as_dict(),
            samples,
            dtype=scores.dtype or None,
            variant=cfg.ifd_variant,
            turns=cfg.turns,
            ifd_turns=scores.ifd_turns,
            model_fingerprint=scores.model_fingerprint or None,
        )
    write_table(out, columns, overwrite=overwrite)
    return ScoreOutcome(out, metric, scores, columns, time.perf_counter() - t0)
