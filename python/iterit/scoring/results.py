"""IFD scores aligned with the input samples (docs/design.md, "IFD" and "Candidates"), and
the statistics of the scoring run that produced them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iterit.data.candidates import IFD_MAX, candidate_mask
from iterit.errors import InvalidInputError
from iterit.scoring.encoding import EMPTY_RESPONSE, OK, PROMPT_TOO_LONG, check_ifd_variant

__all__ = ["SUMMED_STATS", "IFDScores", "ScoringStats", "ifd_from_nll", "scores_from_nll"]

#: Counters summed over ranks after a distributed run (``idle_calls``: synced mode's dummy
#: forwards of ranks that ran out of work).
SUMMED_STATS = (
    "forward_calls",
    "real_tokens",
    "padded_tokens",
    "sequences",
    "oom_retries",
    "idle_calls",
)
#: Values :meth:`ScoringStats.to_json` derives from the others (not read back).
_DERIVED = ("forward_tokens", "padding_efficiency")


@dataclass
class ScoringStats:
    """What one :meth:`iterit.scoring.IFDScorer.score` call did (counters over all ranks).

    ``samples``: samples given; ``cached``: scores read from the cache; ``scored``: samples
    this rank scored; ``forward_calls``,
    ``sequences``, ``real_tokens``, ``padded_tokens``: the forward batches, their rows, the
    tokens they held and their padded size; ``prefix_tokens_saved`` / ``_computed``: a shared
    preamble's tokens not recomputed / computed once per chunk; ``oom_retries``: batches
    retried after halving the budget (``batch_tokens``: the budget at the end);
    ``idle_calls``: synced mode's dummy forwards; ``seconds``: the call's wall time.
    """

    samples: int = 0
    world_size: int = 1
    cached: int = 0
    scored: int = 0
    forward_calls: int = 0
    sequences: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    prefix_tokens_saved: int = 0
    prefix_tokens_computed: int = 0
    oom_retries: int = 0
    idle_calls: int = 0
    prefix_sharing: bool = False
    synced: bool = False
    batch_tokens: int = 0
    seconds: float = 0.0

    @property
    def forward_tokens(self) -> int:
        """Tokens run through the model (a shared prefix counted once)."""
        return self.real_tokens + self.prefix_tokens_computed

    @property
    def padding_efficiency(self) -> float:
        """Real tokens over padded tokens of the forward batches (1 without batches)."""
        return self.real_tokens / self.padded_tokens if self.padded_tokens else 1.0

    def summed(self) -> dict[str, int]:
        """The counters summed over ranks (:data:`SUMMED_STATS`) and ``scored``."""
        out = dataclasses.asdict(self)
        return {k: int(out[k]) for k in (*SUMMED_STATS, "scored")}

    def set_summed(self, totals: dict[str, int]) -> None:
        """Replace the summed counters by ``totals`` (what the ranks' :meth:`summed` add to)."""
        for k in SUMMED_STATS:
            setattr(self, k, int(totals[k]))

    def to_json(self) -> dict[str, Any]:
        """The statistics as JSON-able values, with the derived ``forward_tokens`` and
        ``padding_efficiency``."""
        out: dict[str, Any] = dataclasses.asdict(self)
        out.update(forward_tokens=self.forward_tokens, padding_efficiency=self.padding_efficiency)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScoringStats:
        """The statistics :meth:`to_json` wrote (the derived values are recomputed)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known - set(_DERIVED))
        if unknown:
            raise InvalidInputError(f"unknown scoring statistics: {', '.join(unknown)}")
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class IFDScores:
    """IFD scores aligned with the input samples.

    ``ifd``, ``nll_cond``, ``nll_prior`` are float64, NaN for a sample without a valid score
    (empty response, or a prompt that leaves no room for a response token within
    ``max_length``); ``n_tokens`` is the number k of response tokens scored (0 when invalid).
    ``turn_nll``: a conversation scored turn by turn (docs/design.md, "IFD"): each kept
    turn's ``(nll_cond, nll_prior)`` means, empty for a one-turn sample (:attr:`ifd_turns`);
    ``turns``: which assistant turns were scored (:data:`iterit.config.TURNS`).
    ``stats``: how the scoring went.  :func:`iterit.scoring.api.score_samples` also fills
    ``model`` (what scored), ``model_fingerprint`` (its weights:
    :func:`iterit.scoring.model.weights_fingerprint`), ``dtype`` (what it ran in; empty when
    nothing was scored) and the load and scoring times.
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
    ifd_variant: str = "iterit"
    turn_nll: list[tuple[tuple[float, float], ...]] = field(default_factory=list, repr=False)
    turns: str = "all"
    stats: ScoringStats = field(default_factory=ScoringStats, compare=False, repr=False)
    model: str = ""
    dtype: str = ""
    model_fingerprint: str = ""
    load_seconds: float = 0.0
    score_seconds: float = 0.0

    @property
    def ifd_turns(self) -> list[list[float]]:
        """Every sample's per-turn IFD (each turn's own tokens in both passes): one value per
        kept assistant turn of a conversation scored turn by turn, else ``[ifd]`` for a valid
        sample and ``[]`` for an invalid one."""
        out = []
        for i in range(len(self.ifd)):
            turns = self.turn_nll[i] if i < len(self.turn_nll) else ()
            if turns:
                c, p = np.array(turns, dtype=np.float64).T
                out.append([float(v) for v in ifd_from_nll(c, p, self.ifd_variant)])
            else:
                out.append([float(self.ifd[i])] if np.isfinite(self.ifd[i]) else [])
        return out

    @property
    def n_turns(self) -> np.ndarray:
        """Assistant turns scored per sample (0 for an invalid sample)."""
        return np.array([len(t) for t in self.ifd_turns], dtype=np.int64)

    @classmethod
    def empty(cls, n: int, model: str = "", ifd_variant: str = "iterit") -> IFDScores:
        """``n`` samples without a score (nothing to send to the model)."""
        return cls(
            ifd=np.full(n, np.nan),
            nll_cond=np.full(n, np.nan),
            nll_prior=np.full(n, np.nan),
            n_tokens=np.zeros(n, dtype=np.int64),
            n_invalid=n,
            ifd_variant=ifd_variant,
            model=model,
        )

    def __len__(self) -> int:
        return len(self.ifd)

    @property
    def candidate_mask(self) -> np.ndarray:
        """Samples usable for selection: IFD finite, > 0 and < 1 (the candidate rule)."""
        return candidate_mask(self.ifd, IFD_MAX)

    @property
    def n_cached(self) -> int:
        """Scores read from the cache."""
        return self.stats.cached

    def as_dict(self) -> dict[str, np.ndarray]:
        """``ifd``, ``nll_cond``, ``nll_prior`` and ``n_tokens`` (as a scores file holds them)."""
        return {
            "ifd": self.ifd,
            "nll_cond": self.nll_cond,
            "nll_prior": self.nll_prior,
            "n_tokens": self.n_tokens,
        }


def ifd_from_nll(
    nll_cond: np.ndarray, nll_prior: np.ndarray, ifd_variant: str = "iterit"
) -> np.ndarray:
    """IFD from the two mean NLLs: the ratio of perplexities ``exp(nll_cond - nll_prior)``, or
    the ratio of mean losses ``nll_cond / nll_prior`` for ``ifd_variant="loss-ratio"``."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if check_ifd_variant(ifd_variant) == "loss-ratio":
            return np.asarray(nll_cond, dtype=np.float64) / np.asarray(nll_prior, dtype=np.float64)
        return np.exp(np.asarray(nll_cond, dtype=np.float64) - nll_prior)


def scores_from_nll(
    nll_cond: np.ndarray,
    nll_prior: np.ndarray,
    n_tokens: np.ndarray,
    reasons: np.ndarray,
    *,
    ifd_variant: str = "iterit",
    n_truncated: int = 0,
    stats: ScoringStats | None = None,
    turn_nll: list[tuple[tuple[float, float], ...]] | None = None,
    turns: str = "all",
) -> IFDScores:
    """IFD (:func:`ifd_from_nll`) with the counts of invalid samples by reason (``turn_nll``:
    per-turn means of conversations, as :class:`IFDScores` holds them)."""
    ifd = ifd_from_nll(nll_cond, nll_prior, ifd_variant)
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
        n_truncated=int(n_truncated),
        ifd_variant=ifd_variant,
        turn_nll=list(turn_nll) if turn_nll is not None else [()] * len(ifd),
        turns=turns,
        stats=stats if stats is not None else ScoringStats(),
    )
