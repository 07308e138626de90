"""Scoring: IFD with a causal LM (batched, cached, distributed), its per-sample reference, the
score cache and the default model.

The public names load their module on first use (module ``__getattr__``), so that
``import iterit.scoring`` imports neither torch nor transformers::

    from iterit.scoring import IFDScorer, load_model, reference_ifd, IFDScores, score_samples
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from iterit.scoring.api import score_samples
    from iterit.scoring.cache import ScoreCache
    from iterit.scoring.embedded_model import default_cache_dir, default_model, describe_model
    from iterit.scoring.encoding import EncodedSamples, encode_for_scoring, start_token
    from iterit.scoring.model import (
        LoadedModel,
        load_model,
        load_scoring_model,
        model_fingerprint,
        unwrap_model,
    )
    from iterit.scoring.precision import Precision
    from iterit.scoring.reference import reference_ifd
    from iterit.scoring.results import IFDScores, ScoringStats
    from iterit.scoring.scorer import IFDScorer

#: Public name -> the module that defines it.
_OWNERS = {
    "score_samples": "api",
    "ScoreCache": "cache",
    "default_cache_dir": "embedded_model",
    "default_model": "embedded_model",
    "describe_model": "embedded_model",
    "EncodedSamples": "encoding",
    "encode_for_scoring": "encoding",
    "start_token": "encoding",
    "LoadedModel": "model",
    "load_model": "model",
    "load_scoring_model": "model",
    "model_fingerprint": "model",
    "unwrap_model": "model",
    "reference_ifd": "reference",
    "Precision": "precision",
    "IFDScores": "results",
    "ScoringStats": "results",
    "IFDScorer": "scorer",
}

__all__ = [
    "EncodedSamples",
    "IFDScorer",
    "IFDScores",
    "LoadedModel",
    "Precision",
    "ScoreCache",
    "ScoringStats",
    "default_cache_dir",
    "default_model",
    "describe_model",
    "encode_for_scoring",
    "load_model",
    "load_scoring_model",
    "model_fingerprint",
    "reference_ifd",
    "score_samples",
    "start_token",
    "unwrap_model",
]


def __getattr__(name: str) -> Any:
    owner = _OWNERS.get(name)
    if owner is None:
        raise AttributeError(f"module 'iterit.scoring' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"iterit.scoring.{owner}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_OWNERS})
