"""IterIT's part of a training checkpoint: the pool, its epoch-0 scores and every epoch's
record (and, with in-loop losses, their EMA), saved in ``trainer_state.json`` under
:data:`iterit.artifacts.names.TRAINER_STATE_KEY`, so that resuming continues with the same
selections.  A checkpoint made with other selection settings is refused, naming the
difference.  Torch-free: the in-loop recorder is passed in as an object with
``export_state`` / ``load_state``."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from iterit.artifacts.epoch_records import EpochRecord
from iterit.artifacts.names import TRAINER_STATE_KEY
from iterit.artifacts.run_keys import samples_key
from iterit.errors import CheckpointError
from iterit.training.planner import SelectionPlanner, floats
from iterit.utils.atomic import OVERWRITE_HINT

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from iterit.config import TrainConfig
    from iterit.data.sample import Sample
    from iterit.scoring.model import LoadedModel

__all__ = [
    "STATE_VERSION",
    "check_run_settings",
    "export_state",
    "fingerprint",
    "load_state",
    "resolve_checkpoint",
    "run_settings",
]

#: Version of the saved layout; a checkpoint with another version is refused.
STATE_VERSION = 1
# Checkpoints from before a setting existed were made with its default.
_FINGERPRINT_DEFAULTS = {"rescore": "ifd", "loss_ema": 0.5}


def fingerprint(planner: SelectionPlanner) -> dict[str, Any]:
    """The settings a saved selection depends on: sample count, budget, shuffle seed and the
    selection configuration."""
    cfg = asdict(planner.config)
    cfg.pop("seed")
    cfg["ngram_range"] = list(cfg["ngram_range"])
    return {
        "n_samples": len(planner.samples),
        "budget_count": planner.budget,
        "seed": planner.seed,
        **cfg,
    }


def _float_array(values: list[float | None] | None) -> np.ndarray | None:
    if values is None:
        return None
    return np.array([np.nan if v is None else v for v in values], np.float64)


def export_state(
    planner: SelectionPlanner,
    losses: Any = None,
    *,
    partial_epoch: int | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a checkpoint needs to continue with the same selections (JSON-able).

    ``settings``: the run's settings and inputs (model and data fingerprints, scoring
    settings, seed, budget, epochs: see :func:`check_run_settings`), kept so that a resume
    with other ones is refused before anything is loaded.  With in-loop losses (``losses``),
    also their EMA and, for a checkpoint in the middle of
    epoch ``partial_epoch``, the losses recorded so far in it (gathered from every rank: a
    collective call under torch.distributed)."""
    out: dict[str, Any] = {
        "version": STATE_VERSION,
        "fingerprint": fingerprint(planner),
        "pool": None if planner.pool is None else planner.pool.tolist(),
        "pool_scores": None if planner.pool_scores is None else floats(planner.pool_scores),
        "records": [planner.records[e].to_json() for e in sorted(planner.records)],
    }
    if settings is not None:
        out["settings"] = dict(settings)
    if losses is not None:
        prior = planner.pool_nll_prior
        out["pool_nll_prior"] = None if prior is None else floats(prior)
        inloop = losses.export_state(with_partial=partial_epoch is not None)
        inloop["partial_epoch"] = partial_epoch
        out["inloop"] = inloop
    return out


def _check_fingerprint(planner: SelectionPlanner, saved: dict[str, Any]) -> None:
    mine = fingerprint(planner)
    theirs = saved.get("fingerprint", {})
    theirs = {**{k: v for k, v in _FINGERPRINT_DEFAULTS.items() if k not in theirs}, **theirs}
    diff = {k: (theirs.get(k), v) for k, v in mine.items() if theirs.get(k) != v}
    if diff:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diff.items())
        raise CheckpointError(f"the checkpoint's IterIT selection was made differently ({detail})")


def load_state(planner: SelectionPlanner, saved: dict[str, Any], losses: Any = None) -> int | None:
    """Restore a checkpoint's selections into ``planner`` (and ``losses``); returns the epoch
    the checkpoint was taken in the middle of (its losses so far are restored), or None."""
    if saved.get("version") != STATE_VERSION:
        raise CheckpointError(f"unsupported IterIT state version {saved.get('version')!r}")
    _check_fingerprint(planner, saved)
    try:
        planner.pool = None if saved["pool"] is None else np.asarray(saved["pool"], np.int64)
        planner.pool_scores = _float_array(saved.get("pool_scores"))
        records = [EpochRecord.from_json(r) for r in saved["records"]]
        planner.records = {r.epoch: r for r in records}
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"the checkpoint's IterIT state is damaged ({e!r})") from None
    if losses is None:
        return None
    planner.pool_nll_prior = _float_array(saved.get("pool_nll_prior"))
    inloop = saved.get("inloop") or {}
    losses.load_state(inloop)
    return inloop.get("partial_epoch")


