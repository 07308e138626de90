"""Scoring a dataset in one call: load the named model, score every sample with IFD through
the resumable cache, return the scores aligned with the samples.

What ``iterit score`` and ``iterit select`` run; library code (no printing: progress messages
go to the ``log`` callable when one is given).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iterit.data.candidates import IFD_MAX, candidate_mask
from iterit.data.sample import Sample
from iterit.errors import MissingDependencyError
from iterit.scoring.default_model import describe_model

__all__ = ["IFDResult", "quiet_loaders", "score_ifd", "score_samples"]

Log = Callable[[str], None]


@dataclass
class IFDResult:
    """IFD of every sample (NaN / 0 tokens where not scorable), plus how the run went."""

    ifd: np.ndarray
    nll_cond: np.ndarray
    nll_prior: np.ndarray
    n_tokens: np.ndarray
    model: str = ""
    #: the dtype the model ran in (``float32``, ``bfloat16``, ...), empty when nothing was scored
    dtype: str = ""
    n_cached: int = 0
    load_seconds: float = 0.0
    score_seconds: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def empty(cls, n: int, model: str = "") -> IFDResult:
        return cls(
            ifd=np.full(n, np.nan),
            nll_cond=np.full(n, np.nan),
            nll_prior=np.full(n, np.nan),
            n_tokens=np.zeros(n, dtype=np.int64),
            model=model,
        )

    def __len__(self) -> int:
        return len(self.ifd)

    @property
    def valid(self) -> np.ndarray:
        """The selection candidates (docs/design.md, "Candidates")."""
        return candidate_mask(self.ifd, IFD_MAX)

    def as_dict(self) -> dict[str, np.ndarray]:
        """``ifd``, ``nll_cond``, ``nll_prior`` and ``n_tokens`` (as a scores file holds them)."""
        return {
            "ifd": self.ifd,
            "nll_cond": self.nll_cond,
            "nll_prior": self.nll_prior,
            "n_tokens": self.n_tokens,
        }


@contextlib.contextmanager
def quiet_loaders(enabled: bool) -> Iterator[None]:
    """Without progress bars, silence the model loaders' bars too (GGUF de-quantizing)."""
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


def _scoring_modules() -> tuple[Any, Any]:
    try:
        from iterit.scoring.model import load_scoring_model
        from iterit.scoring.scorer import IFDScorer
    except ImportError as e:
        raise MissingDependencyError(
            f"IFD scoring needs torch and transformers ({e}); install them with "
            "pip install 'iterit[torch]'"
        ) from None
    return load_scoring_model, IFDScorer


def score_samples(
    samples: Sequence[Sample],
    *,
    model: str,
    template: str = "alpaca",
    max_length: int = 1024,
    batch_tokens: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    cache: str | os.PathLike[str] | None = None,
    progress: bool = True,
    log: Log | None = None,
    ifd_variant: str = "iterit",
) -> IFDResult:
    """IFD of every sample with ``model`` (a hub id, a local folder or a ``.gguf`` file).

    Samples with an empty response are not sent to the model.  With ``cache`` (a folder,
    created if needed) the scores go through the resumable score cache, so an interrupted run
    resumes where it stopped.  ``dtype``: one of :data:`iterit.config.DTYPES` (``None`` is
    ``auto``: bfloat16 on CUDA and on CPUs with native bfloat16, else float32; see
    :mod:`iterit.scoring.device`).  A model that cannot be loaded is a
    :class:`~iterit.errors.ModelError`."""
    result = IFDResult.empty(len(samples), model)
    todo = [i for i, s in enumerate(samples) if s.response.strip()]
    if not todo:
        return result
    load_scoring_model, scorer_class = _scoring_modules()
    say = log or (lambda _msg: None)
    with quiet_loaders(not progress):
        say(f"loading {describe_model(model)} ...")
        t0 = time.perf_counter()
        mdl, tok = load_scoring_model(model, device=device, dtype=dtype)
        result.load_seconds = time.perf_counter() - t0
        choice = mdl.iterit_dtype_choice
        result.dtype = choice.name
        say(f"model loaded in {result.load_seconds:.1f} s, running in {choice.describe()}")
        kwargs: dict[str, Any] = {"template": template, "max_length": max_length}
        kwargs["variant"] = ifd_variant
        if batch_tokens is not None:
            kwargs["batch_tokens"] = batch_tokens
        if cache is not None:
            # Created on the first write; one that cannot be written warns and is skipped.
            kwargs["cache"] = Path(cache)
        scorer = scorer_class(mdl, tok, device=device, progress=progress, **kwargs)
        t1 = time.perf_counter()
        res = scorer.score([samples[i] for i in todo])
        result.score_seconds = time.perf_counter() - t1
    result.stats = dict(getattr(scorer, "last_stats", {}) or {})
    result.n_cached = int(result.stats.get("cached", 0))
    if result.n_cached:
        say(f"{result.n_cached} samples' scores read from the cache in {cache}")
    idx = np.asarray(todo, dtype=np.int64)
    for name in ("ifd", "nll_cond", "nll_prior"):
        getattr(result, name)[idx] = np.asarray(getattr(res, name), dtype=np.float64)
    result.n_tokens[idx] = np.asarray(res.n_tokens, dtype=np.int64)
    return result


def score_ifd(samples: Sequence[Sample], **kwargs: Any) -> dict[str, np.ndarray]:
    """:func:`score_samples` as the columns ``ifd``, ``nll_cond``, ``nll_prior``, ``n_tokens``."""
    return score_samples(samples, **kwargs).as_dict()
