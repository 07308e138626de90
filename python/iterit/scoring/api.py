"""Scoring a dataset in one call: load the named model, score every sample with IFD through
the resumable cache, return the :class:`~iterit.scoring.results.IFDScores` aligned with the
samples.

What ``iterit score`` and ``iterit select`` run; library code (no printing: progress messages
go to the ``log`` callable when one is given).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from iterit.config import ScoringConfig
from iterit.data.sample import Sample
from iterit.scoring.embedded_model import describe_model
from iterit.scoring.results import IFDScores
from iterit.utils.optional import requires_extra
from iterit.utils.progress import silenced_bars

__all__ = ["quiet_loaders", "score_samples"]

Log = Callable[[str], None]


@contextlib.contextmanager
def quiet_loaders(enabled: bool) -> Iterator[None]:
    """Without progress bars, silence the model loaders' bars too (GGUF de-quantizing)."""
    if not enabled:
        yield
        return
    hf_logging = _transformers_logging()
    shown = hf_logging is not None and hf_logging.is_progress_bar_enabled()
    if shown:
        hf_logging.disable_progress_bar()
    try:
        with silenced_bars():  # transformers' GGUF de-quantising uses tqdm directly
            yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def _transformers_logging() -> Any:
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return None
    return hf_logging


def _scoring_modules() -> tuple[Any, Any]:
    with requires_extra("torch"):
        from iterit.scoring.model import load_scoring_model
        from iterit.scoring.scorer import IFDScorer
    return load_scoring_model, IFDScorer


def score_samples(
    samples: Sequence[Sample],
    *,
    model: str,
    scoring: ScoringConfig | None = None,
    log: Log | None = None,
) -> IFDScores:
    """IFD of every sample with ``model`` (a hub id, a local folder or a ``.gguf`` file), as
    ``scoring`` says (default: :class:`~iterit.config.ScoringConfig`'s).

    Samples with an empty response are not sent to the model.  With ``scoring.cache`` (a
    folder, created on the first write) the scores go through the resumable score cache, so an
    interrupted run resumes where it stopped.  ``scoring.dtype``: ``auto`` is bfloat16 on CUDA
    and on CPUs with native bfloat16, else float32 (:mod:`iterit.scoring.precision`).  A model
    that cannot be loaded is a :class:`~iterit.errors.ModelError`."""
    cfg = scoring or ScoringConfig()
    todo = [i for i, s in enumerate(samples) if s.response.strip()]
    if not todo:
        empty = IFDScores.empty(len(samples), model, cfg.ifd_variant)
        return dataclasses.replace(empty, n_empty_response=len(samples))
    load_scoring_model, scorer_class = _scoring_modules()
    say = log or (lambda _msg: None)
    with quiet_loaders(not cfg.progress):
        say(f"loading {describe_model(model)} ...")
        t0 = time.perf_counter()
        loaded = load_scoring_model(
            model, device=cfg.device, dtype=cfg.dtype, model_cache=cfg.model_cache
        )
        load_seconds = time.perf_counter() - t0
        say(f"model loaded in {load_seconds:.1f} s, running in {loaded.why}")
        scorer = scorer_class.from_config(loaded.model, loaded.tokenizer, cfg)
        t1 = time.perf_counter()
        res = scorer.score([samples[i] for i in todo])
        score_seconds = time.perf_counter() - t1
        from iterit.scoring.model import weights_fingerprint

        weights = weights_fingerprint(loaded.model)  # recorded in scores files
    if res.n_cached:
        say(f"{res.n_cached} samples' scores read from the cache in {cfg.cache}")
    idx = np.asarray(todo, dtype=np.int64)

    def spread(values: np.ndarray, fill: float, dtype: type) -> np.ndarray:
        out = np.full(len(samples), fill, dtype=dtype)
        out[idx] = np.asarray(values, dtype=dtype)
        return out

    n_unsent = len(samples) - len(todo)  # empty responses
    return dataclasses.replace(
        res,
        ifd=spread(res.ifd, np.nan, np.float64),
        nll_cond=spread(res.nll_cond, np.nan, np.float64),
        nll_prior=spread(res.nll_prior, np.nan, np.float64),
        n_tokens=spread(res.n_tokens, 0, np.int64),
        n_invalid=res.n_invalid + n_unsent,
        n_empty_response=res.n_empty_response + n_unsent,
        model=model,
        dtype=loaded.dtype,
        model_fingerprint=weights,
        load_seconds=load_seconds,
        score_seconds=score_seconds,
    )
