"""The records of a training run, typed: :class:`EpochRecord` (one line of the selection log,
one entry of a checkpoint's IterIT state) and :class:`RunSummary` (the run summary file), each
with its JSON round trip.  The JSON layout is the one the files have always had
(docs/design.md, "Pool and iterations"): the keys, in this order, with ``null`` for a value
that does not apply; the in-loop and trainer fields appear only once they are known."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from iterit.errors import DataError

__all__ = ["EpochRecord", "EpochSummary", "RunSummary"]

Floats = list[float | None]


# Fields written only once set (None: left out of the JSON line): the in-loop counts, the
# trainer's step and the losses recorded at the end of the epoch.
_WHEN_SET = ("n_from_loss", "loss_ema", "global_step", "n_loss_recorded", "train_loss")


@dataclass(kw_only=True)
class EpochRecord:
    """One epoch's selection: what was selected (``picks``, sample indices in training order),
    from what (pool, candidates, budget, shortfall), how the complexity was obtained
    (``complexity_source``, ``rescored``, the scoring work and time) and the picks' ``ifd`` and
    selection ``score``.  In-loop runs add ``n_from_loss`` / ``loss_ema`` (the picks' loss
    EMA) and, at the epoch's end, ``n_loss_recorded`` / ``train_loss``."""

    epoch: int
    strategy: str | None = None
    diversity: str | None = None
    rescore: str | None = None
    complexity_source: str | None = None
    n_samples: int | None = None
    n_scored: int | None = None
    n_valid: int | None = None
    pool_size: int | None = None
    n_candidates: int | None = None
    budget: int | None = None
    shortfall: int | None = None
    rescored: bool | None = None
    overlap_prev: float | None = None
    score_forward_calls: int | None = None
    score_sequences: int | None = None
    score_seconds: float | None = None
    select_seconds: float | None = None
    picks: list[int] = field(default_factory=list)
    ifd: Floats | None = None
    score: Floats | None = None
    n_from_loss: int | None = None
    loss_ema: Floats | None = None
    global_step: int | None = None
    n_loss_recorded: int | None = None
    train_loss: Floats | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as one JSON object of the selection log (key order as written)."""
        return {k: v for k, v in asdict(self).items() if v is not None or k not in _WHEN_SET}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> EpochRecord:
        """The record of a JSON object; keys it does not know are ignored (a report reads the
        logs of older runs too).  ``epoch`` and a ``picks`` list are required."""
        if not isinstance(obj, Mapping) or "epoch" not in obj:
            raise DataError("an epoch record needs an 'epoch'", field="epoch")
        picks = obj.get("picks")
        if not isinstance(picks, list):
            raise DataError("an epoch record needs a 'picks' list", field="picks")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in obj.items() if k in known}
        # Whole numbers only: int() alone would truncate 1.5 to 1.
        if not all(_whole(v) for v in (obj["epoch"], *picks)):
            raise DataError("'epoch' and 'picks' must be integers", field="picks")
        values["epoch"] = int(obj["epoch"])
        values["picks"] = [int(i) for i in picks]
        return cls(**values)

    def with_losses(self, losses: Mapping[int, float]) -> EpochRecord:
        """This record with the in-loop losses of its picks recorded in the epoch (None for a
        pick that recorded none)."""
        loss = [None if i not in losses else float(losses[i]) for i in self.picks]
        return replace(self, n_loss_recorded=len(losses), train_loss=loss)


@dataclass(kw_only=True)
class EpochSummary:
    """One epoch of the run summary: its scoring and training counts and its timings in seconds
    (``score_s``, ``select_s``, ``train_s``, ``epoch_s``; absent for an epoch restored from a
    checkpoint before its end)."""

    epoch: int
    n_scored: int | None
    n_trained: int
    pool_size: int | None
    overlap_prev: float | None
    score_forward_calls: int | None
    timings: dict[str, float] = field(default_factory=dict)
    restored: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "n_scored": self.n_scored,
            "n_trained": self.n_trained,
            "pool_size": self.pool_size,
            "overlap_prev": self.overlap_prev,
            "score_forward_calls": self.score_forward_calls,
            **self.timings,
            "restored": self.restored,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> EpochSummary:
        keys = ("n_scored", "pool_size", "overlap_prev", "score_forward_calls")
        own = {"epoch", "n_trained", "restored", *keys}
        timings = {k: float(v) for k, v in obj.items() if k not in own and v is not None}
        return cls(
            epoch=int(obj["epoch"]),
            n_trained=int(obj.get("n_trained") or 0),
            restored=bool(obj.get("restored", False)),
            timings=timings,
            **{k: obj.get(k) for k in keys},
        )

    def seconds(self, name: str) -> float:
        """A timing (``score_s``, ``select_s``, ``train_s``, ``epoch_s``); 0.0 when absent."""
        return float(self.timings.get(name) or 0.0)


@dataclass(kw_only=True)
class RunSummary:
    """The run summary file: the sample and budget counts, each epoch's :class:`EpochSummary`
    and the scoring work against the method's bound O(N + a*M*(epochs-1))."""

    n_samples: int
    budget: int
    rescore: str | None
    pool_size: int
    epochs: list[EpochSummary] = field(default_factory=list)
    n_scored_total: int = 0
    paper_bound: int = 0
    n_trained_total: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "n_samples": self.n_samples,
            "budget": self.budget,
            "rescore": self.rescore,
            "pool_size": self.pool_size,
            "epochs": [e.to_json() for e in self.epochs],
            "n_scored_total": self.n_scored_total,
            "paper_bound_n_plus_aM_epochs_minus_1": self.paper_bound,
            "n_trained_total": self.n_trained_total,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> RunSummary:
        try:
            return cls(
                n_samples=int(obj["n_samples"]),
                budget=int(obj["budget"]),
                rescore=obj.get("rescore"),
                pool_size=int(obj.get("pool_size") or 0),
                epochs=[EpochSummary.from_json(e) for e in obj.get("epochs", [])],
                n_scored_total=int(obj.get("n_scored_total") or 0),
                paper_bound=int(obj.get("paper_bound_n_plus_aM_epochs_minus_1") or 0),
                n_trained_total=int(obj.get("n_trained_total") or 0),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"not a run summary ({e!r})") from None


def _whole(value: Any) -> bool:
    """An integer, a float with no fractional part (JSON writers may give 3.0) or a string of
    digits; not a bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return value.strip().lstrip("-").isdigit()
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