def check_run_settings(checkpoint: str | os.PathLike[str], settings: dict[str, Any]) -> None:
    """Refuse to resume from ``checkpoint`` when it was made with other run settings (in the
    order of ``settings``: the first difference is named) than ``settings``; a checkpoint
    that recorded none (written before they were kept) is taken as it is.  Checked before the
    model or the optimizer state is loaded (docs/faults.md, "Run folders")."""
    state = Path(checkpoint) / _TRAINER_STATE_FILE
    try:
        saved = json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{str(state)!r}: cannot be read ({e})") from None
    callbacks = saved.get("stateful_callbacks") if isinstance(saved, dict) else None
    recorded = ((callbacks or {}).get(TRAINER_STATE_KEY) or {}).get("settings")
    if not isinstance(recorded, dict):
        return
    for key, mine in settings.items():
        theirs = recorded.get(key)
        if json.dumps(theirs, sort_keys=True) != json.dumps(mine, sort_keys=True):
            raise CheckpointError(
                f"the checkpoint {str(Path(checkpoint))!r} was made with {key} {theirs!r}, "
                f"this run has {mine!r}: train into another folder, or start over in this one "
                f"{OVERWRITE_HINT}"
            )


_CHECKPOINT_PREFIX = "checkpoint-"
_TRAINER_STATE_FILE = "trainer_state.json"


def _checkpoint_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a complete checkpoint (None when it is): the trainer writes
    ``trainer_state.json`` last, so a checkpoint killed while being written lacks it, or has
    an empty or truncated file somewhere."""
    state = folder / _TRAINER_STATE_FILE
    if not state.is_file():
        return f"no {_TRAINER_STATE_FILE}"
    empty = sorted(p.name for p in folder.iterdir() if p.is_file() and p.stat().st_size == 0)
    if empty:
        return f"empty file {empty[0]}"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        return f"{_TRAINER_STATE_FILE} is damaged ({e})"
    return None


def resolve_checkpoint(output_dir: str | os.PathLike[str], resume: str | bool | None) -> str | None:
    """The checkpoint folder to resume from: ``resume`` itself (a folder, checked), or with
    ``True`` the last complete ``checkpoint-N`` in ``output_dir``, skipping incomplete ones
    (killed while being written) with a warning naming each one.  ``None``/``False``: none."""
    if not resume:
        return None
    if resume is not True:
        folder = Path(resume)
        if not folder.is_dir():
            raise CheckpointError(f"the checkpoint folder {str(folder)!r} does not exist")
        state = folder / _TRAINER_STATE_FILE
        problem = _checkpoint_problem(folder)
        if problem is not None:
            raise CheckpointError(f"{str(state)!r}: the checkpoint is incomplete ({problem})")
        return str(folder)
    found = []
    out = Path(output_dir)
    for p in out.glob(_CHECKPOINT_PREFIX + "*") if out.is_dir() else ():
        step = p.name[len(_CHECKPOINT_PREFIX) :]
        if p.is_dir() and step.isdigit():
            found.append((int(step), p))
    for _step, folder in sorted(found, reverse=True):
        problem = _checkpoint_problem(folder)
        if problem is None:
            return str(folder)
        warnings.warn(
            f"skipping the incomplete checkpoint {str(folder)!r} ({problem})", stacklevel=2
        )
    raise CheckpointError(f"no complete checkpoint to resume from in {str(out)!r}")


def run_settings(
    cfg: TrainConfig, samples: Sequence[Sample], model: Any, scorer: LoadedModel | None = None
) -> dict[str, Any]:
    """The settings and inputs a run's checkpoints depend on, most telling first (a resume
    with other ones is refused, naming the first that differs): the initial weights' and the
    separate scorer's fingerprints, the data's content, the scoring settings, the seed, the
    budget, the epochs and the LoRA adapter."""
    from iterit.scoring.model import model_fingerprint

    scoring = cfg.scoring
    out: dict[str, Any] = {
        "model": model_fingerprint(model),
        "scorer_model": None if scorer is None else model_fingerprint(scorer.model),
        "data": samples_key(samples),
        "template": scoring.template if isinstance(scoring.template, str) else "custom",
        "max_length": scoring.max_length,
        "ifd_variant": scoring.ifd_variant,
        "dtype": cfg.dtype,
        "turns": scoring.turns,
    }
    out.update(seed=cfg.seed, budget=cfg.budget, epochs=cfg.epochs, lora=cfg.lora)
    if cfg.lora:
        targets = cfg.lora_targets
        targets = targets if targets is None or isinstance(targets, str) else list(targets)
        out.update(lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_targets=targets)
    return out
