"""IFD scores aligned with the input samples (docs/design.md, "IFD" and "Candidates")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iterit.data.candidates import IFD_MAX, candidate_mask
from iterit.scoring.encoding import EMPTY_RESPONSE, OK, PROMPT_TOO_LONG, check_variant

__all__ = ["IFDScores", "ifd_from_nll", "scores_from_nll"]


@dataclass(frozen=True)
class IFDScores:
    """IFD scores aligned with the input samples.

    ``ifd``, ``nll_cond``, ``nll_prior`` are float64, NaN for a sample without a valid score
    (empty response, or a prompt that leaves no room for a response token within
    ``max_length``); ``n_tokens`` is the number k of response tokens scored (0 when invalid).
    """

    ifd: np.ndarray
    nll_cond: np.ndarray
    nll_prior: np.ndarray
    n_tokens: np.ndarray
    n_invalid: int = 0
    n_empty_response: int = 0
    n_prompt_too_long: int = 0
    n_truncated: int = 0
    #: How the scores count tokens and combine the passes (:data:`iterit.config.IFD_VARIANTS`).
    variant: str = "iterit"
    stats: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.ifd)

    @property
    def candidate_mask(self) -> np.ndarray:
        """Samples usable for selection: IFD finite, > 0 and < 1 (the candidate rule)."""
        return candidate_mask(self.ifd, IFD_MAX)


def ifd_from_nll(
    nll_cond: np.ndarray, nll_prior: np.ndarray, variant: str = "iterit"
) -> np.ndarray:
    """IFD from the two mean NLLs: the ratio of perplexities ``exp(nll_cond - nll_prior)``, or
    the ratio of mean losses ``nll_cond / nll_prior`` for ``variant="loss-ratio"``."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if check_variant(variant) == "loss-ratio":
            return np.asarray(nll_cond, dtype=np.float64) / np.asarray(nll_prior, dtype=np.float64)
        return np.exp(np.asarray(nll_cond, dtype=np.float64) - nll_prior)


def scores_from_nll(
    nll_cond: np.ndarray,
    nll_prior: np.ndarray,
    n_tokens: np.ndarray,
    reasons: np.ndarray,
    *,
    variant: str = "iterit",
    **stats: Any,
) -> IFDScores:
    """IFD (:func:`ifd_from_nll`) with the counts of invalid samples by reason; ``n_truncated``
    in ``stats`` becomes the field of that name, the rest ``IFDScores.stats``."""
    ifd = ifd_from_nll(nll_cond, nll_prior, variant)
    return IFDScores(
        ifd=ifd,
        nll_cond=nll_cond,
        nll_prior=nll_prior,
        n_tokens=n_tokens,
        n_invalid=int(
            np.count_nonzero(reasons != OK) + np.count_nonzero((reasons == OK) & ~np.isfinite(ifd))
        ),
        n_empty_response=int(np.count_nonzero(reasons == EMPTY_RESPONSE)),
        n_prompt_too_long=int(np.count_nonzero(reasons == PROMPT_TOO_LONG)),
        n_truncated=int(stats.pop("n_truncated", 0)),
        variant=variant,
        stats=stats,
    )
