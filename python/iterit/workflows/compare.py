"""Which selection trains the better model: the arms of ``iterit compare`` (docs/compare.md).

Every arm is one run of :func:`iterit.training.run.train` (the code of ``iterit train``) with the
same :class:`~iterit.config.TrainConfig` except the arm's selection fields
(:data:`iterit.config.COMPARE_ARMS`), so the arms share the initial weights, seed, budget,
schedule and effective batch.  Epoch-0 IFD is computed once, written to ``DIR/scores.jsonl`` and
given to every arm that selects by it.  After every epoch each arm is evaluated on every
evaluation set (mean NLL of the reference responses, :mod:`iterit.scoring.evaluate`).  An arm
whose summary exists is finished and is not run again; an interrupted arm resumes from its last
checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iterit.artifacts.compare_files import (
    ArmSummary,
    read_arm_summary,
    write_arm_summary,
    write_compare_csv,
    write_compare_json,
)
from iterit.artifacts.names import (
    COMPARE_ARM_SUMMARY,
    COMPARE_ARMS_DIR,
    COMPARE_BASE_EVAL_ROWS,
    COMPARE_CSV,
    COMPARE_EVAL_ROWS,
    COMPARE_JSON,
    COMPARE_SCORES,
    COMPARE_SCORES_INFO,
)
from iterit.config import COMPARE_ARMS, TrainConfig
from iterit.data.keys import content_keys
from iterit.data.sample import Sample, as_sample
from iterit.errors import ConfigError
from iterit.utils.atomic import atomic_open, with_run_folder_lock

__all__ = ["HELD_OUT_EVAL", "CompareResult", "compare", "held_out_split", "parse_arms"]

#: Name of the evaluation set held out of the data when no evaluation file is given.
HELD_OUT_EVAL = "held-out"


@dataclass
class CompareResult:
    """``rows``: one dict per arm, epoch and evaluation set (epoch 0: the initial model, arm
    ``base``); ``arms``: per arm its compute (forward tokens) and wall time by phase."""

    output_dir: Path
    rows: list[dict[str, Any]]
    arms: dict[str, ArmSummary]
    settings: dict[str, Any] = field(default_factory=dict)


def parse_arms(arms: str | Sequence[str]) -> list[str]:
    """The arm names of a comma-separated list (or a sequence), checked, in order, no repeats."""
    names = [a.strip().lower() for a in (arms.split(",") if isinstance(arms, str) else arms)]
    names = [a for a in dict.fromkeys(names) if a]
    bad = [a for a in names if a not in COMPARE_ARMS]
    if bad or not names:
        raise ConfigError(
            f"unknown arm(s) {', '.join(bad) or '(none given)'} "
            f"(expected some of: {', '.join(COMPARE_ARMS)})"
        )
    return names


def held_out_split(
    samples: Sequence[Sample], fraction: float = 0.1
) -> tuple[list[Sample], list[Sample]]:
    """``(train, held_out)``: the samples whose content key, read as a number, falls in the
    lowest ``fraction`` of the key space are held out (at least one).  Deterministic, and the
    same whatever the order of the data or the other records (a sample's own text decides)."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"the held-out fraction must be in (0, 1), got {fraction}")
    keys = content_keys(samples)
    limit = fraction * 16**8
    held = [int(k[:8], 16) < limit for k in keys]
    if not any(held):  # tiny data: hold out the sample with the lowest key
        held[min(range(len(keys)), key=keys.__getitem__)] = True
    train = [s for s, h in zip(samples, held, strict=True) if not h]
    if not train:
        raise ConfigError("the data is too small to hold out an evaluation split")
    return train, [s for s, h in zip(samples, held, strict=True) if h]


def _load(path: str | Path, cfg: TrainConfig) -> list[Sample]:
    from iterit.data import load

    loaded = load(path, format=cfg.data_format, fields=cfg.fields, split=cfg.split)
    return [as_sample(s, i) for i, s in enumerate(loaded.samples)]


def _eval_sets(
    cfg: TrainConfig, samples: list[Sample], eval_files: Sequence[str | Path], fraction: float
) -> tuple[list[Sample], dict[str, list[Sample]]]:
    if not eval_files:
        train, held = held_out_split(samples, fraction)
        return train, {HELD_OUT_EVAL: held}
    sets: dict[str, list[Sample]] = {}
    for path in eval_files:
        name = Path(path).name
        while name in sets:
            name += "'"
        sets[name] = _load(path, dataclasses.replace(cfg, fields=None, split=None))
    return samples, sets


def _score_epoch0(
    cfg: TrainConfig, samples: list[Sample], out: Path, model: Any, tok: Any
) -> dict[str, Any]:
    """IFD of every training sample with the initial model, written once to ``out``."""
    from iterit.artifacts.score_files import ifd_columns, write_table
    from iterit.scoring import IFDScorer
    from iterit.training.run import precision
    from iterit.training.scoring_adapter import scoring_autocast

    t0 = time.perf_counter()
    kwargs: dict[str, Any] = {"template": cfg.template, "max_length": cfg.max_length}
    if cfg.batch_tokens is not None:
        kwargs["batch_tokens"] = cfg.batch_tokens
    scorer = IFDScorer(model, tok, progress=cfg.progress, ifd_variant=cfg.ifd_variant, **kwargs)
    # As the training callback scores the model it trains: under its mixed precision.
    with scoring_autocast(model, precision(cfg).autocast):
        scores = scorer.score(samples)
    cols = {
        "ifd": scores.ifd,
        "nll_cond": scores.nll_cond,
        "nll_prior": scores.nll_prior,
        "n_tokens": scores.n_tokens,
    }
    write_table(out, ifd_columns(cols, samples, variant=cfg.ifd_variant), overwrite=True)
    stats = scores.stats
    info = {
        "seconds": time.perf_counter() - t0,
        "forward_tokens": stats.forward_tokens,
    }
    with atomic_open(out.parent / COMPARE_SCORES_INFO, "w", overwrite=True) as f:
        json.dump(info, f)
    return info


def _shared_scores(
    cfg: TrainConfig, samples: list[Sample], folder: Path, arms: list[str]
) -> tuple[Path | None, dict[str, Any]]:
    """The epoch-0 scores file the scoring arms share (computed once, reused when present)."""
    if not any(COMPARE_ARMS[a]["strategy"] in ("iterit", "ifd") for a in arms):
        return None, {"seconds": 0.0, "forward_tokens": 0}
    if cfg.scores is not None:
        return Path(cfg.scores), {"seconds": 0.0, "forward_tokens": 0}
    path = folder / COMPARE_SCORES
    info_path = folder / COMPARE_SCORES_INFO
    if path.is_file() and info_path.is_file():
        return path, json.loads(info_path.read_text(encoding="utf-8"))
    from iterit.training.run import load_training_model

    model, tok = load_training_model(cfg, placed=True)
    return path, _score_epoch0(cfg, samples, path, model, tok)


def _base_rows(cfg: TrainConfig, folder: Path, eval_sets: Mapping[str, list[Sample]]) -> Any:
    """Epoch 0: the initial model on every evaluation set (arm ``base``), computed once."""
    from iterit.training.eval_callback import EvalCallback
    from iterit.training.run import load_training_model

    path = folder / COMPARE_BASE_EVAL_ROWS
    model, tok = None, None
    cb = _eval_callback(cfg, eval_sets, None, path)
    if {r["eval"] for r in cb.rows} != set(eval_sets):
        model, tok = load_training_model(cfg, placed=True)
        cb = EvalCallback(eval_sets, tok, **_eval_settings(cfg), path=path)
        cb.evaluate(model, 0)
    return [{"arm": "base", **r} for r in cb.rows]


def _eval_settings(cfg: TrainConfig) -> dict[str, Any]:
    return {"template": cfg.template, "max_length": cfg.max_length, "batch_tokens": None}


def _eval_callback(
    cfg: TrainConfig, eval_sets: Mapping[str, list[Sample]], tok: Any, path: Path
) -> Any:
    from iterit.training.eval_callback import EvalCallback

    return EvalCallback(eval_sets, tok, **_eval_settings(cfg), path=path)


def _run_arm(
    name: str,
    cfg: TrainConfig,
    samples: list[Sample],
    eval_sets: Mapping[str, list[Sample]],
    epoch0: dict[str, Any],
) -> ArmSummary:
    """Train one arm (resuming its last checkpoint) and return its summary."""
    from iterit.training.datasets import encode_samples
    from iterit.training.run import load_training_model, train
    from iterit.training.scoring_adapter import IFDScoreFn

    out = Path(cfg.output_dir)
    resume = any(out.glob("checkpoint-*")) or None
    cfg = dataclasses.replace(cfg, resume_from_checkpoint=resume)
    t0 = time.perf_counter()
    model, tok = load_training_model(cfg)
    cb = _eval_callback(cfg, eval_sets, tok, out / COMPARE_EVAL_ROWS)
    result = train(cfg, samples=samples, model=model, tokenizer=tok, callbacks=[cb])
    wall = time.perf_counter() - t0
    lengths = [len(r["input_ids"]) for r in encode_samples(samples, tok, **_encode(cfg))]
    records = result.callback.records
    train_tokens = sum(lengths[i] for r in records.values() for i in r.picks)
    timings = result.summary.epochs
    score_s = sum(e.seconds("score_s") for e in timings)
    select_s = sum(e.seconds("select_s") for e in timings)
    fn = result.callback.score_fn
    uses_scores = COMPARE_ARMS[name]["strategy"] in ("iterit", "ifd")
    summary = ArmSummary(
        arm=name,
        settings=dict(COMPARE_ARMS[name]),
        epoch0_scoring_seconds=epoch0["seconds"] if uses_scores else 0.0,
        scoring_seconds=score_s + (epoch0["seconds"] if uses_scores else 0.0),
        selecting_seconds=select_s,
        evaluating_seconds=cb.seconds,
        training_seconds=max(0.0, wall - score_s - select_s - cb.seconds),
        scoring_forward_tokens=(fn.forward_tokens if isinstance(fn, IFDScoreFn) else 0)
        + (int(epoch0["forward_tokens"]) if uses_scores else 0),
        training_forward_tokens=int(train_tokens),
        evaluating_forward_tokens=int(sum(r["forward_tokens"] for r in cb.rows)),
        rows=[{"arm": name, **r} for r in sorted(cb.rows, key=lambda r: r["epoch"])],
    )
    write_arm_summary(out / COMPARE_ARM_SUMMARY, summary)
    return summary


def _encode(cfg: TrainConfig) -> dict[str, Any]:
    return {"template": cfg.template, "max_length": cfg.max_length}


# The whole run holds its folder: a second compare into it fails at once (docs/faults.md).
@with_run_folder_lock(lambda config, *_args, **_kwargs: config.output_dir)
def compare(
    config: TrainConfig,
    arms: str | Sequence[str],
    *,
    eval_files: Sequence[str | Path] = (),
    held_out: float = 0.1,
    log: Any = None,
) -> CompareResult:
    """Train every arm of ``arms`` on ``config.data`` into ``config.output_dir/arms/<arm>``
    and evaluate them after every epoch; writes ``compare.csv`` and ``compare.json`` to
    ``config.output_dir`` (see the module docstring and docs/compare.md)."""
    say = log or (lambda _msg: None)
    names = parse_arms(arms)
    if config.data is None or config.model is None:
        raise ConfigError("give the model and the data to compare on")
    folder = Path(config.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    samples, eval_sets = _eval_sets(config, _load(config.data, config), eval_files, held_out)
    scores_path, epoch0 = _shared_scores(config, samples, folder, names)
    rows = _base_rows(config, folder, eval_sets)
    summaries: dict[str, ArmSummary] = {}
    for name in names:
        arm_dir = folder / COMPARE_ARMS_DIR / name
        done = arm_dir / COMPARE_ARM_SUMMARY
        if done.is_file():
            say(f"arm {name}: finished before, not run again")
            summaries[name] = read_arm_summary(done)
        else:
            say(f"arm {name}: training")
            uses = COMPARE_ARMS[name]["strategy"] in ("iterit", "ifd")
            cfg = dataclasses.replace(
                config,
                output_dir=str(arm_dir),
                scores=str(scores_path) if uses and scores_path else None,
                **{k: v for k, v in COMPARE_ARMS[name].items()},
            )
            summaries[name] = _run_arm(name, cfg, samples, eval_sets, epoch0)
        rows += summaries[name].rows
    settings = {
        **config.to_json(),
        "arms": names,
        "eval": list(eval_sets),
        "n_train": len(samples),
        "n_eval": {k: len(v) for k, v in eval_sets.items()},
    }
    columns = ("arm", "epoch", "eval", "nll", "n_tokens", "n_samples")
    rows = [{k: r.get(k) for k in columns} for r in rows]
    write_compare_csv(folder / COMPARE_CSV, rows)
    write_compare_json(folder / COMPARE_JSON, rows, summaries, settings)
    return CompareResult(folder, rows, summaries, settings)
